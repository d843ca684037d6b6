/* shared.h — the workloads every Shared FormPipeline of one namespace runs on
 * (DESIGN.md "Many forms"), built as server-side-apply bodies, and the decisions around
 * them. Pure: no I/O, so every rule is unit-tested.
 *
 *   ConfigMap   formpipe-shared-forms     <pipeline>.json per member: the compiled form
 *                                          plus a "shared" object (op_shared_form)
 *   Deployment  formpipe-shared-ingest    formpipe-ingest --forms-dir, + Service, PDB
 *   Deployment  formpipe-shared-consumer  formpipe-consumer --forms-dir, one group, + PDB
 *   CronJob     formpipe-shared-flush     formpipe-flush --forms-dir --credentials-dir
 *
 * They have no owner (they outlive any one pipeline): they carry the label
 * formpipe.io/shared=true, and an object of one of these names without it is someone
 * else's and left alone. Adding, changing or removing a member changes only the
 * ConfigMap and the flush CronJob's credentials volume, never a Deployment's pods. */
#ifndef OP_SHARED_H
#define OP_SHARED_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "children.h"
#include "pipeline.h"

#define OP_SHARED_NAME "formpipe-shared"   /* reserved pipeline name (CEL): no child collides */
#define OP_SHARED_FORMS OP_SHARED_NAME "-forms"
#define OP_SHARED_INGEST OP_SHARED_NAME "-ingest"
#define OP_SHARED_CONSUMER OP_SHARED_NAME "-consumer"
#define OP_SHARED_FLUSH OP_SHARED_NAME "-flush"
#define OP_SHARED_LABEL "formpipe.io/shared"
/* on the ConfigMap: the members it holds, and those left out for its size, "a,b,c" */
#define OP_SHARED_MEMBERS_ANNOTATION "formpipe.io/pipelines"
/* On the shared CronJob: "true" while it is suspended for want of rows (the operator's
 * cache keeps metadata, not spec, so the members' status reads this) */
#define OP_SHARED_IDLE_ANNOTATION "formpipe.io/idle"
#define OP_SHARED_LEFT_OUT_ANNOTATION "formpipe.io/left-out"
#define OP_SHARED_FORMS_DIR "/etc/formpipe/forms"
#define OP_SHARED_CREDENTIALS_DIR "/etc/formpipe/credentials"
/* what the ConfigMap's data may hold: the apiserver's 1 MiB object limit less room for
 * metadata and the annotations */
#define OP_SHARED_DATA_MAX (1024 * 1024 - 64 * 1024)

typedef enum {
    OP_SHARED_CONFIGMAP,
    OP_SHARED_INGEST_DEPLOYMENT,
    OP_SHARED_INGEST_SERVICE,
    OP_SHARED_INGEST_PDB,
    OP_SHARED_CONSUMER_DEPLOYMENT,
    OP_SHARED_CONSUMER_PDB,
    OP_SHARED_FLUSH_CRONJOB,
    OP_SHARED_COUNT
} op_shared_kind;

typedef struct op_shared_type {
    op_child_kind like;   /* the pipeline child of the same kind: collection, informer */
    const char *name;
} op_shared_type;

extern const op_shared_type op_shared_types[OP_SHARED_COUNT];

/* The operator's settings of the shared workloads (flags / chart values shared.*). */
typedef struct op_shared_config {
    int ingest_replicas;
    long long ingest_rate_limit, ingest_rate_burst;   /* per client address and replica, over all forms */
    int consumer_max_replicas;
    long long consumer_lag_per_replica;   /* 0: always consumer_max_replicas (bounded by partitions) */
    const char *flush_schedule;
    int flush_writes_per_minute;          /* the Sheets write budget per service account */
    long long flush_deadline_s;           /* activeDeadlineSeconds of a run */
    long long switch_delay_ms;            /* a new form reaches running pods (kubelet's ConfigMap sync) */
} op_shared_config;

/* One member of the set: a Shared pipeline (or one switching from Shared). */
typedef struct op_shared_member {
    char *name;
    char *form;           /* <name>.json */
    char *secret, *key;   /* its Google credentials Secret and key */
} op_shared_member;

/* The members of one namespace, sorted by name once op_shared_set_fit ran. */
typedef struct op_shared_set {
    char ns[64];
    char group[256];                 /* the shared consumer group */
    op_shared_member *m;
    size_t n, cap;
    size_t n_in;                     /* the first n_in fit into the ConfigMap (op_shared_set_fit) */
    int consumer_replicas;
    int suspended;                   /* the flush CronJob's spec.suspend */
} op_shared_set;

/* An empty set for namespace ns (its group named). */
void op_shared_set_init(op_shared_set *s, const char *ns);
void op_shared_set_clear(op_shared_set *s);

/* Adds a member; form, secret and key are copied. 0 or FP_ENOMEM. */
int op_shared_set_add(op_shared_set *s, const char *name, const char *form, const char *secret, const char *key);

/* Sorts the members by name and sets n_in: members in name order while the data stays
 * within OP_SHARED_DATA_MAX (a member that does not fit is left out, and so are later ones). */
void op_shared_set_fit(op_shared_set *s);

/* "formpipe.<ns>.formpipe-shared": the shared consumers' group (the reserved name, so no
 * pipeline's own group is the same). 0 or FP_ELIMIT. */
int op_shared_group(const char *ns, char *out, size_t outsz);

/* <name>.json of a member: p's compiled form plus its "shared" object (group,
 * dedicatedGroup, dlqTopic, ingest {maxBodyBytes, allowedOrigins}, sheets
 * {spreadsheetIds, sheet, batchRows, credentials "<secret>/<key>"}). Without sheets
 * (with_sheets 0: another pipeline writes its tab) the shared flush refuses the
 * pipeline and its rows wait, as a dedicated pipeline's suspended flush does. NULL on
 * ENOMEM. */
char *op_shared_form(const op_pipeline *p, int with_sheets);

/* The apply body of one shared object of s (the ConfigMap holds the first n_in members).
 * NULL on ENOMEM. */
cJSON *op_shared_build(const op_shared_set *s, const op_defaults *d, const op_shared_config *cfg, op_shared_kind kind);

/* True when obj carries formpipe.io/shared=true and managed-by formpipe-operator. */
int op_shared_owned(const cJSON *obj);

/* True when the (cached) shared CronJob says it is suspended for want of rows. */
int op_shared_idle(const cJSON *cronjob);

/* What the cached shared ConfigMap says of pipeline name: 1 it holds the form, 0 it does
 * not, -1 it was left out for the ConfigMap's size. */
int op_shared_membership(const cJSON *configmap, const char *name);

/* Switching modes (docs/operator.md "Shared mode"): what one reconcile of a pipeline sees. */
typedef struct op_mode_facts {
    int want_shared;          /* spec.mode */
    int now_shared;           /* status.mode: the workloads serving it now */
    int in_forms;             /* the shared ConfigMap holds its form */
    int delay_passed;         /* the switch delay has passed since in_forms was first seen */
    int shared_ingest_ok;     /* the shared ingest has an available replica */
    int dedicated_ingest_ok;  /* its own ingest is available */
    int own_ingest_draining;  /* its own ingest exists and the Ingress left it less than the
                               * switch delay ago (or leaves it now): the ingress controller
                               * may still send it requests on its old configuration */
} op_mode_facts;

/* ... and what it then does. */
typedef struct op_mode_plan {
    unsigned children;        /* bit (1u << op_child_kind) per child of its own it keeps */
    int ingress_shared;       /* the Ingress routes to formpipe-shared-ingest */
    int consumer_shared;      /* the shared group consumes its topic (lag, progress) */
    int now_shared;           /* status.mode to record */
    const char *phase;        /* "Dedicated", "Shared", "SwitchingToShared", "SwitchingToDedicated" */
} op_mode_plan;

/* Dedicated -> Shared: the form into the shared ConfigMap first; then its own consumer
 * and flush go (the shared ones take over from the dedicated group's commits); the
 * Ingress moves once the delay has passed and the shared ingest is available; its own
 * ingest goes once it has drained (the switch delay after the move). Shared -> Dedicated: its own children first; the Ingress moves once
 * its own ingest is available; then status.mode says Dedicated, which takes the form out
 * of the ConfigMap. */
void op_shared_plan(const op_mode_facts *f, op_mode_plan *out);

/* The next item of the comma-separated list at *at (NULL or "": none left): its start,
 * its length into *len, and *at moved past it; NULL at the end. */
const char *op_shared_list_next(const char **at, size_t *len);

/* True when name is an item of the comma-separated list (NULL: none). */
int op_shared_listed(const char *list, const char *name);

/* The names whose entry differs between two listings of the ConfigMap's members
 * ("a,b,-c": -c left out), comma-separated into *out (owned by the caller; "" when none):
 * a name in one and not the other, or listed in one and left out in the other. 0, or
 * FP_ENOMEM. */
int op_shared_listing_changes(const char *before, const char *after, char **out);

#endif
