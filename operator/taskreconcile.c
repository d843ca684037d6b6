/* taskreconcile.c — one FormTask (see taskreconcile.h):
 *   1. parse the spec (a bad one: Ready=False/InvalidSpec, nothing touched);
 *   2. deletion: stop the pods (Deployment scaled to 0, wait until none is left), delete
 *      the dead-letter topic and the output stream of a kind that writes one, then drop
 *      our finalizer (the Deployment goes by ownerReference garbage collection);
 *   3. the pipeline from the cache (missing: Ready=False/PipelineNotFound, nothing made;
 *      the controller requeues the task when the pipeline appears), the source check;
 *   4. metadata: the pipeline as controller owner (once it exists), our finalizer (before
 *      any topic exists);
 *   5. topics: the one it reads must exist; its dead-letter topic (and the output stream
 *      <topic>.<task> of a kind that writes one) is created or grown to the same
 *      partitions (the dead-letter topic recreated and reported when it vanished);
 *   6. offsets of its group (at most once an interval): lag, progress, committed, dead letters;
 *   7. replicas from lag (scale.h, with the stabilization window), the Deployment by
 *      server-side apply unless someone else owns the name;
 *   8. status only when it changed. */
#include "taskreconcile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "children.h"
#include "clock.h"
#include "events.h"
#include "log.h"
#include "rfc3339.h"
#include "spec.h"
#include "task.h"
#include "taskdeploy.h"
#include "taskstatus.h"

#define COMPONENT "formpipe-operator"
#define DEPLOYMENTS "/apis/apps/v1/namespaces/%s/deployments"

typedef struct trun {
    const op_task_env *env;
    op_task *t;
    op_task_state *st;
    op_pipeline *p;            /* NULL until resolved */
    op_task_route route;
    op_task_observed seen;
    int failed;                /* something must be retried */
    char conflict[256], detail[256];
} trun;

op_task_state *op_task_state_new(void)
{
    op_task_state *st = calloc(1, sizeof *st);
    if (st) {
        st->synced_generation = -1;
        st->committed = st->dead_lettered = -1;
    }
    return st;
}

void op_task_state_free(void *state)
{
    op_task_state *st = state;
    if (!st)
        return;
    op_progress_clear(&st->progress);
    free(st);
}

static const cJSON *status_of(const cJSON *obj)
{
    return op_spec_member(obj, "status");
}

static void event(const trun *r, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An Event about the task. */
static void event(const trun *r, const char *type, const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    op_event_post(r->env->conn, r->t->obj, type, reason, COMPONENT, r->env->identity, "%s", msg);
}

/* The FormTask's API path with sub ("" or "/status"). */
static void task_path(const char *ns, const char *name, const char *sub, char *out, size_t outsz)
{
    snprintf(out, outsz, "/apis/" OP_API_VERSION "/namespaces/%s/" OP_TASK_PLURAL "/%s%s", ns, name, sub);
}

static int write_status(const op_task_env *env, const cJSON *obj, const cJSON *status, const char *ns, const char *name)
{
    char path[512];
    fp_error err = {0};
    task_path(ns, name, "/status", path, sizeof path);
    int rc = op_apply_status(env->conn, path, status, status_of(obj), &err);
    if (rc < 0)
        fp_log_warn("task status update failed", FP_LSTR("task", name), FP_LSTR("error", err.msg));
    return rc;
}

/* A spec we cannot act on: Ready=False/InvalidSpec (an Event when it is news). */
static int report_invalid(const op_task_env *env, const cJSON *obj, const char *why)
{
    const cJSON *md = op_spec_member(obj, "metadata");
    const char *ns = cJSON_GetStringValue(op_spec_member(md, "namespace")), *name = cJSON_GetStringValue(op_spec_member(md, "name"));
    if (!ns || !name)
        return 0;
    const cJSON *gen = op_spec_member(md, "generation");
    char now[FP_RFC3339_MAX];
    fp_rfc3339_now(0, now, sizeof now);
    cJSON *status = op_taskstatus_invalid(status_of(obj), cJSON_IsNumber(gen) ? (long long)gen->valuedouble : 0, why, now);
    if (!status)
        return FP_ENOMEM;
    if (op_condition_status(op_spec_member(status_of(obj), "conditions"), "Ready") == NULL ||
        !cJSON_Compare(status, status_of(obj), 1)) {
        cJSON *copy = cJSON_Duplicate(obj, 1);   /* Events need apiVersion and kind */
        if (copy && !op_spec_member(copy, "kind")) {
            cJSON_AddStringToObject(copy, "kind", OP_TASK_KIND);
            cJSON_AddStringToObject(copy, "apiVersion", OP_API_VERSION);
        }
        op_event_post(env->conn, copy ? copy : obj, "Warning", "InvalidSpec", COMPONENT, env->identity, "%s", why);
        cJSON_Delete(copy);
    }
    int rc = write_status(env, obj, status, ns, name);
    cJSON_Delete(status);
    return rc;
}

/* 1 when metadata holds our finalizer exactly when want_finalizer, and (owner given) a
 * controller ownerReference to it. */
static int metadata_current(const op_task *t, int want_finalizer, const op_pipeline *owner)
{
    if (t->has_finalizer != want_finalizer)
        return 0;
    if (!owner)
        return 1;
    const cJSON *ref;
    cJSON_ArrayForEach(ref, op_spec_member(op_spec_member(t->obj, "metadata"), "ownerReferences")) {
        const char *uid = cJSON_GetStringValue(op_spec_member(ref, "uid"));
        if (uid && strcmp(uid, owner->uid) == 0 && cJSON_IsTrue(op_spec_member(ref, "controller")))
            return 1;
    }
    return 0;
}

/* Sets our finalizer (present or not) and, with owner, the pipeline as the controller
 * ownerReference (replacing a reference to an earlier FormPipeline of that name), by a
 * merge patch with a resourceVersion precondition, so nobody else's entries are lost. */
static int set_metadata(trun *r, int want_finalizer, const op_pipeline *owner)
{
    if (metadata_current(r->t, want_finalizer, owner))
        return 0;
    const cJSON *md = op_spec_member(r->t->obj, "metadata"), *it;
    cJSON *patch = cJSON_CreateObject();
    cJSON *pmd = cJSON_AddObjectToObject(patch, "metadata");
    cJSON *fins = cJSON_AddArrayToObject(pmd, "finalizers");
    int ok = fins != NULL;
    cJSON_ArrayForEach(it, op_spec_member(md, "finalizers"))
        if (cJSON_IsString(it) && strcmp(it->valuestring, OP_TASK_FINALIZER) != 0)
            ok = ok && cJSON_AddItemToArray(fins, cJSON_CreateString(it->valuestring));
    if (want_finalizer)
        ok = ok && cJSON_AddItemToArray(fins, cJSON_CreateString(OP_TASK_FINALIZER));
    if (owner) {
        cJSON *refs = cJSON_AddArrayToObject(pmd, "ownerReferences");
        ok = ok && refs;
        cJSON_ArrayForEach(it, op_spec_member(md, "ownerReferences")) {
            const char *kind = cJSON_GetStringValue(op_spec_member(it, "kind"));
            if (!kind || strcmp(kind, OP_KIND) != 0)
                ok = ok && cJSON_AddItemToArray(refs, cJSON_Duplicate(it, 1));
        }
        cJSON *ref = cJSON_CreateObject();
        ok = ok && cJSON_AddItemToArray(refs, ref) && cJSON_AddStringToObject(ref, "apiVersion", OP_API_VERSION) &&
             cJSON_AddStringToObject(ref, "kind", OP_KIND) && cJSON_AddStringToObject(ref, "name", owner->name) &&
             cJSON_AddStringToObject(ref, "uid", owner->uid) && cJSON_AddBoolToObject(ref, "controller", 1) &&
             cJSON_AddBoolToObject(ref, "blockOwnerDeletion", 1);
    }
    const char *rv = cJSON_GetStringValue(op_spec_member(md, "resourceVersion"));
    if (rv)
        ok = ok && cJSON_AddStringToObject(pmd, "resourceVersion", rv);
    char *body = ok ? cJSON_PrintUnformatted(patch) : NULL;
    cJSON_Delete(patch);
    char path[512];
    task_path(r->t->ns, r->t->name, "", path, sizeof path);
    fp_error err = {0};
    int rc = body ? kube_request(r->env->conn, "PATCH", path, "application/merge-patch+json", body, NULL, NULL, &err)
                  : FP_ENOMEM;
    free(body);
    if (rc < 0 && rc != KUBE_ECONFLICT && rc != FP_ENOTFOUND)
        fp_log_warn("task metadata update failed", FP_LSTR("task", r->t->name), FP_LSTR("error", err.msg));
    return rc == FP_ENOTFOUND ? 0 : rc;
}

/* The dead-letter topic recorded in status (the pipeline may be gone by now). */
static const char *recorded_dlq(const op_task *t)
{
    return cJSON_GetStringValue(op_spec_member(status_of(t->obj), "deadLetterTopic"));
}

/* The output stream recorded in status (the pipeline may be gone by now). */
static const char *recorded_stream(const op_task *t)
{
    return cJSON_GetStringValue(op_spec_member(status_of(t->obj), "outputTopic"));
}

/* The task's pods stop before its dead-letter topic goes: a pod still running (or in its
 * shutdown grace) could write a dead letter to a deleted topic, or have the broker create
 * it again. Scales the Deployment to 0 (merge patch) and counts the pods still there
 * into *left. */
static int stop_pods(trun *r, int *left)
{
    char name[128], path[1024];
    op_task_deployment_name(r->t, name, sizeof name);
    snprintf(path, sizeof path, DEPLOYMENTS "/%s", r->t->ns, name);
    fp_error err = {0};
    *left = 0;
    int rc = kube_request(r->env->conn, "PATCH", path, "application/merge-patch+json", "{\"spec\":{\"replicas\":0}}",
                          NULL, NULL, &err);
    if (rc < 0 && rc != FP_ENOTFOUND) {
        fp_log_warn("cannot stop the task's pods", FP_LSTR("task", r->t->name), FP_LSTR("error", err.msg));
        return rc;
    }
    cJSON *pods = NULL;
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods?labelSelector=app.kubernetes.io/component%%3Dtask,"
             "formpipe.io/task%%3D%s&limit=500", r->t->ns, r->t->name);
    if ((rc = kube_request(r->env->conn, "GET", path, NULL, NULL, &pods, NULL, &err)) < 0) {
        fp_log_warn("cannot list the task's pods", FP_LSTR("task", r->t->name), FP_LSTR("error", err.msg));
        return rc;
    }
    *left = cJSON_GetArraySize(op_spec_member(pods, "items"));
    cJSON_Delete(pods);
    return 0;
}

static void resolve(trun *r);

/* Stops the pods, deletes the dead-letter topic (the one status recorded, else the
 * pipeline's name for it), then lets the object go. *requeue_ms while pods remain. */
static int finish_deletion(trun *r, long long *requeue_ms)
{
    if (!r->t->has_finalizer)
        return 0;
    int left = 0, rc = stop_pods(r, &left);
    if (rc < 0)
        return rc;
    if (left > 0) {
        *requeue_ms = 1000;
        return 0;
    }
    const char *dlq = recorded_dlq(r->t), *stream = recorded_stream(r->t);
    if (!dlq || (!stream && op_task_kinds[r->t->kind].produces_stream)) {   /* deleted before its status said: the
                                                                             pipeline names them, if still there */
        resolve(r);
        dlq = dlq ? dlq : r->seen.dlq_topic;
        stream = stream ? stream : r->seen.output_topic;
    }
    if (stream) {   /* no reader of it is left to the task: its readers are other tasks, which wait for it again */
        fp_error err = {0};
        if (op_kafka_delete(r->env->kafka, stream, &err) < 0) {
            fp_log_warn("output stream deletion failed", FP_LSTR("topic", stream), FP_LSTR("error", err.msg));
            return err.code ? err.code : FP_EIO;
        }
        event(r, "Normal", "TopicDeleted", "deleted output stream %s", stream);
    }
    if (dlq) {
        fp_error err = {0};
        if (op_kafka_delete(r->env->kafka, dlq, &err) < 0) {
            fp_log_warn("dead-letter topic deletion failed", FP_LSTR("topic", dlq), FP_LSTR("error", err.msg));
            return err.code ? err.code : FP_EIO;
        }
        event(r, "Normal", "TopicDeleted", "deleted dead-letter topic %s", dlq);
    }
    return set_metadata(r, 0, NULL);
}

/* The pipeline (r->p), the task's names and its source; the first problem into seen.block. */
static void resolve(trun *r)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%s", r->t->ns, r->t->pipeline);
    cJSON *pobj = op_informer_get(r->env->pipelines, key);
    fp_error err = {0};
    if (!pobj || op_spec_member(op_spec_member(pobj, "metadata"), "deletionTimestamp")) {
        r->seen.block = OP_BLOCK_PIPELINE_NOT_FOUND;
    } else if (!(r->p = op_pipeline_parse(pobj, r->env->defaults, &err))) {
        r->seen.block = OP_BLOCK_PIPELINE_INVALID;
        snprintf(r->detail, sizeof r->detail, "%s", err.msg);
        r->failed = err.code != FP_EINVAL;
    }
    cJSON_Delete(pobj);
    if (!r->p)
        return;
    if (op_task_route_of(r->t, r->p, &r->route, &err) < 0) {
        r->seen.block = OP_BLOCK_PIPELINE_INVALID;
        snprintf(r->detail, sizeof r->detail, "%s", err.msg);
        return;
    }
    r->seen.topic = r->route.topic;
    r->seen.group = r->route.group;
    r->seen.dlq_topic = r->route.dlq_topic;
    r->seen.output_topic = r->route.stream_topic[0] ? r->route.stream_topic : NULL;
    if (!r->t->source_task)
        return;
    snprintf(key, sizeof key, "%s/%s", r->t->ns, r->t->source_task);
    cJSON *sobj = op_informer_get(r->env->tasks, key);
    op_task *source = sobj ? op_task_parse(sobj, &err) : NULL;
    switch (op_task_check_source(r->t, source)) {
    case OP_SOURCE_NOT_FOUND: r->seen.block = OP_BLOCK_SOURCE_NOT_FOUND; break;
    case OP_SOURCE_NO_STREAM: r->seen.block = OP_BLOCK_SOURCE_NO_STREAM; break;
    default: break;
    }
    op_task_free(source);
    cJSON_Delete(sobj);
}

/* The output stream <topic>.<task> with the partitions (n) of the topic read: created,
 * or grown with it. 0, or negative with *err. */
static int ensure_stream(trun *r, int n, fp_error *err)
{
    int sn = 0, rc = op_kafka_partitions(r->env->kafka, r->route.stream_topic, &sn, err);
    if (rc == FP_ENOTFOUND) {
        if ((rc = op_kafka_create(r->env->kafka, r->route.stream_topic, n, r->p->replication_factor, err)) == 0)
            event(r, "Normal", "TopicCreated", "created output stream %s with %d partitions", r->route.stream_topic, n);
    } else if (rc == 0 && sn < n && (rc = op_kafka_grow(r->env->kafka, r->route.stream_topic, n, err)) == 0) {
        event(r, "Normal", "TopicGrown", "grew output stream %s from %d to %d partitions", r->route.stream_topic, sn, n);
    }
    return rc < 0 ? rc : 0;
}

/* The topic it reads must exist; the dead-letter topic is made to match it. */
static void ensure_topics(trun *r)
{
    fp_error err = {0};
    int n = 0, dn = 0, recreated = 0;
    int rc = op_kafka_partitions(r->env->kafka, r->route.topic, &n, &err);
    if (rc == FP_ENOTFOUND) {
        r->seen.block = OP_BLOCK_TOPIC_MISSING;
        return;
    }
    if (rc == 0 && (rc = op_kafka_partitions(r->env->kafka, r->route.dlq_topic, &dn, &err)) == FP_ENOTFOUND) {
        /* created with the pipeline's dead-letter topic configs (retention: topicconfig.h) */
        if ((rc = op_kafka_create_with(r->env->kafka, r->route.dlq_topic, n, r->p->replication_factor, &r->p->dlq_config,
                                       NULL, &err)) == 0) {
            const char *before = recorded_dlq(r->t);
            if (before && strcmp(before, r->route.dlq_topic) == 0) {
                recreated = 1;
                event(r, "Warning", "DeadLetterTopicRecreated",
                      "dead-letter topic %s was missing (deleted by hand?) and was created again", r->route.dlq_topic);
            } else {
                event(r, "Normal", "TopicCreated", "created dead-letter topic %s with %d partitions", r->route.dlq_topic, n);
            }
        }
    } else if (rc == 0 && dn < n && (rc = op_kafka_grow(r->env->kafka, r->route.dlq_topic, n, &err)) == 0) {
        event(r, "Normal", "TopicGrown", "grew dead-letter topic %s from %d to %d partitions", r->route.dlq_topic, dn, n);
    }
    if (rc == 0 && r->route.stream_topic[0])
        rc = ensure_stream(r, n, &err);
    r->seen.dlq_recreated = op_progress_dlq_recreated(&r->st->dlq_recreated_ms, recreated, fp_clock_mono_ms());
    if (rc < 0) {
        r->failed = 1;
        r->seen.block = OP_BLOCK_KAFKA;
        snprintf(r->detail, sizeof r->detail, "%s", err.msg);
        return;
    }
    r->seen.partitions = n;
}

/* Offsets of the group: lag, progress, committed, dead letters; at most once an
 * interval, the first half an interval after the task's first reconcile. */
static void measure(trun *r)
{
    op_task_state *st = r->st;
    long long now = fp_clock_mono_ms(), interval = r->env->measure_interval_ms;
    int n = r->seen.partitions;
    if (st->measured_at_ms == 0) {
        st->measured_at_ms = now - interval / 2;
        return;
    }
    if (n <= 0 || now - st->measured_at_ms < interval)
        return;
    st->measured_at_ms = now;
    op_partition_offsets *offs = calloc((size_t)n, sizeof *offs);
    fp_error err = {0};
    if (!offs || op_kafka_offsets(r->env->kafka, r->route.group, r->route.topic, n, offs, &err) < 0 ||
        op_progress_update(&st->progress, offs, n, now, (long long)r->p->progress_deadline_s * 1000, &st->stall) < 0) {
        fp_log_debug("task offsets unavailable", FP_LSTR("task", r->t->name), FP_LSTR("error", offs ? err.msg : "out of memory"));
        free(offs);
        return;
    }
    long long committed = 0;
    for (int i = 0; i < n; i++)
        committed += offs[i].committed > 0 ? offs[i].committed : 0;
    free(offs);
    st->measured = 1;
    st->committed = committed;
    long long dead = 0;
    if (op_kafka_log_end_total(r->env->kafka, r->route.dlq_topic, n, &dead, &err) == 0)
        st->dead_lettered = dead;
}

/* Replicas: from the lag with scale-down stabilization (one per partition when
 * lagPerReplica is 0); while lag is unknown, what runs. */
static int plan_replicas(trun *r)
{
    const op_task *t = r->t;
    op_task_state *st = r->st;
    int max = r->seen.partitions;
    if (t->lag_per_replica <= 0)
        return max;
    int min = t->min_replicas < max ? t->min_replicas : max;
    if (!st->measured)
        return st->replicas > 0 ? st->replicas : min;
    int desired = op_scale_from_lag(st->stall.lag, t->lag_per_replica, min, max);
    return op_scale_stabilize(&st->history, fp_clock_mono_ms(), (long long)t->stabilization_s * 1000, desired);
}

/* The Deployment, unless its name is someone else's. */
static void apply_deployment(trun *r, int replicas)
{
    char name[128], collection[512];
    op_task_deployment_name(r->t, name, sizeof name);
    snprintf(collection, sizeof collection, DEPLOYMENTS, r->t->ns);
    cJSON *body = op_taskdeploy_build(r->t, r->p, &r->route, r->env->defaults, r->env->defaults->image_task, replicas);
    fp_error err = {0};
    int rc = body ? op_apply_owned(r->env->conn, r->env->deployments, collection, r->t->ns, name, body, r->t->uid,
                                   &r->st->applied, &err)
                  : fp_error_set(&err, FP_ENOMEM, "out of memory");
    cJSON_Delete(body);
    if (rc == OP_APPLY_FOREIGN) {
        snprintf(r->conflict, sizeof r->conflict, "Deployment %s exists and is not owned by this FormTask", name);
        const cJSON *c = NULL, *it;
        cJSON_ArrayForEach(it, op_spec_member(status_of(r->t->obj), "conditions"))
            if (cJSON_GetStringValue(op_spec_member(it, "type")) && strcmp(op_spec_member(it, "type")->valuestring, "Ready") == 0)
                c = it;
        const char *reason = cJSON_GetStringValue(op_spec_member(c, "reason"));
        if (!reason || strcmp(reason, "OwnershipConflict") != 0)
            event(r, "Warning", "OwnershipConflict", "%s; left alone", r->conflict);
    } else if (rc < 0) {
        r->failed = 1;
        fp_log_warn("apply failed", FP_LSTR("task", r->t->name), FP_LSTR("kind", "Deployment"), FP_LSTR("name", name),
                    FP_LSTR("error", err.msg));
    }
    if (rc == 0 && r->st->replicas && r->st->replicas != replicas)
        event(r, "Normal", "ScaledTask", "task replicas %d -> %d (partitions %d, lag %lld)", r->st->replicas, replicas,
              r->seen.partitions, r->st->stall.lag);
    if (rc == 0)
        r->st->replicas = replicas;
}

/* Ready replicas of the cached Deployment; 1 when current with every wanted one available. */
static int deployment_available(trun *r, int want, int *ready)
{
    char name[128], key[256];
    op_task_deployment_name(r->t, name, sizeof name);
    snprintf(key, sizeof key, "%s/%s", r->t->ns, name);
    cJSON *d = op_informer_get(r->env->deployments, key);
    if (d && !op_child_owned_by(d, r->t->uid)) {
        cJSON_Delete(d);
        d = NULL;
    }
    const cJSON *st = status_of(d), *md = op_spec_member(d, "metadata");
    *ready = cJSON_IsNumber(op_spec_member(st, "readyReplicas")) ? op_spec_member(st, "readyReplicas")->valueint : 0;
    int available = cJSON_IsNumber(op_spec_member(st, "availableReplicas")) ? op_spec_member(st, "availableReplicas")->valueint : 0;
    long long observed = cJSON_IsNumber(op_spec_member(st, "observedGeneration")) ? (long long)op_spec_member(st, "observedGeneration")->valuedouble : 0;
    long long gen = cJSON_IsNumber(op_spec_member(md, "generation")) ? (long long)op_spec_member(md, "generation")->valuedouble : 0;
    int ok = d && observed >= gen && available >= want && *ready >= want;
    cJSON_Delete(d);
    return ok;
}

/* Steps 3-8 for a task that is not being deleted. */
static int reconcile_live(trun *r)
{
    resolve(r);
    /* the pipeline owns the task as soon as both exist (its deletion takes the task along,
     * even one that cannot run); our finalizer comes before the first topic */
    if (r->p) {
        int rc = set_metadata(r, r->seen.block == OP_BLOCK_NONE || r->t->has_finalizer, r->p);
        if (rc < 0)
            return rc;
    }
    if (r->seen.block == OP_BLOCK_NONE)
        ensure_topics(r);
    if (r->seen.block == OP_BLOCK_NONE) {
        measure(r);
        r->seen.replicas = plan_replicas(r);
        apply_deployment(r, r->seen.replicas);
        r->seen.available = deployment_available(r, r->seen.replicas, &r->seen.ready_replicas);
    }
    r->seen.conflict = r->conflict;
    r->seen.block_detail = r->detail;
    r->seen.stall = r->st->measured && r->seen.block == OP_BLOCK_NONE ? &r->st->stall : NULL;
    r->seen.committed = r->st->committed;
    r->seen.dead_lettered = r->st->dead_lettered;
    char now[FP_RFC3339_MAX];
    fp_rfc3339_now(0, now, sizeof now);
    op_condition cond[OP_TC_COUNT];
    cJSON *status = op_taskstatus_build(r->t, &r->seen, status_of(r->t->obj), now, cond);
    if (status && r->env->metrics) {
        op_taskmetrics_set(r->env->metrics, r->t, &r->seen, cond);
        snprintf(r->st->pipeline, sizeof r->st->pipeline, "%s", r->t->pipeline);
    }
    int rc = status ? write_status(r->env, r->t->obj, status, r->t->ns, r->t->name) : FP_ENOMEM;
    cJSON_Delete(status);
    return rc;
}

int op_task_reconcile(const op_task_env *env, const cJSON *obj, op_task_state *st, long long *requeue_ms)
{
    *requeue_ms = 0;
    fp_error err = {0};
    op_task *t = op_task_parse(obj, &err);
    if (!t)
        return err.code == FP_EINVAL ? report_invalid(env, obj, err.msg) : err.code;
    trun r = {.env = env, .t = t, .st = st, .seen = {.committed = -1, .dead_lettered = -1}};
    int rc;
    if (t->deleting) {
        rc = finish_deletion(&r, requeue_ms);
    } else {
        rc = reconcile_live(&r);
        if (rc == 0 && !r.failed)
            st->synced_generation = t->generation;
        /* lag is measured every interval; a missing pipeline or source comes back through
         * their informers' events */
        if (r.seen.block != OP_BLOCK_PIPELINE_NOT_FOUND && r.seen.block != OP_BLOCK_SOURCE_NOT_FOUND)
            *requeue_ms = env->measure_interval_ms;
    }
    op_pipeline_free(r.p);
    op_task_free(t);
    return rc < 0 ? rc : r.failed ? FP_EIO : 0;
}
