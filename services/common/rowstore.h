/* rowstore.h — the per-pipeline row store in Redis (the buffer) between the consumer and the flusher.
 * Keys (P = "{<namespace>/<name>}", one hash slot per pipeline):
 *   fp:P:pending  ZSET id -> received-at ms     fp:P:rows     HASH id -> row JSON
 *   fp:P:flushed  ZSET id -> flushed-at ms (dedup window)
 * A row is a JSON array: [id, received_at, value of each form field in column order].
 * Column order is decided here and nowhere else. */
#ifndef FP_ROWSTORE_H
#define FP_ROWSTORE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "event.h"
#include "redis.h"

/* Largest row JSON accepted (Sheets allows 50,000 characters per cell). */
#define FP_ROWSTORE_MAX_ROW (4 * 1024 * 1024)

typedef struct fp_rowstore fp_rowstore;

typedef struct fp_rowstore_row {
    const char *id;          /* submission id */
    long long received_ms;   /* score: submission time in ms since the epoch */
    const char *row;         /* row JSON from fp_rowstore_row_append */
} fp_rowstore_row;

/* Appends the row of one event to out: [id, time, value of columns[0], ...], values
 * as the event wrote them. A missing or null value becomes "". Returns 0, or (out
 * unchanged) FP_EINVAL with *err when a value is an object or array, FP_ELIMIT when
 * the row alone exceeds FP_ROWSTORE_MAX_ROW or out's cap, FP_ENOMEM. *matched (if not
 * NULL) is how many columns had a value: fewer than ev->nfields means data holds a
 * field that is no column (or one twice). */
int fp_rowstore_row_append(fp_buf *out, const fp_event *ev, const char *const *columns, size_t ncolumns,
                         size_t *matched, fp_error *err);

/* Writes the key "fp:{<namespace>/<name>}:<suffix>" into out. FP_ELIMIT if too long. */
int fp_rowstore_key(char *out, size_t outsz, const char *ns, const char *name, const char *suffix);

/* A buffer for one pipeline on the given connection (borrowed: it must outlive the
 * buffer). NULL with *err on bad names or no memory. */
fp_rowstore *fp_rowstore_new(fp_redis *redis, const char *ns, const char *name, fp_error *err);
void fp_rowstore_free(fp_rowstore *b);   /* NULL is fine */

/* Inserts rows in one Lua script run: each id is added unless it is already pending or
 * inside the flushed window (so redelivery is harmless). Sets *inserted to the number
 * added. The script is called by SHA and loaded on -NOSCRIPT. Returns 0, FP_EIO when
 * the master is unreachable or moved (retry later), or FP_EINVAL for a script error. */
int fp_rowstore_insert(fp_rowstore *b, const fp_rowstore_row *rows, size_t n, long long *inserted,
                     fp_error *err);

/* The same insert, followed by WAIT replicas (when replicas > 0), sent without
 * waiting for the answers so the caller can prepare the next batch meanwhile. Exactly
 * one fp_rowstore_insert_finish must follow; until then every other call on this buffer
 * is refused (FP_EINVAL). A failure after anything was queued drops the connection. */
int fp_rowstore_insert_start(fp_rowstore *b, const fp_rowstore_row *rows, size_t n, int replicas,
                           long wait_ms, fp_error *err);

/* Reads the answers of fp_rowstore_insert_start. 0 when inserted and enough replicas
 * acknowledged; FP_ETIMEOUT when WAIT fell short; FP_EIO on connection trouble (also
 * when the connection was replaced since the start); FP_EINVAL for a script error
 * (including -NOSCRIPT) or when nothing is in flight: retry with fp_rowstore_insert. */
int fp_rowstore_insert_finish(fp_rowstore *b, long long *inserted, long long *acked, fp_error *err);

/* fp_redis_wait on the buffer's connection, refused (FP_EINVAL) while a pipelined
 * insert is in flight. */
int fp_rowstore_wait(fp_rowstore *b, int replicas, long timeout_ms, long long *acked, fp_error *err);

/* Number of pending rows. */
int fp_rowstore_pending(fp_rowstore *b, long long *count, fp_error *err);

/* When the oldest pending row was received (ms since the epoch) into *received_ms;
 * -1 when nothing is pending. */
int fp_rowstore_oldest_ms(fp_rowstore *b, long long *received_ms, fp_error *err);

/* Rows read from the buffer. The texts are borrowed from the Redis replies this holds
 * (and, for fp_rowstore_rows, from the caller's ids); fp_rowstore_rowset_clear frees them. */
typedef struct fp_rowstore_rowset {
    size_t n;
    const char **ids;          /* submission ids, in order */
    long long *received_ms;    /* their scores (fp_rowstore_oldest only; else 0) */
    const char **rows;         /* each row's JSON text (a JSON array), NUL-terminated */
    size_t *lens;              /* their lengths */
    redisReply *id_reply;      /* owned: ZRANGE answer (fp_rowstore_oldest) */
    redisReply *row_reply;     /* owned: HMGET answer */
} fp_rowstore_rowset;

/* The oldest n pending rows, in submission-time order, into *out (empty when nothing
 * is pending). FP_ENOTFOUND when a pending id has no row, FP_EINVAL when a row is not
 * a JSON array. */
int fp_rowstore_oldest(fp_rowstore *b, size_t n, fp_rowstore_rowset *out, fp_error *err);

/* The rows of the given ids (a JSON array of strings, which must outlive *out), in
 * the same order. Same failures as fp_rowstore_oldest. */
int fp_rowstore_rows(fp_rowstore *b, const cJSON *ids, fp_rowstore_rowset *out, fp_error *err);

void fp_rowstore_rowset_clear(fp_rowstore_rowset *rs);   /* leaves an empty set */

/* Removes ids flushed before cutoff_ms from the dedup window; *removed is the count. */
int fp_rowstore_trim_flushed(fp_rowstore *b, long long cutoff_ms, long long *removed, fp_error *err);

#endif
