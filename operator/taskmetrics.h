/* taskmetrics.h — per-FormTask gauges on the operator's /metrics, from what each task
 * reconcile observed for status: lag, readiness, progress, delivered, dead letters.
 * Labels: namespace, pipeline, task (the pipeline is immutable). A task that is gone is
 * forgotten. The task pods' own metrics (formpipe_task_*) are per partition and per
 * pod; these are the per-task view an alert needs. */
#ifndef OP_TASKMETRICS_H
#define OP_TASKMETRICS_H

#include "metrics.h"
#include "taskstatus.h"

typedef struct op_taskmetrics op_taskmetrics;

/* Registers the families in m. NULL with *err. */
op_taskmetrics *op_taskmetrics_new(fp_metrics *m, fp_error *err);
void op_taskmetrics_free(op_taskmetrics *tm);   /* NULL is fine; the registry keeps the families */

/* Sets the task's gauges from one reconcile's observations and conditions; a value
 * not measured yet is absent. */
void op_taskmetrics_set(op_taskmetrics *tm, const op_task *t, const op_task_observed *o,
                        const op_condition cond[OP_TC_COUNT]);

/* Removes the task's series. */
void op_taskmetrics_forget(op_taskmetrics *tm, const char *ns, const char *pipeline, const char *task);

#endif
