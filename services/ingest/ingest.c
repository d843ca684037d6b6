/* ingest.c — see ingest.h. One libwebsockets service thread owns every request; the
 * producer's delivery reports are served on that thread too (rd_kafka_poll from an lws
 * timer every 2 ms), so a request never outlives its bookkeeping by accident:
 * a connection that closes while its event is in flight leaves the request to the
 * delivery report, which frees it. */
#include "ingest.h"
#include "page.h"
#include "body.h"
#include "buf.h"
#include "event.h"
#include "form.h"
#include "ids.h"
#include "kafka.h"
#include "log.h"
#include "ratelimit.h"
#include "schema.h"
#include "shutdown.h"

#include <libwebsockets.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct form_entry {
    fp_form *form;
    fp_schema *schema;
    char topic[256];
    const char *partition_key;   /* field name, or NULL: the submission id */
    struct stat seen;            /* the file as last looked at (a mounted ConfigMap changes in place) */
} form_entry;

typedef struct request {
    struct lws *wsi;             /* NULL once the connection has closed */
    const form_entry *form;
    fp_buf in;
    int rejected;                /* body over the limit: answer 413 at completion */
    int is_post, body_done;      /* an answer before the whole body was read closes */
    int delivering;              /* waiting for Kafka's delivery report */
    int answered_early;          /* 503 sent at the delivery bound; the report frees it */
    struct request *prev, *next; /* the in-flight list, oldest first */
    int listed;
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
    lws_sorted_usec_list_t poll_timer;   /* first member: the timer callback finds the server */
    const fp_ingest_config *cfg;
    form_entry *forms;
    size_t nforms;
    rd_kafka_t *rk;
    struct lws_context *ctx;
    pthread_t helper;
    atomic_int stop_helper;
    double next_reload_check;    /* now_s() of the next look at the form files */
    atomic_int kafka_ok;
    int inflight;
    request *oldest, *newest;    /* in-flight submissions in produce order */
    fp_ratelimit *limiter;
    fp_metrics *metrics;         /* the registry /metrics renders */
    fp_metric *m_requests, *m_invalid;
    fp_series *m_delivery, *m_inflight, *m_queue;
} server;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static server *srv_of(struct lws *wsi) { return lws_context_user(lws_get_context(wsi)); }

static const form_entry *find_form(server *s, const char *name)
{
    for (size_t i = 0; i < s->nforms; i++) {
        if (strcmp(s->forms[i].form->name, name) == 0)
            return &s->forms[i];
    }
    return NULL;
}

static void request_free(request *r)
{
    if (!r)
        return;
    fp_buf_free(&r->in);
    free(r->out);
    free(r);
}

static void list_add(server *s, request *r)
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

static void list_remove(server *s, request *r)
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

/* Sets the answer and asks for a writable callback to send it. */
static void respond(request *r, int status, const char *ctype, char *body)
{
    r->status = status;
    r->ctype = ctype;
    free(r->out);
    r->out = body;
    r->outlen = body ? strlen(body) : 0;
    if (r->wsi)
        lws_callback_on_writable(r->wsi);
}

static void count(server *s, const request *r, int status)
{
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    fp_series_inc(fp_metric_series(s->m_requests, (const char *[]){r->form ? r->form->form->name : "", st}));
}

/* {"error": msg, "fields": [...]} */
static void respond_error(server *s, request *r, int status, const char *msg, const fp_violations *v)
{
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
    count(s, r, status);
    respond(r, status, "application/json", cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
}

static void respond_accepted(server *s, request *r)
{
    char *body;
    count(s, r, 202);
    if (r->html) {
        fp_buf b;
        fp_buf_init(&b, 4096);
        fp_buf_printf(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Thank you</title>"
                          "</head><body><main><h1>Thank you</h1><p>Your submission was received.</p>"
                          "<p>Reference: <code>%s</code></p></main></body></html>\n", r->id);
        body = fp_buf_take(&b);
        respond(r, 202, "text/html; charset=utf-8", body);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    respond(r, 202, "application/json", body);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    server *s = opaque;
    request *r = m->_private;
    (void)rk;
    r->delivering = 0;
    list_remove(s, r);
    s->inflight--;
    fp_series_set(s->m_inflight, s->inflight);
    fp_series_observe(s->m_delivery, now_s() - r->started);
    if (!m->err)
        atomic_store(&s->kafka_ok, 1);
    if (!r->wsi) {            /* the client went away or was already answered: we are done */
        request_free(r);
        return;
    }
    if (r->answered_early)    /* its 503 is still being written; write_answer frees it */
        return;
    if (m->err) {
        fp_log_warn("delivery failed", FP_LSTR("form", r->form->form->name), FP_LSTR("error", rd_kafka_err2str(m->err)));
        r->retry_after = 5;
        respond_error(s, r, 503, "the submission could not be stored right now; retry later", NULL);
    } else {
        respond_accepted(s, r);
    }
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
    list_add(s, r);
    s->inflight++;
    fp_series_set(s->m_inflight, s->inflight);
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
        int ok = atomic_load(&s->kafka_ok) && s->nforms > 0;
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

static int on_http(server *s, struct lws *wsi, struct session *ss, const char *uri)
{
    request *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    ss->req = r;
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
        if ((r->form = find_form(s, fname))) {
            const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->form->form->json, "title"));
            cJSON *js = fp_schema_json_schema(r->form->schema, title);
            count(s, r, 200);
            respond(r, 200, "application/schema+json", js ? cJSON_PrintUnformatted(js) : NULL);
            cJSON_Delete(js);
            return 0;
        }
    }
    if (strncmp(uri, "/forms/", 7) != 0 || !(r->form = find_form(s, uri + 7))) {
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

/* Sends the prepared answer. Returns -1 to close the connection. */
static int write_answer(struct lws *wsi, struct session *ss)
{
    request *r = ss->req;
    uint8_t buf[LWS_PRE + 1024], *start = &buf[LWS_PRE], *p = start, *end = &buf[sizeof buf - 1];
    char ra[16];
    if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->ctype, (lws_filepos_t)r->outlen, &p, end))
        return -1;
    if (r->allow && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ALLOW, (const unsigned char *)r->allow,
                                                 (int)strlen(r->allow), &p, end))
        return -1;
    if (r->origin[0]) {
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ACCESS_CONTROL_ALLOW_ORIGIN,
                                         (const unsigned char *)r->origin, (int)strlen(r->origin), &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:", (const unsigned char *)"Origin", 6, &p, end))
            return -1;
        if (r->preflight &&
            (lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-methods:",
                                         (const unsigned char *)"POST", 4, &p, end) ||
             lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-headers:",
                                         (const unsigned char *)"Content-Type, Idempotency-Key", 29, &p, end) ||
             lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-max-age:",
                                         (const unsigned char *)"600", 3, &p, end)))
            return -1;
    }
    if (r->retry_after) {
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_RETRY_AFTER, (const unsigned char *)ra,
                                         (int)strlen(ra), &p, end))
            return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (r->outlen) {
        uint8_t *body = malloc(LWS_PRE + r->outlen);
        if (!body)
            return -1;
        memcpy(body + LWS_PRE, r->out, r->outlen);
        int w = lws_write(wsi, body + LWS_PRE, r->outlen, LWS_WRITE_HTTP_FINAL);
        free(body);
        if (w != (int)r->outlen)
            return -1;
    }
    /* Unread body bytes would be taken for the next request: close instead. */
    int close = r->rejected || (r->is_post && !r->body_done);
    if (r->delivering)
        r->wsi = NULL;        /* answered at the bound; the delivery report frees it */
    else
        request_free(r);
    ss->req = NULL;
    return close || lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct session *ss = user;
    server *s = lws_get_context(wsi) ? srv_of(wsi) : NULL;
    if (!ss)   /* lws closes connections that never got as far as a request without one */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(s, wsi, ss, in);
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
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (ss->req && ss->req->status && (!ss->req->delivering || ss->req->answered_early))
            return write_answer(wsi, ss);
        return 0;
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

static void reload_forms(server *s);

#define KAFKA_POLL_US 2000
#define FORM_RELOAD_S 1.0   /* how often the form files are looked at */

/* Serves Kafka's delivery reports on the lws thread every 2 ms: lws_service only
 * returns for its own events, so the reports are fetched from inside its loop. */
static void poll_kafka(lws_sorted_usec_list_t *sul)
{
    server *s = (server *)sul;
    rd_kafka_poll(s->rk, 0);
    if (now_s() >= s->next_reload_check) {
        reload_forms(s);
        s->next_reload_check = now_s() + FORM_RELOAD_S;
    }
    /* The delivery bound is ours to keep: answer 503 for what Kafka has not confirmed in
     * time (a later confirmation is harmless: a retry with the same Idempotency-Key is
     * stored once). */
    double limit = now_s() - s->cfg->delivery_timeout_ms / 1000.0;
    while (s->oldest && s->oldest->started < limit) {
        request *r = s->oldest;
        list_remove(s, r);
        if (r->wsi) {
            r->answered_early = 1;
            r->retry_after = 1;
            respond_error(s, r, 503, "Kafka did not confirm the submission in time; retry later", NULL);
        }
    }
    lws_sul_schedule(s->ctx, 0, &s->poll_timer, poll_kafka, KAFKA_POLL_US);
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(struct session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Wakes the service thread when shutdown is asked, and checks every two seconds that
 * Kafka answers (for /readyz). */
static void *helper(void *arg)
{
    server *s = arg;
    double next_check = 0;
    while (!atomic_load(&s->stop_helper)) {
        struct pollfd p = {.fd = fp_shutdown_fd(), .events = POLLIN};
        if (poll(&p, 1, 200) > 0)
            lws_cancel_service(s->ctx);
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

/* Loads and compiles the form in path into e (e is left untouched on failure). */
static int load_entry(form_entry *e, const char *path, fp_error *err)
{
    form_entry n = {0};
    stat(path, &n.seen);   /* before reading: a change during the read is seen next time */
    if (!(n.form = fp_form_load(path, err)))
        return err->code;
    if (!(n.schema = fp_schema_compile(n.form->json, err))) {
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        fp_form_free(n.form);
        return fp_error_set(err, FP_EINVAL, "%s: %s", path, msg);
    }
    fp_form_default_topic(n.form, n.topic, sizeof n.topic);
    n.partition_key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(n.form->json, "partitionKey"));
    *e = n;
    return 0;
}

static void free_entry(form_entry *e)
{
    fp_schema_free(e->schema);
    fp_form_free(e->form);
}

static int load_forms(server *s, fp_error *err)
{
    const fp_strlist *files = s->cfg->forms;
    if (!(s->forms = calloc(files->n ? files->n : 1, sizeof *s->forms)))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    for (size_t i = 0; i < files->n; i++) {
        form_entry *e = &s->forms[s->nforms];
        int rc = load_entry(e, files->items[i], err);
        if (rc < 0)
            return rc;
        s->nforms++;
        if (find_form(s, e->form->name) != e)
            return fp_error_set(err, FP_EINVAL, "%s: a form named '%s' is already loaded", files->items[i], e->form->name);
        fp_log_info("form loaded", FP_LSTR("form", e->form->name), FP_LSTR("topic", e->topic),
                    FP_LINT("generation", e->form->generation));
    }
    return 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Picks up changed form files (a ConfigMap volume swaps its files in place). A new
 * version that does not load, or names another form, is refused and the loaded one
 * kept. Runs on the lws thread between requests: no request is mid-validation, and
 * requests waiting for Kafka only read the entry's name. */
static void reload_forms(server *s)
{
    for (size_t i = 0; i < s->nforms; i++) {
        form_entry *e = &s->forms[i];
        const char *path = s->cfg->forms->items[i];
        struct stat now;
        if (stat(path, &now) != 0 || same_file(&now, &e->seen))
            continue;
        form_entry n;
        fp_error err = {0};
        if (load_entry(&n, path, &err) == 0 && strcmp(n.form->name, e->form->name) != 0) {
            fp_error_set(&err, FP_EINVAL, "%s: names form '%s', not '%s'", path, n.form->name, e->form->name);
            free_entry(&n);
            n.form = NULL;
        }
        if (err.code) {
            e->seen = now;   /* complain once per change */
            fp_log_warn("form file changed but cannot be used; keeping the loaded version",
                        FP_LSTR("form", e->form->name), FP_LINT("generation", e->form->generation),
                        FP_LSTR("error", err.msg));
            continue;
        }
        free_entry(e);
        *e = n;
        fp_log_info("form reloaded", FP_LSTR("form", e->form->name), FP_LSTR("topic", e->topic),
                    FP_LINT("generation", e->form->generation));
    }
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
    if (!s->m_requests || !s->m_invalid || !d || !inf || !q)
        return err->code;
    s->m_delivery = fp_metric_series(d, NULL);
    s->m_inflight = fp_metric_series(inf, NULL);
    s->m_queue = fp_metric_series(q, NULL);
    return 0;
}

int fp_ingest_run(const fp_ingest_config *cfg, fp_metrics *metrics, fp_error *err)
{
    server s = {.cfg = cfg};
    char why[512], timeout[24];
    int rc;
    s.metrics = metrics;
    if ((rc = load_forms(&s, err)) || (rc = register_metrics(&s, metrics, err)))
        goto out;
    if (!(s.limiter = fp_ratelimit_new(cfg->rate_limit, cfg->rate_burst))) {
        rc = fp_error_set(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(timeout, sizeof timeout, "%ld", cfg->delivery_timeout_ms);
    static const char *const defaults[] = {"linger.ms", "2", NULL};
    rd_kafka_conf_t *kc = fp_kafka_conf_new(cfg->kafka_bootstrap, defaults, cfg->kafka_config_file,
                                            cfg->kafka_properties, err);
    if (!kc || fp_kafka_conf_set(kc, "enable.idempotence", "true", err) ||
        fp_kafka_conf_set(kc, "acks", "all", err) || fp_kafka_conf_set(kc, "message.timeout.ms", timeout, err)) {
        if (kc)
            rd_kafka_conf_destroy(kc);
        rc = err->code;
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_conf_set_opaque(kc, &s);
    if (!(s.rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof why))) {
        rc = fp_error_set(err, FP_EINVAL, "kafka producer: %s", why);
        goto out;
    }
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.iface = cfg->bind;
    info.protocols = protocols;
    info.user = &s;
    info.fd_limit_per_thread = (unsigned)cfg->max_connections;
    info.timeout_secs = (unsigned)cfg->idle_timeout_s;
    info.keepalive_timeout = cfg->idle_timeout_s;
    info.max_http_header_data = 4096;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (!(s.ctx = lws_create_context(&info))) {
        rc = fp_error_set(err, FP_EIO, "cannot listen on %s:%d", cfg->bind, cfg->port);
        goto out;
    }
    lws_sul_schedule(s.ctx, 0, &s.poll_timer, poll_kafka, KAFKA_POLL_US);
    pthread_create(&s.helper, NULL, helper, &s);
    fp_log_info("ingest listening", FP_LSTR("bind", cfg->bind), FP_LINT("port", cfg->port),
                FP_LINT("forms", (long long)s.nforms));
    while (!fp_shutdown_requested())
        lws_service(s.ctx, 0);
    /* Finish what Kafka still owes an answer for, within the grace period. */
    double deadline = now_s() + cfg->shutdown_grace_ms / 1000.0;
    while (s.inflight > 0 && now_s() < deadline)
        lws_service(s.ctx, 0);
    rd_kafka_flush(s.rk, (int)(deadline > now_s() ? (deadline - now_s()) * 1000 : 0));
    fp_log_info("ingest stopped", FP_LINT("unanswered", s.inflight));
    atomic_store(&s.stop_helper, 1);
    pthread_join(s.helper, NULL);
    rc = 0;
out:
    if (s.ctx)
        lws_context_destroy(s.ctx);
    if (s.rk)
        rd_kafka_destroy(s.rk);
    fp_ratelimit_free(s.limiter);
    for (size_t i = 0; i < s.nforms; i++) {
        free_entry(&s.forms[i]);
    }
    free(s.forms);
    return rc;
}
