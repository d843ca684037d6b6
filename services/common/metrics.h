/* metrics.h — Prometheus counters, gauges and histograms with labels, safe to update
 * from any thread, rendered in the text exposition format (version 0.0.4). */
#ifndef FP_METRICS_H
#define FP_METRICS_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

typedef struct fp_metrics fp_metrics;   /* a registry; owns its metrics and series */
typedef struct fp_metric fp_metric;     /* one metric family (name, help, label names) */
typedef struct fp_series fp_series;     /* one label-value combination of a family */

/* Creates a registry in which each metric holds at most max_series label
 * combinations (a guard against unbounded label values). NULL on ENOMEM. */
fp_metrics *fp_metrics_new(size_t max_series);
void fp_metrics_free(fp_metrics *r);    /* NULL is fine; frees every metric and series */

/* Registers a family. labels is a NULL-terminated list of label names (NULL for
 * none). Counter names must end in "_total". Returns NULL and fills *err for a bad
 * or duplicate name. The registry owns the result. */
fp_metric *fp_metrics_counter(fp_metrics *r, const char *name, const char *help,
                              const char *const *labels, fp_error *err);
fp_metric *fp_metrics_gauge(fp_metrics *r, const char *name, const char *help,
                            const char *const *labels, fp_error *err);
/* bounds: nbounds strictly increasing finite upper bounds; +Inf is implicit. */
fp_metric *fp_metrics_histogram(fp_metrics *r, const char *name, const char *help,
                                const char *const *labels, const double *bounds,
                                size_t nbounds, fp_error *err);

/* A family's name and help, for registering several alike. */
typedef struct fp_metric_def {
    const char *name, *help;
} fp_metric_def;

/* Registers n gauges with the same label names (NULL-terminated) into out[0..n-1].
 * 0, or negative with *err. */
int fp_metrics_gauges(fp_metrics *r, const fp_metric_def *defs, size_t n, const char *const *labels,
                      fp_metric **out, fp_error *err);

/* Returns the series for these label values (one per label name; NULL for a family
 * without labels), creating it at zero. Returns NULL when the family already holds
 * max_series combinations; updates through a NULL series are ignored and counted in
 * formpipe_metrics_series_dropped_total. Cache the result on hot paths. */
fp_series *fp_metric_series(fp_metric *m, const char *const *values);

/* Removes the series with these label values (a pipeline that is gone) so it is no
 * longer rendered. Pointers to it must not be used afterwards. 1 if it was there. */
int fp_metric_forget(fp_metric *m, const char *const *values);

/* A gauge that may be unknown: sets the series to v, or forgets it when v < 0 (so an
 * unmeasured value is absent rather than a misleading 0). */
void fp_metric_put(fp_metric *m, const char *const *values, double v);

void fp_series_inc(fp_series *s);                 /* counter or gauge: +1 */
void fp_series_add(fp_series *s, double v);       /* counter: v >= 0; gauge: any */
void fp_series_set(fp_series *s, double v);       /* gauge only */
void fp_series_observe(fp_series *s, double v);   /* histogram only */
double fp_series_value(const fp_series *s);       /* counter/gauge value; histogram count */

/* Appends the whole registry in the text exposition format. 0 or FP_ELIMIT/FP_ENOMEM. */
int fp_metrics_render(fp_metrics *r, fp_buf *out);

/* Default latency buckets in seconds (1 ms .. 10 s). */
extern const double fp_metrics_latency_buckets[];
extern const size_t fp_metrics_latency_nbuckets;

#endif
