/* children.h — the objects one FormPipeline owns, built as server-side-apply bodies:
 * the form ConfigMap, the ingest Deployment + Service + Ingress, the consumer
 * Deployment and the flush CronJob. Each carries the app.kubernetes.io labels and a
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

/* The apply body of one child. consumer_replicas is used for the consumer Deployment.
 * NULL on ENOMEM. */
cJSON *op_child_build(const op_pipeline *p, const op_defaults *d, op_child_kind kind, int consumer_replicas);

/* True when obj's controller ownerReference is the pipeline with uid. */
int op_child_owned_by(const cJSON *obj, const char *uid);

/* The FormPipeline key ("ns/name") that controls obj, or -1 when none. */
int op_child_owner_key(const cJSON *obj, char *out, size_t outsz);

#endif
