/* names.h — the naming conventions several binaries must agree on, written once:
 * a pipeline's default topic, its consumer group and its dead-letter topic, and a
 * FormTask's consumer group, dead-letter topic and output stream. Each
 * writes into out and returns 0, or FP_ELIMIT when out is too small (out then holds a
 * truncated, NUL-terminated name that must not be used). */
#ifndef FP_NAMES_H
#define FP_NAMES_H

#include <stddef.h>

#define FP_NAMES_MAX_TOPIC 249   /* Kafka's limit on a topic name */

/* 1 when topic is a name Kafka accepts: 1-249 of [a-zA-Z0-9._-], not "." or "..". */
int fp_names_topic_valid(const char *topic);

/* "forms.<ns>.<name>": the topic of a pipeline whose spec names none. */
int fp_names_topic(const char *ns, const char *name, char *out, size_t outsz);

/* "formpipe.<ns>.<name>": the consumer group that moves a pipeline's events to Redis. */
int fp_names_group(const char *ns, const char *name, char *out, size_t outsz);

/* "<topic>.dlq": where events the pipeline's consumers cannot store go. */
int fp_names_dlq_topic(const char *topic, char *out, size_t outsz);

/* "formpipe.<ns>.<pipeline>.<task>": the consumer group of a FormTask. */
int fp_names_task_group(const char *ns, const char *pipeline, const char *task, char *out, size_t outsz);

/* "<topic>.<task>.dlq": where a FormTask's events that cannot be delivered go (<topic>
 * is the pipeline's topic, whatever the task reads). */
int fp_names_task_dlq_topic(const char *topic, const char *task, char *out, size_t outsz);

/* "<topic>.<task>": the output stream of a task kind that produces one (a task named
 * "dlq" would take the pipeline's dead-letter topic: the FormTask CRD refuses the name). */
int fp_names_task_stream(const char *topic, const char *task, char *out, size_t outsz);

#endif
