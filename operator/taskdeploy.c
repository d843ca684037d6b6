/* taskdeploy.c — see taskdeploy.h. */
#include "taskdeploy.h"

#include <stdarg.h>
#include <stdio.h>

#include "children.h"
#include "podspec.h"

static void str(cJSON *o, const char *k, const char *v)
{
    cJSON_AddStringToObject(o, k, v);
}

/* One argument "--name=value" (printf-style) appended to args. */
static void arg(cJSON *args, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void arg(cJSON *args, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cJSON_AddItemToArray(args, cJSON_CreateString(buf));
}

/* The labels of the task's objects; selector_only: the three the Deployment selects on. */
static void labels(cJSON *o, const op_task *t, int selector_only)
{
    str(o, "app.kubernetes.io/name", "formpipe-task");
    str(o, "app.kubernetes.io/instance", t->name);
    str(o, "app.kubernetes.io/component", "task");
    if (selector_only)
        return;
    str(o, "app.kubernetes.io/part-of", "formpipe");
    str(o, "app.kubernetes.io/managed-by", "formpipe-operator");
    str(o, "formpipe.io/pipeline", t->pipeline);
    str(o, "formpipe.io/task", t->name);
}

/* formpipe-task's command line for a webhook task (the shared contract of issue #17). */
static void webhook_container(const op_task *t, const op_pipeline *p, const op_task_route *r, const op_pod_parts *pp)
{
    arg(pp->args, "--kind=%s", op_task_kinds[t->kind].name);
    arg(pp->args, "--topic=%s", r->topic);
    arg(pp->args, "--group=%s", r->group);
    arg(pp->args, "--dlq-topic=%s", r->dlq_topic);
    arg(pp->args, "--max-attempts=%d", t->max_attempts);
    arg(pp->args, "--concurrency=%d", t->concurrency);
    arg(pp->args, "--backoff-initial=%dms", t->backoff_initial_ms);
    arg(pp->args, "--backoff-max=%ds", t->backoff_max_s);
    arg(pp->args, "--admin-port=%d", OP_TASK_ADMIN_PORT);
    arg(pp->args, "--webhook-url=%s", t->url);
    arg(pp->args, "--webhook-timeout=%ds", t->timeout_s);
    arg(pp->args, "--webhook-mode=%s", t->content_mode);
    if (t->secret.name) {
        op_child_secret_volume(pp->volumes, pp->mounts, "webhook-secret", &t->secret, t->secret.key, OP_TASK_WEBHOOK_DIR);
        arg(pp->args, "--webhook-secret-file=%s/%s", OP_TASK_WEBHOOK_DIR, t->secret.key);
    }
    op_child_kafka_settings(pp, p, NULL);
    op_child_served_port(pp->container, "admin", OP_TASK_ADMIN_PORT);
    op_child_resources(pp->container, "100m", "64Mi", "256Mi");
}

/* The team's image: its args and env, the task's facts as FORMPIPE_* variables, a
 * writable /tmp (the root file system is read-only), and its resources. */
static void team_container(const op_task *t, const op_pipeline *p, const op_task_route *r, const op_pod_parts *pp)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, t->args)
        cJSON_AddItemToArray(pp->args, cJSON_CreateString(it->valuestring));
    op_child_env(pp->env, "FORMPIPE_TOPIC", r->topic);
    op_child_env(pp->env, "FORMPIPE_GROUP", r->group);
    op_child_env(pp->env, "FORMPIPE_DLQ_TOPIC", r->dlq_topic);
    op_child_env(pp->env, "FORMPIPE_PIPELINE", t->pipeline);
    op_child_env(pp->env, "FORMPIPE_TASK", t->name);
    char n[16];
    snprintf(n, sizeof n, "%d", t->max_attempts);
    op_child_env(pp->env, "FORMPIPE_MAX_ATTEMPTS", n);
    op_child_kafka_settings(pp, p, "FORMPIPE_KAFKA_CONFIG");
    cJSON_ArrayForEach(it, t->env)
        op_child_env(pp->env, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name")),
                     cJSON_IsString(cJSON_GetObjectItemCaseSensitive(it, "value"))
                         ? cJSON_GetObjectItemCaseSensitive(it, "value")->valuestring : "");
    cJSON *tmp = cJSON_CreateObject();
    str(tmp, "name", "tmp");
    cJSON_AddObjectToObject(tmp, "emptyDir");
    cJSON_AddItemToArray(pp->volumes, tmp);
    cJSON *m = cJSON_CreateObject();
    str(m, "name", "tmp");
    str(m, "mountPath", "/tmp");
    cJSON_AddItemToArray(pp->mounts, m);
    if (t->resources)
        cJSON_AddItemToObject(pp->container, "resources", cJSON_Duplicate(t->resources, 1));
    else
        op_child_resources(pp->container, "100m", "64Mi", "256Mi");
}

cJSON *op_taskdeploy_build(const op_task *t, const op_pipeline *p, const op_task_route *r, const op_defaults *d,
                           const char *image_task, int replicas)
{
    char name[128];
    op_task_deployment_name(t, name, sizeof name);
    cJSON *o = cJSON_CreateObject();
    str(o, "apiVersion", "apps/v1");
    str(o, "kind", "Deployment");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    str(md, "name", name);
    str(md, "namespace", t->ns);
    labels(cJSON_AddObjectToObject(md, "labels"), t, 0);
    cJSON *ref = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(md, "ownerReferences"), ref);
    str(ref, "apiVersion", OP_API_VERSION);
    str(ref, "kind", OP_TASK_KIND);
    str(ref, "name", t->name);
    str(ref, "uid", t->uid);
    cJSON_AddBoolToObject(ref, "controller", 1);
    cJSON_AddBoolToObject(ref, "blockOwnerDeletion", 1);

    cJSON *spec = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddNumberToObject(spec, "replicas", replicas);
    cJSON_AddNumberToObject(spec, "revisionHistoryLimit", 3);
    labels(cJSON_AddObjectToObject(cJSON_AddObjectToObject(spec, "selector"), "matchLabels"), t, 1);
    cJSON *tmpl = cJSON_AddObjectToObject(spec, "template");
    labels(cJSON_AddObjectToObject(cJSON_AddObjectToObject(tmpl, "metadata"), "labels"), t, 0);
    cJSON *podspec = cJSON_AddObjectToObject(tmpl, "spec");
    /* a webhook task stops within its shutdown grace (10 s) plus a request's timeout */
    if (t->kind == OP_TASK_WEBHOOK)
        cJSON_AddNumberToObject(podspec, "terminationGracePeriodSeconds", 15 + t->timeout_s);
    op_pod_parts pp;
    op_child_pod(podspec, "task", t->kind == OP_TASK_CONTAINER ? t->image : image_task, d, &pp);
    if (t->kind == OP_TASK_CONTAINER)
        team_container(t, p, r, &pp);
    else
        webhook_container(t, p, r, &pp);
    /* pod settings: the operator's defaults < spec.container.resources < spec.pod (podspec.h) */
    cJSON *extra = t->resources ? cJSON_CreateObject() : NULL, *selector = cJSON_CreateObject();
    if (extra)
        cJSON_AddItemReferenceToObject(extra, "resources", (cJSON *)t->resources);
    cJSON *settings = op_podspec_for(OP_POD_TASK, d->pods, extra, t->pod);
    labels(selector, t, 1);
    op_podspec_apply(settings, cJSON_GetObjectItemCaseSensitive(tmpl, "metadata"), podspec, pp.container, selector);
    cJSON_Delete(settings);
    cJSON_Delete(selector);
    cJSON_Delete(extra);
    return o;
}
