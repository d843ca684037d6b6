/* mailtmpl.c — see mailtmpl.h. */
#include "mailtmpl.h"

#include <stdlib.h>
#include <string.h>

#include "jscan.h"

/* One piece of a template: literal text, or a placeholder (is_field). */
typedef struct piece {
    int is_field;
    size_t off, len;   /* into src: the literal, or the field name */
} piece;

struct fp_mailtmpl {
    char *src;
    piece *pieces;
    size_t n;
};

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

/* Appends one piece; 0 or FP_ENOMEM. */
static int add_piece(fp_mailtmpl *t, size_t *cap, int is_field, size_t off, size_t len)
{
    if (len == 0 && !is_field)
        return 0;
    if (t->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        piece *p = realloc(t->pieces, ncap * sizeof *p);
        if (!p)
            return FP_ENOMEM;
        t->pieces = p;
        *cap = ncap;
    }
    t->pieces[t->n++] = (piece){is_field, off, len};
    return 0;
}

fp_mailtmpl *fp_mailtmpl_compile(const char *src, fp_error *err)
{
    fp_mailtmpl *t = calloc(1, sizeof *t);
    size_t cap = 0, lit = 0, i = 0;
    if (!t || !(t->src = strdup(src ? src : "")))
        goto enomem;
    const char *s = t->src;
    while (s[i]) {
        if (s[i] != '{' || s[i + 1] != '{') {
            i++;
            continue;
        }
        if (add_piece(t, &cap, 0, lit, i - lit) < 0)
            goto enomem;
        size_t j = i + 2;
        while (s[j] == ' ')
            j++;
        size_t name = j;
        while (name_char(s[j]))
            j++;
        size_t name_len = j - name;
        while (s[j] == ' ')
            j++;
        if (name_len == 0 || s[j] != '}' || s[j + 1] != '}') {
            fp_error_set(err, FP_EINVAL, "a placeholder at offset %zu is not {{field}} (a field name of letters, "
                         "digits, '_', '-' or '.', then }})", i);
            fp_mailtmpl_free(t);
            return NULL;
        }
        if (add_piece(t, &cap, 1, name, name_len) < 0)
            goto enomem;
        i = lit = j + 2;
    }
    if (add_piece(t, &cap, 0, lit, i - lit) < 0)
        goto enomem;
    return t;
enomem:
    fp_mailtmpl_free(t);
    fp_error_set(err, FP_ENOMEM, "out of memory");
    return NULL;
}

void fp_mailtmpl_free(fp_mailtmpl *t)
{
    if (!t)
        return;
    free(t->src);
    free(t->pieces);
    free(t);
}

/* Appends one JSON token as a template writes it (a string decoded). */
static int add_token(fp_buf *out, const fp_jscan_token *v)
{
    if (v->kind == FP_JSCAN_NULL)
        return 0;
    if (v->kind != FP_JSCAN_STRING)
        return fp_buf_add(out, v->text, v->len);
    if (!v->escaped)
        return fp_buf_add(out, v->text, v->len);
    char *tmp = malloc(v->len + 1);   /* decoding never grows a string */
    if (!tmp)
        return FP_ENOMEM;
    long n = fp_jscan_unescape(v, tmp, v->len + 1);
    int rc = n < 0 ? FP_EINVAL : fp_buf_add(out, tmp, (size_t)n);
    free(tmp);
    return rc;
}

/* Appends a value: an array's items joined by ", ", anything else by add_token. */
static int add_value(fp_buf *out, const fp_jscan_token *v)
{
    if (v->kind != FP_JSCAN_ARRAY)
        return add_token(out, v);
    fp_jscan s;
    fp_jscan_token item;
    fp_jscan_init(&s, v->text, v->len);
    if (fp_jscan_expect(&s, '[') < 0)
        return FP_EINVAL;
    if (fp_jscan_accept(&s, ']'))
        return 0;
    for (int first = 1;; first = 0) {
        int rc;
        if (fp_jscan_value(&s, &item) < 0)
            return FP_EINVAL;
        if ((!first && (rc = fp_buf_adds(out, ", ")) < 0) || (rc = add_token(out, &item)) < 0)
            return rc;
        if (fp_jscan_accept(&s, ']'))
            return 0;
        if (fp_jscan_expect(&s, ',') < 0)
            return FP_EINVAL;
    }
}

/* The field named name[0..len) in ev, or NULL. */
static const fp_jscan_token *find(const fp_event *ev, const char *name, size_t len)
{
    for (size_t i = 0; i < ev->nfields; i++)
        if (strlen(ev->fields[i].name) == len && memcmp(ev->fields[i].name, name, len) == 0)
            return &ev->fields[i].value;
    return NULL;
}

int fp_mailtmpl_value(const fp_event *ev, const char *name, fp_buf *out)
{
    const fp_jscan_token *v = find(ev, name, strlen(name));
    if (!v || v->kind == FP_JSCAN_NULL)
        return 0;
    size_t before = out->len;
    int rc = add_value(out, v);
    if (rc < 0)
        return rc;
    return out->len > before || v->kind == FP_JSCAN_STRING ? 1 : 0;
}

/* Appends s[0..n) HTML-escaped. */
static int add_html(fp_buf *out, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: continue;
        }
        int rc;
        if ((rc = fp_buf_add(out, s + from, i - from)) < 0 || (rc = fp_buf_adds(out, e)) < 0)
            return rc;
        from = i + 1;
    }
    return fp_buf_add(out, s + from, n - from);
}

int fp_mailtmpl_render(const fp_mailtmpl *t, const fp_event *ev, fp_mailtmpl_mode mode, fp_buf *out, fp_error *err)
{
    fp_buf v;
    int rc = 0;
    fp_buf_init(&v, out->max);
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        const piece *p = &t->pieces[i];
        if (!p->is_field) {
            rc = fp_buf_add(out, t->src + p->off, p->len);
            continue;
        }
        const fp_jscan_token *tok = find(ev, t->src + p->off, p->len);
        if (!tok)
            continue;   /* an optional field left empty */
        fp_buf_reset(&v);
        if ((rc = add_value(&v, tok)) < 0) {
            if (rc == FP_EINVAL)
                fp_error_set(err, FP_EINVAL, "field '%.*s' cannot be decoded", (int)(p->len > 64 ? 64 : p->len),
                             t->src + p->off);
            break;
        }
        for (size_t k = 0; k < v.len; k++) {
            unsigned char c = (unsigned char)v.data[k];
            if (c == 0 || (mode == FP_MAILTMPL_HEADER && (c < 0x20 || c == 0x7f))) {
                rc = fp_error_set(err, FP_EINVAL, "field '%.*s' holds %s: refused in the %s",
                                  (int)(p->len > 64 ? 64 : p->len), t->src + p->off,
                                  c == '\r' || c == '\n' ? "a line break" : "a control character",
                                  mode == FP_MAILTMPL_HEADER ? "subject" : "mail");
                break;
            }
        }
        if (rc == 0 && v.len)
            rc = mode == FP_MAILTMPL_HTML ? add_html(out, v.data, v.len) : fp_buf_add(out, v.data, v.len);
    }
    fp_buf_free(&v);
    if (rc == FP_ENOMEM || rc == FP_ELIMIT)
        fp_error_set(err, rc, rc == FP_ENOMEM ? "out of memory" : "the rendered mail is too long");
    return rc;
}
