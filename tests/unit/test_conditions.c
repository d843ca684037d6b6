/* Unit tests for operator/conditions: lastTransitionTime moves only when status flips. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "conditions.h"

static const char *field(const cJSON *conds, int i, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(conds, i), k));
}

Test(conditions, transition_time_kept_while_status_holds_and_reset_on_flip)
{
    op_condition want[2] = {{"Ready", 0, "NotReady", "0/2 ready"}, {"TopicReady", 1, "TopicExists", "ok"}};
    cJSON *first = op_conditions_build(NULL, want, 2, 1, "2026-01-01T00:00:00Z");
    cr_assert_str_eq(field(first, 0, "lastTransitionTime"), "2026-01-01T00:00:00Z");
    cr_assert_str_eq(field(first, 0, "status"), "False");
    cr_assert_str_eq(field(first, 1, "status"), "True");

    snprintf(want[0].message, sizeof want[0].message, "1/2 ready");   /* message changes, status does not */
    cJSON *second = op_conditions_build(first, want, 2, 2, "2026-01-01T00:05:00Z");
    cr_assert_str_eq(field(second, 0, "lastTransitionTime"), "2026-01-01T00:00:00Z");
    cr_assert_str_eq(field(second, 0, "message"), "1/2 ready");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(second, 0), "observedGeneration")->valuedouble, 2);

    want[0].status = 1;
    want[0].reason = "AllReady";
    cJSON *third = op_conditions_build(second, want, 2, 2, "2026-01-01T00:09:00Z");
    cr_assert_str_eq(field(third, 0, "lastTransitionTime"), "2026-01-01T00:09:00Z");
    cr_assert_str_eq(field(third, 1, "lastTransitionTime"), "2026-01-01T00:00:00Z");
    cr_assert_str_eq(op_condition_status(third, "Ready"), "True");
    cr_assert_null(op_condition_status(third, "Missing"));
    want[1].status = -1;
    cJSON *fourth = op_conditions_build(third, want, 2, 2, "2026-01-01T00:10:00Z");
    cr_assert_str_eq(field(fourth, 1, "status"), "Unknown");
    cr_assert_str_eq(field(fourth, 1, "lastTransitionTime"), "2026-01-01T00:10:00Z");
    cJSON_Delete(first);
    cJSON_Delete(second);
    cJSON_Delete(third);
    cJSON_Delete(fourth);
}
