/* ingest.c — see ingest.h. Several service threads (--threads), each with its own
 * libwebsockets context on a libev (epoll) loop and its own SO_REUSEPORT listener on the
 * same port; the kernel spreads connections over them. A request lives on the thread
 * that accepted its connection. One producer is shared: a delivery-report thread polls
 * it and posts each report to the owning thread's mailbox, which that thread empties
 * from a 2 ms timer, so request state is only ever touched by its own thread: a
 * connection that closes while its event is in flight leaves the request to the
 * delivery report, which frees it. */
#include "ingest.h"
#include "page.h"
#include "body.h"
#include "buf.h"
#include "event.h"
#include "form.h"
#include "formset.h"
#include "ids.h"
#include "kafka.h"
#include "log.h"
#include "ratelimit.h"
#include "schema.h"
#include "shutdown.h"

#include <ev.h>
#include <libwebsockets.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef struct worker worker;

typedef struct request {
    worker *w;                   /* the service thread that owns it */
    struct lws *wsi;             /* NULL once the connection has closed */
    fp_form_entry *form;         /* a reference, released with the request */
    fp_buf in;
    int rejected;                /* body over the limit: answer 413 at completion */
    int is_post, body_done;      /* an answer before the whole body was read closes */
    int delivering;              /* waiting for Kafka's delivery report */
    int answered_early;          /* 503 sent at the delivery bound; the report frees it */
    struct request *prev, *next; /* the worker's in-flight list, oldest first */
    int listed;
    struct request *mail_next;   /* in the worker's mailbox: Kafka reported on it */
    rd_kafka_resp_err_t dr_err;
    int status;                  /* 0 until the answer is ready */
    char *out;
    size_t outlen;
    const char *ctype;
    int retry_after;
    const char *allow;
    int html;                    /* the client prefers text/html */
    char origin[256];            /* an allowed Origin to echo in Access-Control-Allow-Origin */
    int preflight;               /* answering an OPTIONS preflight */
    char idem[256];
    int has_idem;
    char id[FP_ID_LEN + 1];
    double started;
} request;

struct session {
    request *req;
};

typedef struct server {
    const fp_ingest_config *cfg;
    fp_formset *forms;
    rd_kafka_t *rk;
    worker *workers;
    int nworkers;
    pthread_t reporter, housekeeper;
    atomic_int stop_threads;
    atomic_int kafka_ok;
    atomic_int inflight;         /* submissions waiting for Kafka, all threads */
    atomic_int connections;      /* open client connections, all threads */
    fp_ratelimit *limiter;
    fp_metrics *metrics;         /* the registry /metrics renders */
    fp_metric *m_requests, *m_invalid;
    fp_series *m_delivery, *m_inflight, *m_queue, *m_conns, *m_refused;
} server;

struct worker {
    lws_sorted_usec_list_t timer;    /* first member: the timer callback finds the worker */
    server *s;
    struct ev_loop *loop;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    int listen_fd;               /* this thread's own listener (SO_REUSEPORT) */
    ev_io accept_io;
    pthread_t thread;
    int inflight;                /* this thread's requests waiting for Kafka's report */
    request *oldest, *newest;    /* of those, the ones not yet answered, in produce order */
    int released;                /* a connection's slot came back (set while adopting one) */
    pthread_mutex_t mail_lock;
    request *mail;               /* reported requests, posted by the delivery-report thread */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static worker *worker_of(struct lws *wsi) { return lws_context_user(lws_get_context(wsi)); }

static void request_free(request *r)
{
    if (!r)
        return;
    fp_formset_put(r->form);
    fp_buf_free(&r->in);
    free(r->out);
    free(r);
}

static void list_add(worker *s, request *r)
{
    r->prev = s->newest;
    r->next = NULL;
    if (s->newest)
        s->newest->next = r;
    else
        s->oldest = r;
    s->newest = r;
    r->listed = 1;
}

static void list_remove(worker *s, request *r)
{
    if (!r->listed)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        s->oldest = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->newest = r->prev;
    r->listed = 0;
}

/* Sets the answer. Inside the connection's own callback it is written before the
 * callback returns (send_ready); from elsewhere (a delivery report, the delivery bound)
 * wake() asks for a writable callback. */
static void respond(request *r, int status, const char *ctype, char *body)
{
    r->status = status;
    r->ctype = ctype;
    free(r->out);
    r->out = body;
    r->outlen = body ? strlen(body) : 0;
}

static void wake(request *r)
{
    if (r->wsi)
        lws_callback_on_writable(r->wsi);
}

static void count(server *s, const request *r, int status)
{
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    fp_series_inc(fp_metric_series(s->m_requests, (const char *[]){r->form ? r->form->form->name : "", st}));
}

/* {"error": msg, "fields": [...]}; a browser (Accept: text/html) gets the same as a page. */
static void respond_error(server *s, request *r, int status, const char *msg, const fp_violations *v)
{
    count(s, r, status);
    if (r->html) {
        respond(r, status, "text/html; charset=utf-8",
                fp_page_answer("Your submission was not accepted", msg, NULL, v, r->form ? r->form->form->name : NULL));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    cJSON *fields = cJSON_AddArrayToObject(o, "fields");
    for (size_t i = 0; v && i < v->n; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "field", v->items[i].field);
        cJSON_AddStringToObject(f, "rule", v->items[i].rule);
        cJSON_AddStringToObject(f, "message", v->items[i].message);
        cJSON_AddItemToArray(fields, f);
    }
    respond(r, status, "application/json", cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
}

static void respond_accepted(server *s, request *r)
{
    count(s, r, 202);
    if (r->html) {
        respond(r, 202, "text/html; charset=utf-8",
                fp_page_answer("Thank you", "Your submission was received.", r->id, NULL, NULL));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    respond(r, 202, "application/json", body);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    server *s = opaque;
    request *r = m->_private;
    (void)rk;
    fp_series_observe(s->m_delivery, now_s() - r->started);
    if (!m->err)
        atomic_store(&s->kafka_ok, 1);
    r->dr_err = m->err;
    worker *w = r->w;    /* r belongs to w's thread from the moment it is posted */
    pthread_mutex_lock(&w->mail_lock);
    int was_empty = w->mail == NULL;
    r->mail_next = w->mail;
    w->mail = r;
    pthread_mutex_unlock(&w->mail_lock);
    if (was_empty)       /* wake the thread (LWS_CALLBACK_EVENT_WAIT_CANCELLED) */
        lws_cancel_service(w->ctx);
}

/* On the owning thread: Kafka has reported on r. Answers it, or frees it when the
 * client is gone or was answered at the delivery bound. */
static void delivered(worker *w, request *r)
{
    server *s = w->s;
    r->delivering = 0;
    list_remove(w, r);
    w->inflight--;
    fp_series_set(s->m_inflight, atomic_fetch_sub(&s->inflight, 1) - 1);
    if (!r->wsi) {            /* the client went away or was already answered: we are done */
        request_free(r);
        return;
    }
    if (r->answered_early)    /* its 503 is still being written; write_answer frees it */
        return;
    if (r->dr_err) {
        fp_log_warn("delivery failed", FP_LSTR("form", r->form->form->name), FP_LSTR("error", rd_kafka_err2str(r->dr_err)));
        r->retry_after = 5;
        respond_error(s, r, 503, "the submission could not be stored right now; retry later", NULL);
    } else {
        respond_accepted(s, r);
    }
    wake(r);
}

/* Validates the completed body and hands the event to Kafka. */
static void submit(server *s, request *r, const char *ctype)
{
    fp_error err = {0};
    fp_violations v;
    int form_post = strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0;
    cJSON *in = form_post ? fp_body_form(r->in.data ? r->in.data : "", r->in.len, &err)
                          : fp_body_json(r->in.data ? r->in.data : "", r->in.len, &err);
    if (!in) {
        respond_error(s, r, 400, err.msg, NULL);
        return;
    }
    cJSON *clean = NULL;
    int rc = fp_schema_validate(r->form->schema, in, form_post, &clean, &v);
    cJSON_Delete(in);
    if (rc) {
        for (size_t i = 0; i < v.n; i++)
            fp_series_inc(fp_metric_series(s->m_invalid, (const char *[]){r->form->form->name, v.items[i].rule}));
        respond_error(s, r, 422, "the submission does not match the form", &v);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ms = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
    const fp_form *f = r->form->form;
    if (r->has_idem)
        fp_id_derived(f->ns, f->name, r->idem, strlen(r->idem), r->id);
    else if (fp_id_ulid(ms, r->id)) {
        cJSON_Delete(clean);
        respond_error(s, r, 503, "no randomness available", NULL);
        return;
    }
    /* The Kafka key: the partitionKey field's value (per-key order), else the id. Copied:
     * clean is gone before the produce. */
    char key[512];
    const cJSON *kv = r->form->partition_key ? cJSON_GetObjectItemCaseSensitive(clean, r->form->partition_key) : NULL;
    if (cJSON_IsString(kv))
        snprintf(key, sizeof key, "%s", kv->valuestring);
    else if (cJSON_IsNumber(kv))
        snprintf(key, sizeof key, "%.17g", kv->valuedouble);
    else
        snprintf(key, sizeof key, "%s", r->id);
    char *event = fp_event_encode(r->id, f->ns, f->name, ms, f->generation, clean);
    cJSON_Delete(clean);
    if (!event) {
        respond_error(s, r, 503, "out of memory", NULL);
        return;
    }
    r->started = now_s();
    rd_kafka_resp_err_t e = rd_kafka_producev(
        s->rk, RD_KAFKA_V_TOPIC(r->form->topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(event, strlen(event)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END);
    if (e) {
        free(event);
        r->retry_after = 1;
        respond_error(s, r, 503, e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? "too many submissions in flight; retry shortly"
                                                                     : rd_kafka_err2str(e), NULL);
        return;
    }
    r->delivering = 1;
    list_add(r->w, r);
    r->w->inflight++;
    fp_series_set(s->m_inflight, atomic_fetch_add(&s->inflight, 1) + 1);
    fp_series_set(s->m_queue, rd_kafka_outq_len(s->rk));
}

/* Routes GET /healthz, /readyz, /metrics. Returns 1 when it answered. */
static int ops_route(server *s, request *r, const char *path, fp_metrics *metrics)
{
    fp_buf b;
    fp_buf_init(&b, 16 << 20);
    if (!strcmp(path, "/healthz")) {
        fp_buf_adds(&b, "ok\n");
        respond(r, 200, "text/plain; charset=utf-8", fp_buf_take(&b));
    } else if (!strcmp(path, "/readyz")) {
        int ok = atomic_load(&s->kafka_ok) && fp_formset_count(s->forms) > 0;
        fp_buf_adds(&b, ok ? "ok\n" : "not ready: kafka unreachable\n");
        respond(r, ok ? 200 : 503, "text/plain; charset=utf-8", fp_buf_take(&b));
    } else if (!strcmp(path, "/metrics")) {
        fp_series_set(s->m_queue, rd_kafka_outq_len(s->rk));
        fp_metrics_render(metrics, &b);
        respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", fp_buf_take(&b));
    } else {
        fp_buf_free(&b);
        return 0;
    }
    return 1;
}


static int header(struct lws *wsi, enum lws_token_indexes t, char *out, int outsz);

/* Keeps the request's Origin when the configuration allows it. */
static void note_origin(server *s, struct lws *wsi, request *r)
{
    char origin[256];
    const fp_strlist *allowed = s->cfg->allowed_origins;
    if (!allowed || !header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin))
        return;
    for (size_t i = 0; i < allowed->n; i++) {
        if (!strcmp(allowed->items[i], "*") || !strcmp(allowed->items[i], origin)) {
            snprintf(r->origin, sizeof r->origin, "%s", origin);
            return;
        }
    }
}

static int header(struct lws *wsi, enum lws_token_indexes t, char *out, int outsz)
{
    out[0] = '\0';
    return lws_hdr_total_length(wsi, t) > 0 && lws_hdr_copy(wsi, out, outsz, t) > 0;
}

/* The client's address: the peer, or for a trusted proxy the last X-Forwarded-For entry. */
static void client_of(server *s, struct lws *wsi, char *out, size_t outsz)
{
    char peer[64] = "", xff[512];
    lws_get_peer_simple(wsi, peer, sizeof peer);
    snprintf(out, outsz, "%s", peer);
    const fp_strlist *trusted = s->cfg->trusted_proxies;
    for (size_t i = 0; trusted && i < trusted->n; i++) {
        if (!strcmp(trusted->items[i], peer) && header(wsi, WSI_TOKEN_X_FORWARDED_FOR, xff, sizeof xff)) {
            char *last = strrchr(xff, ',');
            last = last ? last + 1 : xff;
            while (*last == ' ')
                last++;
            snprintf(out, outsz, "%.63s", last);
            return;
        }
    }
}

static int on_http(worker *w, struct lws *wsi, struct session *ss, const char *uri)
{
    server *s = w->s;
    request *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    ss->req = r;
    r->w = w;
    r->wsi = wsi;
    fp_buf_init(&r->in, (size_t)s->cfg->max_body_bytes);
    int is_get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    int is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    r->is_post = is_post;
    char accept[256], clen[32], ctype[128];
    header(wsi, WSI_TOKEN_HTTP_ACCEPT, accept, sizeof accept);
    r->html = strstr(accept, "text/html") != NULL && !strstr(accept, "application/json");
    if (is_get && ops_route(s, r, uri, s->metrics))
        return 0;
    note_origin(s, wsi, r);
    if (is_get && strncmp(uri, "/forms/", 7) == 0 && strlen(uri) > 14 && !strcmp(uri + strlen(uri) - 7, "/schema")) {
        char fname[128];
        snprintf(fname, sizeof fname, "%.*s", (int)(strlen(uri) - 14), uri + 7);
        if ((r->form = fp_formset_get(s->forms, fname))) {
            const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->form->form->json, "title"));
            cJSON *js = fp_schema_json_schema(r->form->schema, title);
            count(s, r, 200);
            respond(r, 200, "application/schema+json", js ? cJSON_PrintUnformatted(js) : NULL);
            cJSON_Delete(js);
            return 0;
        }
    }
    if (strncmp(uri, "/forms/", 7) != 0 || !(r->form = fp_formset_get(s->forms, uri + 7))) {
        respond_error(s, r, 404, "no such form", NULL);
        return 0;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0) {
        /* CORS preflight: the allowed origin may POST with these headers. */
        r->preflight = 1;
        r->allow = "POST, OPTIONS";
        count(s, r, 204);
        respond(r, 204, "text/plain", NULL);
        return 0;
    }
    if (is_get) {   /* the form itself, as an HTML page that posts back here */
        fp_error perr = {0};
        char *page = fp_page_render(r->form->form->json, &perr);
        if (!page) {
            respond_error(s, r, 500, perr.msg, NULL);
            return 0;
        }
        count(s, r, 200);
        respond(r, 200, "text/html; charset=utf-8", page);
        return 0;
    }
    if (!is_post) {
        r->allow = "GET, POST, OPTIONS";
        respond_error(s, r, 405, "use GET for the form page and POST to submit it", NULL);
        return 0;
    }
    char client[64];
    client_of(s, wsi, client, sizeof client);
    if (!fp_ratelimit_take(s->limiter, client, now_s(), &r->retry_after)) {
        respond_error(s, r, 429, "too many submissions from this address; retry later", NULL);
        return 0;
    }
    if (!header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, clen, sizeof clen)) {
        respond_error(s, r, 411, "a Content-Length header is required", NULL);
        return 0;
    }
    long long len = atoll(clen);
    if (len > s->cfg->max_body_bytes) {
        char msg[96];
        snprintf(msg, sizeof msg, "the body is larger than %ld bytes", s->cfg->max_body_bytes);
        respond_error(s, r, 413, msg, NULL);
        return 0;
    }
    header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, ctype, sizeof ctype);
    if (strncasecmp(ctype, "application/json", 16) != 0 &&
        strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0) {
        respond_error(s, r, 415, "send application/json or application/x-www-form-urlencoded", NULL);
        return 0;
    }
    int n = lws_hdr_custom_length(wsi, "idempotency-key:", 16);
    if (n > 0 && n < (int)sizeof r->idem && lws_hdr_custom_copy(wsi, r->idem, sizeof r->idem, "idempotency-key:", 16) > 0)
        r->has_idem = 1;
    else if (n >= (int)sizeof r->idem) {
        respond_error(s, r, 400, "Idempotency-Key is longer than 255 characters", NULL);
        return 0;
    }
    if (len == 0) {
        respond_error(s, r, 400, "the body is empty", NULL);
        return 0;
    }
    return 0;   /* the body follows */
}

#define HEAD_MAX 1024   /* room for the status line and our headers */

/* Appends the answer's headers at *p (before end). Nonzero when they do not fit. */
static int add_headers(struct lws *wsi, const request *r, uint8_t **p, uint8_t *end)
{
    char ra[16];
    if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->ctype, (lws_filepos_t)r->outlen, p, end))
        return -1;
    if (r->allow && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ALLOW, (const unsigned char *)r->allow,
                                                 (int)strlen(r->allow), p, end))
        return -1;
    if (r->origin[0]) {
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ACCESS_CONTROL_ALLOW_ORIGIN,
                                         (const unsigned char *)r->origin, (int)strlen(r->origin), p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:", (const unsigned char *)"Origin", 6, p, end))
            return -1;
        if (r->preflight &&
            (lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-methods:",
                                         (const unsigned char *)"POST", 4, p, end) ||
             lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-headers:",
                                         (const unsigned char *)"Content-Type, Idempotency-Key", 29, p, end) ||
             lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-max-age:",
                                         (const unsigned char *)"600", 3, p, end)))
            return -1;
    }
    if (r->retry_after) {
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_RETRY_AFTER, (const unsigned char *)ra,
                                         (int)strlen(ra), p, end))
            return -1;
    }
    return lws_finalize_http_header(wsi, p, end);
}

/* Sends the prepared answer, head and body in one write (one TCP segment for a small
 * answer; HTTP/1.1 only, which is all this server speaks). Returns -1 to close. */
static int write_answer(struct lws *wsi, struct session *ss)
{
    request *r = ss->req;
    uint8_t small[LWS_PRE + HEAD_MAX + 1024];
    size_t need = LWS_PRE + HEAD_MAX + r->outlen;
    uint8_t *buf = need <= sizeof small ? small : malloc(need);
    if (!buf)
        return -1;
    uint8_t *start = buf + LWS_PRE, *p = start;
    int failed = add_headers(wsi, r, &p, start + HEAD_MAX);
    if (!failed) {
        if (r->outlen)
            memcpy(p, r->out, r->outlen);
        size_t len = (size_t)(p - start) + r->outlen;
        failed = lws_write(wsi, start, len, LWS_WRITE_HTTP_FINAL) != (int)len;
    }
    if (buf != small)
        free(buf);
    if (failed)
        return -1;
    /* Unread body bytes would be taken for the next request: close instead. */
    int close = r->rejected || (r->is_post && !r->body_done);
    if (r->delivering)
        r->wsi = NULL;        /* answered at the bound; the delivery report frees it */
    else
        request_free(r);
    ss->req = NULL;
    return close || lws_http_transaction_completed(wsi) ? -1 : 0;
}

static void release_connection(server *s);
static void read_mail(worker *w);

/* Writes the request's answer if it has one that may go out now. */
static int send_ready(struct lws *wsi, struct session *ss)
{
    if (ss->req && ss->req->status && (!ss->req->delivering || ss->req->answered_early))
        return write_answer(wsi, ss);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct session *ss = user;
    worker *w = lws_get_context(wsi) ? worker_of(wsi) : NULL;
    server *s = w ? w->s : NULL;
    switch (reason) {   /* connection accounting: every connection, before any request */
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:   /* woken by on_delivery: Kafka reported */
        if (w)
            read_mail(w);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (s && lws_get_opaque_user_data(wsi) == &s->connections) {   /* a counted connection */
            lws_set_opaque_user_data(wsi, NULL);
            release_connection(s);
            w->released = 1;
        }
        break;
    default:
        break;
    }
    if (!ss)   /* lws closes connections that never got as far as a request without one */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (on_http(w, wsi, ss, in))
            return -1;
        return send_ready(wsi, ss);
    case LWS_CALLBACK_HTTP_BODY:
        if (ss->req && !ss->req->status && !ss->req->rejected && fp_buf_add(&ss->req->in, in, len) == FP_ELIMIT)
            ss->req->rejected = 1;
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (ss->req)
            ss->req->body_done = 1;
        if (ss->req && !ss->req->status) {
            char ctype[128];
            if (ss->req->rejected) {
                char msg[96];
                snprintf(msg, sizeof msg, "the body is larger than %ld bytes", s->cfg->max_body_bytes);
                respond_error(s, ss->req, 413, msg, NULL);
            } else {
                header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, ctype, sizeof ctype);
                submit(s, ss->req, ctype);
            }
        }
        return send_ready(wsi, ss);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return send_ready(wsi, ss);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (ss->req) {
            if (ss->req->delivering)
                ss->req->wsi = NULL;   /* the delivery report frees it */
            else
                request_free(ss->req);
            ss->req = NULL;
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* Answers what Kafka reported on since the last look (on w's own thread). */
static void read_mail(worker *w)
{
    pthread_mutex_lock(&w->mail_lock);
    request *mail = w->mail;
    w->mail = NULL;
    pthread_mutex_unlock(&w->mail_lock);
    while (mail) {
        request *r = mail;
        mail = r->mail_next;
        delivered(w, r);
    }
}

/* Takes a slot of --max-connections for a new connection; 0 when all are taken. */
static int reserve_connection(server *s)
{
    int n = atomic_fetch_add(&s->connections, 1) + 1;
    if (n > s->cfg->max_connections) {
        atomic_fetch_sub(&s->connections, 1);
        fp_series_inc(s->m_refused);
        return 0;
    }
    fp_series_set(s->m_conns, n);
    return 1;
}

static void release_connection(server *s)
{
    fp_series_set(s->m_conns, atomic_fetch_sub(&s->connections, 1) - 1);
}

/* The listener is readable: accepts what is waiting and gives each connection to this
 * thread's lws context, or closes it at once when --max-connections are open. The slot
 * goes with the wsi (marked by its opaque pointer) and comes back at WSI_DESTROY. */
static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    worker *w = io->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                fp_log_warn("accept failed", FP_LSTR("error", strerror(errno)));
            return;
        }
        if (!reserve_connection(w->s)) {
            close(fd);
            continue;
        }
        int one = 1;   /* an answer goes out in two writes (headers, body): no Nagle wait */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        lws_adopt_desc_t desc = {.vh = w->vhost, .type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP,
                                 .opaque = &w->s->connections};   /* marks the wsi as holding a slot */
        desc.fd.sockfd = fd;
        w->released = 0;
        /* On failure lws closes fd, and may already have destroyed the wsi (slot back). */
        struct lws *wsi = lws_adopt_descriptor_vhost_via_info(&desc);
        if (!wsi && !w->released)
            release_connection(w->s);
        /* lws sets no timeout on an adopted socket: bound the wait for the first request
         * (lws clears it once the headers are in, and keeps its own idle timeout after). */
        if (wsi)
            lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, w->s->cfg->idle_timeout_s);
    }
}

/* A listening socket on addr:port with SO_REUSEPORT, so each service thread has its own
 * and the kernel spreads connections over them. -1 with *err. */
static int listen_on(const char *addr, int port, fp_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(addr, service, &hints, &ai);
    if (rc) {
        fp_error_set(err, FP_EINVAL, "bind address %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int one = 1, fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) || bind(fd, ai->ai_addr, ai->ai_addrlen) ||
        listen(fd, 4096)) {
        fp_error_set(err, FP_EIO, "cannot listen on %s:%d: %s", addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* The port fd listens on. */
static int port_of(int fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len))
        return -1;
    return ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port : ((struct sockaddr_in *)&sa)->sin_port);
}

#define TIMER_US 2000           /* how often a service thread empties its mailbox */
#define FORM_RELOAD_S 1.0        /* how often the form files are looked at */

/* Every 2 ms on each service thread: keeps the delivery bound, and answers reports
 * (also read at once when on_delivery wakes the thread). */
static void on_timer(lws_sorted_usec_list_t *sul)
{
    worker *w = (worker *)sul;
    read_mail(w);
    /* The delivery bound is ours to keep: answer 503 for what Kafka has not confirmed in
     * time (a later confirmation is harmless: a retry with the same Idempotency-Key is
     * stored once). */
    double limit = now_s() - w->s->cfg->delivery_timeout_ms / 1000.0;
    while (w->oldest && w->oldest->started < limit) {
        request *r = w->oldest;
        list_remove(w, r);
        if (r->wsi) {
            r->answered_early = 1;
            r->retry_after = 1;
            respond_error(w->s, r, 503, "Kafka did not confirm the submission in time; retry later", NULL);
            wake(r);
        }
    }
    if (fp_shutdown_requested())
        ev_break(w->loop, EVBREAK_ONE);
    lws_sul_schedule(w->ctx, 0, &w->timer, on_timer, TIMER_US);
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(struct session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* The delivery-report thread: Kafka's reports go to the owning threads' mailboxes. */
static void *reporter(void *arg)
{
    server *s = arg;
    pthread_setname_np(pthread_self(), "delivery");
    while (!atomic_load(&s->stop_threads))
        rd_kafka_poll(s->rk, 100);
    return NULL;
}

/* Checks every two seconds that Kafka answers (for /readyz) and every second whether a
 * form file changed. */
static void *housekeeper(void *arg)
{
    server *s = arg;
    pthread_setname_np(pthread_self(), "housekeeping");
    double next_check = 0, next_reload = now_s() + FORM_RELOAD_S;
    while (!atomic_load(&s->stop_threads)) {
        struct pollfd p = {.fd = fp_shutdown_fd(), .events = POLLIN};
        poll(&p, 1, 200);
        if (now_s() >= next_reload) {
            fp_formset_reload(s->forms);
            next_reload = now_s() + FORM_RELOAD_S;
        }
        if (now_s() >= next_check) {
            const struct rd_kafka_metadata *md = NULL;
            int ok = rd_kafka_metadata(s->rk, 0, NULL, &md, 1500) == RD_KAFKA_RESP_ERR_NO_ERROR;
            if (md)
                rd_kafka_metadata_destroy(md);
            atomic_store(&s->kafka_ok, ok);
            next_check = now_s() + 2;
        }
    }
    return NULL;
}

/* A service thread: serves until shutdown, then answers its in-flight submissions
 * within the grace period. */
static void *serve(void *arg)
{
    worker *w = arg;
    char name[16];
    snprintf(name, sizeof name, "http-%d", (int)(w - w->s->workers));
    pthread_setname_np(pthread_self(), name);
    ev_io_start(w->loop, &w->accept_io);
    while (!fp_shutdown_requested())
        ev_run(w->loop, 0);
    ev_io_stop(w->loop, &w->accept_io);   /* stop accepting; finish what is in flight */
    close(w->listen_fd);
    w->listen_fd = -1;
    double deadline = now_s() + w->s->cfg->shutdown_grace_ms / 1000.0;
    while (w->inflight > 0 && now_s() < deadline)
        ev_run(w->loop, EVRUN_ONCE);
    return NULL;
}

/* Creates worker w: its listener on port (0: any), its event loop and its lws context. */
static int worker_init(server *s, worker *w, int port, fp_error *err)
{
    const fp_ingest_config *cfg = s->cfg;
    w->s = s;
    pthread_mutex_init(&w->mail_lock, NULL);
    if ((w->listen_fd = listen_on(cfg->bind, port, err)) < 0)
        return err->code;
    if (!(w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV)))
        return fp_error_set(err, FP_ENOMEM, "cannot create an event loop");
    ev_io_init(&w->accept_io, on_accept, w->listen_fd, EV_READ);
    w->accept_io.data = w;
    void *loops[] = {w->loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;   /* connections come from on_accept */
    info.protocols = protocols;
    info.user = w;
    info.foreign_loops = loops;
    info.timeout_secs = (unsigned)cfg->idle_timeout_s;
    info.keepalive_timeout = cfg->idle_timeout_s;
    info.max_http_header_data = (unsigned short)cfg->max_header_bytes;
    info.options = LWS_SERVER_OPTION_LIBEV;
    if (!(w->ctx = lws_create_context(&info)) || !(w->vhost = lws_get_vhost_by_name(w->ctx, "default")))
        return fp_error_set(err, FP_EIO, "cannot create the HTTP server (libwebsockets with libev)");
    lws_sul_schedule(w->ctx, 0, &w->timer, on_timer, TIMER_US);
    return 0;
}

/* Answers or frees what a stopped worker still holds; its context is gone. */
static void worker_free(worker *w)
{
    if (w->ctx)
        lws_context_destroy(w->ctx);   /* closes connections: their requests drop their wsi */
    for (request *r = w->mail, *next; r; r = next) {
        next = r->mail_next;
        list_remove(w, r);
        request_free(r);
    }
    while (w->oldest) {                /* never reported on (the producer is gone) */
        request *r = w->oldest;
        list_remove(w, r);
        request_free(r);
    }
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    if (w->loop)
        ev_loop_destroy(w->loop);
    pthread_mutex_destroy(&w->mail_lock);
}

static int register_metrics(server *s, fp_metrics *m, fp_error *err)
{
    s->m_requests = fp_metrics_counter(m, "formpipe_ingest_requests_total", "Form submissions by form and answer status.",
                                       (const char *[]){"form", "status", NULL}, err);
    s->m_invalid = fp_metrics_counter(m, "formpipe_ingest_validation_failures_total", "Failing fields by form and rule.",
                                      (const char *[]){"form", "rule", NULL}, err);
    fp_metric *d = fp_metrics_histogram(m, "formpipe_ingest_delivery_seconds", "Time from produce to Kafka's acknowledgement.",
                                        NULL, fp_metrics_latency_buckets, fp_metrics_latency_nbuckets, err);
    fp_metric *inf = fp_metrics_gauge(m, "formpipe_ingest_inflight_requests", "Submissions waiting for Kafka.", NULL, err);
    fp_metric *q = fp_metrics_gauge(m, "formpipe_ingest_producer_queue", "Messages in the producer queue.", NULL, err);
    fp_metric *c = fp_metrics_gauge(m, "formpipe_ingest_connections", "Open client connections.", NULL, err);
    fp_metric *rf = fp_metrics_counter(m, "formpipe_ingest_connections_refused_total",
                                       "Connections closed at accept because --max-connections were open.", NULL, err);
    if (!s->m_requests || !s->m_invalid || !d || !inf || !q || !c || !rf)
        return err->code;
    s->m_delivery = fp_metric_series(d, NULL);
    s->m_inflight = fp_metric_series(inf, NULL);
    s->m_queue = fp_metric_series(q, NULL);
    s->m_conns = fp_metric_series(c, NULL);
    s->m_refused = fp_metric_series(rf, NULL);
    return 0;
}

static rd_kafka_t *producer_new(server *s, fp_error *err)
{
    const fp_ingest_config *cfg = s->cfg;
    char why[512], timeout[24];
    snprintf(timeout, sizeof timeout, "%ld", cfg->delivery_timeout_ms);
    static const char *const defaults[] = {"linger.ms", "2", NULL};
    rd_kafka_conf_t *kc = fp_kafka_conf_new(cfg->kafka_bootstrap, defaults, cfg->kafka_config_file,
                                            cfg->kafka_properties, err);
    if (!kc || fp_kafka_conf_set(kc, "enable.idempotence", "true", err) ||
        fp_kafka_conf_set(kc, "acks", "all", err) || fp_kafka_conf_set(kc, "message.timeout.ms", timeout, err)) {
        if (kc)
            rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_conf_set_opaque(kc, s);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof why);
    if (!rk)
        fp_error_set(err, FP_EINVAL, "kafka producer: %s", why);
    return rk;
}

/* Stops the helper threads, hands Kafka what is left of the grace period, and gets a
 * report for every message (purging what Kafka did not take), so every request ends
 * in a mailbox. */
static void stop_producer(server *s, double deadline)
{
    rd_kafka_flush(s->rk, (int)(deadline > now_s() ? (deadline - now_s()) * 1000 : 0));
    atomic_store(&s->stop_threads, 1);
    pthread_join(s->reporter, NULL);
    pthread_join(s->housekeeper, NULL);
    rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    for (int i = 0; i < 100 && rd_kafka_outq_len(s->rk) > 0; i++)
        rd_kafka_poll(s->rk, 10);
}

int fp_ingest_run(const fp_ingest_config *cfg, fp_metrics *metrics, fp_error *err)
{
    server s = {.cfg = cfg, .metrics = metrics};
    int rc, threads = cfg->threads > 0 ? cfg->threads : 1;
    if (!(s.forms = fp_formset_load(cfg->forms, err))) {
        rc = err->code;
        goto out;
    }
    if ((rc = register_metrics(&s, metrics, err)))
        goto out;
    if (!(s.limiter = fp_ratelimit_new(cfg->rate_limit, cfg->rate_burst))) {
        rc = fp_error_set(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    if (!(s.rk = producer_new(&s, err))) {
        rc = err->code;
        goto out;
    }
    if (!(s.workers = calloc((size_t)threads, sizeof *s.workers))) {
        rc = fp_error_set(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    int port = cfg->port;
    for (; s.nworkers < threads; s.nworkers++) {
        s.workers[s.nworkers].listen_fd = -1;
        if ((rc = worker_init(&s, &s.workers[s.nworkers], port, err))) {
            s.nworkers++;   /* freed below */
            goto out;
        }
        if (port == 0)      /* an ephemeral port: the others share the first one's */
            port = port_of(s.workers[0].listen_fd);
    }
    pthread_create(&s.reporter, NULL, reporter, &s);
    pthread_create(&s.housekeeper, NULL, housekeeper, &s);
    fp_log_info("ingest listening", FP_LSTR("bind", cfg->bind), FP_LINT("port", port),
                FP_LINT("threads", threads), FP_LINT("forms", (long long)fp_formset_count(s.forms)));
    for (int i = 0; i < threads; i++)
        pthread_create(&s.workers[i].thread, NULL, serve, &s.workers[i]);
    double deadline = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(s.workers[i].thread, NULL);
        if (!deadline)
            deadline = now_s() + cfg->shutdown_grace_ms / 1000.0;
    }
    stop_producer(&s, deadline);
    fp_log_info("ingest stopped", FP_LINT("unanswered", atomic_load(&s.inflight)));
    rc = 0;
out:
    for (int i = 0; i < s.nworkers; i++)
        worker_free(&s.workers[i]);
    free(s.workers);
    if (s.rk)
        rd_kafka_destroy(s.rk);
    fp_ratelimit_free(s.limiter);
    fp_formset_free(s.forms);
    return rc;
}
