/* formpipe-ingest --forms-dir against the real Kafka of scripts/testenv: it serves every
 * form of a directory written the way the kubelet writes a mounted ConfigMap; a form
 * added at runtime is served (and its events land on its topic), a removed one answers
 * 404, a changed one is reloaded, a bad file is skipped - all without a restart. Each
 * form's own shared.ingest settings: its body limit (bounded by --max-body-bytes) and
 * its CORS origins. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testkit.h"

static char prefix[64], dir[64];
static tk_proc ingest;
static int port;

/* A form named <prefix>-<suffix> with one required text field (plus the extra fields,
 * JSON, may be ""), on topic (NULL: the default forms.tests.<name>), with shared (JSON,
 * may be NULL). */
static char *form_json(const char *suffix, int generation, const char *extra_fields, const char *topic,
                       const char *shared)
{
    char *out = malloc(4096), top[200] = "", sh[1024] = "";
    if (topic)
        snprintf(top, sizeof top, "\"topic\":\"%s\",", topic);
    if (shared)
        snprintf(sh, sizeof sh, ",\"shared\":%s", shared);
    snprintf(out, 4096,
             "{\"name\":\"%s-%s\",\"namespace\":\"tests\",\"generation\":%d,%s\"fields\":["
             "{\"name\":\"text\",\"type\":\"string\",\"required\":true,\"maxLength\":50000}%s]%s}",
             prefix, suffix, generation, top, extra_fields, sh);
    return out;
}

static void make_dir(void)
{
    tk_unique(prefix, sizeof prefix, "d");
    snprintf(dir, sizeof dir, "/tmp/fp-formsdir-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    if (ingest.pid)
        cr_expect_eq(tk_stop(&ingest, SIGTERM, 30), 0, "clean exit on SIGTERM");
    tk_sh(NULL, "rm -rf '%s'", dir);
}

/* POSTs body (JSON) to the form named <prefix>-<suffix>; the status, the id of a 202
 * into id (may be NULL), headers and body freed unless asked for. */
static long post(const char *suffix, const char *body, char *id, size_t idsz, const char *header, char **headers)
{
    char url[256], *answer = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/forms/%s-%s", port, prefix, suffix);
    long status = tk_http_request("POST", url, "application/json", body, header, headers, &answer);
    if (id) {
        cJSON *o = cJSON_Parse(answer);
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id"));
        snprintf(id, idsz, "%s", s ? s : "");
        cJSON_Delete(o);
    }
    free(answer);
    return status;
}

/* POSTs body to the form until it answers want (every 200 ms, up to timeout_s); the
 * seconds it took, or the test fails naming the last status. */
static double post_until(const char *suffix, const char *body, long want, double timeout_s)
{
    double start = tk_now();
    long status = 0;
    while (tk_now() - start < timeout_s) {
        if ((status = post(suffix, body, NULL, 0, NULL, NULL)) == want)
            return tk_now() - start;
        usleep(200 * 1000);
    }
    tk_show_log(&ingest);
    cr_assert_fail("form %s-%s: %ld within %.0f s, still %ld", prefix, suffix, want, timeout_s, status);
    return -1;
}

/* Reads topic from the start until an event with id arrives (30 s); 1 when it did. */
static int on_topic(const char *topic, const char *id)
{
    rd_kafka_t *r = tk_kafka_reader(topic);
    int found = 0;
    double deadline = tk_now() + 30;
    while (!found && tk_now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 500);
        found = m && !m->err && memmem(m->payload, m->len, id, strlen(id)) != NULL;
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    return found;
}

/* Posts a valid submission to the form and checks its event lands on the form's topic. */
static void accepted_onto_topic(const char *suffix)
{
    char id[64], topic[200];
    long status = post(suffix, "{\"text\":\"hello\"}", id, sizeof id, NULL, NULL);
    cr_assert_eq(status, 202, "form %s: a valid post gets 202, not %ld", suffix, status);
    snprintf(topic, sizeof topic, "forms.tests.%s-%s", prefix, suffix);
    cr_assert(on_topic(topic, id), "event %s of form %s is on %s", id, suffix, topic);
}

/* How many lines of the ingest's log hold text. */
static int log_count(const char *text)
{
    char *out = NULL;
    tk_sh(&out, "grep -cF '%s' '%s'", text, ingest.log);
    int n = out ? atoi(out) : -1;
    free(out);
    return n;
}

/* How often the ingest reloaded form <prefix>-<suffix>. */
static int reloads(const char *suffix)
{
    char text[160];
    snprintf(text, sizeof text, "\"msg\":\"form reloaded\",\"form\":\"%s-%s\"", prefix, suffix);
    return log_count(text);
}

TestSuite(ingest_dir, .init = make_dir, .fini = remove_dir, .timeout = 240);

Test(ingest_dir, forms_come_go_and_change_without_a_restart)
{
    char topic[200];
    const char *sfx[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        snprintf(topic, sizeof topic, "forms.tests.%s-%s", prefix, sfx[i]);
        tk_topic_create(topic, 1);
    }
    char *a = form_json("a", 1, "", NULL, NULL), *b = form_json("b", 1, "", NULL, NULL);
    char *c = form_json("c", 1, "", NULL, NULL);
    char *b2 = form_json("b", 2, ",{\"name\":\"email\",\"type\":\"email\",\"required\":true}", NULL, NULL);
    tk_kubelet_write(dir, (const char *[]){"a.json", "b.json"}, (const char *[]){a, b}, 2);
    port = tk_start_ingest(&ingest, NULL, "/readyz", (const char *const[]){"--forms-dir", dir, NULL});
    pid_t pid = ingest.pid;

    accepted_onto_topic("a");
    accepted_onto_topic("b");
    cr_assert_eq(post("c", "{\"text\":\"hello\"}", NULL, 0, NULL, NULL), 404, "c is not served yet");

    /* a third form is added: served within the rescan period, its events on its topic */
    tk_kubelet_write(dir, (const char *[]){"a.json", "b.json", "c.json"}, (const char *[]){a, b, c}, 3);
    double took = post_until("c", "{\"text\":\"hello\"}", 202, 10);
    cr_log_info("a form added to the directory was served after %.1f s", took);
    accepted_onto_topic("c");
    accepted_onto_topic("a");
    cr_assert_eq(reloads("a") + reloads("b"), 0, "the kubelet rewrote a and b with the same content: not reloaded");

    /* one is removed: 404 like an unknown form; the others go on */
    tk_kubelet_write(dir, (const char *[]){"b.json", "c.json"}, (const char *[]){b, c}, 2);
    post_until("a", "{\"text\":\"hello\"}", 404, 10);
    accepted_onto_topic("b");
    accepted_onto_topic("c");

    /* one changes (a new required field): reloaded */
    tk_kubelet_write(dir, (const char *[]){"b.json", "c.json"}, (const char *[]){b2, c}, 2);
    post_until("b", "{\"text\":\"hello\"}", 422, 10);
    cr_assert_eq(reloads("b"), 1, "b reloaded once");
    cr_assert_eq(reloads("c"), 0, "c did not change");
    cr_assert_eq(post("b", "{\"text\":\"hello\",\"email\":\"x@example.com\"}", NULL, 0, NULL, NULL), 202,
                 "the changed form takes its new field");

    /* a bad file is skipped and logged once; the others keep working */
    tk_kubelet_write(dir, (const char *[]){"b.json", "c.json", "d.json"},
                     (const char *[]){b2, c, "{\"name\": not json"}, 3);
    sleep(3);   /* three rescans */
    cr_assert_eq(log_count("form file cannot be used; skipped"), 1, "the bad file is logged once");
    accepted_onto_topic("c");
    cr_assert_eq(post("d", "{\"text\":\"hello\"}", NULL, 0, NULL, NULL), 404);

    /* still the same process, and its metrics are labelled by form */
    cr_assert_eq(ingest.pid, pid, "no restart");
    cr_assert_eq(kill(ingest.pid, 0), 0, "the ingest still runs");
    char *metrics = NULL, want[256];
    cr_assert_eq(tk_http_get(ingest.admin_port, "/metrics", &metrics), 200);
    snprintf(want, sizeof want, "formpipe_ingest_requests_total{form=\"%s-c\",status=\"202\"}", prefix);
    cr_assert_not_null(strstr(metrics, want), "/metrics has %s", want);
    free(metrics);

    /* every form gone: not ready (nothing to serve), still running */
    tk_kubelet_write(dir, NULL, NULL, 0);
    post_until("c", "{\"text\":\"hello\"}", 404, 10);
    cr_assert_eq(tk_http_get(port, "/readyz", NULL), 503, "no forms: not ready");
    for (int i = 0; i < 3; i++) {
        snprintf(topic, sizeof topic, "forms.tests.%s-%s", prefix, sfx[i]);
        tk_topic_delete(topic);
    }
    free(a);
    free(b);
    free(b2);
    free(c);
}

/* One ingest (--max-body-bytes 2048, --allowed-origin https://b.example) serving three
 * forms of one directory, each case one request. */
struct limit_case {
    const char *form;     /* small: maxBodyBytes 300, origins [https://a.example]
                           * big: maxBodyBytes 100000 (above the flag), origins []
                           * plain: no shared.ingest - the flags apply */
    const char *method;   /* POST: a valid body of `size` bytes; OPTIONS: a preflight */
    int size;
    const char *origin;   /* the Origin header, or NULL */
    long status;
    const char *granted;  /* the Access-Control-Allow-Origin expected, or NULL for none */
};

static struct limit_case limit_cases[] = {
    {"small", "POST", 200, NULL, 202, NULL},
    {"small", "POST", 301, NULL, 413, NULL},              /* the form's own limit */
    {"plain", "POST", 1000, NULL, 202, NULL},
    {"plain", "POST", 2049, NULL, 413, NULL},             /* --max-body-bytes */
    {"big", "POST", 2048, NULL, 202, NULL},
    {"big", "POST", 3000, NULL, 413, NULL},               /* bounded above by --max-body-bytes */
    {"small", "OPTIONS", 0, "https://a.example", 204, "https://a.example"},
    {"small", "OPTIONS", 0, "https://b.example", 204, NULL},   /* the form's list replaces the flag */
    {"small", "POST", 100, "https://a.example", 202, "https://a.example"},
    {"plain", "OPTIONS", 0, "https://b.example", 204, "https://b.example"},
    {"plain", "OPTIONS", 0, "https://a.example", 204, NULL},
    {"big", "OPTIONS", 0, "https://b.example", 204, NULL},     /* an empty list: no origin */
};

ParameterizedTestParameters(ingest_dir, per_form_settings)
{
    return cr_make_param_array(struct limit_case, limit_cases, sizeof limit_cases / sizeof limit_cases[0]);
}

ParameterizedTest(struct limit_case *lc, ingest_dir, per_form_settings)
{
    char topic[200];
    snprintf(topic, sizeof topic, "forms.tests.%s", prefix);
    tk_topic_create(topic, 1);
    char *small = form_json("small", 1, "", topic, "{\"ingest\":{\"maxBodyBytes\":300,\"allowedOrigins\":[\"https://a.example\"]}}");
    char *big = form_json("big", 1, "", topic, "{\"group\":\"g\",\"ingest\":{\"maxBodyBytes\":100000,\"allowedOrigins\":[]}}");
    char *plain = form_json("plain", 1, "", topic, NULL);
    tk_kubelet_write(dir, (const char *[]){"small.json", "big.json", "plain.json"},
                     (const char *[]){small, big, plain}, 3);
    port = tk_start_ingest(&ingest, NULL, "/readyz",
                           (const char *const[]){"--forms-dir", dir, "--max-body-bytes", "2048", "--allowed-origin",
                                                 "https://b.example", NULL});
    char origin[128], *headers = NULL, *body = NULL, url[256];
    if (lc->origin)
        snprintf(origin, sizeof origin, "Origin: %s", lc->origin);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/forms/%s-%s", port, prefix, lc->form);
    char *text = NULL;
    if (lc->size) {   /* {"text":"xxx..."}: exactly size bytes */
        text = malloc((size_t)lc->size + 1);
        int pad = lc->size - (int)strlen("{\"text\":\"\"}");
        snprintf(text, (size_t)lc->size + 1, "{\"text\":\"%0*d\"}", pad, 0);
        cr_assert_eq((int)strlen(text), lc->size);
    }
    long status = tk_http_request(lc->method, url, text ? "application/json" : NULL, text,
                                  lc->origin ? origin : NULL, &headers, &body);
    cr_expect_eq(status, lc->status, "%s %s (%d bytes, origin %s): %ld, want %ld: %s", lc->method, lc->form, lc->size,
                 lc->origin ? lc->origin : "-", status, lc->status, body);
    char want[160];
    snprintf(want, sizeof want, "access-control-allow-origin: %s", lc->granted ? lc->granted : "");
    if (lc->granted)
        cr_expect_not_null(strcasestr(headers, want), "%s %s from %s: grants %s: %s", lc->method, lc->form, lc->origin,
                           lc->granted, headers);
    else
        cr_expect_null(strcasestr(headers, "access-control-allow-origin"), "%s %s from %s: no grant: %s", lc->method,
                       lc->form, lc->origin ? lc->origin : "-", headers);
    if (lc->status == 413) {
        long limit = !strcmp(lc->form, "small") ? 300 : 2048;
        snprintf(want, sizeof want, "larger than %ld bytes", limit);
        cr_expect_not_null(strstr(body, want), "413 names the limit %ld: %s", limit, body);
    }
    free(text);
    free(headers);
    free(body);
    free(small);
    free(big);
    free(plain);
    tk_topic_delete(topic);
}

/* --form and --forms-dir: exactly one of them. */
struct cmdline_case { const char *args[8]; const char *says; };

static struct cmdline_case cmdlines[] = {
    {{"--kafka-bootstrap", "127.0.0.1:1", NULL}, "give --form (one or more) or --forms-dir, not both"},
    {{"--kafka-bootstrap", "127.0.0.1:1", "--form", "/etc/hostname", "--forms-dir", "/tmp"},
     "give --form (one or more) or --forms-dir, not both"},
    {{"--kafka-bootstrap", "127.0.0.1:1", "--forms-dir", "/tmp", "--kafka-message-timeout", "3s", "--delivery-timeout", "5s"},
     "--kafka-message-timeout (3000 ms) must be at least --delivery-timeout (5000 ms)"},
};

ParameterizedTestParameters(ingest_dir, conflicting_options)
{
    return cr_make_param_array(struct cmdline_case, cmdlines, sizeof cmdlines / sizeof cmdlines[0]);
}

ParameterizedTest(struct cmdline_case *cc, ingest_dir, conflicting_options)
{
    tk_proc p = {0};
    const char *argv[10] = {0};
    for (int i = 0; i < 8 && cc->args[i]; i++)
        argv[i] = cc->args[i];
    tk_start(&p, "formpipe-ingest", argv);
    int rc = tk_wait(&p, 10);
    cr_assert_eq(rc, 2, "a bad command line exits 2, not %d", rc);
    cr_assert_eq(tk_sh(NULL, "grep -qF -- '%s' '%s'", cc->says, p.log), 0, "the message says what to give: %s", cc->says);
    unlink(p.log);
}
