/* pipeline.c — FormPipeline spec with defaults and checks. */
#include "pipeline.h"
#include "netaddr.h"

#include <openssl/sha.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "names.h"
#include "schema.h"
#include "spec.h"

static void secret_ref(const cJSON *o, const char *k, const char *default_key, op_secret_ref def,
                       op_secret_ref *out)
{
    const cJSON *ref = op_spec_member(o, k);
    const char *name = op_spec_str(ref, "name", NULL);
    if (name) {
        out->name = name;
        out->key = op_spec_str(ref, "key", default_key);
    } else {
        *out = def;
    }
}

/* True when list is empty or holds value; with hosts, an entry "*.domain" holds every
 * name under domain (not domain itself). */
static int allowed(const fp_strlist *list, const char *value, int hosts)
{
    if (!list || !list->n)
        return 1;
    for (size_t i = 0; i < list->n; i++) {
        const char *e = list->items[i];
        if (strcmp(e, value) == 0)
            return 1;
        size_t el = strlen(e), vl = strlen(value);
        if (hosts && el > 2 && e[0] == '*' && e[1] == '.' && vl > el - 1 &&
            strcmp(value + vl - (el - 1), e + 1) == 0)
            return 1;
    }
    return 0;
}

/* #16: a spec naming a host, ingress class or Kafka/Redis endpoint outside the
 * operator's allowlists is refused with FP_EPERM (Ready=False/NotAllowed, nothing made). */
static int check_allowed(const op_pipeline *p, const op_defaults *d, fp_error *err)
{
    if (d->allowed_hosts && d->allowed_hosts->n && !p->host)
        return fp_error_set(err, FP_EPERM, "spec.ingest.host: required, the operator serves only allowed hosts");
    if (p->host && !allowed(d->allowed_hosts, p->host, 1))
        return fp_error_set(err, FP_EPERM, "spec.ingest.host: %s is not among the operator's allowed hosts", p->host);
    if (p->ingress_class && !allowed(d->allowed_ingress_classes, p->ingress_class, 0))
        return fp_error_set(err, FP_EPERM, "spec.ingest.ingressClassName: %s is not among the operator's allowed classes",
                            p->ingress_class);
    if (!p->kafka_default && !allowed(d->allowed_kafka, p->kafka_bootstrap, 0))
        return fp_error_set(err, FP_EPERM, "spec.kafka.bootstrapServers: %s is not among the operator's allowed Kafka clusters",
                            p->kafka_bootstrap);
    if (!p->redis_default && !allowed(d->allowed_redis, p->redis_sentinels, 0))
        return fp_error_set(err, FP_EPERM, "spec.redis.sentinels: %s is not among the operator's allowed Redis sentinels",
                            p->redis_sentinels);
    return 0;
}

/* The type a field is stored with ("string" when the definition names none). */
static const char *field_type(const cJSON *field)
{
    return op_spec_str(field, "type", "string");
}

/* The sheet's columns, append-only: status.columns (every field the form ever had, with
 * its type), then the spec's new fields in order. A field whose type differs from its
 * column's is refused: rows under it hold the old type. Sets p->columns (owned) and
 * p->columns_changed. */
static int merge_columns(op_pipeline *p, const cJSON *fields, fp_error *err)
{
    const cJSON *old = op_spec_member(op_spec_member(p->obj, "status"), "columns"), *col, *f;
    if (!(p->columns = cJSON_CreateArray()))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    cJSON_ArrayForEach(col, old) {
        const char *name = op_spec_str(col, "name", NULL);
        if (name && !cJSON_AddItemToArray(p->columns, cJSON_Duplicate(col, 1)))
            return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    int i = 0;
    cJSON_ArrayForEach(f, fields) {
        const char *name = op_spec_str(f, "name", NULL), *type = field_type(f);
        const cJSON *known = NULL;
        cJSON_ArrayForEach(col, p->columns)
            if (name && strcmp(op_spec_str(col, "name", ""), name) == 0)
                known = col;
        if (known && strcmp(op_spec_str(known, "type", "string"), type) != 0)
            return fp_error_set(err, FP_EINVAL,
                                "spec.form.fields[%d].type: field '%s' was %s and cannot become %s (rows in the sheet "
                                "hold the old type); add a field with a new name instead", i, name,
                                op_spec_str(known, "type", "string"), type);
        i++;
        if (known || !name)
            continue;
        cJSON *c = cJSON_CreateObject();
        if (!c || !cJSON_AddStringToObject(c, "name", name) || !cJSON_AddStringToObject(c, "type", type) ||
            !cJSON_AddItemToArray(p->columns, c)) {
            cJSON_Delete(c);
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        }
        p->columns_changed = 1;
    }
    if (cJSON_GetArraySize(p->columns) > FP_FORM_MAX_COLUMNS)
        return fp_error_set(err, FP_EINVAL, "spec.form.fields: the sheet would have more than %d columns "
                            "(removed fields keep theirs); start a new pipeline", FP_FORM_MAX_COLUMNS);
    return 0;
}

/* The compiled form's "columns": the names of p->columns. */
static cJSON *column_names(const op_pipeline *p)
{
    cJSON *names = cJSON_CreateArray(), *col;
    cJSON_ArrayForEach(col, p->columns)
        if (!names || !cJSON_AddItemToArray(names, cJSON_CreateString(op_spec_str(col, "name", "")))) {
            cJSON_Delete(names);
            return NULL;
        }
    return names;
}

static int compile_form(op_pipeline *p, const cJSON *form, fp_error *err)
{
    if (!cJSON_IsObject(form))
        return fp_error_set(err, FP_EINVAL, "spec.form: required");
    int rc = merge_columns(p, op_spec_member(form, "fields"), err);
    if (rc < 0)
        return rc;
    cJSON *c = cJSON_Duplicate(form, 1);
    cJSON *names = column_names(p);
    if (!c || !names) {
        cJSON_Delete(c);
        cJSON_Delete(names);
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    char *formtext = cJSON_PrintUnformatted(form);
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (formtext)
        SHA256((const unsigned char *)formtext, strlen(formtext), md);
    free(formtext);
    for (int i = 0; i < 8; i++)
        snprintf(p->form_hash + 2 * i, 3, "%02x", md[i]);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "name");
    cJSON_DeleteItemFromObjectCaseSensitive(c, "namespace");
    cJSON_DeleteItemFromObjectCaseSensitive(c, "generation");
    cJSON_DeleteItemFromObjectCaseSensitive(c, "topic");
    cJSON_DeleteItemFromObjectCaseSensitive(c, "columns");
    cJSON_AddStringToObject(c, "name", p->name);
    cJSON_AddStringToObject(c, "namespace", p->ns);
    cJSON_AddNumberToObject(c, "generation", (double)p->generation);
    cJSON_AddStringToObject(c, "topic", p->topic);
    cJSON_AddItemToObject(c, "columns", names);
    p->compiled_form = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!p->compiled_form)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    fp_error ferr = {0};
    fp_form *f = fp_form_parse(p->compiled_form, strlen(p->compiled_form), &ferr);
    fp_schema *s = f ? fp_schema_compile(f->json, &ferr) : NULL;
    int ok = f && s;
    if (ok) {
        const char *key = op_spec_str(form, "partitionKey", NULL);
        if (key && fp_form_column(f, key) < 0)
            ok = 0, fp_error_set(&ferr, FP_EINVAL, "partitionKey \"%s\" is not a field", key);
    }
    fp_schema_free(s);
    fp_form_free(f);
    return ok ? 0 : fp_error_set(err, FP_EINVAL, "spec.form: %s", ferr.msg);
}

/* The integer settings of a spec: where each lives, its default, range and field. A
 * default of -1 takes the operator's default (d->replication_factor and so on). */
typedef struct int_setting {
    const char *section, *key;
    long long def, lo, hi;
    size_t int_at, ll_at;   /* offsetof an int or a long long member of op_pipeline (0: the other) */
} int_setting;

#define INT_AT(m) offsetof(op_pipeline, m), 0
#define LL_AT(m) 0, offsetof(op_pipeline, m)
#define OP_DEFAULT -1

static const int_setting int_settings[] = {
    {"kafka", "partitions", 3, 1, OP_MAX_PARTITIONS, INT_AT(partitions)},
    {"kafka", "replicationFactor", OP_DEFAULT, 1, 32, INT_AT(replication_factor)},
    {"ingest", "replicas", 2, 0, 1000, INT_AT(ingest_replicas)},
    {"ingest", "maxBodyBytes", 65536, 1, 16 * 1024 * 1024, LL_AT(max_body_bytes)},
    {"ingest", "rateLimit", 20, 0, 1000000, INT_AT(rate_limit)},
    {"ingest", "rateBurst", 40, 1, 1000000, INT_AT(rate_burst)},
    {"ingest", "maxConnections", 4096, 1, 1000000, INT_AT(max_connections)},
    {"ingest", "maxHeaderBytes", 4096, 512, 65535, INT_AT(max_header_bytes)},
    {"ingest", "idleTimeoutSeconds", 30, 1, 3600, INT_AT(idle_timeout_s)},
    {"consumer", "minReplicas", 1, 0, OP_MAX_PARTITIONS, INT_AT(consumer_min)},
    {"consumer", "lagPerReplica", 0, 0, 1000000000, LL_AT(lag_per_replica)},
    {"consumer", "scaleDownStabilizationSeconds", 300, 0, 86400, INT_AT(stabilization_s)},
    {"sheets", "batchRows", 5000, 1, 50000, INT_AT(batch_rows)},
    {"sheets", "activeDeadlineSeconds", 300, 30, 3600, LL_AT(flush_deadline_s)},
    {"sheets", "maxFailedRuns", 3, 1, 10, INT_AT(max_failed_runs)},
    {"redis", "minReplicasAck", OP_DEFAULT, 0, 16, INT_AT(redis_min_replicas_ack)},
    {NULL, "progressDeadlineSeconds", 300, 10, 86400, INT_AT(progress_deadline_s)},
};

/* The operator's default for a setting marked OP_DEFAULT. */
static long long operator_default(const int_setting *s, const op_defaults *d)
{
    return strcmp(s->key, "replicationFactor") == 0 ? d->replication_factor : d->redis_min_replicas_ack;
}

static int read_int_settings(op_pipeline *p, const cJSON *spec, const op_defaults *d, fp_error *err)
{
    for (size_t i = 0; i < sizeof int_settings / sizeof int_settings[0]; i++) {
        const int_setting *s = &int_settings[i];
        char path[64];
        snprintf(path, sizeof path, "spec%s%s", s->section ? "." : "", s->section ? s->section : "");
        long long v = 0, def = s->def == OP_DEFAULT ? operator_default(s, d) : s->def;
        int rc = op_spec_int(s->section ? op_spec_member(spec, s->section) : spec, s->key, def, s->lo, s->hi, path, &v, err);
        if (rc < 0)
            return rc;
        if (s->int_at)
            *(int *)((char *)p + s->int_at) = (int)v;
        else
            *(long long *)((char *)p + s->ll_at) = v;
    }
    return 0;
}

/* The pod settings of ingest, consumer and flush: spec.<section>.pod over the operator's
 * defaults (podspec.h). */
static int read_pods(op_pipeline *p, const cJSON *spec, const op_defaults *d, fp_error *err)
{
    static const char *const section[OP_POD_TASK] = {"ingest", "consumer", "sheets"};
    for (int c = 0; c < OP_POD_TASK; c++) {
        const cJSON *own = op_spec_member(op_spec_member(spec, section[c]), "pod");
        char path[64];
        snprintf(path, sizeof path, "spec.%s.pod", section[c]);
        int rc = op_podspec_check(own, path, err);
        if (rc < 0)
            return rc;
        if (!(p->pods[c] = op_podspec_for((op_pod_component)c, d->pods, NULL, own)))
            return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    return 0;
}

/* spec.ingest.autoscaling: bounds and at least one target; CPU utilization needs a CPU
 * request on the ingest. The HPA's minimum is the replica count status waits for. */
static int read_autoscaling(op_pipeline *p, const cJSON *as, fp_error *err)
{
    const char *path = "spec.ingest.autoscaling";
    long long min = 0, max = 0, cpu = 0, rps = 0;
    if (!as)
        return 0;
    int rc;
    if ((rc = op_spec_int(as, "minReplicas", 2, 1, 1000, path, &min, err)) < 0 ||
        (rc = op_spec_int(as, "maxReplicas", 0, 1, 1000, path, &max, err)) < 0 ||
        (rc = op_spec_int(as, "targetCPUUtilizationPercentage", 0, 0, 1000, path, &cpu, err)) < 0 ||
        (rc = op_spec_int(as, "requestsPerSecond", 0, 0, 1000000, path, &rps, err)) < 0)
        return rc;
    if (!op_spec_member(as, "maxReplicas"))
        return fp_error_set(err, FP_EINVAL, "%s.maxReplicas: required", path);
    if (min > max)
        return fp_error_set(err, FP_EINVAL, "%s: minReplicas must not be above maxReplicas", path);
    if (!cpu && !rps)
        return fp_error_set(err, FP_EINVAL, "%s: set targetCPUUtilizationPercentage and/or requestsPerSecond", path);
    if (cpu && !op_podspec_requests_cpu(p->pods[OP_POD_INGEST]))
        return fp_error_set(err, FP_EINVAL, "%s.targetCPUUtilizationPercentage: the ingest pods request no CPU "
                            "(spec.ingest.pod.resources.requests.cpu)", path);
    p->autoscale = 1;
    p->hpa_min = (int)min;
    p->hpa_max = (int)max;
    p->hpa_cpu_percent = (int)cpu;
    p->hpa_rps = (int)rps;
    p->ingest_replicas = (int)min;
    return 0;
}

/* spec.kafka.config and deadLetterConfig (topicconfig.h); min.insync.replicas cannot be
 * above the replication factor (every acks=all write would fail). */
static int read_topic_config(op_pipeline *p, const cJSON *kafka, fp_error *err)
{
    int rc = op_topicconfig_read(op_spec_member(kafka, "config"), op_spec_member(kafka, "deadLetterConfig"),
                                 &p->topic_config, &p->dlq_config, err);
    const op_topicconfig *both[2] = {&p->topic_config, &p->dlq_config};
    for (int i = 0; rc == 0 && i < 2; i++) {
        const op_topicconfig_entry *isr = op_topicconfig_find(both[i], "min.insync.replicas");
        if (isr && atoi(isr->value) > p->replication_factor)
            rc = fp_error_set(err, FP_EINVAL, "spec.kafka.%s.min.insync.replicas: %s is above the replication factor %d",
                              i ? "deadLetterConfig" : "config", isr->value, p->replication_factor);
    }
    return rc;
}

/* What mode: Shared refuses (the CRD's CEL rules say the same): settings the shared
 * pods cannot have per pipeline. */
static int check_shared(const cJSON *spec, fp_error *err)
{
    static const struct { const char *section, *key; } own[] = {
        {"kafka", "bootstrapServers"}, {"kafka", "configSecret"}, {"kafka", "caSecret"}, {NULL, "redis"},
        {"ingest", "pod"}, {"ingest", "autoscaling"}, {"consumer", "pod"}, {"sheets", "pod"},
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (op_spec_member(own[i].section ? op_spec_member(spec, own[i].section) : spec, own[i].key))
            return fp_error_set(err, FP_EINVAL, "spec.%s%s%s needs its own pods: use mode: Dedicated",
                                own[i].section ? own[i].section : "", own[i].section ? "." : "", own[i].key);
    return 0;
}

int op_pipeline_wants_shared(const cJSON *obj, const op_defaults *d)
{
    const cJSON *spec = op_spec_member(obj, "spec");
    const char *mode = op_spec_str(spec, "mode", NULL);
    if (mode)
        return strcmp(mode, "Shared") == 0;
    if (check_shared(spec, NULL) < 0)
        return 0;
    const char *now = op_spec_str(op_spec_member(obj, "status"), "mode", NULL);
    return now ? strcmp(now, "Shared") == 0 : d->default_shared;
}

int op_pipeline_shared_now_or_next(const cJSON *obj, const op_defaults *d)
{
    return op_pipeline_wants_shared(obj, d) ||
           strcmp(op_spec_str(op_spec_member(obj, "status"), "mode", ""), "Shared") == 0;
}

static int parse_spec(op_pipeline *p, const cJSON *spec, const op_defaults *d, fp_error *err)
{
    const cJSON *kafka = op_spec_member(spec, "kafka"), *ingest = op_spec_member(spec, "ingest");
    const cJSON *sheets = op_spec_member(spec, "sheets"), *redis = op_spec_member(spec, "redis");
    int rc = read_int_settings(p, spec, d, err);
    if (rc < 0)
        return rc;

    p->topic = op_spec_str(kafka, "topic", NULL);
    if (!p->topic) {
        fp_names_topic(p->ns, p->name, p->topic_buf, sizeof p->topic_buf);
        p->topic = p->topic_buf;
    }
    if (!fp_names_topic_valid(p->topic) || strlen(p->topic) > OP_MAX_TOPIC)
        return fp_error_set(err, FP_EINVAL, "spec.kafka.topic: must be 1-%d of [a-zA-Z0-9._-]", OP_MAX_TOPIC);
    /* The operator creates, grows and may delete the topic with its own credentials: a
     * pipeline names only topics of its own namespace (CEL cannot see the namespace). */
    size_t nslen = strlen(p->ns);
    if (strncmp(p->topic, "forms.", 6) != 0 || strncmp(p->topic + 6, p->ns, nslen) != 0 || p->topic[6 + nslen] != '.' ||
        !p->topic[7 + nslen])
        return fp_error_set(err, FP_EINVAL, "spec.kafka.topic: must start with forms.%s. (a pipeline uses only its own "
                            "namespace's topics)", p->ns);
    fp_names_dlq_topic(p->topic, p->dlq_topic, sizeof p->dlq_topic);
    fp_names_group(p->ns, p->name, p->group, sizeof p->group);
    fp_names_group(p->ns, OP_SHARED_NAME, p->shared_group, sizeof p->shared_group);
    const char *mode = op_spec_str(spec, "mode", NULL);
    if (mode && strcmp(mode, "Shared") != 0 && strcmp(mode, "Dedicated") != 0)
        return fp_error_set(err, FP_EINVAL, "spec.mode: must be Shared or Dedicated");
    p->shared = op_pipeline_wants_shared(p->obj, d);
    const char *now = op_spec_str(op_spec_member(p->obj, "status"), "mode", NULL);
    p->status_shared = now ? strcmp(now, "Shared") == 0 : -1;
    if (p->shared && (rc = check_shared(spec, err)) < 0)
        return rc;
    p->kafka_bootstrap = op_spec_str(kafka, "bootstrapServers", d->kafka_bootstrap);
    /* the operator's default Secrets go only to its own endpoints (#16): another cluster
     * named in a spec never receives the default credentials */
    p->kafka_default = d->kafka_bootstrap && p->kafka_bootstrap && strcmp(p->kafka_bootstrap, d->kafka_bootstrap) == 0;
    secret_ref(kafka, "configSecret", "client.properties", p->kafka_default ? d->kafka_config : (op_secret_ref){0},
               &p->kafka_config);
    secret_ref(kafka, "caSecret", "ca.crt", p->kafka_default ? d->kafka_ca : (op_secret_ref){0}, &p->kafka_ca);
    p->delete_topic = cJSON_IsTrue(op_spec_member(kafka, "deleteTopicOnDelete"));
    if ((rc = read_topic_config(p, kafka, err)) < 0 || (rc = read_pods(p, spec, d, err)) < 0 ||
        (rc = read_autoscaling(p, op_spec_member(ingest, "autoscaling"), err)) < 0)
        return rc;

    p->host = op_spec_str(ingest, "host", NULL);
    p->ingress_class = op_spec_str(ingest, "ingressClassName", NULL);
    p->tls_secret = op_spec_str(op_spec_member(ingest, "tls"), "secretName", NULL);
    p->allowed_origins = op_spec_member(ingest, "allowedOrigins");
    p->trusted_proxies = op_spec_member(ingest, "trustedProxies");
    const cJSON *tp;   /* #16: the ingest refuses to start on a bad one; say so here instead */
    cJSON_ArrayForEach(tp, p->trusted_proxies) {
        fp_cidr cidr;
        fp_error cerr = {0};
        if (!cJSON_IsString(tp) || fp_cidr_parse(tp->valuestring, &cidr, &cerr))
            return fp_error_set(err, FP_EINVAL, "spec.ingest.trustedProxies: %s",
                                cJSON_IsString(tp) ? cerr.msg : "each must be an address or CIDR");
    }

    p->spreadsheet_id = op_spec_str(sheets, "spreadsheetId", NULL);
    if (!p->spreadsheet_id)
        return fp_error_set(err, FP_EINVAL, "spec.sheets.spreadsheetId: required");
    p->more_spreadsheets = op_spec_member(sheets, "spreadsheetIds");
    const cJSON *more;
    cJSON_ArrayForEach(more, p->more_spreadsheets)
        if (!cJSON_IsString(more) || !*more->valuestring || strlen(more->valuestring) > 200 ||
            strspn(more->valuestring, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(more->valuestring))
            return fp_error_set(err, FP_EINVAL, "spec.sheets.spreadsheetIds: each must be a spreadsheet id of [A-Za-z0-9_-]");
    p->sheet = op_spec_str(sheets, "sheet", "Responses");
    p->schedule = op_spec_str(sheets, "schedule", "*/1 * * * *");
    secret_ref(sheets, "credentialsSecret", "key.json", d->google_credentials, &p->google_credentials);
    if (!p->google_credentials.name)
        return fp_error_set(err, FP_EINVAL, "spec.sheets.credentialsSecret: required (no operator default)");

    p->redis_sentinels = op_spec_str(redis, "sentinels", d->redis_sentinels);
    p->redis_master = op_spec_str(redis, "masterName", d->redis_master);
    p->redis_default = d->redis_sentinels && p->redis_sentinels && strcmp(p->redis_sentinels, d->redis_sentinels) == 0;
    secret_ref(redis, "passwordSecret", "password", p->redis_default ? d->redis_password : (op_secret_ref){0},
               &p->redis_password);
    const cJSON *rtls = op_spec_member(redis, "tls");
    secret_ref(rtls, "caSecret", "ca.crt", p->redis_default ? d->redis_tls_ca : (op_secret_ref){0}, &p->redis_tls_ca);
    secret_ref(rtls, "clientSecret", "tls.crt", p->redis_default ? d->redis_tls_client : (op_secret_ref){0},
               &p->redis_tls_client);
    if (p->redis_tls_client.name && !p->redis_tls_ca.name)
        return fp_error_set(err, FP_EINVAL, "spec.redis.tls.clientSecret: needs caSecret (a client certificate is sent "
                            "only over TLS)");
    if (!p->kafka_bootstrap || !*p->kafka_bootstrap)
        return fp_error_set(err, FP_EINVAL, "spec.kafka.bootstrapServers: required (no operator default)");
    if (!p->redis_sentinels || !*p->redis_sentinels || !p->redis_master || !*p->redis_master)
        return fp_error_set(err, FP_EINVAL, "spec.redis: sentinels and masterName required (no operator default)");
    if ((rc = check_allowed(p, d, err)) < 0)
        return rc;
    return compile_form(p, op_spec_member(spec, "form"), err);
}

op_pipeline *op_pipeline_parse(const cJSON *obj, const op_defaults *d, fp_error *err)
{
    op_pipeline *p = calloc(1, sizeof *p);
    if (!p || !(p->obj = cJSON_Duplicate(obj, 1))) {
        free(p);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    const cJSON *md = op_spec_member(p->obj, "metadata");
    p->ns = op_spec_str(md, "namespace", NULL);
    p->name = op_spec_str(md, "name", NULL);
    p->uid = op_spec_str(md, "uid", NULL);
    const cJSON *gen = op_spec_member(md, "generation");
    p->generation = cJSON_IsNumber(gen) ? (long long)gen->valuedouble : 0;
    p->deleting = op_spec_member(md, "deletionTimestamp") != NULL;
    const cJSON *f;
    cJSON_ArrayForEach(f, op_spec_member(md, "finalizers"))
        if (cJSON_IsString(f) && strcmp(f->valuestring, OP_FINALIZER) == 0)
            p->has_finalizer = 1;
    int rc;
    if (!p->ns || !p->name || !p->uid)
        rc = fp_error_set(err, FP_EINVAL, "metadata: namespace, name and uid required");
    else if (!op_spec_dns_label(p->name, OP_MAX_NAME))
        rc = fp_error_set(err, FP_EINVAL, "metadata.name: must be a DNS label of at most %d characters", OP_MAX_NAME);
    else
        rc = parse_spec(p, op_spec_member(p->obj, "spec"), d, err);
    if (rc < 0) {
        op_pipeline_free(p);
        return NULL;
    }
    return p;
}

void op_pipeline_free(op_pipeline *p)
{
    if (!p)
        return;
    cJSON_Delete(p->obj);
    cJSON_Delete(p->columns);
    free(p->compiled_form);
    op_topicconfig_clear(&p->topic_config);
    op_topicconfig_clear(&p->dlq_config);
    for (int c = 0; c < OP_POD_TASK; c++)
        cJSON_Delete(p->pods[c]);
    free(p);
}

void op_pipeline_child(const op_pipeline *p, const char *suffix, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s-%s", p->name, suffix);
}
