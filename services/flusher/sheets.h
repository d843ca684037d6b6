/* sheets.h — the few Google Sheets API calls the flusher needs, with retries:
 * truncated exponential backoff with jitter (1 s doubling to 32 s, bounded count) on
 * 408/429/500/502/503/504 and network errors, honouring Retry-After; other answers
 * fail at once with a message a person can act on: 403 FP_EPERM, 404 FP_ENOTFOUND,
 * any other refusal (400 ...) FP_EINVAL. Writes are paced to a per-minute quota and
 * each request body stays under a byte bound. Tab titles match case-insensitively
 * (ASCII), as Google's do. */
#ifndef FP_SHEETS_H
#define FP_SHEETS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "budget.h"
#include "buf.h"
#include "error.h"
#include "gauth.h"

typedef struct fp_sheets_config {
    const char *api_base;        /* "https://sheets.googleapis.com" */
    int allow_http;              /* plain http:// to a non-loopback api_base and token endpoint
                                    (an emulator in the cluster; never Google) */
    const char *spreadsheet_id;
    const char *sheet;           /* tab title */
    int max_attempts;            /* per call, including the first */
    long backoff_initial_ms;     /* 1000 */
    long backoff_max_ms;         /* 32000 */
    int writes_per_minute;       /* quota: 60 per user */
    long timeout_ms;             /* per HTTP request */
    size_t max_request_bytes;    /* largest values.batchUpdate body (one row may exceed it) */
    fp_budget *budget;           /* borrowed, may be NULL: every write request takes one unit
                                    of this budget first (the service account's, in Redis) */
    long budget_max_wait_ms;     /* longest wait for one unit, then FP_ETIMEOUT (0: 10 min) */
} fp_sheets_config;

/* One tab of a spreadsheet, from spreadsheets.get. */
typedef struct fp_sheets_tab {
    int sheet_id;
    long long rows, cols;   /* its grid */
    long long cells;        /* rows x columns summed over every tab of the spreadsheet */
    char title[256];        /* as the spreadsheet spells it */
} fp_sheets_tab;

typedef struct fp_sheets fp_sheets;

/* The largest one row may take as updateCells RowData (a row of fifty 50,000-character
 * cells, escaped, fits). */
#define FP_SHEETS_MAX_ROW_DATA ((size_t)16 << 20)

/* Borrows auth (must outlive the client). NULL with *err on ENOMEM. */
fp_sheets *fp_sheets_new(const fp_sheets_config *cfg, fp_gauth *auth, fp_error *err);
void fp_sheets_free(fp_sheets *s);

/* Points the client at another spreadsheet and tab (borrowed strings); counters and
 * write pacing carry on. */
void fp_sheets_set_target(fp_sheets *s, const char *spreadsheet_id, const char *sheet);

/* The tab's grid and the spreadsheet's cell count. FP_ENOTFOUND when the tab is missing. */
int fp_sheets_grid(fp_sheets *s, fp_sheets_tab *tab, fp_error *err);

/* Adds the tab (addSheet). */
int fp_sheets_add_sheet(fp_sheets *s, fp_error *err);

/* Grows the tab by n rows or, with columns set, n columns (appendDimension):
 * values.batchUpdate never grows the grid. */
int fp_sheets_append_dimension(fp_sheets *s, int sheet_id, int columns, long long n, fp_error *err);

/* The last row with anything in column A (0 for an empty tab). */
int fp_sheets_last_row(fp_sheets *s, long long *row, fp_error *err);

/* Writes n rows (rows[i]: one row's JSON array text, lens[i] long) with
 * valueInputOption=RAW to the explicit range starting at start_row, column A, ncols
 * wide, in as many values.batchUpdate requests as max_request_bytes needs (in row
 * order; each its own explicit range). Idempotent; after a failure any prefix of the
 * requests may have been applied. */
int fp_sheets_write(fp_sheets *s, long long start_row, int ncols, const char *const *rows, const size_t *lens,
                    size_t n, fp_error *err);

/* fp_sheets_write into a tab that first needs grow_rows more rows (0: none, the same as
 * fp_sheets_write): the growth and the first rows go in one spreadsheets.batchUpdate
 * (appendDimension, then updateCells of userEnteredValue: a string stays text, as RAW
 * keeps it), which Google applies all or nothing, so a new tab's first batch costs one
 * write of the quota, not two; the rows beyond max_request_bytes follow as
 * fp_sheets_write does. Idempotent but for the growth (a repeat adds rows again). */
int fp_sheets_write_growing(fp_sheets *s, int sheet_id, long long grow_rows, long long start_row, int ncols,
                            const char *const *rows, const size_t *lens, size_t n, fp_error *err);

/* Appends one row (a JSON array text of len bytes) as a RowData of updateCells:
 * {"values":[{"userEnteredValue":{"stringValue":...}},...]} (numbers numberValue,
 * booleans boolValue, null an empty cell). FP_EINVAL when it is no array of cells;
 * FP_ENOMEM or FP_ELIMIT from the buffer. */
int fp_sheets_row_data(fp_buf *b, const char *row, size_t len);

/* Clears the values of rows r1..r2, columns A..ncols (values.batchClear). */
int fp_sheets_clear(fp_sheets *s, long long r1, long long r2, int ncols, fp_error *err);

/* Write calls made so far (values.batchUpdate, batchUpdate); all HTTP calls to the
 * API; of those, retries. */
long fp_sheets_write_calls(const fp_sheets *s);
long fp_sheets_api_calls(const fp_sheets *s);
long fp_sheets_retries(const fp_sheets *s);

/* Answers 429 (Google's quota refused a call), and the time spent waiting for the
 * quota: waiting for the budget, pacing to writes_per_minute plus the backoff after
 * each 429. */
long fp_sheets_throttled(const fp_sheets *s);
long long fp_sheets_quota_wait_ms(const fp_sheets *s);

/* How many write calls the per-minute quota allows right now without waiting (this
 * process's own count; a shared budget is not consulted). */
int fp_sheets_writes_available(const fp_sheets *s);

/* Parses a spreadsheets.get answer: the tab titled sheet (any case) and the cells of
 * every tab. FP_ENOTFOUND when there is no such tab, FP_EINVAL when the answer is not one. */
int fp_sheets_parse_grid(const char *json, const char *sheet, fp_sheets_tab *tab, fp_error *err);

/* How rows (lens[i] bytes each) split into requests of at most max_bytes, each
 * carrying `overhead` bytes besides its rows and one separator per row: returns how
 * many of the first rows go into the first request (at least 1 when n > 0). */
size_t fp_sheets_part_rows(const size_t *lens, size_t n, size_t overhead, size_t max_bytes);

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
