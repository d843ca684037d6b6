/* keyorder.c — see keyorder.h. A chained hash table of (partition, key) -> FIFO of
 * items; an entry exists while its key has an unfinished event. */
#include "keyorder.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

#define NBUCKETS 4096

typedef struct kentry {
    int32_t partition;
    void **items;             /* items[head..n): oldest (running or finishing) first */
    size_t head, n, cap;
    struct kentry *next;
    size_t key_len;
    unsigned char key[];
} kentry;

struct fp_keyorder {
    kentry *b[NBUCKETS];
    size_t keys;
};

fp_keyorder *fp_keyorder_new(void)
{
    return calloc(1, sizeof(fp_keyorder));
}

/* FNV-1a over the partition and the key. */
static size_t bucket(int32_t partition, const void *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ (uint32_t)partition;
    h *= 1099511628211ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= ((const unsigned char *)key)[i];
        h *= 1099511628211ULL;
    }
    return (size_t)(h % NBUCKETS);
}

/* The link pointing at the entry of (partition, key), or at the NULL ending its chain. */
static kentry **locate(fp_keyorder *k, int32_t partition, const void *key, size_t len)
{
    kentry **p = &k->b[bucket(partition, key, len)];
    while (*p && !((*p)->partition == partition && (*p)->key_len == len && memcmp((*p)->key, key, len) == 0))
        p = &(*p)->next;
    return p;
}

static void entry_free(kentry *e)
{
    free(e->items);
    free(e);
}

int fp_keyorder_add(fp_keyorder *k, int32_t partition, const void *key, size_t key_len, void *item)
{
    if (!key)
        return 1;
    kentry **p = locate(k, partition, key, key_len);
    kentry *e = *p;
    if (!e) {
        if (!(e = calloc(1, sizeof *e + key_len)))
            return FP_ENOMEM;
        e->partition = partition;
        e->key_len = key_len;
        memcpy(e->key, key, key_len);
        *p = e;
        k->keys++;
    }
    if (e->head && e->head * 2 >= e->n) {
        memmove(e->items, e->items + e->head, (e->n - e->head) * sizeof *e->items);
        e->n -= e->head;
        e->head = 0;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        void **ni = realloc(e->items, cap * sizeof *ni);
        if (!ni) {
            if (e->n == 0) {
                *p = e->next;
                entry_free(e);
                k->keys--;
            }
            return FP_ENOMEM;
        }
        e->items = ni;
        e->cap = cap;
    }
    e->items[e->n++] = item;
    return e->n - e->head == 1;
}

void *fp_keyorder_done(fp_keyorder *k, int32_t partition, const void *key, size_t key_len)
{
    if (!key)
        return NULL;
    kentry **p = locate(k, partition, key, key_len);
    kentry *e = *p;
    if (!e)
        return NULL;
    e->head++;
    if (e->head < e->n)
        return e->items[e->head];
    *p = e->next;
    entry_free(e);
    k->keys--;
    return NULL;
}

void fp_keyorder_drop(fp_keyorder *k, int32_t partition)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        for (kentry **p = &k->b[i]; *p;) {
            kentry *e = *p;
            if (e->partition != partition) {
                p = &e->next;
                continue;
            }
            *p = e->next;
            entry_free(e);
            k->keys--;
        }
    }
}

size_t fp_keyorder_keys(const fp_keyorder *k)
{
    return k->keys;
}

void fp_keyorder_free(fp_keyorder *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        while (k->b[i]) {
            kentry *e = k->b[i];
            k->b[i] = e->next;
            entry_free(e);
        }
    }
    free(k);
}
