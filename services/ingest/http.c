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
#include "ids.h"
#include "netaddr.h"
#include "page.h"
#include "token.h"
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

/* 1 when allowed (an origin or "*") lets origin post. */
static int origin_matches(const char *allowed, const char *origin)
{
    return !strcmp(allowed, "*") || !strcmp(allowed, origin);
}

/* Keeps the request's Origin when the configuration allows it: the form's own
 * "shared.ingest.allowedOrigins" when it has them (a shared ingest serves pipelines
 * with different sites), else --allowed-origin. */
static void note_origin(server *s, struct lws *wsi, request *r)
{
    char origin[256];
    if (!header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin))
        return;
    int ok = 0;
    if (r->form && r->form->allowed_origins) {
        const cJSON *o;
        cJSON_ArrayForEach(o, r->form->allowed_origins)
            ok |= origin_matches(o->valuestring, origin);
    } else {
        const fp_strlist *allowed = s->cfg->allowed_origins;
        for (size_t i = 0; allowed && i < allowed->n; i++)
            ok |= origin_matches(allowed->items[i], origin);
    }
    if (ok)
        snprintf(r->origin, sizeof r->origin, "%s", origin);
}

/* The body limit of r: its form's "shared.ingest.maxBodyBytes", bounded above by
 * --max-body-bytes, or that flag alone. */
static long body_limit(const server *s, const request *r)
{
    long max = s->cfg->max_body_bytes;
    return r->form && r->form->max_body_bytes && r->form->max_body_bytes < max ? r->form->max_body_bytes : max;
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
    fp_fifo_remove(&r->w->reading, &r->reading);
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

/* 413: the body is over its limit (body_limit; said by Content-Length, or counted). */
static void respond_too_large(server *s, request *r)
{
    char msg[96];
    snprintf(msg, sizeof msg, "the body is larger than %ld bytes", body_limit(s, r));
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

/* The honeypot: a filled-in honeypot field is a bot's. Its submission is answered like
 * any accepted one (202 with an id, so the bot learns nothing) but never produced, and
 * counted (formpipe_ingest_honeypot_total). The field itself never reaches validation.
 * Returns 1 when it answered. */
static int caught_in_honeypot(server *s, request *r, cJSON *in)
{
    const char *hp = r->form->honeypot;
    cJSON *v = hp ? cJSON_DetachItemFromObjectCaseSensitive(in, hp) : NULL;
    int caught = v && !(cJSON_IsString(v) && !v->valuestring[0]) && !cJSON_IsNull(v);
    cJSON_Delete(v);
    if (!caught)
        return 0;
    fp_series_inc(fp_metric_series(s->m_honeypot, (const char *[]){r->form->form->name}));
    if (fp_id_ulid(fp_clock_wall_ms(), r->id))
        snprintf(r->id, sizeof r->id, "00000000000000000000000000");
    respond_accepted(s, r);
    return 1;
}

/* The submission token of a form that wants one: from the Formpipe-Token header or the
 * FP_TOKEN_FIELD field (taken out of the values either way). 403 when it is missing,
 * forged or expired. Returns 1 when it answered. */
static int refuse_without_token(server *s, struct lws *wsi, request *r, cJSON *in)
{
    char token[FP_TOKEN_MAX] = "";
    cJSON *field = cJSON_DetachItemFromObjectCaseSensitive(in, FP_TOKEN_FIELD);
    if (cJSON_IsString(field))
        snprintf(token, sizeof token, "%s", field->valuestring);
    cJSON_Delete(field);
    if (!r->form->token_required)
        return 0;
    if (!token[0] && lws_hdr_custom_length(wsi, "formpipe-token:", 15) < (int)sizeof token)
        lws_hdr_custom_copy(wsi, token, sizeof token, "formpipe-token:", 15);
    const fp_form *f = r->form->form;
    int rc = token[0] ? fp_token_check(&s->token_key, f->ns, f->name, token, fp_clock_wall_ms() / 1000) : FP_EINVAL;
    if (!rc)
        return 0;
    respond_error(s, r, 403, rc == FP_ELIMIT ? "the form's submission token has expired; reload the form and send it again"
                                             : "a valid submission token is required; reload the form and send it again", NULL);
    return 1;
}

/* Parses the completed body and validates it against the form: the clean values (the
 * caller deletes them), or NULL with the answer set (400, 422; 202 for the honeypot;
 * 403 without a token the form wants). */
static cJSON *validate(server *s, struct lws *wsi, request *r, int form_post)
{
    fp_error err = {0};
    fp_violations v;
    cJSON *clean = NULL;
    cJSON *in = form_post ? fp_body_form(r->in.data ? r->in.data : "", r->in.len, r->form->max_pairs, &err)
                          : fp_body_json(r->in.data ? r->in.data : "", r->in.len, &err);
    if (!in) {
        respond_error(s, r, 400, err.msg, NULL);
        return NULL;
    }
    if (caught_in_honeypot(s, r, in) || refuse_without_token(s, wsi, r, in)) {
        cJSON_Delete(in);
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

/* The producer's handle of the entry's topic, made once per entry: producing by handle
 * skips librdkafka's lookup of the topic by name, which takes the handle's write lock
 * (the lock every service thread would queue on) and compares the name with every
 * known topic (one per form). NULL when librdkafka cannot make it. */
static rd_kafka_topic_t *entry_topic(server *s, fp_form_entry *e)
{
    rd_kafka_topic_t *have = atomic_load(&e->rkt);
    if (have)
        return have;
    rd_kafka_topic_t *made = rd_kafka_topic_new(s->rk, e->topic, NULL);
    if (made && !atomic_compare_exchange_strong(&e->rkt, &have, made)) {
        rd_kafka_topic_destroy(made);   /* another thread was first: use its handle */
        return have;
    }
    return made;
}

/* Hands event (taken) to Kafka under key. On success Kafka's delivery holds r until its
 * report; otherwise the answer is 503. */
static void produce(server *s, request *r, const char *key, char *event)
{
    r->started = fp_ingest_now();
    rd_kafka_topic_t *rkt = entry_topic(s, r->form);
    rd_kafka_resp_err_t e = !rkt ? rd_kafka_last_error() : rd_kafka_producev(
        s->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, strlen(key)),
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
static void submit(server *s, struct lws *wsi, request *r, const char *ctype)
{
    cJSON *clean = validate(s, wsi, r, is_form_post(ctype));
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

/* The client's rate-limit key: the peer, or for a trusted proxy the client its
 * X-Forwarded-For names (netaddr.h); an IPv6 client by its /64. */
static void client_of(server *s, struct lws *wsi, char *out, size_t outsz)
{
    char xff[1024];
    conn *c = lws_get_opaque_user_data(wsi);   /* every client connection has one */
    char uncached[sizeof c->peer] = "";
    char *peer = c ? c->peer : uncached;
    if (!peer[0])
        lws_get_peer_simple(wsi, peer, sizeof uncached);
    int has_xff = lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR) < (int)sizeof xff &&
                  header(wsi, WSI_TOKEN_X_FORWARDED_FOR, xff, sizeof xff);
    fp_netaddr_client(&s->trusted, peer, has_xff ? xff : NULL, out, outsz);
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
    char token[FP_TOKEN_MAX];
    fp_page_extras x = {.honeypot = r->form->honeypot};
    if (r->form->token_required) {
        fp_token_make(&s->token_key, r->form->form->ns, r->form->form->name, fp_clock_wall_ms() / 1000,
                      s->cfg->token_ttl_s, token);
        x.token = token;
    }
    char *page = fp_page_render(r->form->form->json, &x, &err);
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
    char client[FP_NETADDR_KEY_MAX];
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

/* The Content-Length header's value: -1 when absent, -2 when it is not a plain
 * decimal number (a sign, spaces inside, a list, too many digits). */
static long long content_length(struct lws *wsi)
{
    char clen[32];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n <= 0)
        return -1;
    if (n >= 19 || !header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, clen, sizeof clen))
        return -2;
    long long len = 0;
    for (const char *p = clen; *p; p++) {
        if (*p < '0' || *p > '9')
            return -2;
        len = len * 10 + (*p - '0');
    }
    return len;
}

/* The checks on a POST's head, in order: rate limit (429), Transfer-Encoding (400:
 * with a Content-Length it is a smuggling attempt, alone a body this server does not
 * take), Content-Length (411, 400 when not a number, 413), Content-Type (415),
 * Idempotency-Key (400), an empty body (400). When none answers, the body follows
 * (on_body_done) within --request-timeout. */
static void check_post_head(server *s, struct lws *wsi, request *r)
{
    char ctype[128];
    if (refuse_over_rate(s, wsi, r))
        return;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        respond_error(s, r, 400, "Transfer-Encoding is not accepted; send the body with a Content-Length", NULL);
        return;
    }
    long long len = content_length(wsi);
    if (len == -1) {
        respond_error(s, r, 411, "a Content-Length header is required", NULL);
        return;
    }
    if (len < 0) {
        respond_error(s, r, 400, "Content-Length must be a non-negative decimal number", NULL);
        return;
    }
    if (len > body_limit(s, r)) {
        respond_too_large(s, r);
        return;
    }
    fp_buf_init(&r->in, (size_t)body_limit(s, r));   /* nothing read yet: the form's own limit */
    header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, ctype, sizeof ctype);
    if (!is_json(ctype) && !is_form_post(ctype)) {
        respond_error(s, r, 415, "send application/json or application/x-www-form-urlencoded", NULL);
        return;
    }
    if (!read_idempotency_key(wsi, r)) {
        respond_error(s, r, 400, "Idempotency-Key is longer than 255 characters", NULL);
        return;
    }
    if (len == 0) {
        respond_error(s, r, 400, "the body is empty", NULL);
        return;
    }
    r->head_at = fp_ingest_now();
    fp_fifo_push(&r->w->reading, &r->reading);
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
    if (!(r->is_get && answer_schema(s, r, uri)) && find_form(s, r, uri))
        route_form(s, wsi, r);
    note_origin(s, wsi, r);   /* the form's origins, if found; written with the answer */
    return 0;
}

/* The whole body has arrived: 413 for one over the limit, else it is submitted (unless
 * its head was answered already). */
static void on_body_done(server *s, struct lws *wsi, request *r)
{
    char ctype[128];
    r->body_done = 1;
    fp_fifo_remove(&r->w->reading, &r->reading);
    if (r->status)
        return;
    if (r->rejected) {
        respond_too_large(s, r);
        return;
    }
    header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, ctype, sizeof ctype);
    submit(s, wsi, r, ctype);
}

#define HEAD_MAX 1536   /* room for the status line and our headers */

/* The reason phrase of every status this server answers with (RFC 9110). */
static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* lws writes the status line without a reason phrase for most codes ("HTTP/1.1 202 "):
 * rewrites the first line of the head at start (up to *p, room until end). */
static int fix_status_line(const request *r, uint8_t *start, uint8_t **p, uint8_t *end)
{
    char line[64];
    uint8_t *eol = memchr(start, '\n', (size_t)(*p - start));
    if (!eol)
        return -1;
    eol++;
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", r->status, reason(r->status));
    size_t rest = (size_t)(*p - eol);
    if (start + n + rest > end)
        return -1;
    memmove(start + n, eol, rest);
    memcpy(start, line, (size_t)n);
    *p = start + n + rest;
    return 0;
}

/* Adds header name (with its colon) = value. Nonzero when it does not fit. */
static int add(struct lws *wsi, const char *name, const char *value, uint8_t **p, uint8_t *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)value,
                                       (int)strlen(value), p, end);
}

/* Appends the answer's headers at *p (before end). Nonzero when they do not fit. */
static int add_headers(struct lws *wsi, const request *r, uint8_t **p, uint8_t *end)
{
    char ra[16];
    uint8_t *start = *p;
    if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->ctype, (lws_filepos_t)r->outlen, p, end) ||
        fix_status_line(r, start, p, end) || add(wsi, "x-content-type-options:", "nosniff", p, end))
        return -1;
    if (r->ctype && !strncmp(r->ctype, "text/html", 9) &&
        (add(wsi, "content-security-policy:", fp_page_csp(), p, end) || add(wsi, "x-frame-options:", "DENY", p, end) ||
         add(wsi, "referrer-policy:", "no-referrer", p, end) || add(wsi, "cache-control:", "no-store", p, end)))
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

void fp_http_expire_slow(worker *w, double before)
{
    while (w->reading.oldest) {
        request *r = FP_FIFO_ENTRY(w->reading.oldest, request, reading);
        if (r->head_at >= before)
            break;
        fp_fifo_remove(&w->reading, &r->reading);
        fp_series_inc(w->s->m_timeouts);
        respond_error(w->s, r, 408, "the request took too long to arrive", NULL);
        wake(r);   /* the body is incomplete: the connection closes after the answer */
    }
}

void fp_http_drop(worker *w, request *r)
{
    fp_fifo_remove(&w->unanswered, &r->unanswered);
    req_release(r, HOLDER_DELIVERY);
}
