/* http.h — the requests of formpipe-ingest (http.c): routing, checks, validation, the
 * produce and the answers, on the service thread (worker) that accepted the connection.
 * ingest.c runs the threads and the producer and calls these. Not an API: nothing
 * outside services/ingest includes it. */
#ifndef FP_INGEST_HTTP_H
#define FP_INGEST_HTTP_H

#include "buf.h"
#include "fifo.h"
#include "formset.h"
#include "ids.h"

#include <libwebsockets.h>
#include <librdkafka/rdkafka.h>

typedef struct worker worker;

/* Who keeps a request alive (request.holders, a bitmask). */
enum {
    HOLDER_CONN = 1,       /* its connection: from the request head until the answer is
                            * written or the connection closes */
    HOLDER_DELIVERY = 2,   /* Kafka's delivery: from a successful produce until the worker
                            * has handled the delivery report, or drops it at stop */
};

/* One request of a client connection.
 *
 * Ownership: the request lives while a holder holds it. Each holder lets go exactly once
 * with req_release(r, HOLDER_...) (http.c), which frees the request when neither holds
 * it any more; no other code frees a request. Whatever the order (the answer written
 * before or after Kafka's report, the client gone while its event is in flight, the 503
 * of the delivery bound), the request goes when the last holder lets go.
 * Threads: only the owning worker's thread reads or changes holders, wsi and the answer;
 * the delivery-report thread touches only started, dr_err and mail_next, while
 * HOLDER_DELIVERY keeps the request alive, to post it to that worker's mailbox. */
typedef struct request {
    worker *w;                   /* the service thread that owns it */
    unsigned holders;            /* HOLDER_CONN | HOLDER_DELIVERY */
    struct lws *wsi;             /* valid while HOLDER_CONN holds it */
    fp_form_entry *form;         /* a reference, released with the request */
    fp_buf in;
    int rejected;                /* body over the limit: answer 413 at completion */
    int is_get, is_post, body_done;  /* an answer before the whole body was read closes */
    fp_fifo_link unanswered;     /* on the worker's list of unanswered submissions */
    fp_fifo_link reading;        /* on the worker's list of posts still reading their body */
    double head_at;              /* when its head arrived (the --request-timeout bound) */
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

/* The lws protocol callback (every connection and request of a worker). */
int fp_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

/* Kafka has reported on r (on w's thread): answers it when its client still waits for
 * the answer, then releases the delivery's hold on it. */
void fp_http_delivered(worker *w, request *r);

/* Answers 503 for w's submissions produced before `before` (fp_ingest_now() seconds)
 * that Kafka has not confirmed; their delivery still holds them until its report. */
void fp_http_expire(worker *w, double before);

/* Closes w's keep-alive connections that have waited for a request since before
 * `before` (fp_ingest_now() seconds). They wait on the worker's idle FIFO, not in lws's
 * timeout list, which lws inserts into by walking it from the head (a walk per answer);
 * equal idle timeouts expire in the order they were set, so a FIFO keeps them in O(1).
 * docs/ingest.md has the measurements. */
void fp_http_close_idle(worker *w, double before);

/* Answers 408 (and closes) w's posts whose head arrived before `before` and whose
 * body is still incomplete: --request-timeout bounds the whole body, however slowly it
 * trickles (lws's own timeout restarts with every chunk). */
void fp_http_expire_slow(worker *w, double before);

/* A stopped worker lets go of r for Kafka's delivery (r comes off its lists first);
 * its connection has let go already (the worker's lws context is gone). */
void fp_http_drop(worker *w, request *r);

#endif
