/* shared.h — one run of formpipe-flush in shared mode (--forms-dir): every pipeline
 * of a directory of compiled form files (the namespace's shared ConfigMap) that has
 * rows waiting is flushed, fairly:
 *   1. a cheap first pass asks Redis, pipelined, for each pipeline's pending count, its
 *      oldest waiting row and whether a batch is in flight; nothing waiting anywhere
 *      ends the run at once, before any credentials are read;
 *   2. rounds: every waiting pipeline gets one turn per round, the one whose oldest row
 *      waits longest first, each turn at most rows_per_turn rows (default: that
 *      pipeline's batchRows) through fp_flusher_turn — the same per-pipeline lock and
 *      exactly-once protocol as a dedicated run;
 *   3. every Sheets write of a service account takes a unit of that account's budget
 *      in Redis first (fp_flusher_budget_init), shared with every other run;
 *   4. each pipeline that had work gets its fp:{P}:lastflush record.
 * A pipeline's settings come from the "shared.sheets" object of its form file:
 * spreadsheetIds, sheet, batchRows, credentials ("<secret>/<key>" under the
 * credentials directory). */
#ifndef FP_SHARED_H
#define FP_SHARED_H

#include <cjson/cJSON.h>

#include "error.h"
#include "flusher.h"

typedef struct fp_shared_config {
    const char *forms_dir;
    const char *credentials_dir;
    fp_flusher_config base;   /* Redis, Sheets and protocol settings; the per-pipeline fields
                                 (form, credentials, spreadsheets, sheet, batch rows) unused */
    long long rows_per_turn;  /* 0: each pipeline's batchRows */
} fp_shared_config;

typedef struct fp_shared_summary {
    int pipelines;            /* form files read */
    int bad_forms;            /* form files that could not be read (logged, skipped) */
    int waiting;              /* pipelines with rows waiting at the start */
    int flushed;              /* of those, emptied by this run */
    int left_waiting;         /* rows still waiting at the end (time up, or another run's lock) */
    int retryable;            /* pipelines that ended with exit 75 */
    int failed;               /* pipelines that need a person (exit 1) */
    long long turns;
    long long rows;
    long write_calls;
    long throttled;
    long long quota_wait_ms;
    long long duration_ms;
    int exit_status;          /* 0, 75 (any retryable) or 1 (any needs a person) */
    char first_error[320];    /* "<namespace>/<name>: <message>" of the first failure, or "" */
} fp_shared_summary;

/* The per-pipeline settings of a form file's "shared.sheets" object, borrowed from
 * form (valid while it lives). FP_EINVAL with *err naming the missing or bad field;
 * a credentials path that is absolute or climbs out ("..") is refused. */
typedef struct fp_shared_sheets {
    const char *ids[16];
    size_t nids;
    const char *sheet;
    int batch_rows;
    const char *credentials;
} fp_shared_sheets;
int fp_shared_sheets_parse(const cJSON *form, fp_shared_sheets *out, fp_error *err);

/* Runs once. Returns 0 with sum->exit_status saying how the pipelines fared, or a
 * negative FP_E* when the run as a whole could not start (the directory cannot be
 * read: FP_EIO; Redis cannot be reached for the first pass: FP_EIO). */
int fp_shared_run(const fp_shared_config *cfg, fp_shared_summary *sum, fp_error *err);

#endif
