/* formpipe-task --kind=moderate against the real Kafka broker of scripts/testenv:
 * exactly once through kill -9 (the output stream read with read_committed holds each
 * input id exactly once, flagged exactly when a listed word was in a checked field;
 * unparsable events dead-lettered exactly once), the word list reloaded when its
 * ConfigMap-style ..data symlink is swapped, spec.filter (only matching events
 * written, the rest committed), and a second instance with the same transactional.id
 * fencing the first. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadletter.h"
#include "testkit.h"

#define MAXN 40000

static char name[64], topic[128], output[160], group[160], dlq[160], txid[200], words_dir[256];
static rd_kafka_t *producer;
static tk_proc task, task2;
static int admin_port;

static void setup(void)
{
    tk_unique(name, sizeof name, "mod");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(output, sizeof output, "%s.check", topic);
    snprintf(group, sizeof group, "formpipe.tests.%s.check", name);
    snprintf(dlq, sizeof dlq, "%s.check.dlq", topic);
    snprintf(txid, sizeof txid, "%s.pod-0", group);
    snprintf(words_dir, sizeof words_dir, "/tmp/%s-words", name);
    tk_topic_create(topic, 4);
    tk_topic_create(output, 4);
    tk_topic_create(dlq, 4);
    producer = tk_producer();
    memset(&task, 0, sizeof task);
    memset(&task2, 0, sizeof task2);
}

static void teardown(void)
{
    if (task.pid > 0) {
        tk_show_log(&task);
        tk_stop(&task, SIGKILL, 10);
    }
    if (task2.pid > 0) {
        tk_show_log(&task2);
        tk_stop(&task2, SIGKILL, 10);
    }
    rd_kafka_destroy(producer);
    tk_topic_delete(topic);
    tk_topic_delete(output);
    tk_topic_delete(dlq);
    tk_sh(NULL, "rm -rf '%s'", words_dir);
}

TestSuite(moderate, .init = setup, .fini = teardown, .timeout = 300);

/* Writes the word list as a ConfigMap volume does: <dir>/..<version>/words.txt,
 * <dir>/..data -> ..<version> swapped by rename, <dir>/words.txt -> ..data/words.txt. */
static void write_words(const char *version, const char *text)
{
    char path[512];
    cr_assert_eq(tk_sh(NULL, "mkdir -p '%s/..%s'", words_dir, version), 0);
    snprintf(path, sizeof path, "%s/..%s/words.txt", words_dir, version);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(tk_sh(NULL, "cd '%s' && ln -sfn ..%s ..data_tmp && mv -T ..data_tmp ..data && ln -sfn ..data/words.txt words.txt",
                       words_dir, version), 0);
}

/* Produces event id <prefix>-<n> with Kafka key k<n % 7>; text goes in "comments",
 * other in "name". */
static void produce_event(const char *prefix, int n, const char *text, const char *other)
{
    char ev[1024], key[16];
    snprintf(key, sizeof key, "k%d", n % 7);
    snprintf(ev, sizeof ev,
             "{\"specversion\":\"1.0\",\"id\":\"%s-%d\",\"source\":\"/forms/tests/%s\",\"type\":\"io.formpipe.submission.v1\","
             "\"time\":\"2026-11-23T14:05:27.123Z\",\"datacontenttype\":\"application/json\",\"formgeneration\":1,"
             "\"data\":{\"comments\":\"%s\",\"name\":\"%s\",\"age\":%d}}",
             prefix, n, name, text, other, n);
    tk_produce(producer, topic, key, ev, strlen(ev));
}

/* Starts the task over topic into *p with the extra options (NULL-terminated, may be
 * NULL); admin_port becomes its port. */
static void start_task_as(tk_proc *p, const char *const *extra)
{
    char a[16][300];
    const char *argv[32];
    int n = 0;
    admin_port = tk_free_port();
    snprintf(a[0], sizeof a[0], "--topic=%s", topic);
    snprintf(a[1], sizeof a[1], "--group=%s", group);
    snprintf(a[2], sizeof a[2], "--dlq-topic=%s", dlq);
    snprintf(a[3], sizeof a[3], "--output-topic=%s", output);
    snprintf(a[4], sizeof a[4], "--kafka-bootstrap=%s", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"));
    snprintf(a[5], sizeof a[5], "--transactional-id=%s", txid);
    snprintf(a[6], sizeof a[6], "--moderate-words-file=%s/words.txt", words_dir);
    snprintf(a[7], sizeof a[7], "--admin-port=%d", admin_port);
    argv[n++] = "--kind=moderate";
    for (int i = 0; i < 8; i++)
        argv[n++] = a[i];
    argv[n++] = "--admin-bind=127.0.0.1";
    argv[n++] = "--moderate-field=comments";
    argv[n++] = "--moderate-reload-interval=200ms";
    argv[n++] = "--moderate-commit-interval=50ms";
    argv[n++] = "--lag-interval=500ms";
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    tk_start(p, "formpipe-task", argv);
}

static void start_task(const char *const *extra)
{
    start_task_as(&task, extra);
}

/* Reads the output stream (read_committed, librdkafka's default and set here) until
 * want events arrived or wait_s passed; counts[n] per id <prefix>-<n>, flagged[n] the
 * last "moderation.flagged". Returns how many were read. */
static int read_output(const char *prefix, int *counts, int *flagged, int want, double wait_s)
{
    int got = 0;
    rd_kafka_t *r = tk_kafka_reader(output);
    double deadline = tk_now() + wait_s, quiet_until = 0;
    size_t pl = strlen(prefix);
    while (tk_now() < deadline && (got < want || tk_now() < quiet_until)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 200);
        if (!m)
            continue;
        if (!m->err) {
            cJSON *o = cJSON_ParseWithLength(m->payload, m->len);
            cr_assert(o, "output not JSON: %.*s", (int)m->len, (const char *)m->payload);
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(o, "id"));
            cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "type")), "io.formpipe.submission.moderated.v1");
            cr_assert(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "comments"), "data changed: %.*s", (int)m->len,
                      (const char *)m->payload);
            if (id && strncmp(id, prefix, pl) == 0 && id[pl] == '-') {
                int n = atoi(id + pl + 1);
                cr_assert(n >= 0 && n < MAXN);
                counts[n]++;
                flagged[n] = cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "moderation"), "flagged"));
                char key[16];
                snprintf(key, sizeof key, "k%d", n % 7);
                cr_assert(m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0, "key of %s changed", id);
                got++;
                if (got >= want && !quiet_until)
                    quiet_until = tk_now() + 2;   /* a little longer: a duplicate would show now */
            }
            cJSON_Delete(o);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    return got;
}

/* Records on the output stream as a read_uncommitted reader sees them (outputs of
 * aborted transactions included), read until wait_s passes without news. */
static int count_uncommitted(double wait_s)
{
    rd_kafka_t *r = tk_kafka_reader_isolated(output, "read_uncommitted");
    int n = 0;
    double quiet_until = tk_now() + 10;   /* the first assignment takes a moment */
    while (tk_now() < quiet_until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 200);
        if (!m)
            continue;
        if (!m->err) {
            n++;
            quiet_until = tk_now() + wait_s;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    return n;
}

/* A counter's value from the task's /metrics (the series line starting with series). */
static double metric(const char *series)
{
    char *body = NULL;
    double v = -1;
    if (tk_http_get(admin_port, "/metrics", &body) == 200 && body) {
        for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n"))
            if (strncmp(line, series, strlen(series)) == 0 && line[strlen(series)] == ' ')
                v = atof(line + strlen(series) + 1);
    }
    free(body);
    return v;
}

/* Whether event n carries a listed word in "comments" (every 5th), leet or look-alike. */
static const char *text_of(int n, int *listed)
{
    static const char *const texts[] = {"what a darn shame", "all fine here", "h3ck yes", "nothing", "ＤＡＲＮ",
                                        "darned is no word", "a good day", "fine", "heckle", "ok"};
    *listed = n % 10 == 0 || n % 10 == 2 || n % 10 == 4;
    return texts[n % 10];
}

Test(moderate, exactly_once_through_kill_9)
{
    static int counts[MAXN], flagged[MAXN];
    const int total = 30000, bad = 20;
    /* transactions of 2 s: the kill falls inside one that has written outputs */
    const char *const slow[] = {"--moderate-commit-interval=2s", "--moderate-batch=1000000", NULL};
    write_words("v1", "# test list\ndarn\nheck\n");
    start_task(slow);
    /* events keep coming while the task runs; it is killed halfway and restarted with
     * the same transactional.id */
    for (int n = 0; n < total; n++) {
        int listed;
        produce_event("e", n, text_of(n, &listed), n % 3 ? "darn" : "x");   /* "name" is not checked */
        if (n % 1500 == 0 && n < bad * 1500)
            tk_produce(producer, topic, "k0", "{\"not\":\"an event\"", 17);
        if (n % 1000 == 999)
            tk_flush(producer);
        if (n == total / 3) {   /* running and committing: the next events arrive while it works */
            tk_flush(producer);
            double t0 = tk_now();
            while (metric("formpipe_task_transactions_total{result=\"committed\"}") < 1 && tk_now() - t0 < 60)
                usleep(100 * 1000);
            cr_assert_gt(metric("formpipe_task_transactions_total{result=\"committed\"}"), 0, "no transaction committed");
        }
        if (n == total / 2) {
            usleep(300 * 1000);   /* some of the events since the last commit are written */
            cr_assert_eq(tk_stop(&task, SIGKILL, 10), 128 + SIGKILL);
            start_task(slow);
        }
    }
    tk_flush(producer);
    int got = read_output("e", counts, flagged, total, 120);
    int missing = 0, twice = 0, wrong = 0, first_bad = -1;
    for (int n = 0; n < total; n++) {
        int listed;
        text_of(n, &listed);
        missing += counts[n] == 0;
        twice += counts[n] > 1;
        if (counts[n] && flagged[n] != listed) {
            wrong++;
            if (first_bad < 0)
                first_bad = n;
        }
    }
    cr_assert_eq(missing, 0, "%d of %d ids missing (read %d)", missing, total, got);
    cr_assert_eq(twice, 0, "%d ids written more than once", twice);
    cr_assert_eq(wrong, 0, "%d events flagged wrongly, the first e-%d", wrong, first_bad);
    cr_assert_eq(got, total);
    /* the transaction the kill left open had written outputs: on the stream, aborted */
    int uncommitted = count_uncommitted(2);
    cr_log_info("output stream: %d records with read_uncommitted, %d committed", uncommitted, total);
    cr_assert_gt(uncommitted, total, "the kill fell between transactions: the test proved nothing");
    static fp_deadletter letters[64];
    static char payloads[64][1024];
    int dead = tk_read_dead_letters(dlq, letters, payloads, bad + 5, 10);
    cr_assert_eq(dead, bad, "dead letters: %d, want exactly %d", dead, bad);
    for (int i = 0; i < dead; i++)
        cr_assert_eq(letters[i].reason, FP_DEADLETTER_NOT_JSON, "reason %s", fp_deadletter_reason_name(letters[i].reason));
    cr_assert_eq(tk_stop(&task, SIGTERM, 30), 0);
}

Test(moderate, word_list_reloaded_when_the_configmap_changes)
{
    static int counts[MAXN], flagged[MAXN];
    write_words("v1", "darn\n");
    start_task(NULL);
    produce_event("r", 0, "sunshine and rain", "");
    produce_event("r", 1, "darn it", "");
    tk_flush(producer);
    cr_assert_eq(read_output("r", counts, flagged, 2, 60), 2);
    cr_assert(!flagged[0] && flagged[1]);
    write_words("v2", "sunshine\n# darn is allowed now\n");
    double t0 = tk_now();
    while (metric("formpipe_task_word_list_reloads_total{result=\"ok\"}") < 1 && tk_now() - t0 < 20)
        usleep(100 * 1000);
    cr_assert_eq(metric("formpipe_task_word_list_reloads_total{result=\"ok\"}"), 1);
    cr_assert_eq(metric("formpipe_task_words"), 1);
    produce_event("r", 2, "sunshine and rain", "");
    produce_event("r", 3, "darn it", "");
    tk_flush(producer);
    memset(counts, 0, sizeof counts);
    cr_assert_eq(read_output("r", counts, flagged, 4, 60), 4);
    cr_assert(flagged[2] && !flagged[3], "after the reload: r-2 %d, r-3 %d", flagged[2], flagged[3]);
    /* a list that cannot be used keeps the one in use */
    write_words("v3", "ok\n!!!\n");
    t0 = tk_now();
    while (metric("formpipe_task_word_list_reloads_total{result=\"failed\"}") < 1 && tk_now() - t0 < 20)
        usleep(100 * 1000);
    cr_assert_eq(metric("formpipe_task_word_list_reloads_total{result=\"failed\"}"), 1);
    cr_assert_eq(metric("formpipe_task_words"), 1);
    cr_assert_eq(tk_stop(&task, SIGTERM, 30), 0);
}

Test(moderate, filter_writes_only_matching_events_and_commits_the_rest)
{
    static int counts[MAXN], flagged[MAXN];
    write_words("v1", "darn\n");
    start_task((const char *const[]){"--filter=data.age=3", NULL});
    for (int n = 0; n < 6; n++)
        produce_event("f", n, n % 2 ? "darn" : "fine", "");
    tk_flush(producer);
    cr_assert_eq(read_output("f", counts, flagged, 1, 60), 1);
    cr_assert_eq(counts[3], 1);
    cr_assert(flagged[3]);
    double t0 = tk_now();
    while (metric("formpipe_task_events_filtered_total") < 5 && tk_now() - t0 < 20)
        usleep(100 * 1000);
    cr_assert_eq(metric("formpipe_task_events_filtered_total"), 5);
    cr_assert_eq(tk_stop(&task, SIGTERM, 30), 0);
    /* what was filtered is committed: a restart writes nothing more */
    memset(counts, 0, sizeof counts);
    start_task((const char *const[]){"--filter=data.age=3", NULL});
    cr_assert_eq(read_output("f", counts, flagged, 2, 8), 1);
    cr_assert_eq(counts[3], 1);
}

/* A second instance with the same transactional.id (a pod's container restarted while
 * the old process still runs): the old producer is fenced and its process exits 1; every
 * event is still written exactly once. */
Test(moderate, a_fenced_instance_exits_and_loses_nothing)
{
    static int counts[MAXN], flagged[MAXN];
    write_words("v1", "darn\n");
    start_task(NULL);
    for (int n = 0; n < 200; n++)
        produce_event("z", n, n % 2 ? "darn" : "fine", "");
    tk_flush(producer);
    cr_assert_eq(read_output("z", counts, flagged, 200, 60), 200);
    start_task_as(&task2, NULL);   /* same group and transactional.id */
    for (int n = 200; n < 2000; n++) {
        produce_event("z", n, n % 2 ? "darn" : "fine", "");
        if (n % 100 == 0) {
            tk_flush(producer);
            usleep(100 * 1000);
        }
    }
    tk_flush(producer);
    cr_assert_eq(tk_wait(&task, 60), 1, "the fenced instance exits 1");
    char *log = tk_read_file(task.log);
    cr_assert_not_null(strstr(log, "fenced"), "its log says why");
    free(log);
    task.pid = 0;
    memset(counts, 0, sizeof counts);
    int got = read_output("z", counts, flagged, 2000, 90);
    for (int n = 0; n < 2000; n++)
        cr_assert_eq(counts[n], 1, "z-%d written %d times (read %d)", n, counts[n], got);
    cr_assert_eq(tk_stop(&task2, SIGTERM, 30), 0);
}
