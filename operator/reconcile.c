/* reconcile.c — one FormPipeline, from spec to the world and back to status:
 *   1. parse + compile the spec (a bad spec: Ready=False/InvalidSpec, one outside the
 *      operator's allowlists: Ready=False/NotAllowed; nothing touched either way);
 *   2. deletion: delete the topics if asked, then drop our finalizer;
 *   3. the finalizer present exactly when deleteTopicOnDelete is set;
 *   4. topics: the pipeline's and its dead-letter topic: create, grow, never shrink;
 *      their configs set to spec.kafka.config (drift reverted, topicconfig.h);
 *   5. offsets: lag and progress per partition, dead letters (at most once an interval);
 *   6. consumer replicas: the partition count, or lag-based with stabilization;
 *   7. status.columns first when the form gained a column, then the children by
 *      server-side apply, skipping objects someone else owns (an owned child the spec
 *      no longer wants, the ingest HPA, is deleted);
 *   8. status (merge patch on /status) only when it changed (status.h decides it). */
#include "reconcile.h"
#include "topicowner.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conditions.h"
#include "events.h"
#include "log.h"
#include "rfc3339.h"
#include "spec.h"
#include "sharedrec.h"
#include "status.h"

#define COMPONENT "formpipe-operator"

typedef struct run {
    const op_reconcile_env *env;
    op_pipeline *p;
    const cJSON *obj;         /* the pipeline's own copy of the resource (p->obj) */
    op_pipe_state *st;
    op_observed seen;
    op_mode_plan plan;        /* which workloads serve it (shared.h) */
    int in_forms;             /* op_shared_membership of the shared ConfigMap */
    long long requeue_ms;     /* a switch waits: come back then (0: the interval) */
    int failed;               /* something must be retried */
    char conflict[256];       /* first ownership conflict, "" when none */
} run;

op_pipe_state *op_pipe_state_new(void)
{
    op_pipe_state *st = calloc(1, sizeof *st);
    if (st) {
        st->synced_generation = -1;
        st->lag = st->dead_letters = -1;
    }
    return st;
}

void op_pipe_state_free(void *state)
{
    op_pipe_state *st = state;
    if (!st)
        return;
    op_progress_clear(&st->progress);
    free(st);
}

static const cJSON *status_of(const cJSON *obj)
{
    return cJSON_GetObjectItemCaseSensitive(obj, "status");
}

static void event(const run *r, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An Event about the pipeline. */
static void event(const run *r, const char *type, const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    op_event_post(r->env->conn, r->obj, type, reason, COMPONENT, r->env->identity, "%s", msg);
}

/* The FormPipeline's API path, with sub ("" or "/status") appended, into out. */
static void resource_path(const char *ns, const char *name, const char *sub, char *out, size_t outsz)
{
    snprintf(out, outsz, "/apis/" OP_API_VERSION "/namespaces/%s/" OP_PLURAL "/%s%s", ns, name, sub);
}

/* Merge-patches /status with status. FP_ENOTFOUND (deleted meanwhile) counts as done. */
static int patch_status(kube_conn *conn, cJSON *status, const char *ns, const char *name)
{
    cJSON *patch = cJSON_CreateObject();
    if (!patch || !cJSON_AddItemReferenceToObject(patch, "status", status)) {
        cJSON_Delete(patch);
        return FP_ENOMEM;
    }
    char *body = cJSON_PrintUnformatted(patch);
    cJSON_Delete(patch);
    char path[512];
    resource_path(ns, name, "/status", path, sizeof path);
    fp_error err = {0};
    int rc = body ? kube_request(conn, "PATCH", path, "application/merge-patch+json", body, NULL, NULL, &err) : FP_ENOMEM;
    free(body);
    if (rc < 0 && rc != FP_ENOTFOUND)
        fp_log_warn("status update failed", FP_LSTR("pipeline", name), FP_LSTR("error", err.msg));
    return rc == FP_ENOTFOUND ? 0 : rc;
}

/* Writes status when it differs from what the object has. */
static int write_status(kube_conn *conn, cJSON *status, const cJSON *obj, const char *ns, const char *name)
{
    return cJSON_Compare(status, status_of(obj), 1) ? 0 : patch_status(conn, status, ns, name);
}

/* The Ready condition of obj's status, or NULL. */
static const cJSON *ready_condition(const cJSON *obj)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(status_of(obj), "conditions")) {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "type"));
        if (type && strcmp(type, "Ready") == 0)
            return it;
    }
    return NULL;
}

/* A spec we cannot act on (reason InvalidSpec or NotAllowed): say so in status (and an Event when it is news), keeping
 * what the status said about the running pipeline. */
static int report_invalid(const op_reconcile_env *env, const cJSON *obj, const char *reason, const char *why)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
    if (!ns || !name)
        return 0;
    long long gen = op_spec_num(md, "generation", 0);
    const cJSON *old_ready = ready_condition(obj), *it;
    const char *old_msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(old_ready, "message"));
    if (!old_msg || strcmp(old_msg, why) != 0)
        op_event_post(env->conn, obj, "Warning", reason, COMPONENT, env->identity, "%s", why);
    op_condition want = {.type = "Ready", .status = 0, .reason = reason};
    snprintf(want.message, sizeof want.message, "%s", why);
    char now[FP_RFC3339_MAX];
    fp_rfc3339_now(0, now, sizeof now);
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(status_of(obj), "conditions");
    cJSON *status = status_of(obj) ? cJSON_Duplicate(status_of(obj), 1) : cJSON_CreateObject();
    cJSON *conds = cJSON_CreateArray();
    cJSON *ready = op_conditions_build(prev, &want, 1, gen, now);
    if (!status || !conds || !ready) {
        cJSON_Delete(status);
        cJSON_Delete(conds);
        cJSON_Delete(ready);
        return FP_ENOMEM;
    }
    cJSON_AddItemToArray(conds, cJSON_DetachItemFromArray(ready, 0));
    cJSON_Delete(ready);
    cJSON_ArrayForEach(it, prev)
        if (it != old_ready)
            cJSON_AddItemToArray(conds, cJSON_Duplicate(it, 1));
    cJSON_DeleteItemFromObjectCaseSensitive(status, "conditions");
    cJSON_AddItemToObject(status, "conditions", conds);
    cJSON_DeleteItemFromObjectCaseSensitive(status, "observedGeneration");
    cJSON_AddNumberToObject(status, "observedGeneration", (double)gen);
    int rc = write_status(env->conn, status, obj, ns, name);
    cJSON_Delete(status);
    return rc;
}

/* Sets metadata.finalizers to the list with ours added or removed (merge patch with a
 * resourceVersion precondition: a concurrent change means a retry, never a lost
 * finalizer of someone else). */
static int set_finalizer(run *r, int want)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(r->obj, "metadata"), *f;
    cJSON *patch = cJSON_CreateObject();
    cJSON *pmd = cJSON_AddObjectToObject(patch, "metadata");
    cJSON *list = cJSON_AddArrayToObject(pmd, "finalizers");
    int ok = list != NULL;   /* a patch missing one would drop someone's finalizer */
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(md, "finalizers"))
        if (cJSON_IsString(f) && strcmp(f->valuestring, OP_FINALIZER) != 0)
            ok = ok && cJSON_AddItemToArray(list, cJSON_CreateString(f->valuestring));
    if (want)
        ok = ok && cJSON_AddItemToArray(list, cJSON_CreateString(OP_FINALIZER));
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "resourceVersion"));
    if (rv)
        ok = ok && cJSON_AddStringToObject(pmd, "resourceVersion", rv);
    char *body = ok ? cJSON_PrintUnformatted(patch) : NULL;
    cJSON_Delete(patch);
    char path[512];
    resource_path(r->p->ns, r->p->name, "", path, sizeof path);
    fp_error err = {0};
    int rc = body ? kube_request(r->env->conn, "PATCH", path, "application/merge-patch+json", body, NULL, NULL, &err)
                  : FP_ENOMEM;
    free(body);
    if (rc == KUBE_ECONFLICT)
        fp_log_debug("finalizer update conflicts; retried", FP_LSTR("pipeline", r->p->name));
    else if (rc < 0 && rc != FP_ENOTFOUND)
        fp_log_warn("finalizer update failed", FP_LSTR("pipeline", r->p->name), FP_LSTR("error", err.msg));
    return rc == FP_ENOTFOUND ? 0 : rc;
}

/* Deletes the pipeline's topics (dead-letter topic first) when it created them, then
 * lets the object go. */
static int finish_deletion(run *r)
{
    if (!r->p->has_finalizer)
        return 0;
    if (r->p->delete_topic && !op_topic_may_change(op_topic_ownership(status_of(r->obj), r->p->topic, 1))) {
        event(r, "Warning", "TopicNotDeleted", "Kafka topic %s was not created by this FormPipeline: left in place",
              r->p->topic);
    } else if (r->p->delete_topic) {
        const char *topics[] = {r->p->dlq_topic, r->p->topic};
        for (size_t i = 0; i < 2; i++) {
            fp_error err = {0};
            if (op_kafka_delete(r->env->kafka, topics[i], &err) < 0) {
                fp_log_warn("topic deletion failed", FP_LSTR("topic", topics[i]), FP_LSTR("error", err.msg));
                return err.code ? err.code : FP_EIO;
            }
            event(r, "Normal", "TopicDeleted", "deleted Kafka topic %s", topics[i]);
        }
    }
    return set_finalizer(r, 0);
}

/* Creates topic with want partitions or grows it to them, given rc and *actual from
 * op_kafka_partitions of it; the count it has into *actual. *created tells whether it
 * had to be created. */
static int ensure_topic(run *r, const char *topic, int rc, int want, const op_topicconfig *config, int *actual,
                        int *created, fp_error *err)
{
    op_pipeline *p = r->p;
    int existed = 0;
    *created = 0;
    if (rc == FP_ENOTFOUND) {
        if ((rc = op_kafka_create_with(r->env->kafka, topic, want, p->replication_factor, config, &existed, err)) < 0)
            return rc;
        if (existed && topic == p->topic)   /* another creator won the race after our claim: not ours */
            return FP_EPERM;
        *actual = want;
        if (existed)   /* the dead-letter topic, created a moment ago: the metadata lagged */
            return 0;
        *created = 1;
        event(r, "Normal", "TopicCreated", "created Kafka topic %s with %d partitions, replication factor %d", topic,
              want, p->replication_factor);
    } else if (rc == 0 && *actual < want) {
        if ((rc = op_kafka_grow(r->env->kafka, topic, want, err)) < 0)
            return rc;
        event(r, "Normal", "TopicGrown", "grew Kafka topic %s from %d to %d partitions", topic, *actual, want);
        *actual = want;
    }
    return rc;
}

/* Makes the topic's allowlisted configs what want says (topicconfig.h): reads them,
 * and writes them back only when they differ (a change or a hand edit: an Event). */
static int configure_topic(run *r, const char *topic, const op_topicconfig *want, fp_error *err)
{
    op_topicconfig current = {0}, all = {0};
    int rc = op_kafka_topic_configs(r->env->kafka, topic, &current, err);
    if (rc == 0)
        rc = op_topicconfig_plan(want, &current, &all, err);
    if (rc == 1 && (rc = op_kafka_alter_topic_configs(r->env->kafka, topic, &all, err)) == 0) {
        char list[512] = "";
        for (size_t i = 0; i < want->n; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s=%s", i ? ", " : "", want->e[i].name,
                     want->e[i].value);
        event(r, "Normal", "TopicConfigured", "Kafka topic %s configured as the spec says: %s", topic,
              want->n ? list : "broker defaults");
    }
    op_topicconfig_clear(&current);
    op_topicconfig_clear(&all);
    return rc < 0 ? rc : 0;
}

/* Records in status what topicowner.h decides for the topic (a claim before creating
 * it) and keeps it in r->seen.topic_owned. 0, or negative when the record cannot be
 * written (then nothing is created). */
static int record_ownership(run *r, op_topic_owner o)
{
    r->seen.topic_owned = op_topic_may_change(o);
    cJSON *record = op_topic_owner_record(o);
    int rc = record ? patch_status(r->env->conn, record, r->p->ns, r->p->name) : 0;
    cJSON_Delete(record);
    return rc;
}

/* Someone else's topic (topicowner.h): used as it is, never created, grown, configured
 * or deleted; both it and its dead-letter topic must exist. */
static void use_foreign_topics(run *r)
{
    op_pipeline *p = r->p;
    fp_error err = {0};
    int actual = 0, dlq_actual = 0;
    int rc = op_kafka_partitions(r->env->kafka, p->topic, &actual, &err);
    if (rc == 0)
        rc = op_kafka_partitions(r->env->kafka, p->dlq_topic, &dlq_actual, &err);
    if (rc < 0) {
        r->failed = rc != FP_ENOTFOUND;
        op_condition_set(&r->seen.topic, "TopicReady", 0, rc == FP_ENOTFOUND ? "TopicNotOwned" : "KafkaUnavailable",
                         rc == FP_ENOTFOUND ? "topic %s or its dead-letter topic %s is missing, and this FormPipeline "
                                              "did not create %s, so it creates neither (spec.kafka.topic)"
                                            : "%s",
                         rc == FP_ENOTFOUND ? p->topic : err.msg, p->dlq_topic, p->topic);
        return;
    }
    r->seen.partitions = actual;
    r->seen.dlq_partitions = dlq_actual;
    op_condition_set(&r->seen.topic, "TopicReady", 1, "TopicNotOwned",
                     "topic %s (%d partitions) was not created by this FormPipeline: it is used as it is, never "
                     "grown, configured or deleted", p->topic, actual);
}

/* The pipeline's topic and its dead-letter topic, which must exist before a consumer
 * can set an event aside (same partitions and replication factor). A dead-letter topic
 * that vanished (deleted by hand) is created again and reported. Only a topic this
 * pipeline created is created, grown, configured (and deleted): topicowner.h. */
static void reconcile_topics(run *r)
{
    op_pipeline *p = r->p;
    fp_error err = {0};
    int actual = 0, dlq_actual = 0, created = 0, dlq_created = 0;
    int exists = op_kafka_partitions(r->env->kafka, p->topic, &actual, &err);
    if (exists < 0 && exists != FP_ENOTFOUND) {
        r->failed = 1;
        op_condition_set(&r->seen.topic, "TopicReady", 0, "KafkaUnavailable", "%s", err.msg);
        return;
    }
    op_topic_owner owner = op_topic_ownership(status_of(r->obj), p->topic, exists == 0);
    if (record_ownership(r, owner) < 0) {
        r->failed = 1;
        op_condition_set(&r->seen.topic, "TopicReady", 0, "KafkaUnavailable",
                         "the topic's ownership cannot be recorded in status; retried");
        return;
    }
    if (!op_topic_may_change(owner)) {
        use_foreign_topics(r);
        return;
    }
    int rc = ensure_topic(r, p->topic, exists, p->partitions, &p->topic_config, &actual, &created, &err);
    if (rc == FP_EPERM) {   /* lost the claim: the topic is someone else's after all */
        record_ownership(r, OP_TOPIC_RECORD_NOT_OWNED);
        use_foreign_topics(r);
        return;
    }
    if (rc == 0) {   /* as many partitions as the topic really has (it never shrinks) */
        rc = op_kafka_partitions(r->env->kafka, p->dlq_topic, &dlq_actual, &err);
        if (rc == 0 || rc == FP_ENOTFOUND)
            rc = ensure_topic(r, p->dlq_topic, rc, actual, &p->dlq_config, &dlq_actual, &dlq_created, &err);
    }
    if (rc < 0) {
        r->failed = 1;
        r->seen.partitions = 0;
        op_condition_set(&r->seen.topic, "TopicReady", 0, rc == FP_EINVAL ? "TopicRejected" : "KafkaUnavailable", "%s",
                         err.msg);
        return;
    }
    /* topic configs: checked when the spec changed, else at most once an interval (two
     * DescribeConfigs per pipeline); topics just created with them need no look */
    long long now = fp_clock_mono_ms();
    op_pipe_state *st = r->st;
    int due = st->configs_generation != p->generation || now - st->configs_at_ms >= r->env->measure_interval_ms;
    if (created && dlq_created)
        due = 0;
    else if (due && ((rc = configure_topic(r, p->topic, &p->topic_config, &err)) < 0 ||
                     (rc = configure_topic(r, p->dlq_topic, &p->dlq_config, &err)) < 0))
        st->configs_at_ms = 0;
    if (rc == 0 && (due || (created && dlq_created))) {
        st->configs_at_ms = now;
        st->configs_generation = p->generation;
    }
    if (rc < 0) {
        r->failed = 1;   /* the topics exist: the children go on; TopicReady says what Kafka refused */
        r->seen.partitions = actual;
        r->seen.dlq_partitions = dlq_actual;
        op_condition_set(&r->seen.topic, "TopicReady", 0, rc == FP_EINVAL ? "TopicConfigRejected" : "KafkaUnavailable",
                         "%s", err.msg);
        return;
    }
    r->seen.partitions = actual;
    r->seen.dlq_partitions = dlq_actual;
    /* TopicReady as status last said it (written by whichever replica led then) */
    const char *old = op_condition_status(cJSON_GetObjectItemCaseSensitive(status_of(r->obj), "conditions"), "TopicReady");
    /* it existed before when this process synced the pipeline, or when status says both
     * topics were there */
    int recreated = dlq_created && !created && (r->st->synced_generation >= 0 || (old && !strcmp(old, "True")));
    if (recreated)
        event(r, "Warning", "DeadLetterTopicRecreated",
              "dead-letter topic %s was missing (deleted by hand?) and was created again", p->dlq_topic);
    r->seen.dlq_recreated = op_progress_dlq_recreated(&r->st->dlq_recreated_ms, recreated, fp_clock_mono_ms());
    if (actual > p->partitions) {
        const cJSON *oldp = cJSON_GetObjectItemCaseSensitive(status_of(r->obj), "partitions");
        if (!old || !cJSON_IsNumber(oldp) || (int)oldp->valuedouble != actual ||
            op_spec_num(status_of(r->obj), "observedGeneration", -1) != p->generation)
            event(r, "Warning", "PartitionsNotShrunk",
                  "spec asks for %d partitions but topic %s has %d; Kafka partitions never shrink", p->partitions,
                  p->topic, actual);
        op_condition_set(&r->seen.topic, "TopicReady", 1, "PartitionsNotShrunk",
                            "topic %s keeps its %d partitions (spec asks %d; partitions never shrink)", p->topic,
                            actual, p->partitions);
    } else {
        op_condition_set(&r->seen.topic, "TopicReady", 1, "TopicExists", "topics %s and %s have %d partitions", p->topic,
                         p->dlq_topic, actual);
    }
}

/* Offsets of the group on every partition: lag, progress and the dead letters, measured
 * at most once an interval (each costs a coordinator lookup and offset queries), and
 * not in a pipeline's first reconcile, so a new pipeline's children do not wait on Kafka
 * (a fresh cluster creates its offsets topic on the first group lookup). */
static void measure(run *r)
{
    op_pipe_state *st = r->st;
    long long now = fp_clock_mono_ms(), interval = r->env->measure_interval_ms;
    if (st->measured_at_ms == 0) {
        st->measured_at_ms = now - interval / 2;   /* the first measurement comes half an interval later */
        return;
    }
    int n = r->seen.partitions;
    if (n <= 0 || now - st->measured_at_ms < interval)
        return;
    st->measured_at_ms = now;   /* a failed attempt also waits an interval */
    op_partition_offsets *offs = calloc((size_t)n, sizeof *offs);
    fp_error err = {0};
    if (!offs || op_kafka_offsets(r->env->kafka, r->seen.group, r->p->topic, n, offs, &err) < 0 ||
        op_progress_update(&st->progress, offs, n, now, (long long)r->p->progress_deadline_s * 1000, &st->stall) < 0) {
        fp_log_debug("offsets unavailable", FP_LSTR("pipeline", r->p->name), FP_LSTR("error", offs ? err.msg : "out of memory"));
        free(offs);
        return;   /* keep the previous values */
    }
    free(offs);
    st->measured = 1;
    st->lag = st->stall.lag;
    long long dead = 0;
    if (r->seen.dlq_partitions > 0 &&
        op_kafka_log_end_total(r->env->kafka, r->p->dlq_topic, r->seen.dlq_partitions, &dead, &err) == 0)
        st->dead_letters = dead;
}

/* The consumer replicas to apply: one per partition, or from the measured lag (lag-based
 * scaling) with scale-down stabilization; while lag is unknown, what runs. */
static void plan_consumers(run *r)
{
    op_pipeline *p = r->p;
    op_pipe_state *st = r->st;
    int max = r->seen.partitions > 0 ? r->seen.partitions : p->partitions;
    r->seen.lag = st->lag;
    if (p->lag_per_replica <= 0) {
        r->seen.consumers = max;
        return;
    }
    int min = p->consumer_min < max ? p->consumer_min : max;
    if (st->lag < 0) {   /* keep what runs until we can measure */
        r->seen.consumers = st->consumer_replicas > 0 ? st->consumer_replicas : min;
        return;
    }
    int desired = op_scale_from_lag(st->lag, p->lag_per_replica, min, max);
    r->seen.consumers = op_scale_stabilize(&st->history, fp_clock_mono_ms(), (long long)p->stabilization_s * 1000, desired);
}

/* True when the current status already says reason/message on Ready, so an Event
 * about it would repeat itself. */
static int already_reported(const run *r, const char *reason, const char *message)
{
    const cJSON *c = ready_condition(r->obj);
    const char *rs = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "reason"));
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "message"));
    return rs && msg && strcmp(rs, reason) == 0 && strcmp(msg, message) == 0;
}

/* Notes that someone else owns the child's name (first conflict only). */
static void note_conflict(run *r, op_child_kind kind, const char *name)
{
    if (r->conflict[0])
        return;
    snprintf(r->conflict, sizeof r->conflict, "%s %.60s exists and is not owned by this FormPipeline",
             op_child_types[kind].kind, name);
    if (!already_reported(r, "OwnershipConflict", r->conflict))
        event(r, "Warning", "OwnershipConflict", "%s; left alone", r->conflict);
}

static cJSON *owned_child(const run *r, op_child_kind kind);

/* Deletes the pipeline's own child of kind that the spec no longer wants (the ingest HPA
 * when autoscaling is turned off); an object of that name someone else owns is left. */
static void remove_child(run *r, op_child_kind kind, const char *collection, const char *name)
{
    cJSON *c = owned_child(r, kind);
    if (!c)
        return;
    cJSON_Delete(c);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", collection, name);
    fp_error err = {0};
    int rc = kube_request(r->env->conn, "DELETE", path, NULL, NULL, NULL, NULL, &err);
    r->st->applied[kind] = (op_applied_mark){{0}, {0}};
    if (rc < 0 && rc != FP_ENOTFOUND) {
        r->failed = 1;
        fp_log_warn("delete failed", FP_LSTR("pipeline", r->p->name), FP_LSTR("kind", op_child_types[kind].kind),
                    FP_LSTR("name", name), FP_LSTR("error", err.msg));
    } else if (rc == 0) {
        event(r, "Normal", "ChildDeleted", "deleted %s %s (no longer in the spec)", op_child_types[kind].kind, name);
    }
}

/* Applies one child unless someone else owns an object of that name, or nothing
 * changed since our last apply. */
static void apply_child(run *r, op_child_kind kind)
{
    const op_child_type *t = &op_child_types[kind];
    op_pipeline *p = r->p;
    char name[128], collection[512];
    op_pipeline_child(p, t->suffix, name, sizeof name);
    snprintf(collection, sizeof collection, t->collection, p->ns);
    if (!op_child_wanted(p, kind)) {
        remove_child(r, kind, collection, name);
        return;
    }
    cJSON *body = op_child_build(p, r->env->defaults, kind, r->seen.consumers);
    fp_error err = {0};
    int rc = body ? op_apply_owned(r->env->conn, r->env->children[kind], collection, p->ns, name, body, p->uid,
                                   &r->st->applied[kind], &err)
                  : fp_error_set(&err, FP_ENOMEM, "out of memory");
    cJSON_Delete(body);
    if (rc == OP_APPLY_FOREIGN) {
        note_conflict(r, kind, name);
    } else if (rc < 0) {
        r->failed = 1;
        fp_log_warn("apply failed", FP_LSTR("pipeline", p->name), FP_LSTR("kind", t->kind), FP_LSTR("name", name),
                    FP_LSTR("error", err.msg));
    }
}

/* The cached child of kind (owned by the pipeline), or NULL. The caller frees it. */
static cJSON *owned_child(const run *r, op_child_kind kind)
{
    char name[128], key[256];
    op_pipeline_child(r->p, op_child_types[kind].suffix, name, sizeof name);
    snprintf(key, sizeof key, "%s/%s", r->p->ns, name);
    cJSON *c = op_informer_get(r->env->children[kind], key);
    if (c && !op_child_owned_by(c, r->p->uid)) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* readyReplicas of a cached Deployment into *ready; 1 when it is current and has all
 * replicas available. */
static int deployment_available(const run *r, op_child_kind kind, int want, int *ready)
{
    cJSON *d = owned_child(r, kind);
    const cJSON *st = status_of(d);
    *ready = (int)op_spec_num(st, "readyReplicas", 0);
    int available = (int)op_spec_num(st, "availableReplicas", 0);
    long long observed = op_spec_num(st, "observedGeneration", 0);
    long long gen = op_spec_num(cJSON_GetObjectItemCaseSensitive(d, "metadata"), "generation", 0);
    int ok = d && observed >= gen && available >= want && *ready >= want;
    cJSON_Delete(d);
    return ok;
}

/* The cached shared object of kind in the pipeline's namespace when we own it, or NULL. */
static cJSON *shared_object(const run *r, op_shared_kind kind)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", r->p->ns, op_shared_types[kind].name);
    cJSON *c = op_informer_get(r->env->children[op_shared_types[kind].like], key);
    if (c && !op_shared_owned(c)) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* Which workloads serve the pipeline, and switching between them (op_shared_plan):
 * sets r->plan, p->skip_children, p->ingress_shared and the group measured. */
static void plan_mode(run *r)
{
    op_pipeline *p = r->p;
    op_pipe_state *st = r->st;
    op_mode_facts f = {.want_shared = p->shared};
    cJSON *own = owned_child(r, OP_CHILD_INGEST_DEPLOYMENT);
    /* not recorded yet: a pipeline with its own ingest runs Dedicated */
    f.now_shared = p->status_shared >= 0 ? p->status_shared : own ? 0 : p->shared;
    cJSON *cm = shared_object(r, OP_SHARED_CONFIGMAP);
    r->in_forms = cm ? op_shared_membership(cm, p->name) : 0;
    cJSON_Delete(cm);
    f.in_forms = r->in_forms == 1;
    long long now = fp_clock_mono_ms(), delay = r->env->shared ? r->env->shared->switch_delay_ms : 0;
    if (f.want_shared && !f.now_shared && f.in_forms) {
        if (!st->shared_seen_ms)
            st->shared_seen_ms = now;
        f.delay_passed = now - st->shared_seen_ms >= delay;
        if (!f.delay_passed)
            r->requeue_ms = delay - (now - st->shared_seen_ms) + 100;
    } else {
        st->shared_seen_ms = 0;
    }
    /* its own ingest drains for the delay after the Ingress leaves it (from the first
     * reconcile that sees it after a restart, when the move time is unknown) */
    if (!f.want_shared || !own)
        st->ingress_moved_ms = 0;
    f.own_ingest_draining = own && (!st->ingress_moved_ms || now - st->ingress_moved_ms < delay);
    cJSON_Delete(own);
    int ready, replicas;
    f.shared_ingest_ok = op_sharedrec_deployment(r->env->children[OP_CHILD_INGEST_DEPLOYMENT], p->ns, OP_SHARED_INGEST,
                                                 &ready, &replicas);
    f.dedicated_ingest_ok = deployment_available(r, OP_CHILD_INGEST_DEPLOYMENT, p->ingest_replicas, &ready);
    op_shared_plan(&f, &r->plan);
    if (r->plan.ingress_shared && f.want_shared && f.own_ingest_draining) {
        if (!st->ingress_moved_ms)
            st->ingress_moved_ms = now;
        long long left = delay - (now - st->ingress_moved_ms) + 100;
        if (!r->requeue_ms || left < r->requeue_ms)
            r->requeue_ms = left;
    }
    p->skip_children = ~r->plan.children & ((1u << OP_CHILD_COUNT) - 1);
    p->ingress_shared = r->plan.ingress_shared;
    r->seen.group = r->plan.consumer_shared ? p->shared_group : p->group;
    r->seen.mode = r->plan.now_shared ? "Shared" : "Dedicated";
    if (p->status_shared != r->plan.now_shared)
        atomic_store(&st->mode_flipped, 1);
    if (st->phase[0] && strcmp(st->phase, r->plan.phase) != 0)
        event(r, "Normal", "ModeChanged", "%s -> %s%s", st->phase, r->plan.phase,
              strcmp(r->plan.phase, "Shared") == 0 ? ": the Ingress routes to " OP_SHARED_INGEST
              : strcmp(r->plan.phase, "Dedicated") == 0 ? ": the Ingress routes to the pipeline's own ingest" : "");
    snprintf(st->phase, sizeof st->phase, "%s", r->plan.phase);
    if (r->plan.consumer_shared && r->env->shared)   /* the shared CronJob flushes it (its own is gone) */
        p->schedule = r->env->shared->flush_schedule;
    if (r->plan.consumer_shared && r->plan.ingress_shared && r->env->shared &&
        !(r->plan.children & (1u << OP_CHILD_INGEST_DEPLOYMENT)))   /* no ingest of its own is applied */
        p->ingest_replicas = r->env->shared->ingest_replicas;
}

/* True when the pipeline's recorded status says IngestAvailable=True (it was served). */
static int was_available(const op_pipeline *p)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, op_spec_member(op_spec_member(p->obj, "status"), "conditions"))
        if (strcmp(op_spec_str(c, "type", ""), "IngestAvailable") == 0)
            return strcmp(op_spec_str(c, "status", ""), "True") == 0;
    return 0;
}

/* The shared workloads' state for a pipeline they serve: availability of the shared
 * Deployments, the shared CronJob, and the flush outcome from Redis. */
static cJSON *observe_shared(run *r)
{
    op_observed *o = &r->seen;
    op_pipe_state *st = r->st;
    int replicas = 0;
    o->ingest_ok = op_sharedrec_deployment(r->env->children[OP_CHILD_INGEST_DEPLOYMENT], r->p->ns, OP_SHARED_INGEST,
                                           &o->ingest_ready, &replicas);
    o->consumers_ok = op_sharedrec_deployment(r->env->children[OP_CHILD_CONSUMER_DEPLOYMENT], r->p->ns,
                                              OP_SHARED_CONSUMER, &o->consumer_ready, &o->consumers);
    long long now = fp_clock_mono_ms(), delay = r->env->shared ? r->env->shared->switch_delay_ms : 0;
    if (r->in_forms == 1 && !was_available(r->p)) {
        /* a new form reaches each shared ingest pod with the kubelet's ConfigMap sync: not
         * available (a replica would answer 404) until that time has passed */
        if (!st->form_listed_ms)
            st->form_listed_ms = now;
        if (now - st->form_listed_ms < delay) {
            o->ingest_note_reason = "FormSyncing";
            o->ingest_note = "the form is in " OP_SHARED_FORMS "; the shared ingest's pods load it with the kubelet's "
                             "ConfigMap sync (--shared-switch-delay)";
            long long left = delay - (now - st->form_listed_ms) + 100;
            if (!r->requeue_ms || left < r->requeue_ms)
                r->requeue_ms = left;
        }
    }
    if (r->in_forms == -1) {
        o->ingest_note_reason = "SharedFormsFull";
        o->ingest_note = "the shared ConfigMap " OP_SHARED_FORMS " is full (1 MiB): this form was left out; move a "
                         "pipeline of the namespace to mode: Dedicated";
    } else if (r->in_forms == 0) {
        o->ingest_note_reason = "NotInSharedForms";
        o->ingest_note = "the form is not in " OP_SHARED_FORMS " yet";
    }
    op_buffer buf;
    fp_error err = {0};
    if (r->env->buffers && op_bufstate_read(r->env->buffers, r->p->ns, r->p->name, &buf, &err) == 0) {
        op_bufstate_facts(&buf, &st->shared_flush, &st->shared_facts);
        st->shared_facts_read = 1;
    } else if (!st->shared_facts_read) {
        memset(&st->shared_facts, 0, sizeof st->shared_facts);
        st->shared_facts.last_rows = st->shared_facts.rows_waiting = st->shared_facts.oldest_waiting_ms = -1;
        st->shared_facts.quota_wait_ms = st->shared_facts.throttled = -1;
        if (r->env->buffers)
            fp_log_debug("buffer unreadable", FP_LSTR("pipeline", r->p->name), FP_LSTR("error", err.msg));
    }
    o->flush = &st->shared_facts;
    return shared_object(r, OP_SHARED_FLUSH_CRONJOB);
}

/* Reads the children's state and builds the status. NULL on ENOMEM. */
static cJSON *build_status(run *r)
{
    op_observed *o = &r->seen;
    cJSON *cj;
    if (r->plan.consumer_shared) {
        cj = observe_shared(r);
    } else {
        o->consumers_ok = deployment_available(r, OP_CHILD_CONSUMER_DEPLOYMENT, o->consumers, &o->consumer_ready);
        cj = owned_child(r, OP_CHILD_FLUSH_CRONJOB);
    }
    if (r->plan.ingress_shared && !r->plan.consumer_shared) {   /* switching back: the Ingress still routes to the shared ingest */
        int replicas;
        o->ingest_ok = op_sharedrec_deployment(r->env->children[OP_CHILD_INGEST_DEPLOYMENT], r->p->ns, OP_SHARED_INGEST,
                                               &o->ingest_ready, &replicas);
    } else if (!r->plan.consumer_shared || !r->plan.ingress_shared) {
        o->ingest_ok = deployment_available(r, OP_CHILD_INGEST_DEPLOYMENT, r->p->ingest_replicas, &o->ingest_ready);
    }
    o->cronjob_ok = cj != NULL;
    o->flush_idle = r->plan.consumer_shared && cj && op_shared_idle(cj);
    o->last_schedule_time = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status_of(cj), "lastScheduleTime"));
    o->stall = r->st->measured ? &r->st->stall : NULL;
    o->dead_letters = r->st->dead_letters;
    o->conflict = r->conflict;
    char now[FP_RFC3339_MAX];
    fp_rfc3339_now(0, now, sizeof now);
    op_condition cond[OP_C_COUNT];
    cJSON *status = op_status_build(r->p, o, status_of(r->obj), now, cond);
    if (status)
        op_pipemetrics_set(r->env->metrics, r->p->ns, r->p->name, o, cond);
    cJSON_Delete(cj);
    return status;
}

/* A new column must be in status.columns before any pod reads a form with it: the
 * columns are rebuilt from status on every reconcile, so a ConfigMap written before
 * a lost status write could lose a column that events already carry. */
static int record_columns(run *r)
{
    if (!r->p->columns_changed)
        return 0;
    cJSON *status = cJSON_CreateObject();
    if (!status || !cJSON_AddItemReferenceToObject(status, "columns", r->p->columns)) {
        cJSON_Delete(status);
        return FP_ENOMEM;
    }
    int rc = patch_status(r->env->conn, status, r->p->ns, r->p->name);
    cJSON_Delete(status);
    return rc;
}

/* Steps 4-8 for a pipeline that is not being deleted. */
static int reconcile_live(run *r)
{
    op_pipe_state *st = r->st;
    long long t_start = fp_clock_mono_ms();
    reconcile_topics(r);
    long long t_topic = fp_clock_mono_ms();
    plan_mode(r);
    measure(r);
    plan_consumers(r);
    long long t_lag = fp_clock_mono_ms();
    if (st->consumer_replicas && st->consumer_replicas != r->seen.consumers && !r->plan.consumer_shared)
        event(r, "Normal", "ScaledConsumers", "consumer replicas %d -> %d (partitions %d, lag %lld)",
              st->consumer_replicas, r->seen.consumers, r->seen.partitions, st->lag);
    int rc = record_columns(r);
    if (rc < 0)
        return rc;   /* retried: no child may see a column status does not hold */
    for (int k = 0; k < OP_CHILD_COUNT; k++)
        if (k != OP_CHILD_CONSUMER_DEPLOYMENT || r->seen.partitions > 0)
            apply_child(r, (op_child_kind)k);
    if (r->seen.partitions > 0 && !r->plan.consumer_shared)
        st->consumer_replicas = r->seen.consumers;
    long long t_apply = fp_clock_mono_ms();
    cJSON *status = build_status(r);
    rc = status ? write_status(r->env->conn, status, r->obj, r->p->ns, r->p->name) : FP_ENOMEM;
    cJSON_Delete(status);
    if (fp_log_enabled(FP_LOG_DEBUG))
        fp_log_debug("reconciled", FP_LSTR("pipeline", r->p->name), FP_LINT("topic_ms", t_topic - t_start),
                     FP_LINT("lag_ms", t_lag - t_topic), FP_LINT("apply_ms", t_apply - t_lag),
                     FP_LINT("status_ms", fp_clock_mono_ms() - t_apply));
    return rc;
}

int op_reconcile(const op_reconcile_env *env, const cJSON *obj, op_pipe_state *st, long long *requeue_ms)
{
    *requeue_ms = 0;
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(obj, env->defaults, &err);
    if (!p)
        return err.code == FP_EINVAL   ? report_invalid(env, obj, "InvalidSpec", err.msg)
               : err.code == FP_EPERM ? report_invalid(env, obj, "NotAllowed", err.msg)
                                      : err.code;
    run r = {.env = env, .p = p, .obj = p->obj, .st = st,
             .seen = {.lag = -1, .dead_letters = -1, .topic_owned = -1, .flush = env->flush, .group = p->group, .dlq_topic = p->dlq_topic,
                      .tab_owner = env->tab_owner}};
    p->flush_suspended = env->tab_owner && env->tab_owner[0];
    int rc = 0;
    if (p->deleting) {
        rc = finish_deletion(&r);
    } else if (p->delete_topic != p->has_finalizer && (rc = set_finalizer(&r, p->delete_topic)) < 0) {
        /* retried: the finalizer must be in place before the topic exists */
    } else {
        rc = reconcile_live(&r);
        if (rc == 0 && !r.failed)
            st->synced_generation = p->generation;
        *requeue_ms = env->measure_interval_ms;   /* progress is measured every interval */
        if (r.requeue_ms > 0 && r.requeue_ms < *requeue_ms)   /* a mode switch waits less */
            *requeue_ms = r.requeue_ms;
    }
    op_pipeline_free(p);
    return rc < 0 ? rc : r.failed ? FP_EIO : 0;
}
