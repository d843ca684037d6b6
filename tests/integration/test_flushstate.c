/* services/common/flushstate against the real Redis master: the flush lock (with
 * expiry and fencing) and the batch record/finish protocol the flusher relies on. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>
#include <unistd.h>

#include "rowstore.h"
#include "flushstate.h"
#include "testkit.h"

static fp_redis *redis;
static fp_rowstore *buf;
static fp_flushstate *st;
static char name[64];

static void setup(void)
{
    fp_error err = {0};
    redis = tk_redis();
    tk_unique(name, sizeof name, "flush");
    buf = fp_rowstore_new(redis, "tests", name, &err);
    st = fp_flushstate_new(redis, "tests", name, &err);
    cr_assert(buf && st, "%s", err.msg);
}

static void teardown(void)
{
    fp_flushstate_free(st);
    fp_rowstore_free(buf);
    fp_redis_free(redis);
}

TestSuite(flushstate, .init = setup, .fini = teardown, .timeout = 60);

Test(flushstate, one_holder_at_a_time_and_only_the_holder_renews_or_unlocks)
{
    fp_error err = {0};
    int got = 0;
    cr_assert_eq(fp_flushstate_lock(st, "A", 10000, &got, &err), 0, "%s", err.msg);
    cr_assert_eq(got, 1);
    cr_assert_eq(fp_flushstate_lock(st, "B", 10000, &got, &err), 0);
    cr_assert_eq(got, 0, "B must not get a held lock");
    cr_assert_eq(fp_flushstate_renew(st, "A", 10000, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_flushstate_renew(st, "B", 10000, &err), FP_ELOCKLOST);
    cr_assert_eq(fp_flushstate_unlock(st, "B", &err), 0);
    cr_assert_eq(fp_flushstate_lock(st, "B", 10000, &got, &err), 0);
    cr_assert_eq(got, 0, "B's unlock must not release A's lock");
    cr_assert_eq(fp_flushstate_unlock(st, "A", &err), 0);
    cr_assert_eq(fp_flushstate_lock(st, "B", 10000, &got, &err), 0);
    cr_assert_eq(got, 1, "released by its holder, the lock is free");
}

Test(flushstate, an_expired_holder_is_fenced_out)
{
    fp_error err = {0};
    int got = 0;
    cr_assert_eq(fp_flushstate_lock(st, "A", 150, &got, &err), 0);
    cr_assert_eq(got, 1);
    usleep(400 * 1000);
    cr_assert_eq(fp_flushstate_lock(st, "B", 10000, &got, &err), 0);
    cr_assert_eq(got, 1, "the expired lock is taken over");
    const char *ids[] = {"x"};
    cr_assert_eq(fp_flushstate_renew(st, "A", 10000, &err), FP_ELOCKLOST);
    cr_assert_eq(fp_flushstate_record(st, "A", "book", "Sheet1", 2, ids, 1, &err), FP_ELOCKLOST,
                 "a stale run can't record");
    cr_assert_not_null(strstr(err.msg, "LOCKLOST"), "%s", err.msg);
    long long count = -1;
    cr_assert_eq(fp_flushstate_finish(st, "A", 1, &count, &err), FP_ELOCKLOST, "a stale run can't finish");
    cr_assert_eq(fp_flushstate_fail(st, "A", "why", &count, &err), FP_ELOCKLOST, "a stale run can't count");
    cr_assert_eq(fp_flushstate_dead_letter(st, "A", 1, &count, &err), FP_ELOCKLOST, "a stale run can't dead-letter");
}

Test(flushstate, record_then_finish_moves_rows_from_pending_to_flushed)
{
    fp_error err = {0};
    fp_rowstore_row rows[10];
    char idv[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(idv[i], sizeof idv[i], "r%02d", i);
        rows[i] = (fp_rowstore_row){idv[i], 1000 + i, "[\"x\"]"};
    }
    long long added;
    cr_assert_eq(fp_rowstore_insert(buf, rows, 10, &added, &err), 0, "%s", err.msg);

    long long next;
    int exists, got;
    const char *T = "book/sheet1";
    cr_assert_eq(fp_flushstate_nextrow(st, T, &next, &exists, &err), 0);
    cr_assert_eq(exists, 0, "first run: nextrow unset");
    cr_assert_eq(fp_flushstate_init_nextrow(st, T, 2, &err), 0);
    cr_assert_eq(fp_flushstate_init_nextrow(st, T, 99, &err), 0);
    cr_assert_eq(fp_flushstate_nextrow(st, T, &next, &exists, &err), 0);
    cr_assert_eq(next, 2, "init only sets an unset nextrow");

    cr_assert_eq(fp_flushstate_lock(st, "T", 10000, &got, &err), 0);
    fp_rowstore_rowset oldest;
    cr_assert_eq(fp_rowstore_oldest(buf, 4, &oldest, &err), 0);
    cr_assert_eq(fp_flushstate_record(st, "T", "book", "Sheet1", next, oldest.ids, oldest.n, &err), 0, "%s", err.msg);
    fp_rowstore_rowset_clear(&oldest);

    fp_flush_batch b;
    cr_assert_eq(fp_flushstate_batch(st, &b, &exists, &err), 0);
    cr_assert_eq(exists, 1);
    cr_assert_eq(b.start_row, 2);
    cr_assert_eq(cJSON_GetArraySize(b.ids), 4);
    cr_assert_str_eq(cJSON_GetArrayItem(b.ids, 0)->valuestring, "r00");
    cr_assert_str_eq(cJSON_GetArrayItem(b.ids, 3)->valuestring, "r03");
    cr_assert_str_eq(b.spreadsheet, "book");
    cr_assert_str_eq(b.sheet, "Sheet1");
    fp_flush_batch_clear(&b);

    long long count;
    cr_assert_eq(fp_flushstate_finish(st, "T", 5000, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(count, 4);
    long long pend;
    fp_rowstore_pending(buf, &pend, &err);
    cr_assert_eq(pend, 6);
    cr_assert_eq(fp_flushstate_nextrow(st, T, &next, &exists, &err), 0);
    cr_assert_eq(next, 6, "rows 2..5 written: next is 6");
    cr_assert_eq(fp_flushstate_batch(st, &b, &exists, &err), 0);
    cr_assert_eq(exists, 0, "the batch is gone");

    /* A crash after finish: finishing again changes nothing. */
    cr_assert_eq(fp_flushstate_finish(st, "T", 6000, &count, &err), 0);
    cr_assert_eq(count, 0);
    cr_assert_eq(fp_flushstate_nextrow(st, T, &next, &exists, &err), 0);
    cr_assert_eq(next, 6);

    /* A redelivered event for a flushed id is not buffered again. */
    cr_assert_eq(fp_rowstore_insert(buf, rows, 10, &added, &err), 0);
    cr_assert_eq(added, 0, "flushed and pending ids are all duplicates");
}

/* Sets a plain key of this pipeline (the layout of earlier versions). */
static void set_key(const char *suffix, const char *value)
{
    char key[600];
    redisReply *rep;
    fp_error err = {0};
    fp_rowstore_key(key, sizeof key, "tests", name, suffix);
    const char *argv[] = {"SET", key, value};
    size_t lens[] = {3, strlen(key), strlen(value)};
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 3, argv, lens), 0, "%s", err.msg);
    freeReplyObject(rep);
}

static long long key_exists(const char *suffix)
{
    char key[600];
    redisReply *rep;
    fp_error err = {0};
    fp_rowstore_key(key, sizeof key, "tests", name, suffix);
    const char *argv[] = {"EXISTS", key};
    size_t lens[] = {6, strlen(key)};
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 2, argv, lens), 0, "%s", err.msg);
    long long n = rep->integer;
    freeReplyObject(rep);
    return n;
}

static void insert_rows(int n)
{
    fp_rowstore_row rows[16];
    char idv[16][16], json[16][32];
    long long added;
    fp_error err = {0};
    for (int i = 0; i < n; i++) {
        snprintf(idv[i], sizeof idv[i], "r%02d", i);
        snprintf(json[i], sizeof json[i], "[\"r%02d\",\"t\"]", i);
        rows[i] = (fp_rowstore_row){idv[i], 1000 + i, json[i]};
    }
    cr_assert_eq(fp_rowstore_insert(buf, rows, (size_t)n, &added, &err), 0, "%s", err.msg);
}

struct key_case { const char *spreadsheet, *sheet, *want; };

static struct key_case keys[] = {
    {"1AbC", "Responses", "1AbC/responses"},
    {"1AbC", "RESPONSES", "1AbC/responses"},   /* one tab for Google: one position */
    {"1AbC", "Données 2026", "1AbC/données 2026"},
};

ParameterizedTestParameters(flushstate, target_keys)
{
    return cr_make_param_array(struct key_case, keys, sizeof keys / sizeof keys[0]);
}

ParameterizedTest(struct key_case *c, flushstate, target_keys)
{
    char out[FP_FLUSH_TARGET_MAX];
    cr_assert_eq(fp_flushstate_target_key(out, sizeof out, c->spreadsheet, c->sheet), 0);
    cr_assert_str_eq(out, c->want);
}

Test(flushstate, each_target_keeps_its_own_position_and_header)
{
    fp_error err = {0};
    long long next, count;
    int exists, got;
    char *header;
    insert_rows(6);
    cr_assert_eq(fp_flushstate_init_nextrow(st, "a/sheet1", 40, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_flushstate_init_nextrow(st, "b/sheet1", 2, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_flushstate_set_header(st, "a/sheet1", "id\x1freceived_at", &err), 0);
    cr_assert_eq(fp_flushstate_header(st, "b/sheet1", &header, &err), 0);
    cr_assert_null(header, "b has no header yet");
    cr_assert_eq(fp_flushstate_lock(st, "T", 10000, &got, &err), 0);
    const char *ids[] = {"r00", "r01", "r02"};
    cr_assert_eq(fp_flushstate_record(st, "T", "b", "Sheet1", 2, ids, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_flushstate_finish(st, "T", 5000, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(count, 3);
    cr_assert_eq(fp_flushstate_nextrow(st, "b/sheet1", &next, &exists, &err), 0);
    cr_assert_eq(next, 5, "b's rows 2..4 written");
    cr_assert_eq(fp_flushstate_nextrow(st, "a/sheet1", &next, &exists, &err), 0);
    cr_assert_eq(next, 40, "a's position is untouched");
    cr_assert_eq(fp_flushstate_header(st, "a/sheet1", &header, &err), 0);
    cr_assert_str_eq(header, "id\x1freceived_at");
    free(header);
}

Test(flushstate, migrate_moves_the_per_pipeline_position_to_the_current_target_once)
{
    fp_error err = {0};
    long long next;
    int exists, got;
    char *header;
    insert_rows(3);
    set_key("nextrow", "77");
    set_key("header", "id\x1freceived_at\x1fname");
    cr_assert_eq(fp_flushstate_lock(st, "T", 10000, &got, &err), 0);
    /* an earlier version's in-flight batch: no target fields */
    char key[600];
    redisReply *rep;
    fp_rowstore_key(key, sizeof key, "tests", name, "batch");
    const char *argv[] = {"HSET", key, "start", "77", "ids", "[\"r00\"]", "token", "T"};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 8, argv, lens), 0, "%s", err.msg);
    freeReplyObject(rep);

    cr_assert_eq(fp_flushstate_migrate(st, "book", "Responses", &err), 0, "%s", err.msg);
    cr_assert_eq(fp_flushstate_nextrow(st, "book/responses", &next, &exists, &err), 0);
    cr_assert(exists && next == 77, "the position moved to the current target (%lld)", next);
    cr_assert_eq(key_exists("nextrow"), 0, "the old key is gone");
    cr_assert_eq(fp_flushstate_header(st, "book/responses", &header, &err), 0);
    cr_assert_str_eq(header, "id\x1freceived_at\x1fname");
    free(header);
    fp_flush_batch b;
    cr_assert_eq(fp_flushstate_batch(st, &b, &exists, &err), 0, "%s", err.msg);
    cr_assert_eq(exists, 1);
    cr_assert_str_eq(b.spreadsheet, "book", "the in-flight batch belongs to the current target");
    cr_assert_str_eq(b.sheet, "Responses");
    fp_flush_batch_clear(&b);

    /* Again (every run migrates): nothing changes, an existing position is never overwritten. */
    set_key("nextrow", "5");
    cr_assert_eq(fp_flushstate_migrate(st, "book", "Responses", &err), 0, "%s", err.msg);
    cr_assert_eq(fp_flushstate_nextrow(st, "book/responses", &next, &exists, &err), 0);
    cr_assert_eq(next, 77);
    long long count;
    cr_assert_eq(fp_flushstate_finish(st, "T", 5000, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_flushstate_nextrow(st, "book/responses", &next, &exists, &err), 0);
    cr_assert_eq(next, 78, "the migrated batch finishes at the current target");
}

Test(flushstate, a_refused_batch_counts_failures_then_moves_to_the_dead_letters)
{
    fp_error err = {0};
    long long failures = -1, count = -1, next, pending;
    int exists, got;
    insert_rows(5);
    cr_assert_eq(fp_flushstate_lock(st, "T", 10000, &got, &err), 0);
    cr_assert_eq(fp_flushstate_fail(st, "T", "none", &failures, &err), 0);
    cr_assert_eq(failures, 0, "no batch, nothing counted");
    cr_assert_eq(fp_flushstate_init_nextrow(st, "b/s", 10, &err), 0);
    const char *ids[] = {"r01", "r02"};
    cr_assert_eq(fp_flushstate_record(st, "T", "b", "S", 10, ids, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_flushstate_fail(st, "T", "HTTP 400: first", &failures, &err), 0, "%s", err.msg);
    cr_assert_eq(failures, 1);
    cr_assert_eq(fp_flushstate_fail(st, "T", "HTTP 400: \"second\"", &failures, &err), 0);
    cr_assert_eq(failures, 2);
    fp_flush_batch b;
    cr_assert_eq(fp_flushstate_batch(st, &b, &exists, &err), 0);
    cr_assert_eq(b.failures, 2, "the count survives the run (it is in the batch)");
    fp_flush_batch_clear(&b);

    cr_assert_eq(fp_flushstate_dead_letter(st, "T", 7000, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(count, 2);
    cr_assert_eq(fp_flushstate_batch(st, &b, &exists, &err), 0);
    cr_assert_eq(exists, 0, "the batch is gone");
    cr_assert_eq(fp_rowstore_pending(buf, &pending, &err), 0);
    cr_assert_eq(pending, 3, "its rows left the buffer");
    cr_assert_eq(fp_flushstate_nextrow(st, "b/s", &next, &exists, &err), 0);
    cr_assert_eq(next, 10, "nothing was written: the position stays");

    char key[600];
    redisReply *rep;
    fp_rowstore_key(key, sizeof key, "tests", name, "dead");
    const char *argv[] = {"HGET", key, "r02"};
    size_t lens[] = {4, strlen(key), 3};
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 3, argv, lens), 0, "%s", err.msg);
    cr_assert_eq(rep->type, REDIS_REPLY_STRING, "r02 is in the dead letters");
    cJSON *dead = cJSON_Parse(rep->str);
    freeReplyObject(rep);
    cr_assert_not_null(dead, "a dead letter is JSON");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dead, "reason")), "HTTP 400: \"second\"");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dead, "target")), "b/s");
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(dead, "at")), 7000);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dead, "row"), 0)), "r02");
    cJSON_Delete(dead);

    /* A redelivery of a dead-lettered id is not buffered again. */
    fp_rowstore_row again[] = {{"r02", 1, "[\"r02\"]"}};
    long long added;
    cr_assert_eq(fp_rowstore_insert(buf, again, 1, &added, &err), 0);
    cr_assert_eq(added, 0);
}
