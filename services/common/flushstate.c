/* flushstate.c — see flushstate.h. */
#include "flushstate.h"
#include "buffer.h"
#include "script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYMAX 600

enum { K_LOCK, K_BATCH, K_PENDING, K_ROWS, K_FLUSHED, K_NEXTROW, K_HEADER, K_COUNT };

static const char renew_src[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n";

static const char unlock_src[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

/* KEYS: lock, batch. ARGV: token, start, ids JSON. */
static const char record_src[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then\n"
    "  return redis.error_reply('LOCKLOST flush lock is not held by this run')\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HSET', KEYS[2], 'start', ARGV[2], 'ids', ARGV[3], 'token', ARGV[1])\n"
    "return 1\n";

/* KEYS: lock, batch, pending, rows, flushed, nextrow. ARGV: token, now ms.
 * Bulk commands per 1,000 ids (unpack has a stack limit), not one command per id. */
static const char finish_src[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then\n"
    "  return redis.error_reply('LOCKLOST flush lock is not held by this run')\n"
    "end\n"
    "local start = redis.call('HGET', KEYS[2], 'start')\n"
    "if not start then return 0 end\n"
    "local ids = cjson.decode(redis.call('HGET', KEYS[2], 'ids'))\n"
    "for first = 1, #ids, 1000 do\n"
    "  local chunk, scored = {}, {}\n"
    "  for i = first, math.min(#ids, first + 999) do\n"
    "    chunk[#chunk + 1] = ids[i]\n"
    "    scored[#scored + 1] = ARGV[2]\n"
    "    scored[#scored + 1] = ids[i]\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[3], unpack(chunk))\n"
    "  redis.call('HDEL', KEYS[4], unpack(chunk))\n"
    "  redis.call('ZADD', KEYS[5], unpack(scored))\n"
    "end\n"
    "redis.call('SET', KEYS[6], tonumber(start) + #ids)\n"
    "redis.call('DEL', KEYS[2])\n"
    "return #ids\n";

struct fp_flushstate {
    fp_redis *redis;
    char keys[K_COUNT][KEYMAX];
    fp_script renew, unlock, record, finish;
};

fp_flushstate *fp_flushstate_new(fp_redis *redis, const char *ns, const char *name, fp_error *err)
{
    static const char *const suffix[K_COUNT] = {"lock", "batch", "pending", "rows", "flushed", "nextrow", "header"};
    fp_flushstate *s = calloc(1, sizeof *s);
    if (!s) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    s->redis = redis;
    for (int i = 0; i < K_COUNT; i++) {
        if (fp_buffer_key(s->keys[i], KEYMAX, ns, name, suffix[i])) {
            fp_error_set(err, FP_ELIMIT, "flush state: namespace/name too long for a key");
            free(s);
            return NULL;
        }
    }
    fp_script_init(&s->renew, renew_src);
    fp_script_init(&s->unlock, unlock_src);
    fp_script_init(&s->record, record_src);
    fp_script_init(&s->finish, finish_src);
    return s;
}

void fp_flushstate_free(fp_flushstate *s) { free(s); }

static int command(fp_flushstate *s, redisReply **rep, fp_error *err, int argc, const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return fp_redis_command(s->redis, rep, err, argc, argv, lens);
}

/* Runs a script whose arguments are all NUL-terminated strings. */
static int script(fp_flushstate *s, const fp_script *sc, int nkeys, int argc, const char **argv,
                  redisReply **rep, fp_error *err)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    int rc = fp_script_run(s->redis, sc, nkeys, argc, argv, lens, rep, err);
    if (rc == 0 && (*rep)->type == REDIS_REPLY_ERROR) {
        rc = strstr((*rep)->str, "LOCKLOST") ? FP_ELOCKLOST : FP_EINVAL;
        fp_error_set(err, rc, "flush state: %s", (*rep)->str);
        freeReplyObject(*rep);
        *rep = NULL;
    }
    return rc;
}

int fp_flushstate_lock(fp_flushstate *s, const char *token, long ttl_ms, int *acquired, fp_error *err)
{
    char ttl[24];
    redisReply *rep;
    snprintf(ttl, sizeof ttl, "%ld", ttl_ms);
    int rc = command(s, &rep, err, 6, (const char *[]){"SET", s->keys[K_LOCK], token, "NX", "PX", ttl});
    if (rc)
        return rc;
    *acquired = rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    return 0;
}

int fp_flushstate_renew(fp_flushstate *s, const char *token, long ttl_ms, fp_error *err)
{
    char ttl[24];
    redisReply *rep;
    snprintf(ttl, sizeof ttl, "%ld", ttl_ms);
    int rc = script(s, &s->renew, 1, 3, (const char *[]){s->keys[K_LOCK], token, ttl}, &rep, err);
    if (rc)
        return rc;
    int held = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    return held ? 0 : fp_error_set(err, FP_ELOCKLOST, "flush lock was lost (expired or taken over)");
}

int fp_flushstate_unlock(fp_flushstate *s, const char *token, fp_error *err)
{
    redisReply *rep;
    int rc = script(s, &s->unlock, 1, 2, (const char *[]){s->keys[K_LOCK], token}, &rep, err);
    if (!rc)
        freeReplyObject(rep);
    return rc;
}

int fp_flushstate_batch(fp_flushstate *s, fp_flush_batch *out, int *exists, fp_error *err)
{
    redisReply *rep;
    out->start_row = 0;
    out->ids = NULL;
    *exists = 0;
    int rc = command(s, &rep, err, 4, (const char *[]){"HMGET", s->keys[K_BATCH], "start", "ids"});
    if (rc)
        return rc;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->type == REDIS_REPLY_STRING) {
        cJSON *ids = rep->element[1]->type == REDIS_REPLY_STRING ? cJSON_Parse(rep->element[1]->str) : NULL;
        if (!cJSON_IsArray(ids)) {
            cJSON_Delete(ids);
            rc = fp_error_set(err, FP_EINVAL, "flush state: batch ids are not a JSON array");
        } else {
            out->start_row = atoll(rep->element[0]->str);
            out->ids = ids;
            *exists = 1;
        }
    }
    freeReplyObject(rep);
    return rc;
}

int fp_flushstate_record(fp_flushstate *s, const char *token, long long start_row,
                         const cJSON *ids, fp_error *err)
{
    char start[24];
    char *json = cJSON_PrintUnformatted(ids);
    redisReply *rep;
    if (!json)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    snprintf(start, sizeof start, "%lld", start_row);
    int rc = script(s, &s->record, 2, 5, (const char *[]){s->keys[K_LOCK], s->keys[K_BATCH], token, start, json},
                    &rep, err);
    if (!rc)
        freeReplyObject(rep);
    free(json);
    return rc;
}

int fp_flushstate_finish(fp_flushstate *s, const char *token, long long now_ms, long long *count,
                         fp_error *err)
{
    char now[24];
    redisReply *rep;
    snprintf(now, sizeof now, "%lld", now_ms);
    int rc = script(s, &s->finish, 6, 8,
                    (const char *[]){s->keys[K_LOCK], s->keys[K_BATCH], s->keys[K_PENDING], s->keys[K_ROWS],
                                     s->keys[K_FLUSHED], s->keys[K_NEXTROW], token, now},
                    &rep, err);
    if (rc)
        return rc;
    *count = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return 0;
}

int fp_flushstate_nextrow(fp_flushstate *s, long long *row, int *exists, fp_error *err)
{
    redisReply *rep;
    int rc = command(s, &rep, err, 2, (const char *[]){"GET", s->keys[K_NEXTROW]});
    if (rc)
        return rc;
    *exists = rep->type == REDIS_REPLY_STRING;
    *row = *exists ? atoll(rep->str) : 0;
    freeReplyObject(rep);
    return 0;
}

int fp_flushstate_init_nextrow(fp_flushstate *s, long long row, fp_error *err)
{
    char v[24];
    redisReply *rep;
    snprintf(v, sizeof v, "%lld", row);
    int rc = command(s, &rep, err, 4, (const char *[]){"SET", s->keys[K_NEXTROW], v, "NX"});
    if (!rc)
        freeReplyObject(rep);
    return rc;
}

void fp_flush_batch_clear(fp_flush_batch *b)
{
    cJSON_Delete(b->ids);
    b->ids = NULL;
}

int fp_flushstate_header(fp_flushstate *s, char **header, fp_error *err)
{
    redisReply *rep;
    *header = NULL;
    int rc = command(s, &rep, err, 2, (const char *[]){"GET", s->keys[K_HEADER]});
    if (rc)
        return rc;
    if (rep->type == REDIS_REPLY_STRING && !(*header = strdup(rep->str)))
        rc = fp_error_set(err, FP_ENOMEM, "out of memory");
    freeReplyObject(rep);
    return rc;
}

int fp_flushstate_set_header(fp_flushstate *s, const char *header, fp_error *err)
{
    redisReply *rep;
    int rc = command(s, &rep, err, 3, (const char *[]){"SET", s->keys[K_HEADER], header});
    if (!rc)
        freeReplyObject(rep);
    return rc;
}
