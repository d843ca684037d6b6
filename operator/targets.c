/* targets.c — see targets.h. A plain array: one entry per pipeline, searched linearly
 * (a few thousand pipelines at most per operator; each lookup is a few string compares). */
#include "targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

typedef struct entry {
    char *key;
    char **ids;
    size_t nids;
    char *sheet;
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
    for (size_t i = 0; i < e->nids; i++)
        free(e->ids[i]);
    free(e->ids);
    free(e->key);
    free(e->sheet);
    memset(e, 0, sizeof *e);
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

/* Two pipelines share a tab: same title (any case) in a spreadsheet both lists hold. */
static int same_tab(const entry *a, const entry *b)
{
    if (strcasecmp(a->sheet, b->sheet) != 0)
        return 0;
    for (size_t i = 0; i < a->nids; i++)
        for (size_t j = 0; j < b->nids; j++)
            if (strcmp(a->ids[i], b->ids[j]) == 0)
                return 1;
    return 0;
}

/* a goes before b: created first, then the smaller key. */
static int earlier(const entry *a, const entry *b)
{
    return a->created_ms < b->created_ms || (a->created_ms == b->created_ms && strcmp(a->key, b->key) < 0);
}

/* The first of the pipelines sharing e's tab, leaving out `except` (NULL: none); e itself
 * counts unless it is `except`. NULL when none is left. */
static const entry *first_writer(const op_targets *t, const entry *e, const entry *except)
{
    const entry *best = e == except ? NULL : e;
    for (size_t i = 0; i < t->n; i++) {
        const entry *o = &t->e[i];
        if (o != except && same_tab(o, e) && (!best || earlier(o, best)))
            best = o;
    }
    return best;
}

/* Notes key in the first free slot of changed (and not twice). */
static void note(char changed[2][OP_TARGETS_KEY_MAX], const char *key)
{
    for (int i = 0; i < 2; i++) {
        if (strcmp(changed[i], key) == 0)
            return;
        if (!changed[i][0]) {
            snprintf(changed[i], OP_TARGETS_KEY_MAX, "%s", key);
            return;
        }
    }
}

/* Removes key's entry; the pipeline that inherits its tab (if key owned it) is noted. */
static void forget(op_targets *t, const char *key, char changed[2][OP_TARGETS_KEY_MAX])
{
    entry *e = find(t, key);
    if (!e)
        return;
    const entry *heir = first_writer(t, e, NULL) == e ? first_writer(t, e, e) : NULL;
    if (heir)
        note(changed, heir->key);
    entry_clear(e);
    *e = t->e[--t->n];
}

/* Fills e (all or nothing). */
static int entry_fill(entry *e, const char *key, const char *const *ids, size_t nids, const char *sheet,
                      long long created_ms)
{
    *e = (entry){.created_ms = created_ms};
    if (!(e->key = strdup(key)) || !(e->sheet = strdup(sheet)) || !(e->ids = calloc(nids, sizeof *e->ids)))
        goto fail;
    for (; e->nids < nids; e->nids++)
        if (!(e->ids[e->nids] = strdup(ids[e->nids])))
            goto fail;
    return 0;
fail:
    entry_clear(e);
    return FP_ENOMEM;
}

/* True when e records exactly these ids and tab. */
static int unchanged(const entry *e, const char *const *ids, size_t nids, const char *sheet)
{
    if (e->nids != nids || strcasecmp(e->sheet, sheet) != 0)
        return 0;
    for (size_t i = 0; i < nids; i++)
        if (strcmp(e->ids[i], ids[i]) != 0)
            return 0;
    return 1;
}

int op_targets_set(op_targets *t, const char *key, const char *const *ids, size_t nids, const char *sheet,
                   long long created_ms, char changed[2][OP_TARGETS_KEY_MAX])
{
    changed[0][0] = changed[1][0] = '\0';
    const entry *old = find(t, key);
    if (old && nids && unchanged(old, ids, nids, sheet))
        return 0;   /* a status write or another field changed: nobody's tab moved */
    forget(t, key, changed);
    if (nids == 0)
        return 0;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        entry *grown = realloc(t->e, cap * sizeof *grown);
        if (!grown)
            return FP_ENOMEM;
        t->e = grown;
        t->cap = cap;
    }
    entry *e = &t->e[t->n];
    if (entry_fill(e, key, ids, nids, sheet, created_ms) < 0)
        return FP_ENOMEM;
    t->n++;
    const entry *was = first_writer(t, e, e);   /* the owner before e came */
    if (was && first_writer(t, e, NULL) == e)
        note(changed, was->key);
    return 0;
}

int op_targets_owner(const op_targets *t, const char *key, char *owner, size_t ownersz)
{
    const entry *e = find(t, key);
    if (!e)
        return 0;
    const entry *o = first_writer(t, e, NULL);
    snprintf(owner, ownersz, "%s", o->key);
    return o != e;
}
