/* children.h — the objects one FormPipeline owns, built as server-side-apply bodies:
 * the form ConfigMap, the ingest Deployment + Service + Ingress (+ HPA with autoscaling),
 * the consumer Deployment, the flush CronJob, and PodDisruptionBudgets for ingest and
 * consumers. Pods carry the pipeline's merged pod settings (podspec.h). Each carries the app.kubernetes.io labels and a
 * controller ownerReference; every pod runs non-root with a read-only root file
 * system, no capabilities, seccomp RuntimeDefault, probes and resources; secrets are
 * mounted from their Secrets, never copied. */
#ifndef OP_CHILDREN_H
#define OP_CHILDREN_H

#include <cjson/cJSON.h>

#include "pipeline.h"

typedef enum {
    OP_CHILD_CONFIGMAP,
    OP_CHILD_INGEST_DEPLOYMENT,
    OP_CHILD_INGEST_SERVICE,
    OP_CHILD_INGEST_INGRESS,
    OP_CHILD_CONSUMER_DEPLOYMENT,
    OP_CHILD_FLUSH_CRONJOB,
    OP_CHILD_INGEST_PDB,         /* PodDisruptionBudgets: a drain takes one pod at a time */
    OP_CHILD_CONSUMER_PDB,
    OP_CHILD_INGEST_HPA,         /* only with spec.ingest.autoscaling (op_child_wanted) */
    OP_CHILD_COUNT
} op_child_kind;

typedef struct op_child_type {
    const char *kind;          /* "Deployment" */
    const char *api_version;   /* "apps/v1" */
    const char *collection;    /* "/apis/apps/v1/namespaces/%s/deployments" */
    const char *all;           /* "/apis/apps/v1/deployments": every namespace, for the informer */
    const char *suffix;        /* name = <pipeline>-<suffix> */
} op_child_type;

extern const op_child_type op_child_types[OP_CHILD_COUNT];

#define OP_LABEL_MANAGED_BY "app.kubernetes.io/managed-by=formpipe-operator"
/* the pods of flush Jobs (their template carries the children's labels) */
#define OP_LABEL_FLUSH_PODS OP_LABEL_MANAGED_BY ",app.kubernetes.io/component=flush"
#define OP_FORM_HASH_ANNOTATION "formpipe.io/form-hash"
#define OP_CHILD_INGEST_PORT 8080   /* the ingest's HTTP port ("http") */
#define OP_CHILD_ADMIN_PORT 9090    /* /healthz, /readyz, /metrics ("admin") */

/* The apply body of one child. consumer_replicas is used for the consumer Deployment.
 * NULL on ENOMEM. */
cJSON *op_child_build(const op_pipeline *p, const op_defaults *d, op_child_kind kind, int consumer_replicas);

/* True when the pipeline wants a child of kind (the HPA only with autoscaling; none
 * that p->skip_children names); an unwanted child the pipeline owns is deleted. */
int op_child_wanted(const op_pipeline *p, op_child_kind kind);

/* Building blocks shared with the FormTask's Deployment (taskdeploy.c), so every pod the
 * operator makes is built one way. */

/* The parts of a pod's one container that callers fill in. */
typedef struct op_pod_parts {
    cJSON *container, *args, *env, *mounts, *volumes;
} op_pod_parts;

/* Fills podspec with the pod security settings (non-root 65532, seccomp RuntimeDefault,
 * no service-account token) and one container (image, pull policy, read-only root, no
 * capabilities, env FORMPIPE_LOG_LEVEL); its parts into *out. */
void op_child_pod(cJSON *podspec, const char *container, const char *image, const op_defaults *d, op_pod_parts *out);

/* Appends {name, value} to an env array. */
void op_child_env(cJSON *env, const char *name, const char *value);

/* The pipeline's Kafka client settings: env FORMPIPE_KAFKA_BOOTSTRAP and, when the
 * pipeline has a client-config Secret, its mount at /etc/formpipe/kafka/client.properties
 * named by --kafka-config (config_env NULL) or by the environment variable config_env;
 * with a CA Secret, its mount at /etc/formpipe/kafka-ca/ca.crt named by
 * --kafka-property=ssl.ca.location=... (config_env NULL) or env FORMPIPE_KAFKA_CA_FILE. */
void op_child_kafka_settings(const op_pod_parts *pp, const op_pipeline *p, const char *config_env);

/* The pipeline's Redis settings, as the consumer and flush get them: --redis-sentinels,
 * --redis-master, --min-replicas-ack and, with a password Secret, its mount and
 * --redis-password-file. */
void op_child_redis_settings(const op_pod_parts *pp, const op_pipeline *p);

/* A flush pod's Sheets API: --sheets-api-url when the operator has one (an emulator), and
 * --sheets-allow-http when that is http:// to a host other than loopback: the cluster
 * administrator chose it (the real API and its token endpoint are https only). */
void op_child_sheets_api_args(cJSON *args, const char *sheets_api_url);

/* Mounts key ref->key of Secret ref->name read-only as dir/path_in_volume (volume vol). */
void op_child_secret_volume(cJSON *volumes, cJSON *mounts, const char *vol, const op_secret_ref *ref,
                            const char *path_in_volume, const char *dir);

/* The same with n keys of Secret secret: keys[i] appears as dir/paths[i]. */
void op_child_secret_volume_keys(cJSON *volumes, cJSON *mounts, const char *vol, const char *secret,
                                 const char *const *keys, const char *const *paths, size_t n, const char *dir);

/* #16 for an ingest: the chart's trusted proxies unless the pods have their own
 * (own_proxies), the shared submission-token key, /metrics on the admin port. */
void op_child_ingest_common(const op_pod_parts *pp, int own_proxies, const op_defaults *d);

/* The container's named port, and readiness (/readyz) and liveness (/healthz) probes on it. */
void op_child_served_port(cJSON *c, const char *name, int number);

/* The container's "admin" port (/metrics, /healthz, /readyz), after its served port: the
 * Ingress routes only "http". */
void op_child_admin_port(cJSON *c);

/* resources: requests cpu and memory, limits memory. */
void op_child_resources(cJSON *c, const char *cpu, const char *mem_request, const char *mem_limit);

/* obj's ownerReference with controller: true, or NULL. */
const cJSON *op_child_controller_ref(const cJSON *obj);

/* True when obj's controller ownerReference is the pipeline with uid. */
int op_child_owned_by(const cJSON *obj, const char *uid);

/* The FormPipeline key ("ns/name") that controls obj, or -1 when none. */
int op_child_owner_key(const cJSON *obj, char *out, size_t outsz);

#endif
