/* Unit tests for services/common/metrics: exact exposition text, promtool's verdict,
 * concurrency, limits. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

static char *render(fp_metrics *r)
{
    fp_buf b;
    fp_buf_init(&b, 1 << 20);
    cr_assert_eq(fp_metrics_render(r, &b), 0);
    return fp_buf_take(&b);
}

Test(metrics, renders_the_text_format_exactly)
{
    fp_metrics *r = fp_metrics_new(100);
    const char *labels[] = {"form", "status", NULL};
    fp_metric *req = fp_metrics_counter(r, "formpipe_requests_total", "Requests by form and status.", labels, NULL);
    fp_metric *depth = fp_metrics_gauge(r, "formpipe_queue_depth", "Queue depth.", NULL, NULL);
    const double bounds[] = {0.01, 0.1};
    fp_metric *lat = fp_metrics_histogram(r, "formpipe_latency_seconds", "Latency.", NULL, bounds, 2, NULL);
    cr_assert(req && depth && lat);

    fp_series_add(fp_metric_series(req, (const char *[]){"a\"b", "202"}), 3);
    fp_series_inc(fp_metric_series(req, (const char *[]){"x\\y\nz", "422"}));
    fp_series_set(fp_metric_series(depth, NULL), 7.5);
    fp_series *h = fp_metric_series(lat, NULL);
    fp_series_observe(h, 0.005);
    fp_series_observe(h, 0.05);
    fp_series_observe(h, 0.05);
    fp_series_observe(h, 3);

    char *text = render(r);
    const char *want =
        "# HELP formpipe_requests_total Requests by form and status.\n"
        "# TYPE formpipe_requests_total counter\n"
        "formpipe_requests_total{form=\"a\\\"b\",status=\"202\"} 3\n"
        "formpipe_requests_total{form=\"x\\\\y\\nz\",status=\"422\"} 1\n"
        "# HELP formpipe_queue_depth Queue depth.\n"
        "# TYPE formpipe_queue_depth gauge\n"
        "formpipe_queue_depth 7.5\n"
        "# HELP formpipe_latency_seconds Latency.\n"
        "# TYPE formpipe_latency_seconds histogram\n"
        "formpipe_latency_seconds_bucket{le=\"0.01\"} 1\n"
        "formpipe_latency_seconds_bucket{le=\"0.1\"} 3\n"
        "formpipe_latency_seconds_bucket{le=\"+Inf\"} 4\n"
        "formpipe_latency_seconds_sum 3.105\n"
        "formpipe_latency_seconds_count 4\n"
        "# HELP formpipe_metrics_series_dropped_total Metric updates ignored because a metric "
        "reached its label-combination limit.\n"
        "# TYPE formpipe_metrics_series_dropped_total counter\n"
        "formpipe_metrics_series_dropped_total 0\n";
    cr_assert_str_eq(text, want);
    free(text);
    fp_metrics_free(r);
}

Test(metrics, promtool_accepts_the_output)
{
    fp_metrics *r = fp_metrics_new(100);
    const char *labels[] = {"form", "rule", NULL};
    fp_metric *c = fp_metrics_counter(r, "formpipe_validation_failures_total",
                                      "Validation failures by form and rule.", labels, NULL);
    fp_metric *g = fp_metrics_gauge(r, "formpipe_inflight_requests", "In-flight requests.", NULL, NULL);
    fp_metric *h = fp_metrics_histogram(r, "formpipe_delivery_seconds", "Kafka delivery latency.",
                                        (const char *[]){"form", NULL}, fp_metrics_latency_buckets,
                                        fp_metrics_latency_nbuckets, NULL);
    cr_assert(c && g && h);
    fp_series_add(fp_metric_series(c, (const char *[]){"student-data", "maxLength"}), 2);
    fp_series_add(fp_metric_series(c, (const char *[]){"weird \"form\"\n", "pattern"}), 1);
    fp_series_set(fp_metric_series(g, NULL), -1.25);
    for (int i = 0; i < 100; i++)
        fp_series_observe(fp_metric_series(h, (const char *[]){"student-data"}), i / 100.0);

    char path[] = "/tmp/fp-metrics-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    char *text = render(r);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "promtool must be installed (scripts/install-deps)");
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(path);
    cr_assert_eq(status, 0, "promtool check metrics failed (status %d):\n%s\n--- input ---\n%s",
                 status, out, text);
    free(text);
    fp_metrics_free(r);
}

struct bad_name { int kind; const char *name; const char *label; const char *msg; };

static struct bad_name bad_names[] = {
    {0, "requests", NULL, "must end in _total"},
    {0, "9lives_total", NULL, "not a valid Prometheus name"},
    {1, "has-dash", NULL, "not a valid Prometheus name"},
    {1, "ok_gauge", "bad-label", "label name 'bad-label'"},
    {1, "ok_gauge", "__reserved", "label name '__reserved'"},
    {2, "ok_hist", "le", "label name 'le'"},
    {1, "", NULL, "not a valid Prometheus name"},
};

ParameterizedTestParameters(metrics, bad_names_are_refused)
{
    return cr_make_param_array(struct bad_name, bad_names, sizeof bad_names / sizeof bad_names[0]);
}

ParameterizedTest(struct bad_name *c, metrics, bad_names_are_refused)
{
    fp_metrics *r = fp_metrics_new(10);
    fp_error err = {0};
    const char *labels[] = {c->label, NULL};
    fp_metric *m = c->kind == 0 ? fp_metrics_counter(r, c->name, "h", labels, &err)
                 : c->kind == 1 ? fp_metrics_gauge(r, c->name, "h", labels, &err)
                 : fp_metrics_histogram(r, c->name, "h", labels, (double[]){1}, 1, &err);
    cr_assert_null(m, "%s should be refused", c->name);
    cr_assert_eq(err.code, FP_EINVAL);
    cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
    fp_metrics_free(r);
}

Test(metrics, duplicate_names_and_bad_buckets_are_refused)
{
    fp_metrics *r = fp_metrics_new(10);
    fp_error err = {0};
    cr_assert_not_null(fp_metrics_gauge(r, "g", "h", NULL, &err));
    cr_assert_null(fp_metrics_gauge(r, "g", "h", NULL, &err));
    cr_assert_not_null(strstr(err.msg, "already registered"));
    cr_assert_null(fp_metrics_histogram(r, "h", "h", NULL, (double[]){2, 1}, 2, &err));
    cr_assert_not_null(strstr(err.msg, "increasing"));
    fp_metrics_free(r);
}

Test(metrics, series_limit_is_enforced_and_counted)
{
    fp_metrics *r = fp_metrics_new(2);
    fp_metric *c = fp_metrics_counter(r, "x_total", "h", (const char *[]){"k", NULL}, NULL);
    cr_assert_not_null(fp_metric_series(c, (const char *[]){"a"}));
    cr_assert_not_null(fp_metric_series(c, (const char *[]){"b"}));
    cr_assert_not_null(fp_metric_series(c, (const char *[]){"a"}), "existing series still found");
    fp_series *third = fp_metric_series(c, (const char *[]){"c"});
    cr_assert_null(third, "a third label value exceeds max_series=2");
    fp_series_inc(third);   /* ignored, not a crash */
    char *text = render(r);
    cr_assert_not_null(strstr(text, "formpipe_metrics_series_dropped_total 1\n"), "%s", text);
    cr_assert_null(strstr(text, "k=\"c\""));
    free(text);
    fp_metrics_free(r);
}

Test(metrics, a_forgotten_series_is_gone_and_frees_its_slot)
{
    fp_metrics *r = fp_metrics_new(2);
    fp_metric *g = fp_metrics_gauge(r, "pipeline_lag", "h", (const char *[]){"pipeline", NULL}, NULL);
    fp_series_set(fp_metric_series(g, (const char *[]){"a"}), 5);
    fp_series_set(fp_metric_series(g, (const char *[]){"b"}), 7);
    cr_assert_eq(fp_metric_forget(g, (const char *[]){"a"}), 1);
    cr_assert_eq(fp_metric_forget(g, (const char *[]){"a"}), 0, "already gone");
    char *text = render(r);
    cr_assert_null(strstr(text, "pipeline=\"a\""), "%s", text);
    cr_assert_not_null(strstr(text, "pipeline_lag{pipeline=\"b\"} 7\n"), "%s", text);
    free(text);
    cr_assert_not_null(fp_metric_series(g, (const char *[]){"c"}), "the slot is free again (max_series=2)");
    fp_metrics_free(r);
}

Test(metrics, counters_only_go_up_and_kinds_ignore_foreign_updates)
{
    fp_metrics *r = fp_metrics_new(10);
    fp_series *c = fp_metric_series(fp_metrics_counter(r, "c_total", "h", NULL, NULL), NULL);
    fp_series *g = fp_metric_series(fp_metrics_gauge(r, "g", "h", NULL, NULL), NULL);
    fp_series_add(c, 5);
    fp_series_add(c, -2);
    fp_series_set(c, 100);
    cr_assert_float_eq(fp_series_value(c), 5, 1e-9);
    fp_series_add(g, -2);
    fp_series_observe(g, 1);
    cr_assert_float_eq(fp_series_value(g), -2, 1e-9);
    fp_metrics_free(r);
}

#define THREADS 4
#define PER_THREAD 100000

static void *hammer(void *arg)
{
    fp_metric **m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        fp_series_inc(fp_metric_series(m[0], (const char *[]){i % 2 ? "odd" : "even"}));
        fp_series_observe(fp_metric_series(m[1], NULL), 0.5);
    }
    return NULL;
}

Test(metrics, concurrent_updates_are_exact)
{
    fp_metrics *r = fp_metrics_new(10);
    fp_metric *m[2] = {
        fp_metrics_counter(r, "hits_total", "h", (const char *[]){"parity", NULL}, NULL),
        fp_metrics_histogram(r, "obs", "h", NULL, (double[]){1}, 1, NULL),
    };
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer, m);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    double even = fp_series_value(fp_metric_series(m[0], (const char *[]){"even"}));
    double odd = fp_series_value(fp_metric_series(m[0], (const char *[]){"odd"}));
    cr_assert_float_eq(even + odd, THREADS * PER_THREAD, 0.5);
    cr_assert_float_eq(even, THREADS * PER_THREAD / 2, 0.5);
    cr_assert_float_eq(fp_series_value(fp_metric_series(m[1], NULL)), THREADS * PER_THREAD, 0.5);
    char *text = render(r);
    char want[128];
    snprintf(want, sizeof want, "obs_sum %d\n", THREADS * PER_THREAD / 2);
    cr_assert_not_null(strstr(text, want), "%s", text);
    free(text);
    fp_metrics_free(r);
}
