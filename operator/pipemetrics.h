/* pipemetrics.h — per-pipeline gauges on the operator's /metrics, from what each
 * reconcile observed for status: lag, readiness, progress, rows waiting, the last flush
 * run, dead letters. The flusher exits after each run, so this is where its outcome
 * reaches Prometheus (no Pushgateway: the operator already reads every run's summary).
 * Labels: namespace, pipeline. A pipeline that is gone is forgotten. */
#ifndef OP_PIPEMETRICS_H
#define OP_PIPEMETRICS_H

#include "metrics.h"
#include "status.h"

typedef struct op_pipemetrics op_pipemetrics;

/* Registers the families in m. NULL with *err. */
op_pipemetrics *op_pipemetrics_new(fp_metrics *m, fp_error *err);
void op_pipemetrics_free(op_pipemetrics *pm);   /* NULL is fine; the registry keeps the families */

/* Sets the pipeline's gauges from one reconcile's observations and conditions. */
void op_pipemetrics_set(op_pipemetrics *pm, const char *ns, const char *name, const op_observed *o,
                        const op_condition cond[OP_C_COUNT]);

/* Adds rows a newly recorded flush run wrote to formpipe_pipeline_flush_rows_total. */
void op_pipemetrics_flush_rows(op_pipemetrics *pm, const char *ns, const char *name, long long rows);

/* Removes the pipeline's series. */
void op_pipemetrics_forget(op_pipemetrics *pm, const char *ns, const char *name);

#endif
