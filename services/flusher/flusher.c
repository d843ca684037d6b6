/* flusher.c — see flusher.h. */
#include "flusher.h"
#include "buf.h"
#include "buffer.h"
#include "flushstate.h"
#include "form.h"
#include "gauth.h"
#include "log.h"
#include "sheets.h"
#include "shutdown.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct run {
    const fp_flusher_config *cfg;
    fp_form *form;
    fp_gauth *auth;
    fp_sheets *sheets;
    fp_redis *redis;
    fp_buffer *buffer;
    fp_flushstate *state;
    char token[33];
    int sheet_id;
    long long grid_rows;
    int ncols;
} run;

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* WAIT after a state change, so a failover can't forget it. */
static int replicate(run *r, fp_error *err)
{
    long long acked;
    if (r->cfg->min_replicas_ack <= 0)
        return 0;
    return fp_buffer_wait(r->buffer, r->cfg->min_replicas_ack, r->cfg->wait_timeout_ms, &acked, err);
}

/* Finds the tab (adding it when missing) and its grid size. */
static int open_sheet(run *r, fp_error *err)
{
    long long cols;
    int rc = fp_sheets_grid(r->sheets, &r->sheet_id, &r->grid_rows, &cols, err);
    if (rc == FP_ENOTFOUND) {
        fp_log_info("adding the sheet tab", FP_LSTR("sheet", r->cfg->sheet));
        if ((rc = fp_sheets_add_sheet(r->sheets, err)) == 0)
            rc = fp_sheets_grid(r->sheets, &r->sheet_id, &r->grid_rows, &cols, err);
    }
    return rc;
}

/* The header row: id, received_at, then the form's fields. */
static cJSON *header_rows(const run *r, fp_buf *signature)
{
    cJSON *rows = cJSON_CreateArray(), *header = cJSON_CreateArray();
    cJSON_AddItemToArray(rows, header);
    cJSON_AddItemToArray(header, cJSON_CreateString("id"));
    cJSON_AddItemToArray(header, cJSON_CreateString("received_at"));
    fp_buf_adds(signature, "id\x1freceived_at");
    for (size_t i = 0; i < r->form->ncolumns; i++) {
        cJSON_AddItemToArray(header, cJSON_CreateString(r->form->columns[i]));
        fp_buf_printf(signature, "\x1f%s", r->form->columns[i]);
    }
    return rows;
}

/* Writes the header row when the form's fields differ from the header written last
 * (a field was added): row 1 is an explicit range, so rewriting it is harmless. */
static int refresh_header(run *r, fp_error *err)
{
    fp_buf sig;
    fp_buf_init(&sig, 64 * 1024);
    cJSON *rows = header_rows(r, &sig);
    char *stored = NULL;
    int rc = fp_flushstate_header(r->state, &stored, err);
    if (rc == 0 && (!stored || strcmp(stored, sig.data ? sig.data : "") != 0)) {
        if (stored)
            fp_log_info("the form's fields changed: rewriting the header row", FP_LSTR("sheet", r->cfg->sheet));
        rc = fp_sheets_write(r->sheets, 1, r->ncols, rows, err);
        if (rc == 0)
            rc = fp_flushstate_set_header(r->state, sig.data ? sig.data : "", err);
    }
    free(stored);
    cJSON_Delete(rows);
    fp_buf_free(&sig);
    return rc;
}

/* First run: find the first empty row and never overwrite what is there; an empty tab
 * gets the header row. Every run: the header follows the form's fields. */
static int first_row(run *r, long long *next, fp_error *err)
{
    int exists, rc = fp_flushstate_nextrow(r->state, next, &exists, err);
    if (rc)
        return rc;
    if (exists)
        return refresh_header(r, err);
    long long last;
    if ((rc = fp_sheets_last_row(r->sheets, &last, err)))
        return rc;
    if (last == 0) {
        if ((rc = refresh_header(r, err)))
            return rc;
        last = 1;
    }
    if ((rc = fp_flushstate_init_nextrow(r->state, last + 1, err)) || (rc = replicate(r, err)))
        return rc;
    return fp_flushstate_nextrow(r->state, next, &exists, err);
}

/* Grows the grid (appendDimension) so rows up to `end` exist, with a batch of slack so
 * the next batch usually needs no growth: values.batchUpdate never grows it. */
static int ensure_rows(run *r, long long end, fp_error *err)
{
    if (end <= r->grid_rows)
        return 0;
    long long cols;
    int rc = fp_sheets_grid(r->sheets, &r->sheet_id, &r->grid_rows, &cols, err);   /* fresh numbers */
    if (rc || end <= r->grid_rows)
        return rc;
    long long grow = end - r->grid_rows + r->cfg->batch_rows;
    if ((rc = fp_sheets_append_rows(r->sheets, r->sheet_id, grow, err)))
        return rc;
    r->grid_rows += grow;
    return 0;
}

/* Writes one recorded batch (rows: its rows, or NULL to read them from the buffer)
 * and finishes it in Redis. Takes ownership of rows. */
static int write_batch(run *r, long long start, const cJSON *ids, cJSON *rows, fp_flush_summary *sum,
                       fp_error *err)
{
    long long n = cJSON_GetArraySize(ids), count = 0;
    int rc = rows ? 0 : fp_buffer_rows(r->buffer, ids, &rows, err);
    if (!rc)
        rc = ensure_rows(r, start + n - 1, err);
    if (!rc)
        rc = fp_sheets_write(r->sheets, start, r->ncols, rows, err);
    cJSON_Delete(rows);
    if (!rc)
        rc = fp_flushstate_finish(r->state, r->token, wall_ms(), &count, err);
    if (!rc)
        rc = replicate(r, err);
    if (!rc) {
        sum->rows += count;
        sum->batches++;
        fp_log_info("batch written", FP_LINT("first_row", start), FP_LINT("rows", count));
    }
    return rc;
}

/* Takes the oldest rows into a new recorded batch; *ids is NULL when the buffer is
 * empty. *rows receives the batch's rows (caller owns both). */
static int next_batch(run *r, long long start, cJSON **ids, cJSON **rows, fp_error *err)
{
    cJSON *oldest = NULL, *item;
    *ids = *rows = NULL;
    int rc = fp_buffer_oldest(r->buffer, (size_t)r->cfg->batch_rows, &oldest, err);
    if (rc || cJSON_GetArraySize(oldest) == 0) {
        cJSON_Delete(oldest);
        return rc;
    }
    *ids = cJSON_CreateArray();
    *rows = cJSON_CreateArray();
    /* fp_buffer_oldest gives each item a string id and a row; there is at least one, so
     * a NULL array above fails an add below */
    cJSON_ArrayForEach(item, oldest) {
        cJSON *id = cJSON_CreateString(cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring);
        if (!cJSON_AddItemToArray(*ids, id)) {
            cJSON_Delete(id);
            rc = FP_ENOMEM;
            break;
        }
        cJSON *row = cJSON_DetachItemFromObjectCaseSensitive(item, "row");
        if (!cJSON_AddItemToArray(*rows, row)) {
            cJSON_Delete(row);
            rc = FP_ENOMEM;
            break;
        }
    }
    cJSON_Delete(oldest);
    if (rc)
        rc = fp_error_set(err, FP_ENOMEM, "out of memory building a batch");
    if (rc || (rc = fp_flushstate_record(r->state, r->token, start, *ids, err)) || (rc = replicate(r, err))) {
        cJSON_Delete(*ids);
        cJSON_Delete(*rows);
        *ids = *rows = NULL;
    }
    return rc;
}

/* One step: finish the interrupted batch, or record and write the next one.
 * *done is set when the buffer is empty. */
static int step(run *r, fp_flush_summary *sum, int *done, fp_error *err)
{
    fp_flush_batch inflight;
    int exists, rc;
    long long next;
    if ((rc = fp_flushstate_renew(r->state, r->token, r->cfg->lock_ttl_ms, err)) ||
        (rc = fp_flushstate_batch(r->state, &inflight, &exists, err)))
        return rc;
    if (exists) {
        /* A run died between recording and finishing: redo it, same rows, same range. */
        fp_log_info("finishing an interrupted batch", FP_LINT("first_row", inflight.start_row),
                    FP_LINT("rows", cJSON_GetArraySize(inflight.ids)));
        rc = write_batch(r, inflight.start_row, inflight.ids, NULL, sum, err);
        sum->redone += rc == 0;
        fp_flush_batch_clear(&inflight);
        return rc;
    }
    cJSON *ids, *rows;
    if ((rc = fp_flushstate_nextrow(r->state, &next, &exists, err)) ||
        (rc = next_batch(r, next, &ids, &rows, err)))
        return rc;
    if (!ids) {
        *done = 1;
        return 0;
    }
    rc = write_batch(r, next, ids, rows, sum, err);
    cJSON_Delete(ids);
    return rc;
}

/* Steps until the buffer is empty or time is up. Connection trouble (a Redis failover,
 * a Sheets outage outlasting the client's retries) is retried with backoff within the
 * run; the lock and the recorded batch make every retry safe. */
static int flush_loop(run *r, fp_flush_summary *sum, fp_error *err)
{
    long long deadline = mono_ms() + r->cfg->max_run_ms;
    long backoff = 500;
    int rc, done = 0, ready = 0;
    long long next;
    do {
        if (ready && fp_sheets_writes_available(r->sheets) < 2) {
            /* A batch needs up to two writes: leave the rest to the next run. */
            fp_log_info("stopping: this minute's Sheets write quota is spent");
            sum->quota_spent = 1;
            break;
        }
        rc = ready ? step(r, sum, &done, err) : open_sheet(r, err);
        if (!rc && !ready && (rc = first_row(r, &next, err)) == 0)
            ready = 1;
        if ((rc == FP_EIO || rc == FP_ETIMEOUT) && mono_ms() + backoff < deadline) {
            fp_log_warn("flush step failed; retrying", FP_LSTR("error", err->msg), FP_LINT("backoff_ms", backoff));
            fp_shutdown_sleep(backoff);
            backoff = backoff * 2 > 8000 ? 8000 : backoff * 2;
            rc = 0;
            continue;
        }
        if (!rc)
            backoff = 500;
    } while (!rc && !done && mono_ms() < deadline && !fp_shutdown_requested());
    if (!rc)
        fp_buffer_pending(r->buffer, &sum->pending_left, err);
    return rc;
}

int fp_flusher_run(const fp_flusher_config *cfg, fp_flush_summary *sum, fp_error *err)
{
    run r = {.cfg = cfg};
    unsigned char rnd[16];
    int rc, locked = 0;
    long long t0 = mono_ms();
    memset(sum, 0, sizeof *sum);
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return fp_error_set(err, FP_EIO, "no randomness for the lock token");
    for (int i = 0; i < 16; i++)
        snprintf(r.token + 2 * i, 3, "%02x", rnd[i]);

    fp_sheets_config sc = {.api_base = cfg->api_base, .spreadsheet_id = cfg->spreadsheet_id,
                           .sheet = cfg->sheet, .max_attempts = cfg->max_attempts,
                           .backoff_initial_ms = cfg->backoff_initial_ms, .backoff_max_ms = cfg->backoff_max_ms,
                           .writes_per_minute = cfg->writes_per_minute, .timeout_ms = cfg->http_timeout_ms};
    fp_redis_config rcfg = {.sentinels = cfg->redis_sentinels, .master_name = cfg->redis_master,
                            .password = cfg->redis_password, .connect_timeout_ms = cfg->redis_connect_timeout_ms,
                            .command_timeout_ms = cfg->redis_command_timeout_ms};
    if (!(r.form = fp_form_load(cfg->form_path, err)) ||
        !(r.auth = fp_gauth_load(cfg->credentials_file, cfg->token_url, err)) ||
        !(r.sheets = fp_sheets_new(&sc, r.auth, err)) || !(r.redis = fp_redis_new(&rcfg, err)) ||
        !(r.buffer = fp_buffer_new(r.redis, r.form->ns, r.form->name, err)) ||
        !(r.state = fp_flushstate_new(r.redis, r.form->ns, r.form->name, err))) {
        rc = err ? err->code : FP_EINVAL;
        goto out;
    }
    r.ncols = 2 + (int)r.form->ncolumns;
    if ((rc = fp_flushstate_lock(r.state, r.token, cfg->lock_ttl_ms, &locked, err)))
        goto out;
    if (!locked) {
        sum->lock_busy = 1;
        fp_log_info("another flush run holds the lock; nothing to do");
        goto out;
    }
    rc = flush_loop(&r, sum, err);
    fp_error ignore;
    fp_flushstate_unlock(r.state, r.token, &ignore);
out:
    sum->write_calls = r.sheets ? fp_sheets_write_calls(r.sheets) : 0;
    sum->api_calls = r.sheets ? fp_sheets_api_calls(r.sheets) : 0;
    sum->retries = r.sheets ? fp_sheets_retries(r.sheets) : 0;
    sum->duration_ms = mono_ms() - t0;
    fp_flushstate_free(r.state);
    fp_buffer_free(r.buffer);
    fp_redis_free(r.redis);
    fp_sheets_free(r.sheets);
    fp_gauth_free(r.auth);
    fp_form_free(r.form);
    return rc;
}
