/* admin.h — the operational HTTP endpoints every long-running formpipe binary serves
 * on its own port: GET /healthz (process alive), GET /readyz (the binary's own check)
 * and GET /metrics (Prometheus text format). Runs libwebsockets in its own thread. */
#ifndef FP_ADMIN_H
#define FP_ADMIN_H

#include <stddef.h>

#include "error.h"
#include "metrics.h"

/* Answers whether the process can do its work; on "no" writes a short reason into
 * why. Called from the admin thread: it must be thread-safe. Returns 1 for ready. */
typedef int (*fp_admin_ready_fn)(void *ctx, char *why, size_t whysz);

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
