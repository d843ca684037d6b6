/* moderate_words.c — see moderate_words.h. The set holds each folded term once, in one
 * arena; slots are 32-bit term indices, probed linearly from a 64-bit FNV-1a hash. */
#include "moderate_words.h"
#include "fold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct term {
    size_t folded;      /* offset of the folded term in the arena */
    size_t written;     /* offset of the term as written */
    unsigned len;       /* folded length */
    unsigned hash;      /* low bits of the hash, to skip most compares */
} term;

struct fp_words {
    term *terms;
    size_t nterms, cap;
    char *arena;
    size_t used, arena_cap;
    unsigned *slots;    /* term index + 1; 0 = empty */
    size_t nslots;      /* a power of two, at least twice the terms */
    int max_words;      /* words in the longest term */
};

static unsigned long long hash_of(const char *s, size_t n)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* The term equal to s[0..n), or -1. */
static long find(const fp_words *w, const char *s, size_t n, unsigned long long h)
{
    size_t mask = w->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        unsigned slot = w->slots[i];
        if (!slot)
            return -1;
        const term *t = &w->terms[slot - 1];
        if (t->hash == (unsigned)h && t->len == n && memcmp(w->arena + t->folded, s, n) == 0)
            return (long)(slot - 1);
    }
}

/* Appends n bytes and a NUL to the arena; the offset, or (size_t)-1 without memory. */
static size_t arena_add(fp_words *w, const char *s, size_t n)
{
    if (w->used + n + 1 > w->arena_cap) {
        size_t cap = w->arena_cap ? w->arena_cap * 2 : 4096;
        while (cap < w->used + n + 1)
            cap *= 2;
        char *a = realloc(w->arena, cap);
        if (!a)
            return (size_t)-1;
        w->arena = a;
        w->arena_cap = cap;
    }
    memcpy(w->arena + w->used, s, n);
    w->arena[w->used + n] = 0;
    w->used += n + 1;
    return w->used - n - 1;
}

/* Builds the slot table for the terms read. */
static int index_terms(fp_words *w)
{
    w->nslots = 16;
    while (w->nslots < w->nterms * 2)
        w->nslots *= 2;
    if (!(w->slots = calloc(w->nslots, sizeof *w->slots)))
        return FP_ENOMEM;
    for (size_t i = 0; i < w->nterms; i++) {
        term *t = &w->terms[i];
        unsigned long long h = hash_of(w->arena + t->folded, t->len);
        size_t j = (size_t)h & (w->nslots - 1);
        while (w->slots[j])
            j = (j + 1) & (w->nslots - 1);
        w->slots[j] = (unsigned)i + 1;
    }
    return 0;
}

/* Adds one line's term unless it is a repeat. 0, or negative with *err. */
static int add_term(fp_words *w, const char *s, size_t n, int line, fp_error *err)
{
    char folded[FP_WORDS_MAX_TERM + 1];
    if (n > FP_WORDS_MAX_TERM)
        return fp_error_set(err, FP_EINVAL, "word list line %d: a term is longer than %d bytes", line, FP_WORDS_MAX_TERM);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            return fp_error_set(err, FP_EINVAL, "word list line %d: a term holds a control character", line);
    long fl = fp_fold(s, n, FP_FOLD_ONE_I, folded, sizeof folded, NULL);
    if (fl <= 0)
        return fp_error_set(err, FP_EINVAL, "word list line %d: the term has no letters", line);
    unsigned long long h = hash_of(folded, (size_t)fl);
    if (w->slots && find(w, folded, (size_t)fl, h) >= 0)
        return 0;
    if (w->nterms == FP_WORDS_MAX_TERMS)
        return fp_error_set(err, FP_ELIMIT, "the word list has more than %d terms", FP_WORDS_MAX_TERMS);
    if (w->nterms == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        term *t = realloc(w->terms, cap * sizeof *t);
        if (!t)
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        w->terms = t;
        w->cap = cap;
    }
    size_t fo = arena_add(w, folded, (size_t)fl), wo = fo == (size_t)-1 ? fo : arena_add(w, s, n);
    if (wo == (size_t)-1)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    w->terms[w->nterms++] = (term){.folded = fo, .written = wo, .len = (unsigned)fl, .hash = (unsigned)h};
    int words = 1;
    for (long i = 0; i < fl; i++)
        words += folded[i] == ' ';
    if (words > w->max_words)
        w->max_words = words;
    /* keep the set current so repeats are found: rebuilt when half full */
    if (!w->slots || w->nterms * 2 > w->nslots) {
        free(w->slots);
        w->slots = NULL;
        if (index_terms(w))
            return fp_error_set(err, FP_ENOMEM, "out of memory");
    } else {
        size_t j = (size_t)h & (w->nslots - 1);
        while (w->slots[j])
            j = (j + 1) & (w->nslots - 1);
        w->slots[j] = (unsigned)w->nterms;
    }
    return 0;
}

fp_words *fp_words_parse(const char *text, size_t len, fp_error *err)
{
    fp_words *w = calloc(1, sizeof *w);
    if (!w) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    const char *p = text, *end = text + len;
    for (int line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end, *s = p;
        p = nl ? nl + 1 : end;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (s == e || *s == '#')
            continue;
        if (add_term(w, s, (size_t)(e - s), line, err)) {
            fp_words_free(w);
            return NULL;
        }
    }
    if (!w->slots && index_terms(w)) {
        fp_words_free(w);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    return w;
}

fp_words *fp_words_load(const char *path, fp_error *err)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) || st.st_size > FP_WORDS_MAX_FILE) {
        if (f)
            fclose(f);
        fp_error_set(err, FP_EIO, "word list %s: %s", path, f ? "larger than 64 MiB" : "cannot be opened");
        return NULL;
    }
    char *text = malloc((size_t)st.st_size + 1);
    size_t n = text ? fread(text, 1, (size_t)st.st_size, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!text || bad) {
        free(text);
        fp_error_set(err, text ? FP_EIO : FP_ENOMEM, "word list %s: %s", path, text ? "read failed" : "out of memory");
        return NULL;
    }
    fp_words *w = fp_words_parse(text, n, err);
    free(text);
    return w;
}

size_t fp_words_count(const fp_words *w)
{
    return w->nterms;
}

const char *fp_words_term(const fp_words *w, unsigned i)
{
    return i < w->nterms ? w->arena + w->terms[i].written : "";
}

/* Records one occurrence of term i. */
static void hit(fp_words_result *r, unsigned i)
{
    r->score++;
    for (size_t k = 0; k < r->nterms; k++)
        if (r->terms[k] == i)
            return;
    if (r->nterms < FP_WORDS_MAX_REPORTED)
        r->terms[r->nterms++] = i;
}

long fp_words_match(const fp_words *w, const char *folded, size_t len, fp_words_result *r)
{
    long found = 0;
    if (!w->nterms)
        return 0;
    for (size_t s = 0; s < len;) {   /* s: start of a word */
        size_t e = s;
        for (int words = 0; words < w->max_words && e < len; words++) {
            if (words)
                e++;   /* past the space */
            const char *sp = memchr(folded + e, ' ', len - e);
            e = sp ? (size_t)(sp - folded) : len;
            long t = find(w, folded + s, e - s, hash_of(folded + s, e - s));
            if (t >= 0) {
                hit(r, (unsigned)t);
                found++;
            }
        }
        const char *sp = memchr(folded + s, ' ', len - s);
        s = sp ? (size_t)(sp - folded) + 1 : len;
    }
    return found;
}

void fp_words_free(fp_words *w)
{
    if (!w)
        return;
    free(w->terms);
    free(w->arena);
    free(w->slots);
    free(w);
}
