/* services/common/rowstore against the real Redis master (found through the sentinels):
 * idempotent batch inserts, submission-time order, the flushed dedup window, the
 * NOSCRIPT fallback, WAIT and the pipelined insert. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "rowstore.h"
#include "testkit.h"

static fp_redis *redis;
static fp_rowstore *buf;
static char name[96];

static void setup(void)
{
    fp_error err = {0};
    redis = tk_redis();
    tk_unique(name, sizeof name, "buffer-test");
    buf = fp_rowstore_new(redis, "tests", name, &err);
    cr_assert_not_null(buf, "%s", err.msg);
}

static void teardown(void)
{
    fp_rowstore_free(buf);
    fp_redis_free(redis);
}

TestSuite(buffer, .init = setup, .fini = teardown, .timeout = 120);

/* Inserts ids[i] with score scores[i]; returns how many were new. */
static long long insert(const char *const *ids, const long long *scores, size_t n)
{
    fp_rowstore_row rows[64];
    char *jsons[64];
    cr_assert_leq(n, 64);
    for (size_t i = 0; i < n; i++) {
        char body[128];
        snprintf(body, sizeof body, "[\"%s\",\"t\",\"v-%s\"]", ids[i], ids[i]);
        jsons[i] = strdup(body);
        rows[i] = (fp_rowstore_row){ids[i], scores[i], jsons[i]};
    }
    long long added = -1;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_insert(buf, rows, n, &added, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < n; i++)
        free(jsons[i]);
    return added;
}

Test(buffer, inserts_each_id_once_and_keeps_submission_order)
{
    fp_error err = {0};
    long long pending = 0, first_ms = 0;
    cr_assert_eq(fp_rowstore_oldest_ms(buf, &first_ms, &err), 0, "%s", err.msg);
    cr_assert_eq(first_ms, -1, "nothing pending yet");
    /* Same id twice in one batch, and again in a later batch (a redelivery). */
    const char *ids1[] = {"c", "a", "b", "a"};
    const long long s1[] = {3000, 1000, 2000, 1000};
    cr_assert_eq(insert(ids1, s1, 4), 3);
    const char *ids2[] = {"b", "d", "c"};
    const long long s2[] = {2000, 500, 3000};
    cr_assert_eq(insert(ids2, s2, 3), 1, "only d is new");

    cr_assert_eq(fp_rowstore_pending(buf, &pending, &err), 0, "%s", err.msg);
    cr_assert_eq(pending, 4);
    cr_assert_eq(fp_rowstore_oldest_ms(buf, &first_ms, &err), 0, "%s", err.msg);
    cr_assert_eq(first_ms, 500, "the oldest pending row is d's");

    fp_rowstore_rowset oldest;
    cr_assert_eq(fp_rowstore_oldest(buf, 10, &oldest, &err), 0, "%s", err.msg);
    const char *want[] = {"d", "a", "b", "c"};
    const long long want_ms[] = {500, 1000, 2000, 3000};
    cr_assert_eq(oldest.n, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(oldest.ids[i], want[i], "position %zu", i);
        cr_assert_eq(oldest.received_ms[i], want_ms[i], "position %zu", i);
        cJSON *row = cJSON_Parse(oldest.rows[i]);
        cr_assert_eq(strlen(oldest.rows[i]), oldest.lens[i]);
        char v[16];
        snprintf(v, sizeof v, "v-%s", want[i]);
        cr_assert_str_eq(cJSON_GetArrayItem(row, 2)->valuestring, v);
        cJSON_Delete(row);
    }
    fp_rowstore_rowset_clear(&oldest);

    cr_assert_eq(fp_rowstore_oldest(buf, 2, &oldest, &err), 0);
    cr_assert_eq(oldest.n, 2, "n bounds the answer");
    fp_rowstore_rowset_clear(&oldest);
}

/* A batch spans the script's chunks of 1,000: clean chunks go to HSET/ZADD as they
 * are, a chunk with a repeat takes the filtered path; each id keeps its own row. */
Test(buffer, a_batch_of_several_chunks_keeps_each_row_with_its_id)
{
    enum { N = 2500 };
    static fp_rowstore_row rows[N];
    static char ids[N][16], jsons[N][48];
    for (int i = 0; i < N; i++) {
        int id = i == 2100 ? 5 : i;   /* row 2100 repeats id 5, from the first chunk */
        snprintf(ids[i], sizeof ids[i], "id-%04d", id);
        snprintf(jsons[i], sizeof jsons[i], "[\"%s\",\"t\",\"v-%d\"]", ids[i], i);
        rows[i] = (fp_rowstore_row){ids[i], 10000 + i, jsons[i]};
    }
    long long added = -1, pending = 0;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_insert(buf, rows, N, &added, &err), 0, "%s", err.msg);
    cr_assert_eq(added, N - 1, "the repeat is not added");
    cr_assert_eq(fp_rowstore_pending(buf, &pending, &err), 0, "%s", err.msg);
    cr_assert_eq(pending, N - 1);

    char key[256];
    fp_rowstore_key(key, sizeof key, "tests", name, "rows");
    const int probe[] = {0, 5, 999, 1000, 1999, 2000, 2099, 2101, 2499};
    for (size_t k = 0; k < sizeof probe / sizeof probe[0]; k++) {
        char id[16], want[48];
        snprintf(id, sizeof id, "id-%04d", probe[k]);
        snprintf(want, sizeof want, "[\"%s\",\"t\",\"v-%d\"]", id, probe[k]);
        const char *argv[] = {"HGET", key, id};
        size_t lens[] = {4, strlen(key), strlen(id)};
        redisReply *rep;
        cr_assert_eq(fp_redis_command(redis, &rep, &err, 3, argv, lens), 0, "%s", err.msg);
        cr_assert_eq(rep->type, REDIS_REPLY_STRING, "%s is buffered", id);
        cr_assert_str_eq(rep->str, want, "%s keeps its own row (the first one sent)", id);
        freeReplyObject(rep);
    }
}

Test(buffer, ids_in_the_flushed_window_are_not_inserted_again)
{
    char key[256];
    fp_rowstore_key(key, sizeof key, "tests", name, "flushed");
    redisReply *rep;
    fp_error err = {0};
    const char *argv[] = {"ZADD", key, "100", "old", "5000", "recent"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 6, argv, lens), 0, "%s", err.msg);
    freeReplyObject(rep);

    const char *ids[] = {"old", "recent", "new"};
    const long long s[] = {1, 2, 3};
    cr_assert_eq(insert(ids, s, 3), 1, "flushed ids are duplicates");

    long long removed = 0;
    cr_assert_eq(fp_rowstore_trim_flushed(buf, 5000, &removed, &err), 0, "%s", err.msg);
    cr_assert_eq(removed, 1, "only ids flushed before the cutoff leave the window");
    cr_assert_eq(insert(ids, s, 3), 1, "once out of the window, 'old' is accepted again");
}

Test(buffer, loads_the_script_after_a_script_flush)
{
    redisReply *rep;
    fp_error err = {0};
    const char *argv[] = {"SCRIPT", "FLUSH"};
    size_t lens[] = {6, 5};
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 2, argv, lens), 0, "%s", err.msg);
    freeReplyObject(rep);
    const char *ids[] = {"x"};
    const long long s[] = {1};
    cr_assert_eq(insert(ids, s, 1), 1, "EVALSHA answered NOSCRIPT and the client fell back to EVAL");
    cr_assert_eq(insert(ids, s, 1), 0);
}

Test(buffer, wait_confirms_both_replicas)
{
    const char *ids[] = {"w"};
    const long long s[] = {1};
    long long acked = 0;
    fp_error err = {0};
    tk_redis_settled(redis);
    cr_assert_eq(insert(ids, s, 1), 1);
    cr_assert_eq(fp_rowstore_wait(buf, 2, 5000, &acked, &err), 0, "%s", err.msg);
    cr_assert_eq(acked, 2);
    cr_assert_eq(fp_rowstore_wait(buf, 5, 200, &acked, &err), FP_ETIMEOUT, "only two replicas exist");
    cr_assert_not_null(strstr(err.msg, "2 of 5 replicas"), "%s", err.msg);
}

Test(buffer, pipelined_insert_guards_the_connection_until_finished)
{
    fp_error err = {0};
    fp_rowstore_row rows[] = {{"p1", 1, "[\"p1\"]"}, {"p2", 2, "[\"p2\"]"}};
    long long inserted = -1, acked = -1, pending = 0;
    tk_redis_settled(redis);
    cr_assert_eq(fp_rowstore_insert_start(buf, rows, 2, 1, 5000, &err), 0, "%s", err.msg);
    /* Its answers are due: any other command would read them as its own. */
    cr_assert_eq(fp_rowstore_pending(buf, &pending, &err), FP_EINVAL);
    cr_assert_not_null(strstr(err.msg, "in flight"), "%s", err.msg);
    cr_assert_eq(fp_rowstore_insert_start(buf, rows, 2, 1, 5000, &err), FP_EINVAL);
    cr_assert_eq(fp_rowstore_insert_finish(buf, &inserted, &acked, &err), 0, "%s", err.msg);
    cr_assert_eq(inserted, 2);
    cr_assert_eq(acked >= 1, 1, "WAIT 1 answered %lld", acked);
    cr_assert_eq(fp_rowstore_insert_finish(buf, &inserted, &acked, &err), FP_EINVAL, "nothing is in flight");
    cr_assert_eq(fp_rowstore_pending(buf, &pending, &err), 0, "%s", err.msg);
    cr_assert_eq(pending, 2);
}

Test(buffer, pipelined_insert_on_a_replaced_connection_reports_it_and_a_retry_is_exact)
{
    fp_error err = {0};
    fp_rowstore_row rows[] = {{"r1", 1, "[\"r1\"]"}};
    long long inserted = -1, acked = -1, pending = 0;
    cr_assert_eq(fp_rowstore_insert_start(buf, rows, 1, 0, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_redis_connect(redis, &err), 0, "%s", err.msg);   /* a rediscovery meanwhile */
    cr_assert_eq(fp_rowstore_insert_finish(buf, &inserted, &acked, &err), FP_EIO);
    cr_assert_not_null(strstr(err.msg, "replaced"), "%s", err.msg);
    /* Whether the first send was applied is unknown; the retry makes it exact. */
    cr_assert_eq(fp_rowstore_insert(buf, rows, 1, &inserted, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_rowstore_pending(buf, &pending, &err), 0, "%s", err.msg);
    cr_assert_eq(pending, 1);
}

/* A fresh connection loads the script before its first EVALSHA: the pipelined insert
 * (which cannot fall back to EVAL by itself) succeeds even after a SCRIPT FLUSH, and
 * the consumer never logs a NOSCRIPT retry. */
Test(buffer, a_fresh_connection_loads_the_script_before_a_pipelined_insert)
{
    redisReply *rep;
    fp_error err = {0};
    const char *argv[] = {"SCRIPT", "FLUSH"};
    size_t lens[] = {6, 5};
    cr_assert_eq(fp_redis_command(redis, &rep, &err, 2, argv, lens), 0, "%s", err.msg);
    freeReplyObject(rep);
    fp_redis *fresh = tk_redis();
    fp_rowstore *b = fp_rowstore_new(fresh, "tests", name, &err);
    cr_assert_not_null(b, "%s", err.msg);
    fp_rowstore_row rows[] = {{"f1", 1, "[\"f1\"]"}};
    long long inserted = -1, acked = -1;
    cr_assert_eq(fp_rowstore_insert_start(b, rows, 1, 0, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_rowstore_insert_finish(b, &inserted, &acked, &err), 0, "no NOSCRIPT on a fresh connection: %s", err.msg);
    cr_assert_eq(inserted, 1);
    fp_rowstore_free(b);
    fp_redis_free(fresh);
}

/* Reading rows by id: each in the order asked; a missing row and a row that is not a
 * JSON array are errors that name the id. */
struct read_case { const char *stored; int rc; const char *msg; };

static struct read_case reads[] = {
    {"[\"q1\",\"t\",\"v\"]", 0, NULL},
    {NULL, FP_ENOTFOUND, "row of q1 is missing"},
    {"{\"q1\":1}", FP_EINVAL, "row of q1 is not a JSON array"},
    {"[\"q1\"] trailing", FP_EINVAL, "row of q1 is not a JSON array"},
};

ParameterizedTestParameters(buffer, rows_by_id)
{
    return cr_make_param_array(struct read_case, reads, sizeof reads / sizeof reads[0]);
}

ParameterizedTest(struct read_case *c, buffer, rows_by_id)
{
    char key[600];
    redisReply *rep;
    fp_error err = {0};
    fp_rowstore_key(key, sizeof key, "tests", name, "rows");
    if (c->stored) {
        const char *argv[] = {"HSET", key, "q1", c->stored, "q0", "[\"q0\"]"};
        size_t lens[6];
        for (int i = 0; i < 6; i++)
            lens[i] = strlen(argv[i]);
        cr_assert_eq(fp_redis_command(redis, &rep, &err, 6, argv, lens), 0, "%s", err.msg);
        freeReplyObject(rep);
    }
    cJSON *ids = cJSON_CreateStringArray((const char *[]){"q1", "q0"}, 2);
    fp_rowstore_rowset rs;
    int rc = fp_rowstore_rows(buf, ids, &rs, &err);
    cr_assert_eq(rc, c->rc, "%s: %s", c->stored ? c->stored : "(none)", err.msg);
    if (rc == 0) {
        cr_assert_eq(rs.n, 2);
        cr_assert_str_eq(rs.ids[0], "q1");
        cr_assert_str_eq(rs.rows[0], c->stored);
        cr_assert_str_eq(rs.rows[1], "[\"q0\"]");
    } else {
        cr_assert_not_null(strstr(err.msg, c->msg), "%s", err.msg);
        cr_assert_eq(rs.n, 0, "a failed read leaves an empty set");
    }
    fp_rowstore_rowset_clear(&rs);
    cJSON_Delete(ids);
}
