/* lease.h — leader election on a coordination.k8s.io/v1 Lease, after client-go's
 * leaderelection: the holder renews every retry period; a candidate takes the Lease
 * over only when the record it last saw has not changed for the lease duration as
 * measured by its own monotonic clock (no trust in other clocks); a leader that has not
 * renewed within the renew deadline has lost and is told so. */
#ifndef OP_LEASE_H
#define OP_LEASE_H

#include "error.h"
#include "kube_client.h"

typedef struct op_lease_config {
    const char *ns, *name;     /* where the Lease lives */
    const char *identity;      /* this process, unique among candidates */
    long long duration_ms;     /* 15 s */
    long long renew_deadline_ms; /* 10 s */
    long long retry_ms;        /* 2 s */
} op_lease_config;

typedef struct op_lease op_lease;

/* Starts campaigning in a thread. on_elected runs once when leadership is won;
 * on_lost once when it is lost (the process should exit). Both run on the lease's
 * thread. cfg's strings must outlive the lease. */
op_lease *op_lease_start(kube_client *c, const op_lease_config *cfg, void (*on_elected)(void *),
                         void (*on_lost)(void *), void *ctx, fp_error *err);

/* Stops campaigning; a leader gives the Lease up so a successor need not wait. */
void op_lease_stop(op_lease *l);   /* NULL is fine */

int op_lease_is_leader(op_lease *l);

#endif
