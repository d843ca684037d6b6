/* reconcile.h — one FormPipeline, from spec to the world and back to status. The
 * controller's worker finds the object and the state remembered for it and calls
 * op_reconcile with everything it needs; reconcile reads the children's caches, talks to
 * the apiserver and Kafka through what it is given and never calls back into the
 * controller. The decisions (conditions, status) are pure functions in status.h. */
#ifndef OP_RECONCILE_H
#define OP_RECONCILE_H

#include <cjson/cJSON.h>
#include <stdatomic.h>

#include "apply.h"
#include "children.h"
#include "flushruns.h"
#include "informer.h"
#include "kafka_admin.h"
#include "kube_client.h"
#include "pipeline.h"
#include "pipemetrics.h"
#include "progress.h"
#include "scale.h"
#include "shared.h"
#include "bufstate.h"

/* Per-pipeline memory kept across reconciles. Only the worker holding the pipeline's key
 * touches it (the work queue never hands a key to two workers). */
typedef struct op_pipe_state {
    op_scale_history history;
    _Atomic long long synced_generation;   /* last generation fully reconciled; -1: none (read by the informer thread) */
    int consumer_replicas;         /* last applied; 0: none yet */
    long long measured_at_ms;      /* last offsets measurement (monotonic); 0: never */
    long long lag;                 /* last measured lag; -1: not yet */
    op_progress progress;          /* the consumer group's commits per partition */
    op_stall stall;                /* what the last measurement showed */
    int measured;                  /* stall holds a measurement */
    long long dead_letters;        /* messages on the dead-letter topic; -1: not yet */
    long long dlq_recreated_ms;    /* when the dead-letter topic had to be created again (monotonic); 0: not lately */
    op_applied_mark applied[OP_CHILD_COUNT];
    long long configs_at_ms;       /* topic configs last found matching (monotonic); 0: never */
    long long configs_generation;  /* ... for this generation of the spec */
    long long shared_seen_ms;      /* switching to Shared: when the shared ConfigMap was first seen with the form (monotonic); 0: not */
    long long form_listed_ms;      /* a new Shared pipeline: when the shared ConfigMap was first seen with its form; 0: not */
    long long ingress_moved_ms;    /* switched to Shared: when the Ingress left its own ingest (monotonic); 0: not yet */
    char phase[32];                /* the mode plan's phase last reconciled ("" at first) */
    _Atomic int mode_flipped;      /* this reconcile changes status.mode: the namespace's shared set follows (read by the informer thread) */
    op_flush_history shared_flush; /* flush outcomes seen in Redis (Shared) */
    op_flush_facts shared_facts;   /* ... and the last facts read, kept while Redis cannot be read */
    int shared_facts_read;
} op_pipe_state;

/* A fresh state (NULL on ENOMEM); op_pipe_state_free frees one (NULL is fine). */
op_pipe_state *op_pipe_state_new(void);
void op_pipe_state_free(void *st);

/* What reconcile does its work with, borrowed for the call. */
typedef struct op_reconcile_env {
    kube_conn *conn;
    op_kafka *kafka;
    const op_defaults *defaults;
    const char *identity;                       /* reportingInstance of Events */
    long long measure_interval_ms;              /* offsets are measured at most this often */
    op_informer *const *children;               /* the child caches, by op_child_kind */
    const op_flush_facts *flush;                /* the pipeline's recorded flush runs */
    const char *tab_owner;                      /* "" or the pipeline that owns this one's sheet tab */
    op_pipemetrics *metrics;                    /* per-pipeline gauges */
    const op_shared_config *shared;             /* the shared workloads' settings */
    op_bufstate *buffers;                       /* Redis, for Shared pipelines' buffers; NULL: not read */
} op_reconcile_env;

/* Reconciles obj (a cached FormPipeline) with its state st. 0 on success with
 * *requeue_ms (0: no timed requeue); negative to retry with backoff. */
int op_reconcile(const op_reconcile_env *env, const cJSON *obj, op_pipe_state *st, long long *requeue_ms);

#endif
