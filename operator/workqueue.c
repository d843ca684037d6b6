/* workqueue.c — FIFO of ready keys, a dirty set (queued or to be re-queued), a
 * processing set, a map of delayed keys with their due time and a failure count per
 * key; one mutex and one condition variable. */
#include "clock.h"
#include "condwait.h"
#include "workqueue.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "strmap.h"

struct op_queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char **fifo;            /* ring of ready keys */
    size_t head, len, cap;
    op_map *dirty;          /* keys in fifo, or added while processing */
    op_map *processing;
    op_map *delayed;        /* key -> long long *due (monotonic ms) */
    op_map *failures;       /* key -> int *count */
    long long base_ms, max_ms;
    int shutdown;
    int sync_ready;         /* lock and cond initialised */
};

long long op_queue_backoff(long long base_ms, long long max_ms, int n)
{
    long long d = base_ms;
    for (int i = 1; i < n && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

op_queue *op_queue_new(long long base_ms, long long max_ms)
{
    op_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->dirty = op_map_new(NULL);
    q->processing = op_map_new(NULL);
    q->delayed = op_map_new(free);
    q->failures = op_map_new(free);
    if (!q->dirty || !q->processing || !q->delayed || !q->failures) {
        op_queue_free(q);
        return NULL;
    }
    q->base_ms = base_ms;
    q->max_ms = max_ms;
    q->sync_ready = 1;
    pthread_mutex_init(&q->lock, NULL);
    op_cond_init(&q->cond);
    return q;
}

void op_queue_free(op_queue *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->len; i++)
        free(q->fifo[(q->head + i) % q->cap]);
    free(q->fifo);
    op_map_free(q->dirty);
    op_map_free(q->processing);
    op_map_free(q->delayed);
    op_map_free(q->failures);
    if (q->sync_ready) {
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->cond);
    }
    free(q);
}

static int push(op_queue *q, const char *key)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        char **f = malloc(cap * sizeof *f);
        if (!f)
            return FP_ENOMEM;
        for (size_t i = 0; i < q->len; i++)
            f[i] = q->fifo[(q->head + i) % q->cap];
        free(q->fifo);
        q->fifo = f;
        q->cap = cap;
        q->head = 0;
    }
    char *k = strdup(key);
    if (!k)
        return FP_ENOMEM;
    q->fifo[(q->head + q->len++) % q->cap] = k;
    pthread_cond_signal(&q->cond);
    return 0;
}

/* add with the lock held */
static int add_locked(op_queue *q, const char *key)
{
    if (q->shutdown || op_map_has(q->dirty, key))
        return 0;
    op_map_del(q->delayed, key);
    if (op_map_put(q->dirty, key, NULL) < 0)
        return FP_ENOMEM;
    if (op_map_has(q->processing, key))
        return 0;   /* op_queue_done queues it */
    int rc = push(q, key);
    if (rc < 0)
        op_map_del(q->dirty, key);
    return rc;
}

int op_queue_add(op_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    int rc = add_locked(q, key);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

static int add_after_locked(op_queue *q, const char *key, long long delay_ms)
{
    if (delay_ms <= 0)
        return add_locked(q, key);
    if (q->shutdown || op_map_has(q->dirty, key))
        return 0;   /* it runs sooner anyway */
    long long due = fp_clock_mono_ms() + delay_ms;
    long long *cur = op_map_get(q->delayed, key);
    if (cur) {
        if (due < *cur)
            *cur = due;
    } else {
        long long *d = malloc(sizeof *d);
        if (!d)
            return FP_ENOMEM;
        *d = due;
        if (op_map_put(q->delayed, key, d) < 0) {
            free(d);
            return FP_ENOMEM;
        }
    }
    pthread_cond_broadcast(&q->cond);   /* a waiter may need to wake earlier */
    return 0;
}

int op_queue_add_after(op_queue *q, const char *key, long long delay_ms)
{
    pthread_mutex_lock(&q->lock);
    int rc = add_after_locked(q, key, delay_ms);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

long long op_queue_add_backoff(op_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    int *n = op_map_get(q->failures, key);
    if (!n && (n = calloc(1, sizeof *n)) && op_map_put(q->failures, key, n) < 0) {
        free(n);
        n = NULL;
    }
    int count = n ? ++*n : 1;
    long long delay = op_queue_backoff(q->base_ms, q->max_ms, count);
    add_after_locked(q, key, delay);
    pthread_mutex_unlock(&q->lock);
    return delay;
}

void op_queue_forget(op_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    op_map_del(q->failures, key);
    pthread_mutex_unlock(&q->lock);
}

typedef struct due_scan {
    long long now, next;
    char **ready;
    size_t n, cap;
} due_scan;

static void scan_due(void *ctx, const char *key, void *value)
{
    due_scan *s = ctx;
    long long due = *(long long *)value;
    if (due > s->now) {
        if (s->next == 0 || due < s->next)
            s->next = due;
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **r = realloc(s->ready, cap * sizeof *r);
        if (!r)
            return;   /* picked up on the next scan */
        s->ready = r;
        s->cap = cap;
    }
    s->ready[s->n++] = (char *)key;
}

/* Moves due delayed keys to the FIFO; returns the next due time (0: none). */
static long long promote_due(op_queue *q)
{
    due_scan s = {.now = fp_clock_mono_ms()};
    op_map_each(q->delayed, scan_due, &s);
    for (size_t i = 0; i < s.n; i++) {
        char *key = strdup(s.ready[i]);   /* add_locked removes the map entry */
        if (key) {
            op_map_del(q->delayed, key);
            add_locked(q, key);
            free(key);
        }
    }
    free(s.ready);
    return s.next;
}

char *op_queue_get(op_queue *q)
{
    pthread_mutex_lock(&q->lock);
    for (;;) {
        long long next = promote_due(q);
        if (q->shutdown) {
            pthread_mutex_unlock(&q->lock);
            return NULL;
        }
        if (q->len && op_map_put(q->processing, q->fifo[q->head], NULL) == 0)
            break;
        if (q->len)   /* out of memory for the processing set: try again shortly */
            next = fp_clock_mono_ms() + 10;
        if (next) {
            struct timespec ts = op_timespec(next);
            pthread_cond_timedwait(&q->cond, &q->lock, &ts);
        } else {
            pthread_cond_wait(&q->cond, &q->lock);
        }
    }
    char *key = q->fifo[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    op_map_del(q->dirty, key);
    pthread_mutex_unlock(&q->lock);
    return key;
}

void op_queue_done(op_queue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    op_map_del(q->processing, key);
    if (op_map_has(q->dirty, key) && !q->shutdown)
        push(q, key);
    pthread_mutex_unlock(&q->lock);
}

void op_queue_shutdown(op_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->shutdown = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

size_t op_queue_depth(op_queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->len + op_map_len(q->delayed);
    pthread_mutex_unlock(&q->lock);
    return n;
}
