/* libFuzzer target: what formpipe-ingest does with a request body, minus the network.
 * The first byte picks the content type (even: application/json, odd: an HTML form
 * post); the rest is the body. It is parsed (fp_body_*), validated and sanitized
 * against a form with every field type and constraint (fp_schema_validate), and an
 * accepted submission is encoded as the CloudEvent the ingest would produce and parsed
 * back as the consumer would. Checked on the way: a rejected body says why; clean
 * values are valid UTF-8 without control characters; the event round-trips with the
 * same data. Any sanitizer report or abort is a finding. */
#include "body.h"
#include "event.h"
#include "schema.h"
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char FORM[] =
    "{\"fields\":["
    "{\"name\":\"name\",\"type\":\"string\",\"required\":true,\"minLength\":2,\"maxLength\":20},"
    "{\"name\":\"roll\",\"type\":\"string\",\"pattern\":\"^[0-9]{1,10}$\"},"
    "{\"name\":\"cgpa\",\"type\":\"number\",\"minimum\":0,\"maximum\":10},"
    "{\"name\":\"age\",\"type\":\"integer\",\"minimum\":15,\"maximum\":100},"
    "{\"name\":\"ok\",\"type\":\"boolean\"},"
    "{\"name\":\"email\",\"type\":\"email\"},"
    "{\"name\":\"mobile\",\"type\":\"phone\"},"
    "{\"name\":\"born\",\"type\":\"date\"},"
    "{\"name\":\"gender\",\"type\":\"enum\",\"values\":[\"F\",\"M\",\"X\"]}],"
    "\"unknownFields\":\"reject\"}";

static fp_schema *schema;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_ingest_body: invariant broken: %s\n", what);
        abort();
    }
}

static void check_clean_strings(const cJSON *clean)
{
    for (const cJSON *v = clean->child; v; v = v->next) {
        if (!cJSON_IsString(v))
            continue;
        size_t len = strlen(v->valuestring);
        check(fp_utf8_valid(v->valuestring, len), "a clean value is valid UTF-8");
        for (size_t i = 0; i < len; i++)
            check((unsigned char)v->valuestring[i] >= 0x20 && v->valuestring[i] != 0x7f,
                  "a clean value has no control characters");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!schema) {
        fp_error err = {0};
        cJSON *form = cJSON_Parse(FORM);
        schema = fp_schema_compile(form, &err);
        cJSON_Delete(form);
        check(schema != NULL, "the fuzz form compiles");
    }
    if (size < 1)
        return 0;
    int form_post = data[0] & 1;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    fp_error err = {0};
    cJSON *in = form_post ? fp_body_form(body, len, FP_BODY_MAX_PAIRS, &err) : fp_body_json(body, len, &err);
    if (!in) {
        check(err.code != 0 && err.msg[0] != '\0', "a refused body says why");
        return 0;
    }
    check(cJSON_IsObject(in), "a parsed body is an object");
    cJSON *clean = NULL;
    fp_violations v;
    int rc = fp_schema_validate(schema, in, form_post, &clean, &v);
    cJSON_Delete(in);
    if (rc) {
        check(v.n > 0, "a failed validation lists a violation");
        for (size_t i = 0; i < v.n; i++)
            check(v.items[i].rule[0] && v.items[i].message[0], "every violation names its rule and says why");
        return 0;
    }
    check_clean_strings(clean);
    char *event = fp_event_encode("01JFUZZFUZZFUZZFUZZFUZZFUZ", "fuzz", "form", 1700000000000LL, 1, clean);
    check(event != NULL, "an accepted submission encodes");
    fp_event ev = {0};
    check(fp_event_parse(event, strlen(event), &ev, &err) == 0, "the event parses back");
    check(ev.nfields == (size_t)cJSON_GetArraySize(clean), "the event parses back with every field");
    cJSON *doc = cJSON_Parse(event);
    check(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(doc, "data"), clean, 1), "the event carries the clean values");
    cJSON_Delete(doc);
    fp_event_clear(&ev);
    free(event);
    cJSON_Delete(clean);
    return 0;
}
