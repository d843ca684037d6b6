/* Unit tests for services/common/schema: every type and constraint with its edges,
 * sanitizing, unknown fields, and compile errors. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema.h"

struct field_case {
    const char *def;     /* one field definition (its name is "f") */
    const char *value;   /* JSON of the submitted value; NULL = field absent */
    int from_text;
    const char *rule;    /* NULL: valid */
    const char *clean;   /* JSON of the clean value (when valid and present) */
};

#define F(x) "{\"name\":\"f\"," x "}"
static struct field_case cases[] = {
    /* strings, sanitizing, lengths in characters */
    {F("\"type\":\"string\""), "\"  hello  \"", 0, NULL, "\"hello\""},
    {F("\"type\":\"string\""), "\"a\\u0001b\\u0007c\\u007fd\"", 0, NULL, "\"abcd\""},
    {F("\"type\":\"string\""), "\"tab\\there\\nnew\"", 0, NULL, "\"tabherenew\""},
    {F("\"type\":\"string\""), "\"\\u0085x\"", 0, NULL, "\"x\""},
    {F("\"type\":\"string\",\"maxLength\":3"), "\"h\\u00e9\\u00e9\"", 0, NULL, "\"h\\u00e9\\u00e9\""},
    {F("\"type\":\"string\",\"maxLength\":3"), "\"h\\u00e9\\u00e9s\"", 0, "maxLength", NULL},
    {F("\"type\":\"string\",\"minLength\":5"), "\"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\"", 0, "minLength", NULL},
    {F("\"type\":\"string\",\"minLength\":4"), "\"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\"", 0, NULL, "\"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\""},
    {F("\"type\":\"string\",\"required\":true"), "\"   \"", 0, "required", NULL},
    {F("\"type\":\"string\",\"required\":true"), NULL, 0, "required", NULL},
    {F("\"type\":\"string\",\"required\":true"), "null", 0, "required", NULL},
    {F("\"type\":\"string\""), NULL, 0, NULL, NULL},
    {F("\"type\":\"string\""), "42", 0, "type", NULL},
    {F("\"type\":\"string\""), "{\"a\":1}", 0, "type", NULL},
    {F("\"type\":\"string\""), "\"=HYPERLINK(\\\"x\\\")\"", 0, NULL, "\"=HYPERLINK(\\\"x\\\")\""},
    /* patterns (PCRE2, unanchored unless anchored) */
    {F("\"type\":\"string\",\"pattern\":\"^[0-9]{1,10}$\""), "\"1234567890\"", 0, NULL, "\"1234567890\""},
    {F("\"type\":\"string\",\"pattern\":\"^[0-9]{1,10}$\""), "\"12345678901\"", 0, "pattern", NULL},
    {F("\"type\":\"string\",\"pattern\":\"^[0-9]{1,10}$\""), "\"12a\"", 0, "pattern", NULL},
    {F("\"type\":\"string\",\"pattern\":\"[0-9]\""), "\"abc1\"", 0, NULL, "\"abc1\""},
    {F("\"type\":\"string\",\"pattern\":\"^\\\\p{Lu}\""), "\"\\u00c9cole\"", 0, NULL, "\"\\u00c9cole\""},
    /* the bounded anchored form keeps the unanchored meaning: anywhere, ^, $, groups */
    {F("\"type\":\"string\",\"pattern\":\"b$\""), "\"aab\"", 0, NULL, "\"aab\""},
    {F("\"type\":\"string\",\"pattern\":\"^a\""), "\"ba\"", 0, "pattern", NULL},
    {F("\"type\":\"string\",\"pattern\":\"x|^y\""), "\"zy\"", 0, "pattern", NULL},
    {F("\"type\":\"string\",\"pattern\":\"x|^y\""), "\"yz\"", 0, NULL, "\"yz\""},
    {F("\"type\":\"string\",\"pattern\":\"(a)\\\\1\""), "\"xaa\"", 0, NULL, "\"xaa\""},
    {F("\"type\":\"string\",\"pattern\":\"a.c\""), "\"xa\\u00e9c\"", 0, NULL, "\"xa\\u00e9c\""},
    /* integers and numbers */
    {F("\"type\":\"integer\",\"minimum\":16,\"maximum\":120"), "16", 0, NULL, "16"},
    {F("\"type\":\"integer\",\"minimum\":16,\"maximum\":120"), "15", 0, "minimum", NULL},
    {F("\"type\":\"integer\",\"minimum\":16,\"maximum\":120"), "121", 0, "maximum", NULL},
    {F("\"type\":\"integer\""), "1.5", 0, "type", NULL},
    {F("\"type\":\"integer\""), "\"42\"", 0, "type", NULL},
    {F("\"type\":\"integer\""), "\"42\"", 1, NULL, "42"},
    {F("\"type\":\"integer\""), "\"42abc\"", 1, "type", NULL},
    {F("\"type\":\"integer\""), "\"0x10\"", 1, "type", NULL},
    {F("\"type\":\"number\",\"minimum\":0,\"maximum\":10"), "10", 0, NULL, "10"},
    {F("\"type\":\"number\",\"minimum\":0,\"maximum\":10"), "10.0001", 0, "maximum", NULL},
    {F("\"type\":\"number\",\"minimum\":0,\"maximum\":10"), "-0.01", 0, "minimum", NULL},
    {F("\"type\":\"number\""), "\"9.5\"", 1, NULL, "9.5"},
    {F("\"type\":\"number\""), "\"nan\"", 1, "type", NULL},
    {F("\"type\":\"number\""), "\"inf\"", 1, "type", NULL},
    {F("\"type\":\"number\""), "true", 0, "type", NULL},
    /* booleans */
    {F("\"type\":\"boolean\""), "true", 0, NULL, "true"},
    {F("\"type\":\"boolean\""), "\"true\"", 0, "type", NULL},
    {F("\"type\":\"boolean\""), "\"on\"", 1, NULL, "true"},
    {F("\"type\":\"boolean\""), "\"0\"", 1, NULL, "false"},
    {F("\"type\":\"boolean\""), "\"maybe\"", 1, "type", NULL},
    /* emails */
    {F("\"type\":\"email\""), "\"a@b.co\"", 0, NULL, "\"a@b.co\""},
    {F("\"type\":\"email\""), "\"first.last+tag@sub.example.org\"", 0, NULL, "\"first.last+tag@sub.example.org\""},
    {F("\"type\":\"email\""), "\"a@b\"", 0, "email", NULL},
    {F("\"type\":\"email\""), "\"@b.co\"", 0, "email", NULL},
    {F("\"type\":\"email\""), "\"a@@b.co\"", 0, "email", NULL},
    {F("\"type\":\"email\""), "\"a b@c.co\"", 0, "email", NULL},
    {F("\"type\":\"email\""), "\"a..b@c.co\"", 0, "email", NULL},
    {F("\"type\":\"email\""), "\"a@-c.co\"", 0, "email", NULL},
    {F("\"type\":\"email\""), "\"a@c.co.\"", 0, "email", NULL},
    /* phones */
    {F("\"type\":\"phone\""), "\"+91 98765 43210\"", 0, NULL, "\"+91 98765 43210\""},
    {F("\"type\":\"phone\""), "\"(555) 123-4567\"", 0, NULL, "\"(555) 123-4567\""},
    {F("\"type\":\"phone\""), "\"12345\"", 0, "phone", NULL},
    {F("\"type\":\"phone\""), "\"1234567890123456\"", 0, "phone", NULL},
    {F("\"type\":\"phone\""), "\"555-CALL-NOW\"", 0, "phone", NULL},
    {F("\"type\":\"phone\""), "\"12+3456789\"", 0, "phone", NULL},
    /* dates */
    {F("\"type\":\"date\""), "\"2024-02-29\"", 0, NULL, "\"2024-02-29\""},
    {F("\"type\":\"date\""), "\"2026-02-29\"", 0, "date", NULL},
    {F("\"type\":\"date\""), "\"2026-04-31\"", 0, "date", NULL},
    {F("\"type\":\"date\""), "\"2026-13-01\"", 0, "date", NULL},
    {F("\"type\":\"date\""), "\"26-11-23\"", 0, "date", NULL},
    {F("\"type\":\"date\""), "\"2026-11-23T10:00\"", 0, "date", NULL},
    /* enums */
    {F("\"type\":\"enum\",\"values\":[\"F\",\"M\",\"X\"]"), "\"X\"", 0, NULL, "\"X\""},
    {F("\"type\":\"enum\",\"values\":[\"F\",\"M\",\"X\"]"), "\"x\"", 0, "values", NULL},
    {F("\"type\":\"enum\",\"values\":[\"F\",\"M\",\"X\"]"), "\" M \"", 0, NULL, "\"M\""},
};

ParameterizedTestParameters(schema, field)
{
    return cr_make_param_array(struct field_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct field_case *c, schema, field)
{
    char form[512], in[512];
    snprintf(form, sizeof form, "{\"fields\":[%s]}", c->def);
    cJSON *fj = cJSON_Parse(form);
    cr_assert_not_null(fj, "bad test definition %s", form);
    fp_error err = {0};
    fp_schema *s = fp_schema_compile(fj, &err);
    cr_assert_not_null(s, "%s: %s", c->def, err.msg);
    snprintf(in, sizeof in, c->value ? "{\"f\":%s}" : "{}", c->value);
    cJSON *ij = cJSON_Parse(in);
    cr_assert_not_null(ij, "bad test value %s", in);
    cJSON *out = NULL;
    fp_violations v;
    int rc = fp_schema_validate(s, ij, c->from_text, &out, &v);
    if (c->rule) {
        cr_assert_eq(rc, FP_EINVAL, "%s with %s should fail %s", c->def, in, c->rule);
        cr_assert_eq(v.n, 1);
        cr_assert_str_eq(v.items[0].rule, c->rule, "%s with %s: %s", c->def, in, v.items[0].message);
        cr_assert_str_eq(v.items[0].field, "f");
        cr_assert_neq(v.items[0].message[0], '\0', "a message for a person");
    } else {
        cr_assert_eq(rc, 0, "%s with %s: %s %s", c->def, in, v.n ? v.items[0].rule : "", v.n ? v.items[0].message : "");
        cJSON *got = cJSON_GetObjectItemCaseSensitive(out, "f");
        if (c->clean) {
            cJSON *want = cJSON_Parse(c->clean);
            cr_assert(got && cJSON_Compare(got, want, 1), "%s with %s: got %s, want %s", c->def, in,
                      got ? cJSON_PrintUnformatted(got) : "(absent)", c->clean);
            cJSON_Delete(want);
        } else {
            cr_assert_null(got, "absent stays absent");
        }
    }
    cJSON_Delete(out);
    cJSON_Delete(ij);
    cJSON_Delete(fj);
    fp_schema_free(s);
}

Test(schema, invalid_utf8_is_rejected)
{
    cJSON *fj = cJSON_Parse("{\"fields\":[{\"name\":\"f\",\"type\":\"string\"}]}");
    fp_schema *s = fp_schema_compile(fj, NULL);
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "f", "caf\xc3");   /* truncated sequence */
    cJSON *out;
    fp_violations v;
    cr_assert_eq(fp_schema_validate(s, in, 0, &out, &v), FP_EINVAL);
    cr_assert_str_eq(v.items[0].rule, "utf8");
    cJSON_Delete(in);
    cJSON_Delete(fj);
    fp_schema_free(s);
}

Test(schema, every_failing_field_is_listed_and_unknown_fields_follow_the_policy)
{
    const char *def = "{\"fields\":[{\"name\":\"name\",\"type\":\"string\",\"required\":true,\"minLength\":5},"
                      "{\"name\":\"roll\",\"type\":\"string\",\"pattern\":\"^[0-9]+$\"},"
                      "{\"name\":\"email\",\"type\":\"email\",\"required\":true}]%s}";
    char form[512];
    snprintf(form, sizeof form, def, "");
    cJSON *fj = cJSON_Parse(form);
    fp_schema *s = fp_schema_compile(fj, NULL);
    cJSON *in = cJSON_Parse("{\"name\":\"Bob\",\"roll\":\"x1\",\"extra\":1}");
    cJSON *out;
    fp_violations v;
    cr_assert_eq(fp_schema_validate(s, in, 0, &out, &v), FP_EINVAL);
    cr_assert_eq(v.n, 4, "name, roll, email and the unknown field");
    const char *want[][2] = {{"name", "minLength"}, {"roll", "pattern"}, {"email", "required"}, {"extra", "unknown"}};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(v.items[i].field, want[i][0]);
        cr_assert_str_eq(v.items[i].rule, want[i][1]);
    }
    cJSON_Delete(fj);
    fp_schema_free(s);

    snprintf(form, sizeof form, def, ",\"unknownFields\":\"drop\"");
    fj = cJSON_Parse(form);
    s = fp_schema_compile(fj, NULL);
    cJSON_Delete(in);
    in = cJSON_Parse("{\"name\":\"Asha Verma\",\"roll\":\"42\",\"email\":\"a@b.co\",\"extra\":1}");
    cr_assert_eq(fp_schema_validate(s, in, 0, &out, &v), 0);
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(out, "extra"), "dropped");
    char *text = cJSON_PrintUnformatted(out);
    cr_assert_str_eq(text, "{\"name\":\"Asha Verma\",\"roll\":\"42\",\"email\":\"a@b.co\"}", "field order");
    free(text);
    cJSON_Delete(out);
    cJSON_Delete(in);
    cJSON_Delete(fj);
    fp_schema_free(s);
}

struct compile_case { const char *form; const char *msg; };

static struct compile_case bad[] = {
    {"{}", "'fields' must be a non-empty list"},
    {"{\"fields\":[]}", "'fields' must be a non-empty list"},
    {"{\"fields\":[{\"type\":\"string\"}]}", "fields[0]: 'name' is missing"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"text\"}]}", "field 'a': type 'text' is not one of"},
    {"{\"fields\":[{\"name\":\"a\"}]}", "type '(missing)'"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"a\",\"type\":\"string\"}]}", "field 'a' appears twice"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"minLength\":5,\"maxLength\":2}]}", "minLength 5 is greater than maxLength 2"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"maxLength\":60000}]}", "exceeds the 50000 characters"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"minLength\":-1}]}", "whole numbers >= 0"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"number\",\"minimum\":5,\"maximum\":1}]}", "minimum 5 is greater than maximum 1"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"minimum\":1}]}", "apply to integer and number fields"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"enum\"}]}", "an enum needs a non-empty 'values' list"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"enum\",\"values\":[1]}]}", "enum values must be strings"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"values\":[\"x\"]}]}", "'values' belongs to enum fields"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"pattern\":\"([a-z\"}]}", "pattern does not compile at offset"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"pattern\":\"(*LIMIT_MATCH=99999999)a\"}]}", "cannot be bounded"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\"}],\"unknownFields\":\"keep\"}", "unknownFields must be 'reject' or 'drop'"},
};

ParameterizedTestParameters(schema, compile_errors_name_the_field_and_the_problem)
{
    return cr_make_param_array(struct compile_case, bad, sizeof bad / sizeof bad[0]);
}

ParameterizedTest(struct compile_case *c, schema, compile_errors_name_the_field_and_the_problem)
{
    cJSON *fj = cJSON_Parse(c->form);
    cr_assert_not_null(fj, "bad test definition %s", c->form);
    fp_error err = {0};
    cr_assert_null(fp_schema_compile(fj, &err), "%s should not compile", c->form);
    cr_assert_eq(err.code, FP_EINVAL);
    cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
    cJSON_Delete(fj);
}

Test(schema, form_posts_leave_an_unticked_checkbox_false)
{
    cJSON *fj = cJSON_Parse("{\"fields\":[{\"name\":\"consent\",\"type\":\"boolean\"}]}");
    fp_schema *s = fp_schema_compile(fj, NULL);
    cJSON *in = cJSON_CreateObject(), *out;
    fp_violations v;
    cr_assert_eq(fp_schema_validate(s, in, 1, &out, &v), 0);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(out, "consent")));
    cJSON_Delete(out);
    cJSON_Delete(in);
    cJSON_Delete(fj);
    fp_schema_free(s);
}

Test(schema, exports_a_json_schema)
{
    cJSON *fj = cJSON_Parse("{\"fields\":["
        "{\"name\":\"name\",\"type\":\"string\",\"required\":true,\"minLength\":5,\"maxLength\":100},"
        "{\"name\":\"roll\",\"type\":\"string\",\"pattern\":\"^[0-9]+$\"},"
        "{\"name\":\"cgpa\",\"type\":\"number\",\"minimum\":0,\"maximum\":10},"
        "{\"name\":\"gender\",\"type\":\"enum\",\"values\":[\"F\",\"M\"]},"
        "{\"name\":\"email\",\"type\":\"email\",\"required\":true},"
        "{\"name\":\"born\",\"type\":\"date\"}]}");
    fp_schema *s = fp_schema_compile(fj, NULL);
    cJSON *js = fp_schema_json_schema(s, "Student data");
    char *text = cJSON_PrintUnformatted(js);
    const char *want =
        "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"title\":\"Student data\",\"type\":\"object\","
        "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":5,\"maxLength\":100},"
        "\"roll\":{\"type\":\"string\",\"maxLength\":50000,\"pattern\":\"^[0-9]+$\"},"
        "\"cgpa\":{\"type\":\"number\",\"minimum\":0,\"maximum\":10},"
        "\"gender\":{\"enum\":[\"F\",\"M\"]},"
        "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":50000},"
        "\"born\":{\"type\":\"string\",\"format\":\"date\",\"maxLength\":50000}},"
        "\"required\":[\"name\",\"email\"],\"additionalProperties\":false}";
    cr_assert_str_eq(text, want);
    free(text);
    cJSON_Delete(js);
    cJSON_Delete(fj);
    fp_schema_free(s);
}

/* Catastrophic backtracking is bounded per value: a form of 50 fields with the
 * pattern, each sent a value that makes it backtrack, is refused in milliseconds with a
 * "pattern" violation per field that says the check took too long. Without the bounds
 * PCRE2's default match limit (10 million) costs ~100 ms per value: 5 s here. */
struct redos_case { const char *pattern; char ch; int n; char tail; };
static struct redos_case redos[] = {
    {"^(a+)+$", 'a', 40, '!'},
    {"(a+)+$", 'a', 40, '!'},
    {"(a|aa)+$", 'a', 60, '!'},
    {"(\\w+\\s?)*$", 'w', 60, '#'},
    {"^(([a-z])+.)+[A-Z]([a-z])+$", 'a', 38, '!'},
};

ParameterizedTestParameters(schema, catastrophic_patterns_fail_fast)
{
    return cr_make_param_array(struct redos_case, redos, sizeof redos / sizeof redos[0]);
}

#define REDOS_FIELDS 50

ParameterizedTest(struct redos_case *c, schema, catastrophic_patterns_fail_fast)
{
    char *value = malloc((size_t)c->n + 2);
    memset(value, c->ch, (size_t)c->n);
    value[c->n] = c->tail;
    value[c->n + 1] = '\0';
    cJSON *fj = cJSON_CreateObject(), *fields = cJSON_AddArrayToObject(fj, "fields");
    cJSON *in = cJSON_CreateObject(), *out = NULL;
    for (int i = 0; i < REDOS_FIELDS; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", name);
        cJSON_AddStringToObject(f, "type", "string");
        cJSON_AddStringToObject(f, "pattern", c->pattern);
        cJSON_AddItemToArray(fields, f);
        cJSON_AddStringToObject(in, name, value);
    }
    fp_error err = {0};
    fp_schema *s = fp_schema_compile(fj, &err);
    cr_assert_not_null(s, "%s", err.msg);
    fp_violations v;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = fp_schema_validate(s, in, 0, &out, &v);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert_eq(rc, FP_EINVAL, "%s on %d x '%c' is refused", c->pattern, c->n, c->ch);
    cr_assert_eq(v.n, REDOS_FIELDS);
    for (size_t i = 0; i < v.n; i++) {
        cr_assert_str_eq(v.items[i].rule, "pattern");
        cr_assert_not_null(strstr(v.items[i].message, "takes too long to check"), "%s", v.items[i].message);
    }
    cr_assert_lt(ms, 500.0, "%s: %d values took %.1f ms", c->pattern, REDOS_FIELDS, ms);
    cJSON_Delete(in);
    cJSON_Delete(fj);
    free(value);
    fp_schema_free(s);
}
