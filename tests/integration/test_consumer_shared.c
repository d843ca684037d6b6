/* formpipe-consumer in shared mode (--forms-dir) and switching groups, as a process
 * against the real Kafka and Redis Sentinel of scripts/testenv: several pipelines in one
 * group each landing in their own buffer and dead-letter topic, a form added and one
 * removed while it runs, the start-offset rule when a pipeline moves between a
 * dedicated and the shared group, and kill -9 of the shared consumer. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadletter.h"
#include "event.h"
#include "redis.h"
#include "rowstore.h"
#include "testkit.h"

#define BASE_MS 1795000000000LL   /* a fixed submission time base: order is by i */
#define MAXP 3

/* One pipeline of a test: its names and its buffer. */
typedef struct tpipe {
    char name[80], topic[128], dlq[140], dedicated_group[256], file[512];
    fp_rowstore *buffer;
} tpipe;

static char dir[256], shared_group[128];
static tpipe pipes[MAXP];
static fp_redis *redis;

static void setup(void)
{
    char base[64];
    tk_unique(base, sizeof base, "sh");
    snprintf(dir, sizeof dir, "/tmp/fp-forms-%s", base);
    cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s", dir);
    snprintf(shared_group, sizeof shared_group, "formpipe.tests.shared-%s", base);
    redis = tk_redis();
    for (int i = 0; i < MAXP; i++) {
        tpipe *p = &pipes[i];
        fp_error err = {0};
        char nm[80], tp[128];
        snprintf(nm, sizeof nm, "%.64s-%c", base, 'a' + i);
        snprintf(tp, sizeof tp, "forms.tests.%s", nm);
        snprintf(p->name, sizeof p->name, "%s", nm);
        snprintf(p->topic, sizeof p->topic, "%s", tp);
        snprintf(p->dlq, sizeof p->dlq, "%s.dlq", tp);
        snprintf(p->dedicated_group, sizeof p->dedicated_group, "formpipe.tests.%s", nm);
        snprintf(p->file, sizeof p->file, "%s/%s.json", dir, nm);
        p->buffer = fp_rowstore_new(redis, "tests", p->name, &err);
        cr_assert_not_null(p->buffer, "%s", err.msg);
    }
    tk_redis_settled(redis);
}

static void teardown(void)
{
    for (int i = 0; i < MAXP; i++) {
        unlink(pipes[i].file);
        fp_rowstore_free(pipes[i].buffer);
    }
    rmdir(dir);
    fp_redis_free(redis);
}

TestSuite(consumer_shared, .init = setup, .fini = teardown, .timeout = 300);

/* The compiled form of p as the operator writes it into the shared ConfigMap, with
 * generation gen (gen 2 adds the field "email"). */
static char *form_json(const tpipe *p, int gen)
{
    char *s = NULL;
    cr_assert_gt(asprintf(&s,
                          "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":%d,\"topic\":\"%s\",\"fields\":["
                          "{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"roll\",\"type\":\"string\"}%s],"
                          "\"shared\":{\"group\":\"%s\",\"dedicatedGroup\":\"%s\",\"dlqTopic\":\"%s\"}}",
                          p->name, gen, p->topic, gen > 1 ? ",{\"name\":\"email\",\"type\":\"email\"}" : "",
                          shared_group, p->dedicated_group, p->dlq),
                 0);
    return s;
}

/* Writes p's form file into the directory atomically (a hidden temporary, renamed), as
 * the kubelet's swap makes a whole new file appear. */
static void write_form(const tpipe *p, int gen)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s", dir, p->name);
    char *json = form_json(p, gen);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(json, f);
    fclose(f);
    free(json);
    cr_assert_eq(rename(tmp, p->file), 0);
}

/* Creates p's topic and dead-letter topic. */
static void topics(const tpipe *p, int partitions)
{
    tk_topic_create(p->topic, partitions);
    tk_topic_create(p->dlq, 1);
}

/* Produces p's events [from, to): id "<name>-<i>", time BASE_MS + i, generation gen
 * (gen 2 carries "email"). */
static void produce(rd_kafka_t *k, const tpipe *p, int from, int to, int gen)
{
    for (int i = from; i < to; i++) {
        char id[96], nm[32], key[16];
        snprintf(id, sizeof id, "%s-%07d", p->name, i);
        snprintf(nm, sizeof nm, "student %d", i);
        snprintf(key, sizeof key, "%d", i % 97);
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "name", nm);
        cJSON_AddStringToObject(data, "roll", key);
        if (gen > 1)
            cJSON_AddStringToObject(data, "email", "a@b.co");
        char *ev = fp_event_encode(id, "tests", p->name, BASE_MS + i, gen, data);
        cJSON_Delete(data);
        tk_produce(k, p->topic, key, ev, strlen(ev));
        free(ev);
    }
}

/* Starts formpipe-consumer with the given mode options (NULL-terminated) on the
 * admin port. */
static void start(tk_proc *c, int port, const char *const *mode)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *argv[40] = {"--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
                            "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
                            "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                            "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                            "--min-replicas-ack", "1", "--admin-bind", "127.0.0.1", "--admin-port", portstr,
                            "--lag-interval", "500ms", "--rescan-interval", "300ms",
                            "--dead-letter-timeout", "2s", "--backoff-max", "1s",
                            "--kafka-property", "session.timeout.ms=6000"};
    size_t n = 0;
    while (argv[n])
        n++;
    for (size_t i = 0; mode[i]; i++)
        argv[n++] = mode[i];
    argv[n] = NULL;
    tk_start(c, "formpipe-consumer", argv);
}

static void start_shared(tk_proc *c, int port)
{
    start(c, port, (const char *[]){"--forms-dir", dir, NULL});
}

static long long pending(const tpipe *p)
{
    long long n = -1;
    fp_error err = {0};
    for (int attempt = 0; attempt < 50; attempt++) {   /* the master may be failing over */
        if (fp_rowstore_pending(p->buffer, &n, &err) == 0)
            return n;
        usleep(200 * 1000);
    }
    cr_assert_fail("cannot read the buffer of %s: %s", p->name, err.msg);
    return -1;
}

/* Waits until p's buffer holds want rows (fails showing c's log otherwise). */
static void wait_pending(const tpipe *p, long long want, double timeout_s, tk_proc *c)
{
    double deadline = tk_now() + timeout_s;
    long long n = 0;
    while (tk_now() < deadline && (n = pending(p)) < want)
        usleep(100 * 1000);
    if (n != want)
        tk_show_log(c);
    cr_assert_eq(n, want, "%s's buffer holds %lld rows, want %lld (after %.0f s)", p->name, n, want, timeout_s);
}

/* p's buffer holds exactly the ids [from, to), once each, rows of ncols values. */
static void assert_exact(const tpipe *p, int from, int to, int ncols)
{
    fp_rowstore_rowset rows;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_oldest(p->buffer, (size_t)(to - from) + 10, &rows, &err), 0, "%s", err.msg);
    cr_assert_eq(rows.n, (size_t)(to - from), "%s: %zu rows, want %d", p->name, rows.n, to - from);
    for (int i = from; i < to; i++) {
        char want[96];
        snprintf(want, sizeof want, "%s-%07d", p->name, i);
        cr_assert_str_eq(rows.ids[i - from], want, "%s row %d", p->name, i - from);
        cJSON *row = cJSON_Parse(rows.rows[i - from]);
        cr_assert_eq(cJSON_GetArraySize(row), 2 + ncols, "%s row %d: id, received_at and %d fields", p->name, i, ncols);
        cJSON_Delete(row);
    }
    fp_rowstore_rowset_clear(&rows);
}

/* The sample value of series in the consumer's /metrics, or dflt when absent. */
static double metric_or(int port, const char *series, double dflt)
{
    char *body = NULL, needle[384];
    if (tk_http_get(port, "/metrics", &body) != 200) {
        free(body);
        return dflt;
    }
    snprintf(needle, sizeof needle, "\n%s ", series);
    char *line = strstr(body, needle);
    double v = line ? atof(line + strlen(needle)) : dflt;
    free(body);
    return v;
}

/* 1 when the consumer's /metrics mentions text at all. */
static int metrics_mention(int port, const char *text)
{
    char *body = NULL;
    int hit = tk_http_get(port, "/metrics", &body) == 200 && body && strstr(body, text);
    free(body);
    return hit;
}

/* The lag series of p's partition. */
static void lag_series(const tpipe *p, int partition, char *out, size_t outsz)
{
    snprintf(out, outsz, "formpipe_consumer_lag{namespace=\"tests\",pipeline=\"%s\",partition=\"%d\"}", p->name,
             partition);
}

/* Waits until the series has value want. */
static void wait_metric(int port, const char *series, double want, double timeout_s, tk_proc *c)
{
    double deadline = tk_now() + timeout_s, v = -1;
    while (tk_now() < deadline && (v = metric_or(port, series, -1)) != want)
        usleep(200 * 1000);
    if (v != want)
        tk_show_log(c);
    cr_assert_eq(v, want, "%s is %g, want %g (after %.0f s)", series, v, want, timeout_s);
}

/* Deletes p's buffer keys: a re-read of events buffered before becomes visible. */
static void forget_buffer(const tpipe *p)
{
    static const char *const suffixes[] = {"pending", "rows", "flushed"};
    for (size_t i = 0; i < 3; i++) {
        char key[256];
        fp_error err = {0};
        redisReply *rep = NULL;
        cr_assert_eq(fp_rowstore_key(key, sizeof key, "tests", p->name, suffixes[i]), 0);
        const char *argv[] = {"DEL", key};
        size_t lens[] = {3, strlen(key)};
        cr_assert_eq(fp_redis_command(redis, &rep, &err, 2, argv, lens), 0, "%s", err.msg);
        freeReplyObject(rep);
    }
}

Test(consumer_shared, two_pipelines_in_one_group_land_in_their_own_buffers_and_dead_letter_topics)
{
    tpipe *a = &pipes[0], *b = &pipes[1];
    topics(a, 3);
    topics(b, 2);
    write_form(a, 1);
    write_form(b, 1);
    rd_kafka_t *k = tk_producer();
    produce(k, a, 0, 500, 1);
    produce(k, b, 0, 300, 1);
    /* one poison each: an event of the other pipeline's source on its topic */
    cJSON *empty = cJSON_CreateObject();
    char *poison_a = fp_event_encode("poison-a", "tests", b->name, BASE_MS, 1, empty);
    char *poison_b = fp_event_encode("poison-b", "tests", a->name, BASE_MS, 1, empty);
    cJSON_Delete(empty);
    tk_produce(k, a->topic, "p", poison_a, strlen(poison_a));
    tk_produce(k, b->topic, "p", poison_b, strlen(poison_b));
    tk_flush(k);

    tk_proc c;
    int port = tk_free_port();
    start_shared(&c, port);
    wait_pending(a, 500, 60, &c);
    wait_pending(b, 300, 60, &c);
    assert_exact(a, 0, 500, 2);
    assert_exact(b, 0, 300, 2);

    fp_deadletter got[2];
    char payloads[2][1024];
    cr_assert_eq(tk_read_dead_letters(a->dlq, got, payloads, 2, 5), 1, "one dead letter on %s", a->dlq);
    cr_assert_str_eq(got[0].source_topic, a->topic);
    cr_assert(strstr(payloads[0], "poison-a"), "%s", payloads[0]);
    cr_assert_eq(tk_read_dead_letters(b->dlq, got, payloads, 2, 5), 1, "one dead letter on %s", b->dlq);
    cr_assert_str_eq(got[0].source_topic, b->topic);
    cr_assert(strstr(payloads[0], "poison-b"), "%s", payloads[0]);

    /* lag by pipeline: every partition of both reaches 0 */
    char series[256];
    for (int part = 0; part < 3; part++) {
        lag_series(a, part, series, sizeof series);
        wait_metric(port, series, 0, 20, &c);
    }
    for (int part = 0; part < 2; part++) {
        lag_series(b, part, series, sizeof series);
        wait_metric(port, series, 0, 20, &c);
    }
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0, "clean exit on SIGTERM");
    free(poison_a);
    free(poison_b);
    rd_kafka_destroy(k);
}

Test(consumer_shared, a_form_added_changed_or_removed_at_runtime_is_followed_without_a_restart)
{
    tpipe *a = &pipes[0], *b = &pipes[1];
    topics(a, 2);
    topics(b, 2);
    write_form(a, 1);
    rd_kafka_t *k = tk_producer();
    produce(k, a, 0, 200, 1);
    tk_flush(k);

    tk_proc c;
    int port = tk_free_port();
    start_shared(&c, port);
    wait_pending(a, 200, 60, &c);

    /* added: b's events (some written before its form came) are consumed */
    produce(k, b, 0, 100, 1);
    tk_flush(k);
    write_form(b, 1);
    wait_pending(b, 100, 60, &c);
    assert_exact(b, 0, 100, 2);

    /* changed: generation 2 adds a column; its events get it, none is dead-lettered */
    write_form(b, 2);
    produce(k, b, 100, 150, 2);
    tk_flush(k);
    wait_pending(b, 150, 60, &c);
    fp_rowstore_rowset rows;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_oldest(b->buffer, 200, &rows, &err), 0, "%s", err.msg);
    cJSON *last = cJSON_Parse(rows.rows[149]);
    cr_assert_eq(cJSON_GetArraySize(last), 5, "a generation-2 row has the new column: %s", rows.rows[149]);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(last, 4)), "a@b.co");
    cJSON_Delete(last);
    fp_rowstore_rowset_clear(&rows);

    /* removed: once its lag series is gone the consumer has left a's topic; events
     * produced to it then stay in Kafka while b's keep flowing */
    char series[256];
    lag_series(a, 0, series, sizeof series);
    cr_assert(metrics_mention(port, series), "a's lag is published while it is served");
    cr_assert_eq(unlink(a->file), 0);
    double deadline = tk_now() + 30;
    char label[128];
    snprintf(label, sizeof label, "pipeline=\"%s\"", a->name);
    while (tk_now() < deadline && metrics_mention(port, label))
        usleep(200 * 1000);
    cr_assert_not(metrics_mention(port, label), "a's lag series is gone after its form was removed");
    produce(k, a, 200, 300, 1);
    produce(k, b, 150, 250, 2);
    tk_flush(k);
    wait_pending(b, 250, 60, &c);
    sleep(2);
    cr_assert_eq(pending(a), 200, "nothing of a removed pipeline is consumed");

    /* and back: a's form returns, the group resumes at its commit */
    write_form(a, 1);
    wait_pending(a, 300, 60, &c);
    assert_exact(a, 0, 300, 2);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    rd_kafka_destroy(k);
}

Test(consumer_shared, a_form_whose_topic_is_created_later_is_consumed_once_it_exists)
{
    tpipe *a = &pipes[0], *b = &pipes[1];
    topics(a, 1);
    write_form(a, 1);
    write_form(b, 1);   /* the operator may write the form before the topic */
    tk_proc c;
    start_shared(&c, tk_free_port());
    rd_kafka_t *k = tk_producer();
    produce(k, a, 0, 10, 1);
    tk_flush(k);
    wait_pending(a, 10, 60, &c);
    sleep(2);
    topics(b, 2);
    produce(k, b, 0, 50, 1);
    tk_flush(k);
    double t0 = tk_now();
    wait_pending(b, 50, 60, &c);
    assert_exact(b, 0, 50, 2);
    cr_log_info("a topic created after its form was consumed %.1f s after its events were written", tk_now() - t0);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    rd_kafka_destroy(k);
}

/* The start-offset rule: group "first" consumes events [0, 300) and commits; their rows
 * are deleted from Redis (so a re-read would show); 200 more are produced; then the
 * other group starts. With a previous group that committed, exactly the 200 new ones
 * arrive (nothing re-read, nothing skipped); with one that never committed, all 500. */
struct start_case {
    const char *first;       /* "dedicated" or "shared": the mode of the group that consumed first */
    int previous_committed;  /* the second names the first as its previous group (else one that never ran) */
    int want_from;           /* the second buffers ids [want_from, 500) */
};

static struct start_case start_cases[] = {
    {"dedicated", 1, 300},   /* Dedicated -> Shared: shared.dedicatedGroup */
    {"shared", 1, 300},      /* Shared -> Dedicated: --previous-group */
    {"dedicated", 0, 0},
    {"shared", 0, 0},
};

ParameterizedTestParameters(consumer_shared, a_partition_without_a_commit_starts_at_the_previous_groups_commit)
{
    return cr_make_param_array(struct start_case, start_cases, sizeof start_cases / sizeof start_cases[0]);
}

ParameterizedTest(struct start_case *sc, consumer_shared, a_partition_without_a_commit_starts_at_the_previous_groups_commit)
{
    tpipe *p = &pipes[0];
    int first_shared = strcmp(sc->first, "shared") == 0;
    char never[300];
    snprintf(never, sizeof never, "%.200s.never", p->dedicated_group);
    if (!first_shared && !sc->previous_committed)   /* the shared group's previous group is the form's dedicatedGroup */
        snprintf(p->dedicated_group, sizeof p->dedicated_group, "%.250s", never);
    topics(p, 3);
    write_form(p, 1);
    rd_kafka_t *k = tk_producer();
    produce(k, p, 0, 300, 1);
    tk_flush(k);

    tk_proc c;
    int port = tk_free_port();
    /* the first group: the pipeline's dedicated group, or the shared one */
    char real_dedicated[200];
    snprintf(real_dedicated, sizeof real_dedicated, "formpipe.tests.%s", p->name);
    if (first_shared)
        start_shared(&c, port);
    else
        start(&c, port, (const char *[]){"--form", p->file, "--group", real_dedicated, NULL});
    wait_pending(p, 300, 60, &c);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0, "SIGTERM commits what was stored");

    forget_buffer(p);
    produce(k, p, 300, 500, 1);
    tk_flush(k);

    port = tk_free_port();
    if (first_shared)   /* now dedicated, naming the shared group (or one that never ran) */
        start(&c, port, (const char *[]){"--form", p->file, "--group", real_dedicated, "--previous-group",
                                         sc->previous_committed ? shared_group : never, NULL});
    else   /* now shared: the form's dedicatedGroup is the previous group */
        start_shared(&c, port);
    wait_pending(p, 500 - sc->want_from, 60, &c);
    char series[256];
    for (int part = 0; part < 3; part++) {   /* every partition read to its end */
        lag_series(p, part, series, sizeof series);
        wait_metric(port, series, 0, 20, &c);
    }
    assert_exact(p, sc->want_from, 500, 2);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    rd_kafka_destroy(k);
}

Test(consumer_shared, kill_9_mid_stream_leaves_each_id_once_in_each_pipeline)
{
    const int n = 10000;
    tpipe *a = &pipes[0], *b = &pipes[1];
    topics(a, 3);
    topics(b, 3);
    write_form(a, 1);
    write_form(b, 1);
    rd_kafka_t *k = tk_producer();
    produce(k, a, 0, n, 1);
    produce(k, b, 0, n, 1);
    tk_flush(k);

    tk_proc c;
    start_shared(&c, tk_free_port());
    double deadline = tk_now() + 60;
    while (tk_now() < deadline && pending(a) + pending(b) < n / 2)
        usleep(20 * 1000);
    long long at_kill = pending(a) + pending(b);
    cr_assert_lt(at_kill, 2 * n, "the consumer must be killed mid-stream (already had %lld)", at_kill);
    cr_assert_eq(tk_stop(&c, SIGKILL, 10), 128 + SIGKILL);

    start_shared(&c, tk_free_port());
    wait_pending(a, n, 120, &c);
    wait_pending(b, n, 120, &c);
    assert_exact(a, 0, n, 2);
    assert_exact(b, 0, n, 2);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    cr_log_info("killed at %lld of %d rows; after restart exactly %d in each", at_kill, 2 * n, n);
    rd_kafka_destroy(k);
}

Test(consumer_shared, dedicated_and_shared_running_at_once_during_a_switch_leave_each_id_once)
{
    const int n = 8000;
    tpipe *p = &pipes[0];
    topics(p, 3);
    write_form(p, 1);
    rd_kafka_t *k = tk_producer();
    produce(k, p, 0, n, 1);
    tk_flush(k);

    tk_proc dedicated, shared;
    char group[200];
    snprintf(group, sizeof group, "formpipe.tests.%s", p->name);
    start(&dedicated, tk_free_port(), (const char *[]){"--form", p->file, "--group", group, NULL});
    double deadline = tk_now() + 60;
    while (tk_now() < deadline && pending(p) < n / 8)
        usleep(20 * 1000);
    start_shared(&shared, tk_free_port());   /* the operator started the shared one ... */
    while (tk_now() < deadline && pending(p) < n / 2)
        usleep(20 * 1000);
    long long at_stop = pending(p);
    cr_assert_lt(at_stop, n, "the dedicated consumer must stop mid-stream (already had %lld)", at_stop);
    cr_assert_eq(tk_stop(&dedicated, SIGTERM, 20), 0);   /* ... and deleted the dedicated one */
    wait_pending(p, n, 120, &shared);
    assert_exact(p, 0, n, 2);
    cr_assert_eq(tk_stop(&shared, SIGTERM, 20), 0);
    cr_log_info("dedicated stopped at %lld of %d rows; exactly %d after the shared one took over", at_stop, n, n);
    rd_kafka_destroy(k);
}
