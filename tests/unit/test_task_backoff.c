/* services/task/backoff: exponential, jittered, Retry-After honoured, capped. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "backoff.h"

struct case_ {
    long long initial, max;
    int attempt;
    long long retry_after;
    unsigned rnd;
    long long want;
};

static struct case_ cases[] = {
    {1000, 300000, 1, 0, 0, 500},            /* half of the base at the least */
    {1000, 300000, 1, 0, 500, 1000},         /* ... and the whole base at the most */
    {1000, 300000, 1, 0, 501, 500},          /* rnd wraps within the half */
    {1000, 300000, 3, 0, 0, 2000},           /* base 4000 */
    {1000, 300000, 3, 0, 2000, 4000},
    {1000, 5000, 10, 0, 0, 2500},            /* base capped at max */
    {1000, 5000, 10, 0, 2500, 5000},
    {1000, 5000, 60, 0, 2500, 5000},         /* no overflow however many attempts */
    {1000, 300000, 1, 30000, 0, 30000},      /* a longer Retry-After wins */
    {1000, 300000, 1, 700, 0, 700},          /* ... over the jittered delay too */
    {1000, 300000, 1, 200, 0, 500},          /* a shorter one does not */
    {1000, 60000, 1, 3600000, 0, 60000},     /* Retry-After capped at max */
    {1, 1, 1, 0, 0, 1},                      /* never 0 */
};

ParameterizedTestParameters(task_backoff, delay)
{
    return cr_make_param_array(struct case_, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct case_ *c, task_backoff, delay)
{
    long long got = fp_backoff_delay(c->initial, c->max, c->attempt, c->retry_after, c->rnd);
    cr_assert_eq(got, c->want, "initial %lld max %lld attempt %d retry_after %lld rnd %u: want %lld, got %lld",
                 c->initial, c->max, c->attempt, c->retry_after, c->rnd, c->want, got);
}

Test(task_backoff, jitter_stays_within_half_and_whole_base)
{
    for (unsigned rnd = 0; rnd < 5000; rnd += 7) {
        long long d = fp_backoff_delay(100, 100000, 4, 0, rnd);
        cr_assert(d >= 400 && d <= 800, "rnd %u: %lld not in [400, 800]", rnd, d);
    }
}
