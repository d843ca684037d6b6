/* Unit tests for operator/status: which conditions a reconcile's observations give, and
 * when Ready follows them. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "status.h"

static const op_defaults defaults = {
    .kafka_bootstrap = "kafka:9092", .replication_factor = 3, .redis_sentinels = "s:1", .redis_master = "m",
    .google_credentials = {"google-sa", "key.json"},
};

static op_pipeline *pipeline(void)
{
    cJSON *j = cJSON_Parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"u\",\"generation\":2},"
                           "\"spec\":{\"form\":{\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]},"
                           "\"sheets\":{\"spreadsheetId\":\"S\"}}}");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cJSON_Delete(j);
    return p;
}

enum { FLUSH_NONE, FLUSH_OK, FLUSH_FAILED_ONCE, FLUSH_FAILED_3 };
enum { STALL_UNMEASURED, STALL_NONE, STALL_ONE };

struct status_case {
    const char *what;
    int topic_ok, ingest_ok, consumers_ok, cronjob_ok, dlq_recreated, flush, stall;
    const char *conflict, *tab_owner;
    int ready;
    const char *ready_reason;
    int progressing;
    const char *progressing_reason;
    int flushing;
    const char *flushing_reason;
};

static struct status_case cases[] = {
    {"all well", 1, 1, 1, 1, 0, FLUSH_OK, STALL_NONE, "", "", 1, "AllReady", 1, "Progressing", 1, "LastRunSucceeded"},
    {"not measured yet holds nothing back", 1, 1, 1, 1, 0, FLUSH_NONE, STALL_UNMEASURED, "", "", 1, "AllReady", -1,
     "NotMeasured", -1, "NoRunYet"},
    {"a stalled partition: not Ready, and why", 1, 1, 1, 1, 0, FLUSH_OK, STALL_ONE, "", "", 0, "NoProgress", 0,
     "NoProgress", 1, "LastRunSucceeded"},
    {"a recreated dead-letter topic", 1, 1, 1, 1, 1, FLUSH_OK, STALL_NONE, "", "", 0, "DeadLetterTopicMissing", 0,
     "DeadLetterTopicMissing", 1, "LastRunSucceeded"},
    {"one failed flush: Flushing False, Ready holds", 1, 1, 1, 1, 0, FLUSH_FAILED_ONCE, STALL_NONE, "", "", 1, "AllReady",
     1, "Progressing", 0, "LastRunFailed"},
    {"maxFailedRuns failed flushes: not progressing", 1, 1, 1, 1, 0, FLUSH_FAILED_3, STALL_NONE, "", "", 0, "FlushFailing",
     0, "FlushFailing", 0, "LastRunFailed"},
    {"consumers unavailable", 1, 1, 0, 1, 0, FLUSH_OK, STALL_NONE, "", "", 0, "ReplicasNotReady", 1, "Progressing", 1,
     "LastRunSucceeded"},
    {"no CronJob", 1, 1, 1, 0, 0, FLUSH_NONE, STALL_NONE, "", "", 0, "NotScheduled", 1, "Progressing", -1, "NoRunYet"},
    {"an ownership conflict wins", 1, 1, 1, 1, 0, FLUSH_OK, STALL_ONE, "Deployment p-ingest exists", "", 0,
     "OwnershipConflict", 0, "NoProgress", 1, "LastRunSucceeded"},
    {"topic missing", 0, 1, 1, 1, 0, FLUSH_OK, STALL_NONE, "", "", 0, "KafkaUnavailable", 1, "Progressing", 1, "LastRunSucceeded"},
    {"another pipeline writes the tab", 1, 1, 1, 1, 0, FLUSH_NONE, STALL_NONE, "", "ns/first", 0, "SheetInUse", 1,
     "Progressing", -1, "NoRunYet"},
};

ParameterizedTestParameters(status, conditions)
{
    return cr_make_param_array(struct status_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct status_case *c, status, conditions)
{
    op_pipeline *p = pipeline();
    op_flush_facts flush = {.last_rows = -1, .rows_waiting = -1, .oldest_waiting_ms = -1, .quota_wait_ms = -1, .throttled = -1};
    if (c->flush != FLUSH_NONE) {
        flush.runs = 3;
        flush.last_rows = 10;
        flush.rows_waiting = 0;
        flush.failures_in_a_row = c->flush == FLUSH_OK ? 0 : c->flush == FLUSH_FAILED_ONCE ? 1 : 3;
        strcpy(flush.last_error, "spreadsheet S is not shared with flush@x");
        flush.last_exit = flush.failures_in_a_row ? 1 : 0;
    }
    op_stall stall = {.stalled = c->stall == STALL_ONE, .first = c->stall == STALL_ONE ? 2 : -1, .lag = 40,
                      .stalled_ms = 61000};
    op_observed o = {
        .partitions = 3, .topic = {"TopicReady", c->topic_ok, c->topic_ok ? "TopicExists" : "KafkaUnavailable", "t"},
        .dlq_recreated = c->dlq_recreated, .ingest_ok = c->ingest_ok, .ingest_ready = 2, .consumers = 3,
        .consumer_ready = 3, .consumers_ok = c->consumers_ok, .cronjob_ok = c->cronjob_ok, .lag = 40,
        .stall = c->stall == STALL_UNMEASURED ? NULL : &stall, .dead_letters = 2, .flush = &flush,
        .conflict = c->conflict, .tab_owner = c->tab_owner, .group = "formpipe.ns.p", .dlq_topic = "forms.ns.p.dlq",
    };
    op_condition cond[OP_C_COUNT];
    op_status_conditions(p, &o, cond);
    cr_assert_eq(cond[OP_C_READY].status, c->ready, "%s: Ready %d (%s)", c->what, cond[OP_C_READY].status,
                 cond[OP_C_READY].message);
    cr_assert_str_eq(cond[OP_C_READY].reason, c->ready_reason, "%s", c->what);
    cr_assert_eq(cond[OP_C_PROGRESSING].status, c->progressing, "%s: Progressing", c->what);
    cr_assert_str_eq(cond[OP_C_PROGRESSING].reason, c->progressing_reason, "%s", c->what);
    cr_assert_eq(cond[OP_C_FLUSHING].status, c->flushing, "%s: Flushing", c->what);
    cr_assert_str_eq(cond[OP_C_FLUSHING].reason, c->flushing_reason, "%s", c->what);
    if (c->stall == STALL_ONE && !c->conflict[0])
        cr_assert_not_null(strstr(cond[OP_C_READY].message, "committed nothing on partition 2 for 61s while 40 events wait"),
                           "Ready says why: %s", cond[OP_C_READY].message);
    op_pipeline_free(p);
}

Test(status, full_spreadsheets_are_named_as_the_reason)
{
    op_pipeline *p = pipeline();
    op_flush_facts flush = {.runs = 1, .failures_in_a_row = 1, .last_exit = 3, .spreadsheets_full = 1,
                            .last_rows = 0, .rows_waiting = 9, .last_error = "spreadsheet S is full"};
    op_observed o = {.partitions = 1, .topic = {"TopicReady", 1, "TopicExists", "t"}, .ingest_ok = 1, .consumers = 1,
                     .consumers_ok = 1, .cronjob_ok = 1, .lag = 0, .dead_letters = 0, .flush = &flush, .conflict = "",
                     .tab_owner = "", .group = "g", .dlq_topic = "d"};
    op_condition cond[OP_C_COUNT];
    op_status_conditions(p, &o, cond);
    cr_assert_str_eq(cond[OP_C_FLUSHING].reason, "SpreadsheetsFull");
    cr_assert_not_null(strstr(cond[OP_C_FLUSHING].message, "spec.sheets.spreadsheetIds"), "%s", cond[OP_C_FLUSHING].message);
    op_pipeline_free(p);
}

/* #19: a Shared pipeline whose shared flush is suspended (nothing waits) says so, and is
 * still Ready: an idle flush is not a fault. */
Test(status, an_idle_shared_flush_is_named_and_ready)
{
    op_pipeline *p = pipeline();
    op_flush_facts flush = {.runs = 1, .last_rows = 3, .rows_waiting = 0};
    op_observed o = {.partitions = 1, .topic = {"TopicReady", 1, "TopicExists", "t"}, .ingest_ok = 1, .consumers = 1,
                     .consumers_ok = 1, .cronjob_ok = 1, .flush_idle = 1, .lag = 0, .flush = &flush, .conflict = "",
                     .tab_owner = "", .group = "g", .dlq_topic = "d"};
    op_condition cond[OP_C_COUNT];
    op_status_conditions(p, &o, cond);
    cr_assert_eq(cond[OP_C_FLUSH_SCHEDULED].status, 1);
    cr_assert_str_eq(cond[OP_C_FLUSH_SCHEDULED].reason, "Idle");
    cr_assert_not_null(strstr(cond[OP_C_FLUSH_SCHEDULED].message, "suspended while no rows wait"), "%s",
                       cond[OP_C_FLUSH_SCHEDULED].message);
    cr_assert_eq(cond[OP_C_READY].status, 1, "%s", cond[OP_C_READY].message);
    op_pipeline_free(p);
}

Test(status, the_status_object_carries_the_numbers)
{
    op_pipeline *p = pipeline();
    op_flush_facts flush = {.runs = 1, .last_rows = 12, .rows_waiting = 5, .oldest_waiting_ms = 1764583140000LL,
                            .last_success = "2026-12-01T10:00:00Z"};
    op_stall stall = {.first = -1, .lag = 7};
    op_observed o = {.partitions = 3, .topic = {"TopicReady", 1, "TopicExists", "t"}, .ingest_ok = 1, .consumers = 3,
                     .consumers_ok = 1, .cronjob_ok = 1, .last_schedule_time = "2026-12-01T10:00:00Z", .lag = 7,
                     .stall = &stall, .dead_letters = 4, .flush = &flush, .conflict = "", .group = "g", .dlq_topic = "d"};
    op_condition cond[OP_C_COUNT];
    cJSON *s = op_status_build(p, &o, NULL, "2026-12-01T10:01:00Z", cond);
    cr_assert_eq(cond[OP_C_READY].status, 1);
    cr_assert_not_null(s);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(s, "flush");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(f, "lastRunRows")->valuedouble, 12);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(f, "rowsWaiting")->valuedouble, 5);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(f, "deadLetters")->valuedouble, 4);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(f, "failedRunsInARow")->valuedouble, 0);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "lastSuccessfulTime")), "2026-12-01T10:00:00Z");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "oldestWaitingTime")), "2025-12-01T09:59:00.000Z");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "consumer"), "lag")->valuedouble, 7);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "columns")), 1);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "conditions")), OP_C_COUNT);
    cJSON_Delete(s);
    op_pipeline_free(p);
}
