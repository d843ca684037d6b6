/* flushstate.c — see flushstate.h. */
#include "flushstate.h"
#include "buf.h"
#include "rowstore.h"
#include "script.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYMAX 600

enum {
    K_LOCK, K_BATCH, K_PENDING, K_ROWS, K_FLUSHED, K_POSITIONS, K_HEADERS, K_SPREADSHEET, K_DEAD, K_LASTFLUSH,
    K_NEXTROW, K_HEADER,   /* one position per pipeline (earlier versions): migrated */
    K_COUNT
};

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

/* KEYS: lock, batch. ARGV: token, start, ids JSON, spreadsheet, sheet, target key. */
static const char record_src[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then\n"
    "  return redis.error_reply('LOCKLOST flush lock is not held by this run')\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HSET', KEYS[2], 'start', ARGV[2], 'ids', ARGV[3], 'token', ARGV[1],\n"
    "           'spreadsheet', ARGV[4], 'sheet', ARGV[5], 'target', ARGV[6])\n"
    "return 1\n";

/* KEYS: lock, batch, pending, rows, flushed, positions. ARGV: token, now ms.
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
    "redis.call('HSET', KEYS[6], redis.call('HGET', KEYS[2], 'target'), tonumber(start) + #ids)\n"
    "redis.call('DEL', KEYS[2])\n"
    "return #ids\n";

/* KEYS: lock, batch. ARGV: token, reason. */
static const char fail_src[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then\n"
    "  return redis.error_reply('LOCKLOST flush lock is not held by this run')\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end\n"
    "redis.call('HSET', KEYS[2], 'reason', ARGV[2])\n"
    "return redis.call('HINCRBY', KEYS[2], 'failures', 1)\n";

/* KEYS: lock, batch, pending, rows, flushed, dead. ARGV: token, now ms. */
static const char dead_src[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then\n"
    "  return redis.error_reply('LOCKLOST flush lock is not held by this run')\n"
    "end\n"
    "local ids = redis.call('HGET', KEYS[2], 'ids')\n"
    "if not ids then return 0 end\n"
    "ids = cjson.decode(ids)\n"
    "local head = '{\"reason\":' .. cjson.encode(redis.call('HGET', KEYS[2], 'reason') or '') ..\n"
    "  ',\"at\":' .. ARGV[2] .. ',\"target\":' .. cjson.encode(redis.call('HGET', KEYS[2], 'target') or '') ..\n"
    "  ',\"row\":'\n"
    "for first = 1, #ids, 1000 do\n"
    "  local chunk, scored, dead = {}, {}, {}\n"
    "  for i = first, math.min(#ids, first + 999) do\n"
    "    chunk[#chunk + 1] = ids[i]\n"
    "    scored[#scored + 1] = ARGV[2]\n"
    "    scored[#scored + 1] = ids[i]\n"
    "  end\n"
    "  local rows = redis.call('HMGET', KEYS[4], unpack(chunk))\n"
    "  for k = 1, #chunk do\n"
    "    dead[#dead + 1] = chunk[k]\n"
    "    dead[#dead + 1] = head .. (rows[k] or 'null') .. '}'\n"
    "  end\n"
    "  redis.call('HSET', KEYS[6], unpack(dead))\n"
    "  redis.call('ZREM', KEYS[3], unpack(chunk))\n"
    "  redis.call('HDEL', KEYS[4], unpack(chunk))\n"
    "  redis.call('ZADD', KEYS[5], unpack(scored))\n"
    "end\n"
    "redis.call('DEL', KEYS[2])\n"
    "return #ids\n";

/* KEYS: lock, batch. ARGV: token. */
static const char abandon_src[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then\n"
    "  return redis.error_reply('LOCKLOST flush lock is not held by this run')\n"
    "end\n"
    "local ids = redis.call('HGET', KEYS[2], 'ids')\n"
    "if not ids then return 0 end\n"
    "redis.call('DEL', KEYS[2])\n"
    "return #cjson.decode(ids)\n";

/* KEYS: nextrow, header (earlier versions), positions, headers, batch.
 * ARGV: target key, spreadsheet, sheet. */
static const char migrate_src[] =
    "local row = redis.call('GET', KEYS[1])\n"
    "if row then\n"
    "  redis.call('HSETNX', KEYS[3], ARGV[1], row)\n"
    "  redis.call('DEL', KEYS[1])\n"
    "end\n"
    "local header = redis.call('GET', KEYS[2])\n"
    "if header then\n"
    "  redis.call('HSETNX', KEYS[4], ARGV[1], header)\n"
    "  redis.call('DEL', KEYS[2])\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[5]) == 1 and not redis.call('HGET', KEYS[5], 'target') then\n"
    "  redis.call('HSET', KEYS[5], 'target', ARGV[1], 'spreadsheet', ARGV[2], 'sheet', ARGV[3])\n"
    "end\n"
    "return 1\n";

struct fp_flushstate {
    fp_redis *redis;
    char keys[K_COUNT][KEYMAX];
    fp_script renew, unlock, record, finish, fail, dead, abandon, migrate;
};

fp_flushstate *fp_flushstate_new(fp_redis *redis, const char *ns, const char *name, fp_error *err)
{
    static const char *const suffix[K_COUNT] = {"lock", "batch", "pending", "rows", "flushed", "positions",
                                                 "headers", "spreadsheet", "dead", "lastflush",
                                                 "nextrow", "header"};
    fp_flushstate *s = calloc(1, sizeof *s);
    if (!s) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    s->redis = redis;
    for (int i = 0; i < K_COUNT; i++) {
        if (fp_rowstore_key(s->keys[i], KEYMAX, ns, name, suffix[i])) {
            fp_error_set(err, FP_ELIMIT, "flush state: namespace/name too long for a key");
            free(s);
            return NULL;
        }
    }
    fp_script_init(&s->renew, renew_src);
    fp_script_init(&s->unlock, unlock_src);
    fp_script_init(&s->record, record_src);
    fp_script_init(&s->finish, finish_src);
    fp_script_init(&s->fail, fail_src);
    fp_script_init(&s->dead, dead_src);
    fp_script_init(&s->abandon, abandon_src);
    fp_script_init(&s->migrate, migrate_src);
    return s;
}

void fp_flushstate_free(fp_flushstate *s) { free(s); }

int fp_flushstate_target_key(char *out, size_t outsz, const char *spreadsheet, const char *sheet)
{
    int n = snprintf(out, outsz, "%s/%s", spreadsheet, sheet);
    if (n < 0 || (size_t)n >= outsz)
        return FP_ELIMIT;
    for (char *p = out + strlen(spreadsheet) + 1; *p; p++)
        *p = (char)tolower((unsigned char)*p);   /* ASCII only: tolower in the C locale */
    return 0;
}

static int command(fp_flushstate *s, redisReply **rep, fp_error *err, int argc, const char **argv)
{
    size_t lens[24];
    if (argc > 24)
        return fp_error_set(err, FP_EINVAL, "flush state: a command of %d arguments", argc);
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return fp_redis_command(s->redis, rep, err, argc, argv, lens);
}

/* Runs a script whose arguments are all NUL-terminated strings. */
static int script(fp_flushstate *s, fp_script *sc, int nkeys, int argc, const char **argv,
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

/* A copy of a string reply; NULL (no error) for a missing field. */
static int dup_field(const redisReply *rep, char **out, fp_error *err)
{
    *out = NULL;
    if (rep->type != REDIS_REPLY_STRING)
        return 0;
    return (*out = strdup(rep->str)) ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
}

int fp_flushstate_batch(fp_flushstate *s, fp_flush_batch *out, int *exists, fp_error *err)
{
    redisReply *rep;
    memset(out, 0, sizeof *out);
    *exists = 0;
    int rc = command(s, &rep, err, 7,
                     (const char *[]){"HMGET", s->keys[K_BATCH], "start", "ids", "spreadsheet", "sheet", "failures"});
    if (rc)
        return rc;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 5 && rep->element[0]->type == REDIS_REPLY_STRING) {
        out->ids = rep->element[1]->type == REDIS_REPLY_STRING ? cJSON_Parse(rep->element[1]->str) : NULL;
        if (!cJSON_IsArray(out->ids))
            rc = fp_error_set(err, FP_EINVAL, "flush state: batch ids are not a JSON array");
        else if (!(rc = dup_field(rep->element[2], &out->spreadsheet, err)) &&
                 !(rc = dup_field(rep->element[3], &out->sheet, err)) && (!out->spreadsheet || !out->sheet))
            rc = fp_error_set(err, FP_EINVAL, "flush state: the batch has no target (run fp_flushstate_migrate)");
        out->start_row = atoll(rep->element[0]->str);
        out->failures = rep->element[4]->type == REDIS_REPLY_STRING ? atoll(rep->element[4]->str) : 0;
        *exists = rc == 0;
        if (rc)
            fp_flush_batch_clear(out);
    }
    freeReplyObject(rep);
    return rc;
}

int fp_flushstate_record(fp_flushstate *s, const char *token, const char *spreadsheet, const char *sheet,
                         long long start_row, const char *const *ids, size_t n, fp_error *err)
{
    char start[24], target[FP_FLUSH_TARGET_MAX];
    redisReply *rep;
    fp_buf json;
    if (fp_flushstate_target_key(target, sizeof target, spreadsheet, sheet))
        return fp_error_set(err, FP_ELIMIT, "flush state: spreadsheet id and sheet name too long");
    fp_buf_init(&json, (size_t)1 << 30);
    int rc = fp_buf_adds(&json, "[");
    for (size_t i = 0; i < n && !rc; i++)
        rc = (i && fp_buf_adds(&json, ",")) || fp_buf_add_json_string(&json, ids[i], strlen(ids[i]));
    if (rc || fp_buf_adds(&json, "]")) {
        fp_buf_free(&json);
        return fp_error_set(err, FP_ENOMEM, "out of memory recording a batch");
    }
    snprintf(start, sizeof start, "%lld", start_row);
    rc = script(s, &s->record, 2, 8,
                (const char *[]){s->keys[K_LOCK], s->keys[K_BATCH], token, start, json.data, spreadsheet, sheet, target},
                &rep, err);
    if (!rc)
        freeReplyObject(rep);
    fp_buf_free(&json);
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
                                     s->keys[K_FLUSHED], s->keys[K_POSITIONS], token, now},
                    &rep, err);
    if (rc)
        return rc;
    *count = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return 0;
}

int fp_flushstate_fail(fp_flushstate *s, const char *token, const char *reason, long long *failures,
                       fp_error *err)
{
    redisReply *rep;
    int rc = script(s, &s->fail, 2, 4, (const char *[]){s->keys[K_LOCK], s->keys[K_BATCH], token, reason}, &rep, err);
    if (rc)
        return rc;
    *failures = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return 0;
}

int fp_flushstate_dead_letter(fp_flushstate *s, const char *token, long long now_ms, long long *count,
                              fp_error *err)
{
    char now[24];
    redisReply *rep;
    snprintf(now, sizeof now, "%lld", now_ms);
    int rc = script(s, &s->dead, 6, 8,
                    (const char *[]){s->keys[K_LOCK], s->keys[K_BATCH], s->keys[K_PENDING], s->keys[K_ROWS],
                                     s->keys[K_FLUSHED], s->keys[K_DEAD], token, now},
                    &rep, err);
    if (rc)
        return rc;
    *count = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return 0;
}

int fp_flushstate_abandon(fp_flushstate *s, const char *token, long long *count, fp_error *err)
{
    redisReply *rep;
    int rc = script(s, &s->abandon, 2, 3, (const char *[]){s->keys[K_LOCK], s->keys[K_BATCH], token}, &rep, err);
    if (rc)
        return rc;
    *count = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return 0;
}

int fp_flushstate_migrate(fp_flushstate *s, const char *spreadsheet, const char *sheet, fp_error *err)
{
    char target[FP_FLUSH_TARGET_MAX];
    redisReply *rep;
    if (fp_flushstate_target_key(target, sizeof target, spreadsheet, sheet))
        return fp_error_set(err, FP_ELIMIT, "flush state: spreadsheet id and sheet name too long");
    int rc = script(s, &s->migrate, 5, 8,
                    (const char *[]){s->keys[K_NEXTROW], s->keys[K_HEADER], s->keys[K_POSITIONS], s->keys[K_HEADERS],
                                     s->keys[K_BATCH], target, spreadsheet, sheet},
                    &rep, err);
    if (!rc)
        freeReplyObject(rep);
    return rc;
}

/* HGET field of a hash key: *value NULL when missing (caller frees). */
static int hget(fp_flushstate *s, int key, const char *field, char **value, fp_error *err)
{
    redisReply *rep;
    int rc = command(s, &rep, err, 3, (const char *[]){"HGET", s->keys[key], field});
    if (rc)
        return rc;
    rc = dup_field(rep, value, err);
    freeReplyObject(rep);
    return rc;
}

/* Runs a command whose answer is not needed beyond success. */
static int command_ok(fp_flushstate *s, fp_error *err, int argc, const char **argv)
{
    redisReply *rep = NULL;
    int rc = command(s, &rep, err, argc, argv);
    if (!rc && rep->type == REDIS_REPLY_ERROR)
        rc = fp_error_set(err, FP_EINVAL, "flush state: %s: %s", argv[0], rep->str);
    freeReplyObject(rep);
    return rc;
}

int fp_flushstate_nextrow(fp_flushstate *s, const char *target, long long *row, int *exists, fp_error *err)
{
    char *v;
    int rc = hget(s, K_POSITIONS, target, &v, err);
    if (rc)
        return rc;
    *exists = v != NULL;
    *row = v ? atoll(v) : 0;
    free(v);
    return 0;
}

int fp_flushstate_init_nextrow(fp_flushstate *s, const char *target, long long row, fp_error *err)
{
    char v[24];
    snprintf(v, sizeof v, "%lld", row);
    return command_ok(s, err, 4, (const char *[]){"HSETNX", s->keys[K_POSITIONS], target, v});
}

void fp_flush_batch_clear(fp_flush_batch *b)
{
    cJSON_Delete(b->ids);
    free(b->spreadsheet);
    free(b->sheet);
    b->ids = NULL;
    b->spreadsheet = b->sheet = NULL;
}

int fp_flushstate_header(fp_flushstate *s, const char *target, char **header, fp_error *err)
{
    return hget(s, K_HEADERS, target, header, err);
}

int fp_flushstate_set_header(fp_flushstate *s, const char *target, const char *header, fp_error *err)
{
    return command_ok(s, err, 4, (const char *[]){"HSET", s->keys[K_HEADERS], target, header});
}

int fp_flushstate_spreadsheet(fp_flushstate *s, char **id, fp_error *err)
{
    redisReply *rep;
    int rc = command(s, &rep, err, 2, (const char *[]){"GET", s->keys[K_SPREADSHEET]});
    if (rc)
        return rc;
    rc = dup_field(rep, id, err);
    freeReplyObject(rep);
    return rc;
}

int fp_flushstate_set_spreadsheet(fp_flushstate *s, const char *id, fp_error *err)
{
    return command_ok(s, err, 3, (const char *[]){"SET", s->keys[K_SPREADSHEET], id});
}

int fp_flushstate_set_lastflush(fp_flushstate *s, const fp_flush_outcome *o, fp_error *err)
{
    char n[8][24];
    snprintf(n[0], sizeof n[0], "%lld", o->finished_ms);
    snprintf(n[1], sizeof n[1], "%lld", o->rows);
    snprintf(n[2], sizeof n[2], "%lld", o->rows_left);
    snprintf(n[3], sizeof n[3], "%lld", o->oldest_left_ms);
    snprintf(n[4], sizeof n[4], "%d", o->exit_status);
    snprintf(n[5], sizeof n[5], "%ld", o->throttled);
    snprintf(n[6], sizeof n[6], "%lld", o->quota_wait_ms);
    snprintf(n[7], sizeof n[7], "%d", o->spreadsheets_full ? 1 : 0);
    const char *argv[] = {"HSET", s->keys[K_LASTFLUSH], "finished_ms", n[0], "rows", n[1], "rows_left", n[2],
                          "oldest_left_ms", n[3], "exit", n[4], "error", o->error ? o->error : "",
                          "throttled", n[5], "quota_wait_ms", n[6], "spreadsheets_full", n[7],
                          "spreadsheet", o->spreadsheet ? o->spreadsheet : ""};
    return command_ok(s, err, (int)(sizeof argv / sizeof argv[0]), argv);
}
