/* Unit tests for operator/targets: one writer per sheet tab, the first created; tabs
 * match without case and across each pipeline's list of spreadsheets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "targets.h"

static int owner(op_targets *t, const char *key, char *out)
{
    return op_targets_owner(t, key, out, 64);
}

/* Sets key on one spreadsheet id; the changed keys joined with ',' into got. */
static void set1(op_targets *t, const char *key, const char *id, const char *sheet, long long created,
                 char got[2 * OP_TARGETS_KEY_MAX + 2])
{
    char changed[2][OP_TARGETS_KEY_MAX];
    const char *ids[] = {id};
    cr_assert_eq(op_targets_set(t, key, ids, id ? 1 : 0, sheet, created, changed), 0);
    snprintf(got, 2 * OP_TARGETS_KEY_MAX + 2, "%s%s%s", changed[0], changed[1][0] ? "," : "", changed[1]);
}

Test(targets, the_first_created_pipeline_owns_a_tab_matched_without_case)
{
    op_targets *t = op_targets_new();
    char got[2 * OP_TARGETS_KEY_MAX + 2], who[64];
    set1(t, "a/one", "S", "Responses", 1000, got);
    cr_assert_str_eq(got, "");
    set1(t, "b/two", "S", "responses", 2000, got);
    cr_assert_str_eq(got, "", "the older pipeline keeps its tab");
    cr_assert_eq(owner(t, "b/two", who), 1);
    cr_assert_str_eq(who, "a/one");
    cr_assert_eq(owner(t, "a/one", who), 0);
    set1(t, "c/three", "S", "Other", 500, got);
    cr_assert_eq(owner(t, "c/three", who), 0, "another tab of the same spreadsheet is free");
    cr_assert_eq(owner(t, "x/unknown", who), 0);

    /* the owner moves to another tab: the other pipeline inherits and is told */
    set1(t, "a/one", "S", "Moved", 1000, got);
    cr_assert_str_eq(got, "b/two");
    cr_assert_eq(owner(t, "b/two", who), 0);
    /* an older pipeline arrives on that tab: the current owner loses it and is told */
    set1(t, "d/old", "S", "RESPONSES", 10, got);
    cr_assert_str_eq(got, "b/two");
    cr_assert_eq(owner(t, "b/two", who), 1);
    cr_assert_str_eq(who, "d/old");
    /* deleted: forgotten, the heir is told */
    set1(t, "d/old", NULL, "RESPONSES", 10, got);
    cr_assert_str_eq(got, "b/two");
    cr_assert_eq(owner(t, "d/old", who), 0);
    /* the same tab again changes nothing */
    set1(t, "b/two", "S", "Responses", 2000, got);
    cr_assert_str_eq(got, "");
    op_targets_free(t);
}

Test(targets, a_move_can_change_two_owners)
{
    op_targets *t = op_targets_new();
    char got[2 * OP_TARGETS_KEY_MAX + 2], who[64];
    set1(t, "ns/old", "S", "A", 1, got);     /* owns A */
    set1(t, "ns/a2", "S", "A", 5, got);      /* waits for A */
    set1(t, "ns/b1", "S", "B", 3, got);      /* owns B */
    set1(t, "ns/old", "S", "B", 1, got);     /* old leaves A (a2 inherits) and takes B (b1 loses it) */
    cr_assert_str_eq(got, "ns/a2,ns/b1");
    cr_assert_eq(owner(t, "ns/a2", who), 0);
    cr_assert_eq(owner(t, "ns/b1", who), 1);
    cr_assert_str_eq(who, "ns/old");
    op_targets_free(t);
}

Test(targets, spreadsheet_lists_that_overlap_share_the_tab)
{
    op_targets *t = op_targets_new();
    char changed[2][OP_TARGETS_KEY_MAX], who[64];
    const char *first[] = {"S1", "S2"}, *second[] = {"S2"}, *third[] = {"S3", "S4"};
    cr_assert_eq(op_targets_set(t, "ns/first", first, 2, "Responses", 1, changed), 0);
    cr_assert_eq(op_targets_set(t, "ns/second", second, 1, "Responses", 2, changed), 0);
    cr_assert_eq(op_targets_set(t, "ns/third", third, 2, "Responses", 3, changed), 0);
    cr_assert_eq(owner(t, "ns/second", who), 1, "S2 is in both lists: first fills it after S1");
    cr_assert_str_eq(who, "ns/first");
    cr_assert_eq(owner(t, "ns/third", who), 0);
    op_targets_free(t);
}

Test(targets, equal_creation_times_fall_back_to_the_key)
{
    op_targets *t = op_targets_new();
    char got[2 * OP_TARGETS_KEY_MAX + 2], who[64];
    set1(t, "ns/b", "S", "T", 5, got);
    set1(t, "ns/a", "S", "T", 5, got);
    cr_assert_eq(owner(t, "ns/b", who), 1);
    cr_assert_str_eq(who, "ns/a");
    op_targets_free(t);
}
