/* dlq.h — formpipe-dlq's Kafka side: read a dead-letter topic from its start (or one
 * offset) up to the high watermark with an assign()-based consumer, and re-publish
 * messages to another topic. Nothing is committed: the group id "formpipe-dlq" is
 * never joined, so reading changes nothing on the broker. */
#ifndef FP_DLQ_H
#define FP_DLQ_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "error.h"

typedef struct fp_dlq_config {
    const char *kafka_bootstrap;
    const char *kafka_config_file;   /* may be NULL or "" */
    const fp_strlist *kafka_properties;
    long timeout_ms;                 /* bound on each broker request and on each wait for a message */
} fp_dlq_config;

typedef struct fp_dlq fp_dlq;

/* Creates the reader (the producer is created on first use). NULL with *err on a bad
 * configuration. */
fp_dlq *fp_dlq_open(const fp_dlq_config *cfg, fp_error *err);
void fp_dlq_close(fp_dlq *d);   /* NULL is fine */

/* Called for each message read; a non-zero return stops the read with that code. */
typedef int (*fp_dlq_visit)(void *ctx, const rd_kafka_message_t *m);

/* Reads topic's messages, in each partition from the low watermark (offset < 0) or
 * from offset (then only that one message), up to the high watermark as it was when
 * the read started, at most max messages, in partition (or every partition when
 * partition < 0). Returns 0; FP_ENOTFOUND when the topic, partition or offset does
 * not exist; FP_EIO / FP_ETIMEOUT when Kafka cannot be reached in time; or visit's code. */
int fp_dlq_read(fp_dlq *d, const char *topic, int partition, long long offset, long long max,
                fp_dlq_visit visit, void *ctx, fp_error *err);

/* 0 when topic exists, FP_ENOTFOUND or FP_EIO / FP_ETIMEOUT otherwise. */
int fp_dlq_topic_exists(fp_dlq *d, const char *topic, fp_error *err);

/* Queues m's key and payload for topic (idempotent producer, acks=all), with the header
 * formpipe-dlq-redriven-from = "<m's topic>/<partition>@<offset>". */
int fp_dlq_republish(fp_dlq *d, const char *topic, const rd_kafka_message_t *m, fp_error *err);

/* Waits until every republished message is acknowledged. 0, or FP_EIO naming how many
 * were not and why. */
int fp_dlq_flush(fp_dlq *d, fp_error *err);

#endif
