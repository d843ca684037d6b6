/* kube_client.h — a thin Kubernetes API client over libcurl + cJSON.
 * A kube_client holds the configuration and the bearer token (re-read from its file
 * every minute); each thread talks through its own kube_conn, a curl handle that keeps
 * its connection open between requests. Errors carry the API's Status reason and
 * message. */
#ifndef KUBE_CLIENT_H
#define KUBE_CLIENT_H

#include <cjson/cJSON.h>

#include "error.h"
#include "kube_config.h"

/* Codes beyond the shared fp_error ones; 404 is FP_ENOTFOUND, 403/401 FP_EPERM,
 * 400/422 FP_EINVAL, other failures FP_EIO, a timed-out request FP_ETIMEOUT. */
enum {
    KUBE_ECONFLICT = -20,   /* 409: resourceVersion conflict or already exists */
    KUBE_EGONE = -21        /* 410: resourceVersion too old */
};

#define KUBE_MAX_RESPONSE (64u * 1024 * 1024)   /* largest response body accepted */
#define KUBE_TOKEN_REREAD_MS 60000

typedef struct kube_client kube_client;
typedef struct kube_conn kube_conn;

/* Takes ownership of cfg (also on failure). */
kube_client *kube_client_new(kube_config *cfg, fp_error *err);
void kube_client_free(kube_client *c);   /* after every kube_conn is freed; NULL is fine */

/* The default namespace of the configuration. */
const char *kube_client_namespace(const kube_client *c);

/* A connection for one thread. request_timeout_ms bounds each ordinary request. */
kube_conn *kube_conn_new(kube_client *c, long request_timeout_ms, fp_error *err);
void kube_conn_free(kube_conn *k);   /* NULL is fine */

/* Sends method path?query with an optional body of content_type. 0 for a 2xx answer,
 * with the parsed body in *out when out is non-NULL (the caller owns it; NULL for an
 * empty body). Otherwise a negative code with err->msg "HTTP <status> <reason>:
 * <message>". *http_status (may be NULL) gets the status, 0 for a transport error. */
int kube_request(kube_conn *k, const char *method, const char *path, const char *content_type,
                 const char *body, cJSON **out, long *http_status, fp_error *err);

/* Called for each watch event (the parsed line); non-zero ends the watch early and
 * becomes kube_watch's return value. */
typedef int (*kube_watch_fn)(void *ctx, const cJSON *event);

/* Streams a watch (path should carry watch=1 and timeoutSeconds), calling fn per
 * event until the server closes the stream (returns 0), *stop becomes non-zero
 * (returns 0), fn stops it (fn's value), or an error (negative code). */
int kube_watch(kube_conn *k, const char *path, kube_watch_fn fn, void *ctx,
               const volatile int *stop, fp_error *err);

/* How many connections this kube_conn has opened so far (a reused connection adds
 * nothing): for tests and metrics. */
long kube_conn_connections(const kube_conn *k);

/* The error code for an HTTP status (0 for 2xx). */
int kube_status_code(long http_status);

#endif
