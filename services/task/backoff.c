/* backoff.c — see backoff.h. */
#include "backoff.h"

long long fp_backoff_delay(long long initial_ms, long long max_ms, int attempt, long long retry_after_ms,
                           unsigned rnd)
{
    if (max_ms < 1)
        max_ms = 1;
    long long base = initial_ms < 1 ? 1 : initial_ms;
    for (int i = 1; i < attempt && base < max_ms; i++)
        base *= 2;
    if (base > max_ms)
        base = max_ms;
    long long half = base / 2;
    long long delay = base - half + (long long)(rnd % (unsigned long long)(half + 1));
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    if (delay > max_ms)
        delay = max_ms;
    return delay < 1 ? 1 : delay;
}
