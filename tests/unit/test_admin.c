/* Unit tests for services/common/admin: the /healthz, /readyz and /metrics endpoints
 * served by our own in-process server on loopback (no external server). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "buf.h"

static atomic_int ready_flag;

static int ready(void *ctx, char *why, size_t whysz)
{
    (void)ctx;
    if (atomic_load(&ready_flag))
        return 1;
    snprintf(why, whysz, "kafka unreachable");
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    return fp_buf_add(userdata, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
    return fp_buf_add(userdata, p, size * n) == 0 ? size * n : 0;
}

struct answer { long status; char *body; char *headers; };

static struct answer request(int port, const char *method, const char *path)
{
    char url[128];
    fp_buf body, headers;
    fp_buf_init(&body, 16 << 20);
    fp_buf_init(&headers, 1 << 16);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &headers);
    struct answer a = {0, NULL, NULL};
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "request to %s", url);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_easy_cleanup(c);
    a.body = fp_buf_take(&body);
    a.headers = fp_buf_take(&headers);
    return a;
}

static void answer_free(struct answer *a)
{
    free(a->body);
    free(a->headers);
}

Test(admin, serves_health_readiness_and_metrics)
{
    fp_metrics *m = fp_metrics_new(10);
    fp_series_add(fp_metric_series(fp_metrics_counter(m, "formpipe_things_total", "Things.", NULL, NULL), NULL), 42);
    fp_error err = {0};
    fp_admin *a = fp_admin_start("127.0.0.1", 0, m, ready, NULL, &err);
    cr_assert_not_null(a, "%s", err.msg);
    int port = fp_admin_port(a);
    cr_assert_gt(port, 0);

    struct answer r = request(port, "GET", "/healthz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok\n");
    answer_free(&r);

    atomic_store(&ready_flag, 0);
    r = request(port, "GET", "/readyz");
    cr_assert_eq(r.status, 503, "not ready yet");
    cr_assert_str_eq(r.body, "not ready: kafka unreachable\n");
    answer_free(&r);
    atomic_store(&ready_flag, 1);
    r = request(port, "GET", "/readyz");
    cr_assert_eq(r.status, 200);
    answer_free(&r);

    r = request(port, "GET", "/metrics");
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "\nformpipe_things_total 42\n"), "%s", r.body);
    cr_assert_not_null(strstr(r.headers, "text/plain; version=0.0.4"), "%s", r.headers);
    answer_free(&r);

    fp_admin_stop(a);
    fp_metrics_free(m);
}

struct route_case { const char *method, *path; long status; const char *header; };

static struct route_case routes[] = {
    {"GET", "/nope", 404, NULL},
    {"GET", "/", 404, NULL},
    {"POST", "/metrics", 405, "allow: GET"},
    {"DELETE", "/healthz", 405, "allow: GET"},
};

ParameterizedTestParameters(admin, other_routes_and_methods)
{
    return cr_make_param_array(struct route_case, routes, sizeof routes / sizeof routes[0]);
}

ParameterizedTest(struct route_case *c, admin, other_routes_and_methods)
{
    fp_metrics *m = fp_metrics_new(10);
    fp_admin *a = fp_admin_start("127.0.0.1", 0, m, NULL, NULL, NULL);
    cr_assert_not_null(a);
    struct answer r = request(fp_admin_port(a), c->method, c->path);
    cr_assert_eq(r.status, c->status, "%s %s", c->method, c->path);
    if (c->header)
        cr_assert_not_null(strcasestr(r.headers, c->header), "%s", r.headers);
    answer_free(&r);
    fp_admin_stop(a);
    fp_metrics_free(m);
}

Test(admin, a_taken_port_is_a_clear_error)
{
    fp_metrics *m = fp_metrics_new(10);
    fp_admin *a = fp_admin_start("127.0.0.1", 0, m, NULL, NULL, NULL);
    cr_assert_not_null(a);
    fp_error err = {0};
    cr_assert_null(fp_admin_start("127.0.0.1", fp_admin_port(a), m, NULL, NULL, &err));
    cr_assert_not_null(strstr(err.msg, "cannot listen on 127.0.0.1:"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "Address already in use"), "%s", err.msg);
    cr_assert_null(fp_admin_start("localhost-ish", 9999, m, NULL, NULL, &err));
    cr_assert_not_null(strstr(err.msg, "'localhost-ish' is not an IPv4 address"), "%s", err.msg);
    fp_admin_stop(a);
    fp_metrics_free(m);
}

/* fp_admin_route, the router every binary uses (the admin port, the ingest's own port). */
struct router_case {
    const char *path;
    int ready, with_metrics;
    size_t max_metrics_bytes;
    int routed;
    long status;
    const char *ctype, *body;   /* body: a part of the answer */
};

static struct router_case router_cases[] = {
    {"/healthz", 1, 1, 0, 1, 200, "text/plain; charset=utf-8", "ok\n"},
    {"/readyz", 1, 1, 0, 1, 200, "text/plain; charset=utf-8", "ok\n"},
    {"/readyz", 0, 1, 0, 1, 503, "text/plain; charset=utf-8", "not ready: kafka unreachable\n"},
    {"/metrics", 1, 1, 0, 1, 200, "text/plain; version=0.0.4; charset=utf-8", "\nformpipe_refreshed 7\n"},
    {"/metrics", 1, 1, 16, 1, 500, "application/json", "{\"error\":\"metrics too large to render\"}"},
    {"/metrics", 1, 0, 0, 0, 0, NULL, NULL},
    {"/nope", 1, 1, 0, 0, 0, NULL, NULL},
    {"/healthz/", 1, 1, 0, 0, 0, NULL, NULL},
};

ParameterizedTestParameters(admin, router)
{
    return cr_make_param_array(struct router_case, router_cases, sizeof router_cases / sizeof router_cases[0]);
}

/* The refresh callback: sets the gauge it is given, as the ingest sets its queue length. */
static void refresh(void *ctx) { fp_series_set(ctx, 7); }

ParameterizedTest(struct router_case *c, admin, router)
{
    fp_metrics *m = fp_metrics_new(10);
    fp_series *g = fp_metric_series(fp_metrics_gauge(m, "formpipe_refreshed", "Set at render.", NULL, NULL), NULL);
    atomic_store(&ready_flag, c->ready);
    fp_admin_routes routes = {.metrics = c->with_metrics ? m : NULL, .ready = ready, .ctx = g,
                              .refresh = refresh, .max_metrics_bytes = c->max_metrics_bytes};
    fp_admin_answer a = {0};
    cr_assert_eq(fp_admin_route(&routes, c->path, &a), c->routed, "%s routed", c->path);
    if (c->routed) {
        cr_assert_eq(a.status, c->status, "%s: status %d", c->path, a.status);
        cr_assert_str_eq(a.ctype, c->ctype, "%s", c->path);
        cr_assert_not_null(a.body, "%s", c->path);
        cr_assert_eq(a.len, strlen(a.body), "%s: len", c->path);
        cr_assert_not_null(strstr(a.body, c->body), "%s: expected %s in %s", c->path, c->body, a.body);
    }
    free(a.body);
    fp_metrics_free(m);
}
