/* keyorder.h — per-key order within a partition for formpipe-task: an event may start
 * only once every earlier event of the same Kafka key in its partition finished.
 * Items (the runner's events) are opaque pointers queued per (partition, key) in read
 * order; events without a key are not ordered. Pure, so every case is a unit test
 * (tests/unit/test_task_keyorder.c). */
#ifndef FP_KEYORDER_H
#define FP_KEYORDER_H

#include <stddef.h>
#include <stdint.h>

typedef struct fp_keyorder fp_keyorder;

fp_keyorder *fp_keyorder_new(void);        /* NULL on ENOMEM */
void fp_keyorder_free(fp_keyorder *k);     /* NULL is fine; items are not the module's */

/* Queues item as the latest event of (partition, key). 1: it may start now (no earlier
 * unfinished event of its key; always for key NULL); 0: it waits; FP_ENOMEM. */
int fp_keyorder_add(fp_keyorder *k, int32_t partition, const void *key, size_t key_len, void *item);

/* The oldest event of (partition, key) finished: returns the next item of that key,
 * which may start now, or NULL (none waits, or key NULL). */
void *fp_keyorder_done(fp_keyorder *k, int32_t partition, const void *key, size_t key_len);

/* Forgets every key of a partition (revoked). */
void fp_keyorder_drop(fp_keyorder *k, int32_t partition);

/* Keys with an unfinished event. */
size_t fp_keyorder_keys(const fp_keyorder *k);

#endif
