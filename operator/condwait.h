/* condwait.h — interruptible waits shared by the operator's threads (queue,
 * informers, lease): condition variables that wait on CLOCK_MONOTONIC (the clock of
 * fp_clock_mono_ms), so wall-clock jumps never shorten or stretch a backoff or a lease. */
#ifndef OP_CONDWAIT_H
#define OP_CONDWAIT_H

#include <pthread.h>

/* Initialises cond to time its waits on CLOCK_MONOTONIC. */
void op_cond_init(pthread_cond_t *cond);

/* With lock held: waits on cond until *stop becomes non-zero or ms pass (spurious
 * wake-ups are absorbed). Returns with lock held. */
void op_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long long ms, const int *stop);

/* The absolute CLOCK_MONOTONIC time at_ms as a timespec, for pthread_cond_timedwait. */
struct timespec op_timespec(long long at_ms);

#endif
