/* pipeline.c — FormPipeline spec with defaults and checks. */
#include "pipeline.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "schema.h"

static const cJSON *member(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *str_or(const cJSON *o, const char *k, const char *def)
{
    const char *s = cJSON_GetStringValue(member(o, k));
    return s && *s ? s : def;
}

/* An integer member within [lo, hi], or def when absent. */
static int int_in(const cJSON *o, const char *k, long long def, long long lo, long long hi,
                  const char *path, long long *out, fp_error *err)
{
    const cJSON *v = member(o, k);
    if (!v) {
        *out = def;
        return 0;
    }
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || d != (double)(long long)d || d < lo || d > hi)
        return fp_error_set(err, FP_EINVAL, "%s.%s: must be an integer from %lld to %lld", path, k, lo, hi);
    *out = (long long)d;
    return 0;
}

static void secret_ref(const cJSON *o, const char *k, const char *default_key, op_secret_ref def,
                       op_secret_ref *out)
{
    const cJSON *ref = member(o, k);
    const char *name = str_or(ref, "name", NULL);
    if (name) {
        out->name = name;
        out->key = str_or(ref, "key", default_key);
    } else {
        *out = def;
    }
}

/* RFC 1123 label: lower-case alphanumerics and '-', starting and ending alphanumeric. */
static int dns_label(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return 0;
    return 1;
}

/* Topic names: [a-zA-Z0-9._-], at most 249 characters. */
static int topic_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int compile_form(op_pipeline *p, const cJSON *form, fp_error *err)
{
    if (!cJSON_IsObject(form))
        return fp_error_set(err, FP_EINVAL, "spec.form: required");
    cJSON *c = cJSON_Duplicate(form, 1);
    if (!c)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
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
    cJSON_AddStringToObject(c, "name", p->name);
    cJSON_AddStringToObject(c, "namespace", p->ns);
    cJSON_AddNumberToObject(c, "generation", (double)p->generation);
    p->compiled_form = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!p->compiled_form)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    fp_error ferr = {0};
    fp_form *f = fp_form_parse(p->compiled_form, strlen(p->compiled_form), &ferr);
    fp_schema *s = f ? fp_schema_compile(f->json, &ferr) : NULL;
    int ok = f && s;
    if (ok) {
        const char *key = str_or(form, "partitionKey", NULL);
        if (key && fp_form_column(f, key) < 0)
            ok = 0, fp_error_set(&ferr, FP_EINVAL, "partitionKey \"%s\" is not a field", key);
    }
    fp_schema_free(s);
    fp_form_free(f);
    return ok ? 0 : fp_error_set(err, FP_EINVAL, "spec.form: %s", ferr.msg);
}

static int parse_spec(op_pipeline *p, const cJSON *spec, const op_defaults *d, fp_error *err)
{
    long long v;
    int rc;
    const cJSON *kafka = member(spec, "kafka"), *ingest = member(spec, "ingest");
    const cJSON *consumer = member(spec, "consumer"), *sheets = member(spec, "sheets");
    const cJSON *redis = member(spec, "redis");

    p->topic = str_or(kafka, "topic", NULL);
    if (!p->topic) {
        snprintf(p->topic_buf, sizeof p->topic_buf, "forms.%s.%s", p->ns, p->name);
        p->topic = p->topic_buf;
    }
    if (!topic_name(p->topic))
        return fp_error_set(err, FP_EINVAL, "spec.kafka.topic: must be 1-249 of [a-zA-Z0-9._-]");
    if ((rc = int_in(kafka, "partitions", 3, 1, OP_MAX_PARTITIONS, "spec.kafka", &v, err)) < 0)
        return rc;
    p->partitions = (int)v;
    if ((rc = int_in(kafka, "replicationFactor", d->replication_factor, 1, 32, "spec.kafka", &v, err)) < 0)
        return rc;
    p->replication_factor = (int)v;
    p->kafka_bootstrap = str_or(kafka, "bootstrapServers", d->kafka_bootstrap);
    secret_ref(kafka, "configSecret", "client.properties", d->kafka_config, &p->kafka_config);
    p->delete_topic = cJSON_IsTrue(member(kafka, "deleteTopicOnDelete"));

    if ((rc = int_in(ingest, "replicas", 2, 0, 1000, "spec.ingest", &v, err)) < 0)
        return rc;
    p->ingest_replicas = (int)v;
    p->host = str_or(ingest, "host", NULL);
    p->ingress_class = str_or(ingest, "ingressClassName", NULL);
    if ((rc = int_in(ingest, "maxBodyBytes", 65536, 1, 16 * 1024 * 1024, "spec.ingest", &p->max_body_bytes, err)) < 0)
        return rc;
    p->allowed_origins = member(ingest, "allowedOrigins");
    p->trusted_proxies = member(ingest, "trustedProxies");
    if ((rc = int_in(ingest, "rateLimit", 20, 0, 1000000, "spec.ingest", &v, err)) < 0)
        return rc;
    p->rate_limit = (int)v;
    if ((rc = int_in(ingest, "rateBurst", 40, 1, 1000000, "spec.ingest", &v, err)) < 0)
        return rc;
    p->rate_burst = (int)v;
    if ((rc = int_in(ingest, "maxConnections", 4096, 1, 1000000, "spec.ingest", &v, err)) < 0)
        return rc;
    p->max_connections = (int)v;
    if ((rc = int_in(ingest, "maxHeaderBytes", 4096, 512, 65535, "spec.ingest", &v, err)) < 0)
        return rc;
    p->max_header_bytes = (int)v;
    if ((rc = int_in(ingest, "idleTimeoutSeconds", 30, 1, 3600, "spec.ingest", &v, err)) < 0)
        return rc;
    p->idle_timeout_s = (int)v;

    if ((rc = int_in(consumer, "minReplicas", 1, 0, OP_MAX_PARTITIONS, "spec.consumer", &v, err)) < 0)
        return rc;
    p->consumer_min = (int)v;
    if ((rc = int_in(consumer, "lagPerReplica", 0, 0, 1000000000, "spec.consumer", &p->lag_per_replica, err)) < 0)
        return rc;
    if ((rc = int_in(consumer, "scaleDownStabilizationSeconds", 300, 0, 86400, "spec.consumer", &v, err)) < 0)
        return rc;
    p->stabilization_s = (int)v;

    p->spreadsheet_id = str_or(sheets, "spreadsheetId", NULL);
    if (!p->spreadsheet_id)
        return fp_error_set(err, FP_EINVAL, "spec.sheets.spreadsheetId: required");
    p->sheet = str_or(sheets, "sheet", "Responses");
    p->schedule = str_or(sheets, "schedule", "*/1 * * * *");
    secret_ref(sheets, "credentialsSecret", "key.json", d->google_credentials, &p->google_credentials);
    if (!p->google_credentials.name)
        return fp_error_set(err, FP_EINVAL, "spec.sheets.credentialsSecret: required (no operator default)");
    if ((rc = int_in(sheets, "batchRows", 5000, 1, 50000, "spec.sheets", &v, err)) < 0)
        return rc;
    p->batch_rows = (int)v;
    if ((rc = int_in(sheets, "activeDeadlineSeconds", 300, 30, 3600, "spec.sheets", &p->flush_deadline_s, err)) < 0)
        return rc;

    p->redis_sentinels = str_or(redis, "sentinels", d->redis_sentinels);
    p->redis_master = str_or(redis, "masterName", d->redis_master);
    if ((rc = int_in(redis, "minReplicasAck", d->redis_min_replicas_ack, 0, 16, "spec.redis", &v, err)) < 0)
        return rc;
    p->redis_min_replicas_ack = (int)v;
    secret_ref(redis, "passwordSecret", "password", d->redis_password, &p->redis_password);
    if (!p->kafka_bootstrap || !*p->kafka_bootstrap)
        return fp_error_set(err, FP_EINVAL, "spec.kafka.bootstrapServers: required (no operator default)");
    if (!p->redis_sentinels || !*p->redis_sentinels || !p->redis_master || !*p->redis_master)
        return fp_error_set(err, FP_EINVAL, "spec.redis: sentinels and masterName required (no operator default)");
    return compile_form(p, member(spec, "form"), err);
}

op_pipeline *op_pipeline_parse(const cJSON *obj, const op_defaults *d, fp_error *err)
{
    op_pipeline *p = calloc(1, sizeof *p);
    if (!p || !(p->obj = cJSON_Duplicate(obj, 1))) {
        free(p);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    const cJSON *md = member(p->obj, "metadata");
    p->ns = str_or(md, "namespace", NULL);
    p->name = str_or(md, "name", NULL);
    p->uid = str_or(md, "uid", NULL);
    const cJSON *gen = member(md, "generation");
    p->generation = cJSON_IsNumber(gen) ? (long long)gen->valuedouble : 0;
    p->deleting = member(md, "deletionTimestamp") != NULL;
    const cJSON *f;
    cJSON_ArrayForEach(f, member(md, "finalizers"))
        if (cJSON_IsString(f) && strcmp(f->valuestring, OP_FINALIZER) == 0)
            p->has_finalizer = 1;
    int rc;
    if (!p->ns || !p->name || !p->uid)
        rc = fp_error_set(err, FP_EINVAL, "metadata: namespace, name and uid required");
    else if (!dns_label(p->name, OP_MAX_NAME))
        rc = fp_error_set(err, FP_EINVAL, "metadata.name: must be a DNS label of at most %d characters", OP_MAX_NAME);
    else
        rc = parse_spec(p, member(p->obj, "spec"), d, err);
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
    free(p->compiled_form);
    free(p);
}

void op_pipeline_child(const op_pipeline *p, const char *suffix, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s-%s", p->name, suffix);
}
