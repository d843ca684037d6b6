/* services/task/offsets: the offset to commit is one past the finished prefix. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "error.h"
#include "offsets.h"

/* A script: read offsets (in order), then finish some, each with the commit expected
 * (-1: the prefix did not grow). */
struct step {
    int64_t offset;
    int64_t want;
};
struct case_ {
    const char *name;
    int64_t read[8];
    size_t nread;
    struct step finish[8];
    size_t nfinish;
    size_t pending;   /* left at the end */
};

static struct case_ cases[] = {
    {"in order", {0, 1, 2}, 3, {{0, 1}, {1, 2}, {2, 3}}, 3, 0},
    {"reverse order: all at once at the end", {0, 1, 2}, 3, {{2, -1}, {1, -1}, {0, 3}}, 3, 0},
    {"a hole holds the rest", {5, 6, 7, 8}, 4, {{6, -1}, {8, -1}, {5, 7}}, 3, 2},
    {"gaps in offsets (compaction)", {10, 13, 20}, 3, {{10, 11}, {20, -1}, {13, 21}}, 3, 0},
    {"unknown offset is ignored", {0, 1}, 2, {{7, -1}, {1, -1}}, 2, 2},
    {"finishing twice does not move it", {0, 1}, 2, {{0, 1}, {0, -1}}, 2, 1},
    {"nothing finished", {3, 4}, 2, {{0}}, 0, 2},
};

ParameterizedTestParameters(task_offsets, script)
{
    return cr_make_param_array(struct case_, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct case_ *c, task_offsets, script)
{
    fp_offsets *t = fp_offsets_new();
    cr_assert_not_null(t);
    for (size_t i = 0; i < c->nread; i++)
        cr_assert_eq(fp_offsets_add(t, 2, c->read[i]), 0, "%s: add %lld", c->name, (long long)c->read[i]);
    for (size_t i = 0; i < c->nfinish; i++) {
        int64_t got = fp_offsets_finish(t, 2, c->finish[i].offset);
        cr_assert_eq(got, c->finish[i].want, "%s: finish %lld: want commit %lld, got %lld", c->name,
                     (long long)c->finish[i].offset, (long long)c->finish[i].want, (long long)got);
    }
    cr_assert_eq(fp_offsets_pending(t, 2), c->pending, "%s: pending", c->name);
    fp_offsets_free(t);
}

Test(task_offsets, partitions_are_independent_and_dropped_alone)
{
    fp_offsets *t = fp_offsets_new();
    cr_assert_eq(fp_offsets_add(t, 0, 0), 0);
    cr_assert_eq(fp_offsets_add(t, 1, 0), 0);
    cr_assert_eq(fp_offsets_finish(t, 1, 0), 1);
    cr_assert_eq(fp_offsets_pending(t, 0), 1);
    fp_offsets_drop(t, 0);
    cr_assert_eq(fp_offsets_pending(t, 0), 0);
    cr_assert_eq(fp_offsets_finish(t, 0, 0), -1, "a dropped partition commits nothing");
    cr_assert_eq(fp_offsets_add(t, 0, 0), 0, "re-assigned: it starts afresh");
    fp_offsets_free(t);
}

Test(task_offsets, offsets_must_increase)
{
    fp_offsets *t = fp_offsets_new();
    cr_assert_eq(fp_offsets_add(t, 0, 5), 0);
    cr_assert_eq(fp_offsets_add(t, 0, 5), FP_EINVAL);
    cr_assert_eq(fp_offsets_add(t, 0, 4), FP_EINVAL);
    fp_offsets_free(t);
}

Test(task_offsets, a_long_stream_finished_in_windows_commits_everything)
{
    fp_offsets *t = fp_offsets_new();
    int64_t last = -1;
    for (int64_t base = 0; base < 100000; base += 100) {
        for (int64_t o = base; o < base + 100; o++)
            cr_assert_eq(fp_offsets_add(t, 0, o), 0);
        for (int64_t o = base + 99; o >= base; o--) {   /* each window in reverse */
            int64_t c = fp_offsets_finish(t, 0, o);
            if (c >= 0)
                last = c;
        }
    }
    cr_assert_eq(last, 100000);
    cr_assert_eq(fp_offsets_pending(t, 0), 0);
    fp_offsets_free(t);
}
