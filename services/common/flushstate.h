/* flushstate.h — the flusher's side of the Redis buffer (one pipeline P):
 *   fp:P:lock     STR  lock token (SET NX PX, renewed while the flusher works)
 *   fp:P:batch    HASH the in-flight batch: start row, ids (JSON array), token
 *   fp:P:nextrow  INT  first sheet row not yet written
 * Recording and finishing a batch check the lock token inside the script, so a
 * flusher that lost its lock can never change the buffer. */
#ifndef FP_FLUSHSTATE_H
#define FP_FLUSHSTATE_H

#include <cjson/cJSON.h>

#include "error.h"
#include "redis.h"

/* Returned when the lock is not (or no longer) held by this token. */
#define FP_ELOCKLOST FP_EPERM

typedef struct fp_flushstate fp_flushstate;

typedef struct fp_flush_batch {
    long long start_row;   /* first sheet row of the batch */
    cJSON *ids;            /* array of id strings, in row order; owned */
} fp_flush_batch;

fp_flushstate *fp_flushstate_new(fp_redis *redis, const char *ns, const char *name, fp_error *err);
void fp_flushstate_free(fp_flushstate *s);   /* NULL is fine */

/* Tries to take the lock for ttl_ms. *acquired is 1 when this token now holds it. */
int fp_flushstate_lock(fp_flushstate *s, const char *token, long ttl_ms, int *acquired, fp_error *err);

/* Extends the lock; FP_ELOCKLOST when another token holds it (or nobody). */
int fp_flushstate_renew(fp_flushstate *s, const char *token, long ttl_ms, fp_error *err);

/* Releases the lock if this token holds it (else does nothing). */
int fp_flushstate_unlock(fp_flushstate *s, const char *token, fp_error *err);

/* Reads the in-flight batch; *exists is 0 when there is none. Clear with
 * fp_flush_batch_clear. */
int fp_flushstate_batch(fp_flushstate *s, fp_flush_batch *out, int *exists, fp_error *err);

/* Records a new in-flight batch (ids: array of strings) under the lock. */
int fp_flushstate_record(fp_flushstate *s, const char *token, long long start_row,
                         const cJSON *ids, fp_error *err);

/* Finishes the in-flight batch under the lock in one script: removes its ids from
 * pending and rows, adds them to flushed at now_ms, sets nextrow to start + count and
 * deletes the batch. *count is the number of ids (0 when there was no batch). */
int fp_flushstate_finish(fp_flushstate *s, const char *token, long long now_ms, long long *count,
                         fp_error *err);

/* Reads nextrow; *exists is 0 when it was never set (first run). */
int fp_flushstate_nextrow(fp_flushstate *s, long long *row, int *exists, fp_error *err);

/* Sets nextrow only if it is not set yet (first run found the sheet's first empty row). */
int fp_flushstate_init_nextrow(fp_flushstate *s, long long row, fp_error *err);

/* The header row last written (its cells joined by the unit separator 0x1f), so a
 * form that gained a field gets its header rewritten once. *header is NULL when never
 * recorded; the caller frees it. */
int fp_flushstate_header(fp_flushstate *s, char **header, fp_error *err);
int fp_flushstate_set_header(fp_flushstate *s, const char *header, fp_error *err);

void fp_flush_batch_clear(fp_flush_batch *b);

#endif
