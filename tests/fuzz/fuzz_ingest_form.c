/* libFuzzer target: formpipe-ingest's application/x-www-form-urlencoded parser (#16)
 * and the X-Forwarded-For walk. The first byte picks the pair limit (1..256); the rest
 * is the body. Checked: a refused body says why; an accepted one has at most the limit
 * of members, each name non-empty and every name and value valid UTF-8 without NUL;
 * encoding the result again and parsing that gives the same object (repeats keep the
 * last value). The same bytes as an X-Forwarded-For from a trusted peer give a client
 * key that fits and is NUL-terminated. Any sanitizer report, abort or timeout (a
 * quadratic parse shows as one) is a finding. */
#include "body.h"
#include "netaddr.h"
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_ingest_form: invariant broken: %s\n", what);
        abort();
    }
}

/* Appends s percent-encoded (every byte but unreserved ones) at *p. */
static void encode(char **p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            *(*p)++ = (char)c;
        } else {
            *(*p)++ = '%';
            *(*p)++ = hex[c >> 4];
            *(*p)++ = hex[c & 15];
        }
    }
}

static void check_form(const char *body, size_t len, int max_pairs)
{
    fp_error err = {0};
    cJSON *doc = fp_body_form(body, len, max_pairs, &err);
    if (!doc) {
        check(err.code != 0 && err.msg[0] != '\0', "a refused body says why");
        return;
    }
    check(cJSON_GetArraySize(doc) <= max_pairs, "no more members than the pair limit");
    char *again = malloc(3 * len + 2), *p = again;
    for (const cJSON *m = doc->child; m; m = m->next) {
        check(m->string && m->string[0], "every name is non-empty");
        check(fp_utf8_valid(m->string, strlen(m->string)), "every name is UTF-8");
        check(cJSON_IsString(m) && fp_utf8_valid(m->valuestring, strlen(m->valuestring)), "every value is UTF-8 text");
        if (p != again)
            *p++ = '&';
        encode(&p, m->string);
        *p++ = '=';
        encode(&p, m->valuestring);
    }
    *p = '\0';
    cJSON *doc2 = fp_body_form(again, (size_t)(p - again), max_pairs, &err);
    check(doc2 != NULL, "the encoded result parses");
    check(cJSON_Compare(doc, doc2, 1), "the encoded result parses to the same object");
    cJSON_Delete(doc2);
    cJSON_Delete(doc);
    free(again);
}

static void check_forwarded(const char *text)
{
    static fp_cidrs trusted;
    if (!trusted.n) {
        char *items[] = {"10.0.0.0/8", "fd00::/8"};
        fp_strlist l = {items, 2};
        check(fp_cidrs_parse(&l, &trusted, NULL) == 0, "the trusted list parses");
    }
    char out[FP_NETADDR_KEY_MAX];
    memset(out, 'x', sizeof out);
    fp_netaddr_client(&trusted, "10.1.2.3", text, out, sizeof out);
    check(memchr(out, '\0', sizeof out) != NULL, "the client key is NUL-terminated");
    fp_cidr c;
    fp_error err = {0};
    if (fp_cidr_parse(text, &c, &err) == 0)
        check(c.bits >= 0 && c.bits <= (c.v6 ? 128 : 32), "a parsed prefix length fits its family");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int max_pairs = 1 + data[0] % FP_BODY_MAX_PAIRS;
    check_form((const char *)data + 1, size - 1, max_pairs);
    char *text = malloc(size);   /* a header value: up to the first NUL (the input need not hold one) */
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    check_forwarded(text);
    free(text);
    return 0;
}
