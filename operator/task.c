/* task.c — see task.h. */
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "children.h"
#include "names.h"
#include "spec.h"
#include "urlpolicy.h"


static int parse_webhook(op_task *t, const cJSON *w, fp_error *err)
{
    long long v;
    t->url = op_spec_str(w, "url", NULL);
    if (!t->url || (strncmp(t->url, "http://", 7) != 0 && strncmp(t->url, "https://", 8) != 0))
        return fp_error_set(err, FP_EINVAL, "spec.webhook.url: must be an http:// or https:// URL");
    t->content_mode = op_spec_str(w, "contentMode", "structured");
    if (strcmp(t->content_mode, "structured") != 0 && strcmp(t->content_mode, "binary") != 0)
        return fp_error_set(err, FP_EINVAL, "spec.webhook.contentMode: must be structured or binary");
    const cJSON *ref = op_spec_member(w, "secretRef");
    if (ref) {
        t->secret.name = op_spec_str(ref, "name", NULL);
        t->secret.key = op_spec_str(ref, "key", NULL);
        if (!t->secret.name || !t->secret.key || strchr(t->secret.key, '/'))
            return fp_error_set(err, FP_EINVAL, "spec.webhook.secretRef: name and key required");
    }
    if (op_spec_int(w, "timeoutSeconds", 10, 1, 300, "spec.webhook", &v, err) < 0)
        return err->code;
    t->timeout_s = (int)v;
    if (op_spec_int(w, "concurrency", 32, 1, 1024, "spec.webhook", &v, err) < 0)
        return err->code;
    t->concurrency = (int)v;
    t->allow_http = cJSON_IsTrue(op_spec_member(w, "allowInsecureHTTP"));
    if (strncmp(t->url, "http://", 7) == 0 && !t->allow_http && !fp_urlpolicy_loopback(t->url))
        return fp_error_set(err, FP_EINVAL, "spec.webhook.url: plain http:// to a host that is not loopback needs "
                                            "spec.webhook.allowInsecureHTTP: true (the events travel in clear)");
    return 0;
}

static int parse_email(op_task *t, const cJSON *e, fp_error *err)
{
    long long v;
    t->smtp_secret = op_spec_str(op_spec_member(e, "smtpSecretRef"), "name", NULL);
    if (!t->smtp_secret)
        return fp_error_set(err, FP_EINVAL, "spec.email.smtpSecretRef.name: required");
    t->from = op_spec_str(e, "from", NULL);
    t->to_field = op_spec_str(e, "toField", NULL);
    t->subject = op_spec_str(e, "subject", NULL);
    t->text = op_spec_str(e, "text", NULL);
    t->html = op_spec_str(e, "html", NULL);
    if (!t->from || !t->to_field || !t->subject || !t->text)
        return fp_error_set(err, FP_EINVAL, "spec.email: from, toField, subject and text are required");
    for (const char *c = t->from; *c; c++)
        if ((unsigned char)*c < 0x20)
            return fp_error_set(err, FP_EINVAL, "spec.email.from: no control characters");
    for (const char *c = t->subject; *c; c++)
        if ((unsigned char)*c < 0x20)
            return fp_error_set(err, FP_EINVAL, "spec.email.subject: no control characters");
    if (op_spec_int(e, "ratePerSecond", 10, 0, 1000, "spec.email", &v, err) < 0)
        return err->code;
    t->rate_per_second = (int)v;
    if (op_spec_int(e, "sentRecordTTLHours", 168, 1, 8760, "spec.email", &v, err) < 0)
        return err->code;
    t->sent_ttl_hours = (int)v;
    if (op_spec_int(e, "timeoutSeconds", 30, 1, 300, "spec.email", &v, err) < 0)
        return err->code;
    t->timeout_s = (int)v;
    if (op_spec_int(e, "maxConnections", 4, 1, 256, "spec.email", &v, err) < 0)
        return err->code;
    t->max_connections = (int)v;
    t->concurrency = 32;
    return 0;
}

static int parse_container(op_task *t, const cJSON *c, fp_error *err)
{
    const cJSON *e;
    t->image = op_spec_str(c, "image", NULL);
    if (!t->image)
        return fp_error_set(err, FP_EINVAL, "spec.container.image: required");
    t->args = op_spec_member(c, "args");
    t->env = op_spec_member(c, "env");
    t->resources = op_spec_member(c, "resources");
    cJSON_ArrayForEach(e, t->args)
        if (!cJSON_IsString(e))
            return fp_error_set(err, FP_EINVAL, "spec.container.args: strings only");
    cJSON_ArrayForEach(e, t->env) {
        const char *name = op_spec_str(e, "name", NULL);
        if (!name || strncmp(name, "FORMPIPE_", 9) == 0 || (op_spec_member(e, "value") && !cJSON_IsString(op_spec_member(e, "value"))))
            return fp_error_set(err, FP_EINVAL, "spec.container.env: each needs a name not starting with FORMPIPE_ "
                                "and a string value");
    }
    return 0;
}

static int parse_moderate(op_task *t, const cJSON *m, fp_error *err)
{
    const cJSON *e, *cm = op_spec_member(m, "wordsConfigMap");
    long long v;
    t->words_configmap = op_spec_str(cm, "name", NULL);
    t->words_key = op_spec_str(cm, "key", "words.txt");
    size_t cl = t->words_configmap ? strlen(t->words_configmap) : 0;
    if (!cl || cl > 253 || strspn(t->words_configmap, "abcdefghijklmnopqrstuvwxyz0123456789-.") != cl ||
        !*t->words_key || strchr(t->words_key, '/') ||
        strcmp(t->words_key, "..data") == 0 || strlen(t->words_key) > 253)
        return fp_error_set(err, FP_EINVAL, "spec.moderate.wordsConfigMap: a ConfigMap name and a key (a file name)");
    t->fields = op_spec_member(m, "fields");
    if (t->fields && (!cJSON_IsArray(t->fields) || cJSON_GetArraySize(t->fields) > OP_TASK_MAX_FIELDS))
        return fp_error_set(err, FP_EINVAL, "spec.moderate.fields: at most %d field names", OP_TASK_MAX_FIELDS);
    cJSON_ArrayForEach(e, t->fields)
        if (!cJSON_IsString(e) || !*e->valuestring || strlen(e->valuestring) > 255)
            return fp_error_set(err, FP_EINVAL, "spec.moderate.fields: field names (strings of 1 to 255 characters)");
    if (op_spec_int(m, "threshold", 1, 1, 1000000, "spec.moderate", &v, err) < 0)
        return err->code;
    t->threshold = (int)v;
    return 0;
}

const op_task_kind_info op_task_kinds[OP_TASK_KIND_COUNT] = {
    [OP_TASK_WEBHOOK] = {"webhook", 0, parse_webhook},
    [OP_TASK_CONTAINER] = {"container", 0, parse_container},
    [OP_TASK_EMAIL] = {"email", 0, parse_email},
    [OP_TASK_MODERATE] = {"moderate", 1, parse_moderate},
};

/* spec.filter: [{path, equals}] into "<path>=<JSON of equals>" (the container kind
 * refuses it: its image reads Kafka itself). */
static int parse_filter(op_task *t, const cJSON *f, fp_error *err)
{
    const cJSON *c;
    if (!f)
        return 0;
    if (t->kind == OP_TASK_CONTAINER)
        return fp_error_set(err, FP_EINVAL, "spec.filter: not for a container task (its image reads the events itself)");
    if (!cJSON_IsArray(f) || cJSON_GetArraySize(f) > OP_TASK_MAX_FILTER)
        return fp_error_set(err, FP_EINVAL, "spec.filter: a list of at most %d conditions", OP_TASK_MAX_FILTER);
    cJSON_ArrayForEach(c, f) {
        const char *path = op_spec_str(c, "path", NULL);
        const cJSON *eq = op_spec_member(c, "equals");
        int ok = path && *path && strlen(path) < 255 && path[0] != '.' && path[strlen(path) - 1] != '.' &&
                 !strstr(path, "..") && !strchr(path, '=');
        if (!ok || !eq || cJSON_IsArray(eq) || cJSON_IsObject(eq))
            return fp_error_set(err, FP_EINVAL, "spec.filter: each condition needs a dotted path (member names, no '=') "
                                "and equals: a string, number, boolean or null");
        char *value = cJSON_PrintUnformatted(eq);
        size_t n = value ? strlen(path) + strlen(value) + 2 : 0;
        char *cond = value ? malloc(n) : NULL;
        if (cond)
            snprintf(cond, n, "%s=%s", path, value);
        cJSON_free(value);
        if (!cond)
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        t->filter[t->nfilter++] = cond;
    }
    return 0;
}

static int parse_spec(op_task *t, const cJSON *spec, fp_error *err)
{
    long long v;
    t->pipeline = op_spec_str(spec, "pipeline", NULL);
    if (!op_spec_dns_label(t->pipeline, OP_MAX_NAME))
        return fp_error_set(err, FP_EINVAL, "spec.pipeline: must name a FormPipeline (a DNS label of at most %d characters)",
                            OP_MAX_NAME);
    const cJSON *source = op_spec_member(spec, "source");
    if (source) {
        t->source_task = op_spec_str(source, "task", NULL);
        if (!op_spec_dns_label(t->source_task, OP_TASK_MAX_NAME) || strcmp(t->source_task, t->name) == 0)
            return fp_error_set(err, FP_EINVAL, "spec.source.task: must name another FormTask");
    }
    int kinds = 0;
    for (int k = 0; k < OP_TASK_KIND_COUNT; k++)
        if (op_spec_member(spec, op_task_kinds[k].name)) {
            t->kind = (op_task_kind)k;
            kinds++;
        }
    if (kinds != 1)
        return fp_error_set(err, FP_EINVAL, "spec: exactly one kind must be set - webhook, email, moderate or container");
    int rc = op_task_kinds[t->kind].parse(t, op_spec_member(spec, op_task_kinds[t->kind].name), err);
    if (rc == 0)
        rc = parse_filter(t, op_spec_member(spec, "filter"), err);
    if (rc < 0)
        return rc;
    if (op_spec_int(spec, "maxAttempts", 10, 1, 100, "spec", &v, err) < 0)
        return err->code;
    t->max_attempts = (int)v;
    const cJSON *backoff = op_spec_member(spec, "backoff");
    if (op_spec_int(backoff, "initialMilliseconds", 1000, 10, 60000, "spec.backoff", &v, err) < 0)
        return err->code;
    t->backoff_initial_ms = (int)v;
    if (op_spec_int(backoff, "maxSeconds", 300, 1, 86400, "spec.backoff", &v, err) < 0)
        return err->code;
    t->backoff_max_s = (int)v;
    if ((long long)t->backoff_max_s * 1000 < t->backoff_initial_ms)
        return fp_error_set(err, FP_EINVAL, "spec.backoff: maxSeconds must not be below initialMilliseconds");
    const cJSON *scaling = op_spec_member(spec, "scaling");
    if (op_spec_int(scaling, "minReplicas", 1, 0, OP_MAX_PARTITIONS, "spec.scaling", &v, err) < 0)
        return err->code;
    t->min_replicas = (int)v;
    if (op_spec_int(scaling, "lagPerReplica", 1000, 0, 1000000000, "spec.scaling", &t->lag_per_replica, err) < 0)
        return err->code;
    if (op_spec_int(scaling, "scaleDownStabilizationSeconds", 300, 0, 86400, "spec.scaling", &v, err) < 0)
        return err->code;
    t->stabilization_s = (int)v;
    t->pod = op_spec_member(spec, "pod");   /* pod settings (podspec.h) */
    return op_podspec_check(t->pod, "spec.pod", err);
}

op_task *op_task_parse(const cJSON *obj, fp_error *err)
{
    op_task *t = calloc(1, sizeof *t);
    if (!t || !(t->obj = cJSON_Duplicate(obj, 1))) {
        free(t);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    /* Events name the object by apiVersion and kind, which list items may lack */
    if (!op_spec_member(t->obj, "apiVersion"))
        cJSON_AddStringToObject(t->obj, "apiVersion", OP_API_VERSION);
    if (!op_spec_member(t->obj, "kind"))
        cJSON_AddStringToObject(t->obj, "kind", OP_TASK_KIND);
    const cJSON *md = op_spec_member(t->obj, "metadata"), *f;
    t->ns = op_spec_str(md, "namespace", NULL);
    t->name = op_spec_str(md, "name", NULL);
    t->uid = op_spec_str(md, "uid", NULL);
    const cJSON *gen = op_spec_member(md, "generation");
    t->generation = cJSON_IsNumber(gen) ? (long long)gen->valuedouble : 0;
    t->deleting = op_spec_member(md, "deletionTimestamp") != NULL;
    cJSON_ArrayForEach(f, op_spec_member(md, "finalizers"))
        if (cJSON_IsString(f) && strcmp(f->valuestring, OP_TASK_FINALIZER) == 0)
            t->has_finalizer = 1;
    int rc;
    if (!t->ns || !t->name || !t->uid)
        rc = fp_error_set(err, FP_EINVAL, "metadata: namespace, name and uid required");
    else if (!op_spec_dns_label(t->name, OP_TASK_MAX_NAME) || strcmp(t->name, "dlq") == 0)
        rc = fp_error_set(err, FP_EINVAL, "metadata.name: must be a DNS label of at most %d characters, not dlq",
                          OP_TASK_MAX_NAME);
    else
        rc = parse_spec(t, op_spec_member(t->obj, "spec"), err);
    if (rc < 0) {
        op_task_free(t);
        return NULL;
    }
    return t;
}

void op_task_free(op_task *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->nfilter; i++)
        free(t->filter[i]);
    cJSON_Delete(t->obj);
    free(t);
}

int op_task_route_of(const op_task *t, const op_pipeline *p, op_task_route *r, fp_error *err)
{
    int rc = t->source_task ? fp_names_task_stream(p->topic, t->source_task, r->topic, sizeof r->topic)
                            : (snprintf(r->topic, sizeof r->topic, "%s", p->topic) < (int)sizeof r->topic ? 0 : FP_ELIMIT);
    if (rc == 0)
        rc = fp_names_task_group(t->ns, t->pipeline, t->name, r->group, sizeof r->group);
    if (rc == 0)
        rc = fp_names_task_dlq_topic(p->topic, t->name, r->dlq_topic, sizeof r->dlq_topic);
    r->stream_topic[0] = 0;
    if (rc == 0 && op_task_kinds[t->kind].produces_stream)
        rc = fp_names_task_stream(p->topic, t->name, r->stream_topic, sizeof r->stream_topic);
    if (rc < 0 || !fp_names_topic_valid(r->topic) || !fp_names_topic_valid(r->dlq_topic))
        return fp_error_set(err, FP_EINVAL, "the dead-letter topic %s.%s.dlq would be longer than Kafka's %d characters: "
                            "use a shorter task name", p->topic, t->name, FP_NAMES_MAX_TOPIC);
    return 0;
}

op_source_check op_task_check_source(const op_task *t, const op_task *source)
{
    if (!t->source_task)
        return OP_SOURCE_OK;
    if (!source || strcmp(source->pipeline, t->pipeline) != 0)
        return OP_SOURCE_NOT_FOUND;
    return op_task_kinds[source->kind].produces_stream ? OP_SOURCE_OK : OP_SOURCE_NO_STREAM;
}

void op_task_deployment_name(const op_task *t, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s-%s", t->name, OP_TASK_SUFFIX);
}

int op_task_owner_key(const cJSON *obj, char *out, size_t outsz)
{
    const cJSON *ref = op_child_controller_ref(obj);
    const char *kind = cJSON_GetStringValue(op_spec_member(ref, "kind"));
    const char *api = cJSON_GetStringValue(op_spec_member(ref, "apiVersion"));
    const char *name = cJSON_GetStringValue(op_spec_member(ref, "name"));
    const char *ns = cJSON_GetStringValue(op_spec_member(op_spec_member(obj, "metadata"), "namespace"));
    if (!kind || !api || !name || !ns || strcmp(kind, OP_TASK_KIND) != 0 || strcmp(api, OP_API_VERSION) != 0)
        return -1;
    int n = snprintf(out, outsz, "%s/%s", ns, name);
    return n > 0 && (size_t)n < outsz ? 0 : -1;
}
