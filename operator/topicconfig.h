/* topicconfig.h — a pipeline's topic configuration (spec.kafka.config) and what must be
 * sent to Kafka to make a topic match it. The allowlisted keys belong to the spec: a
 * value that differs (changed by hand) is set back, a key the spec does not name that
 * someone set on the topic is removed (the broker's default applies again). Other
 * topic configs are left alone. The dead-letter topic gets the same settings except
 * retention, which is its own: spec.kafka.deadLetterConfig, else never shorter than the
 * topic's and at least OP_DLQ_RETENTION_MS. Pure. */
#ifndef OP_TOPICCONFIG_H
#define OP_TOPICCONFIG_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

#define OP_DLQ_RETENTION_MS 2592000000LL   /* 30 days */

/* The keys spec.kafka.config may set, NULL-terminated. */
extern const char *const op_topicconfig_keys[];

typedef struct op_topicconfig_entry {
    char *name, *value;
    int dynamic;        /* set on the topic (DYNAMIC_TOPIC_CONFIG), not a broker or built-in default */
} op_topicconfig_entry;

typedef struct op_topicconfig {
    op_topicconfig_entry *e;
    size_t n, cap;
} op_topicconfig;

void op_topicconfig_clear(op_topicconfig *c);   /* frees the entries; c is empty after */

/* Sets name (replacing an entry of that name). 0 or FP_ENOMEM. */
int op_topicconfig_set(op_topicconfig *c, const char *name, const char *value, int dynamic);

const op_topicconfig_entry *op_topicconfig_find(const op_topicconfig *c, const char *name);

/* Reads spec.kafka.config and spec.kafka.deadLetterConfig (either NULL) into the wanted
 * settings of the topic and of its dead-letter topic (both start empty). FP_EINVAL with
 * *err naming the key for a key off the list or a value of the wrong form. */
int op_topicconfig_read(const cJSON *config, const cJSON *dlq_config, op_topicconfig *topic, op_topicconfig *dlq,
                        fp_error *err);

/* What makes a topic whose configs are `current` (as described; dynamic marks those set
 * on the topic) match `want`: the full set of topic-level configs to write (every
 * dynamic config that is not allowlisted, as it is, plus want) into *out, and 1 when it
 * differs from what the topic has (0: nothing to do). */
int op_topicconfig_plan(const op_topicconfig *want, const op_topicconfig *current, op_topicconfig *out, fp_error *err);

#endif
