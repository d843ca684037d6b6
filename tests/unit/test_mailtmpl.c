/* Unit tests for services/task/mailtmpl: compiling, rendering each kind of value in
 * each mode, HTML escaping, refused header values. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "mailtmpl.h"

/* A CloudEvent around data (a JSON object's text). */
static void event_of(const char *data, char *out, size_t outsz)
{
    snprintf(out, outsz, "{\"specversion\":\"1.0\",\"id\":\"01J0\",\"source\":\"/forms/ns/p\","
             "\"type\":\"io.formpipe.submission.v1\",\"time\":\"2026-11-23T14:05:27.123Z\",\"data\":%s}", data);
}

struct render_case {
    const char *tmpl;
    const char *data;
    fp_mailtmpl_mode mode;
    const char *want;        /* the output, or NULL when rendering must fail */
    const char *want_err;    /* a part of the error message */
};

static struct render_case render_cases[] = {
    {"Thanks {{name}}!", "{\"name\":\"Ada\"}", FP_MAILTMPL_TEXT, "Thanks Ada!", NULL},
    {"Thanks {{ name }}!", "{\"name\":\"Ada\"}", FP_MAILTMPL_TEXT, "Thanks Ada!", NULL},
    {"{{a}}{{b}}", "{\"a\":\"x\",\"b\":\"y\"}", FP_MAILTMPL_TEXT, "xy", NULL},
    {"no placeholders", "{}", FP_MAILTMPL_TEXT, "no placeholders", NULL},
    {"", "{}", FP_MAILTMPL_TEXT, "", NULL},
    {"[{{missing}}]", "{\"name\":\"Ada\"}", FP_MAILTMPL_TEXT, "[]", NULL},
    {"[{{n}}]", "{\"n\":null}", FP_MAILTMPL_TEXT, "[]", NULL},
    {"{{age}} {{ok}} {{no}}", "{\"age\":42.5,\"ok\":true,\"no\":false}", FP_MAILTMPL_TEXT, "42.5 true false", NULL},
    {"{{langs}}", "{\"langs\":[\"C\",\"Go\",3]}", FP_MAILTMPL_TEXT, "C, Go, 3", NULL},
    {"[{{e}}]", "{\"e\":[]}", FP_MAILTMPL_TEXT, "[]", NULL},
    {"{{o}}", "{\"o\":{\"k\":1}}", FP_MAILTMPL_TEXT, "{\"k\":1}", NULL},
    {"{{s}}", "{\"s\":\"a\\\"b\\u00e9\\n\"}", FP_MAILTMPL_TEXT, "a\"b\xc3\xa9\n", NULL},
    {"{{user.name}}-{{x_1}}", "{\"user.name\":\"u\",\"x_1\":\"v\"}", FP_MAILTMPL_TEXT, "u-v", NULL},
    {"{ {x} } {x}", "{\"x\":\"1\"}", FP_MAILTMPL_TEXT, "{ {x} } {x}", NULL},
    /* HTML: values escaped, the template's own markup kept */
    {"<p>{{c}}</p>", "{\"c\":\"<script>alert('x')</script> & \\\"q\\\"\"}", FP_MAILTMPL_HTML,
     "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</p>", NULL},
    {"<b>{{l}}</b>", "{\"l\":[\"<a>\",\"b&c\"]}", FP_MAILTMPL_HTML, "<b>&lt;a&gt;, b&amp;c</b>", NULL},
    {"{{c}}", "{\"c\":\"<b>\"}", FP_MAILTMPL_TEXT, "<b>", NULL},
    /* header: no line breaks or control characters from a value */
    {"Thanks {{name}}", "{\"name\":\"Ad\xc3\xa9 <x>\"}", FP_MAILTMPL_HEADER, "Thanks Ad\xc3\xa9 <x>", NULL},
    {"Thanks {{name}}", "{\"name\":\"x\\r\\nBcc: victim@example.org\"}", FP_MAILTMPL_HEADER, NULL,
     "field 'name' holds a line break: refused in the subject"},
    {"Thanks {{name}}", "{\"name\":\"x\\nBcc: v@example.org\"}", FP_MAILTMPL_HEADER, NULL, "a line break"},
    {"Thanks {{name}}", "{\"name\":\"x\\ty\"}", FP_MAILTMPL_HEADER, NULL, "a control character"},
    {"Thanks {{l}}", "{\"l\":[\"a\",\"b\\r\\n\"]}", FP_MAILTMPL_HEADER, NULL, "a line break"},
    {"{{name}}", "{\"name\":\"x\\ny\"}", FP_MAILTMPL_TEXT, "x\ny", NULL},
    {"{{name}}", "{\"name\":\"x\\u0000y\"}", FP_MAILTMPL_TEXT, NULL, "a control character"},
};

ParameterizedTestParameters(mailtmpl, render)
{
    return cr_make_param_array(struct render_case, render_cases, sizeof render_cases / sizeof render_cases[0]);
}

ParameterizedTest(struct render_case *c, mailtmpl, render)
{
    char json[2048];
    fp_event ev = {0};
    fp_error err = {0};
    fp_buf out;
    fp_buf_init(&out, 1 << 20);
    event_of(c->data, json, sizeof json);
    cr_assert_eq(fp_event_parse(json, strlen(json), &ev, &err), 0, "%s: %s", c->data, err.msg);
    fp_mailtmpl *t = fp_mailtmpl_compile(c->tmpl, &err);
    cr_assert_not_null(t, "%s: %s", c->tmpl, err.msg);
    int rc = fp_mailtmpl_render(t, &ev, c->mode, &out, &err);
    if (c->want) {
        cr_assert_eq(rc, 0, "%s: %s", c->tmpl, err.msg);
        cr_assert_str_eq(out.data ? out.data : "", c->want);
    } else {
        cr_assert_eq(rc, FP_EINVAL, "%s with %s rendered", c->tmpl, c->data);
        cr_assert(strstr(err.msg, c->want_err), "%s: '%s' lacks '%s'", c->tmpl, err.msg, c->want_err);
    }
    fp_mailtmpl_free(t);
    fp_buf_free(&out);
    fp_event_clear(&ev);
}

struct bad_case { const char *tmpl; };

static struct bad_case bad_cases[] = {
    {"Thanks {{name"}, {"Thanks {{name}"}, {"{{}}"}, {"{{ }}"}, {"{{na me}}"}, {"{{a|b}}"}, {"x {{"}, {"{{a}} {{b"},
};

ParameterizedTestParameters(mailtmpl, compile_refuses)
{
    return cr_make_param_array(struct bad_case, bad_cases, sizeof bad_cases / sizeof bad_cases[0]);
}

ParameterizedTest(struct bad_case *c, mailtmpl, compile_refuses)
{
    fp_error err = {0};
    cr_assert_null(fp_mailtmpl_compile(c->tmpl, &err), "'%s' compiled", c->tmpl);
    cr_assert_eq(err.code, FP_EINVAL);
    cr_assert(strstr(err.msg, "placeholder"), "%s", err.msg);
}

struct value_case { const char *data; const char *field; int want_rc; const char *want; };

static struct value_case value_cases[] = {
    {"{\"email\":\"a@example.org\"}", "email", 1, "a@example.org"},
    {"{\"email\":\"\"}", "email", 1, ""},
    {"{\"email\":null}", "email", 0, ""},
    {"{\"name\":\"x\"}", "email", 0, ""},
    {"{\"n\":7}", "n", 1, "7"},
};

ParameterizedTestParameters(mailtmpl, value)
{
    return cr_make_param_array(struct value_case, value_cases, sizeof value_cases / sizeof value_cases[0]);
}

ParameterizedTest(struct value_case *c, mailtmpl, value)
{
    char json[1024];
    fp_event ev = {0};
    fp_error err = {0};
    fp_buf out;
    fp_buf_init(&out, 1024);
    event_of(c->data, json, sizeof json);
    cr_assert_eq(fp_event_parse(json, strlen(json), &ev, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_mailtmpl_value(&ev, c->field, &out), c->want_rc, "%s", c->data);
    cr_assert_str_eq(out.data ? out.data : "", c->want);
    fp_buf_free(&out);
    fp_event_clear(&ev);
}
