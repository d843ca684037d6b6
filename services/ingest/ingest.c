/* ingest.c — see ingest.h. Several service threads (--threads), each with its own
 * libwebsockets context on a libev (epoll) loop and its own SO_REUSEPORT listener on the
 * same port; the kernel spreads connections over them. A request lives on the thread
 * that accepted its connection (http.c handles it). One producer is shared: a
 * delivery-report thread polls it and posts each report to the owning thread's mailbox
 * and wakes that thread, so request state is only ever touched by its own thread
 * (who holds a request, the connection or Kafka's delivery: struct request in http.h).
 * This file: the threads, accepting, the producer, what /readyz and /metrics read. */
#include "ingest_impl.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "shutdown.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Runs on the delivery-report thread: posts the report to the request's own thread.
 * The delivery holds r (HOLDER_DELIVERY) until that thread has handled the report. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    server *s = opaque;
    request *r = m->_private;
    (void)rk;
    fp_series_observe(s->m_delivery, fp_ingest_now() - r->started);
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

/* Answers what Kafka reported on since the last look (on w's own thread). */
void fp_ingest_read_mail(worker *w)
{
    pthread_mutex_lock(&w->mail_lock);
    request *mail = w->mail;
    w->mail = NULL;
    pthread_mutex_unlock(&w->mail_lock);
    while (mail) {
        request *r = mail;
        mail = r->mail_next;
        fp_http_delivered(w, r);
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

void fp_ingest_conn_gone(worker *w, conn *c)
{
    if (c->key[0])
        fp_connlimit_give(w->s->per_client, c->key);
    free(c);
    release_connection(w->s);
    w->released = 1;
}

/* A new connection's conn from its peer address sa, holding a slot of its client's
 * --max-connections-per-client (a trusted proxy holds none); NULL when that client has
 * all its slots (counted) or out of memory. */
static conn *conn_new(server *s, const struct sockaddr_storage *sa, socklen_t salen)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (getnameinfo((const struct sockaddr *)sa, salen, c->peer, sizeof c->peer, NULL, 0, NI_NUMERICHOST))
        c->peer[0] = '\0';   /* looked up by lws at the first request */
    if (c->peer[0] && !fp_cidrs_contain(&s->trusted, c->peer)) {
        fp_netaddr_key(c->peer, c->key, sizeof c->key);
        if (!fp_connlimit_take(s->per_client, c->key)) {
            fp_series_inc(s->m_refused_client);
            free(c);
            return NULL;
        }
    }
    return c;
}

/* The listener is readable: accepts what is waiting and gives each connection to this
 * thread's lws context, or closes it at once when --max-connections are open or its
 * client address has --max-connections-per-client. The slots go with the wsi's conn
 * (its opaque user data) and come back at WSI_DESTROY. */
static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    worker *w = io->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof sa;
        int fd = accept4(w->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                fp_log_warn("accept failed", FP_LSTR("error", strerror(errno)));
            return;
        }
        if (!reserve_connection(w->s)) {
            close(fd);
            continue;
        }
        conn *c = conn_new(w->s, &sa, salen);
        if (!c) {
            close(fd);
            release_connection(w->s);
            continue;
        }
        int one = 1;   /* a write that follows an unacknowledged one must not wait for its ACK */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        lws_adopt_desc_t desc = {.vh = w->vhost, .type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP, .opaque = c};
        desc.fd.sockfd = fd;
        w->released = 0;
        /* On failure lws closes fd, and may already have destroyed the wsi (c freed). */
        struct lws *wsi = lws_adopt_descriptor_vhost_via_info(&desc);
        if (!wsi && !w->released)
            fp_ingest_conn_gone(w, c);
        /* lws sets no timeout on an adopted socket: bound the wait for the first request
         * (lws replaces it once a request starts; after an answer fp_http_close_idle keeps it). */
        if (wsi) {
            c->wsi = wsi;
            lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, w->s->cfg->idle_timeout_s);
        }
    }
}

/* A socket on ai, with SO_REUSEPORT when shared; bound, and listening when listen_too.
 * -1 with errno. */
static int socket_on(const struct addrinfo *ai, int shared, int listen_too)
{
    int one = 1, fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || (listen_too && listen(fd, 4096))) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* A listening socket on addr:port with SO_REUSEPORT, so each service thread has its own
 * and the kernel spreads connections over them. The first one (first) checks that
 * nobody listens there yet: SO_REUSEPORT would otherwise let a second ingest on the
 * same port silently share its traffic. -1 with *err. */
static int listen_on(const char *addr, int port, int first, fp_error *err)
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
    int probe = first && port > 0 ? socket_on(ai, 0, 0) : -2;   /* -2: no probe */
    if (probe >= 0)
        close(probe);
    int fd = probe == -1 ? -1 : socket_on(ai, 1, 1);
    if (fd < 0)
        fp_error_set(err, FP_EIO, "cannot listen on %s:%d: %s", addr, port, strerror(errno));
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

#define TIMER_US 50000          /* the delivery bound and shutdown checks; reports wake the thread */
#define FORM_RELOAD_S 1.0        /* how often the form files are looked at */

/* Every 50 ms on each service thread: keeps the delivery bound and the idle timeout,
 * notices shutdown, and reads the mailbox as a backstop (a report wakes the thread at
 * once). */
static void on_timer(lws_sorted_usec_list_t *sul)
{
    worker *w = (worker *)sul;
    fp_ingest_read_mail(w);
    /* The delivery bound is ours to keep, not left to librdkafka. */
    double now = fp_ingest_now();
    fp_http_expire(w, now - w->s->cfg->delivery_timeout_ms / 1000.0);
    fp_http_close_idle(w, now - w->s->cfg->idle_timeout_s);
    fp_http_expire_slow(w, now - w->s->cfg->request_timeout_s);
    if (fp_shutdown_requested())
        ev_break(w->loop, EVBREAK_ONE);
    lws_sul_schedule(w->ctx, 0, &w->timer, on_timer, TIMER_US);
}

/* /readyz on the service port: Kafka answers and forms are loaded. */
static int ready(void *ctx, char *why, size_t whysz)
{
    server *s = ctx;
    if (!atomic_load(&s->kafka_ok)) {
        snprintf(why, whysz, "kafka unreachable");
        return 0;
    }
    if (fp_formset_count(s->forms) == 0) {
        snprintf(why, whysz, "no forms loaded");
        return 0;
    }
    return 1;
}

/* Before /metrics renders: the gauges read at that moment. */
static void refresh_metrics(void *ctx)
{
    server *s = ctx;
    fp_series_set(s->m_queue, rd_kafka_outq_len(s->rk));
}

static const struct lws_protocols protocols[] = {
    {"http", fp_http_callback, sizeof(struct session), 0, 0, NULL, 0},
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
 * form file changed (--forms-dir: whether files came, went or changed). */
static void *housekeeper(void *arg)
{
    server *s = arg;
    pthread_setname_np(pthread_self(), "housekeeping");
    double next_check = 0, next_reload = fp_ingest_now() + FORM_RELOAD_S;
    while (!atomic_load(&s->stop_threads)) {
        struct pollfd p = {.fd = fp_shutdown_fd(), .events = POLLIN};
        poll(&p, 1, 200);
        refresh_metrics(s);   /* the admin port's /metrics reads it */
        if (fp_ingest_now() >= next_reload) {
            fp_formset_reload(s->forms);
            next_reload = fp_ingest_now() + FORM_RELOAD_S;
        }
        if (fp_ingest_now() >= next_check) {
            const struct rd_kafka_metadata *md = NULL;
            int ok = rd_kafka_metadata(s->rk, 0, NULL, &md, 1500) == RD_KAFKA_RESP_ERR_NO_ERROR;
            if (md)
                rd_kafka_metadata_destroy(md);
            atomic_store(&s->kafka_ok, ok);
            next_check = fp_ingest_now() + 2;
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
    double deadline = fp_ingest_now() + w->s->cfg->shutdown_grace_ms / 1000.0;
    while (w->inflight > 0 && fp_ingest_now() < deadline)
        ev_run(w->loop, EVRUN_ONCE);
    return NULL;
}

/* Creates worker w: its listener on port (0: any), its event loop and its lws context. */
static int worker_init(server *s, worker *w, int port, fp_error *err)
{
    const fp_ingest_config *cfg = s->cfg;
    w->s = s;
    pthread_mutex_init(&w->mail_lock, NULL);
    if ((w->listen_fd = listen_on(cfg->bind, port, w == s->workers, err)) < 0)
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
        lws_context_destroy(w->ctx);   /* closes connections: they let go of their requests */
    for (request *r = w->mail, *next; r; r = next) {
        next = r->mail_next;
        fp_http_drop(w, r);
    }
    while (w->unanswered.oldest)         /* never reported on (the producer is gone) */
        fp_http_drop(w, FP_FIFO_ENTRY(w->unanswered.oldest, request, unanswered));
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
    fp_metric *rfc = fp_metrics_counter(m, "formpipe_ingest_client_connections_refused_total",
                                        "Connections closed at accept because their client address had "
                                        "--max-connections-per-client open.", NULL, err);
    fp_metric *to = fp_metrics_counter(m, "formpipe_ingest_request_timeouts_total",
                                       "Posts answered 408 because their body took longer than --request-timeout.", NULL, err);
    s->m_honeypot = fp_metrics_counter(m, "formpipe_ingest_honeypot_total",
                                       "Submissions dropped because they filled in the form's honeypot field.",
                                       (const char *[]){"form", NULL}, err);
    if (!s->m_requests || !s->m_invalid || !d || !inf || !q || !c || !rf || !rfc || !to || !s->m_honeypot)
        return err->code;
    s->m_refused_client = fp_metric_series(rfc, NULL);
    s->m_timeouts = fp_metric_series(to, NULL);
    s->m_delivery = fp_metric_series(d, NULL);
    s->m_inflight = fp_metric_series(inf, NULL);
    s->m_queue = fp_metric_series(q, NULL);
    s->m_conns = fp_metric_series(c, NULL);
    s->m_refused = fp_metric_series(rf, NULL);
    return 0;
}

/* The idempotent producer (acks=all). Its message timeout is --kafka-message-timeout,
 * well above the answer's --delivery-timeout, so a broker's restart is ridden out by
 * retries rather than by messages timing out in flight: that forces an epoch bump, and
 * an open librdkafka issue (confluentinc/librdkafka#4134) reports confirmed messages
 * missing from the log after stalls past the message timeout. The queue is capped well
 * inside the pod's memory limit (full: 503). */
static rd_kafka_t *producer_new(server *s, fp_error *err)
{
    const fp_ingest_config *cfg = s->cfg;
    char why[512], timeout[24];
    snprintf(timeout, sizeof timeout, "%ld", cfg->kafka_message_timeout_ms);
    static const char *const defaults[] = {"linger.ms", "2", "queue.buffering.max.kbytes", "32768", NULL};
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
    rd_kafka_flush(s->rk, (int)(deadline > fp_ingest_now() ? (deadline - fp_ingest_now()) * 1000 : 0));
    atomic_store(&s->stop_threads, 1);
    pthread_join(s->reporter, NULL);
    pthread_join(s->housekeeper, NULL);
    rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    for (int i = 0; i < 100 && rd_kafka_outq_len(s->rk) > 0; i++)
        rd_kafka_poll(s->rk, 10);
}

int fp_ingest_run(const fp_ingest_config *cfg, fp_metrics *metrics, fp_error *err)
{
    server s = {.cfg = cfg};
    s.admin = (fp_admin_routes){.ready = ready, .ctx = &s};   /* no /metrics on the public port */
    int rc, threads = cfg->threads > 0 ? cfg->threads : 1;
    if (!(s.forms = cfg->forms_dir && cfg->forms_dir[0] ? fp_formset_open_dir(cfg->forms_dir, err)
                                                         : fp_formset_load(cfg->forms, err))) {
        rc = err->code;
        goto out;
    }
    if ((rc = register_metrics(&s, metrics, err)))
        goto out;
    if ((rc = fp_cidrs_parse(cfg->trusted_proxies, &s.trusted, err)) ||
        (rc = fp_token_key_init(&s.token_key, cfg->token_key_file, err)))
        goto out;
    if (!(s.limiter = fp_ratelimit_new(cfg->rate_limit, cfg->rate_burst)) ||
        !(s.per_client = fp_connlimit_new(cfg->max_connections_per_client))) {
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
    if (!(s.admin_server = fp_admin_start(cfg->admin_bind ? cfg->admin_bind : "127.0.0.1", cfg->admin_port, metrics,
                                          ready, &s, err))) {
        rc = err->code;
        goto out;
    }
    pthread_create(&s.reporter, NULL, reporter, &s);
    pthread_create(&s.housekeeper, NULL, housekeeper, &s);
    fp_log_info("ingest listening", FP_LSTR("bind", cfg->bind), FP_LINT("port", port),
                FP_LINT("admin_port", fp_admin_port(s.admin_server)),
                FP_LINT("threads", threads), FP_LINT("forms", (long long)fp_formset_count(s.forms)));
    for (int i = 0; i < threads; i++)
        pthread_create(&s.workers[i].thread, NULL, serve, &s.workers[i]);
    double deadline = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(s.workers[i].thread, NULL);
        if (!deadline)
            deadline = fp_ingest_now() + cfg->shutdown_grace_ms / 1000.0;
    }
    stop_producer(&s, deadline);
    fp_log_info("ingest stopped", FP_LINT("unanswered", atomic_load(&s.inflight)));
    rc = 0;
out:
    fp_admin_stop(s.admin_server);   /* first: /readyz reads the forms and Kafka's state */
    for (int i = 0; i < s.nworkers; i++)
        worker_free(&s.workers[i]);
    free(s.workers);
    fp_formset_free(s.forms);   /* before the producer: each form holds a handle of its topic */
    if (s.rk)
        rd_kafka_destroy(s.rk);
    fp_ratelimit_free(s.limiter);
    fp_connlimit_free(s.per_client);
    fp_cidrs_free(&s.trusted);
    fp_token_key_wipe(&s.token_key);
    return rc;
}
