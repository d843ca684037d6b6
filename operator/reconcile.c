/* reconcile.c — one FormPipeline, from spec to the world and back to status:
 *   1. parse + compile the spec (a bad spec: Ready=False/InvalidSpec, nothing touched);
 *   2. deletion: delete the topic if asked, then drop our finalizer;
 *   3. the finalizer present exactly when deleteTopicOnDelete is set;
 *   4. topic: create, grow, never shrink;
 *   5. consumer replicas: the partition count, or lag-based with stabilization;
 *   6. children by server-side apply, skipping objects someone else owns;
 *   7. status (merge patch on /status) only when it changed. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "conditions.h"
#include "controller_impl.h"
#include "events.h"
#include "log.h"
#include "rfc3339.h"

#define COMPONENT "formpipe-operator"

enum { C_READY, C_TOPIC, C_INGEST, C_CONSUMERS, C_FLUSH, C_COUNT };

typedef struct run {
    op_controller *c;
    kube_conn *conn;
    op_pipeline *p;
    const cJSON *obj;         /* the cached resource (p->obj) */
    op_condition cond[C_COUNT];
    int partitions;           /* actual */
    int consumers;            /* replicas applied */
    long long lag;            /* -1: unknown */
    int failed;               /* something must be retried */
    char conflict[256];       /* first ownership conflict, "" when none */
} run;

static void set_cond(run *r, int which, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_cond(run *r, int which, int status, const char *reason, const char *fmt, ...)
{
    static const char *const types[C_COUNT] = {"Ready", "TopicReady", "IngestAvailable",
                                               "ConsumersAvailable", "FlushScheduled"};
    op_condition *c = &r->cond[which];
    c->type = types[which];
    c->status = status;
    c->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
}

static const cJSON *status_of(const cJSON *obj)
{
    return cJSON_GetObjectItemCaseSensitive(obj, "status");
}

/* A numeric member as long long, def when absent or not a number. */
static long long num_or(const cJSON *obj, const char *key, long long def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : def;
}

static pipe_state *state_for(op_controller *c, const char *key)
{
    pipe_state *s = op_map_get(c->states, key);
    if (!s && (s = calloc(1, sizeof *s))) {
        s->synced_generation = -1;
        if (op_map_put(c->states, key, s) < 0) {
            free(s);
            s = NULL;
        }
    }
    return s;
}

static void resource_path(const op_pipeline *p, const char *sub, char *out, size_t outsz)
{
    snprintf(out, outsz, "/apis/" OP_API_VERSION "/namespaces/%s/" OP_PLURAL "/%s%s", p->ns, p->name, sub);
}

/* Writes status (merge patch) when it differs from what the object has. */
static int write_status(run *r, cJSON *status, const cJSON *obj, const char *ns, const char *name)
{
    int rc = 0;
    if (!cJSON_Compare(status, status_of(obj), 1)) {
        cJSON *patch = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(patch, "status", status);
        char *body = cJSON_PrintUnformatted(patch);
        cJSON_Delete(patch);
        char path[512];
        snprintf(path, sizeof path, "/apis/" OP_API_VERSION "/namespaces/%s/" OP_PLURAL "/%s/status", ns, name);
        fp_error err = {0};
        rc = body ? kube_request(r->conn, "PATCH", path, "application/merge-patch+json", body, NULL, NULL, &err) : FP_ENOMEM;
        if (rc < 0 && rc != FP_ENOTFOUND)
            fp_log_write(FP_LOG_WARN, "status update failed",
                         (const fp_log_field[]){FP_LSTR("pipeline", name), FP_LSTR("error", err.msg), FP_LEND});
        if (rc == FP_ENOTFOUND)
            rc = 0;   /* deleted meanwhile */
        free(body);
    }
    return rc;
}

/* A spec we cannot act on: say so in status (and an Event when it is news). */
static int report_invalid(op_controller *c, kube_conn *conn, const cJSON *obj, const char *why)
{
    run r = {.c = c, .conn = conn};
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
    if (!ns || !name)
        return 0;
    long long gen = num_or(md, "generation", 0);
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(status_of(obj), "conditions");
    const cJSON *old_ready = NULL, *it;
    cJSON_ArrayForEach(it, prev)
        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(it, "type")) &&
            strcmp(cJSON_GetObjectItemCaseSensitive(it, "type")->valuestring, "Ready") == 0)
            old_ready = it;
    const char *old_msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(old_ready, "message"));
    if (!old_msg || strcmp(old_msg, why) != 0)
        op_event_post(conn, obj, "Warning", "InvalidSpec", COMPONENT, c->cfg.identity, "%s", why);
    set_cond(&r, C_READY, 0, "InvalidSpec", "%s", why);
    char now[FP_RFC3339_MAX];
    fp_rfc3339_now(0, now, sizeof now);
    /* keep what the status said about the running pipeline; replace Ready only */
    cJSON *status = status_of(obj) ? cJSON_Duplicate(status_of(obj), 1) : cJSON_CreateObject();
    cJSON *conds = cJSON_CreateArray();
    cJSON *ready = op_conditions_build(prev, &r.cond[C_READY], 1, gen, now);
    cJSON_AddItemToArray(conds, cJSON_DetachItemFromArray(ready, 0));
    cJSON_Delete(ready);
    cJSON_ArrayForEach(it, prev)
        if (it != old_ready)
            cJSON_AddItemToArray(conds, cJSON_Duplicate(it, 1));
    cJSON_DeleteItemFromObjectCaseSensitive(status, "conditions");
    cJSON_AddItemToObject(status, "conditions", conds);
    cJSON_DeleteItemFromObjectCaseSensitive(status, "observedGeneration");
    cJSON_AddNumberToObject(status, "observedGeneration", (double)gen);
    int rc = write_status(&r, status, obj, ns, name);
    cJSON_Delete(status);
    return rc;
}

/* Sets metadata.finalizers to the list with ours added or removed (merge patch with a
 * resourceVersion precondition: a concurrent change means a retry, never a lost
 * finalizer of someone else). */
static int set_finalizer(run *r, int want)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(r->obj, "metadata");
    cJSON *list = cJSON_CreateArray(), *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(md, "finalizers"))
        if (cJSON_IsString(f) && strcmp(f->valuestring, OP_FINALIZER) != 0)
            cJSON_AddItemToArray(list, cJSON_CreateString(f->valuestring));
    if (want)
        cJSON_AddItemToArray(list, cJSON_CreateString(OP_FINALIZER));
    cJSON *patch = cJSON_CreateObject();
    cJSON *pmd = cJSON_AddObjectToObject(patch, "metadata");
    cJSON_AddItemToObject(pmd, "finalizers", list);
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "resourceVersion"));
    if (rv)
        cJSON_AddStringToObject(pmd, "resourceVersion", rv);
    char *body = cJSON_PrintUnformatted(patch);
    cJSON_Delete(patch);
    char path[512];
    resource_path(r->p, "", path, sizeof path);
    fp_error err = {0};
    int rc = body ? kube_request(r->conn, "PATCH", path, "application/merge-patch+json", body, NULL, NULL, &err) : FP_ENOMEM;
    free(body);
    if (rc < 0 && rc != FP_ENOTFOUND)
        fp_log_write(rc == KUBE_ECONFLICT ? FP_LOG_DEBUG : FP_LOG_WARN, "finalizer update failed",
                     (const fp_log_field[]){FP_LSTR("pipeline", r->p->name), FP_LSTR("error", err.msg), FP_LEND});
    return rc == FP_ENOTFOUND ? 0 : rc;
}

static int finish_deletion(run *r)
{
    if (!r->p->has_finalizer)
        return 0;
    if (r->p->delete_topic) {
        fp_error err = {0};
        if (op_kafka_delete(r->c->kafka, r->p->topic, &err) < 0) {
            fp_log_write(FP_LOG_WARN, "topic deletion failed",
                         (const fp_log_field[]){FP_LSTR("topic", r->p->topic), FP_LSTR("error", err.msg), FP_LEND});
            return err.code ? err.code : FP_EIO;
        }
        op_event_post(r->conn, r->obj, "Normal", "TopicDeleted", COMPONENT, r->c->cfg.identity,
                      "deleted Kafka topic %s", r->p->topic);
    }
    return set_finalizer(r, 0);
}

static void reconcile_topic(run *r)
{
    op_pipeline *p = r->p;
    fp_error err = {0};
    int actual = 0;
    int rc = op_kafka_partitions(r->c->kafka, p->topic, &actual, &err);
    if (rc == FP_ENOTFOUND) {
        rc = op_kafka_create(r->c->kafka, p->topic, p->partitions, p->replication_factor, &err);
        if (rc == 0) {
            actual = p->partitions;
            op_event_post(r->conn, r->obj, "Normal", "TopicCreated", COMPONENT, r->c->cfg.identity,
                          "created Kafka topic %s with %d partitions, replication factor %d", p->topic,
                          p->partitions, p->replication_factor);
        }
    } else if (rc == 0 && actual < p->partitions) {
        rc = op_kafka_grow(r->c->kafka, p->topic, p->partitions, &err);
        if (rc == 0) {
            op_event_post(r->conn, r->obj, "Normal", "TopicGrown", COMPONENT, r->c->cfg.identity,
                          "grew Kafka topic %s from %d to %d partitions", p->topic, actual, p->partitions);
            actual = p->partitions;
        }
    }
    if (rc < 0) {
        r->failed = 1;
        r->partitions = 0;
        set_cond(r, C_TOPIC, 0, rc == FP_EINVAL ? "TopicRejected" : "KafkaUnavailable", "%s", err.msg);
        return;
    }
    r->partitions = actual;
    if (actual > p->partitions) {
        const char *old = op_condition_status(cJSON_GetObjectItemCaseSensitive(status_of(r->obj), "conditions"), "TopicReady");
        const cJSON *oldp = cJSON_GetObjectItemCaseSensitive(status_of(r->obj), "partitions");
        if (!old || !cJSON_IsNumber(oldp) || (int)oldp->valuedouble != actual ||
            num_or(status_of(r->obj), "observedGeneration", -1) != p->generation)
            op_event_post(r->conn, r->obj, "Warning", "PartitionsNotShrunk", COMPONENT, r->c->cfg.identity,
                          "spec asks for %d partitions but topic %s has %d; Kafka partitions never shrink",
                          p->partitions, p->topic, actual);
        set_cond(r, C_TOPIC, 1, "PartitionsNotShrunk", "topic %s keeps its %d partitions (spec asks %d; partitions never shrink)",
                 p->topic, actual, p->partitions);
    } else {
        set_cond(r, C_TOPIC, 1, "TopicExists", "topic %s has %d partitions", p->topic, actual);
    }
}

/* The group's lag: measured at most once per lag interval (every reconcile would cost
 * each one a coordinator lookup and a watermark query per partition), and never in a
 * pipeline's first reconcile, so a new pipeline's children do not wait on Kafka (a
 * fresh cluster creates its offsets topic on the first group lookup). Lag-scaled
 * pipelines are requeued every interval and measured then. */
static void measure_lag(run *r, pipe_state *st)
{
    long long now = op_mono_ms(), interval = r->c->cfg.lag_interval_ms;
    r->lag = st->lag_at_ms ? st->lag : -1;
    if (st->lag_at_ms == 0) {
        st->lag_at_ms = now - (r->p->lag_per_replica > 0 ? interval : 0);
        st->lag = -1;
        return;
    }
    if (r->partitions <= 0 || now - st->lag_at_ms < interval)
        return;
    char group[512];
    snprintf(group, sizeof group, "formpipe.%s.%s", r->p->ns, r->p->name);
    fp_error err = {0};
    long long lag = -1;
    st->lag_at_ms = now;   /* a failed attempt also waits an interval */
    if (op_kafka_lag(r->c->kafka, group, r->p->topic, r->partitions, &lag, &err) < 0) {
        fp_log_write(FP_LOG_DEBUG, "lag unavailable",
                     (const fp_log_field[]){FP_LSTR("pipeline", r->p->name), FP_LSTR("error", err.msg), FP_LEND});
        return;   /* keep the previous value */
    }
    st->lag = r->lag = lag;
}

static void plan_consumers(run *r, pipe_state *st)
{
    op_pipeline *p = r->p;
    measure_lag(r, st);
    int max = r->partitions > 0 ? r->partitions : p->partitions;
    if (p->lag_per_replica <= 0) {
        r->consumers = max;
        return;
    }
    int min = p->consumer_min < max ? p->consumer_min : max;
    if (r->lag < 0) {   /* keep what runs until we can measure again */
        r->consumers = st->consumer_replicas > 0 ? st->consumer_replicas : min;
        return;
    }
    int desired = op_scale_from_lag(r->lag, p->lag_per_replica, min, max);
    r->consumers = op_scale_stabilize(&st->history, op_mono_ms(), (long long)p->stabilization_s * 1000, desired);
}

/* True when the current status already says reason/message on Ready, so an Event
 * about it would repeat itself. */
static int already_reported(const run *r, const char *reason, const char *message)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status_of(r->obj), "conditions")) {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));
        const char *rs = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "reason"));
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "message"));
        if (type && rs && msg && strcmp(type, "Ready") == 0)
            return strcmp(rs, reason) == 0 && strcmp(msg, message) == 0;
    }
    return 0;
}

/* generation when the object has one, else resourceVersion */
static void change_marker(const cJSON *obj, char *out, size_t outsz)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(md, "generation");
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "resourceVersion"));
    if (cJSON_IsNumber(gen))
        snprintf(out, outsz, "g%lld", (long long)gen->valuedouble);
    else
        snprintf(out, outsz, "r%s", rv ? rv : "");
}

/* Applies one child unless someone else owns an object of that name, or nothing
 * changed since our last apply. */
static void apply_child(run *r, pipe_state *st, op_child_kind kind)
{
    const op_child_type *t = &op_child_types[kind];
    op_pipeline *p = r->p;
    char name[128], key[256], path[512];
    op_pipeline_child(p, t->suffix, name, sizeof name);
    snprintf(key, sizeof key, "%s/%s", p->ns, name);
    int n = snprintf(path, sizeof path, t->collection, p->ns);
    snprintf(path + n, sizeof path - (size_t)n, "/%s", name);

    cJSON *body = op_child_build(p, &r->c->cfg.defaults, kind, r->consumers);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text) {
        r->failed = 1;
        return;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), md);
    char hash[17];
    for (int i = 0; i < 8; i++)
        snprintf(hash + 2 * i, 3, "%02x", md[i]);

    fp_error err = {0};
    cJSON *cached = op_informer_get(op_child_informer(r->c, kind), key);
    int owned = cached && op_child_owned_by(cached, p->uid);
    if (!owned && !cached) {   /* not ours as far as the cache knows: look before writing */
        int rc = kube_request(r->conn, "GET", path, NULL, NULL, &cached, NULL, &err);
        if (rc < 0 && rc != FP_ENOTFOUND) {
            r->failed = 1;
            fp_log_write(FP_LOG_WARN, "cannot look at a child before creating it",
                         (const fp_log_field[]){FP_LSTR("pipeline", p->name), FP_LSTR("kind", t->kind),
                                                FP_LSTR("name", name), FP_LSTR("error", err.msg), FP_LEND});
            free(text);
            return;
        }
        owned = cached && op_child_owned_by(cached, p->uid);
    }
    if (cached && !owned) {
        if (!r->conflict[0]) {
            snprintf(r->conflict, sizeof r->conflict, "%s %.60s exists and is not owned by this FormPipeline", t->kind, name);
            if (!already_reported(r, "OwnershipConflict", r->conflict))
                op_event_post(r->conn, r->obj, "Warning", "OwnershipConflict", COMPONENT, r->c->cfg.identity,
                          "%s; left alone", r->conflict);
        }
        cJSON_Delete(cached);
        free(text);
        return;
    }
    char marker[64] = "";
    if (cached)
        change_marker(cached, marker, sizeof marker);
    cJSON_Delete(cached);
    applied_mark *mark = &st->applied[kind];
    if (owned && strcmp(mark->hash, hash) == 0 && strcmp(mark->marker, marker) == 0) {
        free(text);
        return;   /* our last apply is still what is there */
    }
    strcat(path, "?fieldManager=" OP_FIELD_MANAGER "&force=true");
    cJSON *result = NULL;
    int rc = kube_request(r->conn, "PATCH", path, "application/apply-patch+yaml", text, &result, NULL, &err);
    free(text);
    if (rc < 0) {
        r->failed = 1;
        fp_log_write(FP_LOG_WARN, "apply failed",
                     (const fp_log_field[]){FP_LSTR("pipeline", p->name), FP_LSTR("kind", t->kind),
                                            FP_LSTR("name", name), FP_LSTR("error", err.msg), FP_LEND});
        mark->hash[0] = 0;
        cJSON_Delete(result);
        return;
    }
    memcpy(mark->hash, hash, sizeof hash);
    change_marker(result, mark->marker, sizeof mark->marker);
    cJSON_Delete(result);
}

/* readyReplicas of a cached Deployment into *ready; 1 when it is current and has all
 * replicas available. */
static int deployment_available(op_controller *c, const op_pipeline *p, op_child_kind kind, int want, int *ready)
{
    char name[128], key[256];
    op_pipeline_child(p, op_child_types[kind].suffix, name, sizeof name);
    snprintf(key, sizeof key, "%s/%s", p->ns, name);
    cJSON *d = op_informer_get(op_child_informer(c, kind), key);
    const cJSON *st = status_of(d);
    *ready = (int)num_or(st, "readyReplicas", 0);
    int available = (int)num_or(st, "availableReplicas", 0);
    long long observed = num_or(st, "observedGeneration", 0);
    long long gen = num_or(cJSON_GetObjectItemCaseSensitive(d, "metadata"), "generation", 0);
    int ok = d && op_child_owned_by(d, p->uid) && observed >= gen && available >= want && *ready >= want;
    cJSON_Delete(d);
    return ok;
}

static cJSON *build_status(run *r)
{
    op_pipeline *p = r->p;
    op_controller *c = r->c;
    int ing_ready = 0, con_ready = 0;
    int ing_ok = deployment_available(c, p, OP_CHILD_INGEST_DEPLOYMENT, p->ingest_replicas, &ing_ready);
    int con_ok = deployment_available(c, p, OP_CHILD_CONSUMER_DEPLOYMENT, r->consumers, &con_ready);
    set_cond(r, C_INGEST, ing_ok, ing_ok ? "ReplicasReady" : "ReplicasNotReady", "%d/%d ingest replicas ready",
             ing_ready, p->ingest_replicas);
    set_cond(r, C_CONSUMERS, con_ok, con_ok ? "ReplicasReady" : "ReplicasNotReady", "%d/%d consumer replicas ready",
             con_ready, r->consumers);

    char name[128], key[256];
    op_pipeline_child(p, "flush", name, sizeof name);
    snprintf(key, sizeof key, "%s/%s", p->ns, name);
    cJSON *cj = op_informer_get(op_child_informer(c, OP_CHILD_FLUSH_CRONJOB), key);
    int cj_ok = cj && op_child_owned_by(cj, p->uid);
    set_cond(r, C_FLUSH, cj_ok, cj_ok ? "Scheduled" : "NotScheduled", cj_ok ? "flush runs on schedule \"%s\"" : "flush CronJob %s not created yet",
             cj_ok ? p->schedule : name);

    if (r->conflict[0]) {
        set_cond(r, C_READY, 0, "OwnershipConflict", "%s", r->conflict);
    } else {
        const char *missing = NULL;
        for (int i = C_TOPIC; i < C_COUNT && !missing; i++)
            if (r->cond[i].status != 1)
                missing = r->cond[i].type;
        if (missing)
            set_cond(r, C_READY, 0, "NotReady", "%s is not True", missing);
        else
            set_cond(r, C_READY, 1, "AllReady", "the pipeline is running");
    }

    cJSON *status = cJSON_CreateObject();
    cJSON_AddNumberToObject(status, "observedGeneration", (double)p->generation);
    cJSON_AddStringToObject(status, "topic", p->topic);
    cJSON_AddNumberToObject(status, "partitions", r->partitions);
    cJSON *ing = cJSON_AddObjectToObject(status, "ingest");
    cJSON_AddNumberToObject(ing, "replicas", p->ingest_replicas);
    cJSON_AddNumberToObject(ing, "readyReplicas", ing_ready);
    char url[512];
    snprintf(url, sizeof url, "%s%s/forms/%s", p->host ? "http://" : "", p->host ? p->host : "", p->name);
    cJSON_AddStringToObject(ing, "url", url);
    cJSON *con = cJSON_AddObjectToObject(status, "consumer");
    cJSON_AddNumberToObject(con, "replicas", r->consumers);
    cJSON_AddNumberToObject(con, "readyReplicas", con_ready);
    if (r->lag >= 0)
        cJSON_AddNumberToObject(con, "lag", (double)r->lag);
    cJSON *flush = cJSON_AddObjectToObject(status, "flush");
    cJSON_AddStringToObject(flush, "schedule", p->schedule);
    const cJSON *cjs = status_of(cj);
    static const char *const times[] = {"lastSuccessfulTime", "lastScheduleTime"};
    for (size_t i = 0; i < 2; i++) {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cjs, times[i]));
        if (t)
            cJSON_AddStringToObject(flush, times[i], t);
    }
    cJSON_Delete(cj);
    char now[FP_RFC3339_MAX];
    fp_rfc3339_now(0, now, sizeof now);
    cJSON *conds = op_conditions_build(cJSON_GetObjectItemCaseSensitive(status_of(r->obj), "conditions"),
                                       r->cond, C_COUNT, p->generation, now);
    if (conds)
        cJSON_AddItemToObject(status, "conditions", conds);
    return status;
}

int op_reconcile(op_controller *c, kube_conn *conn, const char *key, long long *requeue_ms)
{
    *requeue_ms = 0;
    cJSON *obj = op_informer_get(c->pipelines, key);
    if (!obj) {   /* gone: forget it */
        pthread_mutex_lock(&c->lock);
        op_map_del(c->states, key);
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(obj, &c->cfg.defaults, &err);
    if (!p) {
        int rc = err.code == FP_EINVAL ? report_invalid(c, conn, obj, err.msg) : err.code;
        cJSON_Delete(obj);
        return rc;
    }
    cJSON_Delete(obj);
    run r = {.c = c, .conn = conn, .p = p, .obj = p->obj, .lag = -1};
    int rc = 0;
    if (p->deleting) {
        rc = finish_deletion(&r);
        op_pipeline_free(p);
        return rc;
    }
    if (p->delete_topic != p->has_finalizer && (rc = set_finalizer(&r, p->delete_topic)) < 0) {
        op_pipeline_free(p);
        return rc;   /* retried; the finalizer must be in place before the topic exists */
    }

    /* Per-pipeline state is only touched by the worker holding this key (the queue
     * never hands a key to two workers), so the lock guards the map, not the entry. */
    pthread_mutex_lock(&c->lock);
    pipe_state *st = state_for(c, key);
    pthread_mutex_unlock(&c->lock);
    if (!st) {
        op_pipeline_free(p);
        return FP_ENOMEM;
    }
    long long t_start = op_mono_ms();
    reconcile_topic(&r);
    long long t_topic = op_mono_ms();
    plan_consumers(&r, st);
    long long t_lag = op_mono_ms();
    if (st->consumer_replicas && st->consumer_replicas != r.consumers)
        op_event_post(conn, r.obj, "Normal", "ScaledConsumers", COMPONENT, c->cfg.identity,
                      "consumer replicas %d -> %d (partitions %d, lag %lld)", st->consumer_replicas, r.consumers,
                      r.partitions, r.lag);
    for (int k = 0; k < OP_CHILD_COUNT; k++)
        if (k != OP_CHILD_CONSUMER_DEPLOYMENT || r.partitions > 0)
            apply_child(&r, st, (op_child_kind)k);
    if (r.partitions > 0)
        st->consumer_replicas = r.consumers;

    long long t_apply = op_mono_ms();
    cJSON *status = build_status(&r);
    rc = status ? write_status(&r, status, r.obj, p->ns, p->name) : FP_ENOMEM;
    cJSON_Delete(status);
    if (fp_log_enabled(FP_LOG_DEBUG))
        fp_log_write(FP_LOG_DEBUG, "reconciled",
                     (const fp_log_field[]){FP_LSTR("pipeline", key), FP_LINT("topic_ms", t_topic - t_start),
                                            FP_LINT("lag_ms", t_lag - t_topic), FP_LINT("apply_ms", t_apply - t_lag),
                                            FP_LINT("status_ms", op_mono_ms() - t_apply), FP_LEND});
    if (rc == 0 && !r.failed)
        st->synced_generation = p->generation;
    if (p->lag_per_replica > 0)
        *requeue_ms = c->cfg.lag_interval_ms;
    op_pipeline_free(p);
    return rc < 0 ? rc : r.failed ? FP_EIO : 0;
}
