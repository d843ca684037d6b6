/* email.c — see email.h. */
#include "email.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "buf.h"
#include "clock.h"
#include "event.h"
#include "log.h"
#include "mailmsg.h"
#include "mailtmpl.h"
#include "rowstore.h"
#include "transfers.h"

#define MAX_MAIL_BYTES (8 * 1024 * 1024)

enum { CLASS_2XX, CLASS_4XX, CLASS_5XX, CLASS_ERROR, NCLASSES };
enum { SKIP_NO_ADDRESS, SKIP_ALREADY_SENT, NSKIPS };

/* One attempt. It is on the transfers' list from start until poll reports it; a
 * waiting one is also on the send queue (FIFO) until its turn. */
typedef struct attempt {
    fp_transfer t;                 /* first: transfers.h hands this back */
    struct attempt *qnext;         /* the send queue */
    struct curl_slist *rcpt;
    char to[256];
    fp_buf msg;                    /* the whole message */
    size_t msg_off;                /* bytes handed to libcurl */
    char key[512];                 /* the sent-record */
} attempt;

typedef struct email {
    fp_task_kind kind;             /* first: the kind and this are one allocation */
    fp_transfers ts;               /* the attempts and the multi handle */
    attempt *qhead, *qtail;        /* the send queue */
    char *url, *safe_url, *username, *password, *ca_file, *from, *to_field;
    char from_addr[256];
    char *ns, *pipeline, *task;
    fp_mailtmpl *subject, *text, *html;
    int paced;                     /* sends take from the task's budget (ratePerSecond) */
    fp_budget budget;              /* shared by every replica of the task, in Redis */
    long timeout_ms;
    int max_connections, min_replicas_ack;
    long sent_ttl_s;
    fp_redis *redis;
    fp_series *replies[NCLASSES], *skipped[NSKIPS], *record_errors;
} email;

int fp_email_sent_key(char *out, size_t outsz, const char *ns, const char *pipeline, const char *task, const char *id)
{
    char suffix[400];
    int n = snprintf(suffix, sizeof suffix, "sent:%s:%s", task, id);
    if (n < 0 || (size_t)n >= sizeof suffix)
        return FP_ELIMIT;
    return fp_rowstore_key(out, outsz, ns, pipeline, suffix) < 0 ? FP_ELIMIT : 0;
}

/* transfers.h free: an attempt's own parts. */
static void attempt_free(fp_transfer *t)
{
    attempt *a = (attempt *)t;
    curl_slist_free_all(a->rcpt);
    fp_buf_free(&a->msg);
    free(a);
}

/* Renders the mail of ev into a->msg, or decides a: DONE (no address) or REJECT. */
static int prepare(email *e, attempt *a, const fp_task_event *ev)
{
    fp_event pev = {0};
    fp_error err = {0};
    fp_buf to, subject, text, html;
    int rc = 0;
    fp_buf_init(&to, sizeof a->to - 1);
    fp_buf_init(&subject, 64 * 1024);
    fp_buf_init(&text, MAX_MAIL_BYTES / 3);
    fp_buf_init(&html, MAX_MAIL_BYTES / 3);
    fp_buf_init(&a->msg, MAX_MAIL_BYTES);
    if (fp_event_parse(ev->value, ev->value_len, &pev, &err) < 0) {
        if (err.code == FP_ENOMEM)
            goto enomem;
        fp_transfers_decide(&a->t, FP_TASK_REJECT, "the event cannot be read: %.200s", err.msg);
        goto out;
    }
    if (!fp_mailmsg_id_ok(ev->id)) {
        fp_transfers_decide(&a->t, FP_TASK_REJECT, "%s", "the event id cannot be a Message-ID (letters, digits, -_. and the like, at most 128)");
        goto out;
    }
    if (fp_email_sent_key(a->key, sizeof a->key, e->ns, e->pipeline, e->task, ev->id) < 0) {
        fp_transfers_decide(&a->t, FP_TASK_REJECT, "%s", "the event id is too long for a sent-record key");
        goto out;
    }
    rc = fp_mailtmpl_value(&pev, e->to_field, &to);
    if (rc == 0 || (rc == 1 && to.len == 0)) {
        fp_series_inc(e->skipped[SKIP_NO_ADDRESS]);
        fp_transfers_decide(&a->t, FP_TASK_DONE, "%s", "");
        rc = 0;
        goto out;
    }
    if (rc < 0 || !fp_mailmsg_address_ok(to.data)) {
        fp_transfers_decide(&a->t, FP_TASK_REJECT, "field '%.64s' does not hold one plain e-mail address", e->to_field);
        rc = 0;
        goto out;
    }
    rc = 0;
    memcpy(a->to, to.data, to.len + 1);
    if (fp_mailtmpl_render(e->subject, &pev, FP_MAILTMPL_HEADER, &subject, &err) < 0 ||
        fp_mailtmpl_render(e->text, &pev, FP_MAILTMPL_TEXT, &text, &err) < 0 ||
        (e->html && fp_mailtmpl_render(e->html, &pev, FP_MAILTMPL_HTML, &html, &err) < 0)) {
        if (err.code == FP_ENOMEM)
            goto enomem;
        fp_transfers_decide(&a->t, FP_TASK_REJECT, "%s", err.msg);
        goto out;
    }
    char mid[FP_EVENT_MAX_ID + 300];
    snprintf(mid, sizeof mid, "%s@formpipe.%s.%s", ev->id, e->ns, e->pipeline);
    fp_mailmsg m = {.from = e->from, .to = a->to, .subject = subject.data ? subject.data : "",
                    .text = text.data ? text.data : "", .html = e->html ? (html.data ? html.data : "") : NULL,
                    .message_id = mid, .date_ms = fp_clock_wall_ms()};
    rc = fp_mailmsg_build(&m, &a->msg);
    if (rc == FP_ELIMIT) {
        fp_transfers_decide(&a->t, FP_TASK_REJECT, "%s", "the rendered mail is longer than 8 MiB");
        rc = 0;
    }
    if (rc == 0)
        a->t.state = a->t.state == FP_TRANSFER_DECIDED ? FP_TRANSFER_DECIDED : FP_TRANSFER_WAITING;
    goto out;
enomem:
    rc = FP_ENOMEM;
out:
    fp_event_clear(&pev);
    fp_buf_free(&to);
    fp_buf_free(&subject);
    fp_buf_free(&text);
    fp_buf_free(&html);
    return rc;
}

/* kind.h start: renders the mail now (an event that can never be sent is decided
 * here) and queues it for its turn; the sent-record lookup and the send happen in poll. */
static int em_start(void *self, const fp_task_event *ev)
{
    email *e = self;
    attempt *a = calloc(1, sizeof *a);
    if (!a)
        return FP_ENOMEM;
    a->t.ev = ev;
    a->t.state = FP_TRANSFER_WAITING;
    if (prepare(e, a, ev) < 0) {
        attempt_free(&a->t);
        return FP_ENOMEM;
    }
    if (a->t.state == FP_TRANSFER_WAITING) {
        if (e->qtail)
            e->qtail->qnext = a;
        else
            e->qhead = a;
        e->qtail = a;
    } else {
        fp_buf_free(&a->msg);
    }
    fp_transfers_track(&e->ts, &a->t);
    return 0;
}

/* libcurl reads the message from here. */
static size_t on_read(char *p, size_t size, size_t n, void *userdata)
{
    attempt *a = userdata;
    size_t left = a->msg.len - a->msg_off, k = size * n < left ? size * n : left;
    memcpy(p, a->msg.data + a->msg_off, k);
    a->msg_off += k;
    return k;
}

/* Looks up the sent-record: 1 when it exists, 0 when not, FP_EIO with *err. */
static int sent_before(email *e, const attempt *a, fp_error *err)
{
    const char *argv[] = {"EXISTS", a->key};
    redisReply *r = NULL;
    int rc = fp_redis_command(e->redis, &r, err, 2, argv, NULL);
    if (rc < 0)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        rc = fp_error_set(err, FP_EIO, "EXISTS answered %.100s", r->type == REDIS_REPLY_ERROR ? r->str : "no integer");
    else
        rc = r->integer > 0;
    freeReplyObject(r);
    return rc;
}

/* Writes the sent-record after a 250 (and WAITs for replicas); failures are counted
 * and logged: the mail is sent either way. */
static void record_sent(email *e, const attempt *a)
{
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%ld", e->sent_ttl_s);
    const char *argv[] = {"SET", a->key, "1", "EX", ttl};
    redisReply *r = NULL;
    fp_error err = {0};
    int rc = fp_redis_command(e->redis, &r, &err, 5, argv, NULL);
    if (rc == 0 && r->type == REDIS_REPLY_ERROR)
        rc = fp_error_set(&err, FP_EIO, "SET answered %.100s", r->str);
    if (r)
        freeReplyObject(r);
    long long acked = 0;
    if (rc == 0 && e->min_replicas_ack > 0)
        rc = fp_redis_wait(e->redis, e->min_replicas_ack, 1000, &acked, &err);
    if (rc < 0) {
        fp_series_inc(e->record_errors);
        fp_log_warn("sent-record not written: a redelivery of this event sends the mail again",
                    FP_LSTR("id", a->t.ev->id), FP_LSTR("error", err.msg));
    }
}

/* Takes a queued attempt to the server: DONE when its sent-record exists, RETRY
 * when Redis cannot tell, else its transfer joins the multi handle. */
static void begin_send(email *e, attempt *a)
{
    fp_error err = {0};
    int rc = sent_before(e, a, &err);
    if (rc < 0) {
        fp_transfers_decide(&a->t, FP_TASK_RETRY, "the sent-record store (Redis) cannot be read: %.180s", err.msg);
        return;
    }
    if (rc == 1) {
        fp_series_inc(e->skipped[SKIP_ALREADY_SENT]);
        fp_transfers_decide(&a->t, FP_TASK_DONE, "%s", "");
        return;
    }
    char rcpt[sizeof a->to + 2], from[sizeof e->from_addr + 2];
    snprintf(rcpt, sizeof rcpt, "<%s>", a->to);
    snprintf(from, sizeof from, "<%s>", e->from_addr);
    struct curl_slist *l = curl_slist_append(NULL, rcpt);
    CURL *h = curl_easy_init();
    a->rcpt = l;
    if (!l || !h ||
        curl_easy_setopt(h, CURLOPT_URL, e->url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_MAIL_FROM, from) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_MAIL_RCPT, l) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_READDATA, a) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)a->msg.len) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, e->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        (e->username && (curl_easy_setopt(h, CURLOPT_USERNAME, e->username) != CURLE_OK ||
                         curl_easy_setopt(h, CURLOPT_PASSWORD, e->password) != CURLE_OK)) ||
        (e->ca_file && curl_easy_setopt(h, CURLOPT_CAINFO, e->ca_file) != CURLE_OK)) {
        if (h)
            curl_easy_cleanup(h);
        fp_transfers_decide(&a->t, FP_TASK_RETRY, "%s", "out of memory starting an SMTP transfer");
        return;
    }
    fp_transfers_run(&e->ts, &a->t, h);   /* on failure a is decided RETRY */
}

/* transfers.h pump: starts queued sends while a connection is free and pacing allows;
 * the ms until the next send may start, or -1 when none waits for time. */
static long long pump(void *self)
{
    email *e = self;
    while (e->qhead && e->ts.running < e->max_connections) {
        attempt *a = e->qhead;
        long long wait = 0;
        fp_error err = {0};
        if (e->paced && fp_budget_take(&e->budget, &wait, &err) < 0)
            fp_transfers_decide(&a->t, FP_TASK_RETRY, "the send budget (Redis) cannot be read: %.180s", err.msg);
        else if (wait > 0)
            return wait;
        e->qhead = a->qnext;
        if (!e->qhead)
            e->qtail = NULL;
        a->qnext = NULL;
        if (a->t.state == FP_TRANSFER_WAITING)
            begin_send(e, a);
    }
    return -1;   /* nothing waits, or only for a connection: a finished transfer wakes poll */
}

/* The outcome of a finished transfer. */
static void outcome_of(void *self, fp_transfer *t, CURLcode res, fp_task_outcome *o)
{
    email *e = self;
    attempt *a = (attempt *)t;
    long code = 0;
    memset(o, 0, sizeof *o);
    curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &code);
    if (res == CURLE_OK) {
        fp_series_inc(e->replies[CLASS_2XX]);
        o->verdict = FP_TASK_DONE;
        record_sent(e, a);
        return;
    }
    int cls = code >= 500 && code <= 599 ? CLASS_5XX : code >= 400 && code <= 499 ? CLASS_4XX : CLASS_ERROR;
    fp_series_inc(e->replies[cls]);
    /* a refused login is the configuration's fault, not the mail's: retried like a 4xx */
    o->verdict = cls == CLASS_5XX && res != CURLE_LOGIN_DENIED ? FP_TASK_REJECT : FP_TASK_RETRY;
    if (cls == CLASS_ERROR)
        snprintf(o->detail, sizeof o->detail, "%s (%s)", curl_easy_strerror(res), e->safe_url);
    else
        snprintf(o->detail, sizeof o->detail, "SMTP %ld from %s (%s)", code, e->safe_url, curl_easy_strerror(res));
}

static const fp_transfers_ops ops = {.outcome = outcome_of, .free = attempt_free, .pump = pump};

/* kind.h poll: starts what pacing allows, drives the transfers until one attempt
 * finished or timeout_ms passed. */
static int em_poll(void *self, long timeout_ms, fp_task_report_fn *report, void *runner)
{
    email *e = self;
    return fp_transfers_poll(&e->ts, timeout_ms, report, runner);
}

static void em_free(void *self)
{
    email *e = self;
    if (!e)
        return;
    fp_transfers_cleanup(&e->ts);
    if (e->password) {
        OPENSSL_cleanse(e->password, strlen(e->password));
        free(e->password);
    }
    free(e->url);
    free(e->safe_url);
    free(e->username);
    free(e->ca_file);
    free(e->from);
    free(e->to_field);
    free(e->ns);
    free(e->pipeline);
    free(e->task);
    fp_mailtmpl_free(e->subject);
    fp_mailtmpl_free(e->text);
    fp_mailtmpl_free(e->html);
    fp_redis_free(e->redis);
    free(e);
    curl_global_cleanup();
}

/* Checks the URL (smtp or smtps, never echoed: it may hold credentials) and sets
 * e->url and e->safe_url (scheme, host and port only). */
static int set_url(email *e, const char *url, fp_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = FP_ENOMEM;
    if (!u)
        goto out;
    if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rc = fp_error_set(err, FP_EINVAL, "the SMTP URL is not an smtp:// or smtps:// URL with a host");
        goto out;
    }
    if (!(e->url = strdup(url)) || asprintf(&e->safe_url, "%s://%s:%s", scheme, host, port) < 0) {
        e->safe_url = NULL;
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    if (rc == FP_ENOMEM)
        fp_error_set(err, FP_ENOMEM, "out of memory");
    return rc;
}

/* Compiles one template into *out, naming it in the error. */
static int compile(const char *what, const char *src, fp_mailtmpl **out, fp_error *err)
{
    fp_error terr = {0};
    if (!(*out = fp_mailtmpl_compile(src, &terr)))
        return fp_error_set(err, terr.code, "the %s template: %s", what, terr.msg);
    return 0;
}

/* strdup of s, or of "" for NULL; 0 or FP_ENOMEM. */
static int dup(char **out, const char *s)
{
    return (*out = strdup(s ? s : "")) ? 0 : FP_ENOMEM;
}

fp_task_kind *fp_email_new(const fp_email_config *cfg, fp_metrics *m, fp_error *err)
{
    if (cfg->timeout_ms <= 0 || cfg->max_connections <= 0 || cfg->sent_ttl_s <= 0 || cfg->rate_per_second < 0) {
        fp_error_set(err, FP_EINVAL, "the email timeout, connection count and sent-record TTL must be positive");
        return NULL;
    }
    if (!cfg->to_field || !*cfg->to_field || !cfg->text || !cfg->ns || !*cfg->ns || !cfg->pipeline ||
        !*cfg->pipeline || !cfg->task || !*cfg->task || !cfg->redis) {
        fp_error_set(err, FP_EINVAL, "the email kind needs toField, text, the namespace, pipeline and task, and Redis");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fp_error_set(err, FP_ENOMEM, "libcurl cannot start");
        return NULL;
    }
    email *e = calloc(1, sizeof *e);
    if (!e) {
        curl_global_cleanup();
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    e->kind = (fp_task_kind){.name = "email", .self = e, .start = em_start, .poll = em_poll, .ready = NULL,
                             .free = em_free};
    e->timeout_ms = cfg->timeout_ms;
    e->max_connections = cfg->max_connections;
    e->min_replicas_ack = cfg->min_replicas_ack;
    e->sent_ttl_s = cfg->sent_ttl_s;
    if (set_url(e, cfg->url, err) < 0)
        goto fail;
    if (fp_mailmsg_from_address(cfg->from ? cfg->from : "", e->from_addr, sizeof e->from_addr, err) < 0)
        goto fail;
    if (compile("subject", cfg->subject ? cfg->subject : "", &e->subject, err) < 0 ||
        compile("text", cfg->text, &e->text, err) < 0 ||
        (cfg->html && *cfg->html && compile("html", cfg->html, &e->html, err) < 0))
        goto fail;
    for (const char *p = cfg->subject ? cfg->subject : ""; *p; p++)
        if ((unsigned char)*p < 0x20) {
            fp_error_set(err, FP_EINVAL, "the subject template holds a control character");
            goto fail;
        }
    if (dup(&e->from, cfg->from) < 0 || dup(&e->to_field, cfg->to_field) < 0 || dup(&e->ns, cfg->ns) < 0 ||
        dup(&e->pipeline, cfg->pipeline) < 0 || dup(&e->task, cfg->task) < 0 ||
        (cfg->username && *cfg->username &&
         (dup(&e->username, cfg->username) < 0 || dup(&e->password, cfg->password) < 0)) ||
        (cfg->ca_file && *cfg->ca_file && dup(&e->ca_file, cfg->ca_file) < 0))
        goto enomem;
    if (!(e->redis = fp_redis_new(cfg->redis, err)))
        goto fail;
    if (cfg->rate_per_second > 0) {
        char key[512], suffix[300];
        snprintf(suffix, sizeof suffix, "rate:%s", cfg->task);
        if (fp_rowstore_key(key, sizeof key, cfg->ns, cfg->pipeline, suffix) < 0) {
            fp_error_set(err, FP_EINVAL, "the task's send-budget key is too long");
            goto fail;
        }
        if (fp_budget_init(&e->budget, e->redis, key, cfg->rate_per_second, 1000, 1, err) < 0)
            goto fail;
        e->paced = 1;
    }
    if (fp_transfers_init(&e->ts, &ops, e, cfg->max_connections, err) < 0)
        goto fail;
    if (m) {
        static const char *const code_label[] = {"code_class", NULL}, *const reason_label[] = {"reason", NULL};
        static const char *const classes[NCLASSES] = {"2xx", "4xx", "5xx", "error"};
        static const char *const reasons[NSKIPS] = {"no_address", "already_sent"};
        fp_metric *replies = fp_metrics_counter(m, "formpipe_task_email_smtp_replies_total",
                                                "SMTP transfers by the server's final reply class (error: none)",
                                                code_label, err);
        fp_metric *skipped = replies ? fp_metrics_counter(m, "formpipe_task_email_skipped_total",
                                                          "Events that sent no mail: no address in toField, or a "
                                                          "sent-record already there", reason_label, err) : NULL;
        fp_metric *rec = skipped ? fp_metrics_counter(m, "formpipe_task_email_sent_record_errors_total",
                                                      "Mails sent whose sent-record could not be written",
                                                      NULL, err) : NULL;
        if (!rec)
            goto fail;
        for (int i = 0; i < NCLASSES; i++)
            e->replies[i] = fp_metric_series(replies, (const char *[]){classes[i]});
        for (int i = 0; i < NSKIPS; i++)
            e->skipped[i] = fp_metric_series(skipped, (const char *[]){reasons[i]});
        e->record_errors = fp_metric_series(rec, NULL);
    }
    return &e->kind;
enomem:
    fp_error_set(err, FP_ENOMEM, "out of memory");
fail:
    em_free(e);
    return NULL;
}
