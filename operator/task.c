/* task.c — see task.h. */
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "children.h"
#include "names.h"
#include "spec.h"

const op_task_kind_info op_task_kinds[OP_TASK_KIND_COUNT] = {
    [OP_TASK_WEBHOOK] = {"webhook", 0},
    [OP_TASK_CONTAINER] = {"container", 0},
};

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
        return fp_error_set(err, FP_EINVAL, "spec: exactly one kind must be set - webhook or container");
    int rc = t->kind == OP_TASK_WEBHOOK ? parse_webhook(t, op_spec_member(spec, "webhook"), err)
                                        : parse_container(t, op_spec_member(spec, "container"), err);
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
