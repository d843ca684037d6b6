/* Integration tests for formpipe-task's webhook kind (services/task/webhook.h), driven
 * through the kind contract (start/poll, no Kafka) against a real HTTP receiver
 * (tests/fakes/hook_receiver.py) started by each test: the requests of both content
 * modes and their signature as a receiver verifies it, every outcome of the status
 * table, Retry-After, timeouts, dropped connections, keep-alive reuse, and details that
 * never show the key or the URL's credentials and query. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "event.h"
#include "hookrecv.h"
#include "metrics.h"
#include "testkit.h"
#include "webhook.h"

#define SECRET "s3cr3t-hmac-key"

/* One event as the runner would hand it over; owns its JSON. */
typedef struct test_event {
    fp_task_event ev;
    char id[64];
    char *json;
    int reported;
    fp_task_outcome outcome;
} test_event;

static void event_make(test_event *t, const char *id)
{
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    cJSON *data = cJSON_Parse("{\"name\":\"Zoë \\\"Z\\\"\",\"age\":31}");
    t->json = fp_event_encode(t->id, "forms", "signup", 1795442727123LL, 3, data);
    cJSON_Delete(data);
    cr_assert_not_null(t->json);
    t->ev = (fp_task_event){.id = t->id, .value = t->json, .value_len = strlen(t->json),
                            .type = FP_EVENT_TYPE, .source = "/forms/forms/signup",
                            .time = "2026-11-23T14:05:27.123Z", .attempt = 1};
}

/* The runner's report: finds the test_event that holds ev. */
static void on_report(void *runner, const fp_task_event *ev, const fp_task_outcome *o)
{
    (void)runner;
    test_event *t = (test_event *)((char *)ev - offsetof(test_event, ev));
    cr_assert_eq(t->reported, 0, "%s reported twice", t->id);
    t->reported = 1;
    t->outcome = *o;
}

/* Polls until every event in ts has been reported (or timeout_s passes). */
static void wait_all(fp_task_kind *k, test_event *ts, int n, double timeout_s)
{
    double until = tk_now() + timeout_s;
    for (;;) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += ts[i].reported;
        if (done == n)
            return;
        cr_assert_lt(tk_now(), until, "%d of %d attempts reported after %.0f s", done, n, timeout_s);
        int running = k->poll(k->self, 200, on_report, NULL);
        cr_assert_geq(running, 0);
    }
}

/* A webhook on receiver r's path (with query etc.: anything after the port). */
static fp_task_kind *webhook(const hr_receiver *r, const char *path, fp_webhook_mode mode,
                             const char *secret, long timeout_ms, int conns)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", r->url, path);
    fp_webhook_config cfg = {.url = url, .secret = secret, .secret_len = secret ? strlen(secret) : 0,
                             .timeout_ms = timeout_ms, .mode = mode, .max_connections = conns};
    fp_error err = {0};
    fp_task_kind *k = fp_webhook_new(&cfg, NULL, &err);
    cr_assert_not_null(k, "fp_webhook_new: %s", err.msg);
    cr_assert_str_eq(k->name, "webhook");
    return k;
}

/* One attempt of a new event; returns its outcome. */
static fp_task_outcome attempt(fp_task_kind *k, const char *id)
{
    test_event t;
    event_make(&t, id);
    cr_assert_eq(k->start(k->self, &t.ev), 0);
    wait_all(k, &t, 1, 30);
    free(t.json);
    return t.outcome;
}

static const char *header(const cJSON *req, const char *name)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "headers"), name);
    return cJSON_IsString(h) ? h->valuestring : NULL;
}

static const char *str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The receiver's only request (fails unless there is exactly one); delete the result. */
static cJSON *only_request(const hr_receiver *r, cJSON **doc)
{
    *doc = hr_requests(r);
    cJSON *reqs = cJSON_GetObjectItemCaseSensitive(*doc, "requests");
    cr_assert_eq(cJSON_GetArraySize(reqs), 1, "requests seen: %s", cJSON_PrintUnformatted(reqs));
    return cJSON_GetArrayItem(reqs, 0);
}

static hr_receiver rcv;

static void setup(void)
{
    hr_start(&rcv, SECRET);
}

static void teardown(void)
{
    hr_stop(&rcv);
}

TestSuite(webhook, .init = setup, .fini = teardown, .timeout = 120);

Test(webhook, structured_mode_posts_the_event_as_read_with_a_signature_the_receiver_verifies)
{
    fp_task_kind *k = webhook(&rcv, "/hooks/in", FP_WEBHOOK_STRUCTURED, SECRET, 5000, 4);
    test_event t;
    event_make(&t, "sub-structured-1");
    cr_assert_eq(k->start(k->self, &t.ev), 0);
    wait_all(k, &t, 1, 30);
    cr_assert_eq(t.outcome.verdict, FP_TASK_DONE, "verdict %d: %s", t.outcome.verdict, t.outcome.detail);

    cJSON *doc, *req = only_request(&rcv, &doc);
    cr_assert_str_eq(str(req, "signature"), "ok", "the receiver verified the signature");
    cr_assert_str_eq(str(req, "path"), "/hooks/in");
    cr_assert_str_eq(str(req, "id"), "sub-structured-1");
    cr_assert_str_eq(header(req, "content-type"), "application/cloudevents+json");
    cr_assert_eq(strncmp(header(req, "user-agent"), "formpipe-task/", 14), 0, "%s", header(req, "user-agent"));
    cr_assert_str_eq(str(req, "body"), t.json, "the body is the event as read");
    cr_assert_null(header(req, "ce-id"), "structured mode sends no ce- headers");
    cr_assert_null(header(req, "expect"), "no 100-continue");
    cJSON_Delete(doc);
    free(t.json);
    k->free(k->self);
}

Test(webhook, binary_mode_sends_ce_headers_and_the_data_as_body)
{
    fp_task_kind *k = webhook(&rcv, "/b", FP_WEBHOOK_BINARY, SECRET, 5000, 4);
    fp_task_outcome o = attempt(k, "sub-binary-1");
    cr_assert_eq(o.verdict, FP_TASK_DONE, "%s", o.detail);

    cJSON *doc, *req = only_request(&rcv, &doc);
    cr_assert_str_eq(str(req, "signature"), "ok", "the signature covers the body sent");
    cr_assert_str_eq(header(req, "content-type"), "application/json");
    cr_assert_str_eq(header(req, "idempotency-key"), "sub-binary-1");
    cr_assert_str_eq(header(req, "ce-specversion"), "1.0");
    cr_assert_str_eq(header(req, "ce-id"), "sub-binary-1");
    cr_assert_str_eq(header(req, "ce-source"), "/forms/forms/signup");
    cr_assert_str_eq(header(req, "ce-type"), FP_EVENT_TYPE);
    cr_assert_str_eq(header(req, "ce-time"), "2026-11-23T14:05:27.123Z");
    cr_assert_str_eq(header(req, "ce-formgeneration"), "3");
    cr_assert_null(header(req, "ce-datacontenttype"), "datacontenttype is the Content-Type");
    cr_assert_null(header(req, "ce-data"));
    cJSON *data = cJSON_Parse(str(req, "body"));
    cr_assert_not_null(data, "body: %s", str(req, "body"));
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(data, "name")->valuestring, "Zoë \"Z\"");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(data, "age")->valueint, 31);
    cJSON_Delete(data);
    cJSON_Delete(doc);
    k->free(k->self);
}

Test(webhook, without_a_key_no_signature_is_sent_and_a_wrong_key_is_refused)
{
    fp_task_kind *k = webhook(&rcv, "/", FP_WEBHOOK_STRUCTURED, NULL, 5000, 1);
    fp_task_outcome o = attempt(k, "unsigned");
    cr_assert_eq(o.verdict, FP_TASK_REJECT, "the receiver answers 401: %s", o.detail);
    k->free(k->self);
    k = webhook(&rcv, "/", FP_WEBHOOK_STRUCTURED, "another-key", 5000, 1);
    o = attempt(k, "wrong-key");
    cr_assert_eq(o.verdict, FP_TASK_REJECT, "%s", o.detail);
    char want[256];
    snprintf(want, sizeof want, "HTTP 401 from %s/", rcv.url);
    cr_assert_str_eq(o.detail, want);
    k->free(k->self);

    cJSON *doc = hr_requests(&rcv);
    cJSON *reqs = cJSON_GetObjectItemCaseSensitive(doc, "requests");
    cr_assert_eq(cJSON_GetArraySize(reqs), 2);
    cr_assert_null(header(cJSON_GetArrayItem(reqs, 0), "formpipe-signature"));
    cr_assert_str_eq(str(cJSON_GetArrayItem(reqs, 0), "signature"), "missing");
    cr_assert_str_eq(str(cJSON_GetArrayItem(reqs, 1), "signature"), "mismatch");
    cJSON *stats = hr_stats(&rcv);
    cr_assert_eq(hr_int(stats, "bad_signatures"), 2);
    cJSON_Delete(stats);
    cJSON_Delete(doc);
}

struct status_case {
    const char *action;         /* the receiver's answer (hook_receiver.py action) */
    fp_task_verdict verdict;
    long long retry_after_ms;   /* exactly, for RETRY */
    int status;                 /* named in the detail; 0: no detail (DONE) */
};

static struct status_case statuses[] = {
    {"{\"status\":200}", FP_TASK_DONE, 0, 0},
    {"{\"status\":201}", FP_TASK_DONE, 0, 0},
    {"{\"status\":204}", FP_TASK_DONE, 0, 0},
    {"{\"status\":500}", FP_TASK_RETRY, 0, 500},
    {"{\"status\":502}", FP_TASK_RETRY, 0, 502},
    {"{\"status\":503,\"retry_after\":\"120\"}", FP_TASK_RETRY, 120000, 503},
    {"{\"status\":429,\"retry_after\":\"3\"}", FP_TASK_RETRY, 3000, 429},
    {"{\"status\":429,\"retry_after\":\"soon\"}", FP_TASK_RETRY, 0, 429},   /* unreadable: backoff only */
    {"{\"status\":408}", FP_TASK_RETRY, 0, 408},
    {"{\"status\":500,\"retry_after\":\"0\"}", FP_TASK_RETRY, 0, 500},
    {"{\"status\":404}", FP_TASK_REJECT, 0, 404},
    {"{\"status\":400}", FP_TASK_REJECT, 0, 400},
    {"{\"status\":410}", FP_TASK_REJECT, 0, 410},
    {"{\"status\":422,\"retry_after\":\"5\"}", FP_TASK_REJECT, 0, 422},   /* permanent anyway */
    {"{\"status\":302,\"headers\":{\"Location\":\"/elsewhere\"}}", FP_TASK_REJECT, 0, 302},
    {"{\"status\":307,\"headers\":{\"Location\":\"/hook\"}}", FP_TASK_REJECT, 0, 307},
};

ParameterizedTestParameters(webhook, status_table)
{
    return cr_make_param_array(struct status_case, statuses, sizeof statuses / sizeof statuses[0]);
}

ParameterizedTest(struct status_case *c, webhook, status_table)
{
    char script[256], want[256];
    snprintf(script, sizeof script, "{\"next\":[%s]}", c->action);
    hr_script(&rcv, script);
    fp_task_kind *k = webhook(&rcv, "/hook?token=query-secret#frag", FP_WEBHOOK_STRUCTURED, SECRET, 5000, 2);
    fp_task_outcome o = attempt(k, "sub-status");
    k->free(k->self);

    cr_assert_eq(o.verdict, c->verdict, "%s: verdict %d (%s)", c->action, o.verdict, o.detail);
    if (c->verdict == FP_TASK_RETRY)
        cr_assert_eq(o.retry_after_ms, c->retry_after_ms, "%s: retry_after_ms %lld", c->action, o.retry_after_ms);
    if (c->status)
        snprintf(want, sizeof want, "HTTP %d from %s/hook", c->status, rcv.url);
    else
        want[0] = '\0';
    cr_assert_str_eq(o.detail, want, "%s", c->action);

    cJSON *stats = hr_stats(&rcv);
    cr_assert_eq(hr_int(stats, "requests"), 1, "%s: one request, redirects not followed", c->action);
    cJSON_Delete(stats);
}

Test(webhook, retry_after_as_an_http_date)
{
    char date[64], script[160];
    time_t at = time(NULL) + 30;
    struct tm tm;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&at, &tm));
    snprintf(script, sizeof script, "{\"next\":[{\"status\":503,\"retry_after\":\"%s\"}]}", date);
    hr_script(&rcv, script);
    fp_task_kind *k = webhook(&rcv, "/", FP_WEBHOOK_STRUCTURED, SECRET, 5000, 1);
    fp_task_outcome o = attempt(k, "dated");
    k->free(k->self);
    cr_assert_eq(o.verdict, FP_TASK_RETRY);
    cr_assert(o.retry_after_ms > 25000 && o.retry_after_ms <= 30000, "Retry-After %s: %lld ms", date,
              o.retry_after_ms);
}

Test(webhook, a_stalled_receiver_is_a_retry_after_the_timeout)
{
    hr_script(&rcv, "{\"next\":[{\"stall\":5}]}");
    fp_task_kind *k = webhook(&rcv, "/slow", FP_WEBHOOK_STRUCTURED, SECRET, 700, 1);
    double t0 = tk_now();
    fp_task_outcome o = attempt(k, "stalled");
    double took = tk_now() - t0;
    cr_assert_eq(o.verdict, FP_TASK_RETRY, "%s", o.detail);
    cr_assert(took >= 0.6 && took < 3, "reported after %.2f s for a 700 ms timeout", took);
    char want[256];
    snprintf(want, sizeof want, "no answer within 700 ms from %s/slow", rcv.url);
    cr_assert_str_eq(o.detail, want);
    /* The next request goes through (a fresh connection: the stalled one is dropped). */
    o = attempt(k, "after-stall");
    cr_assert_eq(o.verdict, FP_TASK_DONE, "%s", o.detail);
    k->free(k->self);
}

Test(webhook, a_connection_closed_without_an_answer_is_a_retry)
{
    hr_script(&rcv, "{\"next\":[{\"close\":true}]}");
    fp_task_kind *k = webhook(&rcv, "/", FP_WEBHOOK_STRUCTURED, SECRET, 5000, 1);
    fp_task_outcome o = attempt(k, "dropped");
    cr_assert_eq(o.verdict, FP_TASK_RETRY, "%s", o.detail);
    cr_assert_eq(o.retry_after_ms, 0);
    cr_assert_neq(o.detail[0], '\0');
    o = attempt(k, "dropped");   /* the same event again: delivered, same Idempotency-Key */
    cr_assert_eq(o.verdict, FP_TASK_DONE, "%s", o.detail);
    k->free(k->self);

    cJSON *doc = hr_requests(&rcv);
    cJSON *reqs = cJSON_GetObjectItemCaseSensitive(doc, "requests");
    cr_assert_eq(cJSON_GetArraySize(reqs), 2);
    cr_assert_str_eq(str(cJSON_GetArrayItem(reqs, 0), "id"), "dropped");
    cr_assert_str_eq(str(cJSON_GetArrayItem(reqs, 1), "id"), "dropped");
    cJSON_Delete(doc);
}

Test(webhook, nobody_listening_is_a_retry)
{
    hr_receiver gone;
    hr_start(&gone, NULL);
    hr_stop(&gone);   /* its port is closed now */
    fp_task_kind *k = webhook(&gone, "/", FP_WEBHOOK_STRUCTURED, SECRET, 5000, 1);
    fp_task_outcome o = attempt(k, "refused");
    k->free(k->self);
    cr_assert_eq(o.verdict, FP_TASK_RETRY, "%s", o.detail);
    cr_assert(strstr(o.detail, gone.url), "the detail names the URL: %s", o.detail);
}

Test(webhook, keep_alive_connections_are_reused)
{
    enum { N = 200, POOL = 4 };
    static test_event ts[N];
    fp_task_kind *k = webhook(&rcv, "/many", FP_WEBHOOK_BINARY, SECRET, 10000, POOL);
    /* Two waves of N/2 in flight at once, then the same again: the pool carries all. */
    for (int wave = 0; wave < 2; wave++) {
        for (int i = wave * N / 2; i < (wave + 1) * N / 2; i++) {
            char id[32];
            snprintf(id, sizeof id, "ka-%03d", i);
            event_make(&ts[i], id);
            cr_assert_eq(k->start(k->self, &ts[i].ev), 0);
        }
        wait_all(k, ts + wave * N / 2, N / 2, 60);
    }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(ts[i].outcome.verdict, FP_TASK_DONE, "%s: %s", ts[i].id, ts[i].outcome.detail);
        free(ts[i].json);
    }
    cr_assert_eq(k->poll(k->self, 0, on_report, NULL), 0, "nothing left running");
    k->free(k->self);

    cJSON *stats = hr_stats(&rcv);
    cr_assert_eq(hr_int(stats, "requests"), N);
    cr_assert_eq(hr_int(stats, "bad_signatures"), 0);
    int conns = hr_int(stats, "connections");
    cr_assert(conns >= 1 && conns <= POOL, "%d requests over %d connections (pool %d)", N, conns, POOL);
    cJSON_Delete(stats);
    /* Every id arrived once. */
    cJSON *doc = hr_requests(&rcv);
    char seen[N] = {0};
    const cJSON *req;
    cJSON_ArrayForEach(req, cJSON_GetObjectItemCaseSensitive(doc, "requests")) {
        int i = -1;
        cr_assert_eq(sscanf(str(req, "id"), "ka-%d", &i), 1);
        cr_assert(i >= 0 && i < N && !seen[i], "%s twice", str(req, "id"));
        seen[i] = 1;
    }
    cJSON_Delete(doc);
}

Test(webhook, details_never_show_the_key_nor_the_urls_credentials_or_query)
{
    /* Every kind of failure, with a URL that carries userinfo and a query. */
    hr_script(&rcv, "{\"next\":[{\"status\":404},{\"status\":500,\"retry_after\":\"1\"},"
                    "{\"stall\":3},{\"close\":true},{\"status\":301,\"headers\":{\"Location\":\"/x\"}}]}");
    char url[256];
    snprintf(url, sizeof url, "http://alice:pw-secret@127.0.0.1:%d/in?token=query-secret&x=1#frag-secret",
             rcv.port);
    fp_webhook_config cfg = {.url = url, .secret = SECRET, .secret_len = strlen(SECRET),
                             .timeout_ms = 600, .mode = FP_WEBHOOK_STRUCTURED, .max_connections = 1};
    fp_metrics *m = fp_metrics_new(64);
    fp_error err = {0};
    fp_task_kind *k = fp_webhook_new(&cfg, m, &err);
    cr_assert_not_null(k, "%s", err.msg);
    fp_task_outcome outs[6];
    for (int i = 0; i < 5; i++)
        outs[i] = attempt(k, "leak-check");
    k->free(k->self);
    hr_stop(&rcv);
    k = fp_webhook_new(&cfg, NULL, &err);   /* nobody listening */
    outs[5] = attempt(k, "leak-check");
    k->free(k->self);

    char want[128];
    snprintf(want, sizeof want, "127.0.0.1:%d/in", rcv.port);
    for (int i = 0; i < 6; i++) {
        cr_assert_neq(outs[i].verdict, FP_TASK_DONE, "#%d", i);
        const char *d = outs[i].detail;
        cr_assert(strstr(d, want), "#%d names the endpoint: %s", i, d);
        cr_assert_null(strstr(d, SECRET), "#%d: %s", i, d);
        cr_assert_null(strstr(d, "secret"), "#%d shows a secret part of the URL: %s", i, d);
        cr_assert_null(strstr(d, "alice"), "#%d: %s", i, d);
        cr_assert_null(strstr(d, "token"), "#%d: %s", i, d);
    }
    /* The answers were counted by class. */
    fp_buf b;
    fp_buf_init(&b, 1 << 20);
    cr_assert_eq(fp_metrics_render(m, &b), 0);
    cr_assert(strstr(b.data, "formpipe_task_webhook_responses_total{code_class=\"4xx\"} 1"), "%s", b.data);
    cr_assert(strstr(b.data, "formpipe_task_webhook_responses_total{code_class=\"5xx\"} 1"), "%s", b.data);
    cr_assert(strstr(b.data, "formpipe_task_webhook_responses_total{code_class=\"3xx\"} 1"), "%s", b.data);
    cr_assert(strstr(b.data, "formpipe_task_webhook_responses_total{code_class=\"error\"} 2"), "%s", b.data);
    fp_buf_free(&b);
    fp_metrics_free(m);
}

Test(webhook, an_event_that_cannot_be_sent_in_binary_mode_is_rejected_without_a_request)
{
    fp_task_kind *k = webhook(&rcv, "/", FP_WEBHOOK_BINARY, SECRET, 5000, 1);
    static const char json[] = "{\"specversion\":\"1.0\",\"id\":\"b64\",\"data_base64\":\"aGk=\"}";
    test_event t = {.ev = {.id = "b64", .value = json, .value_len = sizeof json - 1, .type = "t",
                           .source = "s", .time = "", .attempt = 1}};
    snprintf(t.id, sizeof t.id, "b64");
    cr_assert_eq(k->start(k->self, &t.ev), 0);
    wait_all(k, &t, 1, 10);
    k->free(k->self);
    cr_assert_eq(t.outcome.verdict, FP_TASK_REJECT);
    cr_assert(strstr(t.outcome.detail, "binary mode"), "%s", t.outcome.detail);
    cJSON *stats = hr_stats(&rcv);
    cr_assert_eq(hr_int(stats, "requests"), 0);
    cJSON_Delete(stats);
}

Test(webhook, freeing_abandons_running_attempts)
{
    hr_script(&rcv, "{\"fail_percent\":100,\"action\":{\"stall\":10}}");
    fp_task_kind *k = webhook(&rcv, "/", FP_WEBHOOK_STRUCTURED, SECRET, 20000, 2);
    static test_event ts[5];
    for (int i = 0; i < 5; i++) {
        event_make(&ts[i], "abandoned");
        cr_assert_eq(k->start(k->self, &ts[i].ev), 0);
    }
    cr_assert_eq(k->poll(k->self, 300, on_report, NULL), 5, "all five still running");
    k->free(k->self);   /* ASan: nothing leaks, nothing is reported */
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(ts[i].reported, 0);
        free(ts[i].json);
    }
}

struct config_case { const char *url; long timeout_ms; int conns; };

static struct config_case bad_configs[] = {
    {"ftp://127.0.0.1/x?token=query-secret", 1000, 1},
    {"not a url?token=query-secret", 1000, 1},
    {"file:///etc/passwd?token=query-secret", 1000, 1},
    {NULL, 1000, 1},
    {"http://127.0.0.1/", 0, 1},
    {"http://127.0.0.1/", 1000, 0},
    /* #16: a token never travels in clear - plain http only to loopback (or --webhook-allow-http) */
    {"http://hooks.example.com/x?token=query-secret", 1000, 1},
    {"http://127.0.0.1@hooks.example.com/x?token=query-secret", 1000, 1},
    {"http://127.0.0.1.example.com/x?token=query-secret", 1000, 1},
};

ParameterizedTestParameters(webhook_config, refused)
{
    return cr_make_param_array(struct config_case, bad_configs, sizeof bad_configs / sizeof bad_configs[0]);
}

ParameterizedTest(struct config_case *c, webhook_config, refused)
{
    fp_webhook_config cfg = {.url = c->url, .timeout_ms = c->timeout_ms, .max_connections = c->conns};
    fp_error err = {0};
    cr_assert_null(fp_webhook_new(&cfg, NULL, &err), "%s", c->url);
    cr_assert_eq(err.code, FP_EINVAL, "%s: %s", c->url, err.msg);
    cr_assert_null(strstr(err.msg, "secret"), "the message does not echo the URL: %s", err.msg);
}
