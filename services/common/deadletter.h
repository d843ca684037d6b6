/* deadletter.h — what a dead letter carries besides the event's own bytes: a stable
 * reason code (machine-readable), a message for a person, when and under which form
 * generation it was dead-lettered, and where it came from. Written by every binary
 * that dead-letters (formpipe-consumer, formpipe-task) and read by formpipe-dlq. The payload and the
 * Kafka key of a dead letter are the original message's, unchanged. */
#ifndef FP_DEADLETTER_H
#define FP_DEADLETTER_H

#include <librdkafka/rdkafka.h>

#include "error.h"

/* Kafka header names of a dead letter. */
#define FP_DEADLETTER_H_REASON "formpipe-dlq-reason"            /* a code below */
#define FP_DEADLETTER_H_MESSAGE "formpipe-dlq-message"          /* for a person */
#define FP_DEADLETTER_H_TIME "formpipe-dlq-time"                /* RFC 3339, ms, UTC */
#define FP_DEADLETTER_H_GENERATION "formpipe-dlq-form-generation"
#define FP_DEADLETTER_H_SOURCE_TOPIC "formpipe-source-topic"
#define FP_DEADLETTER_H_SOURCE_PARTITION "formpipe-source-partition"
#define FP_DEADLETTER_H_SOURCE_OFFSET "formpipe-source-offset"

/* Why an event can never become a row (or never reach a task's receiver). Decided where the failure is found; the
 * names (fp_deadletter_reason_name) are the header values and metric labels. */
typedef enum fp_deadletter_reason {
    FP_DEADLETTER_NOT_JSON,         /* not_json: not one strict JSON object (or not UTF-8) */
    FP_DEADLETTER_NOT_CLOUDEVENT,   /* not_cloudevent: JSON, but not a submission CloudEvent */
    FP_DEADLETTER_WRONG_SOURCE,     /* wrong_source: another pipeline's event */
    FP_DEADLETTER_UNKNOWN_FIELD,    /* unknown_field: a data member that is no field of the form */
    FP_DEADLETTER_REPEATED_FIELD,   /* repeated_field: a data member written twice */
    FP_DEADLETTER_BAD_VALUE,        /* bad_value: a value that is an object or array */
    FP_DEADLETTER_TOO_LARGE,        /* too_large: the row exceeds the buffer's row limit */
    FP_DEADLETTER_REJECTED,         /* rejected: a task's receiver refused it for good */
    FP_DEADLETTER_ATTEMPTS_EXHAUSTED, /* attempts_exhausted: every attempt of a task failed transiently */
    FP_DEADLETTER_REASONS           /* the number of reasons; not a reason */
} fp_deadletter_reason;

/* One dead letter's headers, decoded. */
typedef struct fp_deadletter {
    fp_deadletter_reason reason;
    char message[256];
    long long time_ms;        /* when it was dead-lettered, ms since the epoch */
    long long generation;     /* the form generation the writer had */
    char source_topic[256];
    int source_partition;
    long long source_offset;
} fp_deadletter;

/* The code's name ("not_json"), or "unknown" for a value out of range. */
const char *fp_deadletter_reason_name(fp_deadletter_reason r);

/* Parses a code's name. 0, or FP_EINVAL with *err listing the codes. */
int fp_deadletter_reason_parse(const char *name, fp_deadletter_reason *out, fp_error *err);

/* The reason for an event fp_event_parse refused: not_cloudevent when payload is
 * exactly one strict JSON object, else not_json (fp_event_parse reports only text). */
fp_deadletter_reason fp_deadletter_unparsable(const char *payload, size_t len);

/* Builds the headers of d (owned by the caller, or by librdkafka once produced).
 * NULL on ENOMEM. */
rd_kafka_headers_t *fp_deadletter_headers(const fp_deadletter *d);

/* Reads a dead letter's headers into *d. 0, or FP_EINVAL with *err naming the header
 * that is missing or unreadable (a message not written by a formpipe binary); *d then
 * holds what could be read. */
int fp_deadletter_read(const rd_kafka_headers_t *h, fp_deadletter *d, fp_error *err);

#endif
