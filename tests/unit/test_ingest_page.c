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
    char *page = fp_page_render(form, &err);
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
    cr_assert_null(fp_page_render(form, &err));
    cr_assert_eq(err.code, FP_EINVAL);
    cJSON_Delete(form);
}
