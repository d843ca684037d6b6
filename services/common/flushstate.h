/* flushstate.h — the flusher's side of the Redis buffer (one pipeline P):
 *   fp:P:lock         STR  lock token (SET NX PX, renewed while the flusher works)
 *   fp:P:batch        HASH the in-flight batch: start row, ids (JSON array), token, its
 *                          target (spreadsheet, sheet, key), failures and the last reason
 *   fp:P:positions    HASH target key -> first sheet row not yet written there
 *   fp:P:headers      HASH target key -> the header row last written there
 *   fp:P:spreadsheet  STR  the spreadsheet of the list now being filled
 *   fp:P:dead         HASH id -> {"reason","at","target","row"}: rows Sheets refused
 *   fp:P:lastflush    HASH the outcome of the last run's part for this pipeline (for the
 *                          operator): finished_ms, rows, rows_left, oldest_left_ms, exit
 *                          (0 | 75 | 1), error, throttled, quota_wait_ms,
 *                          spreadsheets_full (0 | 1), spreadsheet
 * A target is one tab of one spreadsheet: its key is "<spreadsheet id>/<tab title in
 * lower case>" (Google matches tab titles case-insensitively). The keys fp:P:nextrow
 * and fp:P:header of earlier versions (one position per pipeline) are moved to the
 * current target by fp_flushstate_migrate. Recording and finishing a batch check the
 * lock token inside the script, so a flusher that lost its lock can never change the
 * buffer. */
#ifndef FP_FLUSHSTATE_H
#define FP_FLUSHSTATE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"
#include "redis.h"

/* Returned when the lock is not (or no longer) held by this token. */
#define FP_ELOCKLOST FP_EPERM

/* Longest target key: a spreadsheet id and a tab title (Google: 100 characters). */
#define FP_FLUSH_TARGET_MAX 1024

typedef struct fp_flushstate fp_flushstate;

typedef struct fp_flush_batch {
    long long start_row;   /* first sheet row of the batch */
    cJSON *ids;            /* array of id strings, in row order; owned */
    char *spreadsheet;     /* its target; owned */
    char *sheet;           /* owned */
    long long failures;    /* times Sheets refused it (fp_flushstate_fail) */
} fp_flush_batch;

fp_flushstate *fp_flushstate_new(fp_redis *redis, const char *ns, const char *name, fp_error *err);
void fp_flushstate_free(fp_flushstate *s);   /* NULL is fine */

/* Writes the target key of a spreadsheet's tab into out. FP_ELIMIT if too long. */
int fp_flushstate_target_key(char *out, size_t outsz, const char *spreadsheet, const char *sheet);

/* Tries to take the lock for ttl_ms. *acquired is 1 when this token now holds it. */
int fp_flushstate_lock(fp_flushstate *s, const char *token, long ttl_ms, int *acquired, fp_error *err);

/* Extends the lock; FP_ELOCKLOST when another token holds it (or nobody). */
int fp_flushstate_renew(fp_flushstate *s, const char *token, long ttl_ms, fp_error *err);

/* Releases the lock if this token holds it (else does nothing). */
int fp_flushstate_unlock(fp_flushstate *s, const char *token, fp_error *err);

/* Moves an earlier version's per-pipeline position (nextrow, header) to the given
 * target unless that target has one, and gives a batch recorded without a target
 * this one. Idempotent; run before anything else reads positions. */
int fp_flushstate_migrate(fp_flushstate *s, const char *spreadsheet, const char *sheet, fp_error *err);

/* Reads the in-flight batch; *exists is 0 when there is none. Clear with
 * fp_flush_batch_clear. */
int fp_flushstate_batch(fp_flushstate *s, fp_flush_batch *out, int *exists, fp_error *err);

/* Records a new in-flight batch of n ids for a target, under the lock. */
int fp_flushstate_record(fp_flushstate *s, const char *token, const char *spreadsheet, const char *sheet,
                         long long start_row, const char *const *ids, size_t n, fp_error *err);

/* Finishes the in-flight batch under the lock in one script: removes its ids from
 * pending and rows, adds them to flushed at now_ms, sets its target's position to
 * start + count and deletes the batch. *count is the number of ids (0 when there was
 * no batch). */
int fp_flushstate_finish(fp_flushstate *s, const char *token, long long now_ms, long long *count,
                         fp_error *err);

/* Counts one refusal of the in-flight batch (and keeps its reason), under the lock.
 * *failures is the count so far (0 when there is no batch). */
int fp_flushstate_fail(fp_flushstate *s, const char *token, const char *reason, long long *failures,
                       fp_error *err);

/* Gives up on the in-flight batch under the lock in one script: each row moves from
 * rows to dead (with the last reason, now_ms and the target), its id leaves pending
 * and joins flushed (so a redelivery is not buffered again), the batch is deleted and
 * the target's position stays where it was. *count is the number of ids. */
int fp_flushstate_dead_letter(fp_flushstate *s, const char *token, long long now_ms, long long *count,
                              fp_error *err);

/* Drops the in-flight batch record under the lock, leaving its rows pending (the
 * caller has cleared whatever of its range was written). *count is its number of ids. */
int fp_flushstate_abandon(fp_flushstate *s, const char *token, long long *count, fp_error *err);

/* A target's position; *exists is 0 when it was never set (first run there). */
int fp_flushstate_nextrow(fp_flushstate *s, const char *target, long long *row, int *exists, fp_error *err);

/* Sets a target's position only if it is not set yet (the first empty row found). */
int fp_flushstate_init_nextrow(fp_flushstate *s, const char *target, long long row, fp_error *err);

/* The header row last written to a target (its cells joined by the unit separator
 * 0x1f), so a form that gained a field gets its header rewritten once. *header is
 * NULL when never recorded; the caller frees it. */
int fp_flushstate_header(fp_flushstate *s, const char *target, char **header, fp_error *err);
int fp_flushstate_set_header(fp_flushstate *s, const char *target, const char *header, fp_error *err);

/* The spreadsheet of the list now being filled (*id NULL when never set; caller
 * frees), and setting it when the flusher moves on to the next one. */
int fp_flushstate_spreadsheet(fp_flushstate *s, char **id, fp_error *err);
int fp_flushstate_set_spreadsheet(fp_flushstate *s, const char *id, fp_error *err);

/* One pipeline's outcome of a flush run, as fp:P:lastflush holds it. */
typedef struct fp_flush_outcome {
    long long finished_ms;     /* epoch ms */
    long long rows;            /* rows written by the run */
    long long rows_left;       /* still buffered (-1: unknown) */
    long long oldest_left_ms;  /* received-at of the oldest of those (-1: none or unknown) */
    int exit_status;           /* 0 done, 75 retry later, 1 a person must act */
    const char *error;         /* "" or one line saying what is wrong */
    long throttled;            /* answers 429 */
    long long quota_wait_ms;
    int spreadsheets_full;
    const char *spreadsheet;   /* the one being filled */
} fp_flush_outcome;

/* Replaces fp:P:lastflush with o (every field written). */
int fp_flushstate_set_lastflush(fp_flushstate *s, const fp_flush_outcome *o, fp_error *err);

void fp_flush_batch_clear(fp_flush_batch *b);

#endif
