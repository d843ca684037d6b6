/* offsets.h — which offset formpipe-task may commit per partition: events are read in
 * offset order and finish in any order (concurrency, retries); the offset to commit is
 * one past the longest prefix of read events that all finished (done, or dead-lettered
 * and acknowledged). Offsets need not be contiguous (compaction, transaction markers).
 * Pure, so every case is a unit test (tests/unit/test_task_offsets.c). */
#ifndef FP_OFFSETS_H
#define FP_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fp_offsets fp_offsets;

fp_offsets *fp_offsets_new(void);          /* NULL on ENOMEM */
void fp_offsets_free(fp_offsets *t);       /* NULL is fine */

/* Records a read event. Offsets of a partition must increase: FP_EINVAL otherwise;
 * FP_ENOMEM; else 0. */
int fp_offsets_add(fp_offsets *t, int32_t partition, int64_t offset);

/* Marks a recorded event finished. Returns the offset to commit (one past the last
 * event of the finished prefix) when that prefix grew, else -1 (also for an event not
 * recorded). */
int64_t fp_offsets_finish(fp_offsets *t, int32_t partition, int64_t offset);

/* Events of the partition recorded and not yet committable (unfinished, or finished
 * behind an unfinished one). */
size_t fp_offsets_pending(const fp_offsets *t, int32_t partition);

/* Forgets a partition (revoked). */
void fp_offsets_drop(fp_offsets *t, int32_t partition);

#endif
