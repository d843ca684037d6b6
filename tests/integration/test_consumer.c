/* formpipe-consumer as a process against the real Kafka and Redis Sentinel of
 * scripts/testenv: exact buffers under duplicates, kill -9 of the consumer, kill -9 of
 * the Redis master, group membership changes, dead letters, and SIGTERM. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buffer.h"
#include "event.h"
#include "testkit.h"

#define BASE_MS 1795000000000LL   /* a fixed submission time base: order is by i */

/* One pipeline per test: its own topic, group, dead-letter topic and buffer keys. */
static char name[64], topic[128], dlq[140], *form_path;
static fp_redis *redis;
static fp_buffer *buffer;

static void setup(void)
{
    char form[512];
    tk_unique(name, sizeof name, "c");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(dlq, sizeof dlq, "%s.dlq", topic);
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,\"fields\":["
             "{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"roll\",\"type\":\"string\"},"
             "{\"name\":\"cgpa\",\"type\":\"number\"}]}", name);
    form_path = tk_write_temp(form);
    fp_error err = {0};
    redis = tk_redis();
    buffer = fp_buffer_new(redis, "tests", name, &err);
    cr_assert_not_null(buffer, "%s", err.msg);
    tk_redis_settled(redis);   /* tests that WAIT for 2 replicas need both */
}

static void teardown(void)
{
    fp_buffer_free(buffer);
    fp_redis_free(redis);
    unlink(form_path);
    free(form_path);
}

TestSuite(consumer, .init = setup, .fini = teardown, .timeout = 300);

/* Starts a consumer; in_flight is --batches-in-flight (each batch on its own Redis
 * connection), varied between tests so one and several lanes are both exercised. */
static void start_consumer_lanes(tk_proc *p, int port, const char *min_ack, const char *in_flight)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *argv[] = {"--form", form_path, "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
                          "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
                          "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                          "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                          "--min-replicas-ack", min_ack, "--batches-in-flight", in_flight,
                          "--admin-bind", "127.0.0.1",
                          "--admin-port", portstr, "--lag-interval", "500ms",
                          /* a killed member is noticed in 6 s instead of 45 */
                          "--kafka-property", "session.timeout.ms=6000", NULL};
    tk_start(p, "formpipe-consumer", argv);
}

static void start_consumer(tk_proc *p, int port, const char *min_ack)
{
    start_consumer_lanes(p, port, min_ack, "2");
}

/* The event for submission i (time BASE_MS + i, key = roll). */
static char *event_json(int i, const char *source_ns)
{
    char id[32], nm[32], roll[16];
    snprintf(id, sizeof id, "id-%07d", i);
    snprintf(nm, sizeof nm, "student %d", i);
    snprintf(roll, sizeof roll, "%d", i % 97);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "name", nm);
    cJSON_AddStringToObject(data, "roll", roll);
    cJSON_AddNumberToObject(data, "cgpa", i % 10);
    char *ev = fp_event_encode(id, source_ns, name, BASE_MS + i, 1, data);
    cJSON_Delete(data);
    return ev;
}

static void produce_range(rd_kafka_t *p, int from, int to)
{
    for (int i = from; i < to; i++) {
        char *ev = event_json(i, "tests"), key[16];
        snprintf(key, sizeof key, "%d", i % 97);
        tk_produce(p, topic, key, ev, strlen(ev));
        free(ev);
    }
}

/* Creates the pipeline's topics and produces events [0, n); returns the producer. */
static rd_kafka_t *backlog(int partitions, int n)
{
    tk_topic_create(topic, partitions);
    tk_topic_create(dlq, 1);
    rd_kafka_t *p = tk_producer();
    produce_range(p, 0, n);
    tk_flush(p);
    return p;
}

static long long pending(void)
{
    long long n = -1;
    fp_error err = {0};
    for (int attempt = 0; attempt < 50; attempt++) {   /* the master may be failing over */
        if (fp_buffer_pending(buffer, &n, &err) == 0)
            return n;
        usleep(200 * 1000);
    }
    cr_assert_fail("cannot read the buffer: %s", err.msg);
    return -1;
}

static void wait_pending(long long want, double timeout_s, tk_proc *show)
{
    double deadline = tk_now() + timeout_s;
    long long n = 0;
    while (tk_now() < deadline && (n = pending()) < want)
        usleep(100 * 1000);
    if (n != want && show)
        tk_show_log(show);
    cr_assert_eq(n, want, "buffer holds %lld rows, want %lld (after %.0f s)", n, want, timeout_s);
}

/* Every id 0..n-1 is buffered exactly once, in submission-time order. */
static void assert_exact(int n)
{
    fp_buffer_rowset rows;
    fp_error err = {0};
    cr_assert_eq(fp_buffer_oldest(buffer, (size_t)n + 10, &rows, &err), 0, "%s", err.msg);
    cr_assert_eq(rows.n, (size_t)n);
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "id-%07d", i);
        cr_assert_str_eq(rows.ids[i], want, "row %d", i);
        cJSON *row = cJSON_Parse(rows.rows[i]);
        cr_assert_eq(cJSON_GetArraySize(row), 5, "id, received_at and three fields");
        cJSON_Delete(row);
    }
    fp_buffer_rowset_clear(&rows);
}

/* Reads one counter from the consumer's /metrics. */
static double metric(int port, const char *series)
{
    char *body;
    cr_assert_eq(tk_http_get(port, "/metrics", &body), 200);
    char needle[256];
    snprintf(needle, sizeof needle, "\n%s ", series);   /* a sample line, not # HELP */
    char *line = strstr(body, needle);
    cr_assert_not_null(line, "%s not in /metrics", series);
    double v = atof(line + strlen(needle));
    free(body);
    return v;
}

static void wait_ready(int port, tk_proc *p)
{
    double deadline = tk_now() + 30;
    char *body = NULL;
    long st = 0;
    while (tk_now() < deadline) {
        st = tk_http_get(port, "/readyz", &body);
        free(body);
        if (st == 200)
            return;
        usleep(100 * 1000);
    }
    tk_show_log(p);
    cr_assert_fail("consumer not ready within 30 s (last /readyz %ld)", st);
}

Test(consumer, duplicates_and_redeliveries_leave_exactly_the_unique_rows)
{
    tk_topic_create(topic, 3);
    tk_topic_create(dlq, 1);
    rd_kafka_t *p = tk_producer();
    produce_range(p, 0, 3000);
    produce_range(p, 1000, 1500);   /* 500 client retries of the same submissions */
    tk_flush(p);

    tk_proc c;
    int port = tk_free_port();
    start_consumer(&c, port, "2");
    wait_ready(port, &c);
    wait_pending(3000, 60, &c);
    assert_exact(3000);
    /* The last batch is counted once its pipelined answer is read: allow a moment. */
    double deadline = tk_now() + 5;
    while (tk_now() < deadline && metric(port, "formpipe_consumer_inserted_total") +
                                      metric(port, "formpipe_consumer_duplicates_total") < 3500)
        usleep(100 * 1000);
    cr_assert_eq(metric(port, "formpipe_consumer_events_total"), 3500);
    cr_assert_eq(metric(port, "formpipe_consumer_inserted_total"), 3000);
    cr_assert_eq(metric(port, "formpipe_consumer_duplicates_total"), 500);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0, "clean exit on SIGTERM");
    rd_kafka_destroy(p);
}

Test(consumer, kill_9_mid_stream_loses_nothing)
{
    const int n = 20000;
    rd_kafka_t *p = backlog(3, n);

    tk_proc c;
    start_consumer_lanes(&c, tk_free_port(), "1", "1");   /* one lane: the plain pipeline */
    double deadline = tk_now() + 60;
    while (tk_now() < deadline && pending() < n / 4)
        usleep(20 * 1000);
    long long at_kill = pending();
    cr_assert_lt(at_kill, n, "the consumer must be killed mid-stream (already had %lld)", at_kill);
    cr_assert_eq(tk_stop(&c, SIGKILL, 10), 128 + SIGKILL);

    start_consumer(&c, tk_free_port(), "1");
    wait_pending(n, 120, &c);
    assert_exact(n);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    cr_log_info("killed at %lld of %d rows; after restart exactly %d", at_kill, n, n);
    rd_kafka_destroy(p);
}

Test(consumer, follows_a_redis_master_kill_and_the_buffer_is_exact)
{
    const int n = 20000;
    rd_kafka_t *p = backlog(3, n);

    fp_error err = {0};
    cr_assert_eq(fp_redis_connect(redis, &err), 0, "%s", err.msg);
    char master[300], component[32];
    snprintf(master, sizeof master, "%s", fp_redis_master_addr(redis));
    tk_redis_component(atoi(strrchr(master, ':') + 1), component, sizeof component);

    tk_proc c;
    /* Both replicas confirm every batch, so whichever is promoted has every stored row.
     * Four batches in flight: the kill fails several at once, each retried in order. */
    start_consumer_lanes(&c, tk_free_port(), "2", "4");
    double deadline = tk_now() + 60;
    while (tk_now() < deadline && pending() < n / 5)
        usleep(20 * 1000);
    cr_assert_lt(pending(), n, "the master must die mid-stream");
    double killed_at = tk_now();
    tk_testenv("kill", component);
    sleep(3);
    tk_testenv("start", component);   /* it comes back empty and the sentinels make it a replica */

    wait_pending(n, 120, &c);
    assert_exact(n);
    cr_assert_str_neq(fp_redis_master_addr(redis), master, "the master changed");
    cr_log_info("master %s killed; buffer exact %.1f s later", master, tk_now() - killed_at);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    rd_kafka_destroy(p);
}

struct feeder { rd_kafka_t *p; int from, to; double seconds; };

/* Produces [from, to) spread over `seconds`, so group changes happen mid-stream. */
static void *feed(void *arg)
{
    struct feeder *f = arg;
    int step = (f->to - f->from) / 20;
    for (int i = f->from; i < f->to; i += step) {
        produce_range(f->p, i, i + step < f->to ? i + step : f->to);
        usleep((useconds_t)(f->seconds / 20 * 1e6));
    }
    tk_flush(f->p);
    return NULL;
}

Test(consumer, group_members_joining_and_leaving_keep_totals_exact)
{
    const int n = 30000;
    tk_topic_create(topic, 6);
    tk_topic_create(dlq, 1);
    struct feeder f = {tk_producer(), 0, n, 8};
    pthread_t t;
    tk_proc a, b, c;
    int pa = tk_free_port(), pb = tk_free_port();
    start_consumer(&a, pa, "1");
    start_consumer(&b, pb, "1");
    pthread_create(&t, NULL, feed, &f);
    sleep(3);
    start_consumer(&c, tk_free_port(), "1");   /* a third member joins */
    sleep(3);
    cr_assert_eq(tk_stop(&a, SIGTERM, 30), 0, "a member leaves cleanly");
    pthread_join(t, NULL);
    wait_pending(n, 120, &b);
    assert_exact(n);
    cr_assert_gt(metric(pb, "formpipe_consumer_events_total"), 0, "b took part");
    cr_assert_eq(tk_stop(&b, SIGTERM, 30), 0);
    cr_assert_eq(tk_stop(&c, SIGTERM, 30), 0);
    rd_kafka_destroy(f.p);
}

Test(consumer, malformed_events_go_to_the_dead_letter_topic_with_a_reason)
{
    tk_topic_create(topic, 1);
    tk_topic_create(dlq, 1);
    rd_kafka_t *p = tk_producer();
    char *good0 = event_json(0, "tests"), *good1 = event_json(1, "tests"), *other = event_json(2, "elsewhere");
    char *unknown = strdup(good0);
    char *pos = strstr(unknown, "\"cgpa\"");
    memcpy(pos, "\"cgpx\"", 6);
    const char *bodies[] = {good0, "this is not json", unknown, other, good1};
    for (int i = 0; i < 5; i++)
        tk_produce(p, topic, "k", bodies[i], strlen(bodies[i]));
    tk_flush(p);

    tk_proc c;
    int port = tk_free_port();
    start_consumer(&c, port, "1");
    wait_pending(2, 60, &c);
    assert_exact(2);   /* the good events on both sides of the bad ones */

    /* Read the dead letters back, with their reason headers. */
    rd_kafka_t *r = tk_kafka_reader(dlq);
    const char *want[] = {"event is not a JSON object", "unknown field 'cgpx'", "source /forms/elsewhere/"};
    int got = 0;
    double deadline = tk_now() + 60;
    while (got < 3 && tk_now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 500);
        if (!m)
            continue;
        if (!m->err) {
            rd_kafka_headers_t *h = NULL;
            const void *val;
            size_t len;
            cr_assert_eq(rd_kafka_message_headers(m, &h), 0, "dead letter has headers");
            cr_assert_eq(rd_kafka_header_get_last(h, "formpipe-dlq-reason", &val, &len), 0);
            char reason[512];
            snprintf(reason, sizeof reason, "%.*s", (int)len, (const char *)val);
            cr_assert_not_null(strstr(reason, want[got]), "dead letter %d: '%s' lacks '%s'", got, reason, want[got]);
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    cr_assert_eq(got, 3, "three dead letters, got %d", got);
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    cr_assert_eq(metric(port, "formpipe_consumer_dead_lettered_total{reason=\"not_json\"}"), 1);
    cr_assert_eq(metric(port, "formpipe_consumer_dead_lettered_total{reason=\"unknown_field\"}"), 1);
    cr_assert_eq(metric(port, "formpipe_consumer_dead_lettered_total{reason=\"wrong_source\"}"), 1);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    free(good0);
    free(good1);
    free(other);
    free(unknown);
    rd_kafka_destroy(p);
}

Test(consumer, sigterm_commits_so_a_restart_reads_nothing_again)
{
    rd_kafka_t *p = backlog(3, 1000);
    tk_proc c;
    start_consumer(&c, tk_free_port(), "1");
    wait_pending(1000, 60, &c);
    double t0 = tk_now();
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0, "exit status 0 after SIGTERM");
    cr_log_info("consumer stopped %.2f s after SIGTERM", tk_now() - t0);

    int port = tk_free_port();
    start_consumer(&c, port, "1");
    wait_ready(port, &c);
    produce_range(p, 1000, 1001);   /* one new event proves the restarted member consumes */
    tk_flush(p);
    wait_pending(1001, 60, &c);
    double deadline = tk_now() + 5;
    while (tk_now() < deadline && metric(port, "formpipe_consumer_events_total") < 1)
        usleep(100 * 1000);
    cr_assert_eq(metric(port, "formpipe_consumer_events_total"), 1,
                 "after a clean stop the committed offsets mean only the new event is read");
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    rd_kafka_destroy(p);
}
