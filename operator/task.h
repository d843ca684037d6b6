/* task.h — one FormTask read into what the operator needs (defaults of the CRD applied
 * again, so an object written before a default existed reads the same), the names it
 * lives under once its pipeline is known, and the one check of where it reads from.
 * Pure: no I/O. Strings point into the task's own copy of the object. */
#ifndef OP_TASK_H
#define OP_TASK_H

#include <cjson/cJSON.h>

#include "error.h"
#include "pipeline.h"

#define OP_TASK_KIND "FormTask"
#define OP_TASK_PLURAL "formtasks"
#define OP_TASK_FINALIZER "formpipe.io/delete-dead-letter-topic"
#define OP_TASK_MAX_NAME 58          /* the Deployment is <name>-task */
#define OP_TASK_SUFFIX "task"        /* Deployment name: <task>-task (pipeline children never end so) */

/* The kinds. A kind that produces an output stream <topic>.<task> can be another
 * task's source (moderate does). */
typedef enum { OP_TASK_WEBHOOK, OP_TASK_CONTAINER, OP_TASK_EMAIL, OP_TASK_MODERATE, OP_TASK_KIND_COUNT } op_task_kind;

#define OP_TASK_MAX_FILTER 16         /* spec.filter conditions (formpipe-task's FP_FILTER_MAX) */
#define OP_TASK_MAX_FIELDS 64         /* spec.moderate.fields */

typedef struct op_task op_task;

typedef struct op_task_kind_info {
    const char *name;       /* the spec member and status.kind: "webhook" */
    int produces_stream;    /* writes <topic>.<task> for other tasks to read */
    /* Reads spec.<name> into t; FP_EINVAL with *err naming the field. */
    int (*parse)(op_task *t, const cJSON *kspec, fp_error *err);
} op_task_kind_info;

extern const op_task_kind_info op_task_kinds[OP_TASK_KIND_COUNT];

struct op_task {
    cJSON *obj;                      /* owned copy of the resource */
    const char *ns, *name, *uid;
    long long generation;
    int deleting, has_finalizer;
    const char *pipeline;            /* spec.pipeline */
    const char *source_task;         /* spec.source.task or NULL */
    op_task_kind kind;
    int max_attempts;
    int backoff_initial_ms, backoff_max_s;   /* spec.backoff: retry delays of formpipe-task's kinds */
    int min_replicas, stabilization_s;
    long long lag_per_replica;       /* 0: one replica per partition */
    /* webhook */
    const char *url, *content_mode;
    int allow_http;                  /* spec.webhook.allowInsecureHTTP */
    op_secret_ref secret;            /* name NULL: requests are not signed */
    int timeout_s, concurrency;
    /* email (timeout_s and concurrency too) */
    const char *smtp_secret;         /* spec.email.smtpSecretRef.name: keys url, username, password */
    const char *from, *to_field, *subject, *text, *html;   /* html NULL: text-only mails */
    int rate_per_second, sent_ttl_hours, max_connections;
    /* container */
    const char *image;
    const cJSON *args, *env, *resources;   /* spec.container members or NULL */
    /* moderate */
    const cJSON *fields;             /* spec.moderate.fields (strings) or NULL: every string field */
    const char *words_configmap, *words_key;   /* spec.moderate.wordsConfigMap name and key */
    int threshold;
    /* spec.filter for the built-in kinds: "<path>=<JSON scalar>" each, formpipe-task's --filter */
    char *filter[OP_TASK_MAX_FILTER];
    int nfilter;
    const cJSON *pod;                /* spec.pod: pod settings over the operator's defaults (podspec.h), or NULL */
};

/* Reads obj (copied). NULL with *err naming the field; err->code FP_EINVAL for a spec
 * the user must fix (the CRD refuses most of these at admission). */
op_task *op_task_parse(const cJSON *obj, fp_error *err);
void op_task_free(op_task *t);   /* NULL is fine */

/* Where a task reads and writes once its pipeline is known. */
typedef struct op_task_route {
    char topic[256];       /* what it reads: the pipeline's topic, or <topic>.<source task> */
    char group[256];       /* formpipe.<ns>.<pipeline>.<task> */
    char dlq_topic[256];   /* <pipeline topic>.<task>.dlq */
    char stream_topic[256];   /* <pipeline topic>.<task> for a kind that produces a stream, else "" */
} op_task_route;

/* Fills *r. FP_EINVAL with *err when a name would be longer than Kafka allows. */
int op_task_route_of(const op_task *t, const op_pipeline *p, op_task_route *r, fp_error *err);

typedef enum {
    OP_SOURCE_OK,          /* reads the pipeline's topic, or a stream that exists */
    OP_SOURCE_NOT_FOUND,   /* spec.source.task names no FormTask of this pipeline */
    OP_SOURCE_NO_STREAM,   /* it names a task whose kind produces no output stream */
} op_source_check;

/* The one check of a task's source: source is the FormTask spec.source.task names
 * (NULL when there is none in the namespace). */
op_source_check op_task_check_source(const op_task *t, const op_task *source);

/* The Deployment's name, "<task>-task", into out. */
void op_task_deployment_name(const op_task *t, char *out, size_t outsz);

/* The FormTask key ("ns/name") that controls obj (its controller ownerReference is a
 * FormTask), or -1. */
int op_task_owner_key(const cJSON *obj, char *out, size_t outsz);

#endif
