/* strmap.c — separate chaining with FNV-1a. */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct entry {
    struct entry *next;
    void *value;
    char key[];
} entry;

struct op_map {
    entry **slots;
    size_t nslots, len;
    void (*free_value)(void *);
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

op_map *op_map_new(void (*free_value)(void *))
{
    op_map *m = calloc(1, sizeof *m);
    if (!m || !(m->slots = calloc(16, sizeof *m->slots))) {
        free(m);
        return NULL;
    }
    m->nslots = 16;
    m->free_value = free_value;
    return m;
}

void op_map_free(op_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nslots; i++)
        for (entry *e = m->slots[i], *next; e; e = next) {
            next = e->next;
            if (m->free_value)
                m->free_value(e->value);
            free(e);
        }
    free(m->slots);
    free(m);
}

static entry **find(const op_map *m, const char *key)
{
    entry **pp = &m->slots[hash(key) & (m->nslots - 1)];
    while (*pp && strcmp((*pp)->key, key))
        pp = &(*pp)->next;
    return pp;
}

static void grow(op_map *m)
{
    size_t n = m->nslots * 2;
    entry **slots = calloc(n, sizeof *slots);
    if (!slots)
        return;   /* keep working with longer chains */
    for (size_t i = 0; i < m->nslots; i++)
        for (entry *e = m->slots[i], *next; e; e = next) {
            next = e->next;
            entry **head = &slots[hash(e->key) & (n - 1)];
            e->next = *head;
            *head = e;
        }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

int op_map_put(op_map *m, const char *key, void *value)
{
    entry **pp = find(m, key);
    if (*pp) {
        if (m->free_value && (*pp)->value != value)
            m->free_value((*pp)->value);
        (*pp)->value = value;
        return 0;
    }
    size_t klen = strlen(key) + 1;
    entry *e = malloc(sizeof *e + klen);
    if (!e)
        return FP_ENOMEM;
    memcpy(e->key, key, klen);
    e->value = value;
    e->next = NULL;
    *pp = e;
    if (++m->len > m->nslots)
        grow(m);
    return 0;
}

void *op_map_get(const op_map *m, const char *key)
{
    entry *e = *find(m, key);
    return e ? e->value : NULL;
}

int op_map_has(const op_map *m, const char *key)
{
    return *find(m, key) != NULL;
}

void *op_map_take(op_map *m, const char *key)
{
    entry **pp = find(m, key), *e = *pp;
    if (!e)
        return NULL;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->len--;
    return v;
}

int op_map_del(op_map *m, const char *key)
{
    if (!op_map_has(m, key))
        return 0;
    void *v = op_map_take(m, key);
    if (m->free_value)
        m->free_value(v);
    return 1;
}

size_t op_map_len(const op_map *m)
{
    return m->len;
}

void op_map_each(const op_map *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx)
{
    for (size_t i = 0; i < m->nslots; i++)
        for (entry *e = m->slots[i]; e; e = e->next)
            fn(ctx, e->key, e->value);
}
