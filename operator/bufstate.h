/* bufstate.h — what the Redis buffer says of a pipeline, read by the operator for
 * Shared pipelines (their flush runs in the namespace's CronJob, whose pods tell nothing
 * per pipeline): rows waiting and the oldest (fp:{P}:pending), a batch in flight
 * (fp:{P}:batch), and the last flush outcome formpipe-flush records (fp:{P}:lastflush).
 * One connection to the master the sentinels name (services/common/redis.h), shared by
 * the workers under a lock; short timeouts, so an unreachable Redis costs a reconcile
 * about a second, and every caller fails open. */
#ifndef OP_BUFSTATE_H
#define OP_BUFSTATE_H

#include <stddef.h>

#include "error.h"
#include "flushruns.h"
#include "redis.h"

typedef struct op_bufstate op_bufstate;

/* cfg is copied (fp_redis_new). NULL with *err. */
op_bufstate *op_bufstate_new(const fp_redis_config *cfg, fp_error *err);
void op_bufstate_free(op_bufstate *b);   /* NULL is fine */

/* fp:{P}:lastflush as formpipe-flush writes it at the end of a pipeline's part of a run. */
typedef struct op_lastflush {
    int present;                  /* 0: no run recorded yet */
    long long finished_ms, rows, rows_left, oldest_left_ms, quota_wait_ms, throttled;
    int exit_code;                /* 0 done, 75 retryable, 1 needs a person */
    int spreadsheets_full;
    char error[256];
    char spreadsheet[256];
} op_lastflush;

/* One pipeline's buffer. */
typedef struct op_buffer {
    long long pending;            /* ZCARD fp:{P}:pending */
    long long oldest_ms;          /* received-at of the oldest waiting row; -1: none */
    int batch;                    /* a flush batch is in flight */
    op_lastflush last;
} op_buffer;

/* Reads pipeline ns/name's buffer (one round trip). 0, or negative with *err. */
int op_bufstate_read(op_bufstate *b, const char *ns, const char *name, op_buffer *out, fp_error *err);

/* *waiting = 1 when any of the pipelines ns/names[i] has rows pending or a batch in
 * flight, else 0 (one round trip). 0, or negative with *err (then *waiting = 1). */
int op_bufstate_waiting(op_bufstate *b, const char *ns, const char *const *names, size_t n, int *waiting,
                        fp_error *err);

/* Reads an HGETALL reply's field/value pairs (kv[2i], kv[2i+1]) into *out; unknown
 * fields are ignored, missing numbers are -1. */
void op_bufstate_lastflush(const char *const *kv, size_t npairs, op_lastflush *out);

/* The runs seen of one pipeline through its lastflush record: consecutive failures are
 * counted when a new record (another finished_ms) arrives. */
typedef struct op_flush_history {
    long long seen_finished_ms;   /* 0: none seen */
    int failures_in_a_row;
    long long last_success_ms;    /* 0: none seen */
    int runs;
} op_flush_history;

/* Notes buf's lastflush in h and writes the facts status.h reads (rows waiting and the
 * oldest from pending, the rest from the record). */
void op_bufstate_facts(const op_buffer *buf, op_flush_history *h, op_flush_facts *out);

#endif
