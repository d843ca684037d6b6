/* pipeline.h — one FormPipeline read into the settings the reconciler needs, with the
 * defaults of DESIGN.md and of the operator's configuration applied, and the form
 * compiled (so a bad form is refused before anything is changed). Strings point into
 * the pipeline's own copy of the object or into the defaults. */
#ifndef OP_PIPELINE_H
#define OP_PIPELINE_H

#include <cjson/cJSON.h>

#include "config.h"
#include "error.h"
#include "podspec.h"
#include "topicconfig.h"

#define OP_GROUP "formpipe.io"
#define OP_VERSION "v1alpha1"
#define OP_API_VERSION OP_GROUP "/" OP_VERSION
#define OP_KIND "FormPipeline"
#define OP_PLURAL "formpipelines"
#define OP_FINALIZER "formpipe.io/delete-topic"
#define OP_FIELD_MANAGER "formpipe-operator"
#define OP_MAX_NAME 40      /* children add up to 12 characters; CronJob names end at 52 */
#define OP_MAX_PARTITIONS 1000
#define OP_MAX_TOPIC 244    /* Kafka allows 249; the dead-letter topic adds ".dlq" */
#define OP_SHARED_NAME "formpipe-shared"   /* reserved pipeline name: the namespace's shared workloads (shared.h) */

typedef struct op_secret_ref {
    const char *name;   /* NULL: not configured */
    const char *key;
} op_secret_ref;

/* Cluster-wide defaults from the operator's configuration. */
typedef struct op_defaults {
    const char *kafka_bootstrap;
    op_secret_ref kafka_config;      /* librdkafka properties file in a Secret */
    op_secret_ref kafka_ca;          /* PEM CA of the brokers' TLS certificates in a Secret (#16) */
    int replication_factor;
    const char *redis_sentinels, *redis_master;
    int redis_min_replicas_ack;   /* WAIT <n> after each buffer write */
    op_secret_ref redis_password;
    op_secret_ref redis_tls_ca;      /* PEM CA of Redis's TLS certificates: TLS to sentinels and data nodes (#16) */
    op_secret_ref redis_tls_client;  /* kubernetes.io/tls Secret (tls.crt, tls.key) for mutual TLS; name NULL: none */
    op_secret_ref google_credentials;
    const char *sheets_api_url;
    const char *image_ingest, *image_consumer, *image_flush, *image_pull_policy;
    const char *image_task;          /* formpipe-task, for FormTasks of kind webhook */
    const char *log_level;
    const fp_strlist *ingest_trusted_proxies;  /* for pipelines without spec.ingest.trustedProxies (#16) */
    /* #16 allowlists (NULL or empty: any): what a spec may name. Hosts are names or
     * "*.domain" (any name under domain); Kafka and Redis entries are whole
     * bootstrapServers / sentinels strings. The operator's own endpoints are always allowed. */
    const fp_strlist *allowed_hosts, *allowed_ingress_classes, *allowed_kafka, *allowed_redis;
    op_secret_ref ingest_token_key;  /* Secret with the ingest's submission-token key (#16); name NULL: none */
    const cJSON *pods;               /* pod settings defaults (podspec.h: "default", "ingest", ...), or NULL */
    int default_shared;              /* a new pipeline without spec.mode runs Shared (--default-mode) */
} op_defaults;

typedef struct op_pipeline {
    cJSON *obj;                      /* owned copy of the resource */
    const char *ns, *name, *uid;
    long long generation;
    int deleting;                    /* metadata.deletionTimestamp is set */
    int has_finalizer;

    char *compiled_form;             /* ConfigMap content: spec.form + name/namespace/generation */
    char form_hash[17];              /* of spec.form only: a change rolls the pods */
    cJSON *columns;                  /* [{name, type}]: status.columns plus new fields (append-only) */
    int columns_changed;             /* columns gained a field: status.columns must be written first */

    const char *topic;
    char dlq_topic[256];             /* <topic>.dlq */
    char group[256];                 /* the consumers' group: formpipe.<ns>.<name> */
    int partitions, replication_factor;
    const char *kafka_bootstrap;
    op_secret_ref kafka_config;
    op_secret_ref kafka_ca;          /* spec.kafka.caSecret, else the default's with the default brokers */
    int delete_topic;
    op_topicconfig topic_config;     /* spec.kafka.config: what the topic must have (topicconfig.h) */
    op_topicconfig dlq_config;       /* the dead-letter topic's: the same, its own retention */

    int ingest_replicas;
    const char *host, *ingress_class;
    const char *tls_secret;       /* spec.ingest.tls.secretName: the Ingress serves https with it; NULL: http only */
    long long max_body_bytes;
    const cJSON *allowed_origins;    /* array of strings or NULL */
    const cJSON *trusted_proxies;    /* array of strings or NULL: the ingress controller's addresses */
    int rate_limit, rate_burst;
    int max_connections, max_header_bytes, idle_timeout_s;   /* the ingest's connection limits */
    int autoscale;                   /* spec.ingest.autoscaling set: an HPA owns the ingest's replicas */
    int hpa_min, hpa_max, hpa_cpu_percent, hpa_rps;   /* hpa_cpu_percent, hpa_rps: 0 when not a target */
    cJSON *pods[OP_POD_TASK];        /* merged pod settings of ingest, consumer, flush (podspec.h) */

    int consumer_min;
    long long lag_per_replica;       /* 0: replicas follow the partition count */
    int stabilization_s;

    const char *spreadsheet_id, *sheet, *schedule;
    const cJSON *more_spreadsheets;  /* spec.sheets.spreadsheetIds: filled in order when one is full, or NULL */
    op_secret_ref google_credentials;
    int batch_rows;
    long long flush_deadline_s;
    int max_failed_runs;             /* flush runs failed in a row before Progressing turns False */
    int progress_deadline_s;         /* a lagging partition without a commit this long is stalled */
    int flush_suspended;             /* set by reconcile: another pipeline writes this sheet tab */

    int shared;                      /* runs Shared: op_pipeline_wants_shared */
    int status_shared;               /* status.mode: 1 Shared, 0 Dedicated, -1 not recorded */
    char shared_group[256];          /* the namespace's shared consumer group (shared.h) */
    unsigned skip_children;          /* set by reconcile: bit per op_child_kind the mode does not want */
    int ingress_shared;              /* set by reconcile: the Ingress routes to the shared ingest */

    const char *redis_sentinels, *redis_master;
    int redis_min_replicas_ack;   /* WAIT <n> after each buffer write */
    op_secret_ref redis_password;
    op_secret_ref redis_tls_ca, redis_tls_client;   /* spec.redis.tls, else the defaults' with the default sentinels */
    int kafka_default, redis_default;   /* the spec uses the operator's own Kafka / Redis (its Secrets go only there) */

    char topic_buf[256];
} op_pipeline;

/* Reads obj (copied). NULL with *err naming the field and the rule; err->code is
 * FP_EINVAL for a spec problem the user must fix, FP_EPERM for a host, ingress class or
 * endpoint outside the operator's allowlists. */
op_pipeline *op_pipeline_parse(const cJSON *obj, const op_defaults *d, fp_error *err);

/* Whether the FormPipeline obj is to run Shared: its spec.mode when set. Without one, a
 * spec that needs its own pods (its own Kafka, Redis, pod settings or autoscaling) runs
 * Dedicated; any other keeps the mode it runs in (status.mode), and a new one takes the
 * operator's default (d->default_shared). An invalid spec.mode counts as Dedicated (the
 * parse refuses it). */
int op_pipeline_wants_shared(const cJSON *obj, const op_defaults *d);

/* Whether the namespace's shared set concerns obj: it is to run Shared
 * (op_pipeline_wants_shared) or still does (status.mode). */
int op_pipeline_shared_now_or_next(const cJSON *obj, const op_defaults *d);
void op_pipeline_free(op_pipeline *p);   /* NULL is fine */

/* Child object names: "<name>-<suffix>" into out. */
void op_pipeline_child(const op_pipeline *p, const char *suffix, char *out, size_t outsz);

#endif
