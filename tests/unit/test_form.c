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
    /* columns: append-only, a removed field keeps its place */
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"},{\"name\":\"z\"}],"
     "\"columns\":[\"x\",\"y\",\"z\"]}", 1, NULL, "x,y,z"},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"z\"},{\"name\":\"x\"}],"
     "\"columns\":[\"x\",\"z\"]}", 1, NULL, "x,z"},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"},{\"name\":\"w\"}],"
     "\"columns\":[\"x\"]}", 0, "field 'w' has no column in 'columns'", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"}],\"columns\":[\"x\",\"x\"]}", 0,
     "column 'x' appears twice", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"}],\"columns\":[\"x\",3]}", 0,
     "column 2 is not a valid field name", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"}],\"columns\":\"x\"}", 0,
     "'columns' must be an array", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"}],\"topic\":\"no spaces\"}", 0,
     "'topic' must be 1-249 of [a-zA-Z0-9._-]", NULL},
    {"{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"x\"}],\"topic\":\"\"}", 0,
     "'topic' must be 1-249", NULL},
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
    cr_assert_eq(fp_form_topic(f, topic, sizeof topic), 0);
    cr_assert_str_eq(topic, "forms.forms.student-data");
    cr_assert_eq(fp_form_topic(f, topic, 8), FP_ELIMIT);
    fp_form_free(f);
}

Test(form, topic_from_the_definition)
{
    const char *json = "{\"name\":\"a\",\"namespace\":\"b\",\"topic\":\"forms.b.custom_1\","
                       "\"fields\":[{\"name\":\"x\"}]}";
    fp_form *f = fp_form_parse(json, strlen(json), NULL);
    cr_assert_not_null(f);
    char topic[64];
    cr_assert_eq(fp_form_topic(f, topic, sizeof topic), 0);
    cr_assert_str_eq(topic, "forms.b.custom_1");
    fp_form_free(f);
}

Test(form, too_many_columns_is_a_limit_error)
{
    static char json[FP_FORM_MAX_COLUMNS * 12 + 200];
    strcpy(json, "{\"name\":\"a\",\"namespace\":\"b\",\"fields\":[{\"name\":\"c0\"}],\"columns\":[");
    for (int i = 0; i <= FP_FORM_MAX_COLUMNS; i++)
        sprintf(json + strlen(json), "%s\"c%d\"", i ? "," : "", i);
    strcat(json, "]}");
    fp_error err = {0};
    cr_assert_null(fp_form_parse(json, strlen(json), &err));
    cr_assert_eq(err.code, FP_ELIMIT);
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
