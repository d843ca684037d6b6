/* services/common/flushstate against the real Redis master: the flush lock (with
 * expiry and fencing) and the batch record/finish protocol the flusher relies on. */
#include <criterion/criterion.h>
#include <unistd.h>

#include "buffer.h"
#include "flushstate.h"
#include "testkit.h"

static fp_redis *redis;
static fp_buffer *buf;
static fp_flushstate *st;
static char name[64];

static void setup(void)
{
    fp_error err = {0};
    redis = tk_redis();
    tk_unique(name, sizeof name, "flush");
    buf = fp_buffer_new(redis, "tests", name, &err);
    st = fp_flushstate_new(redis, "tests", name, &err);
    cr_assert(buf && st, "%s", err.msg);
}

static void teardown(void)
{
    fp_flushstate_free(st);
    fp_buffer_free(buf);
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
    cJSON *ids = cJSON_CreateStringArray((const char *[]){"x"}, 1);
    cr_assert_eq(fp_flushstate_renew(st, "A", 10000, &err), FP_ELOCKLOST);
    cr_assert_eq(fp_flushstate_record(st, "A", 2, ids, &err), FP_ELOCKLOST, "a stale run can't record");
    cr_assert_not_null(strstr(err.msg, "LOCKLOST"), "%s", err.msg);
    long long count = -1;
    cr_assert_eq(fp_flushstate_finish(st, "A", 1, &count, &err), FP_ELOCKLOST, "a stale run can't finish");
    cJSON_Delete(ids);
}

Test(flushstate, record_then_finish_moves_rows_from_pending_to_flushed)
{
    fp_error err = {0};
    fp_buffer_row rows[10];
    char idv[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(idv[i], sizeof idv[i], "r%02d", i);
        rows[i] = (fp_buffer_row){idv[i], 1000 + i, "[\"x\"]"};
    }
    long long added;
    cr_assert_eq(fp_buffer_insert(buf, rows, 10, &added, &err), 0, "%s", err.msg);

    long long next;
    int exists, got;
    cr_assert_eq(fp_flushstate_nextrow(st, &next, &exists, &err), 0);
    cr_assert_eq(exists, 0, "first run: nextrow unset");
    cr_assert_eq(fp_flushstate_init_nextrow(st, 2, &err), 0);
    cr_assert_eq(fp_flushstate_init_nextrow(st, 99, &err), 0);
    cr_assert_eq(fp_flushstate_nextrow(st, &next, &exists, &err), 0);
    cr_assert_eq(next, 2, "init only sets an unset nextrow");

    cr_assert_eq(fp_flushstate_lock(st, "T", 10000, &got, &err), 0);
    cJSON *oldest;
    cr_assert_eq(fp_buffer_oldest(buf, 4, &oldest, &err), 0);
    cJSON *ids = cJSON_CreateArray(), *item;
    cJSON_ArrayForEach(item, oldest)
        cJSON_AddItemToArray(ids, cJSON_CreateString(cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring));
    cJSON_Delete(oldest);
    cr_assert_eq(fp_flushstate_record(st, "T", next, ids, &err), 0, "%s", err.msg);

    fp_flush_batch b;
    cr_assert_eq(fp_flushstate_batch(st, &b, &exists, &err), 0);
    cr_assert_eq(exists, 1);
    cr_assert_eq(b.start_row, 2);
    cr_assert_eq(cJSON_GetArraySize(b.ids), 4);
    cr_assert_str_eq(cJSON_GetArrayItem(b.ids, 0)->valuestring, "r00");
    cr_assert_str_eq(cJSON_GetArrayItem(b.ids, 3)->valuestring, "r03");
    fp_flush_batch_clear(&b);

    long long count;
    cr_assert_eq(fp_flushstate_finish(st, "T", 5000, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(count, 4);
    long long pend;
    fp_buffer_pending(buf, &pend, &err);
    cr_assert_eq(pend, 6);
    cr_assert_eq(fp_flushstate_nextrow(st, &next, &exists, &err), 0);
    cr_assert_eq(next, 6, "rows 2..5 written: next is 6");
    cr_assert_eq(fp_flushstate_batch(st, &b, &exists, &err), 0);
    cr_assert_eq(exists, 0, "the batch is gone");

    /* A crash after finish: finishing again changes nothing. */
    cr_assert_eq(fp_flushstate_finish(st, "T", 6000, &count, &err), 0);
    cr_assert_eq(count, 0);
    cr_assert_eq(fp_flushstate_nextrow(st, &next, &exists, &err), 0);
    cr_assert_eq(next, 6);

    /* A redelivered event for a flushed id is not buffered again. */
    cr_assert_eq(fp_buffer_insert(buf, rows, 10, &added, &err), 0);
    cr_assert_eq(added, 0, "flushed and pending ids are all duplicates");
    cJSON_Delete(ids);
}
