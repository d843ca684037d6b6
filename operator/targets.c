/* targets.c — see targets.h. A plain array: one entry per pipeline, searched linearly
 * (a few thousand pipelines at most per operator; each lookup is a string compare). */
#include "targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

typedef struct entry {
    char *key;
    char *spreadsheet, *sheet;
    long long created_ms;
} entry;

struct op_targets {
    entry *e;
    size_t n, cap;
};

op_targets *op_targets_new(void)
{
    return calloc(1, sizeof(op_targets));
}

static void entry_clear(entry *e)
{
    free(e->key);
    free(e->spreadsheet);
    free(e->sheet);
}

void op_targets_free(op_targets *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        entry_clear(&t->e[i]);
    free(t->e);
    free(t);
}

static entry *find(const op_targets *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
    return NULL;
}

static int same_tab(const entry *a, const entry *b)
{
    return strcmp(a->spreadsheet, b->spreadsheet) == 0 && strcasecmp(a->sheet, b->sheet) == 0;
}

/* The owner of e's tab: the earliest created, then the smallest key. */
static const entry *owner_of(const op_targets *t, const entry *e)
{
    const entry *best = e;
    for (size_t i = 0; i < t->n; i++) {
        const entry *o = &t->e[i];
        if (same_tab(o, e) && (o->created_ms < best->created_ms ||
                               (o->created_ms == best->created_ms && strcmp(o->key, best->key) < 0)))
            best = o;
    }
    return best;
}

/* Of the pipelines sharing e's tab, the one that owns it once e is gone, or NULL. */
static const entry *heir_of(const op_targets *t, const entry *e)
{
    const entry *best = NULL;
    for (size_t i = 0; i < t->n; i++) {
        const entry *o = &t->e[i];
        if (o != e && same_tab(o, e) &&
            (!best || o->created_ms < best->created_ms || (o->created_ms == best->created_ms && strcmp(o->key, best->key) < 0)))
            best = o;
    }
    return best;
}

/* Removes key's entry; the pipeline that inherits its tab (if key owned it) into changed. */
static void forget(op_targets *t, const char *key, char *changed, size_t changedsz)
{
    entry *e = find(t, key);
    if (!e)
        return;
    const entry *heir = owner_of(t, e) == e ? heir_of(t, e) : NULL;
    if (heir && changed)
        snprintf(changed, changedsz, "%s", heir->key);
    entry_clear(e);
    *e = t->e[--t->n];
}

int op_targets_set(op_targets *t, const char *key, const char *spreadsheet, const char *sheet, long long created_ms,
                   char *changed, size_t changedsz)
{
    if (changed && changedsz)
        changed[0] = '\0';
    entry *old = find(t, key);
    if (old && spreadsheet && strcmp(old->spreadsheet, spreadsheet) == 0 && strcasecmp(old->sheet, sheet) == 0)
        return 0;   /* same tab as before */
    forget(t, key, changed, changedsz);
    if (!spreadsheet)
        return 0;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        entry *e = realloc(t->e, cap * sizeof *e);
        if (!e)
            return FP_ENOMEM;
        t->e = e;
        t->cap = cap;
    }
    entry *e = &t->e[t->n];
    e->key = strdup(key);
    e->spreadsheet = strdup(spreadsheet);
    e->sheet = strdup(sheet);
    e->created_ms = created_ms;
    if (!e->key || !e->spreadsheet || !e->sheet) {
        entry_clear(e);
        return FP_ENOMEM;
    }
    t->n++;
    const entry *was = heir_of(t, e);   /* the owner before e came */
    if (was && owner_of(t, e) == e && changed && !changed[0])
        snprintf(changed, changedsz, "%s", was->key);
    return 0;
}

int op_targets_owner(const op_targets *t, const char *key, char *owner, size_t ownersz)
{
    const entry *e = find(t, key);
    if (!e)
        return 0;
    const entry *o = owner_of(t, e);
    snprintf(owner, ownersz, "%s", o->key);
    return o != e;
}
