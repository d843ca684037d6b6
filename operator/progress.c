/* progress.c — see progress.h. */
#include "progress.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* Makes room for n partitions; new ones start as "not lagging". */
static int grow(op_progress *pr, int n)
{
    if (n <= pr->n)
        return 0;
    long long *c = realloc(pr->committed, (size_t)n * sizeof *c);
    if (!c)
        return FP_ENOMEM;
    pr->committed = c;
    long long *s = realloc(pr->since_ms, (size_t)n * sizeof *s);
    if (!s)
        return FP_ENOMEM;
    pr->since_ms = s;
    for (int i = pr->n; i < n; i++) {
        pr->committed[i] = -1;
        pr->since_ms[i] = -1;
    }
    pr->n = n;
    return 0;
}

int op_progress_update(op_progress *pr, const op_partition_offsets *offsets, int n, long long now_ms,
                       long long window_ms, op_stall *out)
{
    memset(out, 0, sizeof *out);
    out->first = -1;
    if (grow(pr, n) < 0)
        return FP_ENOMEM;
    for (int i = 0; i < n; i++) {
        long long lag = op_partition_lag(&offsets[i]);
        out->lag += lag;
        if (lag == 0 || pr->since_ms[i] < 0 || pr->committed[i] != offsets[i].committed) {
            pr->committed[i] = offsets[i].committed;
            pr->since_ms[i] = lag > 0 ? now_ms : -1;
            continue;
        }
        if (now_ms - pr->since_ms[i] >= window_ms) {
            if (out->first < 0) {
                out->first = i;
                out->stalled_ms = now_ms - pr->since_ms[i];
            }
            out->stalled++;
        }
    }
    return 0;
}

void op_progress_clear(op_progress *pr)
{
    free(pr->committed);
    free(pr->since_ms);
    memset(pr, 0, sizeof *pr);
}

int op_progress_dlq_recreated(long long *since_ms, int recreated_now, long long now_ms)
{
    if (recreated_now)
        *since_ms = now_ms > 0 ? now_ms : 1;
    if (*since_ms && now_ms - *since_ms >= OP_DLQ_RECREATED_HOLD_MS)
        *since_ms = 0;
    return *since_ms != 0;
}

int op_progress_false(op_condition *c, const op_stall *s, int dlq_recreated, const char *dlq_topic, const char *group,
                      const char *set_aside, const char *logs)
{
    if (dlq_recreated)
        op_condition_set(c, "Progressing", 0, "DeadLetterTopicMissing",
                         "dead-letter topic %s was missing, so events that cannot be %s could not be set aside; "
                         "it was created again", dlq_topic, set_aside);
    else if (s && s->stalled > 0)
        op_condition_set(c, "Progressing", 0, "NoProgress",
                         "consumer group %s committed nothing on partition %d for %llds while %lld events wait "
                         "(%d partition%s stalled): see %s logs", group, s->first, s->stalled_ms / 1000, s->lag,
                         s->stalled, s->stalled == 1 ? "" : "s", logs);
    else
        return 0;
    return 1;
}
