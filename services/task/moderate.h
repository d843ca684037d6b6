/* moderate.h — formpipe-task's moderate kind: reads the task's source topic in its
 * consumer group, checks each event's text fields against a word list
 * (moderate_event.h) and writes the enriched CloudEvent to the output stream
 * <topic>.<task> (same partition, same key), exactly once: consume-transform-produce in
 * Kafka transactions (one producer, transactional.id per pod), the input offsets sent
 * in the same transaction with the consumer group's metadata, so a crash or a
 * rebalance either commits outputs and offsets together or neither (readers of the
 * output stream use isolation.level=read_committed). Events that are no CloudEvent are
 * dead-lettered (not_json, not_cloudevent) inside the same transaction; events the
 * filter (filter.h) refuses are only committed. A failed transaction is aborted and the
 * consumer rewound to its first offsets; a fenced or otherwise fatal producer ends the
 * loop (the process exits non-zero and is restarted; the new instance's
 * init_transactions aborts what the old one left open). The word list file is watched
 * and reloaded when it changes (a ConfigMap volume swaps its ..data symlink); a list
 * that cannot be read keeps the one in use.
 * Metrics: formpipe_task_events_total{outcome=delivered|dead_lettered},
 * formpipe_task_events_filtered_total, formpipe_task_moderated_total{flagged},
 * formpipe_task_dead_lettered_total{reason}, formpipe_task_transactions_total{result},
 * formpipe_task_words, formpipe_task_word_list_reloads_total{result}, formpipe_task_lag. */
#ifndef FP_MODERATE_H
#define FP_MODERATE_H

#include "config.h"
#include "error.h"
#include "metrics.h"
#include "moderate_event.h"

typedef struct fp_moderate_config {
    const char *topic;                  /* source topic */
    const char *group;                  /* consumer group */
    const char *dlq_topic;
    const char *output_topic;           /* <topic>.<task> */
    const char *kafka_bootstrap;
    const char *kafka_config_file;      /* may be NULL */
    const fp_strlist *kafka_properties; /* may be NULL */
    const char *transactional_id;       /* unique per running instance, stable across its restarts */
    const char *words_file;
    fp_modevent_config check;
    const fp_strlist *filter;           /* may be NULL */
    long reload_interval_ms;            /* how often the word list file is looked at */
    long commit_interval_ms;            /* longest a transaction stays open */
    long batch_max;                     /* most events in one transaction */
    long lag_interval_ms;
    long txn_timeout_ms;                /* for init/commit/abort calls */
} fp_moderate_config;

typedef struct fp_moderate fp_moderate;

/* Loads the word list, creates the consumer and the transactional producer (not yet
 * initialised) and registers the metrics. NULL with *err. */
fp_moderate *fp_moderate_new(const fp_moderate_config *cfg, fp_metrics *metrics, fp_error *err);

/* Runs until fp_shutdown_requested() or fp_moderate_stop(); commits the open
 * transaction and leaves the group. 0, or FP_EIO when the producer failed for good
 * (fenced, or transactions unavailable) or the topic could not be subscribed. */
int fp_moderate_run(fp_moderate *m);

/* Asks fp_moderate_run to stop. Thread-safe. */
void fp_moderate_stop(fp_moderate *m);

/* For /readyz: ready while the loop runs with transactions initialised. Thread-safe. */
int fp_moderate_ready(void *moderate, char *why, size_t whysz);

void fp_moderate_free(fp_moderate *m);   /* NULL is fine */

#endif
