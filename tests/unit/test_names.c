/* Unit tests for services/common/names: the naming conventions of topics and groups. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "error.h"
#include "names.h"

struct name_case { int which; const char *a, *b, *c; size_t outsz; int rc; const char *want; };

static struct name_case cases[] = {
    {0, "forms", "student-data", NULL, 64, 0, "forms.forms.student-data"},
    {1, "forms", "student-data", NULL, 64, 0, "formpipe.forms.student-data"},
    {2, "forms.forms.student-data", NULL, NULL, 64, 0, "forms.forms.student-data.dlq"},
    {0, "forms", "student-data", NULL, 10, FP_ELIMIT, NULL},
    {1, "ns", "n", NULL, 14, 0, "formpipe.ns.n"},
    {1, "ns", "n", NULL, 13, FP_ELIMIT, NULL},
    {2, "t", NULL, NULL, 6, 0, "t.dlq"},
    {2, "t", NULL, NULL, 5, FP_ELIMIT, NULL},
    {3, "forms", "student-data", "confirm", 64, 0, "formpipe.forms.student-data.confirm"},
    {3, "ns", "p", "t", 14, FP_ELIMIT, NULL},
    {4, "forms.forms.student-data", "confirm", NULL, 64, 0, "forms.forms.student-data.confirm.dlq"},
    {4, "t", "x", NULL, 7, FP_ELIMIT, NULL},
    {5, "forms.forms.student-data", "moderate", NULL, 64, 0, "forms.forms.student-data.moderate"},
    {5, "t", "x", NULL, 4, 0, "t.x"},
    {5, "t", "x", NULL, 3, FP_ELIMIT, NULL},
};

ParameterizedTestParameters(names, format)
{
    return cr_make_param_array(struct name_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct name_case *c, names, format)
{
    char out[64];
    int rc = c->which == 0   ? fp_names_topic(c->a, c->b, out, c->outsz)
             : c->which == 1 ? fp_names_group(c->a, c->b, out, c->outsz)
             : c->which == 2 ? fp_names_dlq_topic(c->a, out, c->outsz)
             : c->which == 3 ? fp_names_task_group(c->a, c->b, c->c, out, c->outsz)
             : c->which == 4 ? fp_names_task_dlq_topic(c->a, c->b, out, c->outsz)
                             : fp_names_task_stream(c->a, c->b, out, c->outsz);
    cr_assert_eq(rc, c->rc, "%s/%s: rc %d", c->a, c->b ? c->b : "", rc);
    if (c->want)
        cr_assert_str_eq(out, c->want);
    else
        cr_assert_lt(strlen(out), c->outsz, "truncated names stay NUL-terminated");
}

struct topic_case { const char *topic; int valid; };

static struct topic_case topics[] = {
    {"forms.ns.student-data", 1}, {"a", 1}, {"A_b-c.9", 1}, {"", 0}, {".", 0}, {"..", 0},
    {"has space", 0}, {"slash/no", 0}, {"ünicode", 0},
};

ParameterizedTestParameters(names, topic_valid)
{
    return cr_make_param_array(struct topic_case, topics, sizeof topics / sizeof topics[0]);
}

ParameterizedTest(struct topic_case *c, names, topic_valid)
{
    cr_assert_eq(fp_names_topic_valid(c->topic), c->valid, "'%s'", c->topic);
}

Test(names, topic_length_is_kafkas)
{
    char t[FP_NAMES_MAX_TOPIC + 2];
    memset(t, 'a', sizeof t);
    t[FP_NAMES_MAX_TOPIC] = '\0';
    cr_assert_eq(fp_names_topic_valid(t), 1, "249 characters");
    t[FP_NAMES_MAX_TOPIC] = 'a';
    t[FP_NAMES_MAX_TOPIC + 1] = '\0';
    cr_assert_eq(fp_names_topic_valid(t), 0, "250 characters");
}
