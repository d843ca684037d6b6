/* pipemetrics.c — see pipemetrics.h. */
#include "pipemetrics.h"

#include <stdlib.h>

#include "rfc3339.h"

enum { G_LAG, G_READY, G_PROGRESSING, G_ROWS_WAITING, G_LAST_SUCCESS, G_LAST_ROWS, G_FAILED_RUNS, G_DEAD, G_OLDEST, G_QUOTA_WAIT, G_THROTTLED, G_COUNT };

static const fp_metric_def families[G_COUNT] = {
    [G_LAG] = {"formpipe_pipeline_lag", "Events in Kafka the pipeline's consumer group has not committed."},
    [G_READY] = {"formpipe_pipeline_ready", "1 while the pipeline's Ready condition is True."},
    [G_PROGRESSING] = {"formpipe_pipeline_progressing", "1 while Progressing is True, 0 while False (absent: not measured yet)."},
    [G_ROWS_WAITING] = {"formpipe_pipeline_rows_waiting", "Rows the newest flush run left in the Redis buffer."},
    [G_LAST_SUCCESS] = {"formpipe_pipeline_flush_last_success_timestamp_seconds", "When a flush run last succeeded (Unix time)."},
    [G_LAST_ROWS] = {"formpipe_pipeline_flush_last_run_rows", "Rows the newest finished flush run wrote."},
    [G_FAILED_RUNS] = {"formpipe_pipeline_flush_failed_runs", "Newest flush runs that failed in a row."},
    [G_DEAD] = {"formpipe_pipeline_dead_letters", "Events set aside on the dead-letter topic since it was created."},
    [G_OLDEST] = {"formpipe_pipeline_oldest_waiting_row_timestamp_seconds",
                  "When the oldest row the newest flush run left in the buffer was submitted (Unix time; absent: none waits)."},
    [G_QUOTA_WAIT] = {"formpipe_pipeline_flush_last_run_quota_wait_seconds",
                      "Time the newest flush run spent waiting for the Google Sheets write quota (pacing and after 429)."},
    [G_THROTTLED] = {"formpipe_pipeline_flush_last_run_throttled", "Answers 429 (quota exceeded) the newest flush run got from Sheets."},
};

struct op_pipemetrics {
    fp_metric *g[G_COUNT];
    fp_metric *rows;   /* counter: rows written by flush runs */
};

op_pipemetrics *op_pipemetrics_new(fp_metrics *m, fp_error *err)
{
    static const char *const labels[] = {"namespace", "pipeline", NULL};
    op_pipemetrics *pm = calloc(1, sizeof *pm);
    if (!pm) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    if (fp_metrics_gauges(m, families, G_COUNT, labels, pm->g, err) < 0 ||
        !(pm->rows = fp_metrics_counter(m, "formpipe_pipeline_flush_rows_total",
                                        "Rows flush runs wrote to the sheet (counted when the operator records the run).",
                                        labels, err))) {
        free(pm);
        return NULL;
    }
    return pm;
}

void op_pipemetrics_free(op_pipemetrics *pm)
{
    free(pm);
}

void op_pipemetrics_set(op_pipemetrics *pm, const char *ns, const char *name, const op_observed *o,
                        const op_condition cond[OP_C_COUNT])
{
    const char *const labels[] = {ns, name};
    const op_flush_facts *f = o->flush;
    long long success_ms = -1000;
    if (f->last_success[0])
        fp_rfc3339_parse_ms(f->last_success, &success_ms);
    fp_metric_put(pm->g[G_LAG], labels, (double)o->lag);
    fp_metric_put(pm->g[G_READY], labels, cond[OP_C_READY].status == 1);
    fp_metric_put(pm->g[G_PROGRESSING], labels, cond[OP_C_PROGRESSING].status);   /* -1 Unknown: absent */
    fp_metric_put(pm->g[G_ROWS_WAITING], labels, (double)f->rows_waiting);
    fp_metric_put(pm->g[G_LAST_SUCCESS], labels, (double)success_ms / 1000.0);
    fp_metric_put(pm->g[G_LAST_ROWS], labels, (double)f->last_rows);
    fp_metric_put(pm->g[G_FAILED_RUNS], labels, f->runs ? f->failures_in_a_row : -1);
    fp_metric_put(pm->g[G_DEAD], labels, (double)o->dead_letters);
    fp_metric_put(pm->g[G_OLDEST], labels, f->oldest_waiting_ms < 0 ? -1 : (double)f->oldest_waiting_ms / 1000.0);
    fp_metric_put(pm->g[G_QUOTA_WAIT], labels, f->quota_wait_ms < 0 ? -1 : (double)f->quota_wait_ms / 1000.0);
    fp_metric_put(pm->g[G_THROTTLED], labels, (double)f->throttled);
}

void op_pipemetrics_flush_rows(op_pipemetrics *pm, const char *ns, const char *name, long long rows)
{
    const char *const labels[] = {ns, name};
    if (pm && rows > 0)
        fp_series_add(fp_metric_series(pm->rows, labels), (double)rows);
}

void op_pipemetrics_forget(op_pipemetrics *pm, const char *ns, const char *name)
{
    const char *const labels[] = {ns, name};
    fp_metric_forget(pm->rows, labels);
    for (int i = 0; i < G_COUNT; i++)
        fp_metric_forget(pm->g[i], labels);
}
