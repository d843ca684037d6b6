/* flusher.h — one run of formpipe-flush: take the pipeline's lock, finish an
 * interrupted batch if there is one (in the spreadsheet and tab it was recorded for),
 * then move the oldest buffered rows to the sheet in batches written to explicit
 * ranges, until the buffer is empty or time is up. Every crash point is repaired by the
 * next run: a batch is recorded in Redis before it is written, and removed from the
 * buffer only after the write succeeded. The write position is kept per target
 * (spreadsheet + tab); near a spreadsheet's cell limit the run moves on to the next
 * spreadsheet of the list; a batch Sheets keeps refusing goes to the dead letters. */
#ifndef FP_FLUSHER_H
#define FP_FLUSHER_H

#include <stddef.h>

#include "budget.h"
#include "error.h"
#include "form.h"
#include "gauth.h"
#include "redis.h"
#include "sheets.h"

/* The write budget's window: N writes per 61 s (see fp_flusher_budget_init). */
#define FP_FLUSHER_BUDGET_WINDOW_MS 61000

typedef struct fp_flusher_config {
    const char *form_path;
    const char *credentials_file;
    const char *token_url;          /* "" = the key file's token_uri */
    const char *api_base;
    int allow_http;                 /* fp_sheets_config.allow_http (--sheets-allow-http) */
    const char *const *spreadsheet_ids;   /* filled in this order */
    size_t nspreadsheets;
    const char *sheet;
    const char *redis_sentinels;
    const char *redis_master;
    const char *redis_password;     /* may be NULL */
    long redis_connect_timeout_ms;
    long redis_command_timeout_ms;
    fp_redis_tls redis_tls;         /* zeroed: plain TCP */
    int min_replicas_ack;
    long wait_timeout_ms;
    int batch_rows;
    long max_run_ms;
    long lock_ttl_ms;
    int max_attempts;
    long backoff_initial_ms;
    long backoff_max_ms;
    int writes_per_minute;
    long http_timeout_ms;
    size_t max_request_bytes;       /* largest values.batchUpdate body */
    int dead_letter_after;          /* refusals of one batch before its rows are dead-lettered */
    long long cell_limit;           /* cells per spreadsheet (Google: 10,000,000) */
} fp_flusher_config;

typedef struct fp_flush_summary {
    long long rows;          /* rows written and removed from the buffer */
    long long batches;
    long long redone;        /* interrupted batches finished */
    long write_calls;        /* Sheets write requests */
    long api_calls;          /* all Sheets API requests */
    long retries;            /* of those, retries after 429/5xx/network errors */
    long throttled;          /* answers 429: Google's quota refused a call */
    long long quota_wait_ms; /* time spent waiting for the quota (pacing, after 429) */
    long long duration_ms;
    int quota_spent;         /* stopped early: the minute's write quota was used up */
    long long pending_left;  /* rows still buffered at the end, also after a failure; -1: unknown */
    long long oldest_left_ms;/* when the oldest of those was received (epoch ms); -1: none or unknown */
    int lock_busy;           /* another run held the lock: nothing done */
    long long dead_lettered; /* rows moved to fp:{P}:dead after Sheets refused them */
    int spreadsheets_full;   /* every spreadsheet of the list is at the cell limit */
    char spreadsheet[256];   /* the spreadsheet being filled at the end */
} fp_flush_summary;

/* What a turn borrows instead of making its own (shared mode: one Redis connection for
 * every pipeline, one Sheets client per service account). */
typedef struct fp_flusher_env {
    const fp_form *form;
    fp_gauth *auth;
    fp_sheets *sheets;
    fp_redis *redis;
} fp_flusher_env;

typedef struct fp_flusher_limits {
    long long deadline_ms;   /* monotonic (fp_clock_mono_ms): no new step after it */
    long long max_rows;      /* stop once this many rows were written; batches no bigger (0: no limit) */
    int stop_at_quota;       /* stop when this process's own minute quota is spent */
} fp_flusher_limits;

/* One pipeline's turn on borrowed resources: the whole per-pipeline protocol (its
 * lock, the interrupted batch, then batches) within the limits; the lock is released at
 * the end. *sum counts this turn only. Returns as fp_flusher_run. cfg's form_path,
 * credentials and Redis settings are not used (env has them). */
int fp_flusher_turn(const fp_flusher_config *cfg, const fp_flusher_env *env, const fp_flusher_limits *lim,
                    fp_flush_summary *sum, fp_error *err);

/* The exit status a run's result stands for: 0, 75 (FP_EIO/FP_ETIMEOUT: retry later)
 * or 1 (a person must act). */
int fp_flusher_exit_status(int rc);

/* The write budget of a Google service account, shared in Redis by every flush run of
 * that account (key fp:sheets-budget:{<client_email>}): writes_per_minute writes per
 * FP_FLUSHER_BUDGET_WINDOW_MS, evenly spaced. */
int fp_flusher_budget_init(fp_budget *b, fp_redis *redis, const char *client_email, int writes_per_minute,
                           fp_error *err);

/* Writes a pipeline's outcome of a run into fp:{P}:lastflush (flushstate.h). */
int fp_flusher_record(fp_redis *redis, const fp_form *form, const fp_flush_summary *sum, int exit_status,
                      const char *error, fp_error *err);

/* Runs once (dedicated mode: one pipeline, every write through the account's budget)
 * and records the outcome in fp:{P}:lastflush unless another run held the lock.
 * Returns 0 (also when another run holds the lock) or a negative FP_E*
 * with *err holding one line a person can act on: FP_EIO / FP_ETIMEOUT are worth
 * retrying later (the rows stay buffered); FP_ELIMIT with sum->spreadsheets_full set
 * means every spreadsheet is full (a new one must be added); the others need a person. */
int fp_flusher_run(const fp_flusher_config *cfg, fp_flush_summary *sum, fp_error *err);

#endif
