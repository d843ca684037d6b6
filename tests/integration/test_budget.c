/* services/common/budget against the real Redis master: a rate shared by several
 * connections (the replicas of a task) is never exceeded, bursts are allowed up to
 * their size, waits say when the next take will pass. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "clock.h"
#include "testkit.h"

static fp_redis *a_conn, *b_conn;
static char key[128];

static void setup(void)
{
    char name[96];
    a_conn = tk_redis();
    b_conn = tk_redis();
    tk_unique(name, sizeof name, "budget");
    snprintf(key, sizeof key, "fp:{tests/%s}:rate:t", name);
}

static void teardown(void)
{
    fp_redis_free(a_conn);
    fp_redis_free(b_conn);
}

TestSuite(budget, .init = setup, .fini = teardown, .timeout = 60);

struct rate_case {
    long limit, window_ms, burst, run_ms;
};

static struct rate_case rates[] = {
    {10, 1000, 1, 1500},    /* a mail rate: 10 a second, evenly spaced */
    {50, 1000, 5, 1200},    /* faster, with a burst of 5 */
    {6, 600, 3, 1300},      /* a quota per window: 6 in 600 ms, 3 at once */
};

ParameterizedTestParameters(budget, two_takers_together_stay_within_the_rate)
{
    return cr_make_param_array(struct rate_case, rates, sizeof rates / sizeof rates[0]);
}

/* Two connections take as fast as the budget lets them, alternately, for run_ms: the
 * takes that passed are what the rate allows over that time plus the burst, never more. */
ParameterizedTest(struct rate_case *c, budget, two_takers_together_stay_within_the_rate)
{
    fp_budget a, b;
    fp_error err = {0};
    cr_assert_eq(fp_budget_init(&a, a_conn, key, c->limit, c->window_ms, c->burst, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_budget_init(&b, b_conn, key, c->limit, c->window_ms, c->burst, &err), 0, "%s", err.msg);
    long long t0 = fp_clock_mono_ms(), taken = 0, refused = 0;
    for (int i = 0; fp_clock_mono_ms() - t0 < c->run_ms; i++) {
        long long wait = -1;
        cr_assert_eq(fp_budget_take(i % 2 ? &b : &a, &wait, &err), 0, "%s", err.msg);
        if (wait == 0) {
            taken++;
        } else {
            cr_assert(wait > 0 && wait <= c->window_ms, "a refused take says how long to wait (%lld ms)", wait);
            refused++;
            usleep(wait * 1000 / 4);   /* both keep asking well before their turn */
        }
    }
    long long elapsed = fp_clock_mono_ms() - t0;
    long long allowed = elapsed * c->limit / c->window_ms + c->burst;
    cr_assert_leq(taken, allowed, "%lld takes in %lld ms; the rate allows %lld", taken, elapsed, allowed);
    cr_assert_geq(taken, allowed - 2, "the budget is used up (%lld of %lld)", taken, allowed);
    cr_assert_gt(refused, 0, "takers faster than the rate were held back");
}

Test(budget, a_burst_passes_at_once_then_the_next_waits_one_interval)
{
    fp_budget a;
    fp_error err = {0};
    cr_assert_eq(fp_budget_init(&a, a_conn, key, 10, 1000, 4, &err), 0, "%s", err.msg);
    long long wait = -1;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(fp_budget_take(&a, &wait, &err), 0, "%s", err.msg);
        cr_assert_eq(wait, 0, "take %d of the burst passes at once", i + 1);
    }
    cr_assert_eq(fp_budget_take(&a, &wait, &err), 0, "%s", err.msg);
    cr_assert(wait > 50 && wait <= 100, "the fifth waits about one interval (100 ms), not %lld", wait);
    usleep((useconds_t)wait * 1000);
    cr_assert_eq(fp_budget_take(&a, &wait, &err), 0, "%s", err.msg);
    cr_assert_eq(wait, 0, "after the wait it passes");
}

Test(budget, bad_rates_and_keys_are_refused)
{
    fp_budget a;
    fp_error err = {0};
    cr_assert_eq(fp_budget_init(&a, a_conn, key, 0, 1000, 1, &err), FP_EINVAL);
    cr_assert_eq(fp_budget_init(&a, a_conn, key, 1, 0, 1, &err), FP_EINVAL);
    cr_assert_eq(fp_budget_init(&a, a_conn, key, 1, 1000, 0, &err), FP_EINVAL);
    char longkey[600];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    cr_assert_eq(fp_budget_init(&a, a_conn, longkey, 1, 1000, 1, &err), FP_ELIMIT);
}
