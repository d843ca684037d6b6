/* Unit tests for services/common/buffer: row building (column order lives here) and
 * key names. The Redis side is tested in tests/integration/test_buffer.c. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"

struct row_case {
    const char *data;   /* event "data" object */
    size_t matched;     /* columns present in data */
    const char *want;   /* row JSON, or NULL for an error */
    const char *msg;    /* substring of the error */
};

static const char *const columns[] = {"name", "roll", "cgpa", "consent"};

static struct row_case row_cases[] = {
    {"{\"name\":\"Asha\",\"roll\":\"42\",\"cgpa\":9.5,\"consent\":true}", 4,
     "[\"01J\",\"2026-11-23T14:05:27.123Z\",\"Asha\",\"42\",9.5,true]", NULL},
    /* order of the data object does not matter; the column order does */
    {"{\"consent\":false,\"cgpa\":7,\"roll\":\"1\",\"name\":\"B\"}", 4,
     "[\"01J\",\"2026-11-23T14:05:27.123Z\",\"B\",\"1\",7,false]", NULL},
    /* partly in column order, partly not */
    {"{\"name\":\"D\",\"consent\":true,\"roll\":\"2\",\"cgpa\":8}", 4,
     "[\"01J\",\"2026-11-23T14:05:27.123Z\",\"D\",\"2\",8,true]", NULL},
    /* escaping: quotes, backslashes, controls, non-ASCII kept as UTF-8 */
    {"{\"name\":\"a\\\"b\\\\c\\td\\u0001é\"}", 1,
     "[\"01J\",\"2026-11-23T14:05:27.123Z\",\"a\\\"b\\\\c\\td\\u0001é\",\"\",\"\",\"\"]", NULL},
    /* missing and null become empty cells; extra fields are not columns */
    {"{\"name\":\"C\",\"cgpa\":null,\"extra\":\"x\"}", 2,
     "[\"01J\",\"2026-11-23T14:05:27.123Z\",\"C\",\"\",\"\",\"\"]", NULL},
    /* a value that looks like a formula stays a plain string */
    {"{\"name\":\"=HYPERLINK(\\\"x\\\")\"}", 1,
     "[\"01J\",\"2026-11-23T14:05:27.123Z\",\"=HYPERLINK(\\\"x\\\")\",\"\",\"\",\"\"]", NULL},
    {"{\"name\":{\"nested\":1}}", 0, NULL, "field 'name' is not a string, number or boolean"},
    {"{\"roll\":[1,2]}", 0, NULL, "field 'roll' is not a string, number or boolean"},
};

ParameterizedTestParameters(buffer, row_json)
{
    return cr_make_param_array(struct row_case, row_cases, sizeof row_cases / sizeof row_cases[0]);
}

ParameterizedTest(struct row_case *c, buffer, row_json)
{
    cJSON *data = cJSON_Parse(c->data);
    cr_assert_not_null(data);
    fp_error err = {0};
    size_t matched = 99;
    char *row = fp_buffer_row_json("01J", "2026-11-23T14:05:27.123Z", data, columns, 4, &matched, &err);
    if (c->want) {
        cr_assert_not_null(row, "%s: %s", c->data, err.msg);
        cr_assert_str_eq(row, c->want);
        cr_assert_eq(matched, c->matched, "%s: columns with a value", c->data);
    } else {
        cr_assert_null(row, "%s should be refused", c->data);
        cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
    }
    free(row);
    cJSON_Delete(data);
}

Test(buffer, row_append_adds_after_the_contents_and_restores_them_on_failure)
{
    fp_buf out;
    fp_error err = {0};
    fp_buf_init(&out, 1 << 20);
    cr_assert_eq(fp_buf_adds(&out, "before|"), 0);
    cJSON *good = cJSON_Parse("{\"name\":\"A\"}"), *bad = cJSON_Parse("{\"roll\":{}}");
    cr_assert_eq(fp_buffer_row_append(&out, "1", "t", good, columns, 4, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(out.data, "before|[\"1\",\"t\",\"A\",\"\",\"\",\"\"]");
    size_t len = out.len;
    cr_assert_eq(fp_buffer_row_append(&out, "2", "t", bad, columns, 4, NULL, &err), FP_EINVAL);
    cr_assert_str_eq(err.msg, "field 'roll' is not a string, number or boolean");
    cr_assert_eq(out.len, len, "a refused row leaves nothing behind");
    cr_assert_str_eq(out.data, "before|[\"1\",\"t\",\"A\",\"\",\"\",\"\"]");

    fp_buf small;
    fp_buf_init(&small, 12);
    cr_assert_eq(fp_buffer_row_append(&small, "1", "t", good, columns, 4, NULL, &err), FP_ELIMIT);
    cr_assert_eq(small.len, 0);
    fp_buf_free(&small);
    fp_buf_free(&out);
    cJSON_Delete(good);
    cJSON_Delete(bad);
}

Test(buffer, keys_share_one_hash_tag_per_pipeline)
{
    char k[128];
    cr_assert_eq(fp_buffer_key(k, sizeof k, "forms", "student-data", "pending"), 0);
    cr_assert_str_eq(k, "fp:{forms/student-data}:pending");
    cr_assert_eq(fp_buffer_key(k, 16, "forms", "student-data", "pending"), FP_ELIMIT);
}

Test(buffer, names_with_braces_are_refused)
{
    fp_error err = {0};
    cr_assert_null(fp_buffer_new(NULL, "forms", "a{b", &err));
    cr_assert_eq(err.code, FP_EINVAL);
    cr_assert_null(fp_buffer_new(NULL, "", "x", &err));
}
