/* controller.c — informers feed the queue; workers take keys and reconcile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "controller_impl.h"
#include "log.h"

op_informer *op_child_informer(op_controller *c, op_child_kind kind)
{
    switch (kind) {
    case OP_CHILD_CONFIGMAP: return c->children[INF_CONFIGMAPS];
    case OP_CHILD_INGEST_SERVICE: return c->children[INF_SERVICES];
    case OP_CHILD_INGEST_INGRESS: return c->children[INF_INGRESSES];
    case OP_CHILD_FLUSH_CRONJOB: return c->children[INF_CRONJOBS];
    default: return c->children[INF_DEPLOYMENTS];
    }
}

/* FormPipeline changed. Our own status writes come back as changes too: they are
 * skipped when the generation was already reconciled and nothing is being deleted. */
static void on_pipeline(void *ctx, op_event_type type, const cJSON *obj)
{
    op_controller *c = ctx;
    char key[512];
    if (op_object_key(obj, key, sizeof key) < 0)
        return;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(md, "generation");
    int deleting = cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp") != NULL;
    if (type == OP_EV_MODIFIED && !deleting && cJSON_IsNumber(gen)) {
        pthread_mutex_lock(&c->lock);
        pipe_state *st = op_map_get(c->states, key);
        int current = st && st->synced_generation == (long long)gen->valuedouble;
        pthread_mutex_unlock(&c->lock);
        if (current)
            return;
    }
    op_queue_add(c->queue, key);
}

/* A child changed: reconcile its owner (drift is reverted, status refreshed). */
static void on_child(void *ctx, op_event_type type, const cJSON *obj)
{
    (void)type;
    op_controller *c = ctx;
    char key[512];
    if (op_child_owner_key(obj, key, sizeof key) == 0)
        op_queue_add(c->queue, key);
}

static void *worker(void *arg)
{
    op_controller *c = arg;
    fp_error err = {0};
    kube_conn *conn = kube_conn_new(c->kube, 10000, &err);   /* a stuck request must not hold a worker long */
    if (!conn) {
        fp_log_write(FP_LOG_ERROR, "worker cannot start", (const fp_log_field[]){FP_LSTR("error", err.msg), FP_LEND});
        return NULL;
    }
    char *key;
    while ((key = op_queue_get(c->queue))) {
        long long t0 = op_mono_ms(), requeue = 0;
        int rc = op_reconcile(c, conn, key, &requeue);
        fp_series_observe(c->duration, (double)(op_mono_ms() - t0) / 1000.0);
        if (rc < 0) {
            fp_series_inc(c->reconciles_failed);
            long long delay = op_queue_add_backoff(c->queue, key);
            fp_log_write(FP_LOG_INFO, "reconcile will be retried",
                         (const fp_log_field[]){FP_LSTR("pipeline", key), FP_LSTR("error", fp_error_name(rc)),
                                                FP_LINT("retry_ms", delay), FP_LEND});
        } else {
            fp_series_inc(c->reconciles_ok);
            op_queue_forget(c->queue, key);
            if (requeue > 0)
                op_queue_add_after(c->queue, key, requeue);
        }
        op_queue_done(c->queue, key);
        free(key);
    }
    kube_conn_free(conn);
    return NULL;
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
    c->states = op_map_new(free);
    static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    static const char *const result_label[] = {"result", NULL}, *const kind_label[] = {"kind", NULL};
    fp_metric *rec = fp_metrics_counter(metrics, "formpipe_operator_reconciles_total",
                                        "reconciles by result", result_label, err);
    fp_metric *dur = fp_metrics_histogram(metrics, "formpipe_operator_reconcile_duration_seconds",
                                          "time one reconcile took", NULL, buckets, sizeof buckets / sizeof buckets[0], err);
    fp_metric *depth = fp_metrics_gauge(metrics, "formpipe_operator_queue_depth", "keys waiting in the work queue", NULL, err);
    fp_metric *pipes = fp_metrics_gauge(metrics, "formpipe_operator_pipelines", "FormPipelines this operator knows", NULL, err);
    c->restarts = fp_metrics_counter(metrics, "formpipe_operator_watch_restarts_total",
                                     "watches restarted or relisted, by kind", kind_label, err);
    if (!c->queue || !c->states || !rec || !dur || !depth || !pipes || !c->restarts) {
        if (!c->queue || !c->states)
            fp_error_set(err, FP_ENOMEM, "out of memory");
        op_controller_free(c);
        return NULL;
    }
    c->reconciles_ok = fp_metric_series(rec, (const char *const[]){"ok"});
    c->reconciles_failed = fp_metric_series(rec, (const char *const[]){"error"});
    c->duration = fp_metric_series(dur, NULL);
    c->depth = fp_metric_series(depth, NULL);
    c->pipelines_gauge = fp_metric_series(pipes, NULL);
    c->last_resync_ms = op_mono_ms();
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

int op_controller_start(op_controller *c, fp_error *err)
{
    pthread_mutex_lock(&c->lock);
    int started = c->started;
    c->started = 1;
    pthread_mutex_unlock(&c->lock);
    if (started)
        return 0;
    /* What reconcile never reads is not cached: specs of children (we apply ours
     * regardless of theirs), ConfigMap data. */
    static const char *const strip_spec[] = {"spec", NULL}, *const strip_data[] = {"data", "binaryData", NULL};
    static const struct { const char *name, *path; const char *const *strip; } kinds[INF_CHILD_COUNT] = {
        [INF_CONFIGMAPS] = {"configmaps", "/api/v1/configmaps", strip_data},
        [INF_DEPLOYMENTS] = {"deployments", "/apis/apps/v1/deployments", strip_spec},
        [INF_SERVICES] = {"services", "/api/v1/services", strip_spec},
        [INF_INGRESSES] = {"ingresses", "/apis/networking.k8s.io/v1/ingresses", strip_spec},
        [INF_CRONJOBS] = {"cronjobs", "/apis/batch/v1/cronjobs", strip_spec},
    };
    for (int i = 0; i < INF_CHILD_COUNT; i++)
        if (!(c->children[i] = start_informer(c, kinds[i].name, kinds[i].path, OP_LABEL_MANAGED_BY,
                                              kinds[i].strip, on_child, err)))
            return err ? err->code : FP_EIO;
    if (!(c->pipelines = start_informer(c, OP_PLURAL, "/apis/" OP_API_VERSION "/" OP_PLURAL, NULL, NULL,
                                        on_pipeline, err)))
        return err ? err->code : FP_EIO;
    c->workers = calloc((size_t)c->cfg.workers, sizeof *c->workers);
    if (!c->workers)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    for (; c->nworkers < c->cfg.workers; c->nworkers++)
        if (pthread_create(&c->workers[c->nworkers], NULL, worker, c) != 0)
            return fp_error_set(err, FP_ENOMEM, "cannot start worker threads");
    return 0;
}

void op_controller_free(op_controller *c)
{
    if (!c)
        return;
    if (c->queue)
        op_queue_shutdown(c->queue);
    for (int i = 0; i < c->nworkers; i++)
        pthread_join(c->workers[i], NULL);
    free(c->workers);
    op_informer_stop(c->pipelines);
    for (int i = 0; i < INF_CHILD_COUNT; i++)
        op_informer_stop(c->children[i]);
    op_queue_free(c->queue);
    op_map_free(c->states);
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
    for (int i = 0; i < INF_CHILD_COUNT; i++)
        if (!c->children[i] || !op_informer_synced(c->children[i])) {
            snprintf(why, whysz, "owned objects not listed yet");
            return 0;
        }
    return 1;
}

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
    long long now = op_mono_ms();
    if (now - c->last_resync_ms >= c->cfg.resync_ms) {
        c->last_resync_ms = now;
        op_informer_each_key(c->pipelines, enqueue_key, c->queue);
    }
}
