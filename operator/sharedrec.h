/* sharedrec.h — one namespace's shared workloads (shared.h), from its Shared
 * FormPipelines to the world: the controller queues the key "shared:<namespace>" when a
 * pipeline of the namespace is or was Shared, changes mode or goes, and when a shared
 * object changes; a worker calls op_sharedrec_reconcile, which
 *   1. gathers the members from the informer cache: every pipeline whose spec.mode or
 *      status.mode is Shared and that is not being deleted (a member whose spec cannot be
 *      compiled keeps the form the ConfigMap has);
 *   2. with no member left, deletes the shared objects and stops;
 *   3. sizes the consumer Deployment from the members' lag (status.consumer.lag, their
 *      partitions bound it) with the usual stabilization, and suspends the flush CronJob
 *      while no member has rows waiting or a batch in flight (Redis; when Redis cannot
 *      be read it is never suspended);
 *   4. applies every shared object (skipping unchanged ones, never touching an object of
 *      that name it does not own).
 * It never calls back into the controller: *notify asks it to queue the members whose
 * status depends on what changed (every member when the shared Deployments or CronJob
 * changed, only those whose place in the ConfigMap changed otherwise: with hundreds of
 * pipelines arriving, each arrival would queue them all). */
#ifndef OP_SHAREDREC_H
#define OP_SHAREDREC_H

#include "apply.h"
#include "bufstate.h"
#include "informer.h"
#include "kube_client.h"
#include "scale.h"
#include "shared.h"

#define OP_SHAREDREC_PREFIX "shared:"   /* work-queue keys: "shared:<namespace>" */

/* Memory of one namespace across reconciles (one worker at a time, like a pipeline's). */
#define OP_SHAREDREC_MAX_LEAVING 32

/* A pipeline that left the shared set (switched to Dedicated): its form stays in the
 * shared ConfigMap for the switch delay after, while ingress controllers still route
 * to the shared ingest. */
typedef struct op_sharedrec_leaving {
    char name[64];
    long long since_ms;   /* monotonic; when it was first seen no longer a member */
} op_sharedrec_leaving;

typedef struct op_sharedrec_state {
    op_sharedrec_leaving leaving[OP_SHAREDREC_MAX_LEAVING];
    int n_leaving;
    op_applied_mark applied[OP_SHARED_COUNT];
    op_scale_history history;
    int consumer_replicas;       /* last applied; 0: none yet */
    char digest[64];             /* what every member's status reads of the shared workloads, as last seen */
    char *listing;               /* the cached ConfigMap's members "a,b,-c" (-: left out), as last seen; owned */
    char *changed;               /* "a,b": the members whose place there changed in the last reconcile; owned */
} op_sharedrec_state;

/* A new, empty state (NULL on ENOMEM); op_sharedrec_state_free (void * for op_map) frees one. */
op_sharedrec_state *op_sharedrec_state_new(void);
void op_sharedrec_state_free(void *st);

/* What op_sharedrec_reconcile asks the controller to queue. */
typedef enum op_sharedrec_notify {
    OP_SHAREDREC_NOTIFY_NONE = 0,
    OP_SHAREDREC_NOTIFY_ALL,       /* every pipeline of the namespace */
    OP_SHAREDREC_NOTIFY_CHANGED    /* the pipelines named in st->changed */
} op_sharedrec_notify;

typedef struct op_sharedrec_env {
    kube_conn *conn;
    const op_defaults *defaults;
    const op_shared_config *cfg;
    op_informer *pipelines;
    op_informer *const *children;   /* the child caches, by op_child_kind */
    op_bufstate *buffers;           /* NULL: the flush is never suspended */
    long long interval_ms;          /* requeue: lag and buffers are looked at this often */
    const char *tab_taken;          /* "a,b": pipelines whose sheet tab another pipeline writes (no flush) */
} op_sharedrec_env;

/* Reconciles namespace ns. 0 with *requeue_ms (0: none) and *notify; negative to retry
 * with backoff. */
int op_sharedrec_reconcile(const op_sharedrec_env *env, const char *ns, op_sharedrec_state *st, long long *requeue_ms,
                           op_sharedrec_notify *notify);

/* The cached shared Deployment ns/name: ready and wanted (status.replicas) replicas into
 * *ready, *replicas; 1 when it is current and every replica is available. */
int op_sharedrec_deployment(op_informer *deployments, const char *ns, const char *name, int *ready, int *replicas);

#endif
