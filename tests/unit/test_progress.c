/* Unit tests for operator/progress: a partition with lag and no new commit for the
 * window is stalled; any commit, or no lag, resets it. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "progress.h"

#define W 30000   /* the window, ms */

/* One measurement of a 2-partition topic: committed and end offsets, at t ms. */
struct step { long long t, c0, e0, c1, e1; int stalled, first; long long lag, stalled_ms; };
struct progress_case { const char *what; struct step steps[5]; int n; };

static struct progress_case cases[] = {
    {"caught up never stalls", {{1000, 10, 10, 5, 5, 0, -1, 0, 0}, {100000, 10, 10, 5, 5, 0, -1, 0, 0}}, 2},
    {"moving commits never stall",
     {{1000, 10, 20, 5, 5, 0, -1, 10, 0}, {40000, 15, 30, 5, 5, 0, -1, 15, 0}, {80000, 29, 30, 5, 5, 0, -1, 1, 0}}, 3},
    {"lag without a commit stalls after the window, not before",
     {{1000, 10, 20, 5, 5, 0, -1, 10, 0}, {30000, 10, 20, 5, 5, 0, -1, 10, 0},
      {31000, 10, 25, 5, 5, 1, 0, 15, 30000}, {61000, 10, 25, 5, 5, 1, 0, 15, 60000}}, 4},
    {"only the stuck partition counts; the other moves",
     {{0, 10, 10, 5, 9, 0, -1, 4, 0}, {20000, 12, 12, 5, 12, 0, -1, 7, 0}, {40000, 14, 14, 5, 14, 1, 1, 9, 40000}}, 3},
    {"a commit after a stall clears it",
     {{0, 0, 9, 0, 0, 0, -1, 9, 0}, {40000, 0, 9, 0, 0, 1, 0, 9, 40000}, {50000, 9, 9, 0, 0, 0, -1, 0, 0},
      {60000, 9, 12, 0, 0, 0, -1, 3, 0}}, 4},
    {"no commit yet counts from the log start",
     {{0, -1, 4, -1, 0, 0, -1, 4, 0}, {35000, -1, 4, -1, 0, 1, 0, 4, 35000}}, 2},
};

ParameterizedTestParameters(progress, stalls)
{
    return cr_make_param_array(struct progress_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct progress_case *c, progress, stalls)
{
    op_progress pr = {0};
    for (int i = 0; i < c->n; i++) {
        const struct step *s = &c->steps[i];
        op_partition_offsets o[2] = {{s->c0, 0, s->e0}, {s->c1, 0, s->e1}};
        op_stall st;
        cr_assert_eq(op_progress_update(&pr, o, 2, s->t, W, &st), 0);
        cr_assert_eq(st.stalled, s->stalled, "%s, step %d: stalled %d", c->what, i, st.stalled);
        cr_assert_eq(st.first, s->first, "%s, step %d: first %d", c->what, i, st.first);
        cr_assert_eq(st.lag, s->lag, "%s, step %d: lag %lld", c->what, i, st.lag);
        cr_assert_eq(st.stalled_ms, s->stalled_ms, "%s, step %d: stalled_ms %lld", c->what, i, st.stalled_ms);
    }
    op_progress_clear(&pr);
}

Test(progress, a_grown_topic_adds_fresh_partitions)
{
    op_progress pr = {0};
    op_stall st;
    op_partition_offsets one[1] = {{0, 0, 5}};
    cr_assert_eq(op_progress_update(&pr, one, 1, 0, W, &st), 0);
    op_partition_offsets three[3] = {{0, 0, 5}, {0, 0, 7}, {-1, 0, 0}};
    cr_assert_eq(op_progress_update(&pr, three, 3, 31000, W, &st), 0);
    cr_assert_eq(st.stalled, 1, "partition 0 has waited the window; partition 1 only started");
    cr_assert_eq(st.first, 0);
    cr_assert_eq(st.lag, 12);
    cr_assert_eq(pr.n, 3);
    op_progress_clear(&pr);
    cr_assert_eq(pr.n, 0);
}

/* A recreated dead-letter topic is reported for OP_DLQ_RECREATED_HOLD_MS, across the
 * measurements in between, then no more; a second recreation starts the hold again. */
Test(progress, a_recreated_dead_letter_topic_is_reported_for_the_hold)
{
    static const struct { long long t; int recreated, reported; } steps[] = {
        {1000, 0, 0},
        {2000, 1, 1},
        {7000, 0, 1},
        {2000 + OP_DLQ_RECREATED_HOLD_MS - 1, 0, 1},
        {2000 + OP_DLQ_RECREATED_HOLD_MS, 0, 0},
        {100000, 0, 0},
        {110000, 1, 1},
        {110000 + OP_DLQ_RECREATED_HOLD_MS / 2, 1, 1},   /* again: the hold starts over */
        {110000 + OP_DLQ_RECREATED_HOLD_MS + 1, 0, 1},
        {110000 + 2 * OP_DLQ_RECREATED_HOLD_MS, 0, 0},
    };
    long long since = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        cr_assert_eq(op_progress_dlq_recreated(&since, steps[i].recreated, steps[i].t), steps[i].reported,
                     "step %zu (t %lld)", i, steps[i].t);
    cr_assert_eq(since, 0, "cleared once over");
}
