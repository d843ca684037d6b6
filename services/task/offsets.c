/* offsets.c — see offsets.h. Per partition, the recorded events not yet committable,
 * in offset order, in an array whose consumed front is reclaimed as it grows. */
#include "offsets.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    int64_t offset;
    int done;
} entry;

typedef struct part {
    int32_t partition;
    entry *e;
    size_t head, n, cap;   /* live entries are e[head..n) */
} part;

struct fp_offsets {
    part *p;
    size_t np, cap;
};

fp_offsets *fp_offsets_new(void)
{
    return calloc(1, sizeof(fp_offsets));
}

void fp_offsets_free(fp_offsets *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->np; i++)
        free(t->p[i].e);
    free(t->p);
    free(t);
}

/* The partition's state, or NULL. */
static part *find(const fp_offsets *t, int32_t partition)
{
    for (size_t i = 0; i < t->np; i++)
        if (t->p[i].partition == partition)
            return &t->p[i];
    return NULL;
}

/* The partition's state, created when missing; NULL on ENOMEM. */
static part *get(fp_offsets *t, int32_t partition)
{
    part *p = find(t, partition);
    if (p)
        return p;
    if (t->np == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        part *np = realloc(t->p, cap * sizeof *np);
        if (!np)
            return NULL;
        t->p = np;
        t->cap = cap;
    }
    p = &t->p[t->np++];
    *p = (part){.partition = partition};
    return p;
}

int fp_offsets_add(fp_offsets *t, int32_t partition, int64_t offset)
{
    part *p = get(t, partition);
    if (!p)
        return FP_ENOMEM;
    if (p->n > p->head && p->e[p->n - 1].offset >= offset)
        return FP_EINVAL;
    if (p->head && p->head * 2 >= p->n) {   /* reclaim the consumed front */
        memmove(p->e, p->e + p->head, (p->n - p->head) * sizeof *p->e);
        p->n -= p->head;
        p->head = 0;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        entry *ne = realloc(p->e, cap * sizeof *ne);
        if (!ne)
            return FP_ENOMEM;
        p->e = ne;
        p->cap = cap;
    }
    p->e[p->n++] = (entry){offset, 0};
    return 0;
}

int64_t fp_offsets_finish(fp_offsets *t, int32_t partition, int64_t offset)
{
    part *p = find(t, partition);
    if (!p)
        return -1;
    size_t lo = p->head, hi = p->n;   /* binary search: offsets increase */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->e[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->n || p->e[lo].offset != offset)
        return -1;
    p->e[lo].done = 1;
    int64_t commit = -1;
    while (p->head < p->n && p->e[p->head].done)
        commit = p->e[p->head++].offset + 1;
    return commit;
}

size_t fp_offsets_pending(const fp_offsets *t, int32_t partition)
{
    const part *p = find(t, partition);
    return p ? p->n - p->head : 0;
}

void fp_offsets_drop(fp_offsets *t, int32_t partition)
{
    part *p = find(t, partition);
    if (!p)
        return;
    free(p->e);
    *p = t->p[--t->np];
}
