/* Unit tests for services/task/cehttp: CloudEvents binary content mode headers, body
 * and Content-Type from an event as the ingest writes it, percent-encoding, refusals. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "cehttp.h"

struct ce_case {
    const char *event;
    int ok;
    const char *headers;        /* the lines joined with '|' */
    const char *content_type;
    const char *body;           /* NULL: no body */
};

static struct ce_case cases[] = {
    {"{\"specversion\":\"1.0\",\"id\":\"sub-1\",\"source\":\"/forms/ns/f\","
     "\"type\":\"io.formpipe.submission.v1\",\"time\":\"2026-11-23T14:05:27.123Z\","
     "\"datacontenttype\":\"application/json\",\"formgeneration\":3,\"data\":{\"name\":\"Zoë\"}}",
     1,
     "ce-specversion: 1.0|ce-id: sub-1|ce-source: /forms/ns/f|ce-type: io.formpipe.submission.v1|"
     "ce-time: 2026-11-23T14:05:27.123Z|ce-formgeneration: 3",
     "application/json", "{\"name\":\"Zoë\"}"},
    /* The binding's encoding: space, '"', '%' and non-ASCII (UTF-8 bytes) as %XX;
     * JSON escapes decoded first. */
    {"{\"id\":\"a b\\\"c%d\\u00e9\",\"source\":\"x\\/y\",\"data\":[1, 2]}", 1,
     "ce-id: a%20b%22c%25d%C3%A9|ce-source: x/y", "application/json", "[1, 2]"},
    {"{\"id\":\"1\",\"datacontenttype\":\"text/plain; charset=utf-8\",\"data\":\"hi \\\"you\\\"\"}", 1,
     "ce-id: 1", "text/plain; charset=utf-8", "\"hi \\\"you\\\"\""},   /* a string keeps its JSON form */
    {"{\"id\":\"1\",\"flag\":true,\"n\":-1.5e3,\"gone\":null}", 1,
     "ce-id: 1|ce-flag: true|ce-n: -1.5e3", "application/json", NULL},
    {" { } ", 1, "", "application/json", NULL},
    {"{\"id\":\"1\",\"ext\":{\"a\":1}}", 0, NULL, NULL, NULL},
    /* the moderate kind's extension object: its JSON, percent-encoded */
    {"{\"id\":\"1\",\"moderation\":{\"flagged\":true,\"terms\":[\"bäd word\"]},\"data\":{}}", 1,
     "ce-id: 1|ce-moderation: {%22flagged%22:true,%22terms%22:[%22b%C3%A4d%20word%22]}", "application/json", "{}"},
    {"{\"id\":\"1\",\"moderation\":[1]}", 0, NULL, NULL, NULL},
    {"{\"id\":\"1\",\"list\":[1]}", 0, NULL, NULL, NULL},
    {"{\"Bad-Name\":\"1\"}", 0, NULL, NULL, NULL},
    {"{\"id\":\"1\",\"data_base64\":\"aGk=\"}", 0, NULL, NULL, NULL},
    {"{\"datacontenttype\":\"a\\r\\nX-Injected: 1\"}", 0, NULL, NULL, NULL},
    {"[1]", 0, NULL, NULL, NULL},
    {"{\"id\":\"1\"", 0, NULL, NULL, NULL},
    {"{\"id\":\"1\"} x", 0, NULL, NULL, NULL},
    {"", 0, NULL, NULL, NULL},
};

ParameterizedTestParameters(cehttp, binary)
{
    return cr_make_param_array(struct ce_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct ce_case *c, cehttp, binary)
{
    fp_cehttp_binary b;
    fp_error err = {0};
    int rc = fp_cehttp_binary_of(c->event, strlen(c->event), &b, &err);
    cr_assert_eq(rc == 0, c->ok, "%s: rc %d (%s)", c->event, rc, err.msg);
    if (!c->ok) {
        cr_assert_eq(rc, FP_EINVAL, "%s", c->event);
        cr_assert_neq(err.msg[0], '\0', "a reason for %s", c->event);
        fp_cehttp_binary_free(&b);
        return;
    }
    char joined[1024] = "";
    const char *h = b.headers;
    for (size_t i = 0; i < b.nheaders; i++, h += strlen(h) + 1) {
        if (i)
            strcat(joined, "|");
        strcat(joined, h);
    }
    cr_assert_str_eq(joined, c->headers);
    cr_assert_str_eq(b.content_type, c->content_type);
    if (c->body) {
        cr_assert_eq(b.body_len, strlen(c->body), "%.*s", (int)b.body_len, b.body);
        cr_assert_eq(memcmp(b.body, c->body, b.body_len), 0, "%.*s", (int)b.body_len, b.body);
    } else {
        cr_assert_eq(b.body_len, 0);
    }
    fp_cehttp_binary_free(&b);
}

Test(cehttp, headers_are_capped)
{
    /* 10 attributes of 8000 bytes: more than FP_CEHTTP_MAX_HEADERS_BYTES together. */
    static char ev[100000];
    size_t n = 0;
    n += (size_t)sprintf(ev + n, "{");
    for (int i = 0; i < 10; i++) {
        n += (size_t)sprintf(ev + n, "%s\"a%d\":\"", i ? "," : "", i);
        memset(ev + n, 'v', 8000);
        n += 8000;
        ev[n++] = '"';
    }
    ev[n++] = '}';
    fp_cehttp_binary b;
    fp_error err = {0};
    cr_assert_eq(fp_cehttp_binary_of(ev, n, &b, &err), FP_EINVAL);
    cr_assert(strstr(err.msg, "exceed"), "%s", err.msg);
    fp_cehttp_binary_free(&b);
}
