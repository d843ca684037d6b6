/* kafka_admin.h — the Kafka side of a pipeline through librdkafka's Admin API: how
 * many partitions a topic has, create it, grow it (never shrink), delete it, and where
 * a consumer group stands (committed offsets against the log's ends). One handle,
 * safe to use from several threads. */
#ifndef OP_KAFKA_ADMIN_H
#define OP_KAFKA_ADMIN_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "error.h"
#include "topicconfig.h"

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

/* The most topics one CreateTopics request carries. */
#define OP_KAFKA_CREATE_BATCH 64

/* op_kafka_create with the topic configs of config (NULL: none); *existed (may be
 * NULL) is 1 when the topic was there already (someone created it meanwhile). Callers
 * on several threads share requests: the topics asked for while one is out go together
 * in the next (group commit), each caller getting its own topic's answer. */
int op_kafka_create_with(op_kafka *k, const char *topic, int partitions, int replication, const op_topicconfig *config,
                         int *existed, fp_error *err);

/* The topic's configs (DescribeConfigs) into *out (empty before; dynamic marks those set
 * on the topic itself). */
int op_kafka_topic_configs(op_kafka *k, const char *topic, op_topicconfig *out, fp_error *err);

/* Replaces the topic's topic-level configs with exactly `all` (AlterConfigs: librdkafka
 * 2.0 has no IncrementalAlterConfigs, so callers send every dynamic config the topic
 * keeps, see op_topicconfig_plan). */
int op_kafka_alter_topic_configs(op_kafka *k, const char *topic, const op_topicconfig *all, fp_error *err);

/* Raises the partition count to partitions (must be larger than the current one). */
int op_kafka_grow(op_kafka *k, const char *topic, int partitions, fp_error *err);

/* Deletes topic (a missing one is not an error). */
int op_kafka_delete(op_kafka *k, const char *topic, fp_error *err);

/* Where a consumer group stands on one partition. */
typedef struct op_partition_offsets {
    long long committed;   /* the group's committed offset; -1: none yet */
    long long start, end;  /* the log's first offset and its end (next offset to be written) */
} op_partition_offsets;

/* The group's committed offset and the log's start and end for each of the topic's first
 * `partitions` partitions (the caller knows the count) into out[0..partitions-1]. */
int op_kafka_offsets(op_kafka *k, const char *group, const char *topic, int partitions, op_partition_offsets *out,
                     fp_error *err);

/* Messages on the partition not yet committed (a partition without a commit counts from
 * its start). */
long long op_partition_lag(const op_partition_offsets *o);

/* The sum of the log ends of the topic's first `partitions` partitions: every message
 * ever written to it (retention removes messages, never lowers an end). */
int op_kafka_log_end_total(op_kafka *k, const char *topic, int partitions, long long *total, fp_error *err);

#endif
