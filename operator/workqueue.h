/* workqueue.h — the controller's queue of object keys ("namespace/name").
 * A key waits in the queue at most once however often it is added; a key being
 * processed is never handed to a second worker (an add during processing queues it
 * again when op_queue_done is called); failures are retried with per-key exponential
 * backoff. Thread-safe. */
#ifndef OP_WORKQUEUE_H
#define OP_WORKQUEUE_H

#include <stddef.h>

typedef struct op_queue op_queue;

/* Backoff after the n-th consecutive failure: base_ms * 2^(n-1), at most max_ms. */
op_queue *op_queue_new(long long base_ms, long long max_ms);
void op_queue_free(op_queue *q);   /* after every worker has stopped; NULL is fine */

/* Queues key now. 0 or FP_ENOMEM. */
int op_queue_add(op_queue *q, const char *key);

/* Queues key after delay_ms (an earlier pending time for the key wins). */
int op_queue_add_after(op_queue *q, const char *key, long long delay_ms);

/* Records a failure of key and queues it after its backoff; returns the delay used. */
long long op_queue_add_backoff(op_queue *q, const char *key);

/* Forgets key's failures (after a success). */
void op_queue_forget(op_queue *q, const char *key);

/* Waits for a key. Returns an allocated key the caller frees after op_queue_done, or
 * NULL once the queue is shut down. */
char *op_queue_get(op_queue *q);

/* Marks key finished; if it was added meanwhile it is queued again. */
void op_queue_done(op_queue *q, const char *key);

/* Wakes every op_queue_get with NULL; later adds are ignored. */
void op_queue_shutdown(op_queue *q);

/* Keys waiting now or later (not counting those being processed). */
size_t op_queue_depth(op_queue *q);

/* The backoff for the n-th consecutive failure (n >= 1). */
long long op_queue_backoff(long long base_ms, long long max_ms, int n);

#endif
