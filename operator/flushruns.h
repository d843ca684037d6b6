/* flushruns.h — what the last flush runs of one pipeline did, read from their pods. A
 * flush pod ends with its summary as the container's termination message (JSON:
 * rows, rows_left, error, ...; formpipe-flush --termination-log) and an exit status
 * (0 done, 75 retryable, 1 needs a person). The record keeps the newest runs by finish
 * time, so it outlives the pods the CronJob's history limits delete, and it does not
 * depend on the order in which pods are seen. */
#ifndef OP_FLUSHRUNS_H
#define OP_FLUSHRUNS_H

#include <cjson/cJSON.h>

#include "rfc3339.h"

#define OP_FLUSHRUNS_KEPT 10

typedef struct op_flush_run {
    char pod[254];
    long long finished_ms;
    char finished[FP_RFC3339_MAX];
    int exit_code;
    long long rows, rows_left;   /* -1: the pod left no summary */
    long long oldest_left_ms;    /* received-at of the oldest row left; -1: none or unknown */
    long long quota_wait_ms;     /* time spent waiting for the Sheets quota; -1: unknown */
    long long throttled;         /* answers 429 from Sheets; -1: unknown */
    int spreadsheets_full;       /* every spreadsheet of the list was at the cell limit */
    char error[256];
} op_flush_run;

typedef struct op_flushruns {
    op_flush_run run[OP_FLUSHRUNS_KEPT];   /* newest first */
    int n;
    long long rows_total;                  /* rows of every run recorded, also those no longer kept */
} op_flushruns;

/* What the newest runs say, for status and conditions. */
typedef struct op_flush_facts {
    int runs;                              /* runs recorded */
    int failures_in_a_row;                 /* newest runs that failed, up to the first success */
    char last_success[FP_RFC3339_MAX];     /* "" when none recorded */
    long long last_rows;                   /* rows the newest run wrote; -1: unknown */
    long long rows_waiting;                /* rows the newest run left buffered; -1: unknown */
    long long oldest_waiting_ms;           /* received-at of the oldest of them; -1: none/unknown */
    long long quota_wait_ms, throttled;    /* the newest run's quota waits and 429s; -1: unknown */
    int last_exit;                         /* exit status of the newest run */
    int spreadsheets_full;                 /* the newest run found every spreadsheet full */
    char last_error[256];                  /* the newest failed run's error line */
} op_flush_facts;

/* 1 when the pod's container has terminated (a run that may be recorded). */
int op_flushruns_finished(const cJSON *pod);

/* Records a flush pod if it has terminated (its rows count once in rows_total) (a run that found the lock taken is no
 * outcome and is not recorded) (a pod seen again is updated, not added).
 * Returns 1 when the record changed, 0 when not (running pod, nothing new, or older than
 * every kept run). */
int op_flushruns_record(op_flushruns *r, const cJSON *pod);

/* Summarises the record into *out. */
void op_flushruns_facts(const op_flushruns *r, op_flush_facts *out);

#endif
