/* rowstore.c — see rowstore.h. */
#include "rowstore.h"
#include "buf.h"
#include "jscan.h"
#include "script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FP_ROWSTORE_KEY_MAX 600

/* KEYS: pending, rows, flushed. ARGV: id, score, row, id, score, row, ...
 * Adds each id that is neither buffered nor in the flushed window (nor earlier in the
 * same batch) and returns how many were added. Works in bulk commands (ZMSCORE, HMGET,
 * HSET, ZADD in chunks) rather than per row: Redis spends its time on the data, not on
 * command dispatch. */
static const char insert_script[] =
    "local n = #ARGV / 3\n"
    "local CHUNK = 1000\n"
    "local added = 0\n"
    "local seen = {}\n"
    "for first = 1, n, CHUNK do\n"
    "  local last = math.min(n, first + CHUNK - 1)\n"
    "  local ids = {}\n"
    "  for i = first, last do ids[#ids + 1] = ARGV[3 * i - 2] end\n"
    "  local flushed = redis.call('ZMSCORE', KEYS[3], unpack(ids))\n"
    "  local present = redis.call('HMGET', KEYS[2], unpack(ids))\n"
    "  local hset, zadd = {}, {}\n"
    "  for k = 1, #ids do\n"
    "    local id = ids[k]\n"
    "    if not flushed[k] and not present[k] and not seen[id] then\n"
    "      seen[id] = true\n"
    "      local i = first + k - 1\n"
    "      hset[#hset + 1] = id\n"
    "      hset[#hset + 1] = ARGV[3 * i]\n"
    "      zadd[#zadd + 1] = ARGV[3 * i - 1]\n"
    "      zadd[#zadd + 1] = id\n"
    "    end\n"
    "  end\n"
    "  if #hset > 0 then\n"
    "    redis.call('HSET', KEYS[2], unpack(hset))\n"
    "    redis.call('ZADD', KEYS[1], unpack(zadd))\n"
    "    added = added + #hset / 2\n"
    "  end\n"
    "end\n"
    "return added\n";

struct fp_rowstore {
    fp_redis *redis;
    char pending[FP_ROWSTORE_KEY_MAX];
    char rows[FP_ROWSTORE_KEY_MAX];
    char flushed[FP_ROWSTORE_KEY_MAX];
    fp_script insert;
    /* The insert sent by fp_rowstore_insert_start whose answers are still to be read. */
    int in_flight;
    long flight_wait_ms;             /* its WAIT timeout; -1: no WAIT was sent */
    int flight_replicas;
    unsigned long flight_connection; /* fp_redis_discoveries when it was sent */
};

/* Refuses a command while a pipelined insert's answers are due: they would be read as
 * the command's. */
static int check_idle(const fp_rowstore *b, const char *what, fp_error *err)
{
    return b->in_flight ? fp_error_set(err, FP_EINVAL, "buffer %s: a pipelined insert is in flight", what) : 0;
}

int fp_rowstore_key(char *out, size_t outsz, const char *ns, const char *name, const char *suffix)
{
    int n = snprintf(out, outsz, "fp:{%s/%s}:%s", ns, name, suffix);
    return n < 0 || (size_t)n >= outsz ? FP_ELIMIT : 0;
}

fp_rowstore *fp_rowstore_new(fp_redis *redis, const char *ns, const char *name, fp_error *err)
{
    if (!ns || !*ns || !name || !*name || strpbrk(ns, "{}") || strpbrk(name, "{}")) {
        fp_error_set(err, FP_EINVAL, "buffer: namespace and name must be non-empty and brace-free");
        return NULL;
    }
    fp_rowstore *b = calloc(1, sizeof *b);
    if (!b) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    b->redis = redis;
    if (fp_rowstore_key(b->pending, sizeof b->pending, ns, name, "pending") ||
        fp_rowstore_key(b->rows, sizeof b->rows, ns, name, "rows") ||
        fp_rowstore_key(b->flushed, sizeof b->flushed, ns, name, "flushed")) {
        fp_error_set(err, FP_ELIMIT, "buffer: namespace/name too long for a key");
        free(b);
        return NULL;
    }
    fp_script_init(&b->insert, insert_script);
    return b;
}

void fp_rowstore_free(fp_rowstore *b) { free(b); }

/* Appends a value token as written: the scanner checked it is valid JSON (and valid
 * UTF-8), so a string's escapes and a number's digits are kept exactly. */
static int add_token(fp_buf *b, const fp_jscan_token *t)
{
    if (t->kind != FP_JSCAN_STRING)
        return fp_buf_add(b, t->text, t->len);
    return fp_buf_add(b, t->text - 1, t->len + 2);   /* with its quotes */
}

/* The field named col. Events list their fields in column order, so the field after
 * the previous match (*next) is tried first; a search is the fallback. */
static const fp_event_field *column_value(const fp_event *ev, const char *col, size_t *next)
{
    if (*next < ev->nfields && strcmp(ev->fields[*next].name, col) == 0)
        return &ev->fields[(*next)++];
    for (size_t i = 0; i < ev->nfields; i++) {
        if (strcmp(ev->fields[i].name, col) == 0) {
            *next = i + 1;
            return &ev->fields[i];
        }
    }
    return NULL;
}

int fp_rowstore_row_append(fp_buf *out, const fp_event *ev, const char *const *columns, size_t ncolumns,
                         size_t *matched, fp_error *err)
{
    size_t start = out->len, found = 0, next = 0;
    int rc = fp_buf_adds(out, "[");
    if (!rc)
        rc = fp_buf_add_json_string(out, ev->id, strlen(ev->id));
    if (!rc)
        rc = fp_buf_adds(out, ",");
    if (!rc)
        rc = fp_buf_add_json_string(out, ev->time, strlen(ev->time));
    for (size_t i = 0; i < ncolumns && !rc; i++) {
        const fp_event_field *f = column_value(ev, columns[i], &next);
        rc = fp_buf_adds(out, ",");
        if (rc)
            break;
        found += f != NULL;
        if (!f || f->value.kind == FP_JSCAN_NULL)
            rc = fp_buf_adds(out, "\"\"");
        else if (f->value.kind == FP_JSCAN_OBJECT || f->value.kind == FP_JSCAN_ARRAY)
            rc = fp_error_set(err, FP_EINVAL, "field '%s' is not a string, number or boolean", columns[i]);
        else
            rc = add_token(out, &f->value);
    }
    if (!rc)
        rc = fp_buf_adds(out, "]");
    if (!rc && out->len - start > FP_ROWSTORE_MAX_ROW)
        rc = FP_ELIMIT;
    if (matched)
        *matched = found;
    if (rc) {
        out->len = start;   /* the buffer is as it was */
        if (out->data)
            out->data[start] = '\0';
        if (rc != FP_EINVAL)   /* a bad value already set its message */
            fp_error_set(err, rc, rc == FP_ELIMIT ? "row is larger than %d bytes" : "out of memory building a row",
                         FP_ROWSTORE_MAX_ROW);
    }
    return rc;
}

/* The insert script's keys and arguments for rows; free the three arrays after use. */
typedef struct insert_args {
    int argc;
    const char **argv;
    size_t *lens;
    char (*scores)[24];
} insert_args;

static void insert_args_free(insert_args *a)
{
    free(a->argv);
    free(a->lens);
    free(a->scores);
}

static int insert_args_build(fp_rowstore *b, const fp_rowstore_row *rows, size_t n, insert_args *a, fp_error *err)
{
    a->argc = 3 + 3 * (int)n;
    a->argv = calloc((size_t)a->argc, sizeof *a->argv);
    a->lens = calloc((size_t)a->argc, sizeof *a->lens);
    a->scores = calloc(n, sizeof *a->scores);
    if (!a->argv || !a->lens || !a->scores) {
        insert_args_free(a);
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    a->argv[0] = b->pending;
    a->argv[1] = b->rows;
    a->argv[2] = b->flushed;
    for (size_t i = 0; i < n; i++) {
        snprintf(a->scores[i], sizeof a->scores[i], "%lld", rows[i].received_ms);
        a->argv[3 + 3 * i] = rows[i].id;
        a->argv[4 + 3 * i] = a->scores[i];
        a->argv[5 + 3 * i] = rows[i].row;
    }
    for (int i = 0; i < a->argc; i++)
        a->lens[i] = strlen(a->argv[i]);
    return 0;
}

/* Reads the script's answer (the number of ids added). */
static int insert_reply(redisReply *rep, long long *inserted, fp_error *err)
{
    if (rep->type != REDIS_REPLY_INTEGER)
        return fp_error_set(err, FP_EINVAL, "buffer insert: unexpected reply: %s",
                            rep->type == REDIS_REPLY_ERROR ? rep->str : "not an integer");
    *inserted = rep->integer;
    return 0;
}

int fp_rowstore_insert(fp_rowstore *b, const fp_rowstore_row *rows, size_t n, long long *inserted,
                     fp_error *err)
{
    insert_args a;
    redisReply *rep = NULL;
    *inserted = 0;
    int rc = check_idle(b, "insert", err);
    if (rc || n == 0)
        return rc;
    if ((rc = insert_args_build(b, rows, n, &a, err)))
        return rc;
    rc = fp_script_run(b->redis, &b->insert, 3, a.argc, a.argv, a.lens, &rep, err);
    if (!rc)
        rc = insert_reply(rep, inserted, err);
    freeReplyObject(rep);
    insert_args_free(&a);
    return rc;
}

int fp_rowstore_insert_start(fp_rowstore *b, const fp_rowstore_row *rows, size_t n, int replicas,
                           long wait_ms, fp_error *err)
{
    insert_args a;
    int rc = check_idle(b, "insert", err);
    if (rc || (rc = insert_args_build(b, rows, n, &a, err)))
        return rc;
    rc = fp_script_append(b->redis, &b->insert, 3, a.argc, a.argv, a.lens, err);
    insert_args_free(&a);
    if (!rc && replicas > 0)
        rc = fp_redis_append_wait(b->redis, replicas, wait_ms, err);
    if (!rc)
        rc = fp_redis_send(b->redis, err);
    if (rc)
        return rc;   /* a failure after anything was queued dropped the connection */
    b->in_flight = 1;
    b->flight_wait_ms = replicas > 0 ? wait_ms : -1;
    b->flight_replicas = replicas;
    b->flight_connection = fp_redis_discoveries(b->redis);
    return 0;
}

int fp_rowstore_insert_finish(fp_rowstore *b, long long *inserted, long long *acked, fp_error *err)
{
    redisReply *rep = NULL;
    *inserted = 0;
    *acked = 0;
    if (!b->in_flight)
        return fp_error_set(err, FP_EINVAL, "buffer insert: nothing in flight");
    b->in_flight = 0;
    if (b->flight_connection != fp_redis_discoveries(b->redis))
        return fp_error_set(err, FP_EIO, "buffer insert: the connection was replaced before the answer came");
    int rc = fp_redis_receive(b->redis, 0, &rep, err);
    if (rc)
        return rc;
    rc = insert_reply(rep, inserted, err);   /* -NOSCRIPT too: the caller retries with fp_rowstore_insert */
    freeReplyObject(rep);
    if (b->flight_wait_ms < 0)
        return rc;
    fp_error werr = {0};
    int wrc = fp_redis_receive_wait(b->redis, b->flight_replicas, b->flight_wait_ms, acked, &werr);
    if (wrc == FP_EIO || (!rc && wrc)) {   /* the insert's own failure comes first */
        if (err)
            *err = werr;
        return wrc;
    }
    return rc;
}

/* Runs a command built from NULL-terminated string arguments; expects an integer. */
static int command_int(fp_rowstore *b, long long *out, fp_error *err, const char **argv)
{
    size_t lens[8];
    int argc = 0;
    while (argv[argc]) {
        lens[argc] = strlen(argv[argc]);
        argc++;
    }
    redisReply *rep;
    int rc = check_idle(b, argv[0], err);
    if (!rc)
        rc = fp_redis_command(b->redis, &rep, err, argc, argv, lens);
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

int fp_rowstore_wait(fp_rowstore *b, int replicas, long timeout_ms, long long *acked, fp_error *err)
{
    *acked = 0;
    int rc = check_idle(b, "WAIT", err);
    return rc ? rc : fp_redis_wait(b->redis, replicas, timeout_ms, acked, err);
}

int fp_rowstore_pending(fp_rowstore *b, long long *count, fp_error *err)
{
    return command_int(b, count, err, (const char *[]){"ZCARD", b->pending, NULL});
}

int fp_rowstore_oldest_ms(fp_rowstore *b, long long *received_ms, fp_error *err)
{
    const char *argv[] = {"ZRANGE", b->pending, "0", "0", "WITHSCORES"};
    size_t lens[5];
    for (int i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    redisReply *rep;
    int rc = check_idle(b, argv[0], err);
    if (!rc)
        rc = fp_redis_command(b->redis, &rep, err, 5, argv, lens);
    if (rc)
        return rc;
    *received_ms = -1;
    if (rep->type != REDIS_REPLY_ARRAY || (rep->elements != 0 && rep->elements != 2))
        rc = fp_error_set(err, FP_EINVAL, "ZRANGE: unexpected reply: %s",
                          rep->type == REDIS_REPLY_ERROR ? rep->str : "not a member and its score");
    else if (rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING)
        *received_ms = strtoll(rep->element[1]->str, NULL, 10);
    freeReplyObject(rep);
    return rc;
}

int fp_rowstore_trim_flushed(fp_rowstore *b, long long cutoff_ms, long long *removed, fp_error *err)
{
    char max[32];
    snprintf(max, sizeof max, "(%lld", cutoff_ms);
    return command_int(b, removed, err, (const char *[]){"ZREMRANGEBYSCORE", b->flushed, "-inf", max, NULL});
}

void fp_rowstore_rowset_clear(fp_rowstore_rowset *rs)
{
    free(rs->ids);
    free(rs->received_ms);
    free(rs->rows);
    free(rs->lens);
    freeReplyObject(rs->id_reply);
    freeReplyObject(rs->row_reply);
    memset(rs, 0, sizeof *rs);
}

/* Room for n rows in *rs (ids still to be filled by the caller). */
static int rowset_alloc(fp_rowstore_rowset *rs, size_t n, fp_error *err)
{
    rs->n = n;
    rs->ids = calloc(n ? n : 1, sizeof *rs->ids);
    rs->received_ms = calloc(n ? n : 1, sizeof *rs->received_ms);
    rs->rows = calloc(n ? n : 1, sizeof *rs->rows);
    rs->lens = calloc(n ? n : 1, sizeof *rs->lens);
    if (!rs->ids || !rs->received_ms || !rs->rows || !rs->lens)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    return 0;
}

/* 1 when text is exactly one JSON array (checked, nothing allocated). */
static int is_json_array(const char *text, size_t len)
{
    fp_jscan sc;
    fp_jscan_token t;
    fp_jscan_init(&sc, text, len);
    return fp_jscan_value(&sc, &t) == 0 && t.kind == FP_JSCAN_ARRAY && fp_jscan_finish(&sc) == 0;
}

/* The one way rows are read: HMGET the rows of rs->ids into rs (the texts stay in
 * the reply, which rs keeps). */
static int read_rows(fp_rowstore *b, fp_rowstore_rowset *rs, fp_error *err)
{
    const char **argv = calloc(rs->n + 2, sizeof *argv);
    size_t *lens = calloc(rs->n + 2, sizeof *lens);
    int rc = 0;
    if (!argv || !lens) {
        rc = fp_error_set(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    argv[0] = "HMGET";
    argv[1] = b->rows;
    memcpy(argv + 2, rs->ids, rs->n * sizeof *argv);
    for (size_t i = 0; i < rs->n + 2; i++)
        lens[i] = strlen(argv[i]);
    if ((rc = fp_redis_command(b->redis, &rs->row_reply, err, (int)rs->n + 2, argv, lens)))
        goto out;
    redisReply *rep = rs->row_reply;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != rs->n) {
        rc = fp_error_set(err, FP_EINVAL, "HMGET: unexpected reply");
        goto out;
    }
    for (size_t i = 0; i < rs->n && !rc; i++) {
        const redisReply *row = rep->element[i];
        if (row->type != REDIS_REPLY_STRING)
            rc = fp_error_set(err, FP_ENOTFOUND, "row of %s is missing from the buffer", rs->ids[i]);
        else if (!is_json_array(row->str, row->len))
            rc = fp_error_set(err, FP_EINVAL, "row of %s is not a JSON array", rs->ids[i]);
        rs->rows[i] = row->str;
        rs->lens[i] = row->len;
    }
out:
    free(argv);
    free(lens);
    return rc;
}

int fp_rowstore_oldest(fp_rowstore *b, size_t n, fp_rowstore_rowset *out, fp_error *err)
{
    char stop[24];
    memset(out, 0, sizeof *out);
    int rc = check_idle(b, "oldest", err);
    if (rc || n == 0)
        return rc;
    snprintf(stop, sizeof stop, "%zu", n - 1);
    const char *zargv[] = {"ZRANGE", b->pending, "0", stop, "WITHSCORES"};
    const size_t zlens[] = {6, strlen(b->pending), 1, strlen(stop), 10};
    if ((rc = fp_redis_command(b->redis, &out->id_reply, err, 5, zargv, zlens)))
        return rc;
    const redisReply *ids = out->id_reply;
    if (ids->type != REDIS_REPLY_ARRAY || ids->elements % 2)
        rc = fp_error_set(err, FP_EINVAL, "ZRANGE: unexpected reply");
    else if (ids->elements > 0 && !(rc = rowset_alloc(out, ids->elements / 2, err))) {
        for (size_t i = 0; i < out->n; i++) {
            out->ids[i] = ids->element[2 * i]->str;
            out->received_ms[i] = atoll(ids->element[2 * i + 1]->str);
        }
        rc = read_rows(b, out, err);
    }
    if (rc)
        fp_rowstore_rowset_clear(out);
    return rc;
}

int fp_rowstore_rows(fp_rowstore *b, const cJSON *ids, fp_rowstore_rowset *out, fp_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = check_idle(b, "rows", err);
    if (!rc)
        rc = rowset_alloc(out, (size_t)cJSON_GetArraySize(ids), err);
    size_t i = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
        if (rc || !(out->ids[i++] = cJSON_GetStringValue(id))) {
            rc = rc ? rc : fp_error_set(err, FP_EINVAL, "ids must be strings");
            break;
        }
    }
    if (!rc && out->n)
        rc = read_rows(b, out, err);
    if (rc)
        fp_rowstore_rowset_clear(out);
    return rc;
}
