/* status.h — a FormPipeline's status from what reconcile observed: the conditions
 * (Ready, TopicReady, IngestAvailable, ConsumersAvailable, FlushScheduled, Flushing,
 * Progressing) and the numbers beside them. Pure: no I/O, so every rule is unit-tested.
 *
 * Ready is True when the topics exist, the ingest and consumers are available, the flush
 * CronJob exists (and its tab is not another pipeline's) and the pipeline is Progressing;
 * else it carries the reason of the first condition that is not True. Progressing turns False when a
 * partition with lag has had no new commit for the pipeline's progress deadline, when
 * the dead-letter topic had to be recreated, or when the last maxFailedRuns flush runs
 * failed. Flushing tells the newest flush run's outcome (one failed run makes it False
 * without touching Ready: a retry usually follows within a minute). */
#ifndef OP_STATUS_H
#define OP_STATUS_H

#include <cjson/cJSON.h>

#include "conditions.h"
#include "flushruns.h"
#include "pipeline.h"
#include "progress.h"

enum { OP_C_READY, OP_C_TOPIC, OP_C_INGEST, OP_C_CONSUMERS, OP_C_FLUSH_SCHEDULED, OP_C_FLUSHING,
       OP_C_PROGRESSING, OP_C_COUNT };

/* What one reconcile saw. */
typedef struct op_observed {
    int partitions;                    /* the topic's; 0 when unknown */
    int dlq_partitions;                /* the dead-letter topic's; 0 when unknown */
    op_condition topic;                /* TopicReady as the topic step found it */
    int dlq_recreated;                 /* the dead-letter topic was missing and was created again */
    int topic_owned;                   /* 1: created by this pipeline, 0: someone else's, -1: unknown (topicowner.h) */
    int ingest_ready, ingest_ok;       /* ready replicas; all wanted ones available */
    int consumers, consumer_ready, consumers_ok;
    int cronjob_ok;                    /* the flush CronJob exists and is ours */
    int flush_idle;                    /* Shared: the shared CronJob is suspended while no buffer has rows */
    const char *last_schedule_time;    /* the CronJob's status; NULL when none */
    long long lag;                     /* -1: unknown */
    const op_stall *stall;             /* NULL: not measured yet */
    long long dead_letters;            /* -1: unknown */
    const op_flush_facts *flush;       /* never NULL (runs = 0: none seen) */
    const char *conflict;              /* "" or the first ownership conflict */
    const char *tab_owner;             /* "" or the pipeline that writes this pipeline's sheet tab */
    const char *group;                 /* the consumer group, for messages */
    const char *dlq_topic;             /* the dead-letter topic, for messages */
    const char *mode;                  /* status.mode: "Shared", "Dedicated" */
    const char *ingest_note;           /* NULL, or why the shared ingest does not serve the form (reason + message) */
    const char *ingest_note_reason;
} op_observed;

/* The conditions for what was observed into cond[OP_C_COUNT]. */
void op_status_conditions(const op_pipeline *p, const op_observed *o, op_condition cond[OP_C_COUNT]);

/* The whole status object: observedGeneration, topic, partitions, columns, ingest,
 * consumer, flush and conditions (lastTransitionTime kept from old_status where a
 * condition's status holds); the conditions also into cond. NULL on ENOMEM. */
cJSON *op_status_build(const op_pipeline *p, const op_observed *o, const cJSON *old_status, const char *now,
                       op_condition cond[OP_C_COUNT]);

#endif
