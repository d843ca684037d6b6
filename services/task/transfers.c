/* transfers.c — see transfers.h. */
#include "transfers.h"

#include <stdarg.h>
#include <stdio.h>

#include "clock.h"

int fp_transfers_init(fp_transfers *ts, const fp_transfers_ops *ops, void *kind, long max_connections, fp_error *err)
{
    *ts = (fp_transfers){.ops = ops, .kind = kind};
    if (!(ts->multi = curl_multi_init()))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    curl_multi_setopt(ts->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_connections);
    curl_multi_setopt(ts->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_connections);
    curl_multi_setopt(ts->multi, CURLMOPT_MAXCONNECTS, max_connections);   /* idle ones kept for reuse */
    return 0;
}

void fp_transfers_track(fp_transfers *ts, fp_transfer *t)
{
    t->prev = NULL;
    t->next = ts->head;
    if (ts->head)
        ts->head->prev = t;
    ts->head = t;
    ts->pending++;
}

/* Takes t off the list, ends its transfer and frees the attempt. */
static void drop(fp_transfers *ts, fp_transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        ts->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    ts->pending--;
    if (t->h) {
        if (t->state == FP_TRANSFER_RUNNING) {
            curl_multi_remove_handle(ts->multi, t->h);
            ts->running--;
        }
        curl_easy_cleanup(t->h);
        t->h = NULL;
    }
    ts->ops->free(t);
}

void fp_transfers_cleanup(fp_transfers *ts)
{
    while (ts->head)
        drop(ts, ts->head);
    if (ts->multi)
        curl_multi_cleanup(ts->multi);
    ts->multi = NULL;
}

void fp_transfers_decide(fp_transfer *t, fp_task_verdict v, const char *fmt, ...)
{
    va_list ap;
    t->state = FP_TRANSFER_DECIDED;
    t->decided = (fp_task_outcome){.verdict = v};
    va_start(ap, fmt);
    vsnprintf(t->decided.detail, sizeof t->decided.detail, fmt, ap);
    va_end(ap);
}

int fp_transfers_run(fp_transfers *ts, fp_transfer *t, CURL *h)
{
    t->h = h;
    if (!h || curl_easy_setopt(h, CURLOPT_PRIVATE, t) != CURLE_OK || curl_multi_add_handle(ts->multi, h) != CURLM_OK) {
        if (h)
            curl_easy_cleanup(h);
        t->h = NULL;
        fp_transfers_decide(t, FP_TASK_RETRY, "%s", "out of memory starting a transfer");
        return FP_ENOMEM;
    }
    t->state = FP_TRANSFER_RUNNING;
    ts->running++;
    return 0;
}

/* Reports one finished attempt (off the list and freed first: the runner may start
 * another from inside report). */
static void report_one(fp_transfers *ts, fp_transfer *t, const fp_task_outcome *o, fp_task_report_fn *report,
                       void *runner)
{
    const fp_task_event *ev = t->ev;
    fp_task_outcome copy = *o;
    drop(ts, t);
    report(runner, ev, &copy);
}

/* Reports every attempt that has finished; returns how many. */
static int drain(fp_transfers *ts, fp_task_report_fn *report, void *runner)
{
    int reported = 0;
    /* Decided attempts first. The list may change inside report: walk again after each. */
    for (fp_transfer *t = ts->head; t;) {
        if (t->state != FP_TRANSFER_DECIDED) {
            t = t->next;
            continue;
        }
        report_one(ts, t, &t->decided, report, runner);
        reported++;
        t = ts->head;
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(ts->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        fp_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode res = msg->data.result;   /* msg is invalid after remove_handle */
        fp_task_outcome o;
        ts->ops->outcome(ts->kind, t, res, &o);
        report_one(ts, t, &o, report, runner);
        reported++;
    }
    return reported;
}

int fp_transfers_poll(fp_transfers *ts, long timeout_ms, fp_task_report_fn *report, void *runner)
{
    long long deadline = fp_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int still;
        long long again = ts->ops->pump ? ts->ops->pump(ts->kind) : -1;
        curl_multi_perform(ts->multi, &still);
        if (drain(ts, report, runner) > 0)
            return ts->pending;
        long long left = deadline - fp_clock_mono_ms();
        if (left <= 0)
            return ts->pending;
        if (again >= 0 && again < left)
            left = again > 0 ? again : 1;
        curl_multi_poll(ts->multi, NULL, 0, left > 60000 ? 60000 : (int)left, NULL);
    }
}
