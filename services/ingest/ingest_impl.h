/* ingest_impl.h — what ingest.c (threads, sockets, Kafka) and http.c (requests and
 * answers, http.h) share inside formpipe-ingest: the server, its workers and their
 * connections. Not an API: nothing outside services/ingest includes it. A request
 * belongs to the service thread (worker) that accepted its connection (see request in
 * http.h for who holds it). */
#ifndef FP_INGEST_IMPL_H
#define FP_INGEST_IMPL_H

#include "admin.h"
#include "connlimit.h"
#include "fifo.h"
#include "netaddr.h"
#include "token.h"
#include "formset.h"
#include "ingest.h"
#include "ratelimit.h"

#include <ev.h>
#include <libwebsockets.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

typedef struct worker worker;
typedef struct request request;   /* http.h */

/* One client connection of a worker, from accept to LWS_CALLBACK_WSI_DESTROY: the
 * wsi's opaque user data, which also marks it as holding a --max-connections slot.
 * Between requests it waits on its worker's idle list (oldest first) instead of in
 * lws's timeout list: see fp_http_close_idle (http.h). */
typedef struct conn {
    struct lws *wsi;
    char peer[64];               /* the peer address, from accept */
    char key[FP_NETADDR_KEY_MAX];  /* its connection-limit key; "" when not counted (a trusted proxy) */
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
    fp_cidrs trusted;            /* --trusted-proxy, parsed */
    fp_connlimit *per_client;    /* --max-connections-per-client */
    fp_token_key token_key;      /* submission tokens (wiped at exit) */
    fp_admin_routes admin;       /* /healthz, /readyz on the service port (no /metrics there) */
    fp_admin *admin_server;      /* /healthz, /readyz, /metrics on --admin-port */
    fp_metric *m_requests, *m_invalid, *m_honeypot;
    fp_series *m_delivery, *m_inflight, *m_queue, *m_conns, *m_refused, *m_refused_client, *m_timeouts;
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
    fp_fifo reading;             /* posts whose body is still coming (request.reading) */
    int released;                /* a connection's slot came back (set while adopting one) */
    pthread_mutex_t mail_lock;
    request *mail;               /* reported requests, posted by the delivery-report thread */
};

/* Seconds on the monotonic clock (timeouts, the delivery bound, delivery latency). */
static inline double fp_ingest_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ingest.c: a connection is gone (LWS_CALLBACK_WSI_DESTROY, after http.c took it off
 * the idle list): c is freed and its slot of --max-connections comes back. */
void fp_ingest_conn_gone(worker *w, conn *c);

/* ingest.c: answers what Kafka reported on since the last look (on w's thread). */
void fp_ingest_read_mail(worker *w);

#endif
