/* connlimit.c — see connlimit.h. A chained hash table of counts; an entry goes when
 * its count falls to zero. */
#include "connlimit.h"
#include "netaddr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096

typedef struct entry {
    struct entry *next;
    int count;
    char key[FP_NETADDR_KEY_MAX];
} entry;

struct fp_connlimit {
    int max;
    pthread_mutex_t lock;
    entry *buckets[BUCKETS];
};

fp_connlimit *fp_connlimit_new(int max)
{
    fp_connlimit *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->max = max;
    pthread_mutex_init(&cl->lock, NULL);
    return cl;
}

void fp_connlimit_free(fp_connlimit *cl)
{
    if (!cl)
        return;
    for (size_t i = 0; i < BUCKETS; i++)
        for (entry *e = cl->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    pthread_mutex_destroy(&cl->lock);
    free(cl);
}

/* The bucket of key. */
static entry **bucket(fp_connlimit *cl, const char *key)
{
    size_t h = 1469598103934665603ULL;
    for (const char *s = key; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return &cl->buckets[h % BUCKETS];
}

int fp_connlimit_take(fp_connlimit *cl, const char *key)
{
    if (cl->max <= 0)
        return 1;
    pthread_mutex_lock(&cl->lock);
    entry **b = bucket(cl, key), *e = *b;
    while (e && strcmp(e->key, key))
        e = e->next;
    int ok = 1;
    if (!e && (e = calloc(1, sizeof *e))) {
        snprintf(e->key, sizeof e->key, "%s", key);
        e->next = *b;
        *b = e;
    }
    if (!e || e->count >= cl->max)
        ok = 0;   /* out of memory refuses too: the table stays bounded */
    else
        e->count++;
    pthread_mutex_unlock(&cl->lock);
    return ok;
}

void fp_connlimit_give(fp_connlimit *cl, const char *key)
{
    if (cl->max <= 0)
        return;
    pthread_mutex_lock(&cl->lock);
    for (entry **p = bucket(cl, key); *p; p = &(*p)->next) {
        entry *e = *p;
        if (strcmp(e->key, key))
            continue;
        if (--e->count <= 0) {
            *p = e->next;
            free(e);
        }
        break;
    }
    pthread_mutex_unlock(&cl->lock);
}
