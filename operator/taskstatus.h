/* taskstatus.h — a FormTask's conditions and status from what its reconcile observed.
 * Pure: no I/O, so every rule is unit-tested.
 *
 * Ready is True when the task's pipeline and source exist, its topics exist, its
 * Deployment is ours with every wanted replica available, and it is Progressing; else it
 * carries the reason of the first thing that is not so, causes before effects:
 * InvalidSpec, PipelineNotFound, PipelineInvalid, SourceTaskNotFound,
 * SourceTaskHasNoStream, TopicMissing / KafkaUnavailable, OwnershipConflict, Deploying,
 * then Progressing's reason. Progressing turns False when a partition with lag has had no
 * new commit of the task's group for the pipeline's progressDeadlineSeconds (NoProgress)
 * or when the dead-letter topic had to be recreated (DeadLetterTopicMissing); it is
 * Unknown before the first measurement, which holds nothing back. */
#ifndef OP_TASKSTATUS_H
#define OP_TASKSTATUS_H

#include <cjson/cJSON.h>

#include "conditions.h"
#include "progress.h"
#include "task.h"

enum { OP_TC_READY, OP_TC_PROGRESSING, OP_TC_COUNT };

/* Why the task cannot run yet (the first that applies), or OP_BLOCK_NONE. */
typedef enum {
    OP_BLOCK_NONE,
    OP_BLOCK_PIPELINE_NOT_FOUND,
    OP_BLOCK_PIPELINE_INVALID,
    OP_BLOCK_SOURCE_NOT_FOUND,
    OP_BLOCK_SOURCE_NO_STREAM,
    OP_BLOCK_TOPIC_MISSING,       /* the topic it reads does not exist (yet) */
    OP_BLOCK_KAFKA,               /* Kafka could not be asked or refused */
} op_task_block;

/* What one reconcile saw. */
typedef struct op_task_observed {
    op_task_block block;
    const char *block_detail;          /* for the message: the pipeline's error, Kafka's error; may be NULL */
    const char *topic, *group, *dlq_topic;   /* NULL while the pipeline is unknown */
    const char *output_topic;          /* the output stream of a kind that writes one, else NULL */
    int partitions;                    /* of the topic read; 0 unknown */
    int dlq_recreated;                 /* the dead-letter topic vanished and was created again */
    const char *conflict;              /* "" or why the Deployment's name is someone else's */
    int replicas, ready_replicas, available;   /* wanted, ready, all wanted available and current */
    const op_stall *stall;             /* NULL: not measured yet */
    long long committed;               /* the group's committed offsets summed; -1 unknown */
    long long dead_lettered;           /* messages on the dead-letter topic; -1 unknown */
} op_task_observed;

/* The conditions for what was observed into cond[OP_TC_COUNT]. */
void op_taskstatus_conditions(const op_task *t, const op_task_observed *o, op_condition cond[OP_TC_COUNT]);

/* Events delivered: committed - dead_lettered (an unknown dead-letter count as 0),
 * never below 0; -1 while the committed offsets are unknown. */
long long op_taskstatus_delivered(const op_task_observed *o);

/* The status object: observedGeneration, kind, topic, group, deadLetterTopic,
 * partitions, replicas, readyReplicas, lag, delivered, deadLettered (each when known)
 * and conditions (lastTransitionTime kept from old_status where a status holds).
 * delivered = committed - dead_lettered, never below 0. NULL on ENOMEM. */
cJSON *op_taskstatus_build(const op_task *t, const op_task_observed *o, const cJSON *old_status, const char *now,
                           op_condition cond[OP_TC_COUNT]);

/* The status of a task whose spec cannot be read: Ready False/InvalidSpec with why,
 * the rest of old_status kept. NULL on ENOMEM. */
cJSON *op_taskstatus_invalid(const cJSON *old_status, long long generation, const char *why, const char *now);

#endif
