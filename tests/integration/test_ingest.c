/* formpipe-ingest as a process against the real Kafka of scripts/testenv: a POST lands
 * on the topic with the right key and content, only after Kafka has it; bad input gets
 * a precise answer; Idempotency-Key retries keep their id; SIGTERM exits cleanly. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "event.h"
#include "ids.h"
#include "testkit.h"

static char name[64], topic[128], *form_path;
static tk_proc ingest;
static int port;

static void setup(void)
{
    char form[1024];
    tk_unique(name, sizeof name, "i");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":2,\"partitionKey\":\"roll\",\"fields\":["
             "{\"name\":\"name\",\"type\":\"string\",\"required\":true,\"minLength\":5,\"maxLength\":100},"
             "{\"name\":\"roll\",\"type\":\"string\",\"required\":true,\"pattern\":\"^[0-9]{1,10}$\"},"
             "{\"name\":\"cgpa\",\"type\":\"number\",\"minimum\":0,\"maximum\":10},"
             "{\"name\":\"email\",\"type\":\"email\",\"required\":true}]}", name);
    form_path = tk_write_temp(form);
    tk_topic_create(topic, 3);
    port = tk_start_ingest(&ingest, form_path, "/readyz",
                           (const char *const[]){"--max-body-bytes", "2048", "--allowed-origin", "https://example.com",
                                                 "--delivery-timeout", "2s", "--rate-limit", "5", "--rate-burst", "10",
                                                 "--trusted-proxy", "127.0.0.1", NULL});
}

static int broker_killed;   /* a failed assertion must not leave Kafka down for later tests */

static void teardown(void)
{
    if (broker_killed)
        tk_testenv("start", "kafka-1");
    if (ingest.pid)
        cr_assert_eq(tk_stop(&ingest, SIGTERM, 30), 0, "clean exit on SIGTERM");
    unlink(form_path);
    free(form_path);
}

TestSuite(ingest, .init = setup, .fini = teardown, .timeout = 120);

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    return fp_buf_add(userdata, p, size * n) == 0 ? size * n : 0;
}

struct answer { long status; char *body; char *headers; };

static struct answer request(const char *method, const char *path, const char *ctype, const char *body,
                             const char *extra_header);

static struct answer post(const char *path, const char *ctype, const char *body, const char *extra_header)
{
    return request("POST", path, ctype, body, extra_header);
}

static struct answer request(const char *method, const char *path, const char *ctype, const char *body,
                             const char *extra_header)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct answer a = {0, NULL, NULL};
    a.status = tk_http_request(method, url, ctype, body, extra_header, &a.headers, &a.body);
    return a;
}

static void answer_free(struct answer *a)
{
    free(a->body);
    free(a->headers);
}

/* An event read back from the topic (copied: the consumer is gone by then). */
typedef struct found_event { char key[64]; char *payload; size_t len; } found_event;

/* Reads the topic from the start until the event with id shows up; NULL if it doesn't. */
static found_event *find_event(const char *id)
{
    rd_kafka_t *r = tk_kafka_reader(topic);
    found_event *found = NULL;
    double deadline = tk_now() + 30;
    while (!found && tk_now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 500);
        if (m && !m->err && memmem(m->payload, m->len, id, strlen(id))) {
            found = calloc(1, sizeof *found);
            snprintf(found->key, sizeof found->key, "%.*s", (int)m->key_len, (const char *)m->key);
            found->payload = strndup(m->payload, m->len);
            found->len = m->len;
        }
        if (m)
            rd_kafka_message_destroy(m);   /* before rd_kafka_destroy, which waits for them */
    }
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    return found;
}

Test(ingest, a_valid_submission_is_in_kafka_with_its_key_when_202_answers)
{
    struct answer a = post("/forms/", NULL, NULL, NULL);
    answer_free(&a);
    char path[128];
    snprintf(path, sizeof path, "/forms/%s", name);
    a = post(path, "application/json",
             "{\"name\":\"  Asha Verma \",\"roll\":\"42\",\"cgpa\":9.5,\"email\":\"asha@example.com\"}", NULL);
    cr_assert_eq(a.status, 202, "%s", a.body);
    cJSON *j = cJSON_Parse(a.body);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id"));
    cr_assert(id && strlen(id) == 26, "a ULID: %s", a.body);
    found_event *m = find_event(id);
    cr_assert_not_null(m, "event %s is on %s", id, topic);
    cr_assert_str_eq(m->key, "42", "partitionKey roll is the Kafka key");
    fp_event ev;
    fp_error err = {0};
    cr_assert_eq(fp_event_parse(m->payload, m->len, &ev, &err), 0, "%s", err.msg);
    char source[128];
    snprintf(source, sizeof source, "/forms/tests/%s", name);
    cr_assert_str_eq(ev.source, source);
    cr_assert_eq(ev.generation, 2);
    cr_assert_eq(ev.nfields, 4, "the fields sent, nothing else");
    cJSON *doc = cJSON_ParseWithLength(m->payload, m->len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(data, "name")->valuestring, "Asha Verma", "sanitized: trimmed");
    cr_assert_float_eq(cJSON_GetObjectItemCaseSensitive(data, "cgpa")->valuedouble, 9.5, 1e-9);
    cJSON_Delete(doc);
    fp_event_clear(&ev);
    free(m->payload);
    free(m);
    cJSON_Delete(j);
    answer_free(&a);
}

struct bad_case { const char *ctype, *body; long status; const char *in_body; const char *header; };

static struct bad_case bad[] = {
    {"application/json", "{\"name\":", 400, "is not valid JSON", NULL},
    {"application/json", "[1]", 400, "must be a JSON object", NULL},
    {"application/json", "{\"a\":[[[[[[[[[1]]]]]]]]]}", 400, "nests deeper", NULL},
    {"application/json", "{\"name\":\"Bob\",\"roll\":\"x1\",\"email\":\"nope\",\"zzz\":1}", 422,
     "{\"field\":\"name\",\"rule\":\"minLength\"", NULL},
    {"application/json", "{\"name\":\"Bob\",\"roll\":\"x1\",\"email\":\"nope\",\"zzz\":1}", 422,
     "{\"field\":\"zzz\",\"rule\":\"unknown\"", NULL},
    {"text/plain", "hello", 415, "application/json or application/x-www-form-urlencoded", NULL},
    {"application/x-www-form-urlencoded", "name=%ZZ", 400, "bad %-escape", NULL},
};

ParameterizedTestParameters(ingest, bad_input_gets_a_precise_answer)
{
    return cr_make_param_array(struct bad_case, bad, sizeof bad / sizeof bad[0]);
}

ParameterizedTest(struct bad_case *c, ingest, bad_input_gets_a_precise_answer)
{
    char path[128];
    snprintf(path, sizeof path, "/forms/%s", name);
    struct answer a = post(path, c->ctype, c->body, NULL);
    cr_assert_eq(a.status, c->status, "%s: %ld %s", c->body, a.status, a.body);
    cr_assert_not_null(strstr(a.body, c->in_body), "'%s' not in %s", c->in_body, a.body);
    cJSON *j = cJSON_Parse(a.body);
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(j, "error"), "JSON error body: %s", a.body);
    cJSON_Delete(j);
    answer_free(&a);
}

Test(ingest, routes_methods_and_size_limits)
{
    char path[128], big[4096];
    snprintf(path, sizeof path, "/forms/%s", name);
    struct answer a = post("/forms/no-such-form", "application/json", "{}", NULL);
    cr_assert_eq(a.status, 404);
    answer_free(&a);
    char *body;
    cr_assert_eq(tk_http_get(port, path, &body), 200, "GET serves the form page");
    char action[200];
    snprintf(action, sizeof action, "<form method=\"post\" action=\"%s\"", path);
    cr_assert_not_null(strstr(body, action), "the page posts back to the form: %s", body);
    free(body);
    cr_assert_eq(tk_sh(&body, "curl -s -o /dev/null -w '%%{http_code} %%header{allow}' -X DELETE http://127.0.0.1:%d%s", port, path), 0);
    cr_assert_str_eq(body, "405 GET, POST, OPTIONS");
    free(body);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "{\"name\":\"", 9);
    a = post(path, "application/json", big, NULL);
    cr_assert_eq(a.status, 413, "over --max-body-bytes 2048: %s", a.body);
    answer_free(&a);
    cr_assert_eq(tk_http_get(port, "/healthz", &body), 200);
    free(body);
    char schema_path[160];
    snprintf(schema_path, sizeof schema_path, "/forms/%s/schema", name);
    cr_assert_eq(tk_http_get(port, schema_path, &body), 200);
    cJSON *js = cJSON_Parse(body);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(js, "$schema")),
                     "https://json-schema.org/draft/2020-12/schema", "%s", body);
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(js, "properties"), "roll"), "%s", body);
    cJSON_Delete(js);
    free(body);
    cr_assert_eq(tk_http_get(ingest.admin_port, "/metrics", &body), 200);
    cr_assert_not_null(strstr(body, "formpipe_ingest_requests_total{form=\"\",status=\"404\"} 1"), "%s", body);
    free(body);
    cr_assert_eq(tk_http_get(port, "/metrics", &body), 404, "no /metrics on the public port");
    free(body);
}

Test(ingest, idempotency_key_retries_get_the_same_id_and_form_posts_are_typed)
{
    char path[128];
    snprintf(path, sizeof path, "/forms/%s", name);
    const char *sub = "name=Asha+Verma&roll=7&email=a%40b.co&cgpa=7.5";
    struct answer a = post(path, "application/x-www-form-urlencoded", sub, "Idempotency-Key: order-77");
    struct answer b = post(path, "application/x-www-form-urlencoded", sub, "Idempotency-Key: order-77");
    struct answer c = post(path, "application/x-www-form-urlencoded", sub, "Idempotency-Key: order-78");
    cr_assert_eq(a.status, 202, "%s", a.body);
    cr_assert_eq(b.status, 202);
    cr_assert_str_eq(a.body, b.body, "a retry keeps its id");
    cr_assert_str_neq(a.body, c.body, "another key, another id");
    cJSON *j = cJSON_Parse(a.body);
    found_event *m = find_event(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id")));
    cr_assert_not_null(m);
    fp_event ev;
    cr_assert_eq(fp_event_parse(m->payload, m->len, &ev, NULL), 0);
    cJSON *doc = cJSON_ParseWithLength(m->payload, m->len);
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "data"), "cgpa")),
              "the form post's text became a number");
    cJSON_Delete(doc);
    fp_event_clear(&ev);
    free(m->payload);
    free(m);
    cJSON_Delete(j);
    answer_free(&a);
    answer_free(&b);
    answer_free(&c);

    struct answer h = post(path, "application/x-www-form-urlencoded", "name=Asha+Verma&roll=8&email=a%40b.co",
                           "Accept: text/html");
    cr_assert_eq(h.status, 202);
    cr_assert_not_null(strstr(h.body, "<h1>Thank you</h1>"), "a browser gets a page: %s", h.body);
    answer_free(&h);

    struct answer e = post(path, "application/x-www-form-urlencoded", "name=Asha+Verma&roll=8x&email=a%40b.co",
                           "Accept: text/html");
    cr_assert_eq(e.status, 422);
    cr_assert_not_null(strstr(e.headers, "text/html"), "a browser's refusal is a page: %s", e.headers);
    cr_assert_not_null(strstr(e.body, "<li><strong>roll</strong>: "), "it names the field: %s", e.body);
    answer_free(&e);
}

Test(ingest, cors_answers_only_the_allowed_origin)
{
    char path[128];
    snprintf(path, sizeof path, "/forms/%s", name);
    struct answer a = request("OPTIONS", path, NULL, NULL, "Origin: https://example.com");
    cr_assert_eq(a.status, 204, "preflight: %s", a.headers);
    cr_assert_not_null(strcasestr(a.headers, "access-control-allow-origin: https://example.com"), "%s", a.headers);
    cr_assert_not_null(strcasestr(a.headers, "access-control-allow-headers: Content-Type, Idempotency-Key"), "%s", a.headers);
    answer_free(&a);
    a = post(path, "application/json", "{\"name\":\"Asha Verma\",\"roll\":\"9\",\"email\":\"a@b.co\"}",
             "Origin: https://example.com");
    cr_assert_eq(a.status, 202);
    cr_assert_not_null(strcasestr(a.headers, "access-control-allow-origin: https://example.com"), "%s", a.headers);
    answer_free(&a);
    a = post(path, "application/json", "{\"name\":\"Asha Verma\",\"roll\":\"9\",\"email\":\"a@b.co\"}",
             "Origin: https://evil.example");
    cr_assert_null(strcasestr(a.headers, "access-control-allow-origin"), "no CORS grant for another origin: %s", a.headers);
    answer_free(&a);
}

Test(ingest, a_stopped_broker_means_503_within_the_bound_then_recovery)
{
    char path[128], *body = NULL;
    snprintf(path, sizeof path, "/forms/%s", name);
    tk_testenv("kill", "kafka-1");
    broker_killed = 1;
    double t0 = tk_now();
    struct answer a = post(path, "application/json", "{\"name\":\"Asha Verma\",\"roll\":\"5\",\"email\":\"a@b.co\"}",
                           "Idempotency-Key: late-5");
    double took = tk_now() - t0;
    cr_assert_eq(a.status, 503, "nothing is answered 2xx that is not in Kafka: %ld %s", a.status, a.body);
    cr_assert_not_null(strcasestr(a.headers, "retry-after:"), "%s", a.headers);
    cr_assert_lt(took, 5.0, "503 within the 2 s delivery bound (took %.1f s)", took);
    answer_free(&a);
    double deadline = tk_now() + 15;
    long st = 0;
    while (tk_now() < deadline && (st = tk_http_get(port, "/readyz", &body)) == 200) {
        free(body);
        body = NULL;
        usleep(200 * 1000);
    }
    free(body);
    cr_assert_eq(st, 503, "not ready while the broker is down");

    tk_testenv("start", "kafka-1");
    broker_killed = 0;
    deadline = tk_now() + 90;
    st = 0;
    while (tk_now() < deadline && st != 202) {
        a = post(path, "application/json", "{\"name\":\"Asha Verma\",\"roll\":\"6\",\"email\":\"a@b.co\"}", NULL);
        st = a.status;
        answer_free(&a);
        if (st != 202)
            usleep(500 * 1000);
    }
    cr_assert_eq(st, 202, "the service recovers when the broker returns");

    /* The 503 ended the answer, not the message: the producer kept it (its own timeout
     * is --kafka-message-timeout, 120 s) and delivered it once the broker was back. */
    char late[FP_ID_LEN + 1];
    fp_id_derived("tests", name, "late-5", 6, late);
    found_event *m = find_event(late);
    cr_assert_not_null(m, "the submission answered 503 during the outage is on the topic afterwards (id %s)", late);
    free(m->payload);
    free(m);
}

Test(ingest, a_client_over_its_rate_gets_429_and_others_do_not)
{
    char path[128];
    snprintf(path, sizeof path, "/forms/%s", name);
    int limited = 0, first_limited = -1;
    for (int i = 0; i < 14; i++) {
        struct answer a = post(path, "application/json", "{", "X-Forwarded-For: 203.0.113.7, 198.51.100.1");
        if (a.status == 429) {
            limited++;
            if (first_limited < 0)
                first_limited = i;
            cr_assert_not_null(strcasestr(a.headers, "retry-after:"), "%s", a.headers);
        } else {
            cr_assert_eq(a.status, 400, "a bad body is a 400 while under the limit");
        }
        answer_free(&a);
    }
    cr_assert_geq(limited, 3, "the burst of 10 is spent: %d answers were 429", limited);
    cr_assert_geq(first_limited, 10, "the first 10 pass (burst), then 429");
    struct answer b = post(path, "application/json", "{", "X-Forwarded-For: 192.0.2.44");
    cr_assert_eq(b.status, 400, "another client behind the trusted proxy has its own bucket");
    answer_free(&b);
}

/* Replaces the form file the way a ConfigMap volume does: a new file renamed over it. */
static void replace_form(const char *text)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.new", form_path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, form_path), 0);
}

Test(ingest, a_changed_form_file_is_picked_up_and_a_broken_one_refused)
{
    char path[128], form[1024];
    snprintf(path, sizeof path, "/forms/%s", name);
    const char *with_city = "{\"name\":\"Ada Lovelace\",\"roll\":\"7\",\"email\":\"ada@example.com\",\"city\":\"London\"}";
    struct answer a = post(path, "application/json", with_city, NULL);
    cr_assert_eq(a.status, 422, "city is not a field yet: %s", a.body);
    answer_free(&a);
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":3,\"partitionKey\":\"roll\",\"fields\":["
             "{\"name\":\"name\",\"type\":\"string\",\"required\":true},{\"name\":\"roll\",\"type\":\"string\"},"
             "{\"name\":\"email\",\"type\":\"email\"},{\"name\":\"city\",\"type\":\"string\"}]}", name);
    replace_form(form);
    int status = 0;
    for (int i = 0; i < 50 && status != 202; i++) {   /* looked at every second */
        usleep(100000);
        a = post(path, "application/json", with_city, NULL);
        status = (int)a.status;
        answer_free(&a);
    }
    cr_assert_eq(status, 202, "the new field is accepted without a restart");
    replace_form("{\"name\":\"broken\"");
    sleep(2);
    a = post(path, "application/json", with_city, NULL);
    cr_assert_eq(a.status, 202, "a broken file keeps the loaded form: %s", a.body);
    answer_free(&a);
    char *log = tk_read_file(ingest.log);
    cr_assert_not_null(strstr(log, "form reloaded"), "the reload is logged");
    cr_assert_not_null(strstr(log, "keeping the loaded version"), "the refusal is logged with its reason");
    free(log);
}

/* Sends a whole JSON POST to path on a connection of its own and closes it at once,
 * without reading the answer. */
static void post_and_leave(const char *path, const char *body)
{
    char url[64], req[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    size_t len = (size_t)snprintf(req, sizeof req,
                                  "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                  "Content-Length: %zu\r\n\r\n%s", path, strlen(body), body);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "connect to %s", url);
    for (size_t sent = 0, n; sent < len; sent += n) {
        CURLcode rc = curl_easy_send(c, req + sent, len - sent, &n);
        if (rc == CURLE_AGAIN) {
            n = 0;
            usleep(1000);
            continue;
        }
        cr_assert_eq(rc, CURLE_OK, "send: %s", curl_easy_strerror(rc));
    }
    curl_easy_cleanup(c);
}

/* The connection lets go of a request before Kafka's report does: the report still
 * finishes it (the event is stored; no crash, and no leak at the SIGTERM of teardown). */
Test(ingest, a_client_that_leaves_before_its_answer_still_has_its_submission_stored)
{
    char path[128], body[256], roll[24], want[64];
    snprintf(path, sizeof path, "/forms/%s", name);
    long long base = (long long)(tk_now() * 1000) % 100000000 * 10;   /* ten fresh roll numbers */
    for (int i = 0; i < 10; i++) {
        snprintf(body, sizeof body, "{\"name\":\"Asha Verma\",\"roll\":\"%lld\",\"email\":\"a@b.co\"}", base + i);
        post_and_leave(path, body);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(roll, sizeof roll, "%lld", base + i);
        snprintf(want, sizeof want, "\"roll\":\"%lld\"", base + i);
        found_event *m = find_event(want);
        cr_assert_not_null(m, "submission %d of 10 (roll %s) is on %s although its client left", i + 1, roll, topic);
        cr_assert_str_eq(m->key, roll, "partitionKey roll is the Kafka key");
        free(m->payload);
        free(m);
    }
    char *health = NULL;
    cr_assert_eq(tk_http_get(port, "/healthz", &health), 200, "the service goes on");
    free(health);
}

/* One client thread of the SIGTERM test: posts until the service is gone, keeping the
 * ids that were answered 202. */
typedef struct load_client {
    int index;
    char ids[4000][27];
    int accepted, refused_after_stop;
} load_client;

static volatile int sigterm_sent;

static void *load_client_run(void *arg)
{
    load_client *lc = arg;
    char url[256], body[256], key[64], client[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/forms/%s", port, name);
    CURL *c = curl_easy_init();
    for (int i = 0; i < 4000; i++) {
        fp_buf b;
        fp_buf_init(&b, 4096);
        snprintf(body, sizeof body, "{\"name\":\"client %d number %d\",\"roll\":\"%d\",\"email\":\"c%d@example.com\"}",
                 lc->index, i, lc->index, i);
        snprintf(key, sizeof key, "Idempotency-Key: load-%d-%d-%d", (int)getpid(), lc->index, i);
        /* a client address of its own per request (the suite trusts 127.0.0.1 as a proxy),
         * so the per-client rate limit does not thin the load */
        snprintf(client, sizeof client, "X-Forwarded-For: 10.%d.%d.%d", lc->index, i / 250, i % 250);
        struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
        hs = curl_slist_append(hs, key);
        hs = curl_slist_append(hs, client);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hs);
        if (rc == CURLE_OK && status == 202 && b.data) {
            cJSON *j = cJSON_Parse(b.data);
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id"));
            if (id)
                snprintf(lc->ids[lc->accepted++], 27, "%s", id);
            cJSON_Delete(j);
        }
        fp_buf_free(&b);
        if (rc != CURLE_OK && sigterm_sent) {   /* the listener is closed: the service is going */
            lc->refused_after_stop++;
            break;
        }
    }
    curl_easy_cleanup(c);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(ingest, sigterm_under_load_loses_no_acknowledged_submission, .timeout = 180)
{
    enum { CLIENTS = 8 };
    static load_client clients[CLIENTS];
    pthread_t t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i].index = i;
        pthread_create(&t[i], NULL, load_client_run, &clients[i]);
    }
    usleep(1500 * 1000);
    sigterm_sent = 1;
    kill(ingest.pid, SIGTERM);
    int status = tk_wait(&ingest, 30);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(status, 0, "exit 0 after SIGTERM under load");
    int total = 0;
    for (int i = 0; i < CLIENTS; i++)
        total += clients[i].accepted;
    cr_assert_gt(total, 100, "the load was real (%d accepted before and during the stop)", total);
    /* every acknowledged id is on the topic */
    char (*want)[27] = calloc((size_t)total, 27);
    int n = 0;
    for (int i = 0; i < CLIENTS; i++)
        for (int k = 0; k < clients[i].accepted; k++)
            memcpy(want[n++], clients[i].ids[k], 27);
    qsort(want, (size_t)n, 27, cmp_id);
    char *seen = calloc((size_t)n, 1);
    int found = 0;
    rd_kafka_t *r = tk_kafka_reader(topic);
    double deadline = tk_now() + 60;
    while (found < n && tk_now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 500);
        if (m && !m->err) {
            fp_event ev = {0};
            fp_error err = {0};
            if (fp_event_parse(m->payload, m->len, &ev, &err) == 0) {
                char *hit = bsearch(ev.id, want, (size_t)n, 27, cmp_id);
                if (hit && !seen[(hit - (char *)want) / 27]) {
                    seen[(hit - (char *)want) / 27] = 1;
                    found++;
                }
            }
            fp_event_clear(&ev);
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    cr_log_info("%d submissions acknowledged around the SIGTERM, %d found on the topic", n, found);
    free(seen);
    free(want);
    cr_assert_eq(found, n, "every 202 is in Kafka (%d of %d found)", found, n);
}
