/* Unit tests for services/common/form: identity and column order of a definition. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "form.h"

struct form_case { const char *json; int ok; const char *msg; const char *columns; };

static struct form_case cases[] = {
    {"{\"name\":\"student-data\",\"namespace\":\"forms\",\"generation\":3,"
     "\"fields\":[{\"name\":\"name\"},{\"name\":\"roll\"},{\"name\":\"cgpa\"}]}", 1, NULL, "name,roll,cgpa"},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"first_Name\"}]}", 1, NULL, "first_Name"},
    {"[1,2]", 0, "not a JSON object", NULL},
    {"{\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"}]}", 0, "'name' must be a DNS label", NULL},
    {"{\"name\":\"Upper\",\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"}]}", 0, "'name' must be a DNS label", NULL},
    {"{\"name\":\"a\",\"fields\":[{\"name\":\"x\"}]}", 0, "'namespace' must be a DNS label", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[]}", 0, "'fields' must be a non-empty array", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\"}", 0, "'fields' must be a non-empty array", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"},{\"name\":\"x\"}]}", 0, "field 'x' appears twice", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"type\":\"string\"}]}", 0, "field 1 has no valid 'name'", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"has space\"}]}", 0, "field 1 has no valid 'name'", NULL},
};

ParameterizedTestParameters(form, parse)
{
    return cr_make_param_array(struct form_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct form_case *c, form, parse)
{
    fp_error err = {0};
    fp_form *f = fp_form_parse(c->json, strlen(c->json), &err);
    if (!c->ok) {
        cr_assert_null(f, "%s should be refused", c->json);
        cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
        return;
    }
    cr_assert_not_null(f, "%s: %s", c->json, err.msg);
    char joined[256] = "";
    for (size_t i = 0; i < f->ncolumns; i++) {
        strcat(joined, i ? "," : "");
        strcat(joined, f->columns[i]);
    }
    cr_assert_str_eq(joined, c->columns);
    fp_form_free(f);
}

Test(form, identity_topic_and_lookup)
{
    const char *json = "{\"name\":\"student-data\",\"namespace\":\"forms\",\"generation\":3,"
                       "\"fields\":[{\"name\":\"name\"},{\"name\":\"roll\"}]}";
    fp_form *f = fp_form_parse(json, strlen(json), NULL);
    cr_assert_not_null(f);
    cr_assert_str_eq(f->ns, "forms");
    cr_assert_str_eq(f->name, "student-data");
    cr_assert_eq(f->generation, 3);
    cr_assert_eq(fp_form_column(f, "roll"), 1);
    cr_assert_eq(fp_form_column(f, "nope"), -1);
    char topic[64];
    cr_assert_eq(fp_form_default_topic(f, topic, sizeof topic), 0);
    cr_assert_str_eq(topic, "forms.forms.student-data");
    cr_assert_eq(fp_form_default_topic(f, topic, 8), FP_ELIMIT);
    fp_form_free(f);
}

Test(form, too_many_fields_is_a_limit_error)
{
    char json[FP_FORM_MAX_FIELDS * 20 + 200];
    strcpy(json, "{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[");
    for (int i = 0; i <= FP_FORM_MAX_FIELDS; i++)
        sprintf(json + strlen(json), "%s{\"name\":\"f%d\"}", i ? "," : "", i);
    strcat(json, "]}");
    fp_error err = {0};
    cr_assert_null(fp_form_parse(json, strlen(json), &err));
    cr_assert_eq(err.code, FP_ELIMIT);
}

Test(form, load_names_the_file)
{
    fp_error err = {0};
    cr_assert_null(fp_form_load("/nonexistent/form.json", &err));
    cr_assert_not_null(strstr(err.msg, "/nonexistent/form.json"), "%s", err.msg);
}
