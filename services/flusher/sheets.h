/* sheets.h — the few Google Sheets API calls the flusher needs, with retries:
 * truncated exponential backoff with jitter (1 s doubling to 32 s, bounded count) on
 * 429/500/502/503/504 and network errors, honouring Retry-After; 400/403/404 fail at
 * once with a message a person can act on. Writes are paced to a per-minute quota. */
#ifndef FP_SHEETS_H
#define FP_SHEETS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"
#include "gauth.h"

typedef struct fp_sheets_config {
    const char *api_base;        /* "https://sheets.googleapis.com" */
    const char *spreadsheet_id;
    const char *sheet;           /* tab title */
    int max_attempts;            /* per call, including the first */
    long backoff_initial_ms;     /* 1000 */
    long backoff_max_ms;         /* 32000 */
    int writes_per_minute;       /* quota: 60 per user */
    long timeout_ms;             /* per HTTP request */
} fp_sheets_config;

typedef struct fp_sheets fp_sheets;

/* Borrows auth (must outlive the client). NULL with *err on ENOMEM. */
fp_sheets *fp_sheets_new(const fp_sheets_config *cfg, fp_gauth *auth, fp_error *err);
void fp_sheets_free(fp_sheets *s);

/* The tab's grid: sheetId, rowCount, columnCount. FP_ENOTFOUND when the tab is missing. */
int fp_sheets_grid(fp_sheets *s, int *sheet_id, long long *rows, long long *cols, fp_error *err);

/* Adds the tab (addSheet). */
int fp_sheets_add_sheet(fp_sheets *s, fp_error *err);

/* Grows the tab by n rows (appendDimension): values.update never grows the grid. */
int fp_sheets_append_rows(fp_sheets *s, int sheet_id, long long n, fp_error *err);

/* The last row with anything in column A (0 for an empty tab). */
int fp_sheets_last_row(fp_sheets *s, long long *row, fp_error *err);

/* Writes rows (a JSON array of arrays) with valueInputOption=RAW to the explicit range
 * starting at start_row, column A, ncols wide (values.batchUpdate). Idempotent. */
int fp_sheets_write(fp_sheets *s, long long start_row, int ncols, const cJSON *rows, fp_error *err);

/* Write calls made so far (values.batchUpdate, batchUpdate); all HTTP calls to the
 * API; of those, retries. */
long fp_sheets_write_calls(const fp_sheets *s);
long fp_sheets_api_calls(const fp_sheets *s);
long fp_sheets_retries(const fp_sheets *s);

/* How many write calls the per-minute quota allows right now without waiting. */
int fp_sheets_writes_available(const fp_sheets *s);

/* Parses a spreadsheets.get answer: the sheetId and grid of the tab titled sheet.
 * FP_ENOTFOUND when there is no such tab, FP_EINVAL when the answer is not one. */
int fp_sheets_parse_grid(const char *json, const char *sheet, int *sheet_id, long long *rows,
                         long long *cols, fp_error *err);

/* The message of a Google error answer ({"error":{"message":...}}), else the start of
 * the body, into out. */
void fp_sheets_error_message(const char *body, char *out, size_t outsz);

/* "A", "Z", "AA", ... for a 1-based column. */
void fp_sheets_column(int col, char out[8]);

/* 'Sheet name'!A2:J10 (quotes doubled inside the name). FP_ELIMIT if out is small. */
int fp_sheets_a1(char *out, size_t outsz, const char *sheet, long long r1, int c1, long long r2, int c2);

/* The wait before retry number attempt (0-based): min(initial * 2^attempt, max) plus
 * up to one second of jitter from *seed, never above max. */
long fp_sheets_backoff_ms(int attempt, long initial_ms, long max_ms, unsigned *seed);

#endif
