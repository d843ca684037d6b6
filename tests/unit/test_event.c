/* Unit tests for services/common/event: CloudEvents encoding and parsing. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"


Test(event, encode_then_parse_round_trips)
{
    cJSON *data = cJSON_Parse("{\"name\":\"Asha \\\"A\\\"\",\"cgpa\":9.5,\"ok\":true}");
    char *json = fp_event_encode("01JDX", "forms", "student-data", 1795442727123LL, 3, data);
    cr_assert_not_null(json);
    fp_event ev;
    fp_error err = {0};
    cr_assert_eq(fp_event_parse(json, strlen(json), &ev, &err), 0, "%s: %s", json, err.msg);
    cr_assert_str_eq(ev.id, "01JDX");
    cr_assert_str_eq(ev.source, "/forms/forms/student-data");
    cr_assert_str_eq(ev.time, "2026-11-23T14:05:27.123Z");
    cr_assert_eq(ev.time_ms, 1795442727123LL);
    cr_assert_eq(ev.generation, 3);
    cr_assert_eq(ev.nfields, 3, "data's members, in order");
    cr_assert_str_eq(ev.fields[0].name, "name");
    cr_assert_eq(ev.fields[0].value.kind, FP_JSCAN_STRING);
    char name[32];
    cr_assert_eq(fp_jscan_unescape(&ev.fields[0].value, name, sizeof name), 8);
    cr_assert_str_eq(name, "Asha \"A\"");
    cr_assert_str_eq(ev.fields[1].name, "cgpa");
    cr_assert_eq(ev.fields[1].value.kind, FP_JSCAN_NUMBER);
    cr_assert_eq(ev.fields[1].value.len, 3);
    cr_assert(!strncmp(ev.fields[1].value.text, "9.5", 3));
    cr_assert_str_eq(ev.fields[2].name, "ok");
    cr_assert_eq(ev.fields[2].value.kind, FP_JSCAN_TRUE);
    cJSON *doc = cJSON_Parse(json);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(doc, "specversion")->valuestring, "1.0");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(doc, "type")->valuestring, FP_EVENT_TYPE);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(doc, "datacontenttype")->valuestring, "application/json");
    cJSON_Delete(doc);
    fp_event_clear(&ev);
    free(json);
    cJSON_Delete(data);
}

struct bad_case { const char *json; const char *msg; };

#define OK_HEAD "\"specversion\":\"1.0\",\"type\":\"io.formpipe.submission.v1\",\"source\":\"/forms/a/b\""
static struct bad_case bad[] = {
    {"nope", "not a JSON object"},
    {"[]", "not a JSON object"},
    {"{\"specversion\":\"0.3\"}", "specversion"},
    {"{\"specversion\":\"1.0\",\"type\":\"other\"}", "type is not"},
    {"{" OK_HEAD ",\"time\":\"2026-11-23T14:05:27Z\",\"data\":{}}", "id is missing"},
    {"{" OK_HEAD ",\"id\":\"\",\"time\":\"2026-11-23T14:05:27Z\",\"data\":{}}", "id is missing"},
    {"{" OK_HEAD ",\"id\":\"x\",\"data\":{}}", "time is missing or not RFC 3339"},
    {"{" OK_HEAD ",\"id\":\"x\",\"time\":\"yesterday\",\"data\":{}}", "time is missing or not RFC 3339"},
    {"{" OK_HEAD ",\"id\":\"x\",\"time\":\"2026-11-23T14:05:27Z\"}", "data is not an object"},
    {"{" OK_HEAD ",\"id\":\"x\",\"time\":\"2026-11-23T14:05:27Z\",\"data\":[1]}", "data is not an object"},
    {"{\"specversion\":\"1.0\",\"type\":\"io.formpipe.submission.v1\",\"id\":\"x\",\"time\":\"2026-11-23T14:05:27Z\",\"data\":{}}", "source"},
    {"{" OK_HEAD ",\"id\":\"x\",\"time\":\"2026-11-23T14:05:27Z\",\"data\":{}} x", "not valid JSON: text after the value"},
    {"{" OK_HEAD ",\"id\":\"x\",\"time\":\"2026-11-23T14:05:27Z\",\"data\":{\"a\":\"\xff\"}}", "invalid UTF-8"},
    {"{" OK_HEAD ",\"id\":\"x\",\"time\":\"2026-11-23T14:05:27Z\",\"data\":{\"a\":1,}}", "expected a member name"},
    {"{" OK_HEAD ",\"id\":\"x\",\"id\":\"y\",\"time\":\"2026-11-23T14:05:27Z\",\"data\":{}}", "member id appears twice"},
    {"{" OK_HEAD ",\"id\":\"x\",\"time\":\"2026-11-23T14:05:27Z\",\"formgeneration\":1.5,\"data\":{}}", "formgeneration is not an integer"},
    {"{" OK_HEAD ",\"id\":7,\"time\":\"2026-11-23T14:05:27Z\",\"data\":{}}", "id is missing"},
    {"{" OK_HEAD ",\"id\":\"x\",\"time\":\"2026-11-23T14:05:27Z\",\"data\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", "nesting too deep"},
};

ParameterizedTestParameters(event, bad_events_name_the_problem)
{
    return cr_make_param_array(struct bad_case, bad, sizeof bad / sizeof bad[0]);
}

ParameterizedTest(struct bad_case *c, event, bad_events_name_the_problem)
{
    fp_event ev;
    fp_error err = {0};
    cr_assert_eq(fp_event_parse(c->json, strlen(c->json), &ev, &err), FP_EINVAL, "%s", c->json);
    cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
    fp_event_clear(&ev);
}


Test(event, extension_attributes_whitespace_and_escaped_names)
{
    const char *json = " { \"specversion\" : \"1.0\" , \"x-trace\" : {\"a\":[1,2]}, \"type\":\"io.formpipe.submission.v1\","
                       "\"id\":\"01J\",\"source\":\"/forms/a/b\",\"time\":\"2026-11-23T14:05:27Z\",\"formgeneration\":12,"
                       "\"data\":{\"n\\u0061me\":\"A\",\"age\":null} } ";
    fp_event ev;
    fp_error err = {0};
    cr_assert_eq(fp_event_parse(json, strlen(json), &ev, &err), 0, "%s", err.msg);
    cr_assert_eq(ev.generation, 12);
    cr_assert_eq(ev.nfields, 2);
    cr_assert_str_eq(ev.fields[0].name, "name");
    cr_assert_str_eq(ev.fields[1].name, "age");
    cr_assert_eq(ev.fields[1].value.kind, FP_JSCAN_NULL);
    fp_event_clear(&ev);
}

Test(event, member_names_are_case_sensitive)
{
    /* "Data" and "ID" are extension attributes, not data and id (found by fuzz.event: its
     * check looked data up with cJSON's case-insensitive cJSON_GetObjectItem) */
    const char *json = "{\"Data\":{\"x\":1,\"y\":2},\"ID\":5," OK_HEAD ",\"id\":\"k\",\"time\":\"2026-11-23T14:05:27Z\","
                       "\"data\":{\"a\":\"b\"}}";
    fp_event ev;
    fp_error err = {0};
    cr_assert_eq(fp_event_parse(json, strlen(json), &ev, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ev.id, "k");
    cr_assert_eq(ev.nfields, 1);
    cr_assert_str_eq(ev.fields[0].name, "a");
    fp_event_clear(&ev);
}

Test(event, source_names_the_pipeline_it_was_encoded_for)
{
    cJSON *data = cJSON_Parse("{}");
    char *json = fp_event_encode("01J", "forms", "student-data", 0, 1, data);
    fp_event ev;
    fp_error err = {0};
    cr_assert_eq(fp_event_parse(json, strlen(json), &ev, &err), 0, "%s", err.msg);
    cr_assert(fp_event_source_is(&ev, "forms", "student-data"));
    cr_assert(!fp_event_source_is(&ev, "forms", "student"));
    cr_assert(!fp_event_source_is(&ev, "forms", "student-data2"));
    cr_assert(!fp_event_source_is(&ev, "form", "s/student-data"), "the namespace ends at the slash");
    cr_assert(!fp_event_source_is(&ev, "other", "student-data"));
    fp_event_clear(&ev);
    free(json);
    cJSON_Delete(data);
}
