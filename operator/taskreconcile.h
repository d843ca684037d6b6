/* taskreconcile.h — one FormTask, from spec to the world and back to status: its
 * pipeline resolved from the FormPipelines cache (missing: Ready False, nothing made),
 * the pipeline as owner (ownerReference) and our finalizer, the dead-letter topic, the
 * lag of its group, its Deployment by server-side apply, status. Touches nothing of the
 * pipeline's or of other tasks. The controller's task worker calls it; the decisions are
 * pure functions in task.h, taskdeploy.h and taskstatus.h. */
#ifndef OP_TASKRECONCILE_H
#define OP_TASKRECONCILE_H

#include <cjson/cJSON.h>
#include <stdatomic.h>

#include "apply.h"
#include "informer.h"
#include "kafka_admin.h"
#include "kube_client.h"
#include "pipeline.h"
#include "progress.h"
#include "scale.h"
#include "taskmetrics.h"

/* Per-task memory kept across reconciles; only the worker holding the task's key touches
 * it (but synced_generation, read by the informer thread). */
typedef struct op_task_state {
    op_scale_history history;
    _Atomic long long synced_generation;   /* last generation fully reconciled; -1: none */
    int replicas;                  /* last applied; 0: none yet */
    int dlq_exists;                /* the dead-letter topic was seen or made by us */
    long long dlq_recreated_ms;    /* when it had to be created again (monotonic); 0: not lately */
    long long measured_at_ms;      /* last offsets measurement (monotonic); 0: never */
    op_progress progress;
    op_stall stall;
    int measured;
    long long committed, dead_lettered;   /* -1: not yet */
    op_applied_mark applied;
    char pipeline[64];             /* the pipeline label of the task's gauges; "" none yet */
} op_task_state;

op_task_state *op_task_state_new(void);   /* NULL on ENOMEM */
void op_task_state_free(void *st);        /* NULL is fine */

/* What a task reconcile works with, borrowed for the call. */
typedef struct op_task_env {
    kube_conn *conn;
    op_kafka *kafka;
    const op_defaults *defaults;
    const char *identity;            /* reportingInstance of Events */
    long long measure_interval_ms;
    op_informer *pipelines, *tasks, *deployments;
    op_taskmetrics *metrics;         /* per-task gauges */
} op_task_env;

/* Reconciles obj (a cached FormTask) with its state. 0 with *requeue_ms (0: none);
 * negative to retry with backoff. */
int op_task_reconcile(const op_task_env *env, const cJSON *obj, op_task_state *st, long long *requeue_ms);

#endif
