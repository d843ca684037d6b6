/* kube_client.c — requests and watches over a reused curl handle. */
#include "clock.h"
#include "urlpolicy.h"
#include "kube_client.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"

#define MAX_WATCH_LINE (16u * 1024 * 1024)

struct kube_client {
    kube_config *cfg;
    pthread_mutex_t lock;      /* guards token and token_read_ms */
    char *token;
    long long token_read_ms;
};

struct kube_conn {
    kube_client *client;
    CURL *curl;
    long timeout_ms;
    long connections;   /* opened so far */
};

/* Adds the connections the last transfer opened. */
static void count_connections(kube_conn *k)
{
    long n = 0;
    if (curl_easy_getinfo(k->curl, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK)
        k->connections += n;
}

long kube_conn_connections(const kube_conn *k)
{
    return k->connections;
}

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

kube_client *kube_client_new(kube_config *cfg, fp_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    kube_client *c = calloc(1, sizeof *c);
    if (!c) {
        kube_config_free(cfg);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    c->cfg = cfg;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void kube_client_free(kube_client *c)
{
    if (!c)
        return;
    kube_config_free(c->cfg);
    if (c->token)
        OPENSSL_cleanse(c->token, strlen(c->token));
    free(c->token);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *kube_client_namespace(const kube_client *c)
{
    return c->cfg->ns;
}

/* Writes "Authorization: Bearer <token>" into out, re-reading a token file at most
 * once a minute. Empty out when there is no token. */
static int auth_header(kube_client *c, char *out, size_t outsz, fp_error *err)
{
    out[0] = 0;
    if (c->cfg->token) {   /* a token longer than the header buffer is an error, never cut (#16) */
        if (snprintf(out, outsz, "Authorization: Bearer %s", c->cfg->token) >= (int)outsz)
            return fp_error_set(err, FP_ELIMIT, "the bearer token is longer than %zu bytes", outsz - 23);
        return 0;
    }
    if (!c->cfg->token_file)
        return 0;
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    long long now = fp_clock_mono_ms();
    if (!c->token || now - c->token_read_ms >= KUBE_TOKEN_REREAD_MS) {
        fp_error ferr = {0};
        char *t = kube_read_file(c->cfg->token_file, 64 * 1024, NULL, &ferr);
        if (t) {
            t[strcspn(t, "\r\n")] = 0;
            if (c->token)
                OPENSSL_cleanse(c->token, strlen(c->token));
            free(c->token);
            c->token = t;
            c->token_read_ms = now;
        } else if (!c->token) {
            rc = fp_error_set(err, FP_EIO, "bearer token: %s", ferr.msg);
        }
    }
    if (c->token && snprintf(out, outsz, "Authorization: Bearer %s", c->token) >= (int)outsz) {
        out[0] = 0;
        rc = fp_error_set(err, FP_ELIMIT, "the bearer token is longer than %zu bytes", outsz - 23);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

kube_conn *kube_conn_new(kube_client *c, long request_timeout_ms, fp_error *err)
{
    kube_conn *k = calloc(1, sizeof *k);
    if (!k || !(k->curl = curl_easy_init())) {
        free(k);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    k->client = c;
    k->timeout_ms = request_timeout_ms;
    const kube_config *cfg = c->cfg;
    CURL *h = k->curl;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    if (cfg->ca.data) {
        struct curl_blob b = {cfg->ca.data, cfg->ca.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
    }
    if (cfg->cert.data) {
        struct curl_blob cb = {cfg->cert.data, cfg->cert.len, CURL_BLOB_COPY};
        struct curl_blob kb = {cfg->key.data, cfg->key.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (cfg->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return k;
}

void kube_conn_free(kube_conn *k)
{
    if (!k)
        return;
    curl_easy_cleanup(k->curl);
    free(k);
}

int kube_status_code(long s)
{
    if (s >= 200 && s < 300)
        return 0;
    switch (s) {
    case 400: case 422: return FP_EINVAL;
    case 401: case 403: return FP_EPERM;
    case 404: return FP_ENOTFOUND;
    case 409: return KUBE_ECONFLICT;
    case 410: return KUBE_EGONE;
    case 504: return FP_ETIMEOUT;
    default: return FP_EIO;
    }
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return fp_buf_add(ud, p, size * n) == 0 ? size * n : 0;
}

/* Prepares method, URL and headers on the handle. *hdrs is for the caller to free. */
static int prepare(kube_conn *k, const char *method, const char *path, const char *content_type,
                   const char *body, struct curl_slist **hdrs, fp_error *err)
{
    char auth[8192], ctype[128];
    int rc = auth_header(k->client, auth, sizeof auth, err);
    if (rc < 0)
        return rc;
    size_t urlsz = strlen(k->client->cfg->server) + strlen(path) + 1;
    char *url = malloc(urlsz);
    if (!url)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    snprintf(url, urlsz, "%s%s", k->client->cfg->server, path);
    CURL *h = k->curl;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, fp_urlpolicy_protocols(url, 0));
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    free(url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    struct curl_slist *l = curl_slist_append(NULL, "Accept: application/json");
    if (auth[0])
        l = curl_slist_append(l, auth);
    if (content_type) {
        snprintf(ctype, sizeof ctype, "Content-Type: %s", content_type);
        l = curl_slist_append(l, ctype);
    }
    memset(auth, 0, sizeof auth);   /* the token does not linger on the stack */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    *hdrs = l;
    return l ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
}

/* Fills err from a failed answer: the Status object's reason and message if any. */
static int api_error(long status, const char *body, fp_error *err)
{
    cJSON *j = body ? cJSON_Parse(body) : NULL;
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "reason"));
    const char *message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "message"));
    int rc = fp_error_set(err, kube_status_code(status), "HTTP %ld %s: %.180s", status,
                          reason ? reason : "Error", message ? message : body && *body ? body : "no message");
    cJSON_Delete(j);
    return rc;
}

int kube_request(kube_conn *k, const char *method, const char *path, const char *content_type,
                 const char *body, cJSON **out, long *http_status, fp_error *err)
{
    if (out)
        *out = NULL;
    if (http_status)
        *http_status = 0;
    struct curl_slist *hdrs = NULL;
    int rc = prepare(k, method, path, content_type, body, &hdrs, err);
    if (rc < 0)
        return rc;
    fp_buf resp;
    fp_buf_init(&resp, KUBE_MAX_RESPONSE);
    CURL *h = k->curl;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, k->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
    CURLcode cc = curl_easy_perform(h);
    count_connections(k);
    curl_slist_free_all(hdrs);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    long status = 0;
    if (cc != CURLE_OK) {
        rc = fp_error_set(err, cc == CURLE_OPERATION_TIMEDOUT ? FP_ETIMEOUT : FP_EIO, "%s %s: %s",
                          method, path, curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status >= 300) {
            rc = api_error(status, resp.data, err);
        } else if (out && resp.len) {
            if (!(*out = cJSON_ParseWithLength(resp.data, resp.len)))
                rc = fp_error_set(err, FP_EIO, "%s %s: answer is not JSON", method, path);
        }
    }
    if (http_status)
        *http_status = status;
    fp_buf_free(&resp);
    return rc;
}

typedef struct watch_state {
    fp_buf line;
    kube_watch_fn fn;
    void *ctx;
    int fn_rc;
    const volatile int *stop;
    CURL *curl;
} watch_state;

/* Splits the stream into lines and hands each parsed event to the callback. */
static size_t on_watch_data(char *p, size_t size, size_t n, void *ud)
{
    watch_state *w = ud;
    size_t total = size * n;
    long status = 0;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300)   /* an error Status object: keep it for api_error */
        return fp_buf_add(&w->line, p, total) == 0 ? total : 0;
    for (size_t i = 0; i < total; i++) {
        if (p[i] != '\n') {
            if (fp_buf_add(&w->line, p + i, 1) < 0)
                return 0;   /* an event larger than MAX_WATCH_LINE: abort the stream */
            continue;
        }
        if (w->line.len == 0)
            continue;
        cJSON *ev = cJSON_ParseWithLength(w->line.data, w->line.len);
        fp_buf_reset(&w->line);
        if (!ev)
            return 0;
        w->fn_rc = w->fn(w->ctx, ev);
        cJSON_Delete(ev);
        if (w->fn_rc)
            return 0;
    }
    return total;
}

static int on_watch_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    const watch_state *w = ud;
    return w->stop && *w->stop;
}

int kube_watch(kube_conn *k, const char *path, kube_watch_fn fn, void *ctx,
               const volatile int *stop, fp_error *err)
{
    struct curl_slist *hdrs = NULL;
    int rc = prepare(k, "GET", path, NULL, NULL, &hdrs, err);
    if (rc < 0)
        return rc;
    watch_state w = {.fn = fn, .ctx = ctx, .stop = stop, .curl = k->curl};
    fp_buf_init(&w.line, MAX_WATCH_LINE);
    CURL *h = k->curl;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);   /* the server ends the watch (timeoutSeconds) */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);   /* ... or we notice a dead peer */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 120L);  /* bookmarks arrive about every minute */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_watch_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_watch_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w);
    CURLcode cc = curl_easy_perform(h);
    count_connections(k);
    curl_slist_free_all(hdrs);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 0L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 0L);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (w.fn_rc)
        rc = w.fn_rc;
    else if (stop && *stop)
        rc = 0;
    else if (status && (status < 200 || status >= 300))
        rc = api_error(status, w.line.data, err);
    else if (cc != CURLE_OK && cc != CURLE_PARTIAL_FILE)
        rc = fp_error_set(err, FP_EIO, "watch %s: %s", path, curl_easy_strerror(cc));
    fp_buf_free(&w.line);
    return rc;
}
