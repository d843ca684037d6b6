/* controller_impl.h — the controller's state, shared by controller.c (informers,
 * queue, workers) and reconcile.c (what one reconcile does). Not a public header. */
#ifndef OP_CONTROLLER_IMPL_H
#define OP_CONTROLLER_IMPL_H

#include <pthread.h>

#include "children.h"
#include "controller.h"
#include "informer.h"
#include "scale.h"
#include "strmap.h"
#include "workqueue.h"

enum { INF_CONFIGMAPS, INF_DEPLOYMENTS, INF_SERVICES, INF_INGRESSES, INF_CRONJOBS, INF_CHILD_COUNT };

/* What we last applied to one child: the body's hash and the child's generation
 * (or resourceVersion for kinds without one) right after our apply. While both
 * still match, the apply is skipped. */
typedef struct applied_mark {
    char hash[17];
    char marker[64];
} applied_mark;

/* Per-pipeline memory kept across reconciles (guarded by op_controller.lock). */
typedef struct pipe_state {
    op_scale_history history;
    long long synced_generation;   /* last generation fully reconciled; -1: none */
    int consumer_replicas;         /* last applied; 0: none yet */
    long long lag;                 /* last measured lag; -1: not yet */
    long long lag_at_ms;           /* when (monotonic); 0: never */
    applied_mark applied[OP_CHILD_COUNT];
} pipe_state;

struct op_controller {
    kube_client *kube;
    op_kafka *kafka;
    op_controller_config cfg;
    op_queue *queue;
    op_informer *pipelines;
    op_informer *children[INF_CHILD_COUNT];
    pthread_t *workers;
    int nworkers;
    int started;
    pthread_mutex_t lock;          /* guards states, started */
    op_map *states;                /* key -> pipe_state */
    long long last_resync_ms;
    fp_series *reconciles_ok, *reconciles_failed, *duration, *depth, *pipelines_gauge;
    fp_metric *restarts;
};

/* Reconciles the pipeline key through conn. 0 on success with *requeue_ms (0: no
 * timed requeue); negative to retry with backoff. */
int op_reconcile(op_controller *c, kube_conn *conn, const char *key, long long *requeue_ms);

/* The informer caching child kind. */
op_informer *op_child_informer(op_controller *c, op_child_kind kind);

#endif
