/* Unit tests for services/task/hookverdict: every status class and the exceptions. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "hookverdict.h"

struct verdict_case { long status; fp_task_verdict want; };

static struct verdict_case cases[] = {
    {200, FP_TASK_DONE},   {201, FP_TASK_DONE},   {202, FP_TASK_DONE},   {204, FP_TASK_DONE},
    {299, FP_TASK_DONE},
    {408, FP_TASK_RETRY},  {429, FP_TASK_RETRY},  {500, FP_TASK_RETRY},  {502, FP_TASK_RETRY},
    {503, FP_TASK_RETRY},  {504, FP_TASK_RETRY},  {599, FP_TASK_RETRY},
    {301, FP_TASK_REJECT}, {302, FP_TASK_REJECT}, {304, FP_TASK_REJECT}, {307, FP_TASK_REJECT},
    {308, FP_TASK_REJECT}, {400, FP_TASK_REJECT}, {401, FP_TASK_REJECT}, {403, FP_TASK_REJECT},
    {404, FP_TASK_REJECT}, {409, FP_TASK_REJECT}, {410, FP_TASK_REJECT}, {413, FP_TASK_REJECT},
    {422, FP_TASK_REJECT}, {499, FP_TASK_REJECT},
    {100, FP_TASK_REJECT}, {0, FP_TASK_REJECT},   {600, FP_TASK_REJECT}, {-1, FP_TASK_REJECT},
};

ParameterizedTestParameters(hookverdict, of_status)
{
    return cr_make_param_array(struct verdict_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct verdict_case *c, hookverdict, of_status)
{
    cr_assert_eq(fp_hookverdict_of_status(c->status), c->want, "HTTP %ld", c->status);
}
