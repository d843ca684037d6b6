/* condwait.c — see condwait.h. */
#include "condwait.h"

#include "clock.h"

#include <errno.h>
#include <time.h>

void op_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

struct timespec op_timespec(long long at_ms)
{
    struct timespec ts = {.tv_sec = at_ms / 1000, .tv_nsec = (at_ms % 1000) * 1000000};
    return ts;
}

void op_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long long ms, const int *stop)
{
    struct timespec until = op_timespec(fp_clock_mono_ms() + ms);
    while (!*stop && pthread_cond_timedwait(cond, lock, &until) != ETIMEDOUT)
        ;
}
