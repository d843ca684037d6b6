/* Unit tests for services/common/rowstore: row building (column order lives here) and
 * key names. The Redis side is tested in tests/integration/test_rowstore.c. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "rowstore.h"

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
    /* numbers keep their digits (no rounding through a double), escapes stay as sent */
    {"{\"name\":\"\\u00e9\\ud83d\\ude00\",\"cgpa\":12345678901234567890.5e-3,\"roll\":-0.10}", 3,
     "[\"01J\",\"2026-11-23T14:05:27.123Z\",\"\\u00e9\\ud83d\\ude00\",-0.10,12345678901234567890.5e-3,\"\"]", NULL},
    {"{\"name\":{\"nested\":1}}", 0, NULL, "field 'name' is not a string, number or boolean"},
    {"{\"roll\":[1,2]}", 0, NULL, "field 'roll' is not a string, number or boolean"},
};

ParameterizedTestParameters(buffer, row_json)
{
    return cr_make_param_array(struct row_case, row_cases, sizeof row_cases / sizeof row_cases[0]);
}

/* An event around data, parsed; its fields point into e->json. */
typedef struct parsed { char json[1024]; fp_event ev; } parsed;

static void parse_event(parsed *e, const char *id, const char *data)
{
    fp_error err = {0};
    snprintf(e->json, sizeof e->json,
             "{\"specversion\":\"1.0\",\"type\":\"" FP_EVENT_TYPE "\",\"id\":\"%s\",\"source\":\"/forms/a/b\","
             "\"time\":\"2026-11-23T14:05:27.123Z\",\"data\":%s}", id, data);
    cr_assert_eq(fp_event_parse(e->json, strlen(e->json), &e->ev, &err), 0, "%s: %s", data, err.msg);
}

ParameterizedTest(struct row_case *c, buffer, row_json)
{
    parsed e;
    fp_buf out;
    fp_error err = {0};
    size_t matched = 99;
    parse_event(&e, "01J", c->data);
    fp_buf_init(&out, 1 << 20);
    int rc = fp_rowstore_row_append(&out, &e.ev, columns, 4, &matched, &err);
    if (c->want) {
        cr_assert_eq(rc, 0, "%s: %s", c->data, err.msg);
        cr_assert_str_eq(out.data, c->want);
        cr_assert_eq(matched, c->matched, "%s: columns with a value", c->data);
    } else {
        cr_assert_eq(rc, FP_EINVAL, "%s should be refused", c->data);
        cr_assert_eq(out.len, 0);
        cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
    }
    fp_buf_free(&out);
    fp_event_clear(&e.ev);
}

Test(buffer, row_append_adds_after_the_contents_and_restores_them_on_failure)
{
    parsed good, bad;
    fp_buf out;
    fp_error err = {0};
    parse_event(&good, "1", "{\"name\":\"A\"}");
    parse_event(&bad, "2", "{\"roll\":{}}");
    fp_buf_init(&out, 1 << 20);
    cr_assert_eq(fp_buf_adds(&out, "before|"), 0);
    cr_assert_eq(fp_rowstore_row_append(&out, &good.ev, columns, 4, NULL, &err), 0, "%s", err.msg);
    const char *want = "before|[\"1\",\"2026-11-23T14:05:27.123Z\",\"A\",\"\",\"\",\"\"]";
    cr_assert_str_eq(out.data, want);
    size_t len = out.len;
    cr_assert_eq(fp_rowstore_row_append(&out, &bad.ev, columns, 4, NULL, &err), FP_EINVAL);
    cr_assert_str_eq(err.msg, "field 'roll' is not a string, number or boolean");
    cr_assert_eq(out.len, len, "a refused row leaves nothing behind");
    cr_assert_str_eq(out.data, want);

    fp_buf small;
    fp_buf_init(&small, 12);
    cr_assert_eq(fp_rowstore_row_append(&small, &good.ev, columns, 4, NULL, &err), FP_ELIMIT);
    cr_assert_eq(small.len, 0);
    fp_buf_free(&small);
    fp_buf_free(&out);
    fp_event_clear(&good.ev);
    fp_event_clear(&bad.ev);
}

Test(buffer, keys_share_one_hash_tag_per_pipeline)
{
    char k[128];
    cr_assert_eq(fp_rowstore_key(k, sizeof k, "forms", "student-data", "pending"), 0);
    cr_assert_str_eq(k, "fp:{forms/student-data}:pending");
    cr_assert_eq(fp_rowstore_key(k, 16, "forms", "student-data", "pending"), FP_ELIMIT);
}

Test(buffer, names_with_braces_are_refused)
{
    fp_error err = {0};
    cr_assert_null(fp_rowstore_new(NULL, "forms", "a{b", &err));
    cr_assert_eq(err.code, FP_EINVAL);
    cr_assert_null(fp_rowstore_new(NULL, "", "x", &err));
}
