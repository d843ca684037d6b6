/* controller.h — the FormPipeline controller: informers for FormPipelines and the
 * kinds they own, a work queue, and worker threads that reconcile one pipeline at a
 * time (topic, finalizer, children by server-side apply, consumer scaling, status,
 * Events). Started when this process becomes the leader. */
#ifndef OP_CONTROLLER_H
#define OP_CONTROLLER_H

#include "error.h"
#include "kube_client.h"
#include "metrics.h"
#include "pipeline.h"
#include "kafka_admin.h"
#include "bufstate.h"
#include "shared.h"

typedef struct op_controller_config {
    op_defaults defaults;
    int workers;
    long long resync_ms;        /* every pipeline is reconciled at least this often */
    long long lag_interval_ms;  /* lag and progress of every pipeline are measured this often */
    long long backoff_base_ms, backoff_max_ms;
    const char *identity;       /* reportingInstance of Events */
    op_shared_config shared;    /* the namespaces' shared workloads (shared.h) */
    op_bufstate *buffers;       /* Redis, read for Shared pipelines (borrowed; NULL: not read) */
} op_controller_config;

typedef struct op_controller op_controller;

/* kube, kafka and metrics are borrowed and must outlive the controller. */
op_controller *op_controller_new(kube_client *kube, op_kafka *kafka, fp_metrics *metrics,
                                 const op_controller_config *cfg, fp_error *err);

/* Starts informers and workers. Idempotent. */
int op_controller_start(op_controller *c, fp_error *err);

/* Stops workers (after their current reconcile) and informers, then frees. */
void op_controller_free(op_controller *c);   /* NULL is fine */

/* 1 when started and every informer has listed once; else writes why. Thread-safe. */
int op_controller_ready(op_controller *c, char *why, size_t whysz);

/* Called once a second by main: resync timer and queue-depth gauge. */
void op_controller_tick(op_controller *c);

#endif
