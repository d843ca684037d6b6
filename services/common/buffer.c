/* buffer.c — see buffer.h. */
#include "buffer.h"
#include "script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FP_BUFFER_KEY_MAX 600

/* KEYS: pending, rows, flushed. ARGV: id, score, row, id, score, row, ...
 * Returns how many ids were new. */
static const char insert_script[] =
    "local added = 0\n"
    "for i = 1, #ARGV, 3 do\n"
    "  local id = ARGV[i]\n"
    "  if redis.call('HEXISTS', KEYS[2], id) == 0 and not redis.call('ZSCORE', KEYS[3], id) then\n"
    "    redis.call('HSET', KEYS[2], id, ARGV[i + 2])\n"
    "    redis.call('ZADD', KEYS[1], ARGV[i + 1], id)\n"
    "    added = added + 1\n"
    "  end\n"
    "end\n"
    "return added\n";

struct fp_buffer {
    fp_redis *redis;
    char pending[FP_BUFFER_KEY_MAX];
    char rows[FP_BUFFER_KEY_MAX];
    char flushed[FP_BUFFER_KEY_MAX];
    fp_script insert;
};

int fp_buffer_key(char *out, size_t outsz, const char *ns, const char *name, const char *suffix)
{
    int n = snprintf(out, outsz, "fp:{%s/%s}:%s", ns, name, suffix);
    return n < 0 || (size_t)n >= outsz ? FP_ELIMIT : 0;
}

fp_buffer *fp_buffer_new(fp_redis *redis, const char *ns, const char *name, fp_error *err)
{
    if (!ns || !*ns || !name || !*name || strpbrk(ns, "{}") || strpbrk(name, "{}")) {
        fp_error_set(err, FP_EINVAL, "buffer: namespace and name must be non-empty and brace-free");
        return NULL;
    }
    fp_buffer *b = calloc(1, sizeof *b);
    if (!b) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    b->redis = redis;
    if (fp_buffer_key(b->pending, sizeof b->pending, ns, name, "pending") ||
        fp_buffer_key(b->rows, sizeof b->rows, ns, name, "rows") ||
        fp_buffer_key(b->flushed, sizeof b->flushed, ns, name, "flushed")) {
        fp_error_set(err, FP_ELIMIT, "buffer: namespace/name too long for a key");
        free(b);
        return NULL;
    }
    fp_script_init(&b->insert, insert_script);
    return b;
}

void fp_buffer_free(fp_buffer *b) { free(b); }

char *fp_buffer_row_json(const char *id, const char *received_at, const cJSON *data,
                         const char *const *columns, size_t ncolumns, fp_error *err)
{
    cJSON *row = cJSON_CreateArray();
    char *out = NULL;
    if (!row || !cJSON_AddItemToArray(row, cJSON_CreateString(id)) ||
        !cJSON_AddItemToArray(row, cJSON_CreateString(received_at)))
        goto nomem;
    for (size_t i = 0; i < ncolumns; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, columns[i]);
        cJSON *copy;
        if (!v || cJSON_IsNull(v))
            copy = cJSON_CreateString("");
        else if (cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v))
            copy = cJSON_Duplicate(v, 0);
        else {
            fp_error_set(err, FP_EINVAL, "field '%s' is not a string, number or boolean", columns[i]);
            cJSON_Delete(row);
            return NULL;
        }
        if (!copy || !cJSON_AddItemToArray(row, copy))
            goto nomem;
    }
    out = cJSON_PrintUnformatted(row);
    if (!out)
        goto nomem;
    cJSON_Delete(row);
    return out;
nomem:
    cJSON_Delete(row);
    fp_error_set(err, FP_ENOMEM, "out of memory building a row");
    return NULL;
}

int fp_buffer_insert(fp_buffer *b, const fp_buffer_row *rows, size_t n, long long *inserted,
                     fp_error *err)
{
    *inserted = 0;
    if (n == 0)
        return 0;
    int argc = 3 + 3 * (int)n;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    size_t *lens = calloc((size_t)argc, sizeof *lens);
    char (*scores)[24] = calloc(n, sizeof *scores);
    redisReply *rep = NULL;
    int rc = FP_ENOMEM;
    if (!argv || !lens || !scores) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    argv[0] = b->pending;
    argv[1] = b->rows;
    argv[2] = b->flushed;
    for (size_t i = 0; i < n; i++) {
        snprintf(scores[i], sizeof scores[i], "%lld", rows[i].received_ms);
        argv[3 + 3 * i] = rows[i].id;
        argv[4 + 3 * i] = scores[i];
        argv[5 + 3 * i] = rows[i].row;
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    rc = fp_script_run(b->redis, &b->insert, 3, argc, argv, lens, &rep, err);
    if (rc)
        goto out;
    if (rep->type != REDIS_REPLY_INTEGER) {
        rc = fp_error_set(err, FP_EINVAL, "buffer insert: unexpected reply: %s",
                          rep->type == REDIS_REPLY_ERROR ? rep->str : "not an integer");
        goto out;
    }
    *inserted = rep->integer;
    rc = 0;
out:
    freeReplyObject(rep);
    free(scores);
    free(lens);
    free(argv);
    return rc;
}

/* Runs a command built from NULL-terminated string arguments, which may block on the
 * server for block_ms; expects an integer. */
static int command_int_blocking(fp_buffer *b, long block_ms, long long *out, fp_error *err,
                                const char **argv)
{
    size_t lens[8];
    int argc = 0;
    while (argv[argc]) {
        lens[argc] = strlen(argv[argc]);
        argc++;
    }
    redisReply *rep;
    int rc = fp_redis_command_blocking(b->redis, block_ms, &rep, err, argc, argv, lens);
    if (rc)
        return rc;
    if (rep->type != REDIS_REPLY_INTEGER) {
        rc = fp_error_set(err, FP_EINVAL, "%s: unexpected reply: %s", argv[0],
                          rep->type == REDIS_REPLY_ERROR ? rep->str : "not an integer");
    } else {
        *out = rep->integer;
    }
    freeReplyObject(rep);
    return rc;
}

static int command_int(fp_buffer *b, long long *out, fp_error *err, const char **argv)
{
    return command_int_blocking(b, 0, out, err, argv);
}

int fp_buffer_wait(fp_buffer *b, int replicas, long timeout_ms, long long *acked, fp_error *err)
{
    char nrep[16], tmo[24];
    snprintf(nrep, sizeof nrep, "%d", replicas);
    snprintf(tmo, sizeof tmo, "%ld", timeout_ms);
    int rc = command_int_blocking(b, timeout_ms, acked, err, (const char *[]){"WAIT", nrep, tmo, NULL});
    if (rc)
        return rc;
    if (*acked < replicas)
        return fp_error_set(err, FP_ETIMEOUT, "WAIT: %lld of %d replicas acknowledged within %ld ms",
                            *acked, replicas, timeout_ms);
    return 0;
}

int fp_buffer_pending(fp_buffer *b, long long *count, fp_error *err)
{
    return command_int(b, count, err, (const char *[]){"ZCARD", b->pending, NULL});
}

int fp_buffer_trim_flushed(fp_buffer *b, long long cutoff_ms, long long *removed, fp_error *err)
{
    char max[32];
    snprintf(max, sizeof max, "(%lld", cutoff_ms);
    return command_int(b, removed, err, (const char *[]){"ZREMRANGEBYSCORE", b->flushed, "-inf", max, NULL});
}

int fp_buffer_oldest(fp_buffer *b, size_t n, cJSON **out, fp_error *err)
{
    char stop[24];
    redisReply *ids = NULL, *rows = NULL;
    const char **argv = NULL;
    size_t *lens = NULL;
    int rc;
    *out = NULL;
    if (n == 0) {
        *out = cJSON_CreateArray();
        return *out ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    snprintf(stop, sizeof stop, "%zu", n - 1);
    const char *zargv[] = {"ZRANGE", b->pending, "0", stop, "WITHSCORES"};
    size_t zlens[5];
    for (int i = 0; i < 5; i++)
        zlens[i] = strlen(zargv[i]);
    if ((rc = fp_redis_command(b->redis, &ids, err, 5, zargv, zlens)))
        return rc;
    if (ids->type != REDIS_REPLY_ARRAY || ids->elements % 2) {
        rc = fp_error_set(err, FP_EINVAL, "ZRANGE: unexpected reply");
        goto out;
    }
    size_t k = ids->elements / 2;
    *out = cJSON_CreateArray();
    if (k == 0) {
        rc = *out ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    argv = calloc(k + 2, sizeof *argv);
    lens = calloc(k + 2, sizeof *lens);
    if (!*out || !argv || !lens) {
        rc = fp_error_set(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    argv[0] = "HMGET";
    argv[1] = b->rows;
    for (size_t i = 0; i < k; i++)
        argv[i + 2] = ids->element[2 * i]->str;
    for (size_t i = 0; i < k + 2; i++)
        lens[i] = strlen(argv[i]);
    if ((rc = fp_redis_command(b->redis, &rows, err, (int)(k + 2), argv, lens)))
        goto out;
    if (rows->type != REDIS_REPLY_ARRAY || rows->elements != k) {
        rc = fp_error_set(err, FP_EINVAL, "HMGET: unexpected reply");
        goto out;
    }
    for (size_t i = 0; i < k; i++) {
        cJSON *item = cJSON_CreateObject();
        cJSON *row = rows->element[i]->type == REDIS_REPLY_STRING ? cJSON_Parse(rows->element[i]->str) : NULL;
        if (!item || !cJSON_AddItemToArray(*out, item) ||
            !cJSON_AddStringToObject(item, "id", ids->element[2 * i]->str) ||
            !cJSON_AddNumberToObject(item, "received_ms", atof(ids->element[2 * i + 1]->str))) {
            cJSON_Delete(row);
            rc = fp_error_set(err, FP_ENOMEM, "out of memory");
            goto out;
        }
        if (!row) {
            rc = fp_error_set(err, FP_EINVAL, "row of %s is missing or not JSON", ids->element[2 * i]->str);
            goto out;
        }
        cJSON_AddItemToObject(item, "row", row);
    }
    rc = 0;
out:
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    freeReplyObject(ids);
    freeReplyObject(rows);
    free(argv);
    free(lens);
    return rc;
}
