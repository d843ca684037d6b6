/* ingest_impl.h — what ingest.c (threads, sockets, Kafka) and http.c (requests and
 * answers) share inside formpipe-ingest. Not an API: nothing outside services/ingest
 * includes it. Ownership: a request belongs to the service thread (worker) that accepted
 * its connection; only the delivery-report thread touches it otherwise, to post it to
 * that worker's mailbox. */
#ifndef FP_INGEST_IMPL_H
#define FP_INGEST_IMPL_H

#include "fifo.h"
#include "formset.h"
#include "ids.h"
#include "ingest.h"
#include "ratelimit.h"

#include <ev.h>
#include <libwebsockets.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "buf.h"

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
    fp_fifo_link unanswered;     /* on the worker's list of unanswered submissions */
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

/* lws's per-wsi user space: one transaction only (lws frees it when a keep-alive
 * transaction completes and allocates it again for the next). */
struct session {
    request *req;
};

/* One client connection of a worker, from accept to LWS_CALLBACK_WSI_DESTROY: the
 * wsi's opaque user data, which also marks it as holding a --max-connections slot.
 * Between requests it waits on its worker's idle list (oldest first) instead of in
 * lws's timeout list: see fp_http_close_idle. */
typedef struct conn {
    struct lws *wsi;
    char peer[64];               /* the peer address, looked up on the first request */
    fp_fifo_link idle;           /* on the worker's idle list */
    double idle_since;
} conn;

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
    fp_fifo unanswered;          /* of those, the ones not yet answered (request.unanswered) */
    fp_fifo idle;                /* connections between requests (conn.idle) */
    int released;                /* a connection's slot came back (set while adopting one) */
    pthread_mutex_t mail_lock;
    request *mail;               /* reported requests, posted by the delivery-report thread */
};


static inline double fp_ingest_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* http.c: the lws protocol callback (every connection and request of a worker). */
int fp_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

/* http.c: Kafka has reported on r (on w's thread): answers it, or frees it when the
 * client is gone or was answered at the delivery bound. */
void fp_http_delivered(worker *w, request *r);

/* http.c: answers 503 for w's submissions produced before `before` (fp_ingest_now()
 * seconds) that Kafka has not confirmed; their reports free them later. */
void fp_http_expire(worker *w, double before);

/* http.c: closes w's keep-alive connections that have waited for a request since
 * before `before` (fp_ingest_now() seconds). lws keeps its timeouts in one list per
 * thread sorted by expiry and inserts by walking it from the head, so a timeout set
 * after every answer walks past every other waiting connection (15% of the CPU per
 * request at 1,000 connections). Equal idle timeouts expire in the order they were
 * set: a FIFO does the same job in O(1). */
void fp_http_close_idle(worker *w, double before);

/* http.c: frees a request of a stopped worker (out of its lists first). */
void fp_http_drop(worker *w, request *r);

/* ingest.c: a connection is gone (LWS_CALLBACK_WSI_DESTROY, after http.c took it off
 * the idle list): c is freed and its slot of --max-connections comes back. */
void fp_ingest_conn_gone(worker *w, conn *c);

/* ingest.c: answers what Kafka reported on since the last look (on w's thread). */
void fp_ingest_read_mail(worker *w);

#endif
