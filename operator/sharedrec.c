/* sharedrec.c — see sharedrec.h. */
#include "sharedrec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "spec.h"

#define STABILIZATION_MS (300 * 1000)   /* as a pipeline's default scaleDownStabilizationSeconds */

/* The keys of one namespace's pipelines (op_informer_each_key callback). */
typedef struct keys {
    const char *prefix;   /* "<ns>/" */
    size_t plen;
    char **k;
    size_t n, cap;
    int oom;
} keys;

static void collect(void *ctx, const char *key)
{
    keys *ks = ctx;
    if (strncmp(key, ks->prefix, ks->plen) != 0 || ks->oom)
        return;
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? 2 * ks->cap : 32;
        char **k = realloc(ks->k, cap * sizeof *k);
        if (!k) {
            ks->oom = 1;
            return;
        }
        ks->k = k;
        ks->cap = cap;
    }
    if (!(ks->k[ks->n] = strdup(key)))
        ks->oom = 1;
    else
        ks->n++;
}

static void keys_free(keys *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->k[i]);
    free(ks->k);
}

/* True when obj (a FormPipeline) belongs in the shared set: it is to run Shared, or
 * still does. */
static int is_member(const op_sharedrec_env *env, const cJSON *obj)
{
    const cJSON *md = op_spec_member(obj, "metadata");
    if (op_spec_member(md, "deletionTimestamp"))
        return 0;
    return op_pipeline_shared_now_or_next(obj, env->defaults);
}

/* Whether a pipeline that is no longer a member keeps its form in the shared set a while:
 * listed (the cached ConfigMap holds it), not being deleted, and gone for less than the
 * switch delay. Tracks it in st->leaving; a member again is forgotten there. */
static int still_leaving(const op_sharedrec_env *env, op_sharedrec_state *st, const char *listed, const cJSON *obj,
                         const char *name, int member)
{
    int i = 0;
    while (i < st->n_leaving && strcmp(st->leaving[i].name, name) != 0)
        i++;
    int found = i < st->n_leaving;
    int deleting = op_spec_member(op_spec_member(obj, "metadata"), "deletionTimestamp") != NULL;
    if (member || deleting || !env->cfg || (!found && !op_shared_listed(listed, name))) {
        if (found)
            st->leaving[i] = st->leaving[--st->n_leaving];
        return 0;
    }
    long long now = fp_clock_mono_ms();
    if (!found) {
        if (st->n_leaving == OP_SHAREDREC_MAX_LEAVING || strlen(name) >= sizeof st->leaving[0].name)
            return 0;   /* more switches at once than tracked: these leave at once */
        snprintf(st->leaving[st->n_leaving].name, sizeof st->leaving[0].name, "%s", name);
        st->leaving[st->n_leaving++].since_ms = now;
        return 1;
    }
    if (now - st->leaving[i].since_ms < env->cfg->switch_delay_ms)
        return 1;
    st->leaving[i] = st->leaving[--st->n_leaving];
    return 0;
}

/* What the members add up to for the consumer Deployment. */
typedef struct totals {
    long long lag;          /* -1: no member measured yet */
    long long partitions;
} totals;

/* Reads the live ConfigMap's data (the informer keeps none) once, for members whose spec
 * cannot be compiled now. */
static const cJSON *live_data(const op_sharedrec_env *env, const char *ns, cJSON **live, int *looked)
{
    if (!*looked) {
        *looked = 1;
        char path[512];
        snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/%s", ns, OP_SHARED_FORMS);
        fp_error err = {0};
        if (kube_request(env->conn, "GET", path, NULL, NULL, live, NULL, &err) < 0)
            *live = NULL;
    }
    return op_spec_member(*live, "data");
}

/* A member whose spec does not compile now keeps its form of the ConfigMap (its own
 * reconcile reports the spec); one the ConfigMap never had is left out. */
static int keep_old_form(op_shared_set *s, const char *name, const cJSON *data)
{
    char key[128];
    snprintf(key, sizeof key, "%s.json", name);
    const char *form = op_spec_str(data, key, NULL);
    if (!form)
        return 0;
    cJSON *f = cJSON_Parse(form);
    const char *cred = op_spec_str(op_spec_member(op_spec_member(f, "shared"), "sheets"), "credentials", NULL);
    const char *slash = cred ? strchr(cred, '/') : NULL;
    int rc = 0;
    if (slash) {
        char secret[256];
        snprintf(secret, sizeof secret, "%.*s", (int)(slash - cred), cred);
        rc = op_shared_set_add(s, name, form, secret, slash + 1);
    }
    cJSON_Delete(f);
    return rc;
}

/* Step 1: the members of ns into s, their lag and partitions into *t. */
static int gather(const op_sharedrec_env *env, const char *ns, op_sharedrec_state *st, op_shared_set *s, totals *t)
{
    char prefix[80], cmkey[256];
    snprintf(cmkey, sizeof cmkey, "%s/%s", ns, OP_SHARED_FORMS);
    cJSON *cm = op_informer_get(env->children[OP_CHILD_CONFIGMAP], cmkey);
    const char *listed = op_spec_str(op_spec_member(op_spec_member(cm, "metadata"), "annotations"),
                                     OP_SHARED_MEMBERS_ANNOTATION, "");
    snprintf(prefix, sizeof prefix, "%s/", ns);
    keys ks = {.prefix = prefix, .plen = strlen(prefix)};
    op_informer_each_key(env->pipelines, collect, &ks);
    int rc = ks.oom ? FP_ENOMEM : 0, looked = 0;
    cJSON *live = NULL;
    t->lag = -1;
    t->partitions = 0;
    for (size_t i = 0; rc == 0 && i < ks.n; i++) {
        cJSON *obj = op_informer_get(env->pipelines, ks.k[i]);
        int member = obj && is_member(env, obj);
        if (!obj || (still_leaving(env, st, listed, obj, ks.k[i] + ks.plen, member) == 0 && !member)) {
            cJSON_Delete(obj);
            continue;
        }
        const cJSON *status = op_spec_member(obj, "status");
        const cJSON *lag = op_spec_member(op_spec_member(status, "consumer"), "lag");
        if (cJSON_IsNumber(lag))
            t->lag = (t->lag < 0 ? 0 : t->lag) + (long long)lag->valuedouble;
        fp_error err = {0};
        op_pipeline *p = op_pipeline_parse(obj, env->defaults, &err);
        const char *name = ks.k[i] + ks.plen;
        if (p) {
            t->partitions += op_spec_num(status, "partitions", p->partitions);
            char *form = op_shared_form(p, !op_shared_listed(env->tab_taken, name));
            rc = form ? op_shared_set_add(s, name, form, p->google_credentials.name, p->google_credentials.key)
                      : FP_ENOMEM;
            free(form);
        } else if (err.code == FP_EINVAL) {
            t->partitions += op_spec_num(status, "partitions", 1);
            rc = keep_old_form(s, name, live_data(env, ns, &live, &looked));
        } else {
            rc = err.code ? err.code : FP_ENOMEM;
        }
        op_pipeline_free(p);
        cJSON_Delete(obj);
    }
    cJSON_Delete(live);
    cJSON_Delete(cm);
    keys_free(&ks);
    return rc;
}

/* DELETE of a shared object of kind that we own (its Pods and Jobs go in the background). */
static int delete_shared(const op_sharedrec_env *env, const char *ns, op_shared_kind kind, op_sharedrec_state *st)
{
    const op_shared_type *t = &op_shared_types[kind];
    char key[256], path[512];
    snprintf(key, sizeof key, "%s/%s", ns, t->name);
    cJSON *cached = op_informer_get(env->children[t->like], key);
    int owned = cached && op_shared_owned(cached);
    cJSON_Delete(cached);
    st->applied[kind] = (op_applied_mark){{0}, {0}};
    if (!owned)
        return 0;
    snprintf(path, sizeof path, op_child_types[t->like].collection, ns);
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", t->name);
    fp_error err = {0};
    int rc = kube_request(env->conn, "DELETE", path, "application/json", "{\"propagationPolicy\":\"Background\"}", NULL,
                          NULL, &err);
    if (rc == FP_ENOTFOUND)
        return 0;
    if (rc < 0)
        fp_log_warn("delete failed", FP_LSTR("namespace", ns), FP_LSTR("name", t->name), FP_LSTR("error", err.msg));
    else
        fp_log_info("deleted a shared object: no Shared pipeline left", FP_LSTR("namespace", ns),
                    FP_LSTR("kind", op_child_types[t->like].kind), FP_LSTR("name", t->name));
    return rc;
}

/* Step 3: the consumer replicas from the members' lag. */
static int plan_consumers(const op_sharedrec_env *env, op_sharedrec_state *st, const totals *t)
{
    const op_shared_config *cfg = env->cfg;
    int max = cfg->consumer_max_replicas;
    if (t->partitions > 0 && t->partitions < max)
        max = (int)t->partitions;
    if (max < 1)
        max = 1;
    if (cfg->consumer_lag_per_replica <= 0)
        return max;
    if (t->lag < 0)   /* keep what runs until the members are measured */
        return st->consumer_replicas > 0 ? (st->consumer_replicas < max ? st->consumer_replicas : max) : 1;
    int desired = op_scale_from_lag(t->lag, cfg->consumer_lag_per_replica, 1, max);
    return op_scale_stabilize(&st->history, fp_clock_mono_ms(), STABILIZATION_MS, desired);
}

/* Step 3: suspended while no member has rows waiting or a batch in flight; never when
 * Redis cannot tell. */
static int plan_suspend(const op_sharedrec_env *env, const op_shared_set *s)
{
    if (!env->buffers || s->n_in == 0)
        return 0;
    const char **names = calloc(s->n_in, sizeof *names);
    if (!names)
        return 0;
    for (size_t i = 0; i < s->n_in; i++)
        names[i] = s->m[i].name;
    int waiting = 1;
    fp_error err = {0};
    if (op_bufstate_waiting(env->buffers, s->ns, names, s->n_in, &waiting, &err) < 0)
        fp_log_info("buffers unreadable: the shared flush stays scheduled", FP_LSTR("namespace", s->ns),
                    FP_LSTR("error", err.msg));
    free(names);
    return !waiting;
}

int op_sharedrec_deployment(op_informer *deployments, const char *ns, const char *name, int *ready, int *replicas)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    cJSON *d = op_informer_get(deployments, key);
    if (d && !op_shared_owned(d)) {
        cJSON_Delete(d);
        d = NULL;
    }
    const cJSON *st = op_spec_member(d, "status");
    *ready = (int)op_spec_num(st, "readyReplicas", 0);
    *replicas = (int)op_spec_num(st, "replicas", 0);
    long long gen = op_spec_num(op_spec_member(d, "metadata"), "generation", 0);
    int ok = d && op_spec_num(st, "observedGeneration", 0) >= gen && op_spec_num(st, "availableReplicas", 0) >= 1 &&
             op_spec_num(st, "unavailableReplicas", 0) == 0 && *ready >= *replicas;
    cJSON_Delete(d);
    return ok;
}

op_sharedrec_state *op_sharedrec_state_new(void)
{
    return calloc(1, sizeof(op_sharedrec_state));
}

void op_sharedrec_state_free(void *p)
{
    op_sharedrec_state *st = p;
    if (!st)
        return;
    free(st->listing);
    free(st->changed);
    free(st);
}

/* What every member's status reads of the shared workloads, to notice a change. */
static void digest(const op_sharedrec_env *env, const char *ns, char *out, size_t outsz)
{
    int ready, replicas;
    int ingest = op_sharedrec_deployment(env->children[OP_CHILD_INGEST_DEPLOYMENT], ns, OP_SHARED_INGEST, &ready,
                                         &replicas);
    int iready = ready;
    int consumer = op_sharedrec_deployment(env->children[OP_CHILD_CONSUMER_DEPLOYMENT], ns, OP_SHARED_CONSUMER, &ready,
                                           &replicas);
    /* the cached CronJob's suspend, not the planned one: the members' status reads the
     * cache, so they hear of a change once the cache holds it */
    char key[256];
    snprintf(key, sizeof key, "%s/%s", ns, op_shared_types[OP_SHARED_FLUSH_CRONJOB].name);
    cJSON *cj = op_informer_get(env->children[op_shared_types[OP_SHARED_FLUSH_CRONJOB].like], key);
    int suspended = cj && op_shared_owned(cj) && op_shared_idle(cj);
    cJSON_Delete(cj);
    snprintf(out, outsz, "%d/%d/%d/%d/%d", ingest, iready, consumer, ready, suspended);
}

/* The members the cached ConfigMap lists, "a,b,-c" (-: left out, too large), "" when it
 * has none; NULL on ENOMEM. The apply above reaches the cache a moment later: a pipeline
 * waiting for its form hears of it once the cache has it. */
static char *listing(const op_sharedrec_env *env, const char *ns)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", ns, OP_SHARED_FORMS);
    cJSON *cm = op_informer_get(env->children[OP_CHILD_CONFIGMAP], key);
    const cJSON *ann = op_spec_member(op_spec_member(cm, "metadata"), "annotations");
    const char *in = op_spec_str(ann, OP_SHARED_MEMBERS_ANNOTATION, "");
    const char *out = op_spec_str(ann, OP_SHARED_LEFT_OUT_ANNOTATION, "");
    fp_buf b;
    fp_buf_init(&b, 1 << 20);
    int rc = fp_buf_add(&b, in, strlen(in));
    size_t len;
    for (const char *item; rc == 0 && (item = op_shared_list_next(&out, &len));)
        rc = fp_buf_printf(&b, "%s-%.*s", b.len ? "," : "", (int)len, item);
    cJSON_Delete(cm);
    char *s = rc == 0 ? fp_buf_take(&b) : NULL;
    fp_buf_free(&b);
    return s;
}

/* What the members should hear of: every one when the shared workloads changed, those
 * whose place in the cached ConfigMap changed (into st->changed) otherwise. */
static op_sharedrec_notify notice(const op_sharedrec_env *env, const char *ns, op_sharedrec_state *st)
{
    char now[sizeof st->digest];
    digest(env, ns, now, sizeof now);
    char *list = listing(env, ns);
    int all = strcmp(now, st->digest) != 0 || !list;
    memcpy(st->digest, now, sizeof now);
    free(st->changed);
    st->changed = NULL;
    if (!all && op_shared_listing_changes(st->listing ? st->listing : "", list, &st->changed) < 0)
        all = 1;
    free(st->listing);
    st->listing = list;
    return all ? OP_SHAREDREC_NOTIFY_ALL
               : st->changed && *st->changed ? OP_SHAREDREC_NOTIFY_CHANGED : OP_SHAREDREC_NOTIFY_NONE;
}

int op_sharedrec_reconcile(const op_sharedrec_env *env, const char *ns, op_sharedrec_state *st, long long *requeue_ms,
                           op_sharedrec_notify *notify)
{
    *requeue_ms = 0;
    *notify = OP_SHAREDREC_NOTIFY_NONE;
    op_shared_set s;
    op_shared_set_init(&s, ns);
    totals t;
    int rc = gather(env, ns, st, &s, &t), failed = 0;
    if (rc < 0)
        goto out;
    if (s.n == 0) {
        for (int k = OP_SHARED_COUNT - 1; k >= 0; k--)
            if (delete_shared(env, ns, (op_shared_kind)k, st) < 0)
                failed = 1;
        st->consumer_replicas = 0;
        st->history.n = 0;
        *notify = st->digest[0] != 0 ? OP_SHAREDREC_NOTIFY_ALL : OP_SHAREDREC_NOTIFY_NONE;
        st->digest[0] = 0;
        free(st->listing);
        st->listing = NULL;
        rc = failed ? FP_EIO : 0;
        goto out;
    }
    op_shared_set_fit(&s);
    if (s.n_in < s.n)
        fp_log_warn("shared forms exceed the ConfigMap's size: some pipelines are left out", FP_LSTR("namespace", ns),
                    FP_LINT("members", (long long)s.n), FP_LINT("left_out", (long long)(s.n - s.n_in)));
    s.consumer_replicas = plan_consumers(env, st, &t);
    s.suspended = plan_suspend(env, &s);
    for (int k = 0; k < OP_SHARED_COUNT; k++) {
        const op_shared_type *ty = &op_shared_types[k];
        char collection[512];
        snprintf(collection, sizeof collection, op_child_types[ty->like].collection, ns);
        cJSON *body = op_shared_build(&s, env->defaults, env->cfg, (op_shared_kind)k);
        fp_error err = {0};
        int arc = body ? op_apply_owned(env->conn, env->children[ty->like], collection, ns, ty->name, body, NULL,
                                        &st->applied[k], &err)
                       : fp_error_set(&err, FP_ENOMEM, "out of memory");
        cJSON_Delete(body);
        if (arc == OP_APPLY_FOREIGN) {
            fp_log_warn("a shared object's name is taken by an object formpipe does not own: left alone",
                        FP_LSTR("namespace", ns), FP_LSTR("kind", op_child_types[ty->like].kind), FP_LSTR("name", ty->name));
        } else if (arc < 0) {
            failed = 1;
            fp_log_warn("apply failed", FP_LSTR("namespace", ns), FP_LSTR("name", ty->name), FP_LSTR("error", err.msg));
        }
    }
    st->consumer_replicas = s.consumer_replicas;
    *notify = notice(env, ns, st);
    *requeue_ms = env->interval_ms;
    rc = failed ? FP_EIO : 0;
out:
    op_shared_set_clear(&s);
    return rc;
}
