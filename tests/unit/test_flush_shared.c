/* Shared-mode flushing: a pipeline's "shared.sheets" settings from its form file. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "shared.h"

struct case_ {
    const char *sheets;      /* the shared.sheets object, or a whole "shared" member when it starts with '!' */
    int ok;
    const char *says;        /* part of the error, or what the first field parsed to */
};

static struct case_ cases[] = {
    {"{\"spreadsheetIds\":[\"s1\",\"s2\"],\"sheet\":\"Tab\",\"batchRows\":100,\"credentials\":\"sa/key.json\"}", 1, "s1"},
    {"{\"spreadsheetIds\":[\"s1\"],\"credentials\":\"sa/key.json\"}", 1, "s1"},   /* defaults: Responses, 5000 */
    {"{\"spreadsheetIds\":[],\"credentials\":\"sa/key.json\"}", 0, "spreadsheetIds is missing or empty"},
    {"{\"credentials\":\"sa/key.json\"}", 0, "spreadsheetIds is missing or empty"},
    {"{\"spreadsheetIds\":[\"\"],\"credentials\":\"sa/key.json\"}", 0, "non-empty strings"},
    {"{\"spreadsheetIds\":[1],\"credentials\":\"sa/key.json\"}", 0, "non-empty strings"},
    {"{\"spreadsheetIds\":[\"s\"],\"batchRows\":0,\"credentials\":\"sa/key.json\"}", 0, "batchRows"},
    {"{\"spreadsheetIds\":[\"s\"],\"batchRows\":\"9\",\"credentials\":\"sa/key.json\"}", 0, "batchRows"},
    {"{\"spreadsheetIds\":[\"s\"]}", 0, "credentials is missing"},
    {"{\"spreadsheetIds\":[\"s\"],\"credentials\":\"/etc/shadow\"}", 0, "inside the credentials directory"},
    {"{\"spreadsheetIds\":[\"s\"],\"credentials\":\"../other/key.json\"}", 0, "inside the credentials directory"},
    {"{\"spreadsheetIds\":[\"s\"],\"credentials\":\"sa/../../key.json\"}", 0, "inside the credentials directory"},
    {"{\"spreadsheetIds\":[\"s\"],\"credentials\":\"sa/..\"}", 0, "inside the credentials directory"},
    {"{\"spreadsheetIds\":[\"s\"],\"credentials\":\"..\"}", 0, "inside the credentials directory"},
    {"!{}", 0, "no shared.sheets object"},
};

ParameterizedTestParameters(shared, sheets_settings)
{
    return cr_make_param_array(struct case_, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct case_ *c, shared, sheets_settings)
{
    char text[1024];
    if (c->sheets[0] == '!')
        snprintf(text, sizeof text, "{\"name\":\"f\",\"shared\":%s}", c->sheets + 1);
    else
        snprintf(text, sizeof text, "{\"name\":\"f\",\"shared\":{\"sheets\":%s}}", c->sheets);
    cJSON *form = cJSON_Parse(text);
    cr_assert_not_null(form, "%s", text);
    fp_shared_sheets s;
    fp_error err = {0};
    int rc = fp_shared_sheets_parse(form, &s, &err);
    if (c->ok) {
        cr_assert_eq(rc, 0, "%s: %s", c->sheets, err.msg);
        cr_assert_str_eq(s.ids[0], c->says);
        cr_assert(s.nids >= 1);
        cr_assert_str_eq(s.credentials, "sa/key.json");
    } else {
        cr_assert_eq(rc, FP_EINVAL, "%s", c->sheets);
        cr_assert_not_null(strstr(err.msg, c->says), "%s: '%s' should say '%s'", c->sheets, err.msg, c->says);
    }
    cJSON_Delete(form);
}

Test(shared, sheets_defaults)
{
    cJSON *form = cJSON_Parse("{\"shared\":{\"sheets\":{\"spreadsheetIds\":[\"a\",\"b\"],\"credentials\":\"s/k\"}}}");
    fp_shared_sheets s;
    fp_error err = {0};
    cr_assert_eq(fp_shared_sheets_parse(form, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.nids, 2);
    cr_assert_str_eq(s.ids[1], "b");
    cr_assert_str_eq(s.sheet, "Responses");
    cr_assert_eq(s.batch_rows, 5000);
    cJSON_Delete(form);
}
