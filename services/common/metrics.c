/* metrics.c — see metrics.h. Values are doubles stored as bit patterns in 64-bit
 * atomics, so updates take no lock; the family lock only guards the series list. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } metric_kind;

struct fp_series {
    fp_metric *family;
    char **values;                 /* one per label name */
    _Atomic uint64_t value;        /* double bits: counter/gauge value, histogram sum */
    _Atomic uint64_t *buckets;     /* histogram: per-bucket (non-cumulative) counts, nbounds+1 */
};

struct fp_metric {
    fp_metrics *registry;
    metric_kind kind;
    char *name;
    char *help;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    pthread_mutex_t lock;
    fp_series **series;
    size_t nseries;
};

struct fp_metrics {
    pthread_mutex_t lock;
    fp_metric **metrics;
    size_t nmetrics;
    size_t max_series;
    _Atomic uint64_t dropped;
};

const double fp_metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const size_t fp_metrics_latency_nbuckets =
    sizeof fp_metrics_latency_buckets / sizeof fp_metrics_latency_buckets[0];

static uint64_t dbits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
static double bitsd(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

fp_metrics *fp_metrics_new(size_t max_series)
{
    fp_metrics *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->max_series = max_series;
    return r;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void series_free(fp_series *s, size_t nlabels)
{
    if (!s)
        return;
    free_strv(s->values, nlabels);
    free(s->buckets);
    free(s);
}

static void metric_free(fp_metric *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nseries; i++)
        series_free(m->series[i], m->nlabels);
    free(m->series);
    free_strv(m->labels, m->nlabels);
    free(m->bounds);
    free(m->name);
    free(m->help);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void fp_metrics_free(fp_metrics *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nmetrics; i++)
        metric_free(r->metrics[i]);
    free(r->metrics);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static int valid_name(const char *s, int allow_colon)
{
    if (!s || !*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static fp_metric *register_metric(fp_metrics *r, metric_kind kind, const char *name,
                                  const char *help, const char *const *labels,
                                  const double *bounds, size_t nbounds, fp_error *err)
{
    if (!valid_name(name, 1)) {
        fp_error_set(err, FP_EINVAL, "metric name '%s' is not a valid Prometheus name",
                     name ? name : "(null)");
        return NULL;
    }
    if (kind == KIND_COUNTER && !ends_with(name, "_total")) {
        fp_error_set(err, FP_EINVAL, "counter '%s' must end in _total", name);
        return NULL;
    }
    size_t nlabels = 0;
    while (labels && labels[nlabels]) {
        const char *l = labels[nlabels];
        if (!valid_name(l, 0) || strncmp(l, "__", 2) == 0 || (kind == KIND_HISTOGRAM && strcmp(l, "le") == 0)) {
            fp_error_set(err, FP_EINVAL, "metric '%s': label name '%s' is not allowed", name, l);
            return NULL;
        }
        nlabels++;
    }
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
            fp_error_set(err, FP_EINVAL, "histogram '%s': bucket bounds must be finite and increasing", name);
            return NULL;
        }
    }

    fp_metric *m = calloc(1, sizeof *m);
    if (!m)
        goto nomem;
    pthread_mutex_init(&m->lock, NULL);
    m->registry = r;
    m->kind = kind;
    m->nlabels = nlabels;
    m->nbounds = nbounds;
    if (!(m->name = strdup(name)) || !(m->help = strdup(help ? help : "")))
        goto nomem;
    if (nlabels) {
        if (!(m->labels = calloc(nlabels, sizeof *m->labels)))
            goto nomem;
        for (size_t i = 0; i < nlabels; i++) {
            if (!(m->labels[i] = strdup(labels[i])))
                goto nomem;
        }
    }
    if (nbounds) {
        if (!(m->bounds = malloc(nbounds * sizeof *m->bounds)))
            goto nomem;
        memcpy(m->bounds, bounds, nbounds * sizeof *m->bounds);
    }

    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nmetrics; i++) {
        if (strcmp(r->metrics[i]->name, name) == 0) {
            pthread_mutex_unlock(&r->lock);
            metric_free(m);
            fp_error_set(err, FP_EINVAL, "metric '%s' is already registered", name);
            return NULL;
        }
    }
    fp_metric **grown = realloc(r->metrics, (r->nmetrics + 1) * sizeof *grown);
    if (!grown) {
        pthread_mutex_unlock(&r->lock);
        goto nomem;
    }
    r->metrics = grown;
    r->metrics[r->nmetrics++] = m;
    pthread_mutex_unlock(&r->lock);
    return m;

nomem:
    metric_free(m);
    fp_error_set(err, FP_ENOMEM, "out of memory registering metric '%s'", name);
    return NULL;
}

fp_metric *fp_metrics_counter(fp_metrics *r, const char *name, const char *help,
                              const char *const *labels, fp_error *err)
{
    return register_metric(r, KIND_COUNTER, name, help, labels, NULL, 0, err);
}

fp_metric *fp_metrics_gauge(fp_metrics *r, const char *name, const char *help,
                            const char *const *labels, fp_error *err)
{
    return register_metric(r, KIND_GAUGE, name, help, labels, NULL, 0, err);
}

fp_metric *fp_metrics_histogram(fp_metrics *r, const char *name, const char *help,
                                const char *const *labels, const double *bounds,
                                size_t nbounds, fp_error *err)
{
    return register_metric(r, KIND_HISTOGRAM, name, help, labels, bounds, nbounds, err);
}

static int same_values(const fp_series *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
            return 0;
    }
    return 1;
}

static fp_series *series_new(fp_metric *m, const char *const *values)
{
    fp_series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->family = m;
    if (m->nlabels && !(s->values = calloc(m->nlabels, sizeof *s->values)))
        goto fail;
    for (size_t i = 0; i < m->nlabels; i++) {
        if (!(s->values[i] = strdup(values[i] ? values[i] : "")))
            goto fail;
    }
    if (m->kind == KIND_HISTOGRAM && !(s->buckets = calloc(m->nbounds + 1, sizeof *s->buckets)))
        goto fail;
    return s;
fail:
    series_free(s, m->nlabels);
    return NULL;
}

fp_series *fp_metric_series(fp_metric *m, const char *const *values)
{
    fp_series *found = NULL;
    if (!m || (m->nlabels && !values))
        return NULL;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nseries && !found; i++) {
        if (same_values(m->series[i], values, m->nlabels))
            found = m->series[i];
    }
    if (!found && m->nseries < m->registry->max_series) {
        fp_series **grown = realloc(m->series, (m->nseries + 1) * sizeof *grown);
        if (grown) {
            m->series = grown;
            if ((found = series_new(m, values)))
                m->series[m->nseries++] = found;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (!found)
        atomic_fetch_add(&m->registry->dropped, 1);
    return found;
}

int fp_metrics_gauges(fp_metrics *r, const fp_metric_def *defs, size_t n, const char *const *labels,
                      fp_metric **out, fp_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = fp_metrics_gauge(r, defs[i].name, defs[i].help, labels, err)))
            return err->code ? err->code : FP_ENOMEM;
    return 0;
}

void fp_metric_put(fp_metric *m, const char *const *values, double v)
{
    if (v < 0)
        fp_metric_forget(m, values);
    else
        fp_series_set(fp_metric_series(m, values), v);
}

int fp_metric_forget(fp_metric *m, const char *const *values)
{
    fp_series *gone = NULL;
    if (!m || (m->nlabels && !values))
        return 0;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nseries && !gone; i++) {
        if (same_values(m->series[i], values, m->nlabels)) {
            gone = m->series[i];
            m->series[i] = m->series[--m->nseries];
        }
    }
    pthread_mutex_unlock(&m->lock);
    series_free(gone, m->nlabels);
    return gone != NULL;
}

void fp_series_inc(fp_series *s) { fp_series_add(s, 1); }

void fp_series_add(fp_series *s, double v)
{
    if (!s || s->family->kind == KIND_HISTOGRAM)
        return;
    if (s->family->kind == KIND_COUNTER && !(v >= 0))
        return;   /* counters only go up */
    atomic_add_double(&s->value, v);
}

void fp_series_set(fp_series *s, double v)
{
    if (!s || s->family->kind != KIND_GAUGE)
        return;
    atomic_store_explicit(&s->value, dbits(v), memory_order_relaxed);
}

void fp_series_observe(fp_series *s, double v)
{
    if (!s || s->family->kind != KIND_HISTOGRAM || isnan(v))
        return;
    const fp_metric *m = s->family;
    size_t i = 0;
    while (i < m->nbounds && v > m->bounds[i])
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&s->value, v);
}

double fp_series_value(const fp_series *s)
{
    if (!s)
        return 0;
    if (s->family->kind != KIND_HISTOGRAM)
        return bitsd(atomic_load_explicit(&((fp_series *)s)->value, memory_order_relaxed));
    uint64_t count = 0;
    for (size_t i = 0; i <= s->family->nbounds; i++)
        count += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    return (double)count;
}

/* Shortest text that reads back as the same double; Prometheus spellings of specials. */
static int add_number(fp_buf *b, double v)
{
    char tmp[40];
    if (isnan(v))
        return fp_buf_adds(b, "NaN");
    if (isinf(v))
        return fp_buf_adds(b, v > 0 ? "+Inf" : "-Inf");
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof tmp, "%.17g", v);
    return fp_buf_adds(b, tmp);
}

/* Label values escape backslash, double quote and newline; HELP escapes backslash and
 * newline. */
static int add_escaped(fp_buf *b, const char *s, int quotes)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        if (*s == '\\')
            rc = fp_buf_adds(b, "\\\\");
        else if (*s == '\n')
            rc = fp_buf_adds(b, "\\n");
        else if (quotes && *s == '"')
            rc = fp_buf_adds(b, "\\\"");
        else
            rc = fp_buf_add(b, s, 1);
    }
    return rc;
}

/* Writes name{labels[,le="x"]} */
static int add_series_name(fp_buf *b, const fp_metric *m, const fp_series *s,
                           const char *suffix, const double *le)
{
    int rc = fp_buf_printf(b, "%s%s", m->name, suffix);
    if (rc || (m->nlabels == 0 && !le))
        return rc;
    rc = fp_buf_adds(b, "{");
    for (size_t i = 0; i < m->nlabels && !rc; i++) {
        rc = fp_buf_printf(b, "%s%s=\"", i ? "," : "", m->labels[i]);
        if (!rc)
            rc = add_escaped(b, s->values[i], 1);
        if (!rc)
            rc = fp_buf_adds(b, "\"");
    }
    if (!rc && le) {
        rc = fp_buf_printf(b, "%sle=\"", m->nlabels ? "," : "");
        if (!rc)
            rc = add_number(b, *le);
        if (!rc)
            rc = fp_buf_adds(b, "\"");
    }
    if (!rc)
        rc = fp_buf_adds(b, "}");
    return rc;
}

static int render_series(fp_buf *b, const fp_metric *m, fp_series *s)
{
    int rc;
    if (m->kind != KIND_HISTOGRAM) {
        rc = add_series_name(b, m, s, "", NULL);
        if (!rc)
            rc = fp_buf_adds(b, " ");
        if (!rc)
            rc = add_number(b, bitsd(atomic_load_explicit(&s->value, memory_order_relaxed)));
        return rc ? rc : fp_buf_adds(b, "\n");
    }
    uint64_t cumulative = 0;
    rc = 0;
    for (size_t i = 0; i <= m->nbounds && !rc; i++) {
        double le = i < m->nbounds ? m->bounds[i] : INFINITY;
        cumulative += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        rc = add_series_name(b, m, s, "_bucket", &le);
        if (!rc)
            rc = fp_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
    }
    if (!rc)
        rc = add_series_name(b, m, s, "_sum", NULL);
    if (!rc)
        rc = fp_buf_adds(b, " ");
    if (!rc)
        rc = add_number(b, bitsd(atomic_load_explicit(&s->value, memory_order_relaxed)));
    if (!rc)
        rc = fp_buf_adds(b, "\n");
    if (!rc)
        rc = add_series_name(b, m, s, "_count", NULL);
    if (!rc)
        rc = fp_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
    return rc;
}

static const char *kind_name(metric_kind k)
{
    return k == KIND_COUNTER ? "counter" : k == KIND_GAUGE ? "gauge" : "histogram";
}

static int render_metric(fp_buf *b, fp_metric *m)
{
    int rc = fp_buf_printf(b, "# HELP %s ", m->name);
    if (!rc)
        rc = add_escaped(b, m->help, 0);
    if (!rc)
        rc = fp_buf_printf(b, "\n# TYPE %s %s\n", m->name, kind_name(m->kind));
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nseries && !rc; i++)
        rc = render_series(b, m, m->series[i]);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int fp_metrics_render(fp_metrics *r, fp_buf *out)
{
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nmetrics && !rc; i++)
        rc = render_metric(out, r->metrics[i]);
    pthread_mutex_unlock(&r->lock);
    if (!rc)
        rc = fp_buf_printf(out,
                           "# HELP formpipe_metrics_series_dropped_total Metric updates ignored "
                           "because a metric reached its label-combination limit.\n"
                           "# TYPE formpipe_metrics_series_dropped_total counter\n"
                           "formpipe_metrics_series_dropped_total %llu\n",
                           (unsigned long long)atomic_load(&r->dropped));
    return rc;
}
