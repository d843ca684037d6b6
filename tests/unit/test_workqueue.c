/* Unit tests for operator/workqueue: de-duplication, one worker per key, re-queue of a
 * key added while it runs, delayed adds, per-key backoff, shutdown. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workqueue.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(workqueue, adds_of_a_waiting_key_collapse)
{
    op_queue *q = op_queue_new(5, 1000);
    for (int i = 0; i < 5; i++)
        op_queue_add(q, "ns/a");
    op_queue_add(q, "ns/b");
    cr_assert_eq(op_queue_depth(q), 2);
    char *k1 = op_queue_get(q), *k2 = op_queue_get(q);
    cr_assert_str_eq(k1, "ns/a");
    cr_assert_str_eq(k2, "ns/b");
    cr_assert_eq(op_queue_depth(q), 0);
    op_queue_done(q, k1);
    op_queue_done(q, k2);
    free(k1);
    free(k2);
    op_queue_free(q);
}

Test(workqueue, a_key_added_while_processing_runs_again_after_done_not_before)
{
    op_queue *q = op_queue_new(5, 1000);
    op_queue_add(q, "k");
    char *k = op_queue_get(q);
    op_queue_add(q, "k");            /* changed while we work on it */
    op_queue_add(q, "other");
    char *o = op_queue_get(q);
    cr_assert_str_eq(o, "other", "the running key must not be handed out twice");
    cr_assert_eq(op_queue_depth(q), 0);
    op_queue_done(q, k);
    cr_assert_eq(op_queue_depth(q), 1);
    char *again = op_queue_get(q);
    cr_assert_str_eq(again, "k");
    op_queue_done(q, again);
    op_queue_done(q, o);
    free(k);
    free(o);
    free(again);
    op_queue_free(q);
}

Test(workqueue, delayed_keys_wait_and_the_earlier_time_wins)
{
    op_queue *q = op_queue_new(5, 1000);
    long long t0 = now_ms();
    op_queue_add_after(q, "late", 300);
    op_queue_add_after(q, "late", 100);   /* earlier wins */
    op_queue_add_after(q, "later", 250);
    char *a = op_queue_get(q);
    long long t1 = now_ms();
    cr_assert_str_eq(a, "late");
    cr_assert_geq(t1 - t0, 95, "returned after %lld ms", t1 - t0);
    cr_assert_lt(t1 - t0, 240, "returned after %lld ms", t1 - t0);
    char *b = op_queue_get(q);
    cr_assert_str_eq(b, "later");
    cr_assert_geq(now_ms() - t0, 245);
    op_queue_done(q, a);
    op_queue_done(q, b);
    free(a);
    free(b);
    op_queue_free(q);
}

struct backoff_case { int n; long long want; };
static struct backoff_case backoffs[] = {
    {1, 5}, {2, 10}, {3, 20}, {10, 2560}, {18, 655360}, {19, 1000000}, {40, 1000000},
};

ParameterizedTestParameters(workqueue, backoff_doubles_from_5ms_to_about_17_minutes)
{
    return cr_make_param_array(struct backoff_case, backoffs, sizeof backoffs / sizeof backoffs[0]);
}

ParameterizedTest(struct backoff_case *c, workqueue, backoff_doubles_from_5ms_to_about_17_minutes)
{
    cr_assert_eq(op_queue_backoff(5, 1000000, c->n), c->want, "failure %d", c->n);
}

Test(workqueue, failures_back_off_per_key_and_forget_resets)
{
    op_queue *q = op_queue_new(20, 1000);
    cr_assert_eq(op_queue_add_backoff(q, "x"), 20);
    char *k = op_queue_get(q);
    op_queue_done(q, k);
    free(k);
    cr_assert_eq(op_queue_add_backoff(q, "x"), 40);
    cr_assert_eq(op_queue_add_backoff(q, "y"), 20, "another key has its own count");
    op_queue_forget(q, "x");
    k = op_queue_get(q);
    op_queue_done(q, k);
    free(k);
    k = op_queue_get(q);
    op_queue_done(q, k);
    free(k);
    cr_assert_eq(op_queue_add_backoff(q, "x"), 20, "forget starts over");
    op_queue_shutdown(q);
    op_queue_free(q);
}

typedef struct shared {
    op_queue *q;
    pthread_mutex_t lock;
    int running[4], max_parallel_same_key, processed;
} shared;

static void *worker(void *arg)
{
    shared *s = arg;
    char *k;
    while ((k = op_queue_get(s->q))) {
        int idx = k[0] - 'a';
        pthread_mutex_lock(&s->lock);
        if (++s->running[idx] > s->max_parallel_same_key)
            s->max_parallel_same_key = s->running[idx];
        pthread_mutex_unlock(&s->lock);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&s->lock);
        s->running[idx]--;
        s->processed++;
        pthread_mutex_unlock(&s->lock);
        op_queue_done(s->q, k);
        free(k);
    }
    return NULL;
}

Test(workqueue, four_workers_never_run_one_key_twice_at_once)
{
    shared s = {.q = op_queue_new(5, 1000)};
    pthread_mutex_init(&s.lock, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, &s);
    const char *keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 20000; i++)
        op_queue_add(s.q, keys[i % 4]);
    while (op_queue_depth(s.q) > 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    op_queue_shutdown(s.q);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(s.max_parallel_same_key, 1);
    cr_assert_gt(s.processed, 3, "work was done");
    cr_assert_lt(s.processed, 20000, "adds of waiting keys collapsed (%d runs)", s.processed);
    op_queue_free(s.q);
    pthread_mutex_destroy(&s.lock);
}

Test(workqueue, shutdown_wakes_waiting_workers)
{
    op_queue *q = op_queue_new(5, 1000);
    op_queue_shutdown(q);
    cr_assert_null(op_queue_get(q));
    op_queue_add(q, "ignored");
    cr_assert_eq(op_queue_depth(q), 0);
    op_queue_free(q);
}
