/* taskdeploy.c — see taskdeploy.h. */
#include "taskdeploy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "children.h"
#include "jsonb.h"
#include "podspec.h"

/* The labels of the task's objects; selector_only: the three the Deployment selects on. */
static void labels(cJSON *o, const op_task *t, int selector_only)
{
    op_jb_str(o, "app.kubernetes.io/name", "formpipe-task");
    op_jb_str(o, "app.kubernetes.io/instance", t->name);
    op_jb_str(o, "app.kubernetes.io/component", "task");
    if (selector_only)
        return;
    op_jb_str(o, "app.kubernetes.io/part-of", "formpipe");
    op_jb_str(o, "app.kubernetes.io/managed-by", "formpipe-operator");
    op_jb_str(o, "formpipe.io/pipeline", t->pipeline);
    op_jb_str(o, "formpipe.io/task", t->name);
}

/* --filter for each spec.filter condition (the built-in kinds). */
static void filter_args(const op_task *t, const op_pod_parts *pp)
{
    for (int i = 0; i < t->nfilter; i++)
        op_jb_argf(pp->args, "--filter=%s", t->filter[i]);
}

/* What formpipe-task's runner needs whatever the kind (webhook, email): where to read,
 * its group and dead letters, attempts, backoff, the filter. */
static void runner_args(const op_task *t, const op_task_route *r, const op_pod_parts *pp)
{
    op_jb_argf(pp->args, "--kind=%s", op_task_kinds[t->kind].name);
    op_jb_argf(pp->args, "--topic=%s", r->topic);
    op_jb_argf(pp->args, "--group=%s", r->group);
    op_jb_argf(pp->args, "--dlq-topic=%s", r->dlq_topic);
    op_jb_argf(pp->args, "--max-attempts=%d", t->max_attempts);
    op_jb_argf(pp->args, "--concurrency=%d", t->concurrency);
    op_jb_argf(pp->args, "--backoff-initial=%dms", t->backoff_initial_ms);
    op_jb_argf(pp->args, "--backoff-max=%ds", t->backoff_max_s);
    op_jb_argf(pp->args, "--admin-port=%d", OP_TASK_ADMIN_PORT);
    filter_args(t, pp);
}

/* The moderate kind's memory limit over the task defaults: librdkafka holds a
 * transaction and the prefetch (bench/moderate: 170 MiB at the peak). */
#define MODERATE_RESOURCES "{\"limits\":{\"memory\":\"512Mi\"}}"

/* formpipe-task's command line for a moderate task: the output stream, the word list
 * from the ConfigMap mounted whole (a subPath mount would never see an update), the
 * fields and threshold. Its transactional.id is <group>.<pod name> (the hostname). */
static void moderate_container(const op_task *t, const op_pipeline *p, const op_task_route *r, const op_pod_parts *pp)
{
    const cJSON *it;
    op_jb_argf(pp->args, "--kind=moderate");
    op_jb_argf(pp->args, "--topic=%s", r->topic);
    op_jb_argf(pp->args, "--group=%s", r->group);
    op_jb_argf(pp->args, "--dlq-topic=%s", r->dlq_topic);
    op_jb_argf(pp->args, "--output-topic=%s", r->stream_topic);
    op_jb_argf(pp->args, "--admin-port=%d", OP_TASK_ADMIN_PORT);
    op_jb_argf(pp->args, "--moderate-words-file=%s/%s", OP_TASK_WORDS_DIR, t->words_key);
    op_jb_argf(pp->args, "--moderate-threshold=%d", t->threshold);
    /* transactional.id <group>.<pod name>: one per replica, kept by a restarted container */
    cJSON *pod = cJSON_CreateObject();
    op_jb_str(pod, "name", "FORMPIPE_POD_NAME");
    op_jb_str(cJSON_AddObjectToObject(cJSON_AddObjectToObject(pod, "valueFrom"), "fieldRef"), "fieldPath", "metadata.name");
    cJSON_AddItemToArray(pp->env, pod);
    cJSON_ArrayForEach(it, t->fields)
        op_jb_argf(pp->args, "--moderate-field=%s", it->valuestring);
    filter_args(t, pp);
    cJSON *v = cJSON_CreateObject();
    op_jb_str(v, "name", "words");
    cJSON *cm = cJSON_AddObjectToObject(v, "configMap");
    op_jb_str(cm, "name", t->words_configmap);
    cJSON_AddItemToArray(pp->volumes, v);
    cJSON *m = cJSON_CreateObject();
    op_jb_str(m, "name", "words");
    op_jb_str(m, "mountPath", OP_TASK_WORDS_DIR);
    cJSON_AddBoolToObject(m, "readOnly", 1);
    cJSON_AddItemToArray(pp->mounts, m);
    op_child_kafka_settings(pp, p, NULL);
    op_child_served_port(pp->container, "admin", OP_TASK_ADMIN_PORT);
}

/* formpipe-task's command line for a webhook task (the shared contract of issue #17). */
static void webhook_container(const op_task *t, const op_pipeline *p, const op_task_route *r, const op_pod_parts *pp)
{
    runner_args(t, r, pp);
    op_jb_argf(pp->args, "--webhook-url=%s", t->url);
    op_jb_argf(pp->args, "--webhook-timeout=%ds", t->timeout_s);
    op_jb_argf(pp->args, "--webhook-mode=%s", t->content_mode);
    if (t->allow_http)
        op_jb_argf(pp->args, "--webhook-allow-http");
    if (t->secret.name) {
        op_child_secret_volume(pp->volumes, pp->mounts, "webhook-secret", &t->secret, t->secret.key, OP_TASK_WEBHOOK_DIR);
        op_jb_argf(pp->args, "--webhook-secret-file=%s/%s", OP_TASK_WEBHOOK_DIR, t->secret.key);
    }
    op_child_kafka_settings(pp, p, NULL);
    op_child_served_port(pp->container, "admin", OP_TASK_ADMIN_PORT);
}

/* formpipe-task's command line for an email task: the SMTP Secret mounted whole (url,
 * username, password), the templates, and the pipeline's Redis for the sent-records. */
static void email_container(const op_task *t, const op_pipeline *p, const op_task_route *r, const op_pod_parts *pp)
{
    runner_args(t, r, pp);
    op_jb_argf(pp->args, "--email-smtp-dir=%s", OP_TASK_SMTP_DIR);
    op_jb_argf(pp->args, "--email-pipeline=%s/%s", t->ns, t->pipeline);
    op_jb_argf(pp->args, "--email-task=%s", t->name);
    op_jb_argf(pp->args, "--email-from=%s", t->from);
    op_jb_argf(pp->args, "--email-to-field=%s", t->to_field);
    op_jb_argf(pp->args, "--email-subject=%s", t->subject);
    op_jb_argf(pp->args, "--email-text=%s", t->text);
    if (t->html)
        op_jb_argf(pp->args, "--email-html=%s", t->html);
    op_jb_argf(pp->args, "--email-rate=%d", t->rate_per_second);
    op_jb_argf(pp->args, "--email-timeout=%ds", t->timeout_s);
    op_jb_argf(pp->args, "--email-max-connections=%d", t->max_connections);
    op_jb_argf(pp->args, "--email-sent-ttl=%dh", t->sent_ttl_hours);
    cJSON *v = cJSON_CreateObject();
    op_jb_str(v, "name", "smtp");
    cJSON *secret = cJSON_AddObjectToObject(v, "secret");
    op_jb_str(secret, "secretName", t->smtp_secret);
    cJSON_AddNumberToObject(secret, "defaultMode", 0440);
    cJSON_AddItemToArray(pp->volumes, v);
    cJSON *m = cJSON_CreateObject();
    op_jb_str(m, "name", "smtp");
    op_jb_str(m, "mountPath", OP_TASK_SMTP_DIR);
    cJSON_AddBoolToObject(m, "readOnly", 1);
    cJSON_AddItemToArray(pp->mounts, m);
    op_child_redis_settings(pp, p);
    op_child_kafka_settings(pp, p, NULL);
    op_child_served_port(pp->container, "admin", OP_TASK_ADMIN_PORT);
}

/* The team's image: its args and env, the task's facts as FORMPIPE_* variables, a
 * writable /tmp (the root file system is read-only). */
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
    op_jb_str(tmp, "name", "tmp");
    cJSON_AddObjectToObject(tmp, "emptyDir");
    cJSON_AddItemToArray(pp->volumes, tmp);
    cJSON *m = cJSON_CreateObject();
    op_jb_str(m, "name", "tmp");
    op_jb_str(m, "mountPath", "/tmp");
    cJSON_AddItemToArray(pp->mounts, m);
}

/* Each kind's container: formpipe-task's command line and mounts. */
static void (*const containers[OP_TASK_KIND_COUNT])(const op_task *, const op_pipeline *, const op_task_route *,
                                                    const op_pod_parts *) = {
    [OP_TASK_WEBHOOK] = webhook_container,
    [OP_TASK_CONTAINER] = team_container,
    [OP_TASK_EMAIL] = email_container,
    [OP_TASK_MODERATE] = moderate_container,
};

cJSON *op_taskdeploy_build(const op_task *t, const op_pipeline *p, const op_task_route *r, const op_defaults *d,
                           const char *image_task, int replicas)
{
    char name[128];
    op_task_deployment_name(t, name, sizeof name);
    cJSON *o = cJSON_CreateObject();
    op_jb_str(o, "apiVersion", "apps/v1");
    op_jb_str(o, "kind", "Deployment");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    op_jb_str(md, "name", name);
    op_jb_str(md, "namespace", t->ns);
    labels(cJSON_AddObjectToObject(md, "labels"), t, 0);
    cJSON *ref = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(md, "ownerReferences"), ref);
    op_jb_str(ref, "apiVersion", OP_API_VERSION);
    op_jb_str(ref, "kind", OP_TASK_KIND);
    op_jb_str(ref, "name", t->name);
    op_jb_str(ref, "uid", t->uid);
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
    if (t->kind == OP_TASK_WEBHOOK || t->kind == OP_TASK_EMAIL)
        cJSON_AddNumberToObject(podspec, "terminationGracePeriodSeconds", 15 + t->timeout_s);
    op_pod_parts pp;
    op_child_pod(podspec, "task", t->kind == OP_TASK_CONTAINER ? t->image : image_task, d, &pp);
    containers[t->kind](t, p, r, &pp);
    /* pod settings: the operator's defaults < the kind's own needs (a container task's
     * spec.container.resources; moderate's memory limit) < spec.pod (podspec.h) */
    cJSON *extra = cJSON_CreateObject(), *selector = cJSON_CreateObject();
    if (t->kind == OP_TASK_CONTAINER && t->resources)
        cJSON_AddItemReferenceToObject(extra, "resources", (cJSON *)t->resources);
    else if (t->kind == OP_TASK_MODERATE)
        cJSON_AddItemToObject(extra, "resources", cJSON_Parse(MODERATE_RESOURCES));
    cJSON *settings = op_podspec_for(OP_POD_TASK, d->pods, extra, t->pod);
    labels(selector, t, 1);
    op_podspec_apply(settings, cJSON_GetObjectItemCaseSensitive(tmpl, "metadata"), podspec, pp.container, selector);
    cJSON_Delete(settings);
    cJSON_Delete(selector);
    cJSON_Delete(extra);
    return o;
}
