/* consumer.h — formpipe-consumer's work: move submission events from the form's
 * Kafka topic into the pipeline's Redis buffer, nothing lost and nothing twice. One
 * pipeline (--form) or every pipeline of a forms directory (--forms-dir, the shared
 * ConfigMap): one group over their topics, each event to its own pipeline's buffer and
 * dead-letter topic; the directory is rescanned and the subscription follows it.
 * Offsets are stored only after a batch is in Redis and WAIT confirmed it; events that
 * can't become rows go to the dead-letter topic with a reason code (deadletter.h), and
 * offsets move past one only once the broker acknowledged it. A dead letter that
 * cannot be written pauses its partition at it, retried in the background; the
 * other partitions keep flowing. */
#ifndef FP_CONSUMER_H
#define FP_CONSUMER_H

#include "config.h"
#include "error.h"
#include "metrics.h"
#include "redis.h"

/* Most batches (and so Redis connections) in flight at once. */
#define FP_CONSUMER_MAX_IN_FLIGHT 8

typedef struct fp_consumer_config {
    const char *form_path;          /* one pipeline; NULL with forms_dir */
    const char *forms_dir;          /* every form file (*.json) of it; NULL with form_path */
    long rescan_interval_ms;        /* how often forms_dir is rescanned */
    const char *topic;              /* form_path only: "" = the form's topic */
    const char *group;              /* "" = formpipe.<ns>.<name>, or shared.group of forms_dir's forms */
    const char *dlq_topic;          /* form_path only: "" = <topic>.dlq (forms_dir: shared.dlqTopic) */
    const char *previous_group;     /* form_path only: where partitions without a commit of the group start
                                       ("" none; forms_dir: each form's shared.dedicatedGroup) */
    const char *kafka_bootstrap;
    const char *kafka_config_file;  /* may be NULL */
    const fp_strlist *kafka_properties;
    const char *redis_sentinels;
    const char *redis_master;
    const char *redis_password;     /* read from a file by main; may be NULL */
    long redis_connect_timeout_ms;
    long redis_command_timeout_ms;
    fp_redis_tls redis_tls;         /* zeroed: plain TCP */
    int min_replicas_ack;           /* WAIT numreplicas */
    long wait_timeout_ms;
    int batch_max;                  /* events per Redis script run */
    long batch_wait_ms;             /* longest wait to fill a batch */
    int batches_in_flight;          /* batches sent to Redis before the oldest is confirmed, each on its own connection (1..FP_CONSUMER_MAX_IN_FLIGHT) */
    long dead_letter_timeout_ms;    /* a dead letter not acknowledged by then failed: its partition waits */
    long long form_wait_ms;         /* an event of a newer generation with a field the form lacks waits this long for the form */
    long backoff_initial_ms;
    long backoff_max_ms;
    long lag_interval_ms;
    long long dedup_window_ms;      /* flushed ids older than this are forgotten */
    long shutdown_grace_ms;         /* bound on finishing the batch in hand at SIGTERM */
} fp_consumer_config;

typedef struct fp_consumer fp_consumer;

/* Loads the form(s), creates the Kafka consumer, the dead-letter producer and the Redis
 * connections, and registers metrics. NULL with *err on a bad form or configuration. */
fp_consumer *fp_consumer_new(const fp_consumer_config *cfg, fp_metrics *metrics, fp_error *err);

/* Runs until fp_shutdown_requested(); then finishes the batch in hand (bounded by
 * shutdown_grace_ms), commits stored offsets and leaves the group. Returns 0. */
int fp_consumer_run(fp_consumer *c);

/* For /readyz: ready when Redis answered the last operation and the consumer is in
 * its loop. Thread-safe. */
int fp_consumer_ready(void *consumer, char *why, size_t whysz);

void fp_consumer_free(fp_consumer *c);   /* NULL is fine */

#endif
