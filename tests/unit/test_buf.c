/* Unit tests for services/common/buf: capped growth and JSON string escaping. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "error.h"

Test(buf, grows_until_the_cap_and_refuses_past_it)
{
    fp_buf b;
    fp_buf_init(&b, 10);
    cr_assert_eq(fp_buf_adds(&b, "hello"), 0);
    cr_assert_eq(fp_buf_adds(&b, "world"), 0);
    cr_assert_eq(b.len, 10);
    cr_assert_eq(fp_buf_adds(&b, "!"), FP_ELIMIT, "the 11th byte must be refused");
    cr_assert_str_eq(b.data, "helloworld", "a refused append leaves the contents alone");
    cr_assert_eq(fp_buf_printf(&b, "%d", 1), FP_ELIMIT);
    fp_buf_free(&b);
}

Test(buf, printf_and_take)
{
    fp_buf b;
    fp_buf_init(&b, 1 << 20);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(fp_buf_printf(&b, "%04d,", i), 0);
    cr_assert_eq(b.len, 5000);
    char *s = fp_buf_take(&b);
    cr_assert_eq(strncmp(s, "0000,0001,", 10), 0);
    cr_assert_eq(strcmp(s + 4995, "0999,"), 0);
    cr_assert_null(b.data, "take leaves the buffer empty");
    free(s);
    s = fp_buf_take(&b);
    cr_assert_str_eq(s, "", "taking an empty buffer gives an empty string");
    free(s);
}

Test(buf, reset_keeps_memory)
{
    fp_buf b;
    fp_buf_init(&b, 100);
    fp_buf_adds(&b, "abc");
    char *p = b.data;
    fp_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(b.data, p);
    fp_buf_free(&b);
}

struct esc_case { const char *in; size_t len; const char *out; };

static struct esc_case esc_cases[] = {
    {"plain", 5, "plain"},
    {"a\"b\\c", 5, "a\\\"b\\\\c"},
    {"line\nbreak\ttab\r", 15, "line\\nbreak\\ttab\\r"},
    {"\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f"},
    {"h\xc3\xa9llo", 6, "h\xc3\xa9llo"},               /* valid 2-byte UTF-8 kept */
    {"\xe2\x82\xac", 3, "\xe2\x82\xac"},               /* euro sign kept */
    {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},       /* emoji kept */
    {"bad\xff", 4, "bad\\ufffd"},                      /* invalid byte replaced */
    {"\xc0\xaf", 2, "\\ufffd\\ufffd"},                 /* overlong encoding rejected */
    {"\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd"},      /* UTF-16 surrogate rejected */
    {"\xe2\x82", 2, "\\ufffd\\ufffd"},                 /* truncated sequence */
    {"nul\0in", 6, "nul\\u0000in"},
};

ParameterizedTestParameters(buf, json_escape)
{
    return cr_make_param_array(struct esc_case, esc_cases, sizeof esc_cases / sizeof esc_cases[0]);
}

ParameterizedTest(struct esc_case *c, buf, json_escape)
{
    fp_buf b;
    fp_buf_init(&b, 1024);
    cr_assert_eq(fp_buf_add_json_str(&b, c->in, c->len), 0);
    cr_assert_str_eq(b.data ? b.data : "", c->out, "escaping %zu bytes", c->len);
    fp_buf_free(&b);
}

ParameterizedTestParameters(buf, json_string_is_the_escaping_in_quotes)
{
    return cr_make_param_array(struct esc_case, esc_cases, sizeof esc_cases / sizeof esc_cases[0]);
}

ParameterizedTest(struct esc_case *c, buf, json_string_is_the_escaping_in_quotes)
{
    fp_buf b;
    char want[256];
    fp_buf_init(&b, 1024);
    cr_assert_eq(fp_buf_add_json_string(&b, c->in, c->len), 0);
    snprintf(want, sizeof want, "\"%s\"", c->out);
    cr_assert_str_eq(b.data, want, "quoting %zu bytes", c->len);
    fp_buf_free(&b);
}

Test(buf, json_string_past_the_cap_is_refused)
{
    fp_buf b;
    fp_buf_init(&b, 4);
    cr_assert_eq(fp_buf_add_json_string(&b, "abcd", 4), FP_ELIMIT);
    fp_buf_free(&b);
}
