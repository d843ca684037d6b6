/* runner.h — formpipe-task's loop: reads the task's source topic in the task's
 * consumer group (fp_group) and hands each event to one kind (kind.h), keeping order
 * per key within a partition (keyorder.h), at most `concurrency` attempts in flight,
 * retrying transient failures with backoff (backoff.h) up to max_attempts, and
 * dead-lettering (fp_letters) an event whose attempts are exhausted
 * (attempts_exhausted), that the receiver refused (rejected), or that is no CloudEvent
 * (not_json, not_cloudevent). An offset is stored only past the contiguous prefix of
 * events that are done or whose dead letter the broker acknowledged (offsets.h): at
 * least once. Metrics: formpipe_task_events_total{outcome}, _attempts_total{result},
 * _in_flight, _lag{partition}, _delivery_seconds, and fp_letters' formpipe_task_dead_*. */
#ifndef FP_RUNNER_H
#define FP_RUNNER_H

#include "config.h"
#include "error.h"
#include "kind.h"
#include "metrics.h"

typedef struct fp_runner_config {
    const char *topic;                  /* source topic */
    const char *group;                  /* consumer group */
    const char *dlq_topic;              /* dead-letter topic */
    const char *kafka_bootstrap;
    const char *kafka_config_file;      /* may be NULL */
    const fp_strlist *kafka_properties; /* may be NULL */
    int max_attempts;                   /* 1.. */
    int concurrency;                    /* attempts in flight, 1.. */
    long backoff_initial_ms;
    long backoff_max_ms;                /* also caps a receiver's retry_after_ms */
    long dead_letter_timeout_ms;        /* a dead letter not acknowledged by then pauses its partition */
    long lag_interval_ms;
    long shutdown_grace_ms;             /* how long running attempts may finish after a stop */
    const fp_strlist *filter;           /* filter.h conditions, may be NULL: events that fail them are
                                           committed and counted (formpipe_task_events_filtered_total),
                                           never attempted */
} fp_runner_config;

typedef struct fp_runner fp_runner;

/* Creates the group consumer and dead-letter producer and registers the metrics.
 * Takes ownership of kind (freed with kind->free(kind->self)) on success and on
 * failure. NULL with *err on a bad configuration. */
fp_runner *fp_runner_new(const fp_runner_config *cfg, fp_task_kind *kind, fp_metrics *metrics, fp_error *err);

/* Runs until fp_shutdown_requested() or fp_runner_stop(); then stops reading, lets
 * running attempts finish for at most shutdown_grace_ms, commits what is finished and
 * leaves the group. 0, or FP_EIO when it could not subscribe. */
int fp_runner_run(fp_runner *r);

/* Asks fp_runner_run to stop as on SIGTERM. Thread-safe. */
void fp_runner_stop(fp_runner *r);

/* For /readyz: ready while the loop runs and the kind is ready. Thread-safe. */
int fp_runner_ready(void *runner, char *why, size_t whysz);

void fp_runner_free(fp_runner *r);   /* NULL is fine; frees the kind */

#endif
