/* http.c — the requests of formpipe-ingest (see ingest.h for the behaviour): routing,
 * body limits, validation, the produce, the answers (JSON, or HTML for a browser), and
 * writing them (head and body in one write). Runs on the service thread that owns the
 * connection; the answer to a submission waits for Kafka's report (fp_http_delivered). */
#include "ingest_impl.h"
#include "body.h"
#include "event.h"
#include "form.h"
#include "kafka.h"
#include "log.h"
#include "page.h"
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The oldest of w's unanswered submissions, or NULL. */
static request *oldest_unanswered(worker *w)
{
    return w->unanswered.oldest ? FP_FIFO_ENTRY(w->unanswered.oldest, request, unanswered) : NULL;
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

/* 413: the body is over --max-body-bytes (said by Content-Length, or counted). */
static void respond_too_large(server *s, request *r)
{
    char msg[96];
    snprintf(msg, sizeof msg, "the body is larger than %ld bytes", s->cfg->max_body_bytes);
    respond_error(s, r, 413, msg, NULL);
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

void fp_http_delivered(worker *w, request *r)
{
    server *s = w->s;
    r->delivering = 0;
    fp_fifo_remove(&w->unanswered, &r->unanswered);
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
    r->started = fp_ingest_now();
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
    fp_fifo_push(&r->w->unanswered, &r->unanswered);
    r->w->inflight++;
    fp_series_set(s->m_inflight, atomic_fetch_add(&s->inflight, 1) + 1);
}

/* Routes GET /healthz, /readyz, /metrics. Returns 1 when it answered. */
static int ops_route(server *s, request *r, const char *path)
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
        fp_series_set(s->m_queue, rd_kafka_outq_len(s->rk));   /* read when rendered */
        fp_metrics_render(s->metrics, &b);
        respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", fp_buf_take(&b));
    } else {
        fp_buf_free(&b);
        return 0;
    }
    return 1;
}

/* Copies header t into out; 0 when the request has none (out is then ""). */
static int header(struct lws *wsi, enum lws_token_indexes t, char *out, int outsz)
{
    out[0] = '\0';
    return lws_hdr_total_length(wsi, t) > 0 && lws_hdr_copy(wsi, out, outsz, t) > 0;
}

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

/* The client's address: the peer, or for a trusted proxy the last X-Forwarded-For entry. */
static void client_of(server *s, struct lws *wsi, char *out, size_t outsz)
{
    char xff[512];
    conn *c = lws_get_opaque_user_data(wsi);   /* every client connection has one */
    char uncached[sizeof c->peer] = "";
    char *peer = c ? c->peer : uncached;
    if (!peer[0])
        lws_get_peer_simple(wsi, peer, sizeof uncached);
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
    if (is_get && ops_route(s, r, uri))
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
    if (!fp_ratelimit_take(s->limiter, client, fp_ingest_now(), &r->retry_after)) {
        respond_error(s, r, 429, "too many submissions from this address; retry later", NULL);
        return 0;
    }
    if (!header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, clen, sizeof clen)) {
        respond_error(s, r, 411, "a Content-Length header is required", NULL);
        return 0;
    }
    long long len = atoll(clen);
    if (len > s->cfg->max_body_bytes) {
        respond_too_large(s, r);
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

/* Takes wsi's connection off w's idle list: a request has started, or it is gone. */
static void not_idle(worker *w, struct lws *wsi)
{
    conn *c = lws_get_opaque_user_data(wsi);   /* every client connection has one */
    if (c)
        fp_fifo_remove(&w->idle, &c->idle);
}

void fp_http_close_idle(worker *w, double before)
{
    while (w->idle.oldest) {
        conn *c = FP_FIFO_ENTRY(w->idle.oldest, conn, idle);
        if (c->idle_since >= before)
            break;
        fp_fifo_remove(&w->idle, &c->idle);
        /* closed by lws at its next service, as its own keep-alive timeout would */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, LWS_TO_KILL_ASYNC);
    }
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
    if (close || lws_http_transaction_completed(wsi))
        return -1;
    /* lws has just put its keep-alive timeout into its sorted list: ours instead */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    conn *c = lws_get_opaque_user_data(wsi);
    if (c) {
        c->idle_since = fp_ingest_now();
        fp_fifo_push(&worker_of(wsi)->idle, &c->idle);
    }
    return 0;
}

/* Writes the request's answer if it has one that may go out now. */
static int send_ready(struct lws *wsi, struct session *ss)
{
    if (ss->req && ss->req->status && (!ss->req->delivering || ss->req->answered_early))
        return write_answer(wsi, ss);
    return 0;
}

int fp_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct session *ss = user;
    worker *w = lws_get_context(wsi) ? worker_of(wsi) : NULL;
    server *s = w ? w->s : NULL;
    switch (reason) {   /* events of the thread and of every connection, before any request */
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:   /* woken by on_delivery: Kafka reported */
        if (w)
            fp_ingest_read_mail(w);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (w && lws_get_opaque_user_data(wsi)) {   /* a client connection (conn) */
            conn *c = lws_get_opaque_user_data(wsi);
            not_idle(w, wsi);
            lws_set_opaque_user_data(wsi, NULL);
            fp_ingest_conn_gone(w, c);
        }
        break;
    default:
        break;
    }
    if (!ss)   /* lws closes connections that never got as far as a request without one */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        not_idle(w, wsi);
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
                respond_too_large(s, ss->req);
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

void fp_http_expire(worker *w, double before)
{
    /* A later confirmation is harmless: a retry with the same Idempotency-Key is stored once. */
    for (request *r; (r = oldest_unanswered(w)) && r->started < before;) {
        fp_fifo_remove(&w->unanswered, &r->unanswered);
        if (r->wsi) {
            r->answered_early = 1;
            r->retry_after = 1;
            respond_error(w->s, r, 503, "Kafka did not confirm the submission in time; retry later", NULL);
            wake(r);
        }
    }
}

void fp_http_drop(worker *w, request *r)
{
    fp_fifo_remove(&w->unanswered, &r->unanswered);
    request_free(r);
}
