/* formpipe-flush as a process against the real Redis Sentinel and the Sheets API
 * emulator: exact rows in buffer order, kill -9 at random moments, 429/500 storms and
 * lost responses, two runs at once, and errors a person can act on. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rowstore.h"
#include "flushstate.h"
#include "testkit.h"

static char name[64], sheet_id[80], email[128], *form_path, *key_path;
static const char *sheets_url;
static fp_redis *redis;
static fp_rowstore *buffer;

static void control(const char *path, const char *json)
{
    char url[256], *body;
    snprintf(url, sizeof url, "%s%s", sheets_url, path);
    long st = tk_http(url, json, &body);
    cr_assert_eq(st, 200, "%s: HTTP %ld %s", path, st, body);
    free(body);
}

/* A fresh service-account key; registered with the emulator unless `trusted` is 0. */
static void make_key(int trusted)
{
    snprintf(email, sizeof email, "%s@formpipe-tests.iam.gserviceaccount.com", name);
    key_path = tk_write_temp("");
    tk_sheets_key(email, key_path, trusted);
}

static void create_spreadsheet(int shared, int rows)
{
    char json[512];
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"sheets\":[{\"title\":\"Sheet1\",\"rowCount\":%d,\"columnCount\":26}],"
             "\"shared_with\":[\"%s\"]}", sheet_id, rows, shared ? email : "someone-else@example.com");
    control("/_control/spreadsheets", json);
}

static void setup(void)
{
    char form[512];
    sheets_url = tk_env("FORMPIPE_SHEETS_URL");
    tk_unique(name, sizeof name, "f");
    snprintf(sheet_id, sizeof sheet_id, "sheet-%s", name);
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,\"fields\":["
             "{\"name\":\"name\"},{\"name\":\"roll\"},{\"name\":\"note\"}]}", name);
    form_path = tk_write_temp(form);
    fp_error err = {0};
    redis = tk_redis();
    buffer = fp_rowstore_new(redis, "tests", name, &err);
    cr_assert_not_null(buffer, "%s", err.msg);
    tk_redis_settled(redis);
    control("/_control/faults", "{\"write_quota_per_minute\":60,\"status\":200,\"count\":0,\"drop_after_apply\":0}");
}

static void teardown(void)
{
    fp_rowstore_free(buffer);
    fp_redis_free(redis);
    unlink(form_path);
    free(form_path);
    if (key_path) {
        unlink(key_path);
        free(key_path);
        key_path = NULL;
    }
}

TestSuite(flusher, .init = setup, .fini = teardown, .timeout = 300);

/* Buffers rows first..first+n-1 (submission time = i), the way the consumer would:
 * each row built from its encoded event; row `big` (or none: -1) gets a note of
 * 60,000 characters, more than a Sheets cell holds. */
static void buffer_rows_from(int first, int n, int big)
{
    fp_rowstore_row rows[500];
    size_t at[500];
    char ids[500][24];
    fp_buf text, data;
    fp_buf_init(&text, 1 << 24);
    fp_buf_init(&data, 1 << 20);
    for (int base = 0; base < n; base += 500) {
        int k = n - base < 500 ? n - base : 500;
        fp_buf_reset(&text);
        for (int j = 0; j < k; j++) {
            int i = first + base + j;
            fp_event ev;
            fp_error err = {0};
            snprintf(ids[j], sizeof ids[j], "id-%07d", i);
            fp_buf_reset(&data);
            cr_assert_eq(fp_buf_printf(&data, "{\"name\":\"student %d\",\"roll\":\"%d\",\"note\":\"", i, i), 0);
            if (i == big) {
                for (int c = 0; c < 60000; c++)
                    cr_assert_eq(fp_buf_adds(&data, "x"), 0);
            } else {
                cr_assert_eq(fp_buf_printf(&data, "=SUM(A1:A%d)", i), 0);
            }
            cr_assert_eq(fp_buf_adds(&data, "\"}"), 0);
            cJSON *d = cJSON_Parse(data.data);
            char *json = fp_event_encode(ids[j], "tests", "flush", 1795392000000LL + i, 1, d);
            cr_assert_eq(fp_event_parse(json, strlen(json), &ev, &err), 0, "%s", err.msg);
            at[j] = text.len;
            cr_assert_eq(fp_rowstore_row_append(&text, &ev, (const char *[]){"name", "roll", "note"}, 3, NULL, &err), 0,
                         "%s", err.msg);
            cr_assert_eq(fp_buf_add(&text, "", 1), 0);
            fp_event_clear(&ev);
            free(json);
            cJSON_Delete(d);
        }
        for (int j = 0; j < k; j++)
            rows[j] = (fp_rowstore_row){ids[j], 1000000 + first + base + j, text.data + at[j]};
        long long added;
        fp_error err = {0};
        cr_assert_eq(fp_rowstore_insert(buffer, rows, (size_t)k, &added, &err), 0, "%s", err.msg);
    }
    fp_buf_free(&text);
    fp_buf_free(&data);
}

static void buffer_rows(int n)
{
    buffer_rows_from(0, n, -1);
}

/* Starts one run with extra flags (NULL-terminated, may be NULL). */
/* Starts a run with the extra options. Unless they set a write rate, the account's write
 * budget is 6000 a minute: these tests are about the protocol, and every run of the suite
 * shares the test account's budget (the pacing and quota tests give their own rate). */
static void start_flush_with(tk_proc *p, const char *batch_rows, const char *const *extra)
{
    const char *argv[48] = {"--form", form_path, "--google-credentials", key_path,
                            "--sheets-api-url", sheets_url, "--spreadsheet-id", sheet_id, "--sheet", "Sheet1",
                            "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
                            "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                            "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                            "--batch-rows", batch_rows, "--sheets-backoff-initial", "50ms",
                            "--sheets-backoff-max", "500ms", NULL};
    int n = 0;
    while (argv[n])
        n++;
    int own_rate = 0;
    for (int i = 0; extra && extra[i] && n < 44; i++) {
        own_rate |= strstr(extra[i], "writes-per-minute") != NULL;
        argv[n++] = extra[i];
    }
    if (!own_rate) {   /* see start_flush: the protocol tests run on a high budget */
        argv[n++] = "--writes-per-minute";
        argv[n++] = "6000";
    }
    argv[n] = NULL;
    tk_start(p, "formpipe-flush", argv);
}

/* Starts one run; lock_ttl is short in tests that kill runs (a killed run's lock must
 * expire before the next run can work). */
static void start_flush(tk_proc *p, const char *batch_rows, const char *lock_ttl)
{
    start_flush_with(p, batch_rows, (const char *[]){"--lock-ttl", lock_ttl ? lock_ttl : "60s", NULL});
}

static int run_flush(const char *batch_rows)
{
    tk_proc p;
    start_flush(&p, batch_rows, NULL);
    return tk_wait(&p, 240);
}

/* The sheet holds the header and exactly rows 0..n-1, in order, each once. */
static void assert_sheet_exact(int n)
{
    char path[256], url[300], *body;
    snprintf(path, sizeof path, "/_control/spreadsheets/%s/values/Sheet1", sheet_id);
    snprintf(url, sizeof url, "%s%s", sheets_url, path);
    cr_assert_eq(tk_http(url, NULL, &body), 200);
    cJSON *doc = cJSON_Parse(body);
    free(body);
    cJSON *values = cJSON_GetObjectItemCaseSensitive(doc, "values");
    cr_assert_eq(cJSON_GetArraySize(values), n + 1, "header + %d rows, got %d rows", n, cJSON_GetArraySize(values));
    cJSON *header = cJSON_GetArrayItem(values, 0);
    const char *want_header[] = {"id", "received_at", "name", "roll", "note"};
    for (int c = 0; c < 5; c++)
        cr_assert_str_eq(cJSON_GetArrayItem(header, c)->valuestring, want_header[c]);
    for (int i = 0; i < n; i++) {
        cJSON *row = cJSON_GetArrayItem(values, i + 1);
        char id[24], note[40];
        snprintf(id, sizeof id, "id-%07d", i);
        snprintf(note, sizeof note, "=SUM(A1:A%d)", i);
        cr_assert_str_eq(cJSON_GetArrayItem(row, 0)->valuestring, id, "sheet row %d", i + 2);
        cr_assert_str_eq(cJSON_GetArrayItem(row, 4)->valuestring, note, "RAW keeps formulas as text");
    }
    cJSON_Delete(doc);
    long long pending = -1;
    fp_error err = {0};
    for (int attempt = 0; attempt < 50 && fp_rowstore_pending(buffer, &pending, &err); attempt++)
        usleep(200 * 1000);   /* our own connection may still point at a killed master */
    cr_assert_eq(pending, 0, "the buffer is empty once the rows are in the sheet (%s)", err.msg);
}

static cJSON *tab(const char *book, const char *title);
static const char *cell(const cJSON *doc, int row, int col);

static cJSON *stats(void)
{
    char url[256], *body;
    snprintf(url, sizeof url, "%s/_control/stats", sheets_url);
    cr_assert_eq(tk_http(url, NULL, &body), 200);
    cJSON *doc = cJSON_Parse(body);
    free(body);
    return doc;
}

/* Calls of one kind the emulator saw for this test's spreadsheet. */
static double stat_calls(cJSON *s, const char *kind)
{
    cJSON *mine = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "by_spreadsheet"), sheet_id);
    cJSON *n = cJSON_GetObjectItemCaseSensitive(mine, kind);
    return n ? cJSON_GetNumberValue(n) : 0;
}

Test(flusher, writes_every_row_once_in_buffer_order_with_few_write_calls)
{
    make_key(1);
    create_spreadsheet(1, 1000);
    buffer_rows(50000);
    cJSON *before = stats();
    cr_assert_eq(run_flush("5000"), 0);
    cJSON *after = stats();
    assert_sheet_exact(50000);
    double writes = stat_calls(after, "values.batchUpdate") - stat_calls(before, "values.batchUpdate") +
                    stat_calls(after, "batchUpdate") - stat_calls(before, "batchUpdate");
    /* header + 10 batches of data + grid growth: at most 2 per 5,000-row batch */
    cr_assert_leq(writes, 1 + 2 * 10, "%.0f write calls for 10 batches", writes);
    cr_log_info("50,000 rows in %.0f Sheets write calls", writes);
    cJSON_Delete(before);
    cJSON_Delete(after);

    /* A later run finds nothing to do and changes nothing. */
    cr_assert_eq(run_flush("5000"), 0);
    assert_sheet_exact(50000);
}

/* A new spreadsheet's grid (1000 rows) is one row short of the header and 1000 rows:
 * the growth goes with the rows in one request, so the first flush of a new form costs
 * one write of the account's quota (the shared flush of 300 new forms: 300 writes, not
 * 600). */
Test(flusher, a_new_spreadsheets_first_batch_grows_the_grid_in_the_same_write)
{
    make_key(1);
    create_spreadsheet(1, 1000);
    buffer_rows(1000);
    cJSON *before = stats();
    cr_assert_eq(run_flush("5000"), 0);
    cJSON *after = stats();
    assert_sheet_exact(1000);
    double values = stat_calls(after, "values.batchUpdate") - stat_calls(before, "values.batchUpdate");
    double batch = stat_calls(after, "batchUpdate") - stat_calls(before, "batchUpdate");
    cr_expect_eq(values + batch, 1, "%.0f values.batchUpdate + %.0f batchUpdate calls for the first 1000 rows", values,
                 batch);
    cJSON_Delete(before);
    cJSON_Delete(after);
}

Test(flusher, the_summary_is_the_termination_message)
{
    make_key(1);
    create_spreadsheet(1, 1000);
    buffer_rows(120);
    char path[] = "/tmp/fp-termination-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    tk_proc p;
    start_flush_with(&p, "50", (const char *[]){"--termination-log", path, NULL});
    cr_assert_eq(tk_wait(&p, 120), 0);
    char *text = tk_read_file(path);
    unlink(path);
    cJSON *summary = cJSON_Parse(text);
    cr_assert(cJSON_IsObject(summary), "one JSON object for the operator: %s", text);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(summary, "rows")->valuedouble, 120);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(summary, "rows_left")->valuedouble, 0);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(summary, "error")), "");
    cr_assert_leq(strlen(text), 4096, "a kubelet keeps 4096 bytes");
    cJSON_Delete(summary);
    free(text);
    assert_sheet_exact(120);
}

Test(flusher, kill_9_at_random_moments_never_duplicates_or_loses)
{
    make_key(1);
    create_spreadsheet(1, 100);
    /* Enough rows that the buffer can't run dry before the 20th kill: every run dies
     * mid-flight, and a final run completes the rest. */
    buffer_rows(8000);
    /* This test is about crashes, not the quota (its own test): lift the write quota. */
    control("/_control/faults", "{\"latency_ms\":40,\"count\":100000,\"write_quota_per_minute\":100000}");
    const char *const unlimited[] = {"--lock-ttl", "1s", "--sheets-writes-per-minute", "100000", NULL};
    srand((unsigned)getpid());
    int killed = 0;
    for (int i = 0; i < 20; i++) {
        tk_proc p;
        start_flush_with(&p, "150", unlimited);
        usleep((useconds_t)(50 + rand() % 400) * 1000);
        killed += tk_stop(&p, SIGKILL, 30) == 128 + SIGKILL;
        usleep(1100 * 1000);   /* the dead run's lock expires */
    }
    control("/_control/faults", "{\"latency_ms\":0,\"count\":0}");
    tk_proc last;
    start_flush_with(&last, "150", unlimited);
    cr_assert_eq(tk_wait(&last, 240), 0, "a final run completes what the killed ones left");
    assert_sheet_exact(8000);
    cr_log_info("%d of 20 runs were killed mid-flight", killed);
    cr_assert_gt(killed, 10, "most runs must really die mid-flight");
}

Test(flusher, storms_of_429_500_and_lost_responses_stay_exact_within_the_quota)
{
    make_key(1);
    create_spreadsheet(1, 100);
    buffer_rows(2000);
    control("/_control/faults", "{\"status\":429,\"count\":4}");
    tk_proc p;
    start_flush(&p, "200", NULL);
    usleep(300 * 1000);
    control("/_control/faults", "{\"status\":500,\"count\":3}");
    usleep(300 * 1000);
    control("/_control/faults", "{\"drop_after_apply\":3}");
    cr_assert_eq(tk_wait(&p, 240), 0);
    assert_sheet_exact(2000);
    char *log = tk_read_file(p.log);
    cr_assert_not_null(strstr(log, "\"sheets_throttled\":"), "the summary counts the 429s: %s", log);
    cr_assert_null(strstr(log, "\"sheets_throttled\":0,"), "the summary counts the 429s: %s", log);
    cr_assert_null(strstr(log, "\"quota_wait_ms\":0,"), "and the time they cost: %s", log);
    cr_assert_not_null(strstr(log, "\"oldest_left_ms\":-1,"), "nothing is left waiting: %s", log);
    free(log);
    cJSON *s = stats();
    cJSON *faults = cJSON_GetObjectItemCaseSensitive(s, "faults");
    char *text = cJSON_PrintUnformatted(faults);
    cr_log_info("faults: %s", text);
    free(text);
    cr_assert_gt(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(faults, "drop_after_apply")), 0);
    double peak = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "max_writes_per_minute"), email));
    cr_assert(peak > 0 && peak <= 60, "the write rate never exceeds the quota (peak %.0f per minute)", peak);
    cJSON_Delete(s);
}

Test(flusher, two_runs_at_once_one_holds_the_lock_and_the_result_is_exact)
{
    make_key(1);
    create_spreadsheet(1, 100);
    buffer_rows(3000);
    control("/_control/faults", "{\"latency_ms\":20,\"count\":100000}");
    tk_proc a, b;
    start_flush(&a, "200", NULL);
    start_flush(&b, "200", NULL);
    cr_assert_eq(tk_wait(&a, 240), 0);
    cr_assert_eq(tk_wait(&b, 240), 0);
    control("/_control/faults", "{\"latency_ms\":0,\"count\":0}");
    assert_sheet_exact(3000);
}

Test(flusher, bad_credentials_and_unshared_sheets_exit_1_with_one_clear_line)
{
    make_key(0);   /* the emulator does not know this key: like a revoked one */
    create_spreadsheet(1, 100);
    buffer_rows(10);
    tk_proc p;
    start_flush(&p, "100", NULL);
    cr_assert_eq(tk_wait(&p, 60), 1);
    char *log = tk_read_file(p.log);
    cr_assert_not_null(strstr(log, "formpipe-flush: token endpoint refused the service account"), "%s", log);
    free(log);

    unlink(key_path);
    free(key_path);
    make_key(1);
    snprintf(sheet_id, sizeof sheet_id, "unshared-%s", name);
    create_spreadsheet(0, 100);
    start_flush(&p, "100", NULL);
    cr_assert_eq(tk_wait(&p, 60), 1);
    log = tk_read_file(p.log);
    cr_assert_not_null(strstr(log, "is not shared with"), "%s", log);
    free(log);
    long long pending = 0;
    fp_error err = {0};
    fp_rowstore_pending(buffer, &pending, &err);
    cr_assert_eq(pending, 10, "nothing leaves the buffer when the sheet can't be written");
}

Test(flusher, a_redis_master_failover_mid_run_stays_exact)
{
    make_key(1);
    create_spreadsheet(1, 100);
    buffer_rows(3000);
    fp_error err = {0};
    cr_assert_eq(fp_redis_connect(redis, &err), 0, "%s", err.msg);
    char component[32];
    tk_redis_component(atoi(strrchr(fp_redis_master_addr(redis), ':') + 1), component, sizeof component);
    /* Both replicas confirm every state change, so the promoted one knows them all. */
    control("/_control/faults", "{\"latency_ms\":30,\"count\":100000}");
    tk_proc p;
    start_flush_with(&p, "100", (const char *[]){"--min-replicas-ack", "2", "--max-run-time", "120s", NULL});
    usleep(800 * 1000);
    tk_testenv("kill", component);
    sleep(3);
    tk_testenv("start", component);
    int rc = tk_wait(&p, 180);
    control("/_control/faults", "{\"latency_ms\":0,\"count\":0}");
    if (rc != 0)
        tk_show_log(&p);
    cr_assert_eq(rc, 0, "the run rides out the failover");
    assert_sheet_exact(3000);
}

static long long buffered(void)
{
    long long pending = -1;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_pending(buffer, &pending, &err), 0, "%s", err.msg);
    return pending;
}

Test(flusher, an_outage_beyond_the_retries_exits_75_and_keeps_the_rows)
{
    make_key(1);
    create_spreadsheet(1, 100);
    buffer_rows(500);
    control("/_control/faults", "{\"status\":503,\"count\":1000}");
    tk_proc p;
    start_flush_with(&p, "100", (const char *[]){"--sheets-max-attempts", "2", "--max-run-time", "2s", NULL});
    int rc = tk_wait(&p, 60);
    control("/_control/faults", "{\"status\":200,\"count\":0}");
    cr_assert_eq(rc, 75, "EX_TEMPFAIL: try again later");
    cr_assert_eq(buffered(), 500, "nothing leaves the buffer");
    char *log = tk_read_file(p.log);
    cr_assert_not_null(strstr(log, "\"sheets_retries\":"), "the summary counts retries: %s", log);
    free(log);
    cr_assert_eq(run_flush("100"), 0, "once the API is back, the next run delivers");
    assert_sheet_exact(500);
}

Test(flusher, stops_when_the_minute_write_quota_is_spent)
{
    make_key(1);
    create_spreadsheet(1, 10000);
    buffer_rows(2000);
    tk_proc p;
    start_flush_with(&p, "100", (const char *[]){"--sheets-writes-per-minute", "6", NULL});
    cr_assert_eq(tk_wait(&p, 60), 0);
    char *log = tk_read_file(p.log);
    cr_assert_not_null(strstr(log, "\"quota_spent\":true"), "%s", log);
    free(log);
    long long left = buffered();
    cr_assert(left > 0 && left < 2000, "some batches written, the rest left for the next run (%lld left)", left);
}

Test(flusher, a_revoked_access_token_is_replaced_mid_run)
{
    make_key(1);
    create_spreadsheet(1, 100);
    buffer_rows(2000);
    control("/_control/faults", "{\"latency_ms\":30,\"count\":100000}");
    tk_proc p;
    start_flush(&p, "100", NULL);
    usleep(700 * 1000);
    control("/_control/faults", "{\"revoke_tokens\":true}");
    int rc = tk_wait(&p, 120);
    control("/_control/faults", "{\"latency_ms\":0,\"count\":0}");
    cr_assert_eq(rc, 0);
    char *log = tk_read_file(p.log);
    cr_assert_not_null(strstr(log, "access token refused (401); fetching a new one"), "%s", log);
    free(log);
    assert_sheet_exact(2000);
}

Test(flusher, an_existing_sheet_keeps_its_rows_and_new_rows_follow_them)
{
    make_key(1);
    char json[768];
    snprintf(json, sizeof json,
             "{\"id\":\"%s\",\"sheets\":[{\"title\":\"Sheet1\",\"rowCount\":50,\"columnCount\":26,"
             "\"values\":[[\"Submitted\",\"By hand\"],[\"old-1\",\"kept\"],[\"old-2\",\"kept\"]]}],"
             "\"shared_with\":[\"%s\"]}", sheet_id, email);
    control("/_control/spreadsheets", json);
    buffer_rows(10);
    cr_assert_eq(run_flush("100"), 0);

    char url[300], *body;
    snprintf(url, sizeof url, "%s/_control/spreadsheets/%s/values/Sheet1", sheets_url, sheet_id);
    cr_assert_eq(tk_http(url, NULL, &body), 200);
    cJSON *doc = cJSON_Parse(body);
    free(body);
    cJSON *values = cJSON_GetObjectItemCaseSensitive(doc, "values");
    cr_assert_eq(cJSON_GetArraySize(values), 3 + 10, "3 existing rows + 10 new, no second header");
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(values, 0), 0)->valuestring, "Submitted");
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(values, 2), 1)->valuestring, "kept");
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(values, 3), 0)->valuestring, "id-0000000",
                     "new rows start at the first empty row");
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(values, 12), 0)->valuestring, "id-0000009");
    cJSON_Delete(doc);

    /* Later runs keep the tab's own first row too: no header is written over it. */
    buffer_rows_from(10, 2, -1);
    cr_assert_eq(run_flush("100"), 0);
    doc = tab(sheet_id, "Sheet1");
    cr_assert_str_eq(cell(doc, 1, 1), "Submitted", "row 1 is still the tab's own");
    cr_assert_str_eq(cell(doc, 15, 1), "id-0000011");
    cJSON_Delete(doc);
}

/* A spreadsheet with one tab; max_cells 0: the emulator's default (Google's 10M). */
static void create_book(const char *id, const char *title, int rows, int cols, long long max_cells)
{
    char json[768];
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"sheets\":[{\"title\":\"%s\",\"rowCount\":%d,\"columnCount\":%d}],"
             "\"shared_with\":[\"%s\"]%s%lld}", id, title, rows, cols, email, max_cells ? ",\"maxCells\":" : ",\"x\":",
             max_cells);
    control("/_control/spreadsheets", json);
}

/* One tab as the emulator holds it: {rowCount, columnCount, values} (caller deletes). */
static cJSON *tab(const char *book, const char *title)
{
    char url[400], *body;
    snprintf(url, sizeof url, "%s/_control/spreadsheets/%s/values/%s", sheets_url, book, title);
    long st = tk_http(url, NULL, &body);
    cr_assert_eq(st, 200, "%s/%s: HTTP %ld %s", book, title, st, body);
    cJSON *doc = cJSON_Parse(body);
    free(body);
    return doc;
}

static const char *cell(const cJSON *doc, int row, int col)   /* 1-based, as in the sheet */
{
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "values"), row - 1);
    return cJSON_GetStringValue(cJSON_GetArrayItem(r, col - 1));
}

/* The tab holds the header in row 1, then ids first..first+count-1 from row 2 on, and
 * nothing after them. */
static void assert_tab(const char *book, const char *title, int first, int count)
{
    cJSON *doc = tab(book, title);
    int rows = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "values"));
    cr_assert_eq(rows, count + 1, "%s/%s: header + %d rows, got %d rows", book, title, count, rows);
    cr_assert_str_eq(cell(doc, 1, 1), "id", "%s/%s has its header", book, title);
    cr_assert_str_eq(cell(doc, 1, 5), "note");
    for (int i = 0; i < count; i++) {
        char id[24];
        snprintf(id, sizeof id, "id-%07d", first + i);
        cr_assert_str_eq(cell(doc, i + 2, 1), id, "%s/%s row %d", book, title, i + 2);
    }
    cJSON_Delete(doc);
}

static char *run_log(tk_proc *p)
{
    return tk_read_file(p->log);
}

Test(flusher, a_form_of_40_fields_grows_the_columns_of_a_new_tab)
{
    enum { FIELDS = 40, ROWS = 30 };
    make_key(1);
    create_book(sheet_id, "Sheet1", 100, 26, 0);   /* a new tab: 26 columns, like Google's */
    fp_buf form, row;
    fp_buf_init(&form, 1 << 16);
    fp_buf_init(&row, 1 << 16);
    cr_assert_eq(fp_buf_printf(&form, "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,\"fields\":[", name), 0);
    for (int f = 0; f < FIELDS; f++)
        cr_assert_eq(fp_buf_printf(&form, "%s{\"name\":\"field%02d\"}", f ? "," : "", f), 0);
    cr_assert_eq(fp_buf_adds(&form, "]}"), 0);
    unlink(form_path);
    free(form_path);
    form_path = tk_write_temp(form.data);
    for (int i = 0; i < ROWS; i++) {
        char id[24];
        snprintf(id, sizeof id, "id-%07d", i);
        fp_buf_reset(&row);
        cr_assert_eq(fp_buf_printf(&row, "[\"%s\",\"t\"", id), 0);
        for (int f = 0; f < FIELDS; f++)
            cr_assert_eq(fp_buf_printf(&row, ",\"r%d-f%d\"", i, f), 0);
        cr_assert_eq(fp_buf_adds(&row, "]"), 0);
        fp_rowstore_row r = {id, 1000 + i, row.data};
        long long added;
        fp_error err = {0};
        cr_assert_eq(fp_rowstore_insert(buffer, &r, 1, &added, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(run_flush("100"), 0);
    cJSON *doc = tab(sheet_id, "Sheet1");
    long long cols = (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "columnCount"));
    cr_assert_geq(cols, 2 + FIELDS, "the tab grew to %d columns (has %lld)", 2 + FIELDS, cols);
    cr_assert_str_eq(cell(doc, 1, 2 + FIELDS), "field39", "the header reaches the last field");
    cr_assert_str_eq(cell(doc, ROWS + 1, 1), "id-0000029");
    cr_assert_str_eq(cell(doc, ROWS + 1, 2 + FIELDS), "r29-f39", "the last cell of the last row");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "values")), ROWS + 1);
    cJSON_Delete(doc);
    fp_buf_free(&form);
    fp_buf_free(&row);
    cr_assert_eq(buffered(), 0);
}

Test(flusher, a_408_is_retried)
{
    make_key(1);
    create_spreadsheet(1, 100);
    buffer_rows(300);
    control("/_control/faults", "{\"status\":408,\"count\":3}");
    tk_proc p;
    start_flush(&p, "100", NULL);
    cr_assert_eq(tk_wait(&p, 120), 0, "a 408 is worth retrying");
    char *log = run_log(&p);
    cr_assert_not_null(strstr(log, "\"status\":408"), "the retries are logged: %s", log);
    free(log);
    assert_sheet_exact(300);
}

Test(flusher, a_lower_case_tab_name_addresses_the_existing_tab)
{
    make_key(1);
    create_book(sheet_id, "Responses", 100, 26, 0);
    buffer_rows(20);
    tk_proc p;
    start_flush_with(&p, "100", (const char *[]){"--sheet", "responses", NULL});
    cr_assert_eq(tk_wait(&p, 60), 0);
    assert_tab(sheet_id, "Responses", 0, 20);
    cJSON *s = stats();
    cr_assert_eq(stat_calls(s, "batchUpdate"), 0, "no tab was added (no spreadsheets.batchUpdate)");
    cJSON_Delete(s);
    char url[400], *body;
    snprintf(url, sizeof url, "%s/_control/spreadsheets/%s/values/responses", sheets_url, sheet_id);
    cr_assert_eq(tk_http(url, NULL, &body), 200, "the emulator matches tab titles in any case too");
    free(body);
}

Test(flusher, a_batch_is_split_into_requests_under_the_byte_bound)
{
    make_key(1);
    create_spreadsheet(1, 1000);
    buffer_rows(500);   /* about 90 bytes a row: ~45 kB */
    cJSON *before = stats();
    tk_proc p;
    start_flush_with(&p, "500", (const char *[]){"--sheets-max-request-bytes", "4096", NULL});
    cr_assert_eq(tk_wait(&p, 120), 0);
    cJSON *after = stats();
    double writes = stat_calls(after, "values.batchUpdate") - stat_calls(before, "values.batchUpdate");
    double biggest = stat_calls(after, "max_request_bytes");
    /* ~45 kB in requests of 4 kB: at least 10 (the header row goes with the first one) */
    cr_assert_geq(writes, 10, "one batch of 500 rows in several requests (%.0f)", writes);
    cr_assert_leq(biggest, 4096, "every request within the bound (largest %.0f bytes)", biggest);
    cJSON_Delete(before);
    cJSON_Delete(after);
    assert_sheet_exact(500);
}

Test(flusher, a_row_sheets_refuses_goes_to_the_dead_letters_and_the_rest_goes_on)
{
    make_key(1);
    create_spreadsheet(1, 1000);
    buffer_rows_from(0, 100, 37);   /* row 37: a cell of 60,000 characters (Sheets: 400) */
    tk_proc p;
    start_flush_with(&p, "50", (const char *[]){"--dead-letter-after", "2", NULL});
    cr_assert_eq(tk_wait(&p, 120), 0, "a refused row does not fail the run");
    char *log = run_log(&p);
    cr_assert_not_null(strstr(log, "the next run tries it again"), "attempts are spread over runs: %s", log);
    cr_assert_not_null(strstr(log, "\"rows_dead_lettered\":0"), "%s", log);
    free(log);
    start_flush_with(&p, "50", (const char *[]){"--dead-letter-after", "2", NULL});
    cr_assert_eq(tk_wait(&p, 120), 0, "a refused row does not fail the run");
    log = run_log(&p);
    cr_assert_not_null(strstr(log, "\"rows_dead_lettered\":1"), "the second refusal sets it aside: %s", log);
    cr_assert_not_null(strstr(log, "50000 characters"), "the reason is logged: %s", log);
    free(log);
    cJSON *doc = tab(sheet_id, "Sheet1");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "values")), 1 + 99, "header + 99 rows");
    for (int i = 0, row = 2; i < 100; i++) {
        char id[24];
        if (i == 37)
            continue;
        snprintf(id, sizeof id, "id-%07d", i);
        cr_assert_str_eq(cell(doc, row, 1), id, "sheet row %d", row);
        row++;
    }
    cJSON_Delete(doc);
    cr_assert_eq(buffered(), 0);

    char key[600];
    redisReply *rep;
    fp_error err = {0};
    fp_rowstore_key(key, sizeof key, "tests", name, "dead");
    const char *argv[] = {"HGET", key, "id-0000037"};
    size_t lens[] = {4, strlen(key), 10};
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 3, argv, lens), 0, "%s", err.msg);
    cr_assert_eq(rep->type, REDIS_REPLY_STRING, "the refused row is in fp:{P}:dead");
    cr_assert_not_null(strstr(rep->str, "50000 characters"), "with its reason: %.200s", rep->str);
    freeReplyObject(rep);

    /* The next run is not blocked: new rows follow the last written one. */
    buffer_rows_from(100, 10, -1);
    cr_assert_eq(run_flush("50"), 0);
    doc = tab(sheet_id, "Sheet1");
    cr_assert_str_eq(cell(doc, 101, 1), "id-0000100", "the next run continues right after");
    cr_assert_str_eq(cell(doc, 110, 1), "id-0000109");
    cJSON_Delete(doc);
}

Test(flusher, near_the_cell_limit_the_next_spreadsheet_gets_a_header_and_the_rows)
{
    char second[80];
    make_key(1);
    snprintf(second, sizeof second, "%.70s-2", sheet_id);
    create_book(sheet_id, "Sheet1", 50, 26, 2600);   /* the emulator enforces the same limit */
    create_book(second, "Sheet1", 50, 26, 2600);
    buffer_rows(150);
    tk_proc p;
    start_flush_with(&p, "40", (const char *[]){"--spreadsheet-id", second, "--spreadsheet-cell-limit", "2600", NULL});
    cr_assert_eq(tk_wait(&p, 120), 0);
    char *log = run_log(&p);
    cr_assert_not_null(strstr(log, "moving on to the next one"), "%s", log);
    free(log);
    /* 100 rows x 26 columns fit: header + two batches of 40; the third goes on. */
    assert_tab(sheet_id, "Sheet1", 0, 80);
    assert_tab(second, "Sheet1", 80, 70);
    cr_assert_eq(buffered(), 0);

    /* Later runs start at the spreadsheet the list moved on to. */
    buffer_rows_from(150, 5, -1);
    start_flush_with(&p, "40", (const char *[]){"--spreadsheet-id", second, "--spreadsheet-cell-limit", "2600", NULL});
    cr_assert_eq(tk_wait(&p, 120), 0);
    assert_tab(second, "Sheet1", 80, 75);
}

Test(flusher, with_every_spreadsheet_full_the_run_stops_with_exit_3_and_says_what_to_do)
{
    make_key(1);
    /* The flusher's own limit is Google's; the emulator's spreadsheet is smaller: its
     * 400 on the growth (sent with the rows) is how the run learns (a recorded batch is
     * given back). */
    create_book(sheet_id, "Sheet1", 50, 26, 2600);
    buffer_rows(150);
    tk_proc p;
    start_flush(&p, "40", NULL);
    cr_assert_eq(tk_wait(&p, 120), 3, "3: every spreadsheet is full");
    char *log = run_log(&p);
    cr_assert_not_null(strstr(log, "\"spreadsheets_full\":true"), "%s", log);
    cr_assert_not_null(strstr(log, "add its id"), "%s", log);
    free(log);
    long long left = buffered();
    cr_assert(left > 0 && left < 150, "what fitted was written, the rest stays buffered (%lld left)", left);
    assert_tab(sheet_id, "Sheet1", 0, (int)(150 - left));

    /* Adding a spreadsheet is all it takes. */
    char second[80];
    snprintf(second, sizeof second, "%.70s-2", sheet_id);
    create_book(second, "Sheet1", 50, 26, 0);
    start_flush_with(&p, "40", (const char *[]){"--spreadsheet-id", second, NULL});
    cr_assert_eq(tk_wait(&p, 120), 0);
    assert_tab(second, "Sheet1", (int)(150 - left), (int)left);
    cr_assert_eq(buffered(), 0);
}

Test(flusher, a_new_target_starts_at_row_2_with_a_header_and_the_old_keeps_its_place)
{
    char other[80];
    make_key(1);
    snprintf(other, sizeof other, "%.70s-other", sheet_id);
    create_book(sheet_id, "Sheet1", 100, 26, 0);
    create_book(other, "Sheet1", 100, 26, 0);
    buffer_rows_from(0, 10, -1);
    cr_assert_eq(run_flush("100"), 0);
    assert_tab(sheet_id, "Sheet1", 0, 10);

    /* Another spreadsheet: its own position, from row 2 under a header. */
    buffer_rows_from(10, 10, -1);
    tk_proc p;
    char *saved = strdup(sheet_id);
    snprintf(sheet_id, sizeof sheet_id, "%s", other);
    start_flush(&p, "100", NULL);
    cr_assert_eq(tk_wait(&p, 60), 0);
    assert_tab(other, "Sheet1", 10, 10);

    /* Another tab of it: added, header, row 2. */
    buffer_rows_from(20, 5, -1);
    start_flush_with(&p, "100", (const char *[]){"--sheet", "Second", NULL});
    cr_assert_eq(tk_wait(&p, 60), 0);
    assert_tab(other, "Second", 20, 5);

    /* Back to the first: it continues where it stopped (row 12), no second header. */
    snprintf(sheet_id, sizeof sheet_id, "%s", saved);
    free(saved);
    buffer_rows_from(25, 5, -1);
    cr_assert_eq(run_flush("100"), 0);
    cJSON *doc = tab(sheet_id, "Sheet1");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "values")), 1 + 10 + 5);
    cr_assert_str_eq(cell(doc, 11, 1), "id-0000009");
    cr_assert_str_eq(cell(doc, 12, 1), "id-0000025", "continues at row 12");
    cr_assert_str_eq(cell(doc, 16, 1), "id-0000029");
    cJSON_Delete(doc);
}

Test(flusher, an_earlier_versions_position_is_kept_by_the_current_target)
{
    make_key(1);
    create_book(sheet_id, "Sheet1", 100, 26, 0);
    buffer_rows_from(0, 5, -1);
    cr_assert_eq(run_flush("100"), 0);
    /* As an earlier version left it: one position per pipeline, none per target. */
    char key[600], positions[600];
    redisReply *rep;
    fp_error err = {0};
    fp_rowstore_key(key, sizeof key, "tests", name, "nextrow");
    fp_rowstore_key(positions, sizeof positions, "tests", name, "positions");
    const char *del[] = {"DEL", positions};
    size_t dlens[] = {3, strlen(positions)};
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 2, del, dlens), 0, "%s", err.msg);
    freeReplyObject(rep);
    const char *set[] = {"SET", key, "7"};
    size_t slens[] = {3, strlen(key), 1};
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 3, set, slens), 0, "%s", err.msg);
    freeReplyObject(rep);
    buffer_rows_from(5, 5, -1);
    cr_assert_eq(run_flush("100"), 0);
    assert_tab(sheet_id, "Sheet1", 0, 10);   /* row 7 onwards: right after the first 5 */
}

Test(flusher, a_fresh_connection_logs_no_noscript)
{
    make_key(1);
    create_spreadsheet(1, 100);
    buffer_rows(10);
    redisReply *rep;
    fp_error err = {0};
    const char *argv[] = {"SCRIPT", "FLUSH"};
    size_t lens[] = {6, 5};
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 2, argv, lens), 0, "%s", err.msg);
    freeReplyObject(rep);
    tk_proc p;
    start_flush_with(&p, "100", (const char *[]){"--log-level", "debug", NULL});
    cr_assert_eq(tk_wait(&p, 60), 0);
    char *log = run_log(&p);
    cr_assert_null(strstr(log, "NOSCRIPT"), "%s", log);
    free(log);
    assert_sheet_exact(10);
}
