/* Unit tests for services/consumer/triage: which Kafka message becomes which row, and
 * which becomes a dead letter with which reason code. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "triage.h"

#define FORM "{\"name\":\"f\",\"namespace\":\"ns\",\"generation\":2,\"fields\":[" \
             "{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"cgpa\",\"type\":\"number\"}]}"
#define HEAD "\"specversion\":\"1.0\",\"type\":\"io.formpipe.submission.v1\",\"id\":\"e1\"," \
             "\"time\":\"2026-11-23T14:05:27.123Z\""
#define OURS HEAD ",\"source\":\"/forms/ns/f\""

/* ROW: the message becomes want (the row); else the dead letter's code, and want is
 * a part of its message. */
enum { ROW = -1 };
struct case_ { const char *payload; int reason; const char *want; };

static struct case_ cases[] = {
    {"{" OURS ",\"data\":{\"name\":\"Asha\",\"cgpa\":9.5}}", ROW, "[\"e1\",\"2026-11-23T14:05:27.123Z\",\"Asha\",9.5]"},
    {"{" OURS ",\"data\":{\"cgpa\":7}}", ROW, "[\"e1\",\"2026-11-23T14:05:27.123Z\",\"\",7]"},
    {"{" OURS ",\"formgeneration\":2,\"data\":{}}", ROW, "[\"e1\",\"2026-11-23T14:05:27.123Z\",\"\",\"\"]"},
    {"this is not json", FP_DEADLETTER_NOT_JSON, "not a JSON object"},
    {"", FP_DEADLETTER_NOT_JSON, "not a JSON object"},
    {"[1,2]", FP_DEADLETTER_NOT_JSON, "not a JSON object"},
    {"{\"a\":1", FP_DEADLETTER_NOT_JSON, "not valid JSON"},
    {"{" OURS ",\"data\":{\"name\":\"\xff\"}}", FP_DEADLETTER_NOT_JSON, "not valid JSON"},
    {"{" OURS ",\"data\":{}} trailing", FP_DEADLETTER_NOT_JSON, "not valid JSON"},
    {"{}", FP_DEADLETTER_NOT_CLOUDEVENT, "specversion"},
    {"{\"specversion\":\"0.3\"}", FP_DEADLETTER_NOT_CLOUDEVENT, "specversion"},
    {"{" OURS ",\"data\":[1]}", FP_DEADLETTER_NOT_CLOUDEVENT, "data is not an object"},
    {"{" OURS ",\"formgeneration\":\"2\",\"data\":{}}", FP_DEADLETTER_NOT_CLOUDEVENT, "formgeneration"},
    /* a repeated envelope member named source is not a wrong source (the old strstr did say so) */
    {"{" OURS ",\"source\":\"/forms/ns/f\",\"data\":{}}", FP_DEADLETTER_NOT_CLOUDEVENT, "member source appears twice"},
    {"{" HEAD ",\"data\":{}}", FP_DEADLETTER_NOT_CLOUDEVENT, "source is missing"},
    {"{" HEAD ",\"source\":\"/forms/ns/other\",\"data\":{}}", FP_DEADLETTER_WRONG_SOURCE, "source /forms/ns/other is not this pipeline"},
    {"{" HEAD ",\"source\":\"/forms/ns2/f\",\"data\":{}}", FP_DEADLETTER_WRONG_SOURCE, "(/forms/ns/f)"},
    {"{" OURS ",\"data\":{\"name\":\"A\",\"cgpx\":1}}", FP_DEADLETTER_UNKNOWN_FIELD, "unknown field 'cgpx' for form generation 2"},
    /* a field written twice was filed as unknown_field by the old strstr */
    {"{" OURS ",\"data\":{\"name\":\"A\",\"name\":\"B\"}}", FP_DEADLETTER_REPEATED_FIELD, "field 'name' appears twice"},
    {"{" OURS ",\"data\":{\"name\":{\"first\":\"A\"}}}", FP_DEADLETTER_BAD_VALUE, "field 'name' is not a string, number or boolean"},
    {"{" OURS ",\"data\":{\"cgpa\":[9]}}", FP_DEADLETTER_BAD_VALUE, "field 'cgpa'"},
};

ParameterizedTestParameters(triage, messages)
{
    return cr_make_param_array(struct case_, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct case_ *c, triage, messages)
{
    fp_error err = {0};
    fp_form *form = fp_form_parse(FORM, strlen(FORM), &err);
    cr_assert_not_null(form, "%s", err.msg);
    fp_event ev;
    fp_triage t = {.reason = FP_DEADLETTER_REASONS};
    fp_buf text;
    fp_buf_init(&text, 1 << 20);
    cr_assert_eq(fp_buf_adds(&text, "before"), 0);
    cr_assert_eq(fp_buf_add(&text, "", 1), 0);
    size_t before = text.len;
    int rc = fp_triage_event(form, c->payload, strlen(c->payload), &ev, &t);
    if (rc == 0)
        rc = fp_triage_row(form, &ev, &text, &t);
    if (c->reason == ROW) {
        cr_assert_eq(rc, 0, "%s: dead-lettered as %s: %s", c->payload, fp_deadletter_reason_name(t.reason), t.message);
        cr_assert_str_eq(text.data + before, c->want);
        cr_assert_eq(text.len, before + strlen(c->want) + 1, "the row ends with its NUL");
    } else {
        cr_assert_eq(rc, FP_EINVAL, "%s should be a dead letter", c->payload);
        cr_assert_str_eq(fp_deadletter_reason_name(t.reason), fp_deadletter_reason_name(c->reason), "%s: %s",
                         c->payload, t.message);
        cr_assert_not_null(strstr(t.message, c->want), "'%s' lacks '%s'", t.message, c->want);
        cr_assert_eq(text.len, before, "a dead letter leaves no row text behind");
        cr_assert_str_eq(text.data, "before");
    }
    fp_event_clear(&ev);
    fp_buf_free(&text);
    fp_form_free(form);
}

/* A row that does not fit the batch's text is too_large, not out of memory. */
Test(triage, a_row_over_the_text_limit_is_too_large)
{
    fp_error err = {0};
    fp_form *form = fp_form_parse(FORM, strlen(FORM), &err);
    cr_assert_not_null(form, "%s", err.msg);
    const char *payload = "{" OURS ",\"data\":{\"name\":\"a rather long name\"}}";
    fp_event ev;
    fp_triage t;
    fp_buf text;
    fp_buf_init(&text, 16);
    cr_assert_eq(fp_triage_event(form, payload, strlen(payload), &ev, &t), 0, "%s", t.message);
    cr_assert_eq(fp_triage_row(form, &ev, &text, &t), FP_EINVAL);
    cr_assert_str_eq(fp_deadletter_reason_name(t.reason), "too_large");
    cr_assert_not_null(strstr(t.message, "larger"), "%s", t.message);
    cr_assert_eq(text.len, 0);
    fp_event_clear(&ev);
    fp_buf_free(&text);
    fp_form_free(form);
}
