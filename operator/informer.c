/* informer.c — list + watch loop in its own thread, cache in an op_map. */
#include "informer.h"
#include "clock.h"
#include "condwait.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "strmap.h"

struct op_informer {
    op_informer_config cfg;
    kube_client *client;
    kube_conn *conn;
    pthread_t thread;
    pthread_mutex_t lock;         /* guards cache and synced */
    pthread_cond_t wake;          /* stop signal for backoff sleeps */
    op_map *cache;                /* key -> char *: the trimmed object as compact JSON text
                                     (several times smaller than a cJSON tree) */
    int synced;
    int stop;                     /* guarded by lock; the watch reads it without (a late read only delays) */
    char rv[64];                  /* last resourceVersion seen */
    char *selector;               /* URL-escaped label selector or NULL */
};

int op_object_key(const cJSON *obj, char *out, size_t outsz)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
    if (!name)
        return FP_EINVAL;
    int n = snprintf(out, outsz, "%s/%s", ns ? ns : "", name);
    return n > 0 && (size_t)n < outsz ? 0 : FP_EINVAL;
}


/* Removes what the controller never reads from obj (in place). */
static void trim(const op_informer *inf, cJSON *obj)
{
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(md, "annotations"),
                                            "kubectl.kubernetes.io/last-applied-configuration");
    for (const char *const *f = inf->cfg.strip; f && *f; f++)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, *f);
}

static void set_rv(op_informer *inf, const cJSON *obj)
{
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion"));
    if (rv)
        snprintf(inf->rv, sizeof inf->rv, "%s", rv);
}

/* Stores obj (owned; freed here) under its key and reports the change. */
static void apply_event(op_informer *inf, op_event_type type, cJSON *obj)
{
    char key[512];
    if (op_object_key(obj, key, sizeof key) < 0) {
        cJSON_Delete(obj);
        return;
    }
    trim(inf, obj);
    pthread_mutex_lock(&inf->lock);
    if (type == OP_EV_DELETED) {
        op_map_del(inf->cache, key);
    } else {
        char *text = cJSON_PrintUnformatted(obj);
        if (!text || op_map_put(inf->cache, key, text) < 0) {
            free(text);
            op_map_del(inf->cache, key);   /* a stale copy is worse than none: readers fall back to GET */
            fp_log_error("informer cache: out of memory", FP_LSTR("kind", inf->cfg.name), FP_LSTR("key", key));
        }
    }
    pthread_mutex_unlock(&inf->lock);
    inf->cfg.fn(inf->cfg.ctx, type, obj);
    cJSON_Delete(obj);
}

typedef struct relist_ctx {
    op_informer *inf;
    op_map *seen;
    char **gone;
    size_t ngone, capgone;
} relist_ctx;

static void find_gone(void *ctx, const char *key, void *value)
{
    (void)value;
    relist_ctx *r = ctx;
    if (op_map_has(r->seen, key))
        return;
    if (r->ngone == r->capgone) {
        size_t cap = r->capgone ? r->capgone * 2 : 16;
        char **g = realloc(r->gone, cap * sizeof *g);
        if (!g)
            return;
        r->gone = g;
        r->capgone = cap;
    }
    r->gone[r->ngone++] = strdup(key);
}

/* Lists everything (paged) into the cache, reporting adds/changes and deletions. */
static int relist(op_informer *inf, fp_error *err)
{
    op_map *seen = op_map_new(NULL);
    if (!seen)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    char cont[2048] = "", path[4096];
    int rc = 0;
    do {
        char *econt = cont[0] ? curl_easy_escape(NULL, cont, 0) : NULL;
        snprintf(path, sizeof path, "%s?limit=%d%s%s%s%s", inf->cfg.path, inf->cfg.page_size,
                 inf->selector ? "&labelSelector=" : "", inf->selector ? inf->selector : "",
                 econt ? "&continue=" : "", econt ? econt : "");
        curl_free(econt);
        cJSON *list = NULL;
        if ((rc = kube_request(inf->conn, "GET", path, NULL, NULL, &list, NULL, err)) < 0)
            break;
        cJSON *md = cJSON_GetObjectItemCaseSensitive(list, "metadata");
        const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "continue"));
        snprintf(cont, sizeof cont, "%s", c ? c : "");
        set_rv(inf, list);
        cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items"), *item;
        while ((item = cJSON_DetachItemFromArray(items, 0))) {
            char key[512];
            if (op_object_key(item, key, sizeof key) == 0)
                op_map_put(seen, key, NULL);
            pthread_mutex_lock(&inf->lock);
            int known = op_map_has(inf->cache, key);
            pthread_mutex_unlock(&inf->lock);
            apply_event(inf, known ? OP_EV_MODIFIED : OP_EV_ADDED, item);
        }
        cJSON_Delete(list);
    } while (cont[0] && !inf->stop);
    if (rc == 0) {
        relist_ctx r = {.inf = inf, .seen = seen};
        pthread_mutex_lock(&inf->lock);
        op_map_each(inf->cache, find_gone, &r);
        pthread_mutex_unlock(&inf->lock);
        for (size_t i = 0; i < r.ngone; i++) {
            pthread_mutex_lock(&inf->lock);
            char *text = r.gone[i] ? op_map_take(inf->cache, r.gone[i]) : NULL;
            pthread_mutex_unlock(&inf->lock);
            cJSON *obj = text ? cJSON_Parse(text) : NULL;
            free(text);
            if (obj) {
                inf->cfg.fn(inf->cfg.ctx, OP_EV_DELETED, obj);
                cJSON_Delete(obj);
            }
            free(r.gone[i]);
        }
        free(r.gone);
        pthread_mutex_lock(&inf->lock);
        inf->synced = 1;
        pthread_mutex_unlock(&inf->lock);
    }
    op_map_free(seen);
    return rc;
}

/* Watch callback: 0 to go on, KUBE_EGONE to relist, FP_EIO for a broken stream. */
static int on_event(void *ctx, const cJSON *ev)
{
    op_informer *inf = ctx;
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
    cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    if (!type || !obj)
        return FP_EIO;
    if (strcmp(type, "ERROR") == 0) {
        double code = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(obj, "code"));
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "message"));
        fp_log_write(code == 410 ? FP_LOG_INFO : FP_LOG_WARN, "watch error event",
                     (const fp_log_field[]){FP_LSTR("kind", inf->cfg.name), FP_LINT("code", (long long)code),
                                            FP_LSTR("message", msg ? msg : ""), FP_LEND});
        return code == 410 ? KUBE_EGONE : FP_EIO;
    }
    set_rv(inf, obj);
    if (strcmp(type, "BOOKMARK") == 0)
        return 0;
    op_event_type t = strcmp(type, "ADDED") == 0 ? OP_EV_ADDED
                    : strcmp(type, "DELETED") == 0 ? OP_EV_DELETED : OP_EV_MODIFIED;
    cJSON *copy = cJSON_Duplicate(obj, 1);
    if (!copy)
        return FP_EIO;   /* restart the watch; the relist catches up */
    apply_event(inf, t, copy);
    return 0;
}

static void count_restart(op_informer *inf)
{
    if (inf->cfg.restarts)
        fp_series_inc(inf->cfg.restarts);
}

static void *run(void *arg)
{
    op_informer *inf = arg;
    long long backoff = inf->cfg.backoff_initial_ms;
    int need_list = 1;
    while (!inf->stop) {
        fp_error err = {0};
        int rc;
        if (need_list) {
            rc = relist(inf, &err);
            need_list = rc < 0;
        } else {
            char path[4096];
            snprintf(path, sizeof path, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s%s%s",
                     inf->cfg.path, inf->cfg.watch_timeout_s, inf->rv,
                     inf->selector ? "&labelSelector=" : "", inf->selector ? inf->selector : "");
            rc = kube_watch(inf->conn, path, on_event, inf, &inf->stop, &err);
            if (rc == KUBE_EGONE) {   /* our version was compacted away: start over */
                need_list = 1;
                count_restart(inf);
                continue;
            }
            if (rc == 0 && !inf->stop) {
                backoff = inf->cfg.backoff_initial_ms;   /* normal end of a watch: go on at once */
                continue;
            }
        }
        if (rc == 0 || inf->stop)
            continue;
        count_restart(inf);
        fp_log_warn(need_list ? "list failed" : "watch failed", FP_LSTR("kind", inf->cfg.name), FP_LSTR("error", err.msg),
                    FP_LINT("retry_ms", backoff));
        pthread_mutex_lock(&inf->lock);
        op_cond_wait_ms(&inf->wake, &inf->lock, backoff, (const int *)&inf->stop);
        pthread_mutex_unlock(&inf->lock);
        backoff = backoff * 2 < inf->cfg.backoff_max_ms ? backoff * 2 : inf->cfg.backoff_max_ms;
    }
    return NULL;
}

/* Frees everything but the (stopped or never started) thread. */
static void destroy(op_informer *inf)
{
    kube_conn_free(inf->conn);
    op_map_free(inf->cache);
    curl_free(inf->selector);
    pthread_mutex_destroy(&inf->lock);
    pthread_cond_destroy(&inf->wake);
    free(inf);
}

op_informer *op_informer_start(kube_client *c, const op_informer_config *cfg, fp_error *err)
{
    op_informer *inf = calloc(1, sizeof *inf);
    if (!inf || !(inf->cache = op_map_new(free))) {
        free(inf);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    inf->cfg = *cfg;
    if (inf->cfg.page_size <= 0)
        inf->cfg.page_size = 500;
    if (inf->cfg.watch_timeout_s <= 0)
        inf->cfg.watch_timeout_s = 300;
    if (inf->cfg.backoff_initial_ms <= 0)
        inf->cfg.backoff_initial_ms = 800;
    if (inf->cfg.backoff_max_ms < inf->cfg.backoff_initial_ms)
        inf->cfg.backoff_max_ms = 30000;
    inf->client = c;
    if (cfg->label_selector)
        inf->selector = curl_easy_escape(NULL, cfg->label_selector, 0);
    pthread_mutex_init(&inf->lock, NULL);
    op_cond_init(&inf->wake);
    inf->conn = kube_conn_new(c, 30000, err);
    if (!inf->conn || pthread_create(&inf->thread, NULL, run, inf) != 0) {
        if (inf->conn)
            fp_error_set(err, FP_ENOMEM, "cannot start the informer thread");
        destroy(inf);
        return NULL;
    }
    return inf;
}

void op_informer_stop(op_informer *inf)
{
    if (!inf)
        return;
    pthread_mutex_lock(&inf->lock);
    inf->stop = 1;
    pthread_cond_broadcast(&inf->wake);
    pthread_mutex_unlock(&inf->lock);
    pthread_join(inf->thread, NULL);
    destroy(inf);
}

cJSON *op_informer_get(op_informer *inf, const char *key)
{
    pthread_mutex_lock(&inf->lock);
    const char *text = op_map_get(inf->cache, key);
    cJSON *copy = text ? cJSON_Parse(text) : NULL;
    pthread_mutex_unlock(&inf->lock);
    return copy;
}

int op_informer_synced(op_informer *inf)
{
    pthread_mutex_lock(&inf->lock);
    int s = inf->synced;
    pthread_mutex_unlock(&inf->lock);
    return s;
}

typedef struct each_key_ctx {
    void (*fn)(void *ctx, const char *key);
    void *ctx;
} each_key_ctx;

static void each_key_adapter(void *ctx, const char *key, void *value)
{
    (void)value;
    each_key_ctx *e = ctx;
    e->fn(e->ctx, key);
}

void op_informer_each_key(op_informer *inf, void (*fn)(void *ctx, const char *key), void *ctx)
{
    each_key_ctx e = {fn, ctx};
    pthread_mutex_lock(&inf->lock);
    op_map_each(inf->cache, each_key_adapter, &e);
    pthread_mutex_unlock(&inf->lock);
}
