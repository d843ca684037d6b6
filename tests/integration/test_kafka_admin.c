/* The operator's Kafka admin handle (operator/kafka_admin.c) against the real broker:
 * topics asked for from many threads at once go out group-committed, and every caller
 * still gets its own topic's answer (created, there already, or refused). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kafka_admin.h"
#include "testkit.h"

#define THREADS 24

typedef struct creator {
    op_kafka *k;
    char topic[160];
    int partitions, replication;
    pthread_barrier_t *start;
    int rc, existed;
    fp_error err;
} creator;

static void *create(void *arg)
{
    creator *c = arg;
    pthread_barrier_wait(c->start);
    c->rc = op_kafka_create_with(c->k, c->topic, c->partitions, c->replication, NULL, &c->existed, &c->err);
    return NULL;
}

static op_kafka *admin(void)
{
    fp_strlist none = {0};
    fp_error err = {0};
    op_kafka *k = op_kafka_new(tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), NULL, &none, 15000, &err);
    cr_assert_not_null(k, "admin client: %s", err.msg);
    return k;
}

/* Runs THREADS creators at once over the topics of c[] (set up by the caller). */
static void run_at_once(creator *c)
{
    pthread_t t[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        c[i].start = &start;
        cr_assert_eq(pthread_create(&t[i], NULL, create, &c[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
}

Test(kafka_admin, concurrent_creates_each_get_their_own_answer, .timeout = 120)
{
    op_kafka *k = admin();
    char base[128];
    tk_unique(base, sizeof base, "fp-admin");
    creator c[THREADS];
    memset(c, 0, sizeof c);
    /* 0..15: distinct topics, 1..4 partitions; 16..19: one name four times; 20..23: a
     * replication factor the one-broker cluster cannot have (refused, the rest unharmed) */
    for (int i = 0; i < THREADS; i++) {
        c[i].k = k;
        c[i].replication = i >= 20 ? 5 : 1;
        c[i].partitions = i < 16 ? 1 + i % 4 : 2;
        if (i < 16 || i >= 20)
            snprintf(c[i].topic, sizeof c[i].topic, "%s.t%02d", base, i);
        else
            snprintf(c[i].topic, sizeof c[i].topic, "%s.same", base);
    }
    run_at_once(c);

    int new_same = 0;
    for (int i = 0; i < THREADS; i++) {
        int n = 0;
        fp_error err = {0};
        if (i >= 20) {
            cr_expect_eq(c[i].rc, FP_EINVAL, "%s: replication 5 on one broker gave %d (%s)", c[i].topic, c[i].rc,
                         c[i].err.msg);
            cr_expect(strstr(c[i].err.msg, "create topic") != NULL, "%s: %s", c[i].topic, c[i].err.msg);
            cr_expect_eq(op_kafka_partitions(k, c[i].topic, &n, &err), FP_ENOTFOUND, "%s exists", c[i].topic);
            continue;
        }
        cr_expect_eq(c[i].rc, 0, "%s: %s", c[i].topic, c[i].err.msg);
        cr_expect_eq(op_kafka_partitions(k, c[i].topic, &n, &err), 0, "%s: %s", c[i].topic, err.msg);
        cr_expect_eq(n, c[i].partitions, "%s: %d partitions, asked %d", c[i].topic, n, c[i].partitions);
        if (i < 16)
            cr_expect_eq(c[i].existed, 0, "%s was created by this caller", c[i].topic);
        else
            new_same += !c[i].existed;
    }
    cr_expect_eq(new_same, 1, "one of the four callers of %s.same created it, the others found it: %d created", base,
                 new_same);
    for (int i = 0; i < 20; i++) {
        fp_error err = {0};
        cr_expect_eq(op_kafka_delete(k, c[i].topic, &err), 0, "delete %s: %s", c[i].topic, err.msg);
    }
    op_kafka_free(k);
}

Test(kafka_admin, a_create_without_a_broker_fails_within_the_timeout, .timeout = 60)
{
    fp_strlist none = {0};
    fp_error err = {0};
    op_kafka *k = op_kafka_new("127.0.0.1:1", NULL, &none, 2000, &err);
    cr_assert_not_null(k, "%s", err.msg);
    creator c[THREADS];
    memset(c, 0, sizeof c);
    for (int i = 0; i < THREADS; i++) {
        c[i].k = k;
        c[i].partitions = c[i].replication = 1;
        snprintf(c[i].topic, sizeof c[i].topic, "fp-admin-nobroker.t%02d", i);
    }
    run_at_once(c);
    for (int i = 0; i < THREADS; i++) {
        cr_expect_lt(c[i].rc, 0, "%s: created without a broker", c[i].topic);
        cr_expect(strstr(c[i].err.msg, "create topic") != NULL, "%s: %s", c[i].topic, c[i].err.msg);
    }
    op_kafka_free(k);
}
