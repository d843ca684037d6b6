/* transfers.h — the attempts of a kind that works over libcurl's multi interface
 * (webhook, email). Each attempt is on one list from the kind's start() until poll
 * reports it, in one of three states: waiting for its turn (the kind's own queue, e.g.
 * pacing), decided without a transfer (an event that can never be sent; reported by
 * the next poll), or running as an easy handle in the multi handle. A kind embeds an
 * fp_transfer in its attempt, says how a finished transfer turns into an outcome and
 * how its attempt is freed, and calls fp_transfers_poll from its kind.h poll. Only
 * ever used from the runner's thread. */
#ifndef FP_TASK_TRANSFERS_H
#define FP_TASK_TRANSFERS_H

#include <curl/curl.h>

#include "error.h"
#include "kind.h"

typedef enum { FP_TRANSFER_WAITING, FP_TRANSFER_DECIDED, FP_TRANSFER_RUNNING } fp_transfer_state;

typedef struct fp_transfer {
    struct fp_transfer *prev, *next;
    const fp_task_event *ev;
    fp_transfer_state state;
    CURL *h;                      /* RUNNING: in the multi handle; owned here */
    fp_task_outcome decided;      /* DECIDED: what poll reports */
} fp_transfer;

typedef struct fp_transfers_ops {
    /* The outcome of t's finished transfer (res: libcurl's result; t->h still valid). */
    void (*outcome)(void *kind, fp_transfer *t, CURLcode res, fp_task_outcome *o);
    /* Frees the attempt that embeds t (its easy handle is gone already). */
    void (*free)(fp_transfer *t);
    /* May be NULL. Starts waiting attempts whose turn has come (fp_transfers_run or
     * fp_transfers_decide); returns in how many ms it wants to be called again, or -1
     * when nothing waits for time. */
    long long (*pump)(void *kind);
} fp_transfers_ops;

typedef struct fp_transfers {
    CURLM *multi;
    fp_transfer *head;
    int pending;                  /* attempts on the list: what kind.h poll returns */
    int running;                  /* of those, transfers in the multi handle */
    const fp_transfers_ops *ops;
    void *kind;
} fp_transfers;

/* Makes the multi handle, at most max_connections connections (kept for reuse). */
int fp_transfers_init(fp_transfers *ts, const fp_transfers_ops *ops, void *kind, long max_connections, fp_error *err);

/* Removes every attempt unreported (freed through ops->free) and the multi handle. */
void fp_transfers_cleanup(fp_transfers *ts);

/* Puts a new attempt on the list in the state it is in (WAITING or DECIDED). */
void fp_transfers_track(fp_transfers *ts, fp_transfer *t);

/* Decides t without a transfer: v with the detail (printf-style), reported by the next poll. */
void fp_transfers_decide(fp_transfer *t, fp_task_verdict v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Runs t's transfer h (set up by the kind; owned from here on, also on failure). 0, or
 * FP_ENOMEM when the multi handle refuses it: t is then decided RETRY. */
int fp_transfers_run(fp_transfers *ts, fp_transfer *t, CURL *h);

/* kind.h poll: calls pump, drives the transfers until an attempt finished or
 * timeout_ms passed, and reports every finished attempt. Returns ts->pending. */
int fp_transfers_poll(fp_transfers *ts, long timeout_ms, fp_task_report_fn *report, void *runner);

#endif
