/* budget.c — see budget.h. */
#include "budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GCRA on the server's clock. KEYS[1] holds the theoretical arrival time (us) of the
 * next take; ARGV: interval_us, tolerance_us. Returns 0 (taken) or the us to wait. */
static const char TAKE[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if tat < now then tat = now end\n"
    "local early = tat - now - tolerance\n"
    "if early > 0 then return early end\n"
    "local next = tat + interval\n"
    "redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000) + 1000)\n"
    "return 0\n";

int fp_budget_init(fp_budget *b, fp_redis *redis, const char *key, long limit, long window_ms, long burst,
                   fp_error *err)
{
    memset(b, 0, sizeof *b);
    if (limit < 1 || window_ms < 1 || burst < 1)
        return fp_error_set(err, FP_EINVAL, "a budget needs a limit, a window and a burst of at least 1");
    if (strlen(key) >= sizeof b->key)
        return fp_error_set(err, FP_ELIMIT, "budget key longer than %zu bytes", sizeof b->key - 1);
    memcpy(b->key, key, strlen(key) + 1);
    b->redis = redis;
    b->interval_us = (long long)window_ms * 1000 / limit;
    if (b->interval_us < 1)
        b->interval_us = 1;
    b->tolerance_us = b->interval_us * (burst - 1);
    fp_script_init(&b->script, TAKE);
    return 0;
}

int fp_budget_take(fp_budget *b, long long *wait_ms, fp_error *err)
{
    char interval[32], tolerance[32];
    snprintf(interval, sizeof interval, "%lld", b->interval_us);
    snprintf(tolerance, sizeof tolerance, "%lld", b->tolerance_us);
    const char *argv[] = {b->key, interval, tolerance};
    size_t lens[] = {strlen(b->key), strlen(interval), strlen(tolerance)};
    redisReply *r = NULL;
    int rc = fp_script_run(b->redis, &b->script, 1, 3, argv, lens, &r, err);
    if (rc < 0)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = fp_error_set(err, FP_EIO, "budget script answered %.100s", r->type == REDIS_REPLY_ERROR ? r->str : "no integer");
    else
        *wait_ms = r->integer > 0 ? (r->integer + 999) / 1000 : 0;
    freeReplyObject(r);
    return rc;
}
