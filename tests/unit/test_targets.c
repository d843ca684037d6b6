/* Unit tests for operator/targets: one writer per sheet tab, the first created. */
#include <criterion/criterion.h>
#include <string.h>

#include "targets.h"

static int owner(op_targets *t, const char *key, char *out)
{
    return op_targets_owner(t, key, out, 64);
}

Test(targets, the_first_created_pipeline_owns_a_tab_matched_without_case)
{
    op_targets *t = op_targets_new();
    char changed[64], who[64];
    cr_assert_eq(op_targets_set(t, "a/one", "S", "Responses", 1000, changed, sizeof changed), 0);
    cr_assert_str_eq(changed, "");
    cr_assert_eq(op_targets_set(t, "b/two", "S", "responses", 2000, changed, sizeof changed), 0);
    cr_assert_str_eq(changed, "", "the older pipeline keeps its tab");
    cr_assert_eq(owner(t, "b/two", who), 1);
    cr_assert_str_eq(who, "a/one");
    cr_assert_eq(owner(t, "a/one", who), 0);
    cr_assert_eq(op_targets_set(t, "c/three", "S", "Other", 500, changed, sizeof changed), 0);
    cr_assert_eq(owner(t, "c/three", who), 0, "another tab of the same spreadsheet is free");
    cr_assert_eq(owner(t, "x/unknown", who), 0);

    /* the owner moves to another tab: the other pipeline inherits and is told */
    cr_assert_eq(op_targets_set(t, "a/one", "S", "Moved", 1000, changed, sizeof changed), 0);
    cr_assert_str_eq(changed, "b/two");
    cr_assert_eq(owner(t, "b/two", who), 0);
    /* an older pipeline arrives on that tab: the current owner loses it and is told */
    cr_assert_eq(op_targets_set(t, "d/old", "S", "RESPONSES", 10, changed, sizeof changed), 0);
    cr_assert_str_eq(changed, "b/two");
    cr_assert_eq(owner(t, "b/two", who), 1);
    cr_assert_str_eq(who, "d/old");
    /* deleted: forgotten, the heir is told */
    cr_assert_eq(op_targets_set(t, "d/old", NULL, NULL, 0, changed, sizeof changed), 0);
    cr_assert_str_eq(changed, "b/two");
    cr_assert_eq(owner(t, "d/old", who), 0);
    /* the same tab again changes nothing */
    cr_assert_eq(op_targets_set(t, "b/two", "S", "Responses", 2000, changed, sizeof changed), 0);
    cr_assert_str_eq(changed, "");
    op_targets_free(t);
}

Test(targets, equal_creation_times_fall_back_to_the_key)
{
    op_targets *t = op_targets_new();
    char who[64];
    op_targets_set(t, "ns/b", "S", "T", 5, NULL, 0);
    op_targets_set(t, "ns/a", "S", "T", 5, NULL, 0);
    cr_assert_eq(owner(t, "ns/b", who), 1);
    cr_assert_str_eq(who, "ns/a");
    op_targets_free(t);
}
