/* admin.h — the operational HTTP endpoints every long-running formpipe binary serves:
 * GET /healthz (process alive), GET /readyz (the binary's own check) and GET /metrics
 * (Prometheus text format). fp_admin_route answers them (one router for every binary);
 * fp_admin_start serves them on a port of their own, in a libwebsockets thread, and a
 * server with its own HTTP port (the ingest) calls fp_admin_route itself. */
#ifndef FP_ADMIN_H
#define FP_ADMIN_H

#include <stddef.h>

#include "error.h"
#include "metrics.h"

/* Answers whether the process can do its work; on "no" writes a short reason into
 * why. Called from the thread serving /readyz: it must be thread-safe. Returns 1 for
 * ready. */
typedef int (*fp_admin_ready_fn)(void *ctx, char *why, size_t whysz);

/* The cap on a rendered /metrics when fp_admin_routes.max_metrics_bytes is 0. */
#define FP_ADMIN_MAX_METRICS_BYTES (16 * 1024 * 1024)

/* What the endpoints answer from; borrowed, and must outlive the answers. */
typedef struct fp_admin_routes {
    fp_metrics *metrics;          /* rendered by /metrics; NULL: no /metrics (not routed) */
    fp_admin_ready_fn ready;      /* asked by /readyz; NULL: always ready */
    void *ctx;                    /* passed to ready and refresh */
    void (*refresh)(void *ctx);   /* optional: sets the gauges read at render time */
    size_t max_metrics_bytes;     /* a larger /metrics is a 500; 0: FP_ADMIN_MAX_METRICS_BYTES */
} fp_admin_routes;

/* One answer: status, content type and body (owned by the caller: free() it; NULL only
 * when out of memory). */
typedef struct fp_admin_answer {
    int status;
    const char *ctype;
    char *body;
    size_t len;
} fp_admin_answer;

/* Answers GET path when it is /healthz, /readyz or /metrics: fills *a and returns 1;
 * returns 0 for any other path (*a untouched). /readyz: 200 "ok\n", or 503 "not ready:
 * <why>\n". A /metrics that cannot be rendered (over the cap, out of memory) is 500 with
 * {"error": "<why>"}. Thread-safe when r's callbacks are. */
int fp_admin_route(const fp_admin_routes *r, const char *path, fp_admin_answer *a);

typedef struct fp_admin fp_admin;

/* Starts serving on bind:port (an IPv4 address; port 0 picks a free port). metrics
 * and ctx are borrowed and must outlive the server. NULL with *err when the port
 * can't be bound (the message says why, e.g. "Address already in use"). */
fp_admin *fp_admin_start(const char *bind, int port, fp_metrics *metrics,
                         fp_admin_ready_fn ready, void *ctx, fp_error *err);

/* The port actually listened on. */
int fp_admin_port(const fp_admin *a);

/* Stops the server and joins its thread. NULL is fine. */
void fp_admin_stop(fp_admin *a);

/* Routes libwebsockets' own log lines into fp_log (JSON lines); call once at start. */
void fp_admin_route_lws_logs(void);

#endif
