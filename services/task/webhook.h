/* webhook.h — the webhook task kind: POSTs each event to one URL over a pool of
 * keep-alive connections (libcurl multi), as the CloudEvents HTTP binding says
 * (structured or binary content mode), with an Idempotency-Key (the event id) and,
 * with a key, a Formpipe-Signature (hooksig.h). Receiver answers map to verdicts as
 * hookverdict.h says; 408/429/5xx honour Retry-After. Redirects are never followed.
 * A detail names the URL without its userinfo, query or fragment, never the key. */
#ifndef FP_WEBHOOK_H
#define FP_WEBHOOK_H

#include <stddef.h>

#include "error.h"
#include "kind.h"
#include "metrics.h"

typedef enum fp_webhook_mode {
    FP_WEBHOOK_STRUCTURED,   /* Content-Type: application/cloudevents+json, the event as read */
    FP_WEBHOOK_BINARY,       /* ce-* headers, Content-Type from datacontenttype, body = data */
} fp_webhook_mode;

typedef struct fp_webhook_config {
    const char *url;              /* http:// or https:// */
    const void *secret;           /* HMAC key bytes; NULL or secret_len 0: no signature */
    size_t secret_len;
    long timeout_ms;              /* per request, whole exchange; > 0 */
    fp_webhook_mode mode;
    int max_connections;          /* keep-alive pool size (open connections); > 0 */
    const char *user_agent;       /* NULL: "formpipe-task/<version>" */
    int allow_http;               /* plain http:// to a non-loopback host (urlpolicy.h); else HTTPS only */
} fp_webhook_config;

/* Creates the kind; copies what it keeps of cfg (the key too, wiped on free). m may
 * be NULL; otherwise formpipe_task_webhook_responses_total{code_class} is registered
 * in it. Returns NULL with *err for a bad config (a URL that is not http(s), a
 * timeout or pool size <= 0) or on ENOMEM. The result and its self are one
 * allocation: kind->free(kind->self) frees both (the registry m must outlive it). */
fp_task_kind *fp_webhook_new(const fp_webhook_config *cfg, fp_metrics *m, fp_error *err);

#endif
