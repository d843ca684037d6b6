/* Unit tests for services/common/jscan: the strict, allocation-free JSON reader. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "jscan.h"

struct value_case {
    const char *text;
    int ok;
    fp_jscan_kind kind;
    const char *span;   /* the token's text when ok, else a substring of why */
};

static struct value_case values[] = {
    {"\"plain\"", 1, FP_JSCAN_STRING, "plain"},
    {"  \"\"  ", 1, FP_JSCAN_STRING, ""},
    {"\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\"", 1, FP_JSCAN_STRING, "a\\\"b\\\\c\\/\\b\\f\\n\\r\\t"},
    {"\"\\u00e9\\uD83D\\uDE00\"", 1, FP_JSCAN_STRING, "\\u00e9\\uD83D\\uDE00"},
    {"\"é€😀\"", 1, FP_JSCAN_STRING, "é€😀"},
    {"0", 1, FP_JSCAN_NUMBER, "0"},
    {"-0.5e+10", 1, FP_JSCAN_NUMBER, "-0.5e+10"},
    {"123456789012345678901234567890", 1, FP_JSCAN_NUMBER, "123456789012345678901234567890"},
    {"true", 1, FP_JSCAN_TRUE, "true"},
    {"false", 1, FP_JSCAN_FALSE, "false"},
    {"null", 1, FP_JSCAN_NULL, "null"},
    {"{\"a\":[1,{\"b\":null}],\"c\":\"}\"}", 1, FP_JSCAN_OBJECT, "{\"a\":[1,{\"b\":null}],\"c\":\"}\"}"},
    {"[ ]", 1, FP_JSCAN_ARRAY, "[ ]"},
    /* what is refused, and the reason given */
    {"\"open", 0, 0, "unterminated string"},
    {"\"tab\there\"", 0, 0, "control character"},
    {"\"\\x\"", 0, 0, "invalid escape"},
    {"\"\\u12\"", 0, 0, "invalid escape"},
    {"\"\\uDE00\"", 0, 0, "lone surrogate"},
    {"\"\\uD83Dx\"", 0, 0, "lone surrogate"},
    {"\"\xc3\"", 0, 0, "invalid UTF-8"},
    {"\"\xc0\xaf\"", 0, 0, "invalid UTF-8"},          /* overlong '/' */
    {"\"\xed\xa0\x80\"", 0, 0, "invalid UTF-8"},      /* an encoded surrogate */
    {"\"\xf4\x90\x80\x80\"", 0, 0, "invalid UTF-8"},  /* past U+10FFFF */
    {"01", 0, 0, "text after the value"},
    {"1.", 0, 0, "invalid number"},
    {"-", 0, 0, "invalid number"},
    {"1e", 0, 0, "invalid number"},
    {"+1", 0, 0, "unexpected character"},
    {"tru", 0, 0, "unexpected character"},
    {"{\"a\" 1}", 0, 0, "expected ':'"},
    {"{\"a\":1,}", 0, 0, "expected a member name"},
    {"[1,]", 0, 0, "unexpected character"},
    {"[1 2]", 0, 0, "expected ',' or ']'"},
    {"{\"a\":1", 0, 0, "expected ',' or '}'"},
    {"", 0, 0, "unexpected end"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 0, 0, "nesting too deep"},
};

ParameterizedTestParameters(jscan, values_are_read_or_refused_with_a_reason)
{
    return cr_make_param_array(struct value_case, values, sizeof values / sizeof values[0]);
}

ParameterizedTest(struct value_case *c, jscan, values_are_read_or_refused_with_a_reason)
{
    fp_jscan s;
    fp_jscan_token t;
    fp_jscan_init(&s, c->text, strlen(c->text));
    int rc = fp_jscan_value(&s, &t);
    if (!rc)
        rc = fp_jscan_finish(&s);
    if (c->ok) {
        cr_assert_eq(rc, 0, "%s: %s", c->text, s.why);
        cr_assert_eq(t.kind, c->kind, "%s", c->text);
        cr_assert_eq(t.len, strlen(c->span), "%s", c->text);
        cr_assert(!memcmp(t.text, c->span, t.len), "%s", c->text);
    } else {
        cr_assert_eq(rc, -1, "%s should be refused", c->text);
        cr_assert_not_null(strstr(s.why, c->span), "'%s' not in '%s'", c->span, s.why);
    }
}

struct decode_case { const char *text; const char *want; };

static struct decode_case decodes[] = {
    {"\"plain\"", "plain"},
    {"\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "a\"b\\c/d\b\f\n\r\t"},
    {"\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"", "Aé€😀"},
    {"\"é\"", "é"},
};

ParameterizedTestParameters(jscan, strings_decode)
{
    return cr_make_param_array(struct decode_case, decodes, sizeof decodes / sizeof decodes[0]);
}

ParameterizedTest(struct decode_case *c, jscan, strings_decode)
{
    fp_jscan s;
    fp_jscan_token t;
    char out[64];
    fp_jscan_init(&s, c->text, strlen(c->text));
    cr_assert_eq(fp_jscan_value(&s, &t), 0, "%s", s.why);
    cr_assert_eq(fp_jscan_unescape(&t, out, sizeof out), (long)strlen(c->want));
    cr_assert_str_eq(out, c->want);
    cr_assert(fp_jscan_equals(&t, c->want), "%s equals its decoding", c->text);
    cr_assert_eq(fp_jscan_unescape(&t, out, strlen(c->want)), -1, "one byte short does not fit");
}

Test(jscan, equals_compares_decoded_text)
{
    fp_jscan s;
    fp_jscan_token t;
    const char *text = "\"n\\u0061me\"";
    fp_jscan_init(&s, text, strlen(text));
    cr_assert_eq(fp_jscan_value(&s, &t), 0);
    cr_assert(fp_jscan_equals(&t, "name"));
    cr_assert(!fp_jscan_equals(&t, "nam"));
    cr_assert(!fp_jscan_equals(&t, "names"));
    cr_assert(!fp_jscan_equals(&t, "nbme"));
}

Test(jscan, objects_are_walked_member_by_member)
{
    const char *text = " { \"a\" : 1 , \"b\" : [true] } ";
    fp_jscan s;
    fp_jscan_token name, value;
    fp_jscan_init(&s, text, strlen(text));
    cr_assert_eq(fp_jscan_expect(&s, '{'), 0);
    cr_assert_eq(fp_jscan_name(&s, &name), 0);
    cr_assert(fp_jscan_equals(&name, "a"));
    cr_assert_eq(fp_jscan_value(&s, &value), 0);
    cr_assert_eq(value.kind, FP_JSCAN_NUMBER);
    cr_assert(fp_jscan_accept(&s, ','));
    cr_assert_eq(fp_jscan_name(&s, &name), 0);
    cr_assert(fp_jscan_equals(&name, "b"));
    cr_assert_eq(fp_jscan_value(&s, &value), 0);
    cr_assert_eq(value.kind, FP_JSCAN_ARRAY);
    cr_assert_eq(value.len, 6);
    cr_assert(!fp_jscan_accept(&s, ','));
    cr_assert_eq(fp_jscan_expect(&s, '}'), 0);
    cr_assert_eq(fp_jscan_finish(&s), 0);
}
