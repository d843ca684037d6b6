/* filter.c — see filter.h. Each condition walks the event with fp_jscan member by
 * member; nothing is built. */
#include "filter.h"
#include "jscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cond {
    char path[FP_FILTER_MAX_PATH + 1];   /* segments separated by NULs, ended by two */
    fp_jscan_kind kind;                   /* STRING, NUMBER, TRUE, FALSE or NULL */
    char *str;                            /* STRING: decoded */
    double num;                           /* NUMBER */
} cond;

struct fp_filter {
    cond c[FP_FILTER_MAX];
    size_t n;
};

/* A number token's value. */
static double number_of(const fp_jscan_token *t)
{
    char buf[64];
    size_t n = t->len < sizeof buf - 1 ? t->len : sizeof buf - 1;
    memcpy(buf, t->text, n);
    buf[n] = 0;
    return strtod(buf, NULL);
}

/* Reads "path=value" into *c. 0, or FP_EINVAL/FP_ENOMEM with *err. */
static int parse_cond(cond *c, const char *spec, fp_error *err)
{
    const char *eq = strchr(spec, '=');
    size_t pl = eq ? (size_t)(eq - spec) : 0;
    if (!eq || pl == 0 || pl > FP_FILTER_MAX_PATH - 1)
        return fp_error_set(err, FP_EINVAL, "filter '%.60s': must be <path>=<JSON value>, path at most %d bytes", spec,
                            FP_FILTER_MAX_PATH - 1);
    memcpy(c->path, spec, pl);
    c->path[pl] = c->path[pl + 1] = 0;
    for (size_t i = 0; i < pl; i++) {
        if (c->path[i] == '.')
            c->path[i] = 0;
        if (!c->path[i] && (i == 0 || !c->path[i - 1] || i == pl - 1))
            return fp_error_set(err, FP_EINVAL, "filter '%.60s': the path has an empty member name", spec);
    }
    fp_jscan s;
    fp_jscan_token t;
    fp_jscan_init(&s, eq + 1, strlen(eq + 1));
    if (fp_jscan_value(&s, &t) || fp_jscan_finish(&s) || t.kind == FP_JSCAN_OBJECT || t.kind == FP_JSCAN_ARRAY)
        return fp_error_set(err, FP_EINVAL, "filter '%.60s': the value must be a JSON string, number, true, false or null",
                            spec);
    c->kind = t.kind;
    if (t.kind == FP_JSCAN_NUMBER)
        c->num = number_of(&t);
    if (t.kind == FP_JSCAN_STRING) {
        if (!(c->str = malloc(t.len + 1)))
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        long dn = fp_jscan_unescape(&t, c->str, t.len + 1);
        if (dn < 0 || (size_t)dn != strlen(c->str))
            return fp_error_set(err, FP_EINVAL, "filter '%.60s': the string cannot be decoded", spec);
    }
    return 0;
}

fp_filter *fp_filter_new(const fp_strlist *conds, fp_error *err)
{
    fp_filter *f = calloc(1, sizeof *f);
    if (!f) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    size_t n = conds ? conds->n : 0;
    if (n > FP_FILTER_MAX) {
        fp_error_set(err, FP_EINVAL, "at most %d filter conditions", FP_FILTER_MAX);
        fp_filter_free(f);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        f->n++;
        if (parse_cond(&f->c[i], conds->items[i], err)) {
            fp_filter_free(f);
            return NULL;
        }
    }
    return f;
}

size_t fp_filter_count(const fp_filter *f)
{
    return f->n;
}

/* 1 when the value at path (segments from seg) inside object text[0..len) equals c. */
static int holds(const cond *c, const char *seg, const char *text, size_t len)
{
    fp_jscan s;
    fp_jscan_init(&s, text, len);
    if (fp_jscan_expect(&s, '{') || fp_jscan_accept(&s, '}'))
        return 0;
    const char *next = seg + strlen(seg) + 1;
    do {
        fp_jscan_token name, v;
        if (fp_jscan_name(&s, &name) || fp_jscan_value(&s, &v))
            return 0;
        if (!fp_jscan_equals(&name, seg))
            continue;
        if (*next)   /* a member further down: this one must be an object */
            return v.kind == FP_JSCAN_OBJECT && holds(c, next, v.text, v.len);
        if (v.kind != c->kind)
            return 0;
        if (v.kind == FP_JSCAN_STRING)
            return fp_jscan_equals(&v, c->str);
        if (v.kind == FP_JSCAN_NUMBER)
            return number_of(&v) == c->num;
        return 1;
    } while (fp_jscan_accept(&s, ','));
    return 0;
}

int fp_filter_match(const fp_filter *f, const char *json, size_t len)
{
    for (size_t i = 0; i < f->n; i++)
        if (!holds(&f->c[i], f->c[i].path, json, len))
            return 0;
    return 1;
}

void fp_filter_free(fp_filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->c[i].str);
    free(f);
}
