/* formpipe-flush --forms-dir (shared mode) as a process against the real Redis
 * Sentinel and the Sheets API emulator: several pipelines and service accounts in one
 * run, fair turns, one write budget per account shared by concurrent runs, kill -9
 * mid-run, the fp:{P}:lastflush record, the idle run and the exit status. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rowstore.h"
#include "testkit.h"

#define MAXP 4

typedef struct pl {
    char name[64], sheet[96], account[8];   /* account: "a" or "b" (a directory of the credentials dir) */
    int rows;                                /* rows buffered */
    fp_rowstore *buffer;
} pl;

static char tag[48], forms_dir[64], creds_dir[64], email_a[128], email_b[128];
static fp_redis *redis;
static pl pls[MAXP];
static int npl;

static void setup(void)
{
    tk_unique(tag, sizeof tag, "sh");
    snprintf(forms_dir, sizeof forms_dir, "/tmp/fp-forms-XXXXXX");
    snprintf(creds_dir, sizeof creds_dir, "/tmp/fp-creds-XXXXXX");
    cr_assert_not_null(mkdtemp(forms_dir));
    cr_assert_not_null(mkdtemp(creds_dir));
    redis = tk_redis();
    tk_redis_settled(redis);
    npl = 0;
    cJSON_Delete(tk_sheets_control("/_control/faults",
                                   "{\"write_quota_per_minute\":60,\"status\":200,\"count\":0,\"drop_after_apply\":0}"));
}

static void teardown(void)
{
    for (int i = 0; i < npl; i++)
        fp_rowstore_free(pls[i].buffer);
    fp_redis_free(redis);
    tk_sh(NULL, "rm -rf %s %s", forms_dir, creds_dir);
}

TestSuite(flush_shared, .init = setup, .fini = teardown, .timeout = 300);

/* Service account "a" or "b": its key file at <creds>/sa-<x>/key.json. */
static void account(const char *which, char *email, size_t emailsz)
{
    char path[128];
    snprintf(email, emailsz, "%s-%s@formpipe-tests.iam.gserviceaccount.com", tag, which);
    cr_assert_eq(tk_sh(NULL, "mkdir -p %s/sa-%s", creds_dir, which), 0);
    snprintf(path, sizeof path, "%s/sa-%s/key.json", creds_dir, which);
    tk_sheets_key(email, path, 1);
}

/* Writes a form file with its shared.sheets settings (the operator's ConfigMap key). */
static void write_form(const char *dir, const pl *p, int batch_rows)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.json", dir, p->name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,\"fields\":[{\"name\":\"name\"},{\"name\":\"roll\"}],"
            "\"shared\":{\"group\":\"formpipe.tests.shared\",\"sheets\":{\"spreadsheetIds\":[\"%s\"],\"sheet\":\"Sheet1\","
            "\"batchRows\":%d,\"credentials\":\"sa-%s/key.json\"}}}",
            p->name, p->sheet, batch_rows, p->account);
    cr_assert_eq(fclose(f), 0);
}

/* Buffers rows 0..n-1 of a pipeline (received at base_ms + i), as the consumer would. */
static void buffer_rows(pl *p, int n, long long base_ms)
{
    fp_rowstore_row rows[500];
    char ids[500][96];
    fp_buf text;
    size_t at[500];
    fp_buf_init(&text, 1 << 22);
    for (int base = 0; base < n; base += 500) {
        int k = n - base < 500 ? n - base : 500;
        fp_buf_reset(&text);
        for (int j = 0; j < k; j++) {
            fp_event ev;
            fp_error err = {0};
            char data[128];
            snprintf(ids[j], sizeof ids[j], "%s-%06d", p->name, base + j);
            snprintf(data, sizeof data, "{\"name\":\"student %d\",\"roll\":\"%d\"}", base + j, base + j);
            cJSON *d = cJSON_Parse(data);
            char *json = fp_event_encode(ids[j], "tests", p->name, base_ms + base + j, 1, d);
            cr_assert_eq(fp_event_parse(json, strlen(json), &ev, &err), 0, "%s", err.msg);
            at[j] = text.len;
            cr_assert_eq(fp_rowstore_row_append(&text, &ev, (const char *[]){"name", "roll"}, 2, NULL, &err), 0, "%s",
                         err.msg);
            cr_assert_eq(fp_buf_add(&text, "", 1), 0);
            fp_event_clear(&ev);
            free(json);
            cJSON_Delete(d);
        }
        for (int j = 0; j < k; j++)
            rows[j] = (fp_rowstore_row){ids[j], base_ms + base + j, text.data + at[j]};
        long long added;
        fp_error err = {0};
        cr_assert_eq(fp_rowstore_insert(p->buffer, rows, (size_t)k, &added, &err), 0, "%s", err.msg);
    }
    fp_buf_free(&text);
    p->rows += n;
}

/* A pipeline of account "a"/"b" with its own spreadsheet (shared with that account)
 * and n rows buffered, received from base_ms on. */
static pl *add_pipeline(const char *which, int n, long long base_ms, int batch_rows)
{
    cr_assert_lt(npl, MAXP);
    pl *p = &pls[npl++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s-%d", tag, npl);
    snprintf(p->sheet, sizeof p->sheet, "sheet-%s-%d", tag, npl);
    snprintf(p->account, sizeof p->account, "%s", which);
    tk_sheets_create(p->sheet, "Sheet1", 100, which[0] == 'a' ? email_a : email_b);
    fp_error err = {0};
    cr_assert_not_null(p->buffer = fp_rowstore_new(redis, "tests", p->name, &err), "%s", err.msg);
    write_form(forms_dir, p, batch_rows);
    if (n)
        buffer_rows(p, n, base_ms);
    return p;
}

/* Starts one shared run over dir with extra flags (NULL-terminated, may be NULL). */
static void start_run(tk_proc *proc, const char *dir, const char *const *extra)
{
    const char *argv[40] = {"--forms-dir", dir, "--credentials-dir", creds_dir,
                            "--sheets-api-url", tk_env("FORMPIPE_SHEETS_URL"),
                            "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
                            "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                            "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                            "--sheets-backoff-initial", "50ms", "--sheets-backoff-max", "500ms", NULL};
    int n = 0;
    while (argv[n])
        n++;
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    tk_start(proc, "formpipe-flush", argv);
}

static int run(const char *const *extra, double timeout_s)
{
    tk_proc proc;
    start_run(&proc, forms_dir, extra);
    int rc = tk_wait(&proc, timeout_s);
    if (rc != 0)
        tk_show_log(&proc);
    return rc;
}

/* The pipeline's sheet holds the header and exactly its rows 0..n-1 in order, once,
 * and its buffer is empty. */
static void assert_sheet_exact(const pl *p, int n)
{
    char path[256];
    snprintf(path, sizeof path, "/_control/spreadsheets/%s/values/Sheet1", p->sheet);
    cJSON *doc = tk_sheets_control(path, NULL);
    cJSON *values = cJSON_GetObjectItemCaseSensitive(doc, "values");
    cr_assert_eq(cJSON_GetArraySize(values), n + 1, "%s: header + %d rows, got %d rows", p->name, n,
                 cJSON_GetArraySize(values));
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(values, 0), 2)->valuestring, "name");
    for (int i = 0; i < n; i++) {
        char id[96];
        snprintf(id, sizeof id, "%s-%06d", p->name, i);
        cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(values, i + 1), 0)->valuestring, id,
                         "%s: sheet row %d", p->name, i + 2);
    }
    cJSON_Delete(doc);
    long long pending = -1;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_pending(p->buffer, &pending, &err), 0, "%s", err.msg);
    cr_assert_eq(pending, 0, "%s: the buffer is empty once its rows are in the sheet", p->name);
}

/* Rows of the pipeline's sheet (header not counted). */
static int sheet_rows(const pl *p)
{
    char path[256];
    snprintf(path, sizeof path, "/_control/spreadsheets/%s/values/Sheet1", p->sheet);
    cJSON *doc = tk_sheets_control(path, NULL);
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "values"));
    cJSON_Delete(doc);
    return n > 0 ? n - 1 : 0;
}

/* One field of fp:{tests/<name>}:lastflush ("" when missing); caller frees. */
static char *lastflush(const pl *p, const char *field)
{
    char key[256];
    redisReply *r = NULL;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_key(key, sizeof key, "tests", p->name, "lastflush"), 0);
    cr_assert_eq(fp_redis_command(redis, &r, &err, 3, (const char *[]){"HGET", key, field}, NULL), 0, "%s", err.msg);
    char *v = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return v;
}

static long long lastflush_num(const pl *p, const char *field)
{
    char *v = lastflush(p, field);
    cr_assert(*v, "%s: fp:{P}:lastflush has no %s", p->name, field);
    long long n = atoll(v);
    free(v);
    return n;
}

static double stat_num(cJSON *s, const char *group, const char *key)
{
    cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, group), key);
    return n ? cJSON_GetNumberValue(n) : 0;
}

Test(flush_shared, three_pipelines_of_two_accounts_each_get_exactly_their_rows_and_a_record)
{
    account("a", email_a, sizeof email_a);
    account("b", email_b, sizeof email_b);
    pl *p1 = add_pipeline("a", 700, 1000000, 300), *p2 = add_pipeline("a", 40, 2000000, 300),
       *p3 = add_pipeline("b", 250, 3000000, 100);
    cJSON *before = tk_sheets_control("/_control/stats", NULL);
    long long t0 = (long long)time(NULL) * 1000;
    cr_assert_eq(run((const char *[]){"--writes-per-minute", "600", NULL}, 120), 0);
    cJSON *after = tk_sheets_control("/_control/stats", NULL);
    assert_sheet_exact(p1, 700);
    assert_sheet_exact(p2, 40);
    assert_sheet_exact(p3, 250);
    cr_assert_eq(stat_num(after, "faults", "quota_429"), stat_num(before, "faults", "quota_429"), "no 429");
    const struct { const pl *p; int rows; } want[] = {{p1, 700}, {p2, 40}, {p3, 250}};
    for (int i = 0; i < 3; i++) {
        const pl *p = want[i].p;
        char *error = lastflush(p, "error"), *sheet = lastflush(p, "spreadsheet");
        cr_assert_eq(lastflush_num(p, "rows"), want[i].rows, "%s: rows in the record", p->name);
        cr_assert_eq(lastflush_num(p, "rows_left"), 0);
        cr_assert_eq(lastflush_num(p, "oldest_left_ms"), -1);
        cr_assert_eq(lastflush_num(p, "exit"), 0);
        cr_assert_eq(lastflush_num(p, "spreadsheets_full"), 0);
        cr_assert_eq(lastflush_num(p, "throttled"), 0);
        cr_assert_geq(lastflush_num(p, "quota_wait_ms"), 0);
        cr_assert_geq(lastflush_num(p, "finished_ms"), t0 - 1000, "finished_ms is the run's end (epoch ms)");
        cr_assert_str_eq(error, "");
        cr_assert_str_eq(sheet, p->sheet);
        free(error);
        free(sheet);
    }
    cJSON_Delete(before);
    cJSON_Delete(after);
}

/* The turn lines of a run's log, as pipeline names in order (at most max). */
static int turn_order(const tk_proc *proc, char order[][64], int max)
{
    char *log = tk_read_file(proc->log);
    int n = 0;
    for (char *line = strtok(log, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "msg"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "pipeline"));
        if (msg && name && strcmp(msg, "turn finished") == 0)
            snprintf(order[n++], 64, "%s", name);
        cJSON_Delete(j);
    }
    free(log);
    return n;
}

Test(flush_shared, a_big_pipeline_does_not_starve_small_ones)
{
    account("a", email_a, sizeof email_a);
    account("b", email_b, sizeof email_b);
    /* The big one waits longest, so it goes first; it needs far more writes than the
     * run's time allows at 60 writes a minute. */
    pl *big = add_pipeline("a", 3000, 1000000, 100), *small1 = add_pipeline("a", 30, 2000000, 100),
       *small2 = add_pipeline("b", 30, 3000000, 100);
    tk_proc proc;
    start_run(&proc, forms_dir, (const char *[]){"--writes-per-minute", "60", "--max-run-time", "15s", NULL});
    int rc = tk_wait(&proc, 120);
    if (rc)
        tk_show_log(&proc);
    cr_assert_eq(rc, 0, "rows left for the next run are not a failure");
    assert_sheet_exact(small1, 30);
    assert_sheet_exact(small2, 30);
    int written = sheet_rows(big);
    cr_assert(written > 0 && written < 3000, "the big pipeline got turns but not the whole run (%d rows)", written);
    cr_assert_eq(lastflush_num(big, "rows_left"), 3000 - written);
    cr_assert_eq(lastflush_num(big, "oldest_left_ms"), 1000000 + written, "the oldest row left");
    char order[64][64];
    int n = turn_order(&proc, order, 64);
    cr_assert_geq(n, 4, "%d turns", n);
    cr_assert_str_eq(order[0], big->name, "the oldest waiting pipeline goes first");
    cr_assert(strcmp(order[1], small1->name) == 0 && strcmp(order[2], small2->name) == 0,
              "then the others, oldest first, before the big one's second turn: %s %s", order[1], order[2]);
    for (int i = 3; i < n; i++)
        cr_assert_str_eq(order[i], big->name, "only the big one has rows left");
    char *log = tk_read_file(proc.log);
    cr_assert_not_null(strstr(log, "\"pipelines_left_waiting\":1"), "the summary names what is left: %s", log);
    free(log);

    /* The next run goes on where this one stopped. */
    cr_assert_eq(run((const char *[]){"--writes-per-minute", "6000", NULL}, 120), 0);
    assert_sheet_exact(big, 3000);
}

/* The highest writes per minute the emulator saw for email. */
static double peak(const char *email)
{
    cJSON *s = tk_sheets_control("/_control/stats", NULL);
    double v = stat_num(s, "max_writes_per_minute", email);
    cJSON_Delete(s);
    return v;
}

/* Two runs at once for one service account: a shared run and a second one, shared or
 * dedicated. Google (and the emulator) allow 12 writes a minute here; each run alone
 * would stay within it, both together would not without the shared budget. */
static void concurrent_runs(int second_dedicated)
{
    char other[64];
    snprintf(other, sizeof other, "/tmp/fp-forms2-XXXXXX");
    cr_assert_not_null(mkdtemp(other));
    account("a", email_a, sizeof email_a);
    pl *p1 = add_pipeline("a", 400, 1000000, 10), *p2 = add_pipeline("a", 400, 2000000, 10);
    cr_assert_eq(tk_sh(NULL, "mv %s/%s.json %s/", forms_dir, p2->name, other), 0);
    cJSON_Delete(tk_sheets_control("/_control/faults", "{\"write_quota_per_minute\":12}"));
    cJSON *before = tk_sheets_control("/_control/stats", NULL);
    const char *const flags[] = {"--writes-per-minute", "12", "--max-run-time", "70s", NULL};
    tk_proc r1, r2;
    start_run(&r1, forms_dir, flags);
    if (second_dedicated) {
        char form[256], key[256];
        snprintf(form, sizeof form, "%s/%s.json", other, p2->name);
        snprintf(key, sizeof key, "%s/sa-a/key.json", creds_dir);
        tk_start(&r2, "formpipe-flush",
                 (const char *[]){"--form", form, "--google-credentials", key, "--sheets-api-url",
                                  tk_env("FORMPIPE_SHEETS_URL"), "--spreadsheet-id", p2->sheet, "--sheet", "Sheet1",
                                  "--batch-rows", "10", "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
                                  "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"), "--redis-password-file",
                                  tk_env("FORMPIPE_REDIS_PASSWORD_FILE"), "--writes-per-minute", "12",
                                  "--max-run-time", "70s", NULL});
    } else {
        start_run(&r2, other, flags);
    }
    int rc1 = tk_wait(&r1, 150), rc2 = tk_wait(&r2, 150);
    cJSON *after = tk_sheets_control("/_control/stats", NULL);
    cJSON_Delete(tk_sheets_control("/_control/faults", "{\"write_quota_per_minute\":60}"));
    cr_assert_eq(rc1, 0);
    cr_assert_eq(rc2, 0);
    double throttled = stat_num(after, "faults", "quota_429") - stat_num(before, "faults", "quota_429");
    cr_assert_eq(throttled, 0, "the emulator answered 429 %.0f times", throttled);
    cr_assert_leq(peak(email_a), 12, "writes/minute of the account stayed within the budget");
    int w1 = sheet_rows(p1), w2 = sheet_rows(p2);
    cr_assert(w1 > 0 && w2 > 0, "both runs wrote (%d, %d rows)", w1, w2);
    /* 70 s at 12 writes a minute: about 14 writes in all, a batch of 10 rows each. */
    cr_assert_leq(w1 + w2, 10 * 16, "%d rows: more writes than the budget allows", w1 + w2);
    cJSON_Delete(before);
    cJSON_Delete(after);

    cr_assert_eq(tk_sh(NULL, "mv %s/*.json %s/ && rmdir %s", other, forms_dir, other), 0);
    cJSON_Delete(tk_sheets_control("/_control/faults", "{\"write_quota_per_minute\":100000}"));
    int rc = run((const char *[]){"--writes-per-minute", "100000", NULL}, 200);
    cJSON_Delete(tk_sheets_control("/_control/faults", "{\"write_quota_per_minute\":60}"));
    cr_assert_eq(rc, 0);
    assert_sheet_exact(p1, 400);
    assert_sheet_exact(p2, 400);
}

Test(flush_shared, two_concurrent_runs_share_one_budget_and_never_see_a_429, .timeout = 400)
{
    concurrent_runs(0);
}

Test(flush_shared, a_dedicated_run_shares_the_budget_of_a_concurrent_shared_run, .timeout = 400)
{
    concurrent_runs(1);
}

Test(flush_shared, kill_9_mid_run_is_repaired_by_the_next_run)
{
    account("a", email_a, sizeof email_a);
    account("b", email_b, sizeof email_b);
    pl *p1 = add_pipeline("a", 1500, 1000000, 100), *p2 = add_pipeline("b", 900, 2000000, 100),
       *p3 = add_pipeline("a", 300, 3000000, 50);
    /* 5 writes a second per account, two accounts, at most 100 rows a write: the 30
     * writes of 2700 rows take 3 s or more, and each kill comes within a second of its
     * run's start, so at least the first two land mid-run (2 s of runs make at most 20
     * writes). */
    const char *const flags[] = {"--writes-per-minute", "300", "--lock-ttl", "1s", "--rows-per-turn", "200", NULL};
    cJSON_Delete(tk_sheets_control("/_control/faults", "{\"write_quota_per_minute\":300}"));
    unsigned seed = (unsigned)getpid();
    int mid_run = 0;
    for (int k = 0; k < 4; k++) {
        tk_proc proc;
        start_run(&proc, forms_dir, flags);
        usleep((useconds_t)(300000 + rand_r(&seed) % 700000));
        int rc = tk_stop(&proc, SIGKILL, 10), so_far = sheet_rows(p1) + sheet_rows(p2) + sheet_rows(p3);
        cr_log_info("kill %d: exit %d, rows so far %d of 2700", k, rc, so_far);
        mid_run += rc == 128 + SIGKILL && so_far < 2700;
        usleep(1200 * 1000);   /* the killed run's locks expire */
    }
    cr_assert_geq(mid_run, 2, "kill -9 landed mid-run only %d times", mid_run);
    int rc = run(flags, 200);
    cJSON_Delete(tk_sheets_control("/_control/faults", "{\"write_quota_per_minute\":60}"));
    cr_assert_eq(rc, 0);
    assert_sheet_exact(p1, 1500);
    assert_sheet_exact(p2, 900);
    assert_sheet_exact(p3, 300);
}

Test(flush_shared, an_idle_run_exits_at_once_without_reading_credentials)
{
    for (int i = 0; i < 3; i++)
        add_pipeline("a", 0, 0, 100);   /* no key file exists at all */
    cJSON *before = tk_sheets_control("/_control/stats", NULL);
    tk_proc proc;
    double t0 = tk_now();
    start_run(&proc, forms_dir, NULL);
    cr_assert_eq(tk_wait(&proc, 30), 0);
    double took = tk_now() - t0;
    cJSON *after = tk_sheets_control("/_control/stats", NULL);
    cr_assert_lt(took, 3.0, "an idle run takes one Redis round trip, not %.1f s", took);
    cr_assert_eq(stat_num(after, "calls", "token"), stat_num(before, "calls", "token"), "no token was fetched");
    char *log = tk_read_file(proc.log);
    cr_assert_not_null(strstr(log, "no rows waiting in any pipeline"), "%s", log);
    cr_assert_not_null(strstr(log, "\"pipelines\":3"), "%s", log);
    free(log);
    char *rec = lastflush(&pls[0], "finished_ms");
    cr_assert_str_eq(rec, "", "an idle pipeline gets no record");
    free(rec);
    cJSON_Delete(before);
    cJSON_Delete(after);
}

Test(flush_shared, a_pipeline_that_needs_a_person_exits_1_and_the_others_still_flush)
{
    account("a", email_a, sizeof email_a);
    pl *good = add_pipeline("a", 120, 2000000, 100), *unshared = add_pipeline("a", 50, 1000000, 100);
    tk_sheets_create(unshared->sheet, "Sheet1", 100, "someone-else@example.com");
    pl *nokey = add_pipeline("a", 10, 3000000, 100);
    snprintf(nokey->account, sizeof nokey->account, "zz");   /* credentials that do not exist */
    write_form(forms_dir, nokey, 100);
    cr_assert_eq(tk_sh(NULL, "echo '{not json' > %s/broken.json", forms_dir), 0);
    tk_proc proc;
    start_run(&proc, forms_dir, (const char *[]){"--writes-per-minute", "600", NULL});
    cr_assert_eq(tk_wait(&proc, 120), 1, "exit 1: a person must act");
    assert_sheet_exact(good, 120);
    cr_assert_eq(lastflush_num(good, "exit"), 0);
    cr_assert_eq(lastflush_num(unshared, "exit"), 1);
    cr_assert_eq(lastflush_num(unshared, "rows_left"), 50, "its rows stay buffered");
    cr_assert_eq(lastflush_num(nokey, "exit"), 1);
    char *e1 = lastflush(unshared, "error"), *e2 = lastflush(nokey, "error");
    cr_assert_not_null(strstr(e1, "is not shared with"), "%s", e1);
    cr_assert_not_null(strstr(e2, "sa-zz/key.json"), "the error names the credentials: %s", e2);
    free(e1);
    free(e2);
    char *log = tk_read_file(proc.log);
    cr_assert_not_null(strstr(log, "\"pipelines_failed\":2"), "%s", log);
    cr_assert_not_null(strstr(log, "\"bad_forms\":1"), "%s", log);
    free(log);
}

Test(flush_shared, a_dedicated_run_writes_the_record_too)
{
    account("a", email_a, sizeof email_a);
    pl *p = add_pipeline("a", 75, 1000000, 100);
    char form[256], key[256];
    snprintf(form, sizeof form, "%s/%s.json", forms_dir, p->name);
    snprintf(key, sizeof key, "%s/sa-a/key.json", creds_dir);
    tk_proc proc;
    tk_start(&proc, "formpipe-flush",
             (const char *[]){"--form", form, "--google-credentials", key, "--sheets-api-url",
                              tk_env("FORMPIPE_SHEETS_URL"), "--spreadsheet-id", p->sheet, "--sheet", "Sheet1",
                              "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"), "--redis-master",
                              tk_env("FORMPIPE_REDIS_MASTER"), "--redis-password-file",
                              tk_env("FORMPIPE_REDIS_PASSWORD_FILE"), NULL});
    cr_assert_eq(tk_wait(&proc, 120), 0);
    assert_sheet_exact(p, 75);
    cr_assert_eq(lastflush_num(p, "rows"), 75);
    cr_assert_eq(lastflush_num(p, "rows_left"), 0);
    cr_assert_eq(lastflush_num(p, "exit"), 0);
}

/* Command lines that mix the modes or miss what a mode needs: exit 2, one line. */
struct cmdline { const char *args[6]; const char *says; };

static struct cmdline cmdlines[] = {
    {{"--forms-dir", "/tmp", "--form", "/tmp/f.json", "--credentials-dir", "/tmp"}, "drop --form"},
    {{"--forms-dir", "/tmp", NULL}, "needs --credentials-dir"},
    {{"--credentials-dir", "/tmp", NULL}, "belong to --forms-dir"},
    {{NULL}, "give --form and --spreadsheet-id"},
};

ParameterizedTestParameters(flush_shared_cli, mixed_modes) { return cr_make_param_array(struct cmdline, cmdlines, 4); }

ParameterizedTest(struct cmdline *c, flush_shared_cli, mixed_modes)
{
    const char *argv[12] = {"--redis-sentinels", "127.0.0.1:1", "--redis-master", "m"};
    int n = 4;
    for (int i = 0; i < 6 && c->args[i]; i++)
        argv[n++] = c->args[i];
    argv[n] = NULL;
    tk_proc proc;
    tk_start(&proc, "formpipe-flush", argv);
    cr_assert_eq(tk_wait(&proc, 10), 2, "a bad command line: %s", c->args[0]);
    char *log = tk_read_file(proc.log);
    cr_assert_not_null(strstr(log, c->says), "says '%s': %s", c->says, log);
    free(log);
}
