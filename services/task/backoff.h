/* backoff.h — formpipe-task's retry delay: exponential from an initial delay, with
 * jitter, honouring a receiver's Retry-After, never above a cap. Pure (the random
 * number is an argument), so every case is a unit test (tests/unit/test_task_backoff.c). */
#ifndef FP_BACKOFF_H
#define FP_BACKOFF_H

/* The delay before attempt `attempt`+1 after attempt `attempt` (1 = the first) failed
 * transiently: base = initial * 2^(attempt-1) capped at max, of which a random half is
 * taken off (base/2 + rnd % (base/2 + 1), "equal jitter"); a retry_after_ms longer
 * than that wins; the result is at most max (and at least 1). */
long long fp_backoff_delay(long long initial_ms, long long max_ms, int attempt, long long retry_after_ms,
                           unsigned rnd);

#endif
