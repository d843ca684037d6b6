/* formpipe-consumer as a process against the real Kafka and Redis Sentinel of
 * scripts/testenv: exact buffers under duplicates, kill -9 of the consumer, kill -9 of
 * the Redis master, group membership changes, dead letters, and SIGTERM. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rowstore.h"
#include "deadletter.h"
#include "event.h"
#include "testkit.h"

#define BASE_MS 1795000000000LL   /* a fixed submission time base: order is by i */

/* One pipeline per test: its own topic, group, dead-letter topic and buffer keys. */
static char name[64], topic[128], dlq[140], *form_path;
static fp_redis *redis;
static fp_rowstore *buffer;

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
    buffer = fp_rowstore_new(redis, "tests", name, &err);
    cr_assert_not_null(buffer, "%s", err.msg);
    tk_redis_settled(redis);   /* tests that WAIT for 2 replicas need both */
}

static void teardown(void)
{
    fp_rowstore_free(buffer);
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
    /* The dead-letter timeout and backoff are shortened so a missing dead-letter topic
     * is noticed, and its return acted on, within seconds. */
    const char *argv[] = {"--form", form_path, "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
                          "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
                          "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                          "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                          "--min-replicas-ack", min_ack, "--batches-in-flight", in_flight,
                          "--admin-bind", "127.0.0.1",
                          "--admin-port", portstr, "--lag-interval", "500ms",
                          "--dead-letter-timeout", "2s", "--backoff-max", "1s",
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
        if (fp_rowstore_pending(buffer, &n, &err) == 0)
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
    fp_rowstore_rowset rows;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_oldest(buffer, (size_t)n + 10, &rows, &err), 0, "%s", err.msg);
    cr_assert_eq(rows.n, (size_t)n);
    for (int i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "id-%07d", i);
        cr_assert_str_eq(rows.ids[i], want, "row %d", i);
        cJSON *row = cJSON_Parse(rows.rows[i]);
        cr_assert_eq(cJSON_GetArraySize(row), 5, "id, received_at and three fields");
        cJSON_Delete(row);
    }
    fp_rowstore_rowset_clear(&rows);
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

/* A series' value, or dflt when /metrics has no such series (yet). */
static double metric_or(int port, const char *series, double dflt)
{
    char *body, needle[256];
    cr_assert_eq(tk_http_get(port, "/metrics", &body), 200);
    snprintf(needle, sizeof needle, "\n%s ", series);
    char *line = strstr(body, needle);
    double v = line ? atof(line + strlen(needle)) : dflt;
    free(body);
    return v;
}

/* Waits up to timeout_s until the series has value want. */
static void wait_metric(int port, const char *series, double want, double timeout_s, tk_proc *show)
{
    double deadline = tk_now() + timeout_s, v = -1;
    while (tk_now() < deadline && (v = metric_or(port, series, -1)) != want)
        usleep(200 * 1000);
    if (v != want && show)
        tk_show_log(show);
    cr_assert_eq(v, want, "%s is %g, want %g (after %.0f s)", series, v, want, timeout_s);
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

    /* Read the dead letters back, with their reason code and message headers. */
    rd_kafka_t *r = tk_kafka_reader(dlq);
    const char *want[] = {"event is not a JSON object", "unknown field 'cgpx'", "source /forms/elsewhere/"};
    const char *codes[] = {"not_json", "unknown_field", "wrong_source"};
    const long long offsets[] = {1, 2, 3};
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
            cr_assert_str_eq(reason, codes[got], "dead letter %d: reason code", got);
            fp_deadletter d;
            fp_error err = {0};
            cr_assert_eq(fp_deadletter_read(h, &d, &err), 0, "dead letter %d: %s", got, err.msg);
            cr_assert_not_null(strstr(d.message, want[got]), "dead letter %d: '%s' lacks '%s'", got, d.message, want[got]);
            cr_assert_str_eq(d.source_topic, topic);
            cr_assert_eq(d.source_partition, 0);
            cr_assert_eq(d.source_offset, offsets[got], "dead letter %d: source offset", got);
            cr_assert_eq(d.generation, 1, "the consumer's form generation");
            cr_assert_lt(llabs(d.time_ms - (long long)time(NULL) * 1000), 600000, "dead-lettered just now");
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

/* Produces value to one partition (key "k"). */
static void produce_to(rd_kafka_t *p, int partition, const char *value)
{
    cr_assert_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY("k", 1),
                                   RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END), 0);
}

/* Produces the good events [from, to) round-robin to partitions 0..nparts-1. */
static void produce_spread(rd_kafka_t *p, int from, int to, int nparts)
{
    for (int i = from; i < to; i++) {
        char *ev = event_json(i, "tests");
        produce_to(p, i % nparts, ev);
        free(ev);
    }
}

/* The consumer group's committed offset of each of the topic's partitions (-1: none). */
static void committed(int nparts, long long *out)
{
    char err[512], group[200];
    snprintf(group, sizeof group, "formpipe.tests.%s", name);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "group.id", group, err, sizeof err), 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    cr_assert_not_null(rk, "%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(l, topic, i);
    cr_assert_eq(rd_kafka_committed(rk, l, 10000), 0, "reading committed offsets");
    for (int i = 0; i < nparts; i++)
        out[i] = l->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

/* Waits up to timeout_s until partition's committed offset is want. */
static void wait_committed(int nparts, int partition, long long want, double timeout_s)
{
    long long offs[16];
    double deadline = tk_now() + timeout_s;
    do {
        committed(nparts, offs);
        if (offs[partition] == want)
            return;
        usleep(500 * 1000);
    } while (tk_now() < deadline);
    cr_assert_fail("partition %d: committed offset %lld, want %lld", partition, offs[partition], want);
}

/* Counts the dead letters on the dead-letter topic whose reason is code. */
static int dead_letters(const char *code, double wait_s, int want)
{
    int got = 0;
    rd_kafka_t *r = tk_kafka_reader(dlq);
    double deadline = tk_now() + wait_s;
    while (tk_now() < deadline && got < want + 1) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 500);
        if (!m)
            continue;
        rd_kafka_headers_t *h = NULL;
        fp_deadletter d;
        if (!m->err && rd_kafka_message_headers(m, &h) == 0 && fp_deadletter_read(h, &d, NULL) == 0 &&
            strcmp(fp_deadletter_reason_name(d.reason), code) == 0)
            got++;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    return got;
}

Test(consumer, a_missing_dead_letter_topic_holds_only_the_poisons_partition_until_it_is_back)
{
    tk_topic_create(topic, 3);
    tk_topic_create(dlq, 1);
    rd_kafka_t *p = tk_producer();
    tk_proc c;
    int port = tk_free_port();
    start_consumer(&c, port, "1");
    wait_ready(port, &c);
    /* 30 events, 10 per partition, and one poison on partition 0 that is dead-lettered
     * while the topic is there (the producer has talked to it before it goes). */
    produce_spread(p, 0, 30, 3);
    produce_to(p, 0, "not json at all");
    tk_flush(p);
    wait_pending(30, 60, &c);
    wait_metric(port, "formpipe_consumer_dead_lettered_total{reason=\"not_json\"}", 1, 60, &c);

    tk_topic_delete(dlq);
    sleep(2);
    produce_to(p, 1, "{\"poison\":true}");   /* partition 1, offset 10 */
    produce_spread(p, 100, 130, 3);           /* 10 more on each partition, after the poison on 1 */
    tk_flush(p);
    wait_metric(port, "formpipe_consumer_dead_letter_blocked{partition=\"1\"}", 1, 60, &c);
    /* The other partitions move on and commit past everything; partition 1 stays at (or
     * before) the poison, so a restart anywhere would meet it again. */
    wait_committed(3, 0, 21, 30);
    wait_committed(3, 2, 20, 30);
    long long offs[3];
    committed(3, offs);
    cr_assert_leq(offs[1], 10, "partition 1 committed %lld, past the poison at 10", offs[1]);
    cr_assert_gt(metric(port, "formpipe_consumer_dead_letter_failures_total"), 0);
    cr_assert_eq(metric_or(port, "formpipe_consumer_dead_letter_blocked{partition=\"0\"}", 0), 0);
    cr_assert_eq(metric_or(port, "formpipe_consumer_dead_letter_blocked{partition=\"2\"}", 0), 0);
    char *body = NULL;
    cr_assert_eq(tk_http_get(port, "/readyz", &body), 200, "still ready: %s", body ? body : "");
    free(body);
    cr_assert_eq(tk_http_get(port, "/healthz", &body), 200, "still alive");
    free(body);

    tk_topic_create(dlq, 1);   /* as the operator would re-create it */
    wait_metric(port, "formpipe_consumer_dead_letter_blocked{partition=\"1\"}", 0, 60, &c);
    wait_pending(60, 60, &c);   /* every good event, each once */
    wait_committed(3, 1, 21, 30);
    cr_assert_eq(dead_letters("not_cloudevent", 10, 1), 1, "the poison is on the re-created topic once");
    cr_assert_eq(metric(port, "formpipe_consumer_dead_lettered_total{reason=\"not_cloudevent\"}"), 1);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    rd_kafka_destroy(p);
}

/* An event of generation 2 with the field "city", which the generation-1 form lacks. */
static char *newer_event(int i)
{
    char id[32];
    snprintf(id, sizeof id, "id-%07d", i);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "name", "student new");
    cJSON_AddStringToObject(data, "city", "Pune");
    char *ev = fp_event_encode(id, "tests", name, BASE_MS + i, 2, data);
    cJSON_Delete(data);
    return ev;
}

/* Rewrites the form file as generation 2 with "city" appended (append-only columns). */
static void form_gains_city(void)
{
    char form[512];
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":2,\"fields\":["
             "{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"roll\",\"type\":\"string\"},"
             "{\"name\":\"cgpa\",\"type\":\"number\"},{\"name\":\"city\",\"type\":\"string\"}],"
             "\"columns\":[\"name\",\"roll\",\"cgpa\",\"city\"]}", name);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.new", form_path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(form, f);
    fclose(f);
    cr_assert_eq(rename(tmp, form_path), 0);   /* atomically, as the kubelet swaps a ConfigMap */
}

/* A consumer that waits form_wait for a newer form. */
static void start_waiting_consumer(tk_proc *c, const char *form_wait)
{
    const char *argv[] = {"--form", form_path, "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
                          "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
                          "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                          "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                          "--admin-bind", "127.0.0.1", "--admin-port", "0", "--form-wait", form_wait,
                          "--backoff-max", "500ms", NULL};
    tk_start(c, "formpipe-consumer", argv);
}

Test(consumer, an_event_of_a_newer_form_waits_for_the_form_instead_of_being_dead_lettered)
{
    rd_kafka_t *p = backlog(1, 5);
    char *ev = newer_event(5);
    tk_produce(p, topic, "k", ev, strlen(ev));
    free(ev);
    produce_range(p, 6, 10);
    tk_flush(p);
    rd_kafka_destroy(p);
    tk_proc c;
    start_waiting_consumer(&c, "60s");
    sleep(4);
    cr_assert_leq(pending(), 5, "nothing after the newer event is stored before it");
    cr_assert_eq(dead_letters("unknown_field", 2, 0), 0, "it waits for its form: no dead letter");
    form_gains_city();
    wait_pending(10, 60, &c);
    cr_assert_eq(dead_letters("unknown_field", 3, 0), 0, "nothing is dead-lettered for a form change");
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
}

Test(consumer, an_event_whose_form_never_arrives_is_dead_lettered_after_the_wait)
{
    rd_kafka_t *p = backlog(1, 2);
    char *ev = newer_event(2);
    tk_produce(p, topic, "k", ev, strlen(ev));
    free(ev);
    tk_flush(p);
    rd_kafka_destroy(p);
    tk_proc c;
    start_waiting_consumer(&c, "3s");
    wait_pending(2, 60, &c);
    cr_assert_eq(dead_letters("unknown_field", 30, 1), 1, "a bounded wait: then it is set aside, with its reason");
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
}
