/* bufstate.c — see bufstate.h. */
#include "bufstate.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rfc3339.h"
#include "rowstore.h"

struct op_bufstate {
    pthread_mutex_t lock;   /* one connection: one round trip at a time */
    fp_redis *redis;
};

op_bufstate *op_bufstate_new(const fp_redis_config *cfg, fp_error *err)
{
    op_bufstate *b = calloc(1, sizeof *b);
    if (!b) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    if (!(b->redis = fp_redis_new(cfg, err))) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

void op_bufstate_free(op_bufstate *b)
{
    if (!b)
        return;
    fp_redis_free(b->redis);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* Queues one command of up to 5 arguments (NULL-terminated). */
static int append(op_bufstate *b, fp_error *err, const char *a0, const char *a1, const char *a2, const char *a3,
                  const char *a4)
{
    const char *argv[5] = {a0, a1, a2, a3, a4};
    int argc = 0;
    while (argc < 5 && argv[argc])
        argc++;
    return fp_redis_append(b->redis, argc, argv, NULL, err);
}

/* Reads the next reply. An error reply is kept in *reply (so the replies after it are
 * still read in order) and makes *bad FP_EIO; an I/O failure (the connection is then
 * dropped, nothing stays queued) is returned. */
static int receive(op_bufstate *b, redisReply **reply, int *bad, fp_error *err)
{
    int rc = fp_redis_receive(b->redis, 0, reply, err);
    if (rc == 0 && (*reply)->type == REDIS_REPLY_ERROR && *bad == 0)
        *bad = fp_error_set(err, FP_EIO, "redis: %.200s", (*reply)->str);
    return rc;
}

static long long int_of(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return -1;
}

int op_bufstate_read(op_bufstate *b, const char *ns, const char *name, op_buffer *out, fp_error *err)
{
    char pending[512], batch[512], last[512];
    memset(out, 0, sizeof *out);
    out->oldest_ms = -1;
    if (fp_rowstore_key(pending, sizeof pending, ns, name, "pending") < 0 ||
        fp_rowstore_key(batch, sizeof batch, ns, name, "batch") < 0 ||
        fp_rowstore_key(last, sizeof last, ns, name, "lastflush") < 0)
        return fp_error_set(err, FP_ELIMIT, "pipeline name too long for a key");
    redisReply *r[4] = {0};
    pthread_mutex_lock(&b->lock);
    int rc = 0, got = 0;
    if ((rc = append(b, err, "ZCARD", pending, NULL, NULL, NULL)) < 0 ||
        (rc = append(b, err, "ZRANGE", pending, "0", "0", "WITHSCORES")) < 0 ||
        (rc = append(b, err, "EXISTS", batch, NULL, NULL, NULL)) < 0 ||
        (rc = append(b, err, "HGETALL", last, NULL, NULL, NULL)) < 0 || (rc = fp_redis_send(b->redis, err)) < 0)
        goto out;
    int bad = 0;
    for (; got < 4; got++)
        if ((rc = receive(b, &r[got], &bad, err)) < 0)
            goto out;
    if ((rc = bad) < 0)
        goto out;
    out->pending = int_of(r[0]);
    if ((r[1]->type == REDIS_REPLY_ARRAY && r[1]->elements == 2) && r[1]->element[1]->str)
        out->oldest_ms = (long long)strtod(r[1]->element[1]->str, NULL);
    out->batch = int_of(r[2]) > 0;
    if (r[3]->type == REDIS_REPLY_ARRAY && r[3]->elements >= 2) {
        size_t n = r[3]->elements / 2;
        const char **kv = calloc(2 * n, sizeof *kv);
        if (!kv) {
            rc = fp_error_set(err, FP_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < 2 * n; i++)
            kv[i] = r[3]->element[i]->str ? r[3]->element[i]->str : "";
        op_bufstate_lastflush(kv, n, &out->last);
        free(kv);
    }
out:
    for (int i = 0; i < 4; i++)
        if (r[i])
            freeReplyObject(r[i]);
    pthread_mutex_unlock(&b->lock);
    return rc;
}

int op_bufstate_waiting(op_bufstate *b, const char *ns, const char *const *names, size_t n, int *waiting,
                        fp_error *err)
{
    *waiting = 1;
    int rc = 0, any = 0;
    size_t queued = 0, got = 0;
    pthread_mutex_lock(&b->lock);
    for (; queued < n; queued++) {
        char pending[512], batch[512];
        if (fp_rowstore_key(pending, sizeof pending, ns, names[queued], "pending") < 0 ||
            fp_rowstore_key(batch, sizeof batch, ns, names[queued], "batch") < 0) {
            rc = fp_error_set(err, FP_ELIMIT, "pipeline name too long for a key");
            break;
        }
        if ((rc = append(b, err, "ZCARD", pending, NULL, NULL, NULL)) < 0 ||
            (rc = append(b, err, "EXISTS", batch, NULL, NULL, NULL)) < 0)
            break;
    }
    if (queued > 0 && (rc == 0 || rc == FP_ELIMIT)) {
        int io = fp_redis_send(b->redis, err);
        if (io < 0)
            rc = io;
    }
    int bad = 0, sent = rc == 0 || rc == FP_ELIMIT;
    for (; sent && got < 2 * queued; got++) {
        redisReply *r = NULL;
        int io = receive(b, &r, &bad, err);
        if (io < 0) {
            rc = io;
            break;
        }
        any = any || (r->type != REDIS_REPLY_ERROR && int_of(r) > 0);
        freeReplyObject(r);
    }
    if (rc == 0)
        rc = bad;
    pthread_mutex_unlock(&b->lock);
    if (rc == 0)
        *waiting = any;
    return rc;
}

void op_bufstate_lastflush(const char *const *kv, size_t npairs, op_lastflush *out)
{
    static const struct { const char *field; size_t at; } nums[] = {
        {"finished_ms", offsetof(op_lastflush, finished_ms)}, {"rows", offsetof(op_lastflush, rows)},
        {"rows_left", offsetof(op_lastflush, rows_left)}, {"oldest_left_ms", offsetof(op_lastflush, oldest_left_ms)},
        {"quota_wait_ms", offsetof(op_lastflush, quota_wait_ms)}, {"throttled", offsetof(op_lastflush, throttled)},
    };
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        *(long long *)((char *)out + nums[i].at) = -1;
    out->exit_code = -1;
    for (size_t p = 0; p < npairs; p++) {
        const char *k = kv[2 * p], *v = kv[2 * p + 1];
        out->present = 1;
        for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
            if (strcmp(k, nums[i].field) == 0)
                *(long long *)((char *)out + nums[i].at) = strtoll(v, NULL, 10);
        if (strcmp(k, "exit") == 0)
            out->exit_code = atoi(v);
        else if (strcmp(k, "spreadsheets_full") == 0)
            out->spreadsheets_full = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
        else if (strcmp(k, "error") == 0)
            snprintf(out->error, sizeof out->error, "%s", v);
        else if (strcmp(k, "spreadsheet") == 0)
            snprintf(out->spreadsheet, sizeof out->spreadsheet, "%s", v);
    }
}

void op_bufstate_facts(const op_buffer *buf, op_flush_history *h, op_flush_facts *out)
{
    const op_lastflush *l = &buf->last;
    if (l->present && l->finished_ms > 0 && l->finished_ms != h->seen_finished_ms) {
        h->seen_finished_ms = l->finished_ms;
        h->runs++;
        if (l->exit_code == 0) {
            h->failures_in_a_row = 0;
            h->last_success_ms = l->finished_ms;
        } else {
            h->failures_in_a_row++;
        }
    }
    memset(out, 0, sizeof *out);
    out->runs = l->present ? (h->runs > 0 ? h->runs : 1) : 0;
    out->failures_in_a_row = l->present && l->exit_code != 0 ? (h->failures_in_a_row > 0 ? h->failures_in_a_row : 1) : 0;
    if (l->present && l->exit_code == 0 && l->finished_ms > 0)
        fp_rfc3339_format_ms(l->finished_ms, out->last_success, sizeof out->last_success);
    else if (h->last_success_ms > 0)
        fp_rfc3339_format_ms(h->last_success_ms, out->last_success, sizeof out->last_success);
    out->last_rows = l->present ? l->rows : -1;
    out->rows_waiting = buf->pending;
    out->oldest_waiting_ms = buf->pending > 0 ? buf->oldest_ms : -1;
    out->quota_wait_ms = l->present ? l->quota_wait_ms : -1;
    out->throttled = l->present ? l->throttled : -1;
    out->last_exit = l->exit_code < 0 ? 0 : l->exit_code;
    out->spreadsheets_full = l->spreadsheets_full;
    if (out->failures_in_a_row > 0)
        snprintf(out->last_error, sizeof out->last_error, "%s", l->error);
}
