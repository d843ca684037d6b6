/* services/task/keyorder: an event starts only after the earlier events of its key
 * (in its partition) finished. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <string.h>

#include "keyorder.h"

/* A script of operations on (partition, key): 'a' adds item `item` and expects `want`
 * (1 start now, 0 wait); 'd' finishes the oldest and expects item `want` next (0: none). */
struct op {
    char what;
    int partition;
    const char *key;   /* NULL: no key */
    long item;
    long want;
};
struct case_ {
    const char *name;
    struct op ops[10];
    size_t keys;   /* keys left */
};

static struct case_ cases[] = {
    {"distinct keys all start", {{'a', 0, "k1", 1, 1}, {'a', 0, "k2", 2, 1}, {'a', 0, "k3", 3, 1}}, 3},
    {"same key waits, then goes in order",
     {{'a', 0, "k", 1, 1}, {'a', 0, "k", 2, 0}, {'a', 0, "k", 3, 0}, {'d', 0, "k", 0, 2}, {'d', 0, "k", 0, 3},
      {'d', 0, "k", 0, 0}}, 0},
    {"same key in another partition is independent", {{'a', 0, "k", 1, 1}, {'a', 1, "k", 2, 1}}, 2},
    {"no key: never ordered", {{'a', 0, NULL, 1, 1}, {'a', 0, NULL, 2, 1}, {'d', 0, NULL, 0, 0}}, 0},
    {"a key finished completely starts afresh",
     {{'a', 0, "k", 1, 1}, {'d', 0, "k", 0, 0}, {'a', 0, "k", 2, 1}}, 1},
    {"prefix keys are different keys", {{'a', 0, "ab", 1, 1}, {'a', 0, "a", 2, 1}}, 2},
    {"interleaved keys", {{'a', 0, "x", 1, 1}, {'a', 0, "y", 2, 1}, {'a', 0, "x", 3, 0}, {'a', 0, "y", 4, 0},
                          {'d', 0, "y", 0, 4}, {'d', 0, "x", 0, 3}}, 2},
};

ParameterizedTestParameters(task_keyorder, script)
{
    return cr_make_param_array(struct case_, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct case_ *c, task_keyorder, script)
{
    fp_keyorder *k = fp_keyorder_new();
    cr_assert_not_null(k);
    for (size_t i = 0; i < sizeof c->ops / sizeof c->ops[0] && c->ops[i].what; i++) {
        const struct op *o = &c->ops[i];
        size_t len = o->key ? strlen(o->key) : 0;
        if (o->what == 'a') {
            int got = fp_keyorder_add(k, o->partition, o->key, len, (void *)o->item);
            cr_assert_eq(got, o->want, "%s: op %zu add item %ld: want %ld, got %d", c->name, i, o->item, o->want, got);
        } else {
            long got = (long)fp_keyorder_done(k, o->partition, o->key, len);
            cr_assert_eq(got, o->want, "%s: op %zu done: want next %ld, got %ld", c->name, i, o->want, got);
        }
    }
    cr_assert_eq(fp_keyorder_keys(k), c->keys, "%s: keys left", c->name);
    fp_keyorder_free(k);
}

Test(task_keyorder, dropping_a_partition_forgets_only_its_keys)
{
    fp_keyorder *k = fp_keyorder_new();
    cr_assert_eq(fp_keyorder_add(k, 0, "a", 1, (void *)1), 1);
    cr_assert_eq(fp_keyorder_add(k, 0, "a", 1, (void *)2), 0);
    cr_assert_eq(fp_keyorder_add(k, 1, "a", 1, (void *)3), 1);
    fp_keyorder_drop(k, 0);
    cr_assert_eq(fp_keyorder_keys(k), 1);
    cr_assert_eq(fp_keyorder_add(k, 0, "a", 1, (void *)4), 1, "partition 0 starts afresh");
    cr_assert_eq(fp_keyorder_add(k, 1, "a", 1, (void *)5), 0, "partition 1 still waits");
    fp_keyorder_free(k);
}

Test(task_keyorder, many_keys_many_waiters)
{
    fp_keyorder *k = fp_keyorder_new();
    char key[16];
    for (long i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%ld", i % 1000);
        cr_assert_eq(fp_keyorder_add(k, 0, key, strlen(key), (void *)(i + 1)), i < 1000);
    }
    for (long i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%ld", i % 1000);
        long next = (long)fp_keyorder_done(k, 0, key, strlen(key));
        cr_assert_eq(next, i + 1000 < 20000 ? i + 1001 : 0, "after item %ld", i + 1);
    }
    cr_assert_eq(fp_keyorder_keys(k), 0);
    fp_keyorder_free(k);
}
