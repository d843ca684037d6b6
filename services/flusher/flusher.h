/* flusher.h — one run of formpipe-flush: take the pipeline's lock, finish an
 * interrupted batch if there is one, then move the oldest buffered rows to the sheet
 * in batches written to explicit ranges, until the buffer is empty or time is up.
 * Every crash point is repaired by the next run: a batch is recorded in Redis before
 * it is written, and removed from the buffer only after the write succeeded. */
#ifndef FP_FLUSHER_H
#define FP_FLUSHER_H

#include "error.h"

typedef struct fp_flusher_config {
    const char *form_path;
    const char *credentials_file;
    const char *token_url;          /* "" = the key file's token_uri */
    const char *api_base;
    const char *spreadsheet_id;
    const char *sheet;
    const char *redis_sentinels;
    const char *redis_master;
    const char *redis_password;     /* may be NULL */
    long redis_connect_timeout_ms;
    long redis_command_timeout_ms;
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
} fp_flusher_config;

typedef struct fp_flush_summary {
    long long rows;          /* rows written and removed from the buffer */
    long long batches;
    long long redone;        /* interrupted batches finished */
    long write_calls;        /* Sheets write requests */
    long api_calls;          /* all Sheets API requests */
    long retries;            /* of those, retries after 429/5xx/network errors */
    long long duration_ms;
    int quota_spent;         /* stopped early: the minute's write quota was used up */
    long long pending_left;  /* rows still buffered at the end */
    int lock_busy;           /* another run held the lock: nothing done */
} fp_flush_summary;

/* Runs once. Returns 0 (also when another run holds the lock) or a negative FP_E*
 * with *err holding one line a person can act on: FP_EIO / FP_ETIMEOUT are worth
 * retrying later (the rows stay buffered), the others need a person. */
int fp_flusher_run(const fp_flusher_config *cfg, fp_flush_summary *sum, fp_error *err);

#endif
