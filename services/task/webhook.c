/* webhook.c — see webhook.h. */
#include "webhook.h"
#include "urlpolicy.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cehttp.h"
#include "clock.h"
#include "hooksig.h"
#include "hookverdict.h"
#include "retryafter.h"
#include "transfers.h"

#ifndef FP_TASK_VERSION
#define FP_TASK_VERSION "0"
#endif

enum { CLASS_2XX, CLASS_3XX, CLASS_4XX, CLASS_5XX, CLASS_ERROR, NCLASSES };

/* One attempt: a request, or decided at start (an event that cannot be sent, whose
 * outcome poll reports without a request). */
typedef struct attempt {
    fp_transfer t;               /* first: transfers.h hands this back */
    struct curl_slist *headers;
    fp_cehttp_binary bin;
    char retry_after[64];        /* the last Retry-After of the final answer, or "" */
} attempt;

typedef struct webhook {
    fp_task_kind kind;           /* first: the kind and this are one allocation */
    fp_transfers ts;             /* the attempts and the multi handle */
    char *url;                   /* as configured: may hold userinfo or a query */
    char *safe_url;              /* what details name: no userinfo, query, fragment */
    int allow_http;              /* fp_webhook_config.allow_http */
    unsigned char *key;
    size_t keylen;
    long timeout_ms;
    fp_webhook_mode mode;
    char *user_agent;
    fp_series *responses[NCLASSES];
} webhook;

/* transfers.h free: an attempt's own parts. */
static void attempt_free(fp_transfer *t)
{
    attempt *a = (attempt *)t;
    curl_slist_free_all(a->headers);
    fp_cehttp_binary_free(&a->bin);
    free(a);
}

/* Keeps the final answer's Retry-After (an interim 1xx answer starts a new header block). */
static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
    attempt *a = userdata;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        a->retry_after[0] = '\0';
    } else if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        size_t vlen = len - (sizeof name - 1);
        if (vlen >= sizeof a->retry_after)
            vlen = sizeof a->retry_after - 1;
        memcpy(a->retry_after, p + sizeof name - 1, vlen);
        a->retry_after[vlen] = '\0';
    }
    return len;
}

/* The receiver's answer body is not used. */
static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    (void)p;
    (void)userdata;
    return size * n;
}

/* Appends one header line; 0 or FP_ENOMEM. */
static int add_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n)
        return FP_ENOMEM;
    *l = n;
    return 0;
}

/* An id that can be a header value as it is (no control characters). */
static int header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* Tracks an attempt that is decided without a request (REJECT with a reason). */
static int start_decided(webhook *w, attempt *a, const char *why)
{
    fp_transfers_decide(&a->t, FP_TASK_REJECT, "%s", why);
    curl_slist_free_all(a->headers);
    a->headers = NULL;
    fp_cehttp_binary_free(&a->bin);
    fp_transfers_track(&w->ts, &a->t);
    return 0;
}

/* kind.h start: builds the request (headers, signature over the exact body) and hands
 * it to the multi handle; the body points into ev, which the runner keeps until the
 * report. An event that can never be sent is reported as REJECT by the next poll. */
static int wh_start(void *self, const fp_task_event *ev)
{
    webhook *w = self;
    attempt *a = calloc(1, sizeof *a);
    char line[FP_HOOKSIG_MAX + sizeof a->bin.content_type + 32];
    fp_error err = {0};
    const char *body = ev->value;
    size_t body_len = ev->value_len;

    if (!a)
        return FP_ENOMEM;
    a->t.ev = ev;
    if (!header_safe(ev->id))
        return start_decided(w, a, "the event id holds control characters: it cannot be an Idempotency-Key");
    if (w->mode == FP_WEBHOOK_BINARY) {
        int rc = fp_cehttp_binary_of(ev->value, ev->value_len, &a->bin, &err);
        if (rc == FP_EINVAL) {
            char why[sizeof err.msg + 64];
            snprintf(why, sizeof why, "cannot be sent in binary mode: %s", err.msg);
            return start_decided(w, a, why);
        }
        if (rc < 0)
            goto fail;
        body = a->bin.body ? a->bin.body : "";
        body_len = a->bin.body_len;
        snprintf(line, sizeof line, "Content-Type: %s", a->bin.content_type);
        if (add_header(&a->headers, line) < 0)
            goto fail;
        const char *h = a->bin.headers;
        for (size_t i = 0; i < a->bin.nheaders; i++, h += strlen(h) + 1)
            if (add_header(&a->headers, h) < 0)
                goto fail;
    } else if (add_header(&a->headers, "Content-Type: application/cloudevents+json") < 0) {
        goto fail;
    }
    char *idem = NULL;
    if (asprintf(&idem, "Idempotency-Key: %s", ev->id) < 0)
        goto fail;
    int rc = add_header(&a->headers, idem);
    free(idem);
    if (rc < 0 || add_header(&a->headers, "Expect:") < 0)   /* no 100-continue round trip */
        goto fail;
    if (w->keylen) {
        int n = snprintf(line, sizeof line, "Formpipe-Signature: ");
        if (fp_hooksig_format(w->key, w->keylen, fp_clock_wall_ms() / 1000, body, body_len,
                              line + n, sizeof line - (size_t)n) < 0 ||
            add_header(&a->headers, line) < 0)
            goto fail;
    }

    CURL *h = curl_easy_init();
    if (!h)
        goto fail;
    if (curl_easy_setopt(h, CURLOPT_URL, w->url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, fp_urlpolicy_protocols(w->url, w->allow_http)) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, a->headers) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, w->user_agent) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, w->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HEADERDATA, a) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK) {
        curl_easy_cleanup(h);
        goto fail;
    }
    if (fp_transfers_run(&w->ts, &a->t, h) < 0)
        goto fail;
    fp_transfers_track(&w->ts, &a->t);
    return 0;
fail:
    attempt_free(&a->t);
    return FP_ENOMEM;
}

/* The outcome of a finished request. */
static void outcome_of(void *self, fp_transfer *t, CURLcode res, fp_task_outcome *o)
{
    webhook *w = self;
    attempt *a = (attempt *)t;
    long status = 0;
    memset(o, 0, sizeof *o);
    if (res == CURLE_OK)
        curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
    fp_series_inc(w->responses[res == CURLE_OK && status >= 200 && status <= 599
                                   ? status / 100 - 2 : CLASS_ERROR]);
    if (res == CURLE_OPERATION_TIMEDOUT) {
        o->verdict = FP_TASK_RETRY;
        snprintf(o->detail, sizeof o->detail, "no answer within %ld ms from %s", w->timeout_ms,
                 w->safe_url);
        return;
    }
    if (res != CURLE_OK) {
        o->verdict = FP_TASK_RETRY;
        snprintf(o->detail, sizeof o->detail, "%s (%s)", curl_easy_strerror(res), w->safe_url);
        return;
    }
    o->verdict = fp_hookverdict_of_status(status);
    if (o->verdict != FP_TASK_DONE)
        snprintf(o->detail, sizeof o->detail, "HTTP %ld from %s", status, w->safe_url);
    long long wait;
    if (o->verdict == FP_TASK_RETRY && a->retry_after[0] &&
        fp_retry_after_parse(a->retry_after, fp_clock_wall_ms(), &wait) == 0)
        o->retry_after_ms = wait;
}

static const fp_transfers_ops ops = {.outcome = outcome_of, .free = attempt_free};

/* kind.h poll: drives the requests until one finished or timeout_ms passed. */
static int wh_poll(void *self, long timeout_ms, fp_task_report_fn *report, void *runner)
{
    webhook *w = self;
    return fp_transfers_poll(&w->ts, timeout_ms, report, runner);
}

/* kind.h free: drops running transfers unreported, wipes the key, frees the kind. */
static void wh_free(void *self)
{
    webhook *w = self;
    if (!w)
        return;
    fp_transfers_cleanup(&w->ts);
    if (w->key) {
        OPENSSL_cleanse(w->key, w->keylen);
        free(w->key);
    }
    free(w->url);
    free(w->safe_url);
    free(w->user_agent);
    free(w);
    curl_global_cleanup();
}

/* Checks the URL and sets w->url and w->safe_url. */
static int set_url(webhook *w, const char *url, fp_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *safe = NULL;
    int rc = FP_ENOMEM;
    if (!u)
        goto out;
    /* The URL is never echoed: it may hold credentials. */
    if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        rc = fp_error_set(err, FP_EINVAL, "the webhook URL is not an http:// or https:// URL");
        goto out;
    }
    if (!strcmp(scheme, "http") && !w->allow_http && !fp_urlpolicy_loopback(url)) {
        rc = fp_error_set(err, FP_EINVAL, "the webhook URL is plain http:// to a host that is not loopback: use https:// "
                                          "(or allow it explicitly with --webhook-allow-http)");
        goto out;
    }
    if (curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &safe, 0) != CURLUE_OK)
        goto out;
    if (!(w->url = strdup(url)) || !(w->safe_url = strdup(safe)))
        goto out;
    rc = 0;
out:
    curl_free(scheme);
    curl_free(safe);
    curl_url_cleanup(u);
    return rc;
}

fp_task_kind *fp_webhook_new(const fp_webhook_config *cfg, fp_metrics *m, fp_error *err)
{
    if (cfg->timeout_ms <= 0 || cfg->max_connections <= 0) {
        fp_error_set(err, FP_EINVAL, "the webhook timeout and connection count must be positive");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fp_error_set(err, FP_ENOMEM, "libcurl cannot start");
        return NULL;
    }
    webhook *w = calloc(1, sizeof *w);
    if (!w) {
        curl_global_cleanup();
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    w->kind = (fp_task_kind){.name = "webhook", .self = w, .start = wh_start, .poll = wh_poll,
                             .ready = NULL, .free = wh_free};
    w->timeout_ms = cfg->timeout_ms;
    w->mode = cfg->mode;
    w->allow_http = cfg->allow_http;
    if (set_url(w, cfg->url, err) < 0)
        goto fail;
    if (cfg->secret && cfg->secret_len) {
        if (!(w->key = malloc(cfg->secret_len)))
            goto enomem;
        memcpy(w->key, cfg->secret, cfg->secret_len);
        w->keylen = cfg->secret_len;
    }
    if (!(w->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "formpipe-task/" FP_TASK_VERSION)))
        goto enomem;
    if (fp_transfers_init(&w->ts, &ops, w, cfg->max_connections, err) < 0)
        goto fail;
    if (m) {
        static const char *const labels[] = {"code_class", NULL};
        static const char *const classes[NCLASSES] = {"2xx", "3xx", "4xx", "5xx", "error"};
        fp_metric *fam = fp_metrics_counter(m, "formpipe_task_webhook_responses_total",
                                            "Webhook answers by status class (error: none)",
                                            labels, err);
        if (!fam)
            goto fail;
        for (int i = 0; i < NCLASSES; i++) {
            const char *v[] = {classes[i]};
            w->responses[i] = fp_metric_series(fam, v);
        }
    }
    return &w->kind;
enomem:
    fp_error_set(err, FP_ENOMEM, "out of memory");
fail:
    wh_free(w);
    return NULL;
}
