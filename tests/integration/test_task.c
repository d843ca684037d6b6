/* formpipe-task as a whole (--kind=webhook) against the real Kafka broker of
 * scripts/testenv and a real HTTP receiver (tests/fakes/hook_receiver.py) started by
 * each test: every event delivered with a signature the receiver verifies and in order
 * per key through transient failures, a poison event dead-lettered (rejected) without
 * holding up its key, a transient one dead-lettered after its attempts, Retry-After
 * honoured, and kill -9 mid-batch: every id delivered at least once afterwards, a
 * repeat always carrying the event's own Idempotency-Key. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadletter.h"
#include "event.h"
#include "hookrecv.h"
#include "testkit.h"

#define SECRET "task-test-hmac-key"
#define MAXKEYS 16
#define MAXN 400

static char name[64], topic[128], group[160], dlq[160];
static rd_kafka_t *producer;
static hr_receiver rcv;
static tk_proc task;

static void setup(void)
{
    tk_unique(name, sizeof name, "wh");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(group, sizeof group, "formpipe.tests.%s.hook", name);
    snprintf(dlq, sizeof dlq, "%s.hook.dlq", topic);
    tk_topic_create(topic, 3);
    tk_topic_create(dlq, 1);
    producer = tk_producer();
    hr_start(&rcv, SECRET);
    memset(&task, 0, sizeof task);
}

static void teardown(void)
{
    if (task.pid > 0) {
        tk_show_log(&task);
        tk_stop(&task, SIGKILL, 10);
    }
    hr_stop(&rcv);
    rd_kafka_destroy(producer);
    tk_topic_delete(topic);
    tk_topic_delete(dlq);
}

TestSuite(task, .init = setup, .fini = teardown, .timeout = 300);

/* Produces event "k<key>-<n>" with Kafka key "k<key>". */
static void produce(int key, int n)
{
    char id[32], k[16];
    snprintf(id, sizeof id, "k%d-%d", key, n);
    snprintf(k, sizeof k, "k%d", key);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "n", n);
    cJSON_AddStringToObject(data, "text", "Grüße \"quoted\"");
    char *ev = fp_event_encode(id, "tests", name, (long long)time(NULL) * 1000, 1, data);
    cJSON_Delete(data);
    cr_assert_not_null(ev);
    tk_produce(producer, topic, k, ev, strlen(ev));
    free(ev);
}

/* keys x per events, in order per key, interleaved across keys. */
static void produce_all(int keys, int per)
{
    for (int n = 0; n < per; n++)
        for (int k = 0; k < keys; k++)
            produce(k, n);
    tk_flush(producer);
}

/* Starts formpipe-task with the extra options (NULL-terminated, may be NULL). */
static void start_task(const char *const *extra)
{
    char url[160], secret_opt[300];
    snprintf(url, sizeof url, "--webhook-url=%s/hook?token=abc", rcv.url);
    snprintf(secret_opt, sizeof secret_opt, "--webhook-secret-file=%s", rcv.secret_path);
    const char *argv[40] = {"--kind=webhook", "--topic", topic, "--group", group, "--dlq-topic", dlq,
                            "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), url, secret_opt,
                            "--backoff-initial=50ms", "--backoff-max=5s", "--admin-bind=127.0.0.1",
                            "--admin-port=0", "--concurrency=16", "--lag-interval=500ms",
                            "--log-level=warn"};
    int n = 18;
    for (int i = 0; extra && extra[i] && n < 39; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    tk_start(&task, "formpipe-task", argv);
}

/* Stops it with SIGTERM and expects a clean exit. */
static void stop_task(void)
{
    int status = tk_stop(&task, SIGTERM, 30);
    if (status != 0)
        tk_show_log(&task);
    cr_assert_eq(status, 0, "formpipe-task exits 0 on SIGTERM, not %d", status);
}

/* What the receiver saw, per event "k<key>-<n>". */
typedef struct seen {
    int requests[MAXKEYS][MAXN];
    int ok[MAXKEYS][MAXN];        /* answered 200 */
    int total, bad_sig, id_mismatch, order_broken;
    char order_why[160];
    double first_time[MAXKEYS][MAXN], second_time[MAXKEYS][MAXN];
} seen;

/* Reads the receiver's records into *s: counts, the signature, the body's id against
 * the Idempotency-Key, and whether the requests of a key ran in event order. */
static void read_seen(seen *s)
{
    memset(s, 0, sizeof *s);
    int last[MAXKEYS];
    for (int k = 0; k < MAXKEYS; k++)
        last[k] = -1;
    cJSON *doc = hr_requests(&rcv);
    const cJSON *req;
    cJSON_ArrayForEach(req, cJSON_GetObjectItemCaseSensitive(doc, "requests")) {
        const char *id = cJSON_GetObjectItemCaseSensitive(req, "id")->valuestring;
        const char *sig = cJSON_GetObjectItemCaseSensitive(req, "signature")->valuestring;
        const char *body = cJSON_GetObjectItemCaseSensitive(req, "body")->valuestring;
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(req, "status");
        double at = cJSON_GetObjectItemCaseSensitive(req, "time")->valuedouble;
        int k = -1, n = -1;
        cr_assert(id && sscanf(id, "k%d-%d", &k, &n) == 2 && k >= 0 && k < MAXKEYS && n >= 0 && n < MAXN,
                  "an unexpected Idempotency-Key '%s'", id ? id : "(none)");
        s->total++;
        s->bad_sig += strcmp(sig, "ok") != 0;
        cJSON *ev = cJSON_Parse(body);
        const cJSON *evid = cJSON_GetObjectItemCaseSensitive(ev, "id");
        s->id_mismatch += !cJSON_IsString(evid) || strcmp(evid->valuestring, id) != 0;
        cJSON_Delete(ev);
        if (n < last[k] && !s->order_broken++)
            snprintf(s->order_why, sizeof s->order_why, "%s arrived after k%d-%d", id, k, last[k]);
        last[k] = n;
        if (s->requests[k][n]++ == 0)
            s->first_time[k][n] = at;
        else if (s->requests[k][n] == 2)
            s->second_time[k][n] = at;
        s->ok[k][n] += cJSON_IsNumber(status) && status->valueint == 200;
    }
    cJSON_Delete(doc);
}

/* Waits until every event of keys x per got a 200, but those in skip (" k0-1 k1-2 "). */
static void wait_delivered(seen *s, int keys, int per, const char *skip, double timeout_s)
{
    double deadline = tk_now() + timeout_s;
    int missing;
    char first[32] = "";
    do {
        read_seen(s);
        missing = 0;
        for (int k = 0; k < keys; k++)
            for (int n = 0; n < per; n++) {
                char id[32], spaced[40];
                snprintf(id, sizeof id, "k%d-%d", k, n);
                snprintf(spaced, sizeof spaced, " %s ", id);
                if (skip && strstr(skip, spaced))
                    continue;
                if (!s->ok[k][n] && !missing++)
                    snprintf(first, sizeof first, "%s", id);
            }
        if (!missing)
            return;
        usleep(300 * 1000);
    } while (tk_now() < deadline && task.pid > 0);
    tk_show_log(&task);
    cr_assert_fail("%d events not delivered after %.0f s (first: %s); %d requests seen", missing, timeout_s,
                   first, s->total);
}

/* Reads up to want dead letters (waits up to wait_s); their payloads' ids into ids. */
static int read_dead_letters(fp_deadletter *out, char (*ids)[32], int want, double wait_s)
{
    static char payloads[8][1024];
    cr_assert_leq(want, 8);
    int got = tk_read_dead_letters(dlq, out, payloads, want, wait_s);
    for (int i = 0; i < got; i++) {
        cJSON *ev = cJSON_Parse(payloads[i]);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "id");
        snprintf(ids[i], sizeof ids[i], "%s", cJSON_IsString(id) ? id->valuestring : "?");
        cJSON_Delete(ev);
    }
    return got;
}

Test(task, every_event_is_delivered_signed_and_in_key_order_through_failures)
{
    enum { KEYS = 8, PER = 25 };
    static seen s;
    /* A fifth of the answers fail transiently, some with Retry-After 0. */
    hr_script(&rcv, "{\"fail_percent\":20,\"action\":{\"status\":503,\"retry_after\":\"0\"}}");
    produce_all(KEYS, PER);
    start_task(NULL);
    wait_delivered(&s, KEYS, PER, NULL, 120);
    stop_task();

    read_seen(&s);
    cr_assert_eq(s.bad_sig, 0, "every signature verifies");
    cr_assert_eq(s.id_mismatch, 0, "every Idempotency-Key is its event's id");
    cr_assert_eq(s.order_broken, 0, "order per key: %s", s.order_why);
    cr_assert_gt(s.total, KEYS * PER, "some attempts were retried (%d requests)", s.total);
    for (int k = 0; k < KEYS; k++)
        for (int n = 0; n < PER; n++)
            cr_assert_eq(s.ok[k][n], 1, "k%d-%d delivered %d times without a restart", k, n, s.ok[k][n]);
    fp_deadletter d[1];
    char ids[1][32];
    cr_assert_eq(read_dead_letters(d, ids, 1, 3), 0, "no dead letters");

    cJSON *stats = hr_stats(&rcv);
    cr_assert_leq(hr_int(stats, "connections"), 16, "keep-alive: %d requests over at most --concurrency connections",
                  s.total);
    cJSON_Delete(stats);
}

Test(task, poison_events_are_dead_lettered_and_their_key_goes_on)
{
    enum { KEYS = 3, PER = 4 };
    static seen s;
    hr_script(&rcv, "{\"id\":\"k0-1\",\"action\":{\"status\":404},\"times\":1000}");
    hr_script(&rcv, "{\"id\":\"k1-2\",\"action\":{\"status\":500},\"times\":1000}");
    produce_all(KEYS, PER);
    const char *extra[] = {"--max-attempts=3", NULL};
    start_task(extra);

    fp_deadletter d[2];
    char ids[2][32];
    int got = read_dead_letters(d, ids, 2, 90);
    cr_assert_eq(got, 2, "two dead letters, got %d", got);
    int rej = strcmp(ids[0], "k0-1") == 0 ? 0 : 1;
    cr_assert_str_eq(ids[rej], "k0-1");
    cr_assert_str_eq(ids[1 - rej], "k1-2");
    cr_assert_str_eq(fp_deadletter_reason_name(d[rej].reason), "rejected");
    char want[200];
    snprintf(want, sizeof want, "HTTP 404 from %s/hook", rcv.url);
    cr_assert_str_eq(d[rej].message, want, "the message names the status and the URL without its query");
    cr_assert_str_eq(d[rej].source_topic, topic);
    cr_assert_str_eq(fp_deadletter_reason_name(d[1 - rej].reason), "attempts_exhausted");

    /* The rest arrives: each key goes on past its dead letter. */
    wait_delivered(&s, KEYS, PER, " k0-1 k1-2 ", 60);
    stop_task();
    read_seen(&s);
    cr_assert_eq(s.requests[0][1], 1, "a rejected event is not retried");
    cr_assert_eq(s.requests[1][2], 3, "--max-attempts=3 attempts of the transient failure");
    cr_assert_eq(s.order_broken, 0, "order per key: %s", s.order_why);
    cr_assert(s.first_time[0][2] > s.first_time[0][1] && s.first_time[1][3] > s.second_time[1][2],
              "the next event of a key waits for the dead-lettered one");
}

Test(task, retry_after_is_honoured)
{
    enum { KEYS = 1, PER = 2 };
    static seen s;
    hr_script(&rcv, "{\"id\":\"k0-0\",\"action\":{\"status\":429,\"retry_after\":\"2\"},\"times\":1}");
    produce_all(KEYS, PER);
    start_task(NULL);   /* --backoff-initial=50ms: without Retry-After the retry comes at once */
    wait_delivered(&s, KEYS, PER, NULL, 60);
    stop_task();
    read_seen(&s);
    cr_assert_eq(s.requests[0][0], 2);
    double gap = s.second_time[0][0] - s.first_time[0][0];
    cr_assert(gap >= 1.9 && gap < 6, "retried %.2f s after a Retry-After of 2 s", gap);
    cr_assert_gt(s.first_time[0][1], s.second_time[0][0], "the key's next event waited");
}

Test(task, kill_9_mid_batch_delivers_every_id_at_least_once_with_its_idempotency_key)
{
    enum { KEYS = 12, PER = 50 };
    static seen s;
    /* Slow 200s: about 60 deliveries a second, so the kill lands mid-batch after
     * offsets were committed (auto-commit every 5 s). A short session lets the broker
     * hand the killed member's partitions over without waiting 45 s. */
    hr_script(&rcv, "{\"fail_percent\":100,\"action\":{\"stall\":0.2}}");
    produce_all(KEYS, PER);
    const char *extra[] = {"--kafka-property=session.timeout.ms=6000", NULL};
    start_task(extra);
    double deadline = tk_now() + 60, first = 0;
    do {
        usleep(100 * 1000);
        read_seen(&s);
        if (!first && s.total)
            first = tk_now();
    } while ((!first || tk_now() - first < 6.5) && tk_now() < deadline);
    cr_assert_gt(s.total, 0, "deliveries began");
    tk_stop(&task, SIGKILL, 10);
    read_seen(&s);
    int before = s.total;
    cr_assert_lt(before, KEYS * PER, "killed mid-batch (%d of %d delivered)", before, KEYS * PER);

    start_task(extra);
    wait_delivered(&s, KEYS, PER, NULL, 120);
    stop_task();
    read_seen(&s);
    cr_assert_eq(s.bad_sig, 0);
    cr_assert_eq(s.id_mismatch, 0, "a repeat carries its event's own Idempotency-Key");
    int repeats = 0;
    for (int k = 0; k < KEYS; k++)
        for (int n = 0; n < PER; n++) {
            cr_assert_geq(s.ok[k][n], 1, "k%d-%d delivered", k, n);
            repeats += s.requests[k][n] - 1;
        }
    cr_log_info("%d of %d delivered before the kill; %d delivered again after it", before, KEYS * PER, repeats);
}
