/* http.c — see http.h. The requests of formpipe-ingest (see ingest.h for the
 * behaviour): routing, body limits, validation, the produce, the answers (JSON, or HTML
 * for a browser), and writing them (head and body in one write). Runs on the service
 * thread that owns the connection; the answer to a submission waits for Kafka's report
 * (fp_http_delivered). */
#include "http.h"
#include "ingest_impl.h"
#include "body.h"
#include "clock.h"
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

/* A new request on wsi's connection, held by the connection. NULL when out of memory. */
static request *req_new(worker *w, struct lws *wsi)
{
    char accept[256];
    request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->w = w;
    r->wsi = wsi;
    r->holders = HOLDER_CONN;
    fp_buf_init(&r->in, (size_t)w->s->cfg->max_body_bytes);
    r->is_get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    r->is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    header(wsi, WSI_TOKEN_HTTP_ACCEPT, accept, sizeof accept);
    r->html = strstr(accept, "text/html") != NULL && !strstr(accept, "application/json");
    return r;
}

/* holder (one HOLDER_*) lets go of r, which is freed once no holder is left: the only
 * place a request is freed (the ownership rule at struct request, http.h). */
static void req_release(request *r, unsigned holder)
{
    r->holders &= ~holder;
    if (r->holders)
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

/* Asks for a writable callback to send r's answer, when its connection still holds it. */
static void wake(request *r)
{
    if (r->holders & HOLDER_CONN)
        lws_callback_on_writable(r->wsi);
}

/* Counts one answer of status to r's form (formpipe_ingest_requests_total). */
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

/* 202 {"id": ...}; a browser gets a confirmation page with the id. */
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

/* The answer Kafka's report decides: 202, or 503 when the delivery failed. */
static void answer_report(server *s, request *r)
{
    if (!r->dr_err) {
        respond_accepted(s, r);
        return;
    }
    fp_log_warn("delivery failed", FP_LSTR("form", r->form->form->name), FP_LSTR("error", rd_kafka_err2str(r->dr_err)));
    r->retry_after = 5;
    respond_error(s, r, 503, "the submission could not be stored right now; retry later", NULL);
}

void fp_http_delivered(worker *w, request *r)
{
    server *s = w->s;
    fp_fifo_remove(&w->unanswered, &r->unanswered);
    w->inflight--;
    fp_series_set(s->m_inflight, atomic_fetch_sub(&s->inflight, 1) - 1);
    if ((r->holders & HOLDER_CONN) && !r->status) {   /* not answered at the delivery bound */
        answer_report(s, r);
        wake(r);
    }
    req_release(r, HOLDER_DELIVERY);
}

/* The two content types a submission may have. */
static int is_json(const char *ctype) { return strncasecmp(ctype, "application/json", 16) == 0; }

static int is_form_post(const char *ctype)
{
    return strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0;
}

/* Parses the completed body and validates it against the form: the clean values (the
 * caller deletes them), or NULL with the answer set (400, 422). */
static cJSON *validate(server *s, request *r, int form_post)
{
    fp_error err = {0};
    fp_violations v;
    cJSON *clean = NULL;
    cJSON *in = form_post ? fp_body_form(r->in.data ? r->in.data : "", r->in.len, &err)
                          : fp_body_json(r->in.data ? r->in.data : "", r->in.len, &err);
    if (!in) {
        respond_error(s, r, 400, err.msg, NULL);
        return NULL;
    }
    int rc = fp_schema_validate(r->form->schema, in, form_post, &clean, &v);
    cJSON_Delete(in);
    if (!rc)
        return clean;
    for (size_t i = 0; i < v.n; i++)
        fp_series_inc(fp_metric_series(s->m_invalid, (const char *[]){r->form->form->name, v.items[i].rule}));
    respond_error(s, r, 422, "the submission does not match the form", &v);
    return NULL;
}

/* The Kafka key into key: the partitionKey field's value (per-key order), else the id.
 * A copy: clean is gone before the produce. */
static void partition_key(const request *r, const cJSON *clean, char *key, size_t keysz)
{
    const cJSON *kv = r->form->partition_key ? cJSON_GetObjectItemCaseSensitive(clean, r->form->partition_key) : NULL;
    if (cJSON_IsString(kv))
        snprintf(key, keysz, "%s", kv->valuestring);
    else if (cJSON_IsNumber(kv))
        snprintf(key, keysz, "%.17g", kv->valuedouble);
    else
        snprintf(key, keysz, "%s", r->id);
}

/* Hands event (taken) to Kafka under key. On success Kafka's delivery holds r until its
 * report; otherwise the answer is 503. */
static void produce(server *s, request *r, const char *key, char *event)
{
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
    r->holders |= HOLDER_DELIVERY;
    fp_fifo_push(&r->w->unanswered, &r->unanswered);
    r->w->inflight++;
    fp_series_set(s->m_inflight, atomic_fetch_add(&s->inflight, 1) + 1);
}

/* Validates the completed body and hands the event to Kafka, or sets the answer. */
static void submit(server *s, request *r, const char *ctype)
{
    cJSON *clean = validate(s, r, is_form_post(ctype));
    if (!clean)
        return;
    long long ms = fp_clock_wall_ms();
    const fp_form *f = r->form->form;
    if (r->has_idem)
        fp_id_derived(f->ns, f->name, r->idem, strlen(r->idem), r->id);
    else if (fp_id_ulid(ms, r->id)) {
        cJSON_Delete(clean);
        respond_error(s, r, 503, "no randomness available", NULL);
        return;
    }
    char key[512];
    partition_key(r, clean, key, sizeof key);
    char *event = fp_event_encode(r->id, f->ns, f->name, ms, f->generation, clean);
    cJSON_Delete(clean);
    if (!event) {
        respond_error(s, r, 503, "out of memory", NULL);
        return;
    }
    produce(s, r, key, event);
}

/* GET /healthz, /readyz, /metrics: the router every formpipe binary uses (admin.h).
 * Returns 1 when it answered. */
static int answer_admin(server *s, request *r, const char *path)
{
    fp_admin_answer a;
    if (!fp_admin_route(&s->admin, path, &a))
        return 0;
    respond(r, a.status, a.ctype, a.body);
    return 1;
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

/* GET /forms/<name>/schema: the form as a JSON Schema. Returns 1 when it answered. */
static int answer_schema(server *s, request *r, const char *uri)
{
    char fname[128];
    size_t n = strlen(uri);
    if (strncmp(uri, "/forms/", 7) != 0 || n <= 14 || strcmp(uri + n - 7, "/schema") != 0)
        return 0;
    snprintf(fname, sizeof fname, "%.*s", (int)(n - 14), uri + 7);
    if (!(r->form = fp_formset_get(s->forms, fname)))
        return 0;
    const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->form->form->json, "title"));
    cJSON *js = fp_schema_json_schema(r->form->schema, title);
    count(s, r, 200);
    respond(r, 200, "application/schema+json", js ? cJSON_PrintUnformatted(js) : NULL);
    cJSON_Delete(js);
    return 1;
}

/* Takes the form /forms/<name> names into r->form; otherwise answers 404. Returns 1 when
 * it found the form. */
static int find_form(server *s, request *r, const char *uri)
{
    if (strncmp(uri, "/forms/", 7) == 0 && (r->form = fp_formset_get(s->forms, uri + 7)))
        return 1;
    respond_error(s, r, 404, "no such form", NULL);
    return 0;
}

/* OPTIONS, a CORS preflight: 204; the allowed origin may POST with these headers. */
static void answer_preflight(server *s, request *r)
{
    r->preflight = 1;
    r->allow = "POST, OPTIONS";
    count(s, r, 204);
    respond(r, 204, "text/plain", NULL);
}

/* GET /forms/<name>: the form as an HTML page that posts back here. */
static void answer_page(server *s, request *r)
{
    fp_error err = {0};
    char *page = fp_page_render(r->form->form->json, &err);
    if (!page) {
        respond_error(s, r, 500, err.msg, NULL);
        return;
    }
    count(s, r, 200);
    respond(r, 200, "text/html; charset=utf-8", page);
}

/* The client's rate limit: answers 429 when it is spent. Returns 1 when it answered. */
static int refuse_over_rate(server *s, struct lws *wsi, request *r)
{
    char client[64];
    client_of(s, wsi, client, sizeof client);
    if (fp_ratelimit_take(s->limiter, client, fp_ingest_now(), &r->retry_after))
        return 0;
    respond_error(s, r, 429, "too many submissions from this address; retry later", NULL);
    return 1;
}

/* Keeps the Idempotency-Key header, if any. 0 when it is longer than r->idem holds. */
static int read_idempotency_key(struct lws *wsi, request *r)
{
    int n = lws_hdr_custom_length(wsi, "idempotency-key:", 16);
    if (n >= (int)sizeof r->idem)
        return 0;
    r->has_idem = n > 0 && lws_hdr_custom_copy(wsi, r->idem, sizeof r->idem, "idempotency-key:", 16) > 0;
    return 1;
}

/* The checks on a POST's head, in order: rate limit (429), Content-Length (411, 413),
 * Content-Type (415), Idempotency-Key (400), an empty body (400). When none answers, the
 * body follows (on_body_done). */
static void check_post_head(server *s, struct lws *wsi, request *r)
{
    char clen[32], ctype[128];
    if (refuse_over_rate(s, wsi, r))
        return;
    if (!header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, clen, sizeof clen)) {
        respond_error(s, r, 411, "a Content-Length header is required", NULL);
        return;
    }
    long long len = atoll(clen);
    if (len > s->cfg->max_body_bytes) {
        respond_too_large(s, r);
        return;
    }
    header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, ctype, sizeof ctype);
    if (!is_json(ctype) && !is_form_post(ctype)) {
        respond_error(s, r, 415, "send application/json or application/x-www-form-urlencoded", NULL);
        return;
    }
    if (!read_idempotency_key(wsi, r)) {
        respond_error(s, r, 400, "Idempotency-Key is longer than 255 characters", NULL);
        return;
    }
    if (len == 0)
        respond_error(s, r, 400, "the body is empty", NULL);
}

/* A request for a known form, by method: OPTIONS, GET, POST, else 405. */
static void route_form(server *s, struct lws *wsi, request *r)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0) {
        answer_preflight(s, r);
    } else if (r->is_get) {
        answer_page(s, r);
    } else if (r->is_post) {
        check_post_head(s, wsi, r);
    } else {
        r->allow = "GET, POST, OPTIONS";
        respond_error(s, r, 405, "use GET for the form page and POST to submit it", NULL);
    }
}

/* A request head has arrived: a new request for the session, routed. Every route sets
 * its answer here except a POST that passes its head checks, which waits for its body.
 * -1 when out of memory (the connection closes). */
static int on_http(worker *w, struct lws *wsi, struct session *ss, const char *uri)
{
    server *s = w->s;
    request *r = req_new(w, wsi);
    if (!r)
        return -1;
    ss->req = r;
    if (r->is_get && answer_admin(s, r, uri))
        return 0;
    note_origin(s, wsi, r);
    if (r->is_get && answer_schema(s, r, uri))
        return 0;
    if (find_form(s, r, uri))
        route_form(s, wsi, r);
    return 0;
}

/* The whole body has arrived: 413 for one over the limit, else it is submitted (unless
 * its head was answered already). */
static void on_body_done(server *s, struct lws *wsi, request *r)
{
    char ctype[128];
    r->body_done = 1;
    if (r->status)
        return;
    if (r->rejected) {
        respond_too_large(s, r);
        return;
    }
    header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, ctype, sizeof ctype);
    submit(s, r, ctype);
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

/* Writes r's answer, head and body in one write (one TCP segment for a small answer;
 * HTTP/1.1 only, which is all this server speaks). Nonzero when it failed. */
static int write_out(struct lws *wsi, const request *r)
{
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
    return failed;
}

/* An answered keep-alive connection waits for its next request on its worker's idle
 * FIFO instead of in lws's timeout list (lws has just put its keep-alive timeout there). */
static void wait_idle(struct lws *wsi)
{
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    conn *c = lws_get_opaque_user_data(wsi);
    if (c) {
        c->idle_since = fp_ingest_now();
        fp_fifo_push(&worker_of(wsi)->idle, &c->idle);
    }
}

/* Sends the session's answer; the connection lets go of its request. Returns -1 to close. */
static int write_answer(struct lws *wsi, struct session *ss)
{
    request *r = ss->req;
    if (write_out(wsi, r))
        return -1;
    /* Unread body bytes would be taken for the next request: close instead. */
    int close = r->rejected || (r->is_post && !r->body_done);
    ss->req = NULL;
    req_release(r, HOLDER_CONN);
    if (close || lws_http_transaction_completed(wsi))
        return -1;
    wait_idle(wsi);
    return 0;
}

/* Writes the session's answer once it has one. Returns -1 to close. */
static int send_ready(struct lws *wsi, struct session *ss)
{
    return ss->req && ss->req->status ? write_answer(wsi, ss) : 0;
}

/* The connection closes: it lets go of its request, if any. */
static void on_closed(struct session *ss)
{
    request *r = ss->req;
    ss->req = NULL;
    if (r)
        req_release(r, HOLDER_CONN);
}

/* A connection is destroyed: its conn, if it is a client connection, goes back. */
static void on_destroy(worker *w, struct lws *wsi)
{
    conn *c = lws_get_opaque_user_data(wsi);
    if (!c)
        return;
    not_idle(w, wsi);
    lws_set_opaque_user_data(wsi, NULL);
    fp_ingest_conn_gone(w, c);
}

int fp_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct session *ss = user;
    worker *w = lws_get_context(wsi) ? worker_of(wsi) : NULL;
    switch (reason) {   /* events of the thread and of every connection, before any request */
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:   /* woken by on_delivery: Kafka reported */
        if (w)
            fp_ingest_read_mail(w);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (w)
            on_destroy(w, wsi);
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
            on_body_done(w->s, wsi, ss->req);
        return send_ready(wsi, ss);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return send_ready(wsi, ss);
    case LWS_CALLBACK_CLOSED_HTTP:
        on_closed(ss);
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
        if (r->holders & HOLDER_CONN) {
            r->retry_after = 1;
            respond_error(w->s, r, 503, "Kafka did not confirm the submission in time; retry later", NULL);
            wake(r);
        }
    }
}

void fp_http_drop(worker *w, request *r)
{
    fp_fifo_remove(&w->unanswered, &r->unanswered);
    req_release(r, HOLDER_DELIVERY);
}
