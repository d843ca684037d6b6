/* topic.h — the Kafka side of a pipeline through librdkafka's Admin API: how many
 * partitions a topic has, create it, grow it (never shrink), delete it, and the
 * consumer group's lag (committed offsets against high watermarks). One handle,
 * safe to use from several threads. */
#ifndef OP_TOPIC_H
#define OP_TOPIC_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "error.h"

typedef struct op_kafka op_kafka;

/* Connects an admin handle (bootstrap + properties file + key=value list, as every
 * binary takes them). NULL with *err. */
op_kafka *op_kafka_new(const char *bootstrap, const char *properties_file, const fp_strlist *properties,
                       long long timeout_ms, fp_error *err);
void op_kafka_free(op_kafka *k);   /* NULL is fine */

/* Partitions of topic into *n. FP_ENOTFOUND when the topic does not exist. */
int op_kafka_partitions(op_kafka *k, const char *topic, int *n, fp_error *err);

/* Creates topic (an existing one is not an error). */
int op_kafka_create(op_kafka *k, const char *topic, int partitions, int replication, fp_error *err);

/* Raises the partition count to partitions (must be larger than the current one). */
int op_kafka_grow(op_kafka *k, const char *topic, int partitions, fp_error *err);

/* Deletes topic (a missing one is not an error). */
int op_kafka_delete(op_kafka *k, const char *topic, fp_error *err);

/* Sum over the topic's first `partitions` partitions (the caller knows the count) of
 * high watermark minus the group's committed offset (a partition without a commit counts
 * from its low watermark). */
int op_kafka_lag(op_kafka *k, const char *group, const char *topic, int partitions, long long *lag,
                 fp_error *err);

#endif
