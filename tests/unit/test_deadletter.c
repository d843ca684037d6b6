/* Unit tests for services/common/deadletter: reason codes and dead-letter headers. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "deadletter.h"

struct code_case { fp_deadletter_reason reason; const char *name; };

static struct code_case codes[] = {
    {FP_DEADLETTER_NOT_JSON, "not_json"},
    {FP_DEADLETTER_NOT_CLOUDEVENT, "not_cloudevent"},
    {FP_DEADLETTER_WRONG_SOURCE, "wrong_source"},
    {FP_DEADLETTER_UNKNOWN_FIELD, "unknown_field"},
    {FP_DEADLETTER_REPEATED_FIELD, "repeated_field"},
    {FP_DEADLETTER_BAD_VALUE, "bad_value"},
    {FP_DEADLETTER_TOO_LARGE, "too_large"},
    {FP_DEADLETTER_REJECTED, "rejected"},
    {FP_DEADLETTER_ATTEMPTS_EXHAUSTED, "attempts_exhausted"},
};

ParameterizedTestParameters(deadletter, code_names)
{
    return cr_make_param_array(struct code_case, codes, sizeof codes / sizeof codes[0]);
}

/* Each code has its documented name, and the name parses back to the code. */
ParameterizedTest(struct code_case *c, deadletter, code_names)
{
    fp_deadletter_reason back = FP_DEADLETTER_REASONS;
    fp_error err = {0};
    cr_assert_str_eq(fp_deadletter_reason_name(c->reason), c->name);
    cr_assert_eq(fp_deadletter_reason_parse(c->name, &back, &err), 0, "%s: %s", c->name, err.msg);
    cr_assert_eq(back, c->reason, "%s", c->name);
}

Test(deadletter, every_code_is_in_the_table)
{
    cr_assert_eq(sizeof codes / sizeof codes[0], FP_DEADLETTER_REASONS);
    cr_assert_str_eq(fp_deadletter_reason_name(FP_DEADLETTER_REASONS), "unknown");
}

struct bad_name { const char *name; };
static struct bad_name bad_names[] = {{""}, {"NOT_JSON"}, {"not json"}, {"unknown field 'x'"}, {"not_json "}};

ParameterizedTestParameters(deadletter, bad_code_names)
{
    return cr_make_param_array(struct bad_name, bad_names, sizeof bad_names / sizeof bad_names[0]);
}

ParameterizedTest(struct bad_name *c, deadletter, bad_code_names)
{
    fp_deadletter_reason r;
    fp_error err = {0};
    cr_assert_eq(fp_deadletter_reason_parse(c->name, &r, &err), FP_EINVAL, "'%s' is no code", c->name);
    cr_assert_not_null(strstr(err.msg, "unknown_field"), "the message lists the codes: %s", err.msg);
}

/* An event fp_event_parse refused: not_cloudevent only when it is one strict JSON object. */
struct unparsable { const char *payload; fp_deadletter_reason want; };
static struct unparsable unparsables[] = {
    {"not json", FP_DEADLETTER_NOT_JSON},
    {"", FP_DEADLETTER_NOT_JSON},
    {"[1,2]", FP_DEADLETTER_NOT_JSON},
    {"\"text\"", FP_DEADLETTER_NOT_JSON},
    {"{\"a\":1} {}", FP_DEADLETTER_NOT_JSON},              /* bytes after it */
    {"{\"a\":1,}", FP_DEADLETTER_NOT_JSON},                /* not strict */
    {"{\"specversion\":\"1.0\"}", FP_DEADLETTER_NOT_CLOUDEVENT},
    {"{}", FP_DEADLETTER_NOT_CLOUDEVENT},
    {" {\"id\":7} ", FP_DEADLETTER_NOT_CLOUDEVENT},
};

ParameterizedTestParameters(deadletter, unparsable_reason)
{
    return cr_make_param_array(struct unparsable, unparsables, sizeof unparsables / sizeof unparsables[0]);
}

ParameterizedTest(struct unparsable *c, deadletter, unparsable_reason)
{
    fp_deadletter_reason got = fp_deadletter_unparsable(c->payload, strlen(c->payload));
    cr_assert_eq(got, c->want, "'%s': want %s, got %s", c->payload, fp_deadletter_reason_name(c->want),
                 fp_deadletter_reason_name(got));
}

Test(deadletter, headers_round_trip)
{
    fp_deadletter d = {.reason = FP_DEADLETTER_UNKNOWN_FIELD, .time_ms = 1795442727123LL, .generation = 3,
                       .source_topic = "forms.a.b", .source_partition = 2, .source_offset = 41};
    snprintf(d.message, sizeof d.message, "unknown field 'cgpx' for form generation 3");
    rd_kafka_headers_t *h = fp_deadletter_headers(&d);
    cr_assert_not_null(h);
    const void *v;
    size_t len;
    cr_assert_eq(rd_kafka_header_get_last(h, "formpipe-dlq-reason", &v, &len), 0);
    cr_assert_eq(len, strlen("unknown_field"));
    cr_assert(memcmp(v, "unknown_field", len) == 0, "the reason header is the code");
    cr_assert_eq(rd_kafka_header_get_last(h, "formpipe-dlq-time", &v, &len), 0);
    cr_assert(len == 24 && memcmp(v, "2026-11-23T14:05:27.123Z", len) == 0, "%.*s", (int)len, (const char *)v);
    fp_deadletter back;
    fp_error err = {0};
    cr_assert_eq(fp_deadletter_read(h, &back, &err), 0, "%s", err.msg);
    cr_assert_eq(back.reason, d.reason);
    cr_assert_str_eq(back.message, d.message);
    cr_assert_eq(back.time_ms, d.time_ms);
    cr_assert_eq(back.generation, 3);
    cr_assert_str_eq(back.source_topic, "forms.a.b");
    cr_assert_eq(back.source_partition, 2);
    cr_assert_eq(back.source_offset, 41);
    rd_kafka_headers_destroy(h);
}

/* A header set with one header replaced (value NULL: removed). */
struct read_case { const char *header, *value, *want; };

static struct read_case broken[] = {
    {"formpipe-dlq-reason", NULL, "header formpipe-dlq-reason is missing"},
    {"formpipe-dlq-reason", "event is not valid JSON", "is not one of"},
    {"formpipe-dlq-message", NULL, "header formpipe-dlq-message is missing"},
    {"formpipe-dlq-time", "yesterday", "header formpipe-dlq-time is not an RFC 3339 time"},
    {"formpipe-dlq-form-generation", "-1", "header formpipe-dlq-form-generation is not a non-negative integer"},
    {"formpipe-dlq-form-generation", "3x", "header formpipe-dlq-form-generation is not a non-negative integer"},
    {"formpipe-source-topic", NULL, "header formpipe-source-topic is missing"},
    {"formpipe-source-partition", "9999999999", "header formpipe-source-partition is out of range"},
    {"formpipe-source-offset", "", "header formpipe-source-offset is not a non-negative integer"},
};

ParameterizedTestParameters(deadletter, unreadable_headers)
{
    return cr_make_param_array(struct read_case, broken, sizeof broken / sizeof broken[0]);
}

/* A message not written by formpipe (or damaged) is named by its first bad header;
 * everything else is still read. */
ParameterizedTest(struct read_case *c, deadletter, unreadable_headers)
{
    fp_deadletter d = {.reason = FP_DEADLETTER_NOT_JSON, .time_ms = 1795442727123LL, .generation = 1,
                       .source_topic = "t", .source_partition = 0, .source_offset = 7};
    snprintf(d.message, sizeof d.message, "event is not a JSON object");
    rd_kafka_headers_t *h = fp_deadletter_headers(&d);
    cr_assert_not_null(h);
    rd_kafka_header_remove(h, c->header);
    if (c->value)
        rd_kafka_header_add(h, c->header, -1, c->value, -1);
    fp_deadletter back;
    fp_error err = {0};
    cr_assert_eq(fp_deadletter_read(h, &back, &err), FP_EINVAL, "%s=%s", c->header, c->value);
    cr_assert_not_null(strstr(err.msg, c->want), "'%s' lacks '%s'", err.msg, c->want);
    if (strcmp(c->header, "formpipe-source-offset") != 0)
        cr_assert_eq(back.source_offset, 7, "the other headers are still read");
    rd_kafka_headers_destroy(h);
}

Test(deadletter, no_headers_at_all)
{
    fp_deadletter back;
    fp_error err = {0};
    cr_assert_eq(fp_deadletter_read(NULL, &back, &err), FP_EINVAL);
    cr_assert_str_eq(err.msg, "header formpipe-dlq-reason is missing");
    cr_assert_eq(back.reason, FP_DEADLETTER_REASONS);
    cr_assert_eq(back.source_partition, -1);
}
