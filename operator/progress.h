/* progress.h — is a consumer group moving? Per partition it remembers the committed
 * offset seen last and since when that offset has not moved while the partition had lag.
 * A partition is stalled when it has had lag and the same commit for at least the
 * window: its consumer is down, paused (e.g. its dead-letter topic cannot be written)
 * or stuck. Pure bookkeeping: the caller measures (op_kafka_offsets) and passes the time. */
#ifndef OP_PROGRESS_H
#define OP_PROGRESS_H

#include "conditions.h"
#include "kafka_admin.h"

typedef struct op_progress {
    int n;                  /* partitions tracked */
    long long *committed;   /* the commit seen last, per partition */
    long long *since_ms;    /* since when it has not moved while lagging; -1: not lagging */
} op_progress;

/* What one measurement showed. */
typedef struct op_stall {
    int stalled;            /* partitions lagging without a new commit for the window */
    int first;              /* the lowest such partition; -1: none */
    long long lag;          /* the whole group's lag over all partitions */
    long long stalled_ms;   /* how long the first stalled partition has not moved */
} op_stall;

/* Records offsets of partitions 0..n-1 measured at now_ms (a grown topic adds fresh
 * partitions) and fills *out. 0, or FP_ENOMEM (the tracker is unchanged). */
int op_progress_update(op_progress *pr, const op_partition_offsets *offsets, int n, long long now_ms,
                       long long window_ms, op_stall *out);

/* How long Progressing reports a dead-letter topic that had to be created again. */
#define OP_DLQ_RECREATED_HOLD_MS 60000

/* Whether a recreated dead-letter topic is still to be reported: recreated_now starts
 * the hold (*since_ms, monotonic; 0: none), which lasts OP_DLQ_RECREATED_HOLD_MS, long
 * enough to be seen rather than a flash until the next measurement, short of the
 * NotProgressing alert's 5 minutes. Clears *since_ms when it is over. */
int op_progress_dlq_recreated(long long *since_ms, int recreated_now, long long now_ms);

/* The Progressing=False causes a pipeline and a task share, first to last: the
 * dead-letter topic dlq_topic had to be created again (DeadLetterTopicMissing), or a
 * partition of group stalls (NoProgress; s NULL: not measured). Sets c and returns 1
 * when one holds, else leaves c alone and returns 0. set_aside says what a dead letter
 * holds ("stored", "delivered"); logs whose logs to read ("the consumers'"). */
int op_progress_false(op_condition *c, const op_stall *s, int dlq_recreated, const char *dlq_topic, const char *group,
                      const char *set_aside, const char *logs);

/* Frees what the tracker holds and empties it (it can be used again). */
void op_progress_clear(op_progress *pr);

#endif
