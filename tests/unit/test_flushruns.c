/* Unit tests for operator/flushruns: flush pods read into the newest runs, whatever the
 * order they are seen in, and the facts status is built from. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "flushruns.h"

/* A flush pod: name, finishedAt (NULL: still running), exit code, termination message. */
static cJSON *pod(const char *name, const char *finished, int exit_code, const char *message)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "metadata"), "name", name);
    cJSON *cs = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(cJSON_AddObjectToObject(p, "status"), "containerStatuses"), cs);
    cJSON *state = cJSON_AddObjectToObject(cs, "state");
    if (!finished) {
        cJSON_AddObjectToObject(state, "running");
        return p;
    }
    cJSON *t = cJSON_AddObjectToObject(state, "terminated");
    cJSON_AddStringToObject(t, "finishedAt", finished);
    cJSON_AddNumberToObject(t, "exitCode", exit_code);
    if (message)
        cJSON_AddStringToObject(t, "message", message);
    return p;
}

struct seen { const char *name, *finished; int exit_code; const char *message; };
struct runs_case {
    const char *what;
    struct seen pods[6];
    int npods;
    int runs, failures;
    const char *last_success, *last_error;
    long long last_rows, rows_waiting;
};

#define OK(rows, left) "{\"rows\":" #rows ",\"rows_left\":" #left ",\"error\":\"\"}"
#define FAIL(msg) "{\"rows\":0,\"rows_left\":7,\"error\":\"" msg "\"}"

static struct runs_case cases[] = {
    {"nothing finished yet", {{"a", NULL, 0, NULL}}, 1, 0, 0, "", "", -1, -1},
    {"one success", {{"a", "2026-12-01T10:00:00Z", 0, OK(12, 3)}}, 1, 1, 0, "2026-12-01T10:00:00Z", "", 12, 3},
    {"failures after a success, seen out of order",
     {{"c", "2026-12-01T10:02:00Z", 75, FAIL("sheets: 503")}, {"a", "2026-12-01T10:00:00Z", 0, OK(5, 0)},
      {"b", "2026-12-01T10:01:00Z", 1, FAIL("not shared")}}, 3, 3, 2, "2026-12-01T10:00:00Z", "sheets: 503", 0, 7},
    {"a success after failures clears them",
     {{"a", "2026-12-01T10:00:00Z", 1, FAIL("x")}, {"b", "2026-12-01T10:01:00Z", 0, OK(9, 0)}}, 2, 2, 0,
     "2026-12-01T10:01:00Z", "", 9, 0},
    {"a pod without our summary: the message is the error",
     {{"a", "2026-12-01T10:00:00Z", 2, "formpipe-flush: --sheet: required"}}, 1, 1, 1, "",
     "formpipe-flush: --sheet: required", -1, -1},
    {"a failed pod with no message names its exit status", {{"a", "2026-12-01T10:00:00Z", 137, NULL}}, 1, 1, 1, "",
     "exit status 137", -1, -1},
    {"every spreadsheet full: the newest run says so",
     {{"a", "2026-12-01T10:00:00Z", 3, "{\"rows\":0,\"rows_left\":5,\"spreadsheets_full\":true,\"error\":\"full\"}"}}, 1, 1, 1, "",
     "full", 0, 5},
    {"a run that found the lock taken is no outcome",
     {{"a", "2026-12-01T10:00:00Z", 0, OK(4, 1)},
      {"b", "2026-12-01T10:01:00Z", 0, "{\"rows\":0,\"rows_left\":0,\"lock_busy\":true,\"error\":\"\"}"}}, 2, 1, 0,
     "2026-12-01T10:00:00Z", "", 4, 1},
    {"the same pod seen twice counts once",
     {{"a", "2026-12-01T10:00:00Z", 1, FAIL("x")}, {"a", "2026-12-01T10:00:00Z", 1, FAIL("x")}}, 2, 1, 1, "", "x", 0, 7},
};

ParameterizedTestParameters(flushruns, facts)
{
    return cr_make_param_array(struct runs_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct runs_case *c, flushruns, facts)
{
    op_flushruns r = {0};
    for (int i = 0; i < c->npods; i++) {
        cJSON *p = pod(c->pods[i].name, c->pods[i].finished, c->pods[i].exit_code, c->pods[i].message);
        op_flushruns_record(&r, p);
        cJSON_Delete(p);
    }
    op_flush_facts f;
    op_flushruns_facts(&r, &f);
    cr_assert_eq(f.runs, c->runs, "%s: runs %d", c->what, f.runs);
    cr_assert_eq(f.failures_in_a_row, c->failures, "%s: failures %d", c->what, f.failures_in_a_row);
    cr_assert_str_eq(f.last_success, c->last_success, "%s", c->what);
    cr_assert_str_eq(f.last_error, c->last_error, "%s", c->what);
    cr_assert_eq(f.last_rows, c->last_rows, "%s: rows %lld", c->what, f.last_rows);
    cr_assert_eq(f.rows_waiting, c->rows_waiting, "%s: waiting %lld", c->what, f.rows_waiting);
}

Test(flushruns, keeps_the_newest_runs_only)
{
    op_flushruns r = {0};
    char name[16], at[32];
    for (int i = OP_FLUSHRUNS_KEPT + 4; i >= 0; i--) {   /* newest first, then older ones */
        snprintf(name, sizeof name, "p%d", i);
        snprintf(at, sizeof at, "2026-12-01T10:%02d:00Z", i);
        cJSON *p = pod(name, at, i == 0 ? 0 : 1, NULL);
        int changed = op_flushruns_record(&r, p);
        cr_assert_eq(changed, i > 4, "run %d: kept only while it is among the newest", i);
        cJSON_Delete(p);
    }
    cr_assert_eq(r.n, OP_FLUSHRUNS_KEPT);
    cr_assert_str_eq(r.run[0].pod, "p14");
    op_flush_facts f;
    op_flushruns_facts(&r, &f);
    cr_assert_eq(f.failures_in_a_row, OP_FLUSHRUNS_KEPT, "every kept run failed");
}

/* The newest run's buffer and quota facts, as the summary gives them (-1: not said). */
struct quota_case {
    const char *what, *message;
    long long oldest_ms, quota_wait_ms, throttled;
};

static struct quota_case quota_cases[] = {
    {"all three said", "{\"rows\":3,\"rows_left\":2,\"oldest_left_ms\":1764583200000,\"quota_wait_ms\":41000,"
                       "\"sheets_throttled\":4,\"error\":\"\"}", 1764583200000LL, 41000, 4},
    {"nothing waits: no oldest", "{\"rows\":3,\"rows_left\":0,\"oldest_left_ms\":-1,\"quota_wait_ms\":0,"
                                 "\"sheets_throttled\":0,\"error\":\"\"}", -1, 0, 0},
    {"an older flusher's summary says none of them", OK(3, 2), -1, -1, -1},
    {"no summary at all", NULL, -1, -1, -1},
};

ParameterizedTestParameters(flushruns, quota_and_oldest)
{
    return cr_make_param_array(struct quota_case, quota_cases, sizeof quota_cases / sizeof quota_cases[0]);
}

ParameterizedTest(struct quota_case *c, flushruns, quota_and_oldest)
{
    op_flushruns r = {0};
    cJSON *p = pod("a", "2026-12-01T10:00:00Z", 0, c->message);
    cr_assert_eq(op_flushruns_record(&r, p), 1, "%s: recorded", c->what);
    cJSON_Delete(p);
    op_flush_facts f;
    op_flushruns_facts(&r, &f);
    cr_assert_eq(f.oldest_waiting_ms, c->oldest_ms, "%s: oldest %lld", c->what, f.oldest_waiting_ms);
    cr_assert_eq(f.quota_wait_ms, c->quota_wait_ms, "%s: quota wait %lld", c->what, f.quota_wait_ms);
    cr_assert_eq(f.throttled, c->throttled, "%s: throttled %lld", c->what, f.throttled);
}

Test(flushruns, rows_total_counts_each_run_once_also_after_it_is_no_longer_kept)
{
    op_flushruns r = {0};
    char name[16], at[32];
    for (int i = 0; i < OP_FLUSHRUNS_KEPT + 3; i++) {   /* more runs than kept, each of 10 rows */
        snprintf(name, sizeof name, "p%d", i);
        snprintf(at, sizeof at, "2026-12-01T10:%02d:00Z", i);
        cJSON *p = pod(name, at, 0, OK(10, 0));
        op_flushruns_record(&r, p);
        op_flushruns_record(&r, p);   /* seen again: not counted again */
        cJSON_Delete(p);
    }
    cr_assert_eq(r.rows_total, 10 * (OP_FLUSHRUNS_KEPT + 3));
    cJSON *p = pod("late", "2026-12-01T09:00:00Z", 0, OK(99, 0));   /* older than every kept run: not recorded */
    op_flushruns_record(&r, p);
    cJSON_Delete(p);
    cr_assert_eq(r.rows_total, 10 * (OP_FLUSHRUNS_KEPT + 3), "a run too old to keep is not counted");
}
