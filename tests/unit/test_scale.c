/* Unit tests for operator/scale: replicas from lag, and the scale-down window. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "scale.h"

struct lag_case { long long lag, per; int min, max, want; };
static struct lag_case lags[] = {
    {0, 1000, 1, 6, 1}, {1, 1000, 1, 6, 1}, {1000, 1000, 1, 6, 1}, {1001, 1000, 1, 6, 2},
    {5500, 1000, 1, 6, 6}, {1000000, 1000, 1, 6, 6}, {0, 1000, 0, 6, 0}, {0, 100, 3, 6, 3},
    {0, 100, 8, 6, 6},   /* the partition count wins over minReplicas */
};

ParameterizedTestParameters(scale, from_lag)
{
    return cr_make_param_array(struct lag_case, lags, sizeof lags / sizeof lags[0]);
}

ParameterizedTest(struct lag_case *c, scale, from_lag)
{
    cr_assert_eq(op_scale_from_lag(c->lag, c->per, c->min, c->max), c->want,
                 "lag %lld per %lld [%d,%d]", c->lag, c->per, c->min, c->max);
}

Test(scale, up_at_once_down_only_after_the_window)
{
    op_scale_history h = {0};
    cr_assert_eq(op_scale_stabilize(&h, 0, 300000, 1), 1);
    cr_assert_eq(op_scale_stabilize(&h, 1000, 300000, 6), 6, "scale up is immediate");
    cr_assert_eq(op_scale_stabilize(&h, 60000, 300000, 1), 6, "lag fell, but the window remembers 6");
    cr_assert_eq(op_scale_stabilize(&h, 300000, 300000, 2), 6);
    cr_assert_eq(op_scale_stabilize(&h, 301001, 300000, 2), 2, "6 left the window");
    cr_assert_eq(op_scale_stabilize(&h, 302000, 0, 1), 1, "no window: follow at once");
}

Test(scale, a_full_history_drops_the_oldest)
{
    op_scale_history h = {0};
    op_scale_stabilize(&h, 0, 1000000000, 9);
    for (int i = 1; i <= OP_SCALE_HISTORY; i++)
        op_scale_stabilize(&h, i, 1000000000, 1);
    cr_assert_eq(h.n, OP_SCALE_HISTORY);
    cr_assert_eq(op_scale_stabilize(&h, 1000, 1000000000, 1), 1, "the 9 was the oldest and is gone");
}
