/* scale.c — see scale.h. */
#include "scale.h"

#include <string.h>

int op_scale_from_lag(long long lag, long long per_replica, int min, int max)
{
    long long want = per_replica > 0 ? (lag + per_replica - 1) / per_replica : max;
    if (want < min)
        want = min;
    if (want > max)
        want = max;
    return (int)want;
}

int op_scale_stabilize(op_scale_history *h, long long now_ms, long long window_ms, int desired)
{
    size_t keep = 0;
    for (size_t i = 0; i < h->n; i++)   /* drop what fell out of the window */
        if (now_ms - h->at_ms[i] <= window_ms) {
            h->at_ms[keep] = h->at_ms[i];
            h->replicas[keep++] = h->replicas[i];
        }
    h->n = keep;
    if (h->n == OP_SCALE_HISTORY) {
        memmove(h->at_ms, h->at_ms + 1, (h->n - 1) * sizeof h->at_ms[0]);
        memmove(h->replicas, h->replicas + 1, (h->n - 1) * sizeof h->replicas[0]);
        h->n--;
    }
    h->at_ms[h->n] = now_ms;
    h->replicas[h->n++] = desired;
    int best = desired;
    for (size_t i = 0; i < h->n; i++)
        if (h->replicas[i] > best)
            best = h->replicas[i];
    return best;
}
