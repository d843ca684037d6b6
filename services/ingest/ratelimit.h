/* ratelimit.h — per-client token buckets (rate per second, burst), in a fixed table so
 * memory stays bounded whatever the number of clients: a full neighbourhood reuses the
 * entry idle for longest. Thread-safe (one lock; the work under it is a few probes). */
#ifndef FP_RATELIMIT_H
#define FP_RATELIMIT_H

#include <stddef.h>

#define FP_RATELIMIT_SLOTS 8192

typedef struct fp_ratelimit fp_ratelimit;

/* rate <= 0 turns limiting off (every call allows). NULL on ENOMEM. */
fp_ratelimit *fp_ratelimit_new(double rate, double burst);
void fp_ratelimit_free(fp_ratelimit *rl);

/* Takes one token for client at time now (seconds). Returns 1 when allowed; 0 when not,
 * with *retry_after_s set to the whole seconds until a token is back. */
int fp_ratelimit_take(fp_ratelimit *rl, const char *client, double now, int *retry_after_s);

#endif
