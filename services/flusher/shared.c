/* shared.c — see shared.h. */
#include "shared.h"
#include "clock.h"
#include "formdir.h"
#include "log.h"
#include "rowstore.h"
#include "shutdown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One service account: its key file, token, Sheets client and write budget, shared by
 * every pipeline that names the same credentials. */
typedef struct account {
    char *credentials;        /* as the form names it */
    fp_gauth *auth;
    fp_sheets *sheets;
    fp_budget budget;
    int rc;                   /* loading failed: every pipeline of it fails the same way */
    char error[200];
} account;

enum { WAITING, DONE, STOPPED };

typedef struct pipeline {
    fp_form *form;
    fp_shared_sheets sheets;
    account *acct;
    long long pending, oldest_ms;   /* from the first pass, then from each turn */
    int in_flight;                  /* a batch was recorded and not finished */
    int state;
    int touched;                    /* took part: gets a lastflush record */
    int lock_busy;                  /* every turn found another run's lock */
    int turns;
    int exit_status;
    char error[200];
    fp_flush_summary total;
} pipeline;

typedef struct shared_run {
    const fp_shared_config *cfg;
    fp_redis *redis;
    pipeline *pipes;
    size_t npipes;
    account *accounts;
    size_t naccounts;
} shared_run;

int fp_shared_sheets_parse(const cJSON *form, fp_shared_sheets *out, fp_error *err)
{
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(form, "shared"), "sheets");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(sh, "spreadsheetIds"), *id;
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(sh, "batchRows");
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(sh))
        return fp_error_set(err, FP_EINVAL,
                            "the form file has no shared.sheets object (is the pipeline in mode Shared?)");
    cJSON_ArrayForEach(id, ids) {
        if (!cJSON_IsString(id) || !*id->valuestring || out->nids == sizeof out->ids / sizeof out->ids[0])
            return fp_error_set(err, FP_EINVAL, "shared.sheets.spreadsheetIds: 1 to %zu non-empty strings",
                                sizeof out->ids / sizeof out->ids[0]);
        out->ids[out->nids++] = id->valuestring;
    }
    if (out->nids == 0)
        return fp_error_set(err, FP_EINVAL, "shared.sheets.spreadsheetIds is missing or empty");
    out->sheet = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sh, "sheet"));
    if (!out->sheet || !*out->sheet)
        out->sheet = "Responses";
    out->batch_rows = 5000;
    if (rows && (!cJSON_IsNumber(rows) || rows->valuedouble < 1 || rows->valuedouble > 50000))
        return fp_error_set(err, FP_EINVAL, "shared.sheets.batchRows must be a number from 1 to 50000");
    if (rows)
        out->batch_rows = (int)rows->valuedouble;
    const char *c = out->credentials = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sh, "credentials"));
    if (!c || !*c)
        return fp_error_set(err, FP_EINVAL, "shared.sheets.credentials is missing");
    if (c[0] == '/' || strcmp(c, "..") == 0 || strncmp(c, "../", 3) == 0 || strstr(c, "/../") ||
        (strlen(c) >= 3 && strcmp(c + strlen(c) - 3, "/..") == 0))
        return fp_error_set(err, FP_EINVAL, "shared.sheets.credentials '%.100s' must be a path inside the "
                            "credentials directory", c);
    return 0;
}

/* Reads every form file; a file that cannot be read is logged and skipped. */
static int load_forms(shared_run *s, fp_shared_summary *sum, fp_error *err)
{
    fp_formdir *dir = fp_formdir_open(s->cfg->forms_dir, err);
    int rc = dir ? fp_formdir_scan(dir, err) : err->code;
    if (rc < 0)
        goto out;
    rc = 0;
    size_t n = fp_formdir_count(dir);
    if (n && !(s->pipes = calloc(n, sizeof *s->pipes))) {
        rc = fp_error_set(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        fp_error ferr = {0};
        fp_form *f = fp_form_load(fp_formdir_path(dir, i), &ferr);
        sum->pipelines++;
        if (!f) {
            sum->bad_forms++;
            fp_log_error("skipping a form file that cannot be read", FP_LSTR("path", fp_formdir_path(dir, i)),
                         FP_LSTR("error", ferr.msg));
            continue;
        }
        s->pipes[s->npipes++] = (pipeline){.form = f};
    }
out:
    fp_formdir_free(dir);
    return rc;
}

/* The first pass: ZCARD, the oldest member and EXISTS batch of every pipeline in one
 * pipelined round trip. */
static int first_pass(shared_run *s, fp_error *err)
{
    char keys[3][600];
    int rc = 0;
    for (size_t i = 0; i < s->npipes && !rc; i++) {
        const fp_form *f = s->pipes[i].form;
        if (fp_rowstore_key(keys[0], sizeof keys[0], f->ns, f->name, "pending") ||
            fp_rowstore_key(keys[1], sizeof keys[1], f->ns, f->name, "batch"))
            return fp_error_set(err, FP_ELIMIT, "%s/%s: names too long for a key", f->ns, f->name);
        if ((rc = fp_redis_append(s->redis, 2, (const char *[]){"ZCARD", keys[0]}, NULL, err)) ||
            (rc = fp_redis_append(s->redis, 5, (const char *[]){"ZRANGE", keys[0], "0", "0", "WITHSCORES"}, NULL,
                                  err)) ||
            (rc = fp_redis_append(s->redis, 2, (const char *[]){"EXISTS", keys[1]}, NULL, err)))
            return rc;
    }
    if (s->npipes && (rc = fp_redis_send(s->redis, err)))
        return rc;
    for (size_t i = 0; i < s->npipes; i++) {
        redisReply *r[3] = {NULL, NULL, NULL};
        pipeline *p = &s->pipes[i];
        for (int k = 0; k < 3 && !rc; k++)
            rc = fp_redis_receive(s->redis, 0, &r[k], err);
        if (!rc && (r[0]->type != REDIS_REPLY_INTEGER || r[1]->type != REDIS_REPLY_ARRAY ||
                    r[2]->type != REDIS_REPLY_INTEGER))
            rc = fp_error_set(err, FP_EIO, "%s/%s: unexpected answer to the first pass", p->form->ns, p->form->name);
        if (!rc) {
            p->pending = r[0]->integer;
            p->oldest_ms = r[1]->elements == 2 ? atoll(r[1]->element[1]->str) : -1;
            p->in_flight = r[2]->integer > 0;
            p->total.pending_left = p->pending;
            p->total.oldest_left_ms = p->oldest_ms;
            p->state = p->pending > 0 || p->in_flight ? WAITING : DONE;
            if (p->in_flight)
                p->oldest_ms = 0;   /* an interrupted batch goes first */
        }
        for (int k = 0; k < 3; k++)
            freeReplyObject(r[k]);
        if (rc)
            return rc;
    }
    return 0;
}

/* The account a pipeline's credentials name, loaded on first use. */
static account *account_for(shared_run *s, const char *credentials)
{
    for (size_t i = 0; i < s->naccounts; i++) {
        if (strcmp(s->accounts[i].credentials, credentials) == 0)
            return &s->accounts[i];
    }
    account *a = &s->accounts[s->naccounts++];   /* room for one per pipeline */
    const fp_flusher_config *b = &s->cfg->base;
    fp_error err = {0};
    char *path = NULL;
    memset(a, 0, sizeof *a);
    if (!(a->credentials = strdup(credentials)) ||
        asprintf(&path, "%s/%s", s->cfg->credentials_dir, credentials) < 0) {
        path = NULL;
        a->rc = fp_error_set(&err, FP_ENOMEM, "out of memory");
        goto out;
    }
    fp_sheets_config sc = {.api_base = b->api_base, .allow_http = b->allow_http, .max_attempts = b->max_attempts,
                           .backoff_initial_ms = b->backoff_initial_ms, .backoff_max_ms = b->backoff_max_ms,
                           .writes_per_minute = b->writes_per_minute, .timeout_ms = b->http_timeout_ms,
                           .max_request_bytes = b->max_request_bytes, .budget = &a->budget};
    if (!(a->auth = fp_gauth_load(path, b->token_url, &err)))
        a->rc = err.code == FP_ENOMEM ? FP_ENOMEM : FP_EINVAL;   /* a missing or bad key file: a person must act */
    else if ((a->rc = fp_flusher_budget_init(&a->budget, s->redis, fp_gauth_email(a->auth), b->writes_per_minute,
                                             &err)) ||
             !(a->sheets = fp_sheets_new(&sc, a->auth, &err)))
        a->rc = err.code ? err.code : FP_EINVAL;
    else
        fp_log_info("service account loaded", FP_LSTR("credentials", credentials),
                    FP_LSTR("client_email", fp_gauth_email(a->auth)), FP_LSTR("budget", a->budget.key));
out:
    if (a->rc)
        snprintf(a->error, sizeof a->error, "credentials %.60s: %.120s", credentials, err.msg);
    free(path);
    return a;
}

static int by_oldest(const void *x, const void *y)
{
    const pipeline *a = *(pipeline *const *)x, *b = *(pipeline *const *)y;
    if (a->oldest_ms != b->oldest_ms)
        return a->oldest_ms < 0 ? 1 : b->oldest_ms < 0 ? -1 : a->oldest_ms < b->oldest_ms ? -1 : 1;
    int c = strcmp(a->form->ns, b->form->ns);
    return c ? c : strcmp(a->form->name, b->form->name);
}

static void fail(pipeline *p, int rc, const char *msg)
{
    p->state = STOPPED;
    p->exit_status = fp_flusher_exit_status(rc);
    snprintf(p->error, sizeof p->error, "%.199s", msg);
}

/* One turn of one pipeline. */
static void turn(shared_run *s, pipeline *p, long long deadline, fp_shared_summary *sum)
{
    fp_error err = {0};
    p->touched = 1;
    if (!p->acct) {
        int rc = fp_shared_sheets_parse(p->form->json, &p->sheets, &err);
        if (rc) {
            fail(p, rc, err.msg);
            return;
        }
        p->acct = account_for(s, p->sheets.credentials);
    }
    if (p->acct->rc) {
        fail(p, p->acct->rc, p->acct->error);
        return;
    }
    fp_flusher_config c = s->cfg->base;
    c.spreadsheet_ids = p->sheets.ids;
    c.nspreadsheets = p->sheets.nids;
    c.sheet = p->sheets.sheet;
    c.batch_rows = p->sheets.batch_rows;
    fp_flusher_env env = {.form = p->form, .auth = p->acct->auth, .sheets = p->acct->sheets, .redis = s->redis};
    fp_flusher_limits lim = {.deadline_ms = deadline,
                             .max_rows = s->cfg->rows_per_turn > 0 ? s->cfg->rows_per_turn : c.batch_rows};
    fp_flush_summary t;
    int rc = fp_flusher_turn(&c, &env, &lim, &t, &err);
    sum->turns++;
    fp_flush_summary *a = &p->total;
    a->rows += t.rows;
    a->batches += t.batches;
    a->redone += t.redone;
    a->write_calls += t.write_calls;
    a->api_calls += t.api_calls;
    a->retries += t.retries;
    a->throttled += t.throttled;
    a->quota_wait_ms += t.quota_wait_ms;
    a->duration_ms += t.duration_ms;
    a->dead_lettered += t.dead_lettered;
    a->spreadsheets_full = t.spreadsheets_full;
    a->pending_left = t.pending_left;
    a->oldest_left_ms = t.oldest_left_ms;
    if (t.spreadsheet[0])
        memcpy(a->spreadsheet, t.spreadsheet, sizeof a->spreadsheet);
    p->lock_busy = t.lock_busy && (p->turns == 0 || p->lock_busy);
    p->turns++;
    fp_log_info("turn finished", FP_LSTR("namespace", p->form->ns), FP_LSTR("pipeline", p->form->name),
                FP_LINT("rows", t.rows), FP_LINT("rows_left", t.pending_left), FP_LINT("write_calls", t.write_calls),
                FP_LINT("quota_wait_ms", t.quota_wait_ms), FP_LSTR("error", rc ? err.msg : ""));
    if (rc) {
        fail(p, rc, err.msg);
    } else if (t.lock_busy) {
        p->state = STOPPED;   /* another run is flushing it */
    } else if (t.pending_left == 0) {
        p->state = DONE;
    } else if (t.pending_left < 0 || t.rows < lim.max_rows) {
        p->state = STOPPED;   /* it stopped early (a refused row waits for the next run, time is up) */
    } else {
        p->oldest_ms = t.oldest_left_ms;
    }
}

/* Rounds until every pipeline is done or stopped, or time is up. */
static void rounds(shared_run *s, fp_shared_summary *sum, long long deadline)
{
    pipeline **order = calloc(s->npipes ? s->npipes : 1, sizeof *order);
    if (!order) {
        for (size_t i = 0; i < s->npipes; i++)
            if (s->pipes[i].state == WAITING)
                fail(&s->pipes[i], FP_EIO, "out of memory");   /* the next run tries again */
        return;
    }
    for (;;) {
        size_t n = 0;
        for (size_t i = 0; i < s->npipes; i++)
            if (s->pipes[i].state == WAITING)
                order[n++] = &s->pipes[i];
        if (n == 0 || fp_clock_mono_ms() >= deadline || fp_shutdown_requested())
            break;
        qsort(order, n, sizeof *order, by_oldest);
        for (size_t i = 0; i < n && fp_clock_mono_ms() < deadline && !fp_shutdown_requested(); i++)
            turn(s, order[i], deadline, sum);
    }
    free(order);
}

/* Records each pipeline's part and adds it up. */
static void finish(shared_run *s, fp_shared_summary *sum)
{
    for (size_t i = 0; i < s->npipes; i++) {
        pipeline *p = &s->pipes[i];
        if (!p->touched)
            continue;
        fp_flush_summary *t = &p->total;
        sum->rows += t->rows;
        sum->write_calls += t->write_calls;
        sum->throttled += t->throttled;
        sum->quota_wait_ms += t->quota_wait_ms;
        if (p->exit_status == 75)
            sum->retryable++;
        else if (p->exit_status)
            sum->failed++;
        else if (t->pending_left == 0)
            sum->flushed++;
        else
            sum->left_waiting++;
        if (p->exit_status && !sum->first_error[0])
            snprintf(sum->first_error, sizeof sum->first_error, "%.63s/%.63s: %.190s", p->form->ns, p->form->name,
                     p->error);
        if (p->lock_busy)
            continue;   /* the run holding the lock records its own outcome */
        fp_error err = {0};
        if (fp_flusher_record(s->redis, p->form, t, p->exit_status, p->error, &err))
            fp_log_warn("cannot record a pipeline's outcome in Redis", FP_LSTR("namespace", p->form->ns),
                        FP_LSTR("pipeline", p->form->name), FP_LSTR("error", err.msg));
    }
    for (size_t i = 0; i < s->npipes; i++) {
        pipeline *p = &s->pipes[i];
        if (!p->touched && p->state == WAITING)
            sum->left_waiting++;   /* time ran out before its first turn */
    }
    sum->exit_status = sum->failed ? 1 : sum->retryable ? 75 : 0;
}

int fp_shared_run(const fp_shared_config *cfg, fp_shared_summary *sum, fp_error *err)
{
    shared_run s = {.cfg = cfg};
    long long t0 = fp_clock_mono_ms();
    const fp_flusher_config *b = &cfg->base;
    memset(sum, 0, sizeof *sum);
    fp_redis_config rcfg = {.sentinels = b->redis_sentinels, .master_name = b->redis_master,
                            .password = b->redis_password, .connect_timeout_ms = b->redis_connect_timeout_ms,
                            .command_timeout_ms = b->redis_command_timeout_ms, .tls = b->redis_tls};
    int rc = load_forms(&s, sum, err);
    if (rc || !(s.redis = fp_redis_new(&rcfg, err)) ||
        (s.npipes && !(s.accounts = calloc(s.npipes, sizeof *s.accounts)))) {
        rc = rc ? rc : s.redis ? fp_error_set(err, FP_ENOMEM, "out of memory") : err->code;
        goto out;
    }
    /* The first pass is retried like any step: a failover must not fail the run. */
    long backoff = 500;
    while ((rc = first_pass(&s, err)) == FP_EIO && fp_clock_mono_ms() + backoff < t0 + b->max_run_ms &&
           !fp_shutdown_requested()) {
        fp_log_warn("first pass failed; retrying", FP_LSTR("error", err->msg), FP_LINT("backoff_ms", backoff));
        fp_shutdown_sleep(backoff);
        backoff = backoff * 2 > 8000 ? 8000 : backoff * 2;
    }
    if (rc)
        goto out;
    for (size_t i = 0; i < s.npipes; i++)
        sum->waiting += s.pipes[i].state == WAITING;
    if (sum->waiting == 0) {
        fp_log_info("no rows waiting in any pipeline", FP_LINT("pipelines", (long long)s.npipes));
        goto out;
    }
    rounds(&s, sum, t0 + b->max_run_ms);
    finish(&s, sum);
out:
    for (size_t i = 0; i < s.naccounts; i++) {
        fp_sheets_free(s.accounts[i].sheets);
        fp_gauth_free(s.accounts[i].auth);
        free(s.accounts[i].credentials);
    }
    free(s.accounts);
    for (size_t i = 0; i < s.npipes; i++)
        fp_form_free(s.pipes[i].form);
    free(s.pipes);
    fp_redis_free(s.redis);
    sum->duration_ms = fp_clock_mono_ms() - t0;
    return rc;
}
