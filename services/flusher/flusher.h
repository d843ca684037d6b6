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

#include "error.h"

typedef struct fp_flusher_config {
    const char *form_path;
    const char *credentials_file;
    const char *token_url;          /* "" = the key file's token_uri */
    const char *api_base;
    const char *const *spreadsheet_ids;   /* filled in this order */
    size_t nspreadsheets;
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

/* Runs once. Returns 0 (also when another run holds the lock) or a negative FP_E*
 * with *err holding one line a person can act on: FP_EIO / FP_ETIMEOUT are worth
 * retrying later (the rows stay buffered); FP_ELIMIT with sum->spreadsheets_full set
 * means every spreadsheet is full (a new one must be added); the others need a person. */
int fp_flusher_run(const fp_flusher_config *cfg, fp_flush_summary *sum, fp_error *err);

#endif
