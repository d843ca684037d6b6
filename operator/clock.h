/* clock.h — monotonic time and interruptible waits shared by the operator's threads
 * (queue, informers, lease, reconcile): milliseconds on CLOCK_MONOTONIC, and condition
 * variables that wait on that clock, so wall-clock jumps never shorten or stretch a
 * backoff or a lease. */
#ifndef OP_CLOCK_H
#define OP_CLOCK_H

#include <pthread.h>

/* Milliseconds since an arbitrary point (CLOCK_MONOTONIC). */
long long op_mono_ms(void);

/* Initialises cond to time its waits on CLOCK_MONOTONIC. */
void op_cond_init(pthread_cond_t *cond);

/* With lock held: waits on cond until *stop becomes non-zero or ms pass (spurious
 * wake-ups are absorbed). Returns with lock held. */
void op_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long long ms, const int *stop);

/* The absolute CLOCK_MONOTONIC time at_ms as a timespec, for pthread_cond_timedwait. */
struct timespec op_timespec(long long at_ms);

#endif
