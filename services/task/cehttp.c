/* cehttp.c — see cehttp.h. */
#include "cehttp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jscan.h"

#define ATTR_MAX 8192   /* one decoded attribute value */

/* A CloudEvents attribute name: lower-case letters and digits. */
static int name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

/* Appends "ce-<name>: <value percent-encoded>" and its NUL. */
static int add_header(fp_buf *b, const char *name, const char *v, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = fp_buf_printf(b, "ce-%s: ", name);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '%') {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = fp_buf_add(b, enc, 3);
        } else {
            rc = fp_buf_add(b, &v[i], 1);
        }
    }
    return rc ? rc : fp_buf_add(b, "", 1);
}

int fp_cehttp_binary_of(const char *event, size_t len, fp_cehttp_binary *out, fp_error *err)
{
    fp_jscan s;
    fp_jscan_token k, v;
    fp_buf b;
    char name[64];
    char *val = NULL;
    int rc = FP_ENOMEM;

    memset(out, 0, sizeof *out);
    snprintf(out->content_type, sizeof out->content_type, "application/json");
    fp_buf_init(&b, FP_CEHTTP_MAX_HEADERS_BYTES);
    if (!(val = malloc(ATTR_MAX)))
        goto out;
    fp_jscan_init(&s, event, len);
    if (fp_jscan_expect(&s, '{') < 0) {
        rc = fp_error_set(err, FP_EINVAL, "the event is not a JSON object");
        goto out;
    }
    int first = 1;
    while (!fp_jscan_accept(&s, '}')) {
        if ((!first && fp_jscan_expect(&s, ',') < 0) || fp_jscan_name(&s, &k) < 0 ||
            fp_jscan_value(&s, &v) < 0) {
            rc = fp_error_set(err, FP_EINVAL, "the event is not valid JSON: %s", s.why);
            goto out;
        }
        first = 0;
        if (fp_jscan_unescape(&k, name, sizeof name) < 0 || !name_ok(name)) {
            rc = fp_error_set(err, FP_EINVAL, "attribute name '%.*s' cannot be a ce- header",
                              (int)(k.len > 40 ? 40 : k.len), k.text);
            goto out;
        }
        if (strcmp(name, "data") == 0) {
            /* The body is the value as written; a string keeps its quotes. */
            out->body = v.kind == FP_JSCAN_STRING ? v.text - 1 : v.text;
            out->body_len = v.kind == FP_JSCAN_STRING ? v.len + 2 : v.len;
            continue;
        }
        if (strcmp(name, "data_base64") == 0) {
            rc = fp_error_set(err, FP_EINVAL, "data_base64 is not supported in binary mode");
            goto out;
        }
        if (v.kind == FP_JSCAN_NULL)
            continue;   /* an absent attribute */
        if (v.kind == FP_JSCAN_OBJECT && strcmp(name, "moderation") == 0) {
            /* the moderate kind's extension object: its JSON as written, percent-encoded */
            if ((rc = add_header(&b, name, v.text, v.len)) < 0) {
                if (rc == FP_ELIMIT)
                    rc = fp_error_set(err, FP_EINVAL, "the ce- headers exceed %d bytes", FP_CEHTTP_MAX_HEADERS_BYTES);
                goto out;
            }
            out->nheaders++;
            continue;
        }
        if (v.kind == FP_JSCAN_OBJECT || v.kind == FP_JSCAN_ARRAY) {
            rc = fp_error_set(err, FP_EINVAL, "attribute '%s' is not a scalar", name);
            goto out;
        }
        const char *text = v.text;
        long n = (long)v.len;
        if (v.kind == FP_JSCAN_STRING) {
            if ((n = fp_jscan_unescape(&v, val, ATTR_MAX)) < 0) {
                rc = fp_error_set(err, FP_EINVAL, "attribute '%s' is longer than %d bytes", name,
                                  ATTR_MAX - 1);
                goto out;
            }
            text = val;
        }
        if (strcmp(name, "datacontenttype") == 0) {
            if ((size_t)n >= sizeof out->content_type) {
                rc = fp_error_set(err, FP_EINVAL, "datacontenttype is too long");
                goto out;
            }
            for (long i = 0; i < n; i++)
                if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f) {
                    rc = fp_error_set(err, FP_EINVAL, "datacontenttype holds a control character");
                    goto out;
                }
            memcpy(out->content_type, text, (size_t)n);
            out->content_type[n] = '\0';
            continue;
        }
        if ((rc = add_header(&b, name, text, (size_t)n)) < 0) {
            if (rc == FP_ELIMIT)
                rc = fp_error_set(err, FP_EINVAL, "the ce- headers exceed %d bytes",
                                  FP_CEHTTP_MAX_HEADERS_BYTES);
            goto out;
        }
        out->nheaders++;
    }
    if (fp_jscan_finish(&s) < 0) {
        rc = fp_error_set(err, FP_EINVAL, "the event has text after its object");
        goto out;
    }
    rc = FP_ENOMEM;
    if (!(out->headers = fp_buf_take(&b)))
        goto out;
    rc = 0;
out:
    fp_buf_free(&b);
    free(val);
    return rc;
}

void fp_cehttp_binary_free(fp_cehttp_binary *b)
{
    free(b->headers);
    memset(b, 0, sizeof *b);
}
