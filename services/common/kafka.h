/* kafka.h — librdkafka configuration taken the same way by every binary: bootstrap
 * servers, then a properties file (key=value lines, e.g. mounted from a Secret for
 * security.protocol, sasl.*, ssl.ca.location), then individual key=value overrides.
 * Values of secret keys never appear in errors or logs. */
#ifndef FP_KAFKA_H
#define FP_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "error.h"

#define FP_KAFKA_MAX_PROPERTIES_FILE (64 * 1024)

/* Builds a configuration: bootstrap, then the binary's own defaults (NULL-terminated
 * key, value, key, value, ... or NULL), then the file, then the list, so an operator
 * can override any default. NULL with *err naming the bad key (or file line). The
 * file and the list may be NULL. librdkafka's log lines go to fp_log. */
rd_kafka_conf_t *fp_kafka_conf_new(const char *bootstrap, const char *const *defaults,
                                   const char *properties_file, const fp_strlist *properties,
                                   fp_error *err);

/* Sets one property; FP_EINVAL with a message that hides secret values. */
int fp_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, fp_error *err);

/* Fills the offset of each element of parts with group's committed offset (a negative
 * offset, RD_KAFKA_OFFSET_INVALID, where the group has none), read through a
 * short-lived consumer handle made from base (a copy; group.id replaced) that never
 * joins the group, so asking adds no member. Not the Admin API's
 * ListConsumerGroupOffsets: librdkafka 2.0 (Debian 12) dereferences NULL in it when the
 * coordinator answers NOT_COORDINATOR. 0; FP_ETIMEOUT or FP_EIO with *err. */
int fp_kafka_committed(const rd_kafka_conf_t *base, const char *group, rd_kafka_topic_partition_list_t *parts,
                       int timeout_ms, fp_error *err);

/* True for keys whose values are secrets (sasl.password, ssl.key.password, ...). */
int fp_kafka_key_is_secret(const char *key);

#endif
