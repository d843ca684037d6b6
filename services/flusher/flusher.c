/* flusher.c — see flusher.h. */
#include "flusher.h"
#include "buf.h"
#include "rowstore.h"
#include "clock.h"
#include "flushstate.h"
#include "form.h"
#include "gauth.h"
#include "log.h"
#include "redis.h"
#include "sheets.h"
#include "shutdown.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct run {
    const fp_flusher_config *cfg;
    const fp_form *form;
    fp_gauth *auth;
    fp_sheets *sheets;
    fp_redis *redis;
    fp_rowstore *buffer;
    fp_flushstate *state;
    char token[33];
    size_t current;                   /* index of the spreadsheet being filled */
    int ready;                        /* the current target is open and has its header */
    char spreadsheet[256];            /* the open tab's spreadsheet (a copy: a batch's is freed) */
    fp_sheets_tab tab;                /* the open tab (current target or a batch's) */
    char key[FP_FLUSH_TARGET_MAX];    /* its target key */
    int ncols;
    int full;                         /* the open spreadsheet has no room for the batch */
    int batch_limit;                  /* rows per new batch: halved while Sheets refuses batches */
    int retry_next_run;               /* a refused row waits for the next run (attempts spread over runs) */
    long long deadline;               /* monotonic ms: no new step after it */
    long long max_rows;               /* stop once this many rows were written (0: no limit) */
    int stop_at_quota;                /* stop when this process's minute quota is spent */
    int header_due;                   /* the open target's header goes out with its first batch (row 2) */
    fp_buf header_row, header_sig;    /* that header and its signature */
} run;

/* The pipeline on a log line: in shared mode one process flushes many. */
#define LOG_PIPELINE(r) FP_LSTR("namespace", (r)->form->ns), FP_LSTR("pipeline", (r)->form->name)

/* WAIT after a state change, so a failover can't forget it. */
static int replicate(run *r, fp_error *err)
{
    long long acked;
    if (r->cfg->min_replicas_ack <= 0)
        return 0;
    return fp_redis_wait(r->redis, r->cfg->min_replicas_ack, r->cfg->wait_timeout_ms, &acked, err);
}

/* Opens one tab of one spreadsheet (adding the tab when missing): its grid, the
 * spreadsheet's cells, and the target key. The client then addresses the tab by the
 * title the spreadsheet spells it with. */
static int open_tab(run *r, const char *spreadsheet, const char *sheet, fp_error *err)
{
    r->ready = 0;
    r->header_due = 0;
    if (strlen(spreadsheet) >= sizeof r->spreadsheet)
        return fp_error_set(err, FP_ELIMIT, "spreadsheet id '%.40s...' is too long", spreadsheet);
    memcpy(r->spreadsheet, spreadsheet, strlen(spreadsheet) + 1);
    spreadsheet = r->spreadsheet;
    fp_sheets_set_target(r->sheets, spreadsheet, sheet);
    int rc = fp_sheets_grid(r->sheets, &r->tab, err);
    if (rc == FP_ENOTFOUND) {
        fp_log_info("adding the sheet tab", FP_LSTR("spreadsheet", spreadsheet), FP_LSTR("sheet", sheet));
        if ((rc = fp_sheets_add_sheet(r->sheets, err)) == 0)
            rc = fp_sheets_grid(r->sheets, &r->tab, err);
    }
    if (rc)
        return rc;
    fp_sheets_set_target(r->sheets, spreadsheet, r->tab.title);
    if (fp_flushstate_target_key(r->key, sizeof r->key, spreadsheet, r->tab.title))
        return fp_error_set(err, FP_ELIMIT, "spreadsheet id and sheet name are too long");
    return 0;
}

/* The cells the spreadsheet would have with the open tab grown to rows x cols. */
static long long cells_with(const run *r, long long rows, long long cols)
{
    return r->tab.cells - r->tab.rows * r->tab.cols + rows * cols;
}

/* 1 when the tab can hold rows up to `end` and the form's columns within the cell limit. */
static int fits(const run *r, long long end)
{
    long long rows = end > r->tab.rows ? end : r->tab.rows;
    long long cols = r->ncols > r->tab.cols ? r->ncols : r->tab.cols;
    return cells_with(r, rows, cols) <= r->cfg->cell_limit;
}

/* Marks the open spreadsheet full: the caller moves on to the next one. */
static int spreadsheet_full(run *r, long long end, fp_error *err)
{
    r->full = 1;
    return fp_error_set(err, FP_ELIMIT, "spreadsheet %s: rows up to %lld would take it past %lld cells",
                        r->spreadsheet, end, r->cfg->cell_limit);
}

/* An appendDimension refused for the workbook's cell limit (Google counts cells we
 * may not see, e.g. tabs added meanwhile) is the spreadsheet being full too. */
static int grow(run *r, int columns, long long n, long long end, fp_error *err)
{
    int rc = fp_sheets_append_dimension(r->sheets, r->tab.sheet_id, columns, n, err);
    if (rc == FP_ELIMIT)   /* sheets.c: the workbook's cell limit */
        return spreadsheet_full(r, end, err);
    return rc;
}

/* Records that the tab got n more rows. */
static void grown(run *r, long long n)
{
    r->tab.cells += n * r->tab.cols;
    r->tab.rows += n;
}

/* Makes the grid hold the form's columns and rows up to `end`: values.batchUpdate never
 * grows it. Columns are added at once (appendDimension); the rows to add go into *rows
 * for the caller to send with its write (fp_sheets_write_growing: one request), or,
 * with rows NULL, are added at once too. Rows get a batch of slack, as far as the cell
 * limit allows, so the next batch usually needs no growth. */
static int ensure_grid(run *r, long long end, long long *rows, fp_error *err)
{
    if (rows)
        *rows = 0;
    if (end <= r->tab.rows && r->ncols <= r->tab.cols)
        return 0;
    int rc = fp_sheets_grid(r->sheets, &r->tab, err);   /* fresh numbers */
    if (rc || (end <= r->tab.rows && r->ncols <= r->tab.cols))
        return rc;
    if (!fits(r, end))
        return spreadsheet_full(r, end, err);
    if (r->ncols > r->tab.cols) {
        fp_log_info("adding columns for the form's fields", FP_LINT("columns", r->ncols - r->tab.cols),
                    FP_LSTR("sheet", r->tab.title));
        if ((rc = grow(r, 1, r->ncols - r->tab.cols, end, err)))
            return rc;
        r->tab.cells = cells_with(r, r->tab.rows, r->ncols);
        r->tab.cols = r->ncols;
    }
    if (end <= r->tab.rows)
        return 0;
    long long add = end - r->tab.rows + r->cfg->batch_rows;
    long long room = (r->cfg->cell_limit - r->tab.cells) / r->tab.cols;
    if (add > room)
        add = room;   /* fits() said at least end - rows */
    if (rows) {
        *rows = add;
        return 0;
    }
    if ((rc = grow(r, 0, add, end, err)))
        return rc;
    grown(r, add);
    return 0;
}

/* The header row (id, received_at, then the form's fields) as JSON, and its
 * signature (the cells joined by 0x1f). Every allocation is checked: an out-of-memory
 * fails, it never yields a short header. */
static int header_texts(const run *r, fp_buf *row, fp_buf *sig, fp_error *err)
{
    int bad = fp_buf_adds(row, "[\"id\",\"received_at\"") || fp_buf_adds(sig, "id\x1freceived_at");
    for (size_t i = 0; i < r->form->ncolumns && !bad; i++) {
        const char *col = r->form->columns[i];
        bad = fp_buf_adds(row, ",") || fp_buf_add_json_string(row, col, strlen(col)) ||
              fp_buf_printf(sig, "\x1f%s", col);
    }
    if (bad || fp_buf_adds(row, "]"))
        return fp_error_set(err, FP_ENOMEM, "out of memory building the header row");
    return 0;
}

/* Writes the header row when it differs from the one last written to this target (a
 * field was added): row 1 is an explicit range, so rewriting it is harmless. When
 * nothing is written yet (next_row 2) the header waits for the first batch and goes
 * out with it in one request (write_batch): a new pipeline's first flush then costs one
 * write less of the account's budget. With write unset, only records it: a tab that
 * already had rows keeps its row 1. */
static int refresh_header(run *r, int write, long long next_row, fp_error *err)
{
    fp_buf row, sig;
    char *stored = NULL;
    fp_buf_init(&row, 256 * 1024);
    fp_buf_init(&sig, 64 * 1024);
    int rc = header_texts(r, &row, &sig, err);
    if (rc || (rc = fp_flushstate_header(r->state, r->key, &stored, err)) ||
        (stored && strcmp(stored, sig.data) == 0))
        goto out;
    if (stored)
        fp_log_info("the form's fields changed: rewriting the header row", FP_LSTR("sheet", r->tab.title));
    if (write && next_row == 2) {
        fp_buf_free(&r->header_row);
        fp_buf_free(&r->header_sig);
        r->header_row = row;
        r->header_sig = sig;
        fp_buf_init(&row, 1);
        fp_buf_init(&sig, 1);
        r->header_due = 1;
        goto out;
    }
    const char *rows[] = {row.data};
    if (write && ((rc = ensure_grid(r, 1, NULL, err)) ||
                  (rc = fp_sheets_write(r->sheets, 1, r->ncols, rows, &row.len, 1, err))))
        goto out;
    rc = fp_flushstate_set_header(r->state, r->key, sig.data, err);
out:
    free(stored);
    fp_buf_free(&row);
    fp_buf_free(&sig);
    return rc;
}

/* Opens the current target. First time there: find the first empty row and never
 * overwrite what is there; an empty tab gets the header row. Every time: the header
 * follows the form's fields. */
static int open_current(run *r, fp_error *err)
{
    long long next, last;
    int exists, rc = open_tab(r, r->cfg->spreadsheet_ids[r->current], r->cfg->sheet, err);
    if (rc || (rc = fp_flushstate_nextrow(r->state, r->key, &next, &exists, err)))
        return rc;
    if (exists) {
        rc = refresh_header(r, 1, next, err);
    } else if (!(rc = fp_sheets_last_row(r->sheets, &last, err)) &&
               !(rc = refresh_header(r, last == 0, (last ? last : 1) + 1, err))) {
        if (!(rc = fp_flushstate_init_nextrow(r->state, r->key, (last ? last : 1) + 1, err)))
            rc = replicate(r, err);
    }
    r->ready = rc == 0;
    return rc;
}

/* Moves on to the next spreadsheet of the list (remembered in Redis, so later runs
 * start there); FP_ELIMIT with the error saying what to do when none is left. */
static int next_spreadsheet(run *r, fp_flush_summary *sum, fp_error *err)
{
    const fp_flusher_config *cfg = r->cfg;
    r->full = 0;
    r->ready = 0;
    if (r->current + 1 >= cfg->nspreadsheets) {
        sum->spreadsheets_full = 1;
        return fp_error_set(err, FP_ELIMIT,
                            "every spreadsheet is full (%lld cells per spreadsheet): create a new spreadsheet, "
                            "share it with %s and add its id to the pipeline's spreadsheets (--spreadsheet-id)",
                            cfg->cell_limit, fp_gauth_email(r->auth));
    }
    fp_log_warn("spreadsheet is near its cell limit: moving on to the next one", LOG_PIPELINE(r),
                FP_LSTR("full", cfg->spreadsheet_ids[r->current]),
                FP_LSTR("next", cfg->spreadsheet_ids[r->current + 1]), FP_LINT("cell_limit", cfg->cell_limit));
    r->current++;
    int rc = fp_flushstate_set_spreadsheet(r->state, cfg->spreadsheet_ids[r->current], err);
    return rc ? rc : replicate(r, err);
}

/* Clears the batch's rows start..start+n-1 as far as they lie in the grid (Google
 * refuses a range past it): a refused write that was to grow the grid applied nothing,
 * so nothing of it lies beyond. */
static int clear_in_grid(run *r, long long start, long long n, fp_error *err)
{
    long long last = start + n - 1 < r->tab.rows ? start + n - 1 : r->tab.rows;
    return start <= last ? fp_sheets_clear(r->sheets, start, last, r->ncols, err) : 0;
}

/* Sheets refused the batch (a 4xx that retrying does not change). A batch of several
 * rows is given up (its range cleared: earlier requests of it may have been applied;
 * its rows stay pending) and the next batches are half as big, until the refused row
 * is alone. A batch of one row is tried dead_letter_after times, counted in Redis
 * across runs, then its range is cleared and the row moves to the dead letters, so
 * the rows behind it go on. */
static int refused(run *r, long long start, long long n, fp_flush_summary *sum, fp_error *err)
{
    char reason[sizeof err->msg];
    long long failures, count;
    snprintf(reason, sizeof reason, "%s", err->msg);
    if (n > 1) {
        int rc = clear_in_grid(r, start, n, err);
        if (rc || (rc = fp_flushstate_abandon(r->state, r->token, &count, err)) || (rc = replicate(r, err)))
            return rc;
        r->batch_limit = (int)(n / 2);
        fp_log_warn("Sheets refused a batch: trying smaller ones to find the refused rows", LOG_PIPELINE(r),
                    FP_LSTR("reason", reason),
                    FP_LINT("first_row", start), FP_LINT("rows", n), FP_LINT("next_batch_rows", r->batch_limit));
        return fp_sheets_grid(r->sheets, &r->tab, err);   /* the grid may have changed under us */
    }
    int rc = fp_flushstate_fail(r->state, r->token, reason, &failures, err);
    if (rc)
        return rc;
    if (failures < r->cfg->dead_letter_after) {
        fp_log_warn("Sheets refused a row; the next run tries it again", LOG_PIPELINE(r), FP_LSTR("reason", reason),
                    FP_LINT("row", start), FP_LINT("attempt", failures),
                    FP_LINT("dead_letter_after", r->cfg->dead_letter_after));
        r->retry_next_run = 1;   /* not at once: a refusal that passes gets a minute to pass */
        return 0;
    }
    if ((rc = clear_in_grid(r, start, n, err)) ||
        (rc = fp_flushstate_dead_letter(r->state, r->token, fp_clock_wall_ms(), &count, err)) || (rc = replicate(r, err)))
        return rc;
    sum->dead_lettered += count;
    fp_log_warn("Sheets refused a row every time: it moved to the dead letters", LOG_PIPELINE(r),
                FP_LSTR("reason", reason),
                FP_LINT("rows", count), FP_LINT("attempts", failures), FP_LSTR("target", r->key));
    return 0;
}

/* The grid could not grow for a recorded batch (the spreadsheet is full): every
 * attempt stopped there, before writing, so the batch is dropped (what lies inside the
 * grid cleared anyway, should the grid have shrunk under us) and its rows stay
 * pending for the next spreadsheet. Returns FP_ELIMIT with r->full still set. */
static int give_back(run *r, long long start, long long n, fp_error *err)
{
    fp_error why = *err;
    long long count;
    int rc = clear_in_grid(r, start, n, err);
    if (rc || (rc = fp_flushstate_abandon(r->state, r->token, &count, err)) || (rc = replicate(r, err)))
        return rc;
    *err = why;
    return FP_ELIMIT;
}

/* Writes the header (row 1) and a batch starting at row 2 as one range (growing the
 * tab by grow_rows first, in the same request), then records the header as written. */
static int write_with_header(run *r, const fp_rowstore_rowset *rs, long long grow_rows, fp_error *err)
{
    const char **rows = malloc((rs->n + 1) * sizeof *rows);
    size_t *lens = malloc((rs->n + 1) * sizeof *lens);
    int rc = FP_ENOMEM;
    if (!rows || !lens) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    rows[0] = r->header_row.data;
    lens[0] = r->header_row.len;
    memcpy(rows + 1, rs->rows, rs->n * sizeof *rows);
    memcpy(lens + 1, rs->lens, rs->n * sizeof *lens);
    if (!(rc = fp_sheets_write_growing(r->sheets, r->tab.sheet_id, grow_rows, 1, r->ncols, rows, lens, rs->n + 1,
                                       err)) &&
        !(rc = fp_flushstate_set_header(r->state, r->key, r->header_sig.data, err)))
        r->header_due = 0;
out:
    free(rows);
    free(lens);
    return rc;
}

/* Writes one recorded batch (rows read from the buffer) to the open tab and finishes
 * it in Redis. */
static int write_batch(run *r, long long start, const fp_rowstore_rowset *rs, fp_flush_summary *sum, fp_error *err)
{
    long long n = (long long)rs->n, count = 0, add = 0;
    int rc = ensure_grid(r, start + n - 1, &add, err);
    if (!rc && r->header_due && start == 2)
        rc = write_with_header(r, rs, add, err);
    else if (!rc)
        rc = fp_sheets_write_growing(r->sheets, r->tab.sheet_id, add, start, r->ncols, rs->rows, rs->lens, rs->n, err);
    if (rc == FP_ELIMIT && add && !r->full)   /* the growth refused for the workbook's cell limit */
        spreadsheet_full(r, start + n - 1, err);
    if (rc == FP_ELIMIT && r->full)
        return give_back(r, start, n, err);
    if (!rc && add)
        grown(r, add);
    if (rc == FP_EINVAL)
        return refused(r, start, n, sum, err);
    if (!rc)
        rc = fp_flushstate_finish(r->state, r->token, fp_clock_wall_ms(), &count, err);
    if (!rc)
        rc = replicate(r, err);
    if (!rc) {
        sum->rows += count;
        sum->batches++;
        if (r->batch_limit < r->cfg->batch_rows)   /* past a refused row: grow back */
            r->batch_limit = r->batch_limit * 2 < r->cfg->batch_rows ? r->batch_limit * 2 : r->cfg->batch_rows;
        fp_log_info("batch written", LOG_PIPELINE(r), FP_LINT("first_row", start), FP_LINT("rows", count));
    }
    return rc;
}

/* A run died between recording and finishing: redo the batch, same rows, same range,
 * in the spreadsheet and tab it was recorded for. */
static int redo(run *r, fp_flush_batch *b, fp_flush_summary *sum, fp_error *err)
{
    char key[FP_FLUSH_TARGET_MAX];
    fp_rowstore_rowset rs;
    int rc = fp_flushstate_target_key(key, sizeof key, b->spreadsheet, b->sheet) ? FP_ELIMIT : 0;
    if (!rc && (!r->ready || strcmp(key, r->key) != 0)) {
        fp_log_info("the interrupted batch belongs to another target", FP_LSTR("spreadsheet", b->spreadsheet),
                    FP_LSTR("sheet", b->sheet));
        rc = open_tab(r, b->spreadsheet, b->sheet, err);   /* the current target is opened again after */
    }
    if (rc)
        return rc;
    fp_log_info("finishing an interrupted batch", LOG_PIPELINE(r), FP_LINT("first_row", b->start_row),
                FP_LINT("rows", cJSON_GetArraySize(b->ids)));
    if ((rc = fp_rowstore_rows(r->buffer, b->ids, &rs, err)))
        return rc;
    long long before = sum->batches;
    rc = write_batch(r, b->start_row, &rs, sum, err);
    sum->redone += sum->batches - before;
    fp_rowstore_rowset_clear(&rs);
    return rc;
}

/* Takes the oldest rows into a new batch recorded for the current target and writes
 * it; *done is set when the buffer is empty. A batch that would take the spreadsheet
 * past the cell limit is not recorded: the run moves on to the next spreadsheet. */
static int next_batch(run *r, fp_flush_summary *sum, int *done, fp_error *err)
{
    fp_rowstore_rowset rs;
    long long next;
    int exists;
    int rc = fp_flushstate_nextrow(r->state, r->key, &next, &exists, err);
    if (rc || (rc = fp_rowstore_oldest(r->buffer, (size_t)r->batch_limit, &rs, err)))
        return rc;
    *done = rs.n == 0;
    long long end = next + (long long)rs.n - 1;
    if (*done)
        goto out;
    if (!fits(r, end) && ((rc = fp_sheets_grid(r->sheets, &r->tab, err)) || !fits(r, end))) {
        rc = rc ? rc : next_spreadsheet(r, sum, err);
        goto out;
    }
    if ((rc = fp_flushstate_record(r->state, r->token, r->cfg->spreadsheet_ids[r->current], r->tab.title, next,
                                   rs.ids, rs.n, err)) ||
        (rc = replicate(r, err)))
        goto out;
    rc = write_batch(r, next, &rs, sum, err);
out:
    fp_rowstore_rowset_clear(&rs);
    return rc;
}

/* One step: open the current target, finish the interrupted batch, or record and
 * write the next one. *done is set when the buffer is empty. */
static int step(run *r, fp_flush_summary *sum, int *done, fp_error *err)
{
    fp_flush_batch inflight;
    int exists, rc;
    if ((rc = fp_flushstate_renew(r->state, r->token, r->cfg->lock_ttl_ms, err)) ||
        (rc = fp_flushstate_batch(r->state, &inflight, &exists, err)))
        return rc;
    if (exists) {
        rc = redo(r, &inflight, sum, err);
        int foreign = strcmp(inflight.spreadsheet, r->cfg->spreadsheet_ids[r->current]) != 0;
        fp_flush_batch_clear(&inflight);
        if (rc == FP_ELIMIT && r->full && foreign) {   /* its rows go to the current target */
            r->full = 0;
            rc = 0;
        }
    } else if (!r->ready)
        rc = open_current(r, err);
    else
        rc = next_batch(r, sum, done, err);
    if (rc == FP_ELIMIT && r->full)
        rc = next_spreadsheet(r, sum, err);
    return rc;
}

/* The spreadsheet to fill: the one a run moved on to, if it is still in the list,
 * else the first; earlier versions' per-pipeline position belongs to it. */
static int choose_spreadsheet(run *r, fp_error *err)
{
    char *stored = NULL;
    int rc = fp_flushstate_spreadsheet(r->state, &stored, err);
    for (size_t i = 0; !rc && stored && i < r->cfg->nspreadsheets; i++) {
        if (strcmp(stored, r->cfg->spreadsheet_ids[i]) == 0)
            r->current = i;
    }
    free(stored);
    if (!rc)
        rc = fp_flushstate_migrate(r->state, r->cfg->spreadsheet_ids[r->current], r->cfg->sheet, err);
    return rc;
}

/* Steps until the buffer is empty or time is up. Connection trouble (a Redis failover,
 * a Sheets outage outlasting the client's retries) is retried with backoff within the
 * run; the lock and the recorded batch make every retry safe. */
static int flush_loop(run *r, fp_flush_summary *sum, fp_error *err)
{
    long long deadline = r->deadline;
    long backoff = 500;
    int rc, done = 0;
    do {
        if (r->stop_at_quota && r->ready && fp_sheets_writes_available(r->sheets) < 2) {
            /* A batch needs at least two writes: leave the rest to the next run. */
            fp_log_info("stopping: this minute's Sheets write quota is spent");
            sum->quota_spent = 1;
            break;
        }
        rc = step(r, sum, &done, err);
        if ((rc == FP_EIO || rc == FP_ETIMEOUT) && fp_clock_mono_ms() + backoff < deadline) {
            fp_log_warn("flush step failed; retrying", LOG_PIPELINE(r), FP_LSTR("error", err->msg),
                        FP_LINT("backoff_ms", backoff));
            fp_shutdown_sleep(backoff);
            backoff = backoff * 2 > 8000 ? 8000 : backoff * 2;
            rc = 0;
            continue;
        }
        if (!rc)
            backoff = 500;
    } while (!rc && !done && !r->retry_next_run && (r->max_rows <= 0 || sum->rows < r->max_rows) &&
             fp_clock_mono_ms() < deadline && !fp_shutdown_requested());
    return rc;
}

/* Rows still buffered at the end into sum->pending_left and when the oldest of them
 * was received into sum->oldest_left_ms, also after a failed run (it is what an
 * operator wants to know then); -1 when Redis cannot say. */
static void count_left(run *r, fp_flush_summary *sum)
{
    fp_error ignore = {0};
    if (!r->buffer || fp_rowstore_pending(r->buffer, &sum->pending_left, &ignore) < 0)
        sum->pending_left = -1;
    if (!r->buffer || fp_rowstore_oldest_ms(r->buffer, &sum->oldest_left_ms, &ignore) < 0)
        sum->oldest_left_ms = -1;
}

int fp_flusher_turn(const fp_flusher_config *cfg, const fp_flusher_env *env, const fp_flusher_limits *lim,
                    fp_flush_summary *sum, fp_error *err)
{
    fp_flusher_config c = *cfg;
    if (lim->max_rows > 0 && lim->max_rows < c.batch_rows)
        c.batch_rows = (int)lim->max_rows;   /* no batch bigger than the turn */
    run r = {.cfg = &c, .form = env->form, .auth = env->auth, .sheets = env->sheets, .redis = env->redis,
             .batch_limit = c.batch_rows, .deadline = lim->deadline_ms, .max_rows = lim->max_rows,
             .stop_at_quota = lim->stop_at_quota};
    unsigned char rnd[16];
    fp_buf_init(&r.header_row, 1);
    fp_buf_init(&r.header_sig, 1);
    int rc, locked = 0;
    long long t0 = fp_clock_mono_ms();
    long calls0 = fp_sheets_write_calls(r.sheets), api0 = fp_sheets_api_calls(r.sheets);
    long retries0 = fp_sheets_retries(r.sheets), throttled0 = fp_sheets_throttled(r.sheets);
    long long wait0 = fp_sheets_quota_wait_ms(r.sheets);
    memset(sum, 0, sizeof *sum);
    sum->pending_left = sum->oldest_left_ms = -1;
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return fp_error_set(err, FP_EIO, "no randomness for the lock token");
    for (int i = 0; i < 16; i++)
        snprintf(r.token + 2 * i, 3, "%02x", rnd[i]);
    if (c.nspreadsheets == 0)
        return fp_error_set(err, FP_EINVAL, "no spreadsheet to write to (--spreadsheet-id)");
    if (!(r.buffer = fp_rowstore_new(r.redis, r.form->ns, r.form->name, err)) ||
        !(r.state = fp_flushstate_new(r.redis, r.form->ns, r.form->name, err))) {
        rc = err ? err->code : FP_EINVAL;
        goto out;
    }
    r.ncols = 2 + (int)r.form->ncolumns;
    if ((rc = fp_flushstate_lock(r.state, r.token, c.lock_ttl_ms, &locked, err)))
        goto out;
    if (!locked) {
        sum->lock_busy = 1;
        fp_log_info("another flush run holds the lock; nothing to do", FP_LSTR("namespace", r.form->ns),
                    FP_LSTR("pipeline", r.form->name));
        count_left(&r, sum);
        goto out;
    }
    if (!(rc = choose_spreadsheet(&r, err)))
        rc = flush_loop(&r, sum, err);
    count_left(&r, sum);
    snprintf(sum->spreadsheet, sizeof sum->spreadsheet, "%s", c.spreadsheet_ids[r.current]);
    fp_error ignore;
    fp_flushstate_unlock(r.state, r.token, &ignore);
out:
    sum->write_calls = fp_sheets_write_calls(r.sheets) - calls0;
    sum->api_calls = fp_sheets_api_calls(r.sheets) - api0;
    sum->retries = fp_sheets_retries(r.sheets) - retries0;
    sum->throttled = fp_sheets_throttled(r.sheets) - throttled0;
    sum->quota_wait_ms = fp_sheets_quota_wait_ms(r.sheets) - wait0;
    sum->duration_ms = fp_clock_mono_ms() - t0;
    fp_flushstate_free(r.state);
    fp_rowstore_free(r.buffer);
    fp_buf_free(&r.header_row);
    fp_buf_free(&r.header_sig);
    return rc;
}

int fp_flusher_exit_status(int rc)
{
    return rc == 0 ? 0 : (rc == FP_EIO || rc == FP_ETIMEOUT) ? 75 : 1;
}

int fp_flusher_budget_init(fp_budget *b, fp_redis *redis, const char *client_email, int writes_per_minute,
                           fp_error *err)
{
    char key[512];
    if (snprintf(key, sizeof key, "fp:sheets-budget:{%s}", client_email) >= (int)sizeof key)
        return fp_error_set(err, FP_ELIMIT, "service account e-mail too long for a budget key");
    /* One write per (60 s + 1 s)/N, no burst: any 60 s window then holds at most N
     * writes with a second to spare for network and clock jitter. */
    return fp_budget_init(b, redis, key, writes_per_minute, FP_FLUSHER_BUDGET_WINDOW_MS, 1, err);
}

int fp_flusher_record(fp_redis *redis, const fp_form *form, const fp_flush_summary *sum, int exit_status,
                      const char *error, fp_error *err)
{
    fp_flushstate *st = fp_flushstate_new(redis, form->ns, form->name, err);
    if (!st)
        return err->code;
    fp_flush_outcome o = {.finished_ms = fp_clock_wall_ms(), .rows = sum->rows, .rows_left = sum->pending_left,
                          .oldest_left_ms = sum->oldest_left_ms, .exit_status = exit_status, .error = error,
                          .throttled = sum->throttled, .quota_wait_ms = sum->quota_wait_ms,
                          .spreadsheets_full = sum->spreadsheets_full, .spreadsheet = sum->spreadsheet};
    int rc = fp_flushstate_set_lastflush(st, &o, err);
    fp_flushstate_free(st);
    return rc;
}

int fp_flusher_run(const fp_flusher_config *cfg, fp_flush_summary *sum, fp_error *err)
{
    fp_flusher_env env = {0};
    fp_form *form = NULL;
    fp_budget budget;
    int rc;
    long long t0 = fp_clock_mono_ms();
    memset(sum, 0, sizeof *sum);
    sum->pending_left = sum->oldest_left_ms = -1;
    if (cfg->nspreadsheets == 0)
        return fp_error_set(err, FP_EINVAL, "no spreadsheet to write to (--spreadsheet-id)");
    fp_sheets_config sc = {.api_base = cfg->api_base, .allow_http = cfg->allow_http, .spreadsheet_id = cfg->spreadsheet_ids[0],
                           .sheet = cfg->sheet, .max_attempts = cfg->max_attempts,
                           .backoff_initial_ms = cfg->backoff_initial_ms, .backoff_max_ms = cfg->backoff_max_ms,
                           .writes_per_minute = cfg->writes_per_minute, .timeout_ms = cfg->http_timeout_ms,
                           .max_request_bytes = cfg->max_request_bytes, .budget = &budget};
    fp_redis_config rcfg = {.sentinels = cfg->redis_sentinels, .master_name = cfg->redis_master,
                            .password = cfg->redis_password, .connect_timeout_ms = cfg->redis_connect_timeout_ms,
                            .command_timeout_ms = cfg->redis_command_timeout_ms, .tls = cfg->redis_tls};
    if (!(form = fp_form_load(cfg->form_path, err)) ||
        !(env.auth = fp_gauth_load(cfg->credentials_file, cfg->token_url, err)) ||
        !(env.redis = fp_redis_new(&rcfg, err)) ||
        (rc = fp_flusher_budget_init(&budget, env.redis, fp_gauth_email(env.auth), cfg->writes_per_minute, err)) ||
        !(env.sheets = fp_sheets_new(&sc, env.auth, err))) {
        rc = err ? err->code : FP_EINVAL;
        goto out;
    }
    env.form = form;
    fp_flusher_limits lim = {.deadline_ms = t0 + cfg->max_run_ms, .stop_at_quota = 1};
    rc = fp_flusher_turn(cfg, &env, &lim, sum, err);
    if (!sum->lock_busy) {   /* the run holding the lock records its own outcome */
        fp_error rerr = {0};
        if (fp_flusher_record(env.redis, form, sum, fp_flusher_exit_status(rc), rc ? err->msg : "", &rerr))
            fp_log_warn("cannot record the run's outcome in Redis", FP_LSTR("error", rerr.msg));
    }
out:
    sum->duration_ms = fp_clock_mono_ms() - t0;
    fp_sheets_free(env.sheets);
    fp_redis_free(env.redis);
    fp_gauth_free(env.auth);
    fp_form_free(form);
    return rc;
}
