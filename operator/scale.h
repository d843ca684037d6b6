/* scale.h — how many consumer replicas a pipeline gets. Without lag-based scaling
 * it is the partition count. With it, ceil(lag / lagPerReplica) clamped to
 * [minReplicas, partitions]; scaling up happens at once, scaling down only to the
 * highest recommendation seen during the stabilization window (as the HPA does), so a
 * short dip in lag does not shrink the group. */
#ifndef OP_SCALE_H
#define OP_SCALE_H

#include <stddef.h>

#define OP_SCALE_HISTORY 128

typedef struct op_scale_history {
    long long at_ms[OP_SCALE_HISTORY];
    int replicas[OP_SCALE_HISTORY];
    size_t n;
} op_scale_history;

/* clamp(ceil(lag / per_replica), min, max); max wins over min. */
int op_scale_from_lag(long long lag, long long per_replica, int min, int max);

/* Records the recommendation desired at now_ms and returns the count to apply: the
 * highest recommendation within the last window_ms (which includes desired). When
 * the history is full the oldest entry is dropped. */
int op_scale_stabilize(op_scale_history *h, long long now_ms, long long window_ms, int desired);

#endif
