/* controller.c — informers feed the queue; workers take keys, find the object and its
 * remembered state, and call op_reconcile (reconcile.h) with what it needs. Flush pods
 * are read here into a per-pipeline record of runs (flushruns.h) that reconcile gets as
 * facts. */
#include "controller.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "informer.h"
#include "log.h"
#include "reconcile.h"
#include "sharedrec.h"
#include "rfc3339.h"
#include "strmap.h"
#include "targets.h"
#include "task.h"
#include "taskreconcile.h"
#include "workqueue.h"

enum { INF_CONFIGMAPS, INF_DEPLOYMENTS, INF_SERVICES, INF_INGRESSES, INF_CRONJOBS, INF_PODS, INF_PDBS, INF_HPAS, INF_COUNT };

/* A queue and the workers that serve it: pipelines, or tasks. */
typedef struct lane {
    op_controller *c;
    op_queue *queue;
    int tasks;                     /* 1: FormTask keys */
    pthread_t *workers;
    int nworkers;
} lane;

struct op_controller {
    kube_client *kube;
    op_kafka *kafka;
    op_controller_config cfg;
    op_queue *queue;
    op_informer *pipelines;
    op_informer *informers[INF_COUNT];
    op_informer *by_child[OP_CHILD_COUNT];   /* the informer caching each child kind */
    lane pipe_lane;                /* c->queue and its workers */
    op_informer *tasks;            /* FormTasks */
    lane task_lane;                /* their own queue and workers: a slow task never delays a pipeline */
    op_map *task_states;           /* task key -> op_task_state */
    op_map *task_links;            /* task key -> "<pipeline key>\n<source task key or empty>" */
    int started;
    pthread_mutex_t lock;          /* guards states, task_states (the maps, not their entries), task_links,
                                    * flush_runs, targets, started */
    op_map *states;                /* key -> op_pipe_state */
    op_map *shared_states;         /* "shared:<ns>" -> op_sharedrec_state: namespaces that have (had) Shared pipelines */
    op_map *flush_runs;            /* key -> op_flushruns */
    op_targets *targets;           /* which pipeline writes which sheet tab */
    op_pipemetrics *pipe_metrics;  /* per-pipeline gauges */
    op_taskmetrics *task_metrics;  /* per-task gauges */
    long long last_resync_ms;
    fp_series *reconciles_ok, *reconciles_failed, *duration, *depth, *pipelines_gauge;
    fp_metric *restarts;
};

/* The state of key, created when missing. NULL on ENOMEM. */
static op_pipe_state *state_for(op_controller *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    op_pipe_state *s = op_map_get(c->states, key);
    if (!s && (s = op_pipe_state_new()) && op_map_put(c->states, key, s) < 0) {
        op_pipe_state_free(s);
        s = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* Forgets everything remembered about a pipeline that is gone. */
static void forget(op_controller *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    op_map_del(c->states, key);
    op_map_del(c->flush_runs, key);
    pthread_mutex_unlock(&c->lock);
    char ns[256];
    const char *slash = strchr(key, '/');
    if (slash && (size_t)(slash - key) < sizeof ns) {
        snprintf(ns, sizeof ns, "%.*s", (int)(slash - key), key);
        op_pipemetrics_forget(c->pipe_metrics, ns, slash + 1);
    }
}

/* Records which sheet tab the pipeline writes, in which spreadsheets (a deleted one
 * writes none); pipelines whose tab changed hands are queued so their status says so. */
static void note_target(op_controller *c, op_event_type type, const cJSON *obj, const char *key)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *sheets = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "spec"), "sheets");
    const char *tab = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sheets, "sheet"));
    const char *created = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "creationTimestamp"));
    const char *ids[21];
    size_t nids = 0;
    const char *first = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sheets, "spreadsheetId"));
    const cJSON *more;
    if (first && type != OP_EV_DELETED) {
        ids[nids++] = first;
        cJSON_ArrayForEach(more, cJSON_GetObjectItemCaseSensitive(sheets, "spreadsheetIds"))
            if (cJSON_IsString(more) && nids < sizeof ids / sizeof ids[0])
                ids[nids++] = more->valuestring;
    }
    long long created_ms = 0;
    if (created)
        fp_rfc3339_parse_ms(created, &created_ms);
    char changed[2][OP_TARGETS_KEY_MAX];
    pthread_mutex_lock(&c->lock);
    if (op_targets_set(c->targets, key, ids, nids, tab ? tab : "Responses", created_ms, changed) < 0)
        fp_log_error("out of memory recording sheet tabs", FP_LSTR("pipeline", key));
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < 2; i++)
        if (changed[i][0])
            op_queue_add(c->queue, changed[i]);
}

/* FormPipeline changed. Our own status writes come back as changes too: they are
 * skipped when the generation was already reconciled and nothing is being deleted. */
/* op_map_each callback: queues the task whose links name ctx->key as pipeline
 * (which 0) or source (which 1). */
struct linked { op_controller *c; const char *key; int which; };

static void queue_if_linked(void *ctx, const char *task, void *value)
{
    const struct linked *l = ctx;
    const char *links = value, *nl = strchr(links, '\n');
    size_t n = strlen(l->key);
    const char *at = l->which == 0 ? links : nl + 1;
    size_t len = l->which == 0 ? (size_t)(nl - links) : strlen(nl + 1);
    if (len == n && memcmp(at, l->key, n) == 0)
        op_queue_add(l->c->task_lane.queue, task);
}

/* Queues the tasks whose pipeline (which 0) or source task (which 1) is key. */
static void queue_linked_tasks(op_controller *c, const char *key, int which)
{
    struct linked l = {c, key, which};
    pthread_mutex_lock(&c->lock);
    op_map_each(c->task_links, queue_if_linked, &l);
    pthread_mutex_unlock(&c->lock);
}

/* Queues the shared reconcile of the pipeline's namespace when the pipeline is or was
 * Shared, or the namespace has shared workloads. */
static void queue_namespace(op_controller *c, const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    char key[300];
    if (!ns || snprintf(key, sizeof key, OP_SHAREDREC_PREFIX "%s", ns) >= (int)sizeof key)
        return;
    int shared = op_pipeline_shared_now_or_next(obj, &c->cfg.defaults);
    if (!shared) {
        pthread_mutex_lock(&c->lock);
        shared = op_map_get(c->shared_states, key) != NULL;
        pthread_mutex_unlock(&c->lock);
    }
    if (!shared)
        return;
    op_queue_add(c->queue, key);
}

/* FormPipeline changed. Our own status writes come back as changes too: they are
 * skipped when the generation was already reconciled and nothing is being deleted.
 * The pipeline's tasks follow its appearance, spec changes and deletion; its namespace's
 * shared workloads follow its mode. */
static void on_pipeline(void *ctx, op_event_type type, const cJSON *obj)
{
    op_controller *c = ctx;
    char key[512];
    if (op_object_key(obj, key, sizeof key) < 0)
        return;
    note_target(c, type, obj, key);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(md, "generation");
    int deleting = cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp") != NULL;
    if (type == OP_EV_MODIFIED && !deleting && cJSON_IsNumber(gen)) {
        pthread_mutex_lock(&c->lock);
        op_pipe_state *st = op_map_get(c->states, key);
        int current = st && st->synced_generation == (long long)gen->valuedouble;
        int flipped = current && atomic_exchange(&st->mode_flipped, 0);
        pthread_mutex_unlock(&c->lock);
        if (current) {   /* our status write; one that changed status.mode changes the shared set */
            if (flipped)
                queue_namespace(c, obj);
            return;
        }
    }
    queue_namespace(c, obj);
    queue_linked_tasks(c, key, 0);
    op_queue_add(c->queue, key);
}

/* FormTask changed: remember what it links to, queue it (our own metadata and status
 * writes are skipped like the pipeline's) and the tasks reading its stream. */
static void on_task(void *ctx, op_event_type type, const cJSON *obj)
{
    op_controller *c = ctx;
    char key[512];
    if (op_object_key(obj, key, sizeof key) < 0)
        return;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    const char *pipeline = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "pipeline"));
    const char *source = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "source"), "task"));
    char *links = NULL;
    if (type != OP_EV_DELETED && ns && pipeline &&
        asprintf(&links, "%s/%s\n%s%s%s", ns, pipeline, source ? ns : "", source ? "/" : "", source ? source : "") < 0)
        links = NULL;
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(md, "generation");
    int deleting = cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp") != NULL, current = 0;
    pthread_mutex_lock(&c->lock);
    if (links && op_map_put(c->task_links, key, links) < 0)
        free(links);
    else if (!links)
        op_map_del(c->task_links, key);
    op_task_state *st = op_map_get(c->task_states, key);
    if (type == OP_EV_MODIFIED && !deleting && cJSON_IsNumber(gen))
        current = st && st->synced_generation == (long long)gen->valuedouble;
    pthread_mutex_unlock(&c->lock);
    if (type != OP_EV_MODIFIED)
        queue_linked_tasks(c, key, 1);
    if (!current)
        op_queue_add(c->task_lane.queue, key);
}

/* A child changed: reconcile its owner (drift is reverted, status refreshed). */
static void on_child(void *ctx, op_event_type type, const cJSON *obj)
{
    (void)type;
    op_controller *c = ctx;
    char key[512];
    const char *ns = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "namespace"));
    if (op_shared_owned(obj) && ns) {   /* one of a namespace's shared objects */
        if (snprintf(key, sizeof key, OP_SHAREDREC_PREFIX "%s", ns) < (int)sizeof key)
            op_queue_add(c->queue, key);
    } else if (op_child_owner_key(obj, key, sizeof key) == 0)
        op_queue_add(c->queue, key);
    else if (op_task_owner_key(obj, key, sizeof key) == 0)
        op_queue_add(c->task_lane.queue, key);
}

/* A flush pod changed: record its run when it has finished, and refresh the owner's
 * status. The pod's pipeline is its formpipe.io/pipeline label. */
static void on_flush_pod(void *ctx, op_event_type type, const cJSON *pod)
{
    op_controller *c = ctx;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    const char *name = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(md, "labels"), "formpipe.io/pipeline"));
    char key[512];
    if (!ns || !name || snprintf(key, sizeof key, "%s/%s", ns, name) >= (int)sizeof key)
        return;
    if (type == OP_EV_DELETED) {   /* a deleted pod's run stays recorded (history limits must not
                                    * erase failures), unless its pipeline is gone too */
        cJSON *owner = c->pipelines ? op_informer_get(c->pipelines, key) : NULL;
        if (!owner && c->pipelines && op_informer_synced(c->pipelines)) {
            pthread_mutex_lock(&c->lock);
            op_map_del(c->flush_runs, key);
            pthread_mutex_unlock(&c->lock);
        }
        cJSON_Delete(owner);
        return;
    }
    if (!op_flushruns_finished(pod))
        return;   /* still running */
    pthread_mutex_lock(&c->lock);
    op_flushruns *runs = op_map_get(c->flush_runs, key);
    if (!runs && (runs = calloc(1, sizeof *runs)) && op_map_put(c->flush_runs, key, runs) < 0) {
        free(runs);
        runs = NULL;
    }
    long long before = runs ? runs->rows_total : 0;
    int changed = runs && op_flushruns_record(runs, pod);
    long long written = changed ? runs->rows_total - before : 0;
    pthread_mutex_unlock(&c->lock);
    if (written > 0)
        op_pipemetrics_flush_rows(c->pipe_metrics, ns, name, written);
    if (changed)
        op_queue_add(c->queue, key);
}

/* What the pipeline's recorded flush runs say. */
static void flush_facts(op_controller *c, const char *key, op_flush_facts *out)
{
    static const op_flushruns none;
    pthread_mutex_lock(&c->lock);
    const op_flushruns *runs = op_map_get(c->flush_runs, key);
    op_flushruns_facts(runs ? runs : &none, out);
    pthread_mutex_unlock(&c->lock);
}

/* One key: find the object and its state, reconcile, and decide when to come back. */
static int reconcile_key(op_controller *c, kube_conn *conn, const char *key, long long *requeue)
{
    *requeue = 0;
    cJSON *obj = op_informer_get(c->pipelines, key);
    if (!obj) {
        forget(c, key);
        return 0;
    }
    op_pipe_state *st = state_for(c, key);
    op_flush_facts flush;
    char tab_owner[OP_TARGETS_KEY_MAX] = "";
    flush_facts(c, key, &flush);
    pthread_mutex_lock(&c->lock);
    if (!op_targets_owner(c->targets, key, tab_owner, sizeof tab_owner))
        tab_owner[0] = '\0';
    pthread_mutex_unlock(&c->lock);
    op_reconcile_env env = {
        .conn = conn, .kafka = c->kafka, .defaults = &c->cfg.defaults, .identity = c->cfg.identity,
        .measure_interval_ms = c->cfg.lag_interval_ms, .children = c->by_child, .flush = &flush,
        .tab_owner = tab_owner, .metrics = c->pipe_metrics, .shared = &c->cfg.shared, .buffers = c->cfg.buffers,
    };
    int rc = st ? op_reconcile(&env, obj, st, requeue) : FP_ENOMEM;
    cJSON_Delete(obj);
    return rc;
}

/* op_informer_each_key callback: the names of one namespace's pipelines whose sheet tab
 * another pipeline writes, "a,b" (c->lock held by the caller). */
struct tab_taken { op_controller *c; const char *prefix; size_t len; char *list; size_t used, cap; };

static void note_tab_taken(void *ctx, const char *key)
{
    struct tab_taken *t = ctx;
    char owner[OP_TARGETS_KEY_MAX];
    if (strncmp(key, t->prefix, t->len) != 0 || !op_targets_owner(t->c->targets, key, owner, sizeof owner))
        return;
    size_t n = strlen(key + t->len);
    if (t->used + n + 2 > t->cap) {
        size_t cap = (t->cap + n + 2) * 2;
        char *list = realloc(t->list, cap);
        if (!list)
            return;   /* out of memory: that pipeline keeps its flush */
        t->list = list;
        t->cap = cap;
    }
    t->used += (size_t)snprintf(t->list + t->used, t->cap - t->used, "%s%s", t->used ? "," : "", key + t->len);
}

/* op_informer_each_key callback: queues the keys of one namespace's pipelines. */
struct ns_keys { op_queue *queue; const char *prefix; size_t len; };

static void queue_in_namespace(void *ctx, const char *key)
{
    const struct ns_keys *n = ctx;
    if (strncmp(key, n->prefix, n->len) == 0)
        op_queue_add(n->queue, key);
}

/* Queues the pipelines ns/<name> for each name of list ("a,b"). */
static void queue_named(op_queue *q, const char *ns, const char *list)
{
    size_t len;
    char key[512];
    for (const char *item; (item = op_shared_list_next(&list, &len));)
        if (len && snprintf(key, sizeof key, "%s/%.*s", ns, (int)len, item) < (int)sizeof key)
            op_queue_add(q, key);
}

/* One namespace's shared workloads ("shared:<ns>"): reconcile them with the namespace's
 * state, forget a namespace that has none left, and queue its pipelines when what their
 * status reads changed. */
static int reconcile_shared_key(op_controller *c, kube_conn *conn, const char *key, long long *requeue)
{
    const char *ns = key + strlen(OP_SHAREDREC_PREFIX);
    /* the members come from the cache: a cache still listing would drop forms (or, empty,
     * delete the workloads) */
    int synced = op_informer_synced(c->pipelines);
    for (int i = 0; synced && i < INF_COUNT; i++)
        synced = op_informer_synced(c->informers[i]);
    if (!synced) {
        *requeue = 500;
        return 0;
    }
    pthread_mutex_lock(&c->lock);
    op_sharedrec_state *st = op_map_get(c->shared_states, key);
    if (!st && (st = op_sharedrec_state_new()) && op_map_put(c->shared_states, key, st) < 0) {
        op_sharedrec_state_free(st);
        st = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (!st)
        return FP_ENOMEM;
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s/", ns);
    struct tab_taken taken = {c, prefix, strlen(prefix), NULL, 0, 0};
    pthread_mutex_lock(&c->lock);
    op_informer_each_key(c->pipelines, note_tab_taken, &taken);
    pthread_mutex_unlock(&c->lock);
    op_sharedrec_env env = {
        .conn = conn, .defaults = &c->cfg.defaults, .cfg = &c->cfg.shared, .pipelines = c->pipelines,
        .children = c->by_child, .buffers = c->cfg.buffers, .interval_ms = c->cfg.lag_interval_ms,
        .tab_taken = taken.list,
    };
    op_sharedrec_notify notify = OP_SHAREDREC_NOTIFY_NONE;
    int rc = op_sharedrec_reconcile(&env, ns, st, requeue, &notify);
    free(taken.list);
    if (notify == OP_SHAREDREC_NOTIFY_ALL) {
        struct ns_keys n = {c->queue, prefix, strlen(prefix)};
        op_informer_each_key(c->pipelines, queue_in_namespace, &n);
    } else if (notify == OP_SHAREDREC_NOTIFY_CHANGED) {
        queue_named(c->queue, ns, st->changed);
    }
    if (rc == 0 && *requeue == 0) {   /* no Shared pipeline left and the workloads are gone */
        pthread_mutex_lock(&c->lock);
        op_map_del(c->shared_states, key);
        pthread_mutex_unlock(&c->lock);
    }
    return rc;
}

/* The state of task key, created when missing. NULL on ENOMEM. */
static op_task_state *task_state_for(op_controller *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    op_task_state *s = op_map_get(c->task_states, key);
    if (!s && (s = op_task_state_new()) && op_map_put(c->task_states, key, s) < 0) {
        op_task_state_free(s);
        s = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* One FormTask key: find it and its state and reconcile it. */
/* Forgets a FormTask that is gone: its state and its gauges. */
static void forget_task(op_controller *c, const char *key)
{
    char ns[256] = "", pipeline[64] = "";
    pthread_mutex_lock(&c->lock);
    const op_task_state *st = op_map_get(c->task_states, key);
    if (st)
        snprintf(pipeline, sizeof pipeline, "%s", st->pipeline);
    op_map_del(c->task_states, key);
    pthread_mutex_unlock(&c->lock);
    const char *slash = strchr(key, '/');
    if (*pipeline && slash && (size_t)(slash - key) < sizeof ns) {
        snprintf(ns, sizeof ns, "%.*s", (int)(slash - key), key);
        op_taskmetrics_forget(c->task_metrics, ns, pipeline, slash + 1);
    }
}

static int reconcile_task_key(op_controller *c, kube_conn *conn, const char *key, long long *requeue)
{
    *requeue = 0;
    cJSON *obj = op_informer_get(c->tasks, key);
    if (!obj) {
        forget_task(c, key);
        return 0;
    }
    op_task_state *st = task_state_for(c, key);
    op_task_env env = {
        .conn = conn, .kafka = c->kafka, .defaults = &c->cfg.defaults, .identity = c->cfg.identity,
        .measure_interval_ms = c->cfg.lag_interval_ms, .pipelines = c->pipelines, .tasks = c->tasks,
        .deployments = c->informers[INF_DEPLOYMENTS], .metrics = c->task_metrics,
    };
    int rc = st ? op_task_reconcile(&env, obj, st, requeue) : FP_ENOMEM;
    cJSON_Delete(obj);
    return rc;
}

/* A worker thread of a lane: takes keys from its queue until it shuts down; a failed
 * reconcile comes back with backoff, a good one after its requeue time (if any). */
static void *worker(void *arg)
{
    lane *ln = arg;
    op_controller *c = ln->c;
    fp_error err = {0};
    kube_conn *conn = kube_conn_new(c->kube, 10000, &err);   /* a stuck request must not hold a worker long */
    if (!conn) {
        fp_log_error("worker cannot start", FP_LSTR("error", err.msg));
        return NULL;
    }
    char *key;
    op_queue *queue = ln->queue;
    while ((key = op_queue_get(queue))) {
        long long t0 = fp_clock_mono_ms(), requeue = 0;
        int rc = ln->tasks ? reconcile_task_key(c, conn, key, &requeue)
                 : strncmp(key, OP_SHAREDREC_PREFIX, strlen(OP_SHAREDREC_PREFIX)) == 0
                     ? reconcile_shared_key(c, conn, key, &requeue)
                     : reconcile_key(c, conn, key, &requeue);
        fp_series_observe(c->duration, (double)(fp_clock_mono_ms() - t0) / 1000.0);
        if (rc < 0) {
            fp_series_inc(c->reconciles_failed);
            long long delay = op_queue_add_backoff(queue, key);
            fp_log_info("reconcile will be retried", FP_LSTR(ln->tasks ? "task" : "pipeline", key),
                        FP_LSTR("error", fp_error_name(rc)), FP_LINT("retry_ms", delay));
        } else {
            fp_series_inc(c->reconciles_ok);
            op_queue_forget(queue, key);
            if (requeue > 0)
                op_queue_add_after(queue, key, requeue);
        }
        op_queue_done(queue, key);
        free(key);
    }
    kube_conn_free(conn);
    return NULL;
}

/* The controller's own metrics (reconciles, duration, queue depth, pipelines, watch restarts). */
static int register_metrics(op_controller *c, fp_metrics *metrics, fp_error *err)
{
    static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    static const char *const result_label[] = {"result", NULL}, *const kind_label[] = {"kind", NULL};
    fp_metric *rec = fp_metrics_counter(metrics, "formpipe_operator_reconciles_total", "reconciles by result",
                                        result_label, err);
    fp_metric *dur = fp_metrics_histogram(metrics, "formpipe_operator_reconcile_duration_seconds",
                                          "time one reconcile took", NULL, buckets, sizeof buckets / sizeof buckets[0], err);
    fp_metric *depth = fp_metrics_gauge(metrics, "formpipe_operator_queue_depth", "keys waiting in the work queue", NULL, err);
    fp_metric *pipes = fp_metrics_gauge(metrics, "formpipe_operator_pipelines", "FormPipelines this operator knows", NULL, err);
    c->restarts = fp_metrics_counter(metrics, "formpipe_operator_watch_restarts_total",
                                     "watches restarted or relisted, by kind", kind_label, err);
    if (!rec || !dur || !depth || !pipes || !c->restarts)
        return err && err->code ? err->code : FP_ENOMEM;
    c->reconciles_ok = fp_metric_series(rec, (const char *const[]){"ok"});
    c->reconciles_failed = fp_metric_series(rec, (const char *const[]){"error"});
    c->duration = fp_metric_series(dur, NULL);
    c->depth = fp_metric_series(depth, NULL);
    c->pipelines_gauge = fp_metric_series(pipes, NULL);
    return 0;
}

op_controller *op_controller_new(kube_client *kube, op_kafka *kafka, fp_metrics *metrics,
                                 const op_controller_config *cfg, fp_error *err)
{
    op_controller *c = calloc(1, sizeof *c);
    if (!c) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    c->kube = kube;
    c->kafka = kafka;
    c->cfg = *cfg;
    pthread_mutex_init(&c->lock, NULL);
    c->queue = op_queue_new(cfg->backoff_base_ms, cfg->backoff_max_ms);
    c->task_lane = (lane){.c = c, .queue = op_queue_new(cfg->backoff_base_ms, cfg->backoff_max_ms), .tasks = 1};
    c->task_states = op_map_new(op_task_state_free);
    c->task_links = op_map_new(free);
    c->states = op_map_new(op_pipe_state_free);
    c->shared_states = op_map_new(op_sharedrec_state_free);
    c->flush_runs = op_map_new(free);
    c->targets = op_targets_new();
    if (!c->queue || !c->task_lane.queue || !c->task_states || !c->task_links || !c->states || !c->shared_states ||
        !c->flush_runs ||
        !c->targets) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        op_controller_free(c);
        return NULL;
    }
    if (register_metrics(c, metrics, err) < 0 || !(c->pipe_metrics = op_pipemetrics_new(metrics, err)) ||
        !(c->task_metrics = op_taskmetrics_new(metrics, err))) {
        op_controller_free(c);
        return NULL;
    }
    c->last_resync_ms = fp_clock_mono_ms();
    return c;
}

static op_informer *start_informer(op_controller *c, const char *name, const char *path, const char *selector,
                                   const char *const *strip, op_informer_fn fn, fp_error *err)
{
    op_informer_config ic = {
        .name = name, .path = path, .label_selector = selector, .strip = strip,
        .page_size = 500, .watch_timeout_s = 300, .backoff_initial_ms = 800, .backoff_max_ms = 30000,
        .fn = fn, .ctx = c, .restarts = fp_metric_series(c->restarts, (const char *const[]){name}),
    };
    return op_informer_start(c->kube, &ic, err);
}

/* Starts the informers of the children and of flush pods, and maps child kinds to them. */
static int start_child_informers(op_controller *c, fp_error *err)
{
    /* What reconcile never reads is not cached: specs of children (we apply ours
     * regardless of theirs), ConfigMap data. */
    static const char *const strip_spec[] = {"spec", NULL}, *const strip_data[] = {"data", "binaryData", NULL};
    static const struct {
        const char *name, *path, *selector;
        const char *const *strip;
        op_informer_fn fn;
    } kinds[INF_COUNT] = {
        [INF_CONFIGMAPS] = {"configmaps", "/api/v1/configmaps", OP_LABEL_MANAGED_BY, strip_data, on_child},
        [INF_DEPLOYMENTS] = {"deployments", "/apis/apps/v1/deployments", OP_LABEL_MANAGED_BY, strip_spec, on_child},
        [INF_SERVICES] = {"services", "/api/v1/services", OP_LABEL_MANAGED_BY, strip_spec, on_child},
        [INF_INGRESSES] = {"ingresses", "/apis/networking.k8s.io/v1/ingresses", OP_LABEL_MANAGED_BY, strip_spec, on_child},
        [INF_CRONJOBS] = {"cronjobs", "/apis/batch/v1/cronjobs", OP_LABEL_MANAGED_BY, strip_spec, on_child},
        [INF_PODS] = {"flush-pods", "/api/v1/pods", OP_LABEL_FLUSH_PODS, strip_spec, on_flush_pod},
        [INF_PDBS] = {"poddisruptionbudgets", "/apis/policy/v1/poddisruptionbudgets", OP_LABEL_MANAGED_BY, strip_spec, on_child},
        [INF_HPAS] = {"horizontalpodautoscalers", "/apis/autoscaling/v2/horizontalpodautoscalers", OP_LABEL_MANAGED_BY,
                      strip_spec, on_child},
    };
    for (int i = 0; i < INF_COUNT; i++)
        if (!(c->informers[i] = start_informer(c, kinds[i].name, kinds[i].path, kinds[i].selector, kinds[i].strip,
                                               kinds[i].fn, err)))
            return err ? err->code : FP_EIO;
    c->by_child[OP_CHILD_CONFIGMAP] = c->informers[INF_CONFIGMAPS];
    c->by_child[OP_CHILD_INGEST_DEPLOYMENT] = c->informers[INF_DEPLOYMENTS];
    c->by_child[OP_CHILD_CONSUMER_DEPLOYMENT] = c->informers[INF_DEPLOYMENTS];
    c->by_child[OP_CHILD_INGEST_SERVICE] = c->informers[INF_SERVICES];
    c->by_child[OP_CHILD_INGEST_INGRESS] = c->informers[INF_INGRESSES];
    c->by_child[OP_CHILD_FLUSH_CRONJOB] = c->informers[INF_CRONJOBS];
    c->by_child[OP_CHILD_INGEST_PDB] = c->informers[INF_PDBS];
    c->by_child[OP_CHILD_CONSUMER_PDB] = c->informers[INF_PDBS];
    c->by_child[OP_CHILD_INGEST_HPA] = c->informers[INF_HPAS];
    return 0;
}

int op_controller_start(op_controller *c, fp_error *err)
{
    pthread_mutex_lock(&c->lock);
    int started = c->started;
    c->started = 1;
    pthread_mutex_unlock(&c->lock);
    if (started)
        return 0;
    /* FormPipelines first: the flush-pod callback looks pipelines up (c->pipelines is set
     * before any child informer's thread starts, and those stop before it). */
    if (!(c->pipelines = start_informer(c, OP_PLURAL, "/apis/" OP_API_VERSION "/" OP_PLURAL, NULL, NULL,
                                        on_pipeline, err)))
        return err ? err->code : FP_EIO;
    int rc = start_child_informers(c, err);
    if (rc < 0)
        return rc;
    if (!(c->tasks = start_informer(c, OP_TASK_PLURAL, "/apis/" OP_API_VERSION "/" OP_TASK_PLURAL, NULL, NULL, on_task,
                                    err)))
        return err ? err->code : FP_EIO;
    c->pipe_lane = (lane){.c = c, .queue = c->queue};
    int ntask = (c->cfg.workers + 3) / 4;   /* tasks wait on the same API and Kafka; a quarter of the workers */
    lane *lanes[2] = {&c->pipe_lane, &c->task_lane};
    int counts[2] = {c->cfg.workers, ntask};
    for (int l = 0; l < 2; l++) {
        if (!(lanes[l]->workers = calloc((size_t)counts[l], sizeof *lanes[l]->workers)))
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        for (; lanes[l]->nworkers < counts[l]; lanes[l]->nworkers++)
            if (pthread_create(&lanes[l]->workers[lanes[l]->nworkers], NULL, worker, lanes[l]) != 0)
                return fp_error_set(err, FP_ENOMEM, "cannot start worker threads");
    }
    return 0;
}

void op_controller_free(op_controller *c)
{
    if (!c)
        return;
    lane *lanes[2] = {&c->pipe_lane, &c->task_lane};
    for (int l = 0; l < 2; l++) {
        if (lanes[l]->queue)
            op_queue_shutdown(lanes[l]->queue);
        for (int i = 0; i < lanes[l]->nworkers; i++)
            pthread_join(lanes[l]->workers[i], NULL);
        free(lanes[l]->workers);
    }
    if (c->queue)
        op_queue_shutdown(c->queue);   /* when workers never started */
    op_informer_stop(c->tasks);
    for (int i = 0; i < INF_COUNT; i++)
        op_informer_stop(c->informers[i]);
    op_informer_stop(c->pipelines);   /* last: the flush-pod callback reads it */
    op_queue_free(c->queue);
    op_queue_free(c->task_lane.queue);
    op_map_free(c->task_states);
    op_map_free(c->task_links);
    op_map_free(c->states);
    op_map_free(c->shared_states);
    op_map_free(c->flush_runs);
    op_targets_free(c->targets);
    op_pipemetrics_free(c->pipe_metrics);
    op_taskmetrics_free(c->task_metrics);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int op_controller_ready(op_controller *c, char *why, size_t whysz)
{
    pthread_mutex_lock(&c->lock);
    int started = c->started;
    pthread_mutex_unlock(&c->lock);
    if (!started) {
        snprintf(why, whysz, "not the leader");
        return 0;
    }
    if (!c->pipelines || !op_informer_synced(c->pipelines)) {
        snprintf(why, whysz, "FormPipelines not listed yet");
        return 0;
    }
    if (!c->tasks || !op_informer_synced(c->tasks)) {
        snprintf(why, whysz, "FormTasks not listed yet");
        return 0;
    }
    for (int i = 0; i < INF_COUNT; i++)
        if (!c->informers[i] || !op_informer_synced(c->informers[i])) {
            snprintf(why, whysz, "owned objects not listed yet");
            return 0;
        }
    return 1;
}

/* op_informer_each_key callbacks: queue a key (ctx: the queue), count keys (ctx: size_t). */
static void enqueue_key(void *ctx, const char *key)
{
    op_queue_add(ctx, key);
}

static void count_key(void *ctx, const char *key)
{
    (void)key;
    ++*(size_t *)ctx;
}

void op_controller_tick(op_controller *c)
{
    fp_series_set(c->depth, (double)op_queue_depth(c->queue));
    if (!c->pipelines)
        return;
    size_t n = 0;
    op_informer_each_key(c->pipelines, count_key, &n);
    fp_series_set(c->pipelines_gauge, (double)n);
    long long now = fp_clock_mono_ms();
    if (now - c->last_resync_ms >= c->cfg.resync_ms) {
        c->last_resync_ms = now;
        op_informer_each_key(c->pipelines, enqueue_key, c->queue);
        if (c->tasks)
            op_informer_each_key(c->tasks, enqueue_key, c->task_lane.queue);
    }
}
