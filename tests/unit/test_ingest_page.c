/* Unit tests for services/ingest/page: the HTML form page follows the definition and
 * escapes everything it takes from it. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "page.h"

static char *render(const char *json)
{
    cJSON *form = cJSON_Parse(json);
    cr_assert_not_null(form, "bad test JSON");
    fp_error err = {0};
    char *page = fp_page_render(form, NULL, &err);
    cJSON_Delete(form);
    cr_assert_not_null(page, "%s", err.msg);
    return page;
}

struct page_case { const char *field, *expect; };
static struct page_case cases[] = {
    {"{\"name\":\"email\",\"type\":\"email\",\"required\":true}", "<input type=\"email\" id=\"f-email\" name=\"email\" required>"},
    {"{\"name\":\"mobile\",\"type\":\"phone\"}", "<input type=\"tel\" id=\"f-mobile\" name=\"mobile\">"},
    {"{\"name\":\"dob\",\"type\":\"date\"}", "<input type=\"date\" id=\"f-dob\" name=\"dob\">"},
    {"{\"name\":\"age\",\"type\":\"integer\",\"minimum\":15,\"maximum\":100}", "type=\"number\" id=\"f-age\" name=\"age\" min=\"15\" max=\"100\" step=\"1\">"},
    {"{\"name\":\"cgpa\",\"type\":\"number\",\"minimum\":0,\"maximum\":10}", "min=\"0\" max=\"10\" step=\"any\">"},
    {"{\"name\":\"name\",\"type\":\"string\",\"minLength\":5,\"maxLength\":100}", "minlength=\"5\" maxlength=\"100\">"},
    {"{\"name\":\"roll\",\"type\":\"string\",\"pattern\":\"^[0-9]{1,10}$\"}", "pattern=\".*(?:^[0-9]{1,10}$).*\">"},
    {"{\"name\":\"gender\",\"type\":\"enum\",\"values\":[\"F\",\"M\"],\"required\":true}",
     "<select id=\"f-gender\" name=\"gender\" required><option value=\"\">Choose...</option><option value=\"F\">F</option><option value=\"M\">M</option></select>"},
    {"{\"name\":\"ok\",\"type\":\"boolean\"}", "<option value=\"true\">Yes</option><option value=\"false\">No</option>"},
    {"{\"name\":\"x\",\"type\":\"string\",\"label\":\"Your <b>\\\"name\\\"</b> & 'more'\"}",
     "<label for=\"f-x\">Your &lt;b&gt;&quot;name&quot;&lt;/b&gt; &amp; &#39;more&#39;</label>"},
    {"{\"name\":\"n\",\"type\":\"string\",\"required\":true,\"label\":\"Name\"}",
     "<label for=\"f-n\">Name <span class=\"req\" aria-hidden=\"true\">*</span></label>"},
};

ParameterizedTestParameters(page, fields)
{
    return cr_make_param_array(struct page_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct page_case *c, page, fields)
{
    char json[1024];
    snprintf(json, sizeof json, "{\"name\":\"f1\",\"title\":\"T\",\"fields\":[%s]}", c->field);
    char *page = render(json);
    cr_assert_not_null(strstr(page, c->expect), "'%s' not in:\n%s", c->expect, page);
    free(page);
}

Test(page, title_description_and_action_are_escaped)
{
    char *page = render("{\"name\":\"student-data\",\"title\":\"<script>alert(1)</script>\","
                        "\"description\":\"a & b\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]}");
    cr_assert_null(strstr(page, "<script>"), "nothing from the definition is markup");
    cr_assert_not_null(strstr(page, "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
    cr_assert_not_null(strstr(page, "<p>a &amp; b</p>"));
    cr_assert_not_null(strstr(page, "<form method=\"post\" action=\"/forms/student-data\" accept-charset=\"utf-8\">"));
    cr_assert_not_null(strstr(page, "<html lang=\"en\">"));
    free(page);
}

Test(page, a_definition_without_name_is_refused)
{
    cJSON *form = cJSON_Parse("{\"fields\":[]}");
    fp_error err = {0};
    cr_assert_null(fp_page_render(form, NULL, &err));
    cr_assert_eq(err.code, FP_EINVAL);
    cJSON_Delete(form);
}

Test(page, a_refusal_page_lists_every_failing_field_escaped_and_links_back)
{
    fp_violations v = {.n = 2};
    snprintf(v.items[0].field, sizeof v.items[0].field, "roll");
    snprintf(v.items[0].rule, sizeof v.items[0].rule, "pattern");
    snprintf(v.items[0].message, sizeof v.items[0].message, "must match ^[0-9]{1,10}$ & <b>not</b> this");
    snprintf(v.items[1].field, sizeof v.items[1].field, "email");
    snprintf(v.items[1].rule, sizeof v.items[1].rule, "required");
    snprintf(v.items[1].message, sizeof v.items[1].message, "is required");
    char *page = fp_page_answer("Your submission was not accepted", "the submission does not match the form", NULL, &v,
                                "student-data");
    cr_assert_not_null(page);
    cr_assert_not_null(strstr(page, "<h1>Your submission was not accepted</h1>"));
    cr_assert_not_null(strstr(page, "<li><strong>roll</strong>: must match ^[0-9]{1,10}$ &amp; &lt;b&gt;not&lt;/b&gt; this</li>"));
    cr_assert_not_null(strstr(page, "<li><strong>email</strong>: is required</li>"));
    cr_assert_not_null(strstr(page, "<a href=\"/forms/student-data\">Back to the form</a>"));
    cr_assert_null(strstr(page, "Reference:"), "a refusal has no reference");
    free(page);
}

Test(page, a_confirmation_shows_the_reference)
{
    char *page = fp_page_answer("Thank you", "Your submission was received.", "01JABCDEFGHJKMNPQRSTVWXYZ0", NULL, NULL);
    cr_assert_not_null(strstr(page, "<h1>Thank you</h1>"));
    cr_assert_not_null(strstr(page, "<p>Reference: <code>01JABCDEFGHJKMNPQRSTVWXYZ0</code></p>"));
    cr_assert_null(strstr(page, "<ul>"));
    free(page);
}
