/* formpipe-task's runner (services/task/runner.c) against the real Kafka broker of
 * scripts/testenv, with an in-test kind (kind.h) whose verdicts are scripted by the
 * event id's prefix: every event done, order per key under concurrency, retry then
 * done, attempts exhausted and rejected events on the dead-letter topic with their
 * headers, and offsets committed only past finished events (a restart redoes only the
 * tail from the first unfinished event). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadletter.h"
#include "event.h"
#include "kind.h"
#include "runner.h"
#include "testkit.h"

#define MAXN 1000

/* What the kind saw, shared with the test thread. */
static struct {
    pthread_mutex_t mu;
    int attempts[MAXN];
    int done[MAXN];
    int order[MAXN * 4];   /* event numbers in the order they were done */
    int norder;
    int max_running;
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* One attempt with the kind: finishes at due (never for "hang-"). */
typedef struct pending {
    const fp_task_event *ev;
    double due;
    struct pending *next;
} pending;

typedef struct tkind {
    fp_task_kind kind;   /* first: kind and self are one allocation */
    pending *p;
    int running;
    int *done_here;      /* events this kind finished as done (the test's counter) */
} tkind;

/* The event's number (the id is <script>-<n>). */
static int number(const fp_task_event *ev)
{
    const char *dash = strrchr(ev->id, '-');
    int n = dash ? atoi(dash + 1) : -1;
    cr_assert(n >= 0 && n < MAXN, "id %s", ev->id);
    return n;
}

static int has_prefix(const fp_task_event *ev, const char *p)
{
    return strncmp(ev->id, p, strlen(p)) == 0;
}

static int k_start(void *self, const fp_task_event *ev)
{
    tkind *k = self;
    pending *a = calloc(1, sizeof *a);
    if (!a)
        return -1;
    a->ev = ev;
    a->due = tk_now() + (has_prefix(ev, "slow-") ? (rand() % 20) / 1000.0 : 0) + (has_prefix(ev, "pace-") ? 0.05 : 0) + (has_prefix(ev, "linger-") ? 1.5 : 0) + (has_prefix(ev, "hang-") ? 1e9 : 0);
    a->next = k->p;
    k->p = a;
    k->running++;
    pthread_mutex_lock(&seen.mu);
    seen.attempts[number(ev)]++;
    if (k->running > seen.max_running)
        seen.max_running = k->running;
    pthread_mutex_unlock(&seen.mu);
    return 0;
}

/* The scripted verdict of an attempt. */
static fp_task_outcome verdict(const fp_task_event *ev)
{
    fp_task_outcome o = {.verdict = FP_TASK_DONE};
    if (has_prefix(ev, "reject-")) {
        o.verdict = FP_TASK_REJECT;
        snprintf(o.detail, sizeof o.detail, "HTTP 404 from http://receiver.test/x");
    } else if (has_prefix(ev, "retryall-") || (has_prefix(ev, "retry2-") && ev->attempt <= 2)) {
        o.verdict = FP_TASK_RETRY;
        o.retry_after_ms = 5;
        snprintf(o.detail, sizeof o.detail, "HTTP 503 from http://receiver.test/x");
    }
    return o;
}

static int k_poll(void *self, long timeout_ms, fp_task_report_fn *report, void *runner)
{
    tkind *k = self;
    double until = tk_now() + timeout_ms / 1000.0;
    for (;;) {
        double now = tk_now();
        for (pending **pp = &k->p; *pp; pp = &(*pp)->next) {
            pending *a = *pp;
            if (a->due > now)
                continue;
            *pp = a->next;
            k->running--;
            fp_task_outcome o = verdict(a->ev);
            if (o.verdict == FP_TASK_DONE) {
                pthread_mutex_lock(&seen.mu);
                seen.done[number(a->ev)]++;
                if (seen.norder < MAXN * 4)
                    seen.order[seen.norder++] = number(a->ev);
                (*k->done_here)++;
                pthread_mutex_unlock(&seen.mu);
            }
            const fp_task_event *ev = a->ev;
            free(a);
            report(runner, ev, &o);
            return k->running;
        }
        if (now >= until)
            return k->running;
        usleep(1000);
    }
}

static void k_free(void *self)
{
    tkind *k = self;
    while (k->p) {
        pending *a = k->p;
        k->p = a->next;
        free(a);
    }
    free(k);
}

static fp_task_kind *test_kind(int *done_here)
{
    tkind *k = calloc(1, sizeof *k);
    cr_assert_not_null(k);
    k->done_here = done_here;
    k->kind = (fp_task_kind){.name = "test", .self = k, .start = k_start, .poll = k_poll, .free = k_free};
    return &k->kind;
}

/* One task per test: its own topic, group and dead-letter topic. */
static char name[64], topic[128], group[160], dlq[160];
static rd_kafka_t *producer;

static void setup(void)
{
    tk_unique(name, sizeof name, "t");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(group, sizeof group, "formpipe.tests.%s.hook", name);
    snprintf(dlq, sizeof dlq, "%s.hook.dlq", topic);
    producer = tk_producer();
    pthread_mutex_lock(&seen.mu);
    memset(seen.attempts, 0, sizeof seen.attempts);
    memset(seen.done, 0, sizeof seen.done);
    seen.norder = seen.max_running = 0;
    pthread_mutex_unlock(&seen.mu);
}

static void teardown(void)
{
    rd_kafka_destroy(producer);
    tk_topic_delete(topic);
    tk_topic_delete(dlq);
}

TestSuite(task_runner, .init = setup, .fini = teardown, .timeout = 240);

/* Produces event `script`-n with key `key` (time: now). */
static void produce(const char *script, int n, const char *key)
{
    char id[64];
    snprintf(id, sizeof id, "%s-%d", script, n);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "n", n);
    char *ev = fp_event_encode(id, "tests", name, (long long)time(NULL) * 1000, 1, data);
    cJSON_Delete(data);
    cr_assert_not_null(ev);
    tk_produce(producer, topic, key, ev, strlen(ev));
    free(ev);
}

typedef struct running {
    fp_runner *r;
    fp_metrics *m;
    pthread_t t;
    int done_here;   /* guarded by seen.mu */
} running;

static void *run_thread(void *arg)
{
    fp_runner_run(arg);
    return NULL;
}

/* The filter conditions the next runner gets (NULL: none). */
static const fp_strlist *runner_filter;

/* Starts a runner on its own thread; a dead letter unanswered for dl_timeout_ms pauses
 * its partition; a stop gives running attempts grace_ms. */
static void start_runner_full(running *x, int concurrency, int max_attempts, long dl_timeout_ms, long grace_ms)
{
    fp_error err = {0};
    x->done_here = 0;
    fp_runner_config cfg = {.topic = topic, .group = group, .dlq_topic = dlq,
                            .kafka_bootstrap = tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), .max_attempts = max_attempts,
                            .concurrency = concurrency, .backoff_initial_ms = 10, .backoff_max_ms = 50,
                            .dead_letter_timeout_ms = dl_timeout_ms, .lag_interval_ms = 500, .shutdown_grace_ms = grace_ms,
                            .filter = runner_filter};
    x->m = fp_metrics_new(1000);
    x->r = fp_runner_new(&cfg, test_kind(&x->done_here), x->m, &err);
    cr_assert_not_null(x->r, "%s", err.msg);
    cr_assert_eq(pthread_create(&x->t, NULL, run_thread, x->r), 0);
}

static void start_runner_dl(running *x, int concurrency, int max_attempts, long dl_timeout_ms)
{
    start_runner_full(x, concurrency, max_attempts, dl_timeout_ms, 300);
}

static void start_runner(running *x, int concurrency, int max_attempts)
{
    start_runner_dl(x, concurrency, max_attempts, 5000);
}

/* The value of one series in the runner's /metrics text, or -1 when absent. */
static double metric(running *x, const char *series)
{
    fp_buf b;
    fp_buf_init(&b, 1 << 20);
    cr_assert_eq(fp_metrics_render(x->m, &b), 0);
    char want[256];
    snprintf(want, sizeof want, "\n%s ", series);
    const char *at = strstr(b.data, want);
    double v = at ? atof(at + strlen(want)) : -1;
    fp_buf_free(&b);
    return v;
}

/* The number of events numbered [from, to) done (at least once). */
static int count_done(int from, int to)
{
    int n = 0;
    pthread_mutex_lock(&seen.mu);
    for (int i = from; i < to; i++)
        n += seen.done[i] > 0;
    pthread_mutex_unlock(&seen.mu);
    return n;
}

/* Stops it as SIGTERM would (grace, commit, leave) and frees it. */
static void stop_runner(running *x)
{
    fp_runner_stop(x->r);
    pthread_join(x->t, NULL);
    fp_runner_free(x->r);
    fp_metrics_free(x->m);
}

/* Waits until the events numbered [from, to) were each done at least once. */
static void wait_done(int from, int to, double timeout_s)
{
    double deadline = tk_now() + timeout_s;
    int missing;
    do {
        missing = 0;
        pthread_mutex_lock(&seen.mu);
        for (int i = from; i < to; i++)
            missing += seen.done[i] == 0;
        pthread_mutex_unlock(&seen.mu);
        if (!missing)
            return;
        usleep(50 * 1000);
    } while (tk_now() < deadline);
    cr_assert_fail("%d of events %d..%d not done after %.0f s", missing, from, to - 1, timeout_s);
}

Test(task_runner, every_event_is_done_once_in_key_order_under_concurrency)
{
    tk_topic_create(topic, 3);
    tk_topic_create(dlq, 1);
    enum { KEYS = 10, PER_KEY = 20 };
    char key[16];
    for (int i = 0; i < KEYS * PER_KEY; i++) {   /* event i has key i % KEYS: per key, n increases */
        snprintf(key, sizeof key, "key%d", i % KEYS);
        produce("slow", i, key);
    }
    tk_flush(producer);
    running x;
    start_runner(&x, 8, 3);
    wait_done(0, KEYS * PER_KEY, 90);
    stop_runner(&x);
    pthread_mutex_lock(&seen.mu);
    for (int i = 0; i < KEYS * PER_KEY; i++)
        cr_assert_eq(seen.done[i], 1, "event %d done %d times, want once", i, seen.done[i]);
    int last[KEYS];
    for (int k = 0; k < KEYS; k++)
        last[k] = -1;
    for (int j = 0; j < seen.norder; j++) {
        int n = seen.order[j];
        cr_assert_gt(n, last[n % KEYS], "key%d: event %d done after event %d", n % KEYS, n, last[n % KEYS]);
        last[n % KEYS] = n;
    }
    cr_assert_leq(seen.max_running, 8, "at most --concurrency in flight, saw %d", seen.max_running);
    cr_assert_gt(seen.max_running, 1, "events of different keys ran at the same time");
    pthread_mutex_unlock(&seen.mu);
}

Test(task_runner, retries_then_dead_letters_with_reason_and_source)
{
    tk_topic_create(topic, 1);
    tk_topic_create(dlq, 1);
    produce("retry2", 1, "a");      /* two transient failures, then done */
    produce("ok", 2, "a");          /* same key: waits for retry2-1 */
    produce("retryall", 3, "b");    /* fails every time: attempts_exhausted */
    produce("reject", 4, "c");      /* refused: rejected at once */
    tk_produce(producer, topic, "d", "not json", 8);
    tk_produce(producer, topic, "e", "{\"specversion\":\"1.0\"}", strlen("{\"specversion\":\"1.0\"}"));
    produce("ok", 5, "f");
    tk_flush(producer);
    running x;
    start_runner(&x, 4, 3);
    fp_deadletter d[4];
    char payloads[4][1024];
    wait_done(1, 3, 60);
    wait_done(5, 6, 60);
    int got = tk_read_dead_letters(dlq, d, payloads, 4, 60);
    stop_runner(&x);
    cr_assert_eq(got, 4, "want 4 dead letters, got %d", got);
    pthread_mutex_lock(&seen.mu);
    cr_assert_eq(seen.attempts[1], 3, "retry2-1: 2 failures and the success");
    cr_assert_eq(seen.attempts[3], 3, "retryall-3: --max-attempts attempts, got %d", seen.attempts[3]);
    cr_assert_eq(seen.attempts[4], 1, "reject-4: no retry after a reject");
    cr_assert_eq(seen.done[3] + seen.done[4], 0);
    int before = -1, after = -1;
    for (int j = 0; j < seen.norder; j++) {
        if (seen.order[j] == 1)
            before = j;
        if (seen.order[j] == 2)
            after = j;
    }
    cr_assert(before >= 0 && after > before, "ok-2 (key a) was done only after retry2-1");
    pthread_mutex_unlock(&seen.mu);
    /* Offsets in the source partition: retry2-1 0, ok-2 1, retryall-3 2, reject-4 3, not json 4, no id 5. */
    struct { const char *reason; long long offset; const char *in_payload; } want[] = {
        {"attempts_exhausted", 2, "retryall-3"}, {"rejected", 3, "reject-4"},
        {"not_json", 4, "not json"}, {"not_cloudevent", 5, "specversion"}};
    for (size_t w = 0; w < 4; w++) {
        int found = 0;
        for (int i = 0; i < got; i++) {
            if (strcmp(fp_deadletter_reason_name(d[i].reason), want[w].reason) != 0)
                continue;
            found++;
            cr_assert_str_eq(d[i].source_topic, topic);
            cr_assert_eq(d[i].source_partition, 0);
            cr_assert_eq(d[i].source_offset, want[w].offset, "%s: source offset %lld, want %lld", want[w].reason,
                         d[i].source_offset, want[w].offset);
            cr_assert_not_null(strstr(payloads[i], want[w].in_payload), "%s: the original payload, got %s",
                               want[w].reason, payloads[i]);
            if (w < 2)
                cr_assert_not_null(strstr(d[i].message, "from http://receiver.test/x"), "the kind's detail: %s", d[i].message);
        }
        cr_assert_eq(found, 1, "one %s dead letter, got %d", want[w].reason, found);
    }
}

Test(task_runner, a_restart_redoes_only_what_follows_the_first_unfinished_event)
{
    tk_topic_create(topic, 1);
    tk_topic_create(dlq, 1);
    char key[16];
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "k%d", i);
        produce(i == 10 ? "hang" : "ok", i, key);
    }
    tk_flush(producer);
    running x;
    start_runner(&x, 4, 3);
    wait_done(0, 10, 60);
    wait_done(11, 30, 60);
    stop_runner(&x);   /* hang-10 is abandoned at the end of the grace period */
    pthread_mutex_lock(&seen.mu);
    cr_assert_eq(seen.done[10], 0);
    memset(seen.done, 0, sizeof seen.done);
    seen.norder = 0;
    pthread_mutex_unlock(&seen.mu);

    running y;   /* the same group: it starts at the committed offset */
    start_runner(&y, 4, 3);
    usleep(100 * 1000);
    wait_done(11, 30, 60);
    stop_runner(&y);
    pthread_mutex_lock(&seen.mu);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(seen.done[i], 0, "event %d was finished before the restart and was redone", i);
    cr_assert_eq(seen.attempts[10], 2, "the unfinished event is attempted again after the restart");
    for (int i = 11; i < 30; i++)
        cr_assert_eq(seen.done[i], 1, "event %d, after the unfinished one, is redone once (at least once)", i);
    pthread_mutex_unlock(&seen.mu);
}

Test(task_runner, a_dead_letter_that_cannot_be_written_holds_its_partition_until_it_is)
{
    tk_topic_create(topic, 1);   /* the dead-letter topic does not exist yet */
    produce("reject", 0, "a");
    produce("ok", 1, "a");       /* same key: waits for the dead letter */
    produce("ok", 2, "b");       /* another key, already read: goes on */
    tk_flush(producer);
    running x;
    start_runner_dl(&x, 4, 3, 1000);
    wait_done(2, 3, 60);
    double deadline = tk_now() + 30;
    while (metric(&x, "formpipe_task_dead_letter_blocked{partition=\"0\"}") != 1 && tk_now() < deadline)
        usleep(100 * 1000);
    cr_assert_eq(metric(&x, "formpipe_task_dead_letter_blocked{partition=\"0\"}"), 1, "the partition waits at reject-0");
    produce("ok", 3, "c");       /* the partition is paused: not read until the letter is written */
    tk_flush(producer);
    sleep(3);
    cr_assert_eq(count_done(1, 2), 0, "ok-1 waits for the dead letter of reject-0 (same key)");
    cr_assert_eq(count_done(3, 4), 0, "ok-3 is not read while its partition waits");
    cr_assert_gt(metric(&x, "formpipe_task_dead_letter_failures_total"), 0);

    tk_topic_create(dlq, 1);
    wait_done(1, 4, 60);
    cr_assert_eq(metric(&x, "formpipe_task_dead_letter_blocked{partition=\"0\"}"), 0);
    cr_assert_eq(metric(&x, "formpipe_task_dead_lettered_total{reason=\"rejected\"}"), 1);
    cr_assert_eq(metric(&x, "formpipe_task_events_total{outcome=\"dead_lettered\"}"), 1);
    cr_assert_eq(metric(&x, "formpipe_task_events_total{outcome=\"delivered\"}"), 3);
    stop_runner(&x);
    fp_deadletter d[2];
    char payloads[2][1024];
    cr_assert_eq(tk_read_dead_letters(dlq, d, payloads, 2, 10), 1, "reject-0 is on the dead-letter topic once");
    cr_assert_eq(d[0].reason, FP_DEADLETTER_REJECTED);
    cr_assert_eq(d[0].source_offset, 0);
}

Test(task_runner, members_joining_and_leaving_lose_nothing)
{
    tk_topic_create(topic, 3);
    tk_topic_create(dlq, 1);
    enum { N = 300 };
    char key[16];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key%d", i % 30);
        produce("pace", i, key);   /* 50 ms each: a alone would need 7.5 s */
    }
    tk_flush(producer);
    running a, b;
    start_runner(&a, 2, 3);
    double deadline = tk_now() + 60;
    while (count_done(0, N) < 40 && tk_now() < deadline)
        usleep(20 * 1000);
    start_runner(&b, 2, 3);   /* joins: partitions move from a to b */
    int by_b = 0, by_a = 0;
    deadline = tk_now() + 60;
    while (by_b < 10 && tk_now() < deadline) {
        usleep(20 * 1000);
        pthread_mutex_lock(&seen.mu);
        by_b = b.done_here;
        pthread_mutex_unlock(&seen.mu);
    }
    int left = N - count_done(0, N);
    stop_runner(&a);   /* leaves: b takes everything */
    cr_assert_geq(by_b, 10, "the joining member got partitions while the first still ran");
    cr_assert_gt(left, 0, "the first member left with work to take over");
    wait_done(0, N, 120);
    pthread_mutex_lock(&seen.mu);
    by_a = a.done_here;
    by_b = b.done_here;
    pthread_mutex_unlock(&seen.mu);
    stop_runner(&b);
    cr_assert_eq(count_done(0, N), N);
    cr_assert_geq(by_a + by_b, N, "each event done at least once");
}

Test(task_runner, a_stop_lets_running_attempts_finish_within_the_grace_and_commits_them)
{
    tk_topic_create(topic, 1);
    tk_topic_create(dlq, 1);
    produce("linger", 0, "a");   /* 1.5 s per attempt */
    tk_flush(producer);
    running x;
    start_runner_full(&x, 4, 3, 5000, 5000);
    double deadline = tk_now() + 60;
    int attempts = 0;
    while (attempts == 0 && tk_now() < deadline) {
        usleep(20 * 1000);
        pthread_mutex_lock(&seen.mu);
        attempts = seen.attempts[0];
        pthread_mutex_unlock(&seen.mu);
    }
    cr_assert_eq(attempts, 1);
    stop_runner(&x);   /* as SIGTERM: stop reading, let it finish, commit */
    cr_assert_eq(count_done(0, 1), 1, "the running attempt finished within the grace");
    running y;
    start_runner(&y, 4, 3);
    produce("ok", 1, "b");   /* the restarted runner is past linger-0 once it did ok-1 */
    tk_flush(producer);
    wait_done(1, 2, 60);
    stop_runner(&y);
    pthread_mutex_lock(&seen.mu);
    cr_assert_eq(seen.attempts[0], 1, "linger-0 was committed at the stop: not attempted again");
    pthread_mutex_unlock(&seen.mu);
}

/* spec.filter over a moderate task's stream: moderated events (their own type) are
 * taken; only those the filter passes are attempted, the others are committed at once
 * and counted (a restart attempts nothing again). */
Test(task_runner, filter_skips_and_commits_what_does_not_match)
{
    tk_topic_create(topic, 2);
    tk_topic_create(dlq, 2);
    for (int n = 0; n < 40; n++) {
        char ev[512], key[8];
        snprintf(key, sizeof key, "k%d", n % 5);
        snprintf(ev, sizeof ev,
                 "{\"specversion\":\"1.0\",\"id\":\"mod-%d\",\"source\":\"/forms/tests/%s\","
                 "\"type\":\"io.formpipe.submission.moderated.v1\",\"time\":\"2026-11-23T14:05:27.123Z\","
                 "\"data\":{\"n\":%d},\"moderation\":{\"flagged\":%s,\"score\":%d,\"fields\":[],\"terms\":[]}}",
                 n, name, n, n % 4 == 0 ? "true" : "false", n % 4 == 0);
        tk_produce(producer, topic, key, ev, strlen(ev));
    }
    tk_flush(producer);
    char *conds[] = {"moderation.flagged=true"};
    fp_strlist filter = {conds, 1};
    runner_filter = &filter;
    running x;
    start_runner(&x, 8, 3);
    double t0 = tk_now();
    while ((count_done(0, 40) < 10 || metric(&x, "formpipe_task_events_filtered_total") < 30) && tk_now() - t0 < 60)
        usleep(50 * 1000);
    cr_assert_eq(metric(&x, "formpipe_task_events_filtered_total"), 30);
    cr_assert_eq(metric(&x, "formpipe_task_events_total{outcome=\"dead_lettered\"}") > 0, 0, "nothing dead-lettered");
    stop_runner(&x);
    pthread_mutex_lock(&seen.mu);
    for (int n = 0; n < 40; n++)
        cr_assert_eq(seen.attempts[n], n % 4 == 0 ? 1 : 0, "mod-%d: %d attempts", n, seen.attempts[n]);
    pthread_mutex_unlock(&seen.mu);
    start_runner(&x, 8, 3);   /* everything was committed: nothing is read again */
    sleep(4);
    cr_assert_eq(metric(&x, "formpipe_task_events_filtered_total") > 0, 0);
    stop_runner(&x);
    runner_filter = NULL;
    pthread_mutex_lock(&seen.mu);
    for (int n = 0; n < 40; n++)
        cr_assert_leq(seen.attempts[n], 1, "mod-%d attempted again after the restart", n);
    pthread_mutex_unlock(&seen.mu);
}

/* The group's committed offset minus the partition's end, summed over partitions 0..n-1
 * of topic (what `kafka-consumer-groups --describe` shows as lag). */
static long long committed_lag(int n)
{
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), why, sizeof why);
    rd_kafka_conf_set(conf, "group.id", group, why, sizeof why);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    cr_assert_not_null(rk, "%s", why);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topic, i);
    cr_assert_eq(rd_kafka_committed(rk, l, 10000), 0);
    long long lag = 0;
    for (int i = 0; i < n; i++) {
        int64_t lo, hi;
        cr_assert_eq(rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, 10000), 0);
        lag += hi - (l->elems[i].offset >= 0 ? l->elems[i].offset : lo);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return lag;
}

/* A moderate task's stream is written in transactions: after the last event of each
 * partition comes a commit marker that a read_committed consumer never gets as a
 * message. Once everything is done the group still reaches lag 0 (the task is not
 * reported as lagging and not progressing forever). */
Test(task_runner, a_transactional_stream_is_committed_to_its_end)
{
    tk_topic_create(topic, 2);
    tk_topic_create(dlq, 2);
    char why[256], txid[200], key[16];
    snprintf(txid, sizeof txid, "%s.writer", group);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), why, sizeof why);
    rd_kafka_conf_set(conf, "transactional.id", txid, why, sizeof why);
    rd_kafka_t *tx = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    cr_assert_not_null(tx, "%s", why);
    cr_assert_null(rd_kafka_init_transactions(tx, 30000));
    cr_assert_null(rd_kafka_begin_transaction(tx));
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof id, "ok-%d", i);
        snprintf(key, sizeof key, "k%d", i);
        cJSON *data = cJSON_CreateObject();
        cJSON_AddNumberToObject(data, "n", i);
        char *ev = fp_event_encode(id, "tests", name, (long long)time(NULL) * 1000, 1, data);
        cJSON_Delete(data);
        cr_assert_eq(rd_kafka_producev(tx, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                       RD_KAFKA_V_VALUE(ev, strlen(ev)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END), 0);
        free(ev);
    }
    cr_assert_null(rd_kafka_commit_transaction(tx, 30000));
    rd_kafka_destroy(tx);
    running x;
    start_runner(&x, 8, 3);
    wait_done(0, 20, 60);
    double end = tk_now() + 10;
    long long lag = committed_lag(2);
    while (lag != 0 && tk_now() < end) {
        usleep(250 * 1000);
        lag = committed_lag(2);
    }
    stop_runner(&x);
    cr_assert_eq(lag, 0, "the commits step over the transaction markers (lag %lld)", lag);
}
