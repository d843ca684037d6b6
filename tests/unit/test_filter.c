/* filter.c: conditions on a CloudEvent, and the ones refused. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "filter.h"

static const char event[] =
    "{\"specversion\":\"1.0\",\"id\":\"a1\",\"type\":\"io.formpipe.submission.moderated.v1\","
    "\"data\":{\"country\":\"DE\",\"age\":42,\"opt\":null,\"q\":\"say \\\"hi\\\"\",\"nested\":{\"x\":{\"y\":true}}},"
    "\"moderation\":{\"flagged\":true,\"score\":2,\"fields\":[\"c\"],\"terms\":[\"x\"]}}";

struct match_case {
    const char *conds[3];
    int want;
};

static const struct match_case match_cases[] = {
    {{NULL}, 1},                                                  /* no condition: everything passes */
    {{"moderation.flagged=true"}, 1},
    {{"moderation.flagged=false"}, 0},
    {{"moderation.score=2"}, 1},
    {{"moderation.score=2.0"}, 1},                                /* numbers compare as numbers */
    {{"moderation.score=3"}, 0},
    {{"moderation.score=\"2\""}, 0},                              /* a string is no number */
    {{"data.country=\"DE\""}, 1},
    {{"data.country=\"de\""}, 0},
    {{"data.age=42", "data.country=\"DE\""}, 1},                 /* all must hold */
    {{"data.age=42", "data.country=\"FR\""}, 0},
    {{"data.opt=null"}, 1},
    {{"data.missing=null"}, 0},                                   /* a missing member equals nothing */
    {{"data.q=\"say \\\"hi\\\"\""}, 1},                         /* escapes compare decoded */
    {{"data.nested.x.y=true"}, 1},
    {{"data.country.x=\"DE\""}, 0},                               /* a path through a string */
    {{"type=\"io.formpipe.submission.moderated.v1\""}, 1},
    {{"moderation.fields=\"c\""}, 0},                             /* an array is no scalar */
};

ParameterizedTestParameters(filter, match)
{
    return cr_make_param_array(struct match_case, match_cases, sizeof match_cases / sizeof match_cases[0]);
}

ParameterizedTest(struct match_case *c, filter, match)
{
    char *items[3];
    fp_strlist l = {items, 0};
    while (l.n < 3 && c->conds[l.n]) {
        items[l.n] = (char *)c->conds[l.n];
        l.n++;
    }
    fp_error err = {0};
    fp_filter *f = fp_filter_new(&l, &err);
    cr_assert(f, "%s: %s", c->conds[0], err.msg);
    cr_assert_eq(fp_filter_match(f, event, strlen(event)), c->want, "%s", c->conds[0] ? c->conds[0] : "(none)");
    fp_filter_free(f);
}

struct bad_case {
    const char *cond;
    const char *why;
};

static const struct bad_case bad_cases[] = {
    {"moderation.flagged", "must be <path>=<JSON value>"},
    {"=true", "must be <path>=<JSON value>"},
    {"a..b=true", "empty member name"},
    {".a=true", "empty member name"},
    {"a.=true", "empty member name"},
    {"a=yes", "JSON string, number"},
    {"a={\"x\":1}", "JSON string, number"},
    {"a=[1]", "JSON string, number"},
    {"a=\"\\u0000\"", "cannot be decoded"},
    {"a=1 2", "JSON string, number"},
};

ParameterizedTestParameters(filter, refused)
{
    return cr_make_param_array(struct bad_case, bad_cases, sizeof bad_cases / sizeof bad_cases[0]);
}

ParameterizedTest(struct bad_case *c, filter, refused)
{
    char *items[] = {(char *)c->cond};
    fp_strlist l = {items, 1};
    fp_error err = {0};
    fp_filter *f = fp_filter_new(&l, &err);
    cr_assert_null(f, "%s accepted", c->cond);
    cr_assert_eq(err.code, FP_EINVAL);
    cr_assert(strstr(err.msg, c->why), "%s: %s", c->cond, err.msg);
}

Test(filter, what_is_no_object_never_matches)
{
    char *items[] = {"a=1"};
    fp_strlist l = {items, 1};
    fp_filter *f = fp_filter_new(&l, NULL);
    cr_assert(f);
    cr_assert_eq(fp_filter_match(f, "\"a\"", 3), 0);
    cr_assert_eq(fp_filter_match(f, "{\"b\":1,", 7), 0);
    cr_assert_eq(fp_filter_match(f, "[1]", 3), 0);
    cr_assert_eq(fp_filter_match(f, "{\"a\":1}", 7), 1);
    fp_filter_free(f);
}

Test(filter, at_most_sixteen_conditions)
{
    char *items[FP_FILTER_MAX + 1];
    for (int i = 0; i <= FP_FILTER_MAX; i++)
        items[i] = "a=1";
    fp_strlist l = {items, FP_FILTER_MAX + 1};
    fp_error err = {0};
    cr_assert_null(fp_filter_new(&l, &err));
    l.n = FP_FILTER_MAX;
    fp_filter *f = fp_filter_new(&l, &err);
    cr_assert(f);
    cr_assert_eq(fp_filter_count(f), FP_FILTER_MAX);
    fp_filter_free(f);
}
