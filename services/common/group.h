/* group.h — a Kafka group consumer as formpipe-consumer and formpipe-task use it, over
 * one topic or a set of topics that may change while it runs (a shared consumer's
 * pipelines): cooperative-sticky assignment, offsets stored by the owner (only for what
 * is finished) and committed by librdkafka, a commit of what was stored when partitions
 * are revoked, pausing of every partition (the owner is unable to work) that also holds
 * for partitions assigned meanwhile, and lag per partition (and pipeline).
 *
 * Switching groups (a pipeline moving between a dedicated and the shared consumer)
 * loses and repeats nothing: a topic may name a previous group, and a partition assigned
 * without a committed offset of this group starts at the previous group's committed
 * offset (everything below a commit is finished work), else at the beginning. */
#ifndef FP_GROUP_H
#define FP_GROUP_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "error.h"
#include "metrics.h"

/* Called from librdkafka's rebalance callback (inside a consumer poll) for revoked or
 * lost partitions, before the stored offsets are committed and the partitions given
 * up: the owner drops its state for them and may store offsets of finished work. */
typedef void fp_group_revoked_fn(void *opaque, const rd_kafka_topic_partition_list_t *parts);

/* Most librdkafka defaults a binary may give the group. */
#define FP_GROUP_MAX_DEFAULTS 16

typedef struct fp_group_config {
    const char *kafka_bootstrap;
    const char *kafka_config_file;           /* may be NULL */
    const fp_strlist *kafka_properties;      /* may be NULL */
    const char *const *defaults;             /* the binary's librdkafka defaults (key, value, ..., NULL; at most
                                                FP_GROUP_MAX_DEFAULTS pairs), may be NULL */
    const char *group;
    const char *topic;                       /* for fp_group_subscribe; may be NULL with fp_group_subscribe_topics */
    const char *lag_metric;                  /* gauge name, e.g. "formpipe_consumer_lag" */
    int lag_by_pipeline;                     /* the gauge's labels are namespace, pipeline, partition (from
                                                fp_group_topic) instead of partition alone */
    int transactional;                       /* the owner commits offsets in a producer's transaction
                                                (send_offsets_to_transaction): no automatic commit, none on
                                                revoke or close, and isolation.level=read_committed */
    fp_group_revoked_fn *revoked;            /* may be NULL */
    void *opaque;                            /* passed to revoked */
} fp_group_config;

typedef struct fp_group fp_group;

/* Creates the consumer (not subscribed yet) and registers the lag gauge. NULL with
 * *err on a bad configuration. */
fp_group *fp_group_new(const fp_group_config *cfg, fp_metrics *m, fp_error *err);

/* The librdkafka handle, for polling and storing offsets. */
rd_kafka_t *fp_group_rk(fp_group *g);

/* Subscribes to the topic. 0, or FP_EIO (logged). */
int fp_group_subscribe(fp_group *g);

/* One topic of a group over several. */
typedef struct fp_group_topic {
    const char *topic;
    const char *previous_group;   /* where a partition without a commit of ours starts; NULL or "": none */
    const char *ns, *pipeline;    /* the lag gauge's labels (lag_by_pipeline) */
} fp_group_topic;

/* Subscribes to exactly these topics (copied), replacing the subscription: partitions
 * of topics no longer listed are revoked (what was stored is committed), new topics'
 * are assigned at the next rebalance. The same set again changes nothing (a changed
 * previous group or label applies from then on). n = 0 unsubscribes. 0, FP_ENOMEM, or
 * FP_EIO (logged). */
int fp_group_subscribe_topics(fp_group *g, const fp_group_topic *topics, size_t n, fp_error *err);

/* Pauses or resumes one partition of the topic (the single-topic group's). */
void fp_group_pause_partition(fp_group *g, int32_t partition, int pause);

/* Pauses or resumes one partition of any of the group's topics. */
void fp_group_pause_at(fp_group *g, const char *topic, int32_t partition, int pause);

/* Pauses (or resumes) every assigned partition; partitions assigned while paused are
 * paused too. Returns 1 when the state changed, 0 when it already was so. */
int fp_group_set_paused(fp_group *g, int paused);

/* 1 while fp_group_set_paused(g, 1) holds. */
int fp_group_paused(const fp_group *g);

/* Stores offset (the next one to read) for a partition of the topic. __STATE (the
 * partition was revoked meanwhile) is no error; others are logged. */
void fp_group_store_offset(fp_group *g, int32_t partition, int64_t offset);

/* fp_group_store_offset for a partition of any of the group's topics. */
void fp_group_store_offset_at(fp_group *g, const char *topic, int32_t partition, int64_t offset);

/* Publishes the lag of every assigned partition from the cached high watermarks. */
void fp_group_publish_lag(fp_group *g);

/* For every assigned partition that idle(opaque, partition) says has nothing in flight,
 * stores the consumer's position. It is past every message read and past transaction
 * markers, which a read_committed consumer never gets as messages: without this, the
 * committed offset on a transactional topic (a moderate task's stream) stays one short
 * of its end and the group never reaches lag 0. */
void fp_group_store_positions(fp_group *g, int (*idle)(void *opaque, int32_t partition), void *opaque);

/* Commits what was stored and leaves the group (call once, at the end). */
void fp_group_close(fp_group *g);

void fp_group_free(fp_group *g);   /* NULL is fine */

#endif
