/* formpipe-flush as a process against the real Redis Sentinel and the Sheets API
 * emulator: exact rows in buffer order, kill -9 at random moments, 429/500 storms and
 * lost responses, two runs at once, and errors a person can act on. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buffer.h"
#include "flushstate.h"
#include "testkit.h"

static char name[64], sheet_id[80], email[128], *form_path, *key_path, keydir[64];
static const char *sheets_url;
static fp_redis *redis;
static fp_buffer *buffer;

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
    char cmd[512], pem_path[128], pub_path[128];
    snprintf(keydir, sizeof keydir, "/tmp/fp-key-XXXXXX");
    cr_assert_not_null(mkdtemp(keydir));
    snprintf(pem_path, sizeof pem_path, "%s/key.pem", keydir);
    snprintf(pub_path, sizeof pub_path, "%s/pub.pem", keydir);
    snprintf(cmd, sizeof cmd, "openssl genrsa -out %s 2048 2>/dev/null && openssl rsa -in %s -pubout -out %s 2>/dev/null",
             pem_path, pem_path, pub_path);
    cr_assert_eq(system(cmd), 0, "openssl failed");
    char *pem = tk_read_file(pem_path), *pub = tk_read_file(pub_path);
    snprintf(email, sizeof email, "%s@formpipe-tests.iam.gserviceaccount.com", name);
    cJSON *key = cJSON_CreateObject();
    cJSON_AddStringToObject(key, "type", "service_account");
    cJSON_AddStringToObject(key, "client_email", email);
    cJSON_AddStringToObject(key, "private_key", pem);
    cJSON_AddStringToObject(key, "private_key_id", "test-key-1");
    char token_uri[256];
    snprintf(token_uri, sizeof token_uri, "%s/token", sheets_url);
    cJSON_AddStringToObject(key, "token_uri", token_uri);
    char *text = cJSON_Print(key);
    key_path = tk_write_temp(text);
    if (trusted) {
        cJSON *reg = cJSON_CreateObject();
        cJSON_AddStringToObject(reg, "client_email", email);
        cJSON_AddStringToObject(reg, "public_key_pem", pub);
        char *json = cJSON_PrintUnformatted(reg);
        control("/_control/keys", json);
        free(json);
        cJSON_Delete(reg);
    }
    free(text);
    cJSON_Delete(key);
    free(pem);
    free(pub);
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
    buffer = fp_buffer_new(redis, "tests", name, &err);
    cr_assert_not_null(buffer, "%s", err.msg);
    tk_redis_settled(redis);
    control("/_control/faults", "{\"write_quota_per_minute\":60,\"status\":200,\"count\":0,\"drop_after_apply\":0}");
}

static void teardown(void)
{
    char cmd[128];
    fp_buffer_free(buffer);
    fp_redis_free(redis);
    unlink(form_path);
    free(form_path);
    if (key_path) {
        unlink(key_path);
        free(key_path);
        key_path = NULL;
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", keydir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", keydir);
}

TestSuite(flusher, .init = setup, .fini = teardown, .timeout = 300);

/* Buffers rows 0..n-1 (submission time = i), the way the consumer would: each row
 * built from its encoded event. */
static void buffer_rows(int n)
{
    fp_buffer_row rows[500];
    size_t at[500];
    char ids[500][24];
    fp_buf text;
    fp_buf_init(&text, 1 << 24);
    for (int base = 0; base < n; base += 500) {
        int k = n - base < 500 ? n - base : 500;
        fp_buf_reset(&text);
        for (int j = 0; j < k; j++) {
            int i = base + j;
            char data[160];
            fp_event ev;
            fp_error err = {0};
            snprintf(ids[j], sizeof ids[j], "id-%07d", i);
            snprintf(data, sizeof data, "{\"name\":\"student %d\",\"roll\":\"%d\",\"note\":\"=SUM(A1:A%d)\"}", i, i, i);
            cJSON *d = cJSON_Parse(data);
            char *json = fp_event_encode(ids[j], "tests", "flush", 1795392000000LL + i, 1, d);
            cr_assert_eq(fp_event_parse(json, strlen(json), &ev, &err), 0, "%s", err.msg);
            at[j] = text.len;
            cr_assert_eq(fp_buffer_row_append(&text, &ev, (const char *[]){"name", "roll", "note"}, 3, NULL, &err), 0,
                         "%s", err.msg);
            cr_assert_eq(fp_buf_add(&text, "", 1), 0);
            fp_event_clear(&ev);
            free(json);
            cJSON_Delete(d);
        }
        for (int j = 0; j < k; j++)
            rows[j] = (fp_buffer_row){ids[j], 1000000 + base + j, text.data + at[j]};
        long long added;
        fp_error err = {0};
        cr_assert_eq(fp_buffer_insert(buffer, rows, (size_t)k, &added, &err), 0, "%s", err.msg);
    }
    fp_buf_free(&text);
}

/* Starts one run with extra flags (NULL-terminated, may be NULL). */
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
    for (int i = 0; extra && extra[i] && n < 46; i++)
        argv[n++] = extra[i];
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
    for (int attempt = 0; attempt < 50 && fp_buffer_pending(buffer, &pending, &err); attempt++)
        usleep(200 * 1000);   /* our own connection may still point at a killed master */
    cr_assert_eq(pending, 0, "the buffer is empty once the rows are in the sheet (%s)", err.msg);
}

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
    fp_buffer_pending(buffer, &pending, &err);
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
    cr_assert_eq(fp_buffer_pending(buffer, &pending, &err), 0, "%s", err.msg);
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
}
