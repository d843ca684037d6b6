/* lease.c — acquire / renew / observe loop. */
#include "clock.h"
#include "condwait.h"
#include "lease.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rfc3339.h"

struct op_lease {
    op_lease_config cfg;
    kube_conn *conn;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop, leader, lost;
    void (*on_elected)(void *), (*on_lost)(void *);
    void *ctx;
    char observed[256];          /* holder + renewTime + resourceVersion last seen */
    long long observed_at;       /* our clock when it last changed */
    long long renewed_at;        /* our clock at our last successful renew */
    long long expires_at;        /* our clock when another holder's lease runs out; 0: unknown */
};

/* The Lease body we write: holder = us, renewed now. */
static char *lease_body(const op_lease *l, const cJSON *current, int transitions, const char *acquire)
{
    char now[FP_RFC3339_MAX];
    fp_rfc3339_now(6, now, sizeof now);   /* metav1.MicroTime */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "coordination.k8s.io/v1");
    cJSON_AddStringToObject(o, "kind", "Lease");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "name", l->cfg.name);
    cJSON_AddStringToObject(md, "namespace", l->cfg.ns);
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(current, "metadata"), "resourceVersion"));
    if (rv)
        cJSON_AddStringToObject(md, "resourceVersion", rv);   /* optimistic concurrency */
    cJSON *spec = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddStringToObject(spec, "holderIdentity", l->cfg.identity);
    cJSON_AddNumberToObject(spec, "leaseDurationSeconds", (double)((l->cfg.duration_ms + 999) / 1000));
    cJSON_AddStringToObject(spec, "acquireTime", acquire ? acquire : now);
    cJSON_AddStringToObject(spec, "renewTime", now);
    cJSON_AddNumberToObject(spec, "leaseTransitions", transitions);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* One attempt to acquire or renew. 1 when we hold the Lease afterwards. */
static int try_acquire(op_lease *l)
{
    char path[512];
    snprintf(path, sizeof path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", l->cfg.ns, l->cfg.name);
    fp_error err = {0};
    cJSON *cur = NULL;
    int rc = kube_request(l->conn, "GET", path, NULL, NULL, &cur, NULL, &err);
    long long now = fp_clock_mono_ms();
    if (rc == FP_ENOTFOUND) {
        char *body = lease_body(l, NULL, 0, NULL);
        snprintf(path, sizeof path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases", l->cfg.ns);
        rc = body ? kube_request(l->conn, "POST", path, "application/json", body, NULL, NULL, &err) : FP_ENOMEM;
        free(body);
        if (rc == 0)
            l->renewed_at = now;
        return rc == 0;
    }
    if (rc < 0) {
        fp_log_warn("lease: cannot read", FP_LSTR("error", err.msg));
        return 0;
    }
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(cur, "spec");
    const char *holder = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "holderIdentity"));
    const char *renew = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "renewTime"));
    const char *acquire = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "acquireTime"));
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cur, "metadata"), "resourceVersion"));
    double dur = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(spec, "leaseDurationSeconds"));
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(spec, "leaseTransitions");
    int transitions = cJSON_IsNumber(tr) && tr->valuedouble > 0 ? (int)tr->valuedouble : 0;
    char record[256];
    snprintf(record, sizeof record, "%s|%s|%s", holder ? holder : "", renew ? renew : "", rv ? rv : "");
    if (strcmp(record, l->observed) != 0) {
        snprintf(l->observed, sizeof l->observed, "%s", record);
        l->observed_at = now;
    }
    int ours = holder && strcmp(holder, l->cfg.identity) == 0;
    long long dur_ms = dur > 0 ? (long long)(dur * 1000) : l->cfg.duration_ms;
    if (!ours && holder && *holder && now - l->observed_at < dur_ms) {
        l->expires_at = l->observed_at + dur_ms;
        cJSON_Delete(cur);
        return 0;   /* someone else holds a lease that is still fresh by our clock */
    }
    l->expires_at = 0;
    char *body = lease_body(l, cur, ours ? transitions : transitions + 1, ours ? acquire : NULL);
    char previous[128];
    snprintf(previous, sizeof previous, "%s", holder ? holder : "");   /* holder dies with cur */
    cJSON_Delete(cur);
    rc = body ? kube_request(l->conn, "PUT", path, "application/json", body, NULL, NULL, &err) : FP_ENOMEM;
    free(body);
    if (rc == 0) {
        l->renewed_at = now;
        if (!ours)
            fp_log_info("lease: taken over", FP_LSTR("previous", previous));
        return 1;
    }
    if (rc != KUBE_ECONFLICT)
        fp_log_warn("lease: cannot write", FP_LSTR("error", err.msg));
    return 0;
}

static int stopping(op_lease *l)
{
    pthread_mutex_lock(&l->lock);
    int s = l->stop;
    pthread_mutex_unlock(&l->lock);
    return s;
}

static void *run(void *arg)
{
    op_lease *l = arg;
    while (!stopping(l)) {
        int held = try_acquire(l);
        pthread_mutex_lock(&l->lock);
        int was = l->leader;
        if (held)
            l->leader = 1;
        int expired = was && !held && fp_clock_mono_ms() - l->renewed_at > l->cfg.renew_deadline_ms;
        if (expired) {
            l->leader = 0;
            l->lost = 1;
        }
        pthread_mutex_unlock(&l->lock);
        if (held && !was) {
            fp_log_info("lease: leading", FP_LSTR("identity", l->cfg.identity));
            l->on_elected(l->ctx);
        }
        if (expired) {
            fp_log_error("lease: lost leadership (renew deadline passed)", FP_LSTR("identity", l->cfg.identity));
            l->on_lost(l->ctx);
            break;
        }
        /* a candidate wakes right when the holder's lease runs out, not up to a retry later */
        long long wait = l->cfg.retry_ms, left = l->expires_at ? l->expires_at - fp_clock_mono_ms() + 10 : wait;
        pthread_mutex_lock(&l->lock);
        op_cond_wait_ms(&l->wake, &l->lock, !held && left > 0 && left < wait ? left : wait, &l->stop);
        pthread_mutex_unlock(&l->lock);
    }
    return NULL;
}

/* Gives the Lease up: renewTime now, duration 1 s, no holder. */
static void release(op_lease *l)
{
    char path[512];
    snprintf(path, sizeof path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", l->cfg.ns, l->cfg.name);
    const char *body = "{\"spec\":{\"holderIdentity\":null,\"leaseDurationSeconds\":1}}";
    fp_error err = {0};
    if (kube_request(l->conn, "PATCH", path, "application/merge-patch+json", body, NULL, NULL, &err) < 0)
        fp_log_warn("lease: cannot release", FP_LSTR("error", err.msg));
}

op_lease *op_lease_start(kube_client *c, const op_lease_config *cfg, void (*on_elected)(void *),
                         void (*on_lost)(void *), void *ctx, fp_error *err)
{
    op_lease *l = calloc(1, sizeof *l);
    if (!l) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    l->cfg = *cfg;
    l->on_elected = on_elected;
    l->on_lost = on_lost;
    l->ctx = ctx;
    pthread_mutex_init(&l->lock, NULL);
    op_cond_init(&l->wake);
    l->conn = kube_conn_new(c, cfg->renew_deadline_ms / 2 > 1000 ? cfg->renew_deadline_ms / 2 : 1000, err);
    if (!l->conn || pthread_create(&l->thread, NULL, run, l) != 0) {
        if (l->conn)
            fp_error_set(err, FP_ENOMEM, "cannot start the lease thread");
        kube_conn_free(l->conn);
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->wake);
        free(l);
        return NULL;
    }
    return l;
}

void op_lease_stop(op_lease *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = 1;
    pthread_cond_broadcast(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    if (l->leader && !l->lost)
        release(l);
    kube_conn_free(l->conn);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->wake);
    free(l);
}

int op_lease_is_leader(op_lease *l)
{
    pthread_mutex_lock(&l->lock);
    int v = l->leader;
    pthread_mutex_unlock(&l->lock);
    return v;
}
