/* buf.c — see buf.h. */
#include "buf.h"
#include "utf8.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FP_BUF_MIN_ALLOC 64

void fp_buf_init(fp_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void fp_buf_free(fp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void fp_buf_reset(fp_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for n more bytes plus the terminating NUL. */
static int fp_buf_reserve(fp_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return FP_ELIMIT;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : FP_BUF_MIN_ALLOC;
    while (cap < need)
        cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return FP_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int fp_buf_add(fp_buf *b, const void *p, size_t n)
{
    int rc = fp_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int fp_buf_adds(fp_buf *b, const char *s)
{
    return fp_buf_add(b, s, strlen(s));
}

int fp_buf_vprintf(fp_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return FP_EINVAL;
    int rc = fp_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int fp_buf_printf(fp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fp_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* A byte that may be copied into a JSON string as it is: printable ASCII other than
 * the quote and the backslash. */
static int json_plain(unsigned char c) { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; }

int fp_buf_add_json_str(fp_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int rc = 0;
    while (i < n && rc == 0) {
        size_t run = i;
        while (run < n && json_plain(p[run]))
            run++;
        if (run > i) {   /* the common case: a stretch of plain ASCII in one append */
            rc = fp_buf_add(b, p + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = fp_buf_add(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            const char *short_esc = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (short_esc) {
                rc = fp_buf_adds(b, short_esc);
            } else {
                rc = fp_buf_printf(b, "\\u%04x", c);
            }
            i++;
        } else {
            unsigned cp;
            size_t len = fp_utf8_next(p + i, n - i, &cp);
            if (len == 0) {
                rc = fp_buf_adds(b, "\\ufffd");
                i++;
            } else {
                rc = fp_buf_add(b, p + i, len);
                i += len;
            }
        }
    }
    return rc;
}

int fp_buf_add_json_string(fp_buf *b, const char *s, size_t n)
{
    int rc = fp_buf_add(b, "\"", 1);
    if (!rc)
        rc = fp_buf_add_json_str(b, s, n);
    return rc ? rc : fp_buf_add(b, "\"", 1);
}

char *fp_buf_take(fp_buf *b)
{
    char *p = b->data;
    if (!p) {
        p = malloc(1);
        if (p)
            p[0] = '\0';
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
