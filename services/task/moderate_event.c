/* moderate_event.c — see moderate_event.h. */
#include "moderate_event.h"
#include "fold.h"
#include "jscan.h"

#include <stdlib.h>
#include <string.h>

/* Room for n bytes (and a NUL) in both scratch buffers. */
static int reserve(fp_modevent_scratch *s, size_t n)
{
    if (n + 1 <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < n + 1)
        cap *= 2;
    char *t = realloc(s->text, cap);
    if (!t)
        return FP_ENOMEM;
    s->text = t;
    char *f = realloc(s->folded, cap);
    if (!f)
        return FP_ENOMEM;
    s->folded = f;
    s->cap = cap;
    return 0;
}

/* 1 when the field is one the task checks. */
static int chosen(const fp_modevent_config *c, const char *name)
{
    if (!c->fields || !c->fields->n)
        return 1;
    for (size_t i = 0; i < c->fields->n; i++)
        if (strcmp(c->fields->items[i], name) == 0)
            return 1;
    return 0;
}

/* Adds a field's result to the event's: scores add, terms are a union. */
static void merge(fp_words_result *into, const fp_words_result *r)
{
    into->score += r->score;
    for (size_t i = 0; i < r->nterms; i++) {
        size_t k = 0;
        while (k < into->nterms && into->terms[k] != r->terms[i])
            k++;
        if (k == into->nterms && into->nterms < FP_WORDS_MAX_REPORTED)
            into->terms[into->nterms++] = r->terms[i];
    }
}

int fp_modevent_check(const fp_words *w, const fp_modevent_config *c, const fp_event *ev, fp_modevent_scratch *s,
                      fp_moderation *m)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < ev->nfields; i++) {
        const fp_event_field *f = &ev->fields[i];
        if (f->value.kind != FP_JSCAN_STRING || !chosen(c, f->name))
            continue;
        if (reserve(s, f->value.len))
            return FP_ENOMEM;
        long n = fp_jscan_unescape(&f->value, s->text, s->cap), fl;
        int one = 0;
        fp_words_result r = {0}, rl = {0};
        if (n < 0 || (fl = fp_fold(s->text, (size_t)n, FP_FOLD_ONE_I, s->folded, s->cap, &one)) < 0)
            continue;   /* cannot happen: decoding and folding never lengthen */
        fp_words_match(w, s->folded, (size_t)fl, &r);
        if (one && (fl = fp_fold(s->text, (size_t)n, FP_FOLD_ONE_L, s->folded, s->cap, NULL)) >= 0) {
            fp_words_match(w, s->folded, (size_t)fl, &rl);
            long score = r.score > rl.score ? r.score : rl.score;
            merge(&r, &rl);
            r.score = score;
        }
        if (!r.score)
            continue;
        merge(&m->words, &r);
        if (m->nfields < FP_MODEVENT_MAX_FIELDS)
            m->fields[m->nfields++] = f->name;
    }
    m->flagged = m->words.score >= (c->threshold > 0 ? c->threshold : 1);
    return 0;
}

/* Appends a comma (unless first) and s as a JSON string. */
static int add_item(fp_buf *b, int first, const char *s)
{
    int rc = first ? 0 : fp_buf_add(b, ",", 1);
    return rc ? rc : fp_buf_add_json_string(b, s, strlen(s));
}

/* Appends the "moderation" member's value. */
static int add_moderation(fp_buf *b, const fp_moderation *m, const fp_words *w)
{
    int rc = fp_buf_printf(b, "{\"flagged\":%s,\"score\":%ld,\"fields\":[", m->flagged ? "true" : "false",
                           m->words.score);
    for (size_t i = 0; rc == 0 && i < m->nfields; i++)
        rc = add_item(b, i == 0, m->fields[i]);
    if (rc == 0)
        rc = fp_buf_adds(b, "],\"terms\":[");
    for (size_t i = 0; rc == 0 && i < m->words.nterms; i++)
        rc = add_item(b, i == 0, fp_words_term(w, m->words.terms[i]));
    return rc ? rc : fp_buf_adds(b, "]}");
}

/* Appends one envelope member as written, or with the moderated type. */
static int add_member(fp_buf *b, int first, const fp_jscan_token *name, const fp_jscan_token *v)
{
    int rc = first ? 0 : fp_buf_add(b, ",", 1);
    if (rc == 0)
        rc = fp_buf_add(b, "\"", 1);
    if (rc == 0)
        rc = fp_buf_add(b, name->text, name->len);
    if (rc == 0)
        rc = fp_buf_add(b, "\":", 2);
    if (rc)
        return rc;
    if (fp_jscan_equals(name, "type"))
        return fp_buf_adds(b, "\"" FP_EVENT_TYPE_MODERATED "\"");
    if (v->kind != FP_JSCAN_STRING)
        return fp_buf_add(b, v->text, v->len);
    rc = fp_buf_add(b, "\"", 1);
    if (rc == 0)
        rc = fp_buf_add(b, v->text, v->len);
    return rc ? rc : fp_buf_add(b, "\"", 1);
}

int fp_modevent_encode(const char *payload, size_t len, const fp_moderation *m, const fp_words *w, fp_buf *out)
{
    fp_jscan s;
    fp_jscan_init(&s, payload, len);
    if (fp_jscan_expect(&s, '{'))
        return FP_EINVAL;
    int rc = fp_buf_add(out, "{", 1), first = 1;
    if (rc == 0 && !fp_jscan_accept(&s, '}')) {
        do {
            fp_jscan_token name, v;
            if (fp_jscan_name(&s, &name) || fp_jscan_value(&s, &v))
                return FP_EINVAL;
            if (fp_jscan_equals(&name, "moderation"))
                continue;
            rc = add_member(out, first, &name, &v);
            first = 0;
        } while (rc == 0 && fp_jscan_accept(&s, ','));
    }
    if (rc == 0)
        rc = fp_buf_adds(out, first ? "\"moderation\":" : ",\"moderation\":");
    if (rc == 0)
        rc = add_moderation(out, m, w);
    return rc ? rc : fp_buf_add(out, "}", 1);
}

void fp_modevent_scratch_free(fp_modevent_scratch *s)
{
    free(s->text);
    free(s->folded);
    s->text = s->folded = NULL;
    s->cap = 0;
}
