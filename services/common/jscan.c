/* jscan.c — see jscan.h. */
#include "jscan.h"
#include "utf8.h"

#include <string.h>

void fp_jscan_init(fp_jscan *s, const char *text, size_t len)
{
    s->p = text;
    s->end = text + len;
    s->depth = 0;
    s->why = NULL;
}

static int fail(fp_jscan *s, const char *why)
{
    s->why = why;
    return -1;
}

static void skip_space(fp_jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

int fp_jscan_expect(fp_jscan *s, char c)
{
    skip_space(s);
    if (s->p >= s->end || *s->p != c) {
        switch (c) {
        case '{': return fail(s, "expected an object");
        case '}': return fail(s, "expected ',' or '}' after a member");
        case ']': return fail(s, "expected ',' or ']' after an element");
        case ':': return fail(s, "expected ':' after a member name");
        default: return fail(s, "unexpected character");
        }
    }
    s->p++;
    return 0;
}

int fp_jscan_accept(fp_jscan *s, char c)
{
    skip_space(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int hex4(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v |= (unsigned)((c | 0x20) - 'a' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Reads a string whose opening quote is at s->p. */
static int read_string(fp_jscan *s, fp_jscan_token *t)
{
    const unsigned char *p = (const unsigned char *)s->p + 1, *end = (const unsigned char *)s->end;
    t->kind = FP_JSCAN_STRING;
    t->text = (const char *)p;
    t->escaped = 0;
    for (;;) {
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            return fail(s, "unterminated string");
        if (*p == '"')
            break;
        if (*p < 0x20)
            return fail(s, "control character in a string");
        if (*p >= 0x80) {
            unsigned cp;
            size_t n = fp_utf8_next(p, (size_t)(end - p), &cp);
            if (!n)
                return fail(s, "invalid UTF-8 in a string");
            p += n;
            continue;
        }
        /* a backslash */
        t->escaped = 1;
        if (end - p < 2)
            return fail(s, "unterminated string");
        if (strchr("\"\\/bfnrt", p[1]) && p[1]) {
            p += 2;
            continue;
        }
        unsigned u, lo;
        if (p[1] != 'u' || hex4((const char *)p + 2, (const char *)end, &u))
            return fail(s, "invalid escape in a string");
        p += 6;
        if (u >= 0xDC00 && u <= 0xDFFF)
            return fail(s, "lone surrogate in a string");
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4((const char *)p + 2, (const char *)end, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
                return fail(s, "lone surrogate in a string");
            p += 6;
        }
    }
    t->len = (size_t)((const char *)p - t->text);
    s->p = (const char *)p + 1;
    return 0;
}

static int is_digit(const char *p, const char *end) { return p < end && *p >= '0' && *p <= '9'; }

static int read_number(fp_jscan *s, fp_jscan_token *t)
{
    const char *p = s->p, *end = s->end;
    t->kind = FP_JSCAN_NUMBER;
    t->text = p;
    t->escaped = 0;
    if (*p == '-')
        p++;
    if (!is_digit(p, end))
        return fail(s, "invalid number");
    if (*p++ != '0')
        while (is_digit(p, end))
            p++;
    if (p < end && *p == '.') {
        if (!is_digit(++p, end))
            return fail(s, "invalid number");
        while (is_digit(p, end))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!is_digit(p, end))
            return fail(s, "invalid number");
        while (is_digit(p, end))
            p++;
    }
    t->len = (size_t)(p - t->text);
    s->p = p;
    return 0;
}

static int read_word(fp_jscan *s, fp_jscan_token *t, const char *word, fp_jscan_kind kind)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return fail(s, "unexpected character");
    t->kind = kind;
    t->text = s->p;
    t->len = n;
    t->escaped = 0;
    s->p += n;
    return 0;
}

/* Reads the elements (array) or members (object) after the opening bracket. */
static int read_container(fp_jscan *s, fp_jscan_token *t, int object)
{
    fp_jscan_token inner;
    t->kind = object ? FP_JSCAN_OBJECT : FP_JSCAN_ARRAY;
    t->text = s->p;
    t->escaped = 0;
    if (++s->depth > FP_JSCAN_MAX_DEPTH)
        return fail(s, "nesting too deep");
    s->p++;
    if (!fp_jscan_accept(s, object ? '}' : ']')) {
        do {
            if ((object && fp_jscan_name(s, &inner)) || fp_jscan_value(s, &inner))
                return -1;
        } while (fp_jscan_accept(s, ','));
        if (fp_jscan_expect(s, object ? '}' : ']'))
            return -1;
    }
    s->depth--;
    t->len = (size_t)(s->p - t->text);
    return 0;
}

int fp_jscan_value(fp_jscan *s, fp_jscan_token *t)
{
    skip_space(s);
    if (s->p >= s->end)
        return fail(s, "unexpected end of text");
    switch (*s->p) {
    case '"': return read_string(s, t);
    case '{': return read_container(s, t, 1);
    case '[': return read_container(s, t, 0);
    case 't': return read_word(s, t, "true", FP_JSCAN_TRUE);
    case 'f': return read_word(s, t, "false", FP_JSCAN_FALSE);
    case 'n': return read_word(s, t, "null", FP_JSCAN_NULL);
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return read_number(s, t);
        return fail(s, "unexpected character");
    }
}

int fp_jscan_name(fp_jscan *s, fp_jscan_token *t)
{
    skip_space(s);
    if (s->p >= s->end || *s->p != '"')
        return fail(s, "expected a member name");
    if (read_string(s, t))
        return -1;
    return fp_jscan_expect(s, ':');
}

int fp_jscan_finish(fp_jscan *s)
{
    skip_space(s);
    return s->p == s->end ? 0 : fail(s, "text after the value");
}

/* Decodes the character at *p (inside a checked string token) into out; returns its
 * byte count and advances *p. */
static size_t decode_one(const char **p, char out[4])
{
    const char *q = *p;
    unsigned u = 0, lo = 0xDC00;   /* set by hex4: the token was checked */
    if (*q != '\\') {
        *out = *q;
        *p = q + 1;
        return 1;
    }
    switch (q[1]) {
    case 'b': *out = '\b'; break;
    case 'f': *out = '\f'; break;
    case 'n': *out = '\n'; break;
    case 'r': *out = '\r'; break;
    case 't': *out = '\t'; break;
    case 'u': break;
    default: *out = q[1]; break;   /* " \ / */
    }
    if (q[1] != 'u') {
        *p = q + 2;
        return 1;
    }
    hex4(q + 2, q + 6, &u);
    q += 6;
    if (u >= 0xD800 && u <= 0xDBFF) {   /* checked: a low surrogate follows */
        hex4(q + 2, q + 6, &lo);
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        q += 6;
    }
    *p = q;
    if (u < 0x80) {
        out[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        out[0] = (char)(0xC0 | (u >> 6));
        out[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        out[0] = (char)(0xE0 | (u >> 12));
        out[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        out[2] = (char)(0x80 | (u & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (u >> 18));
    out[1] = (char)(0x80 | ((u >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((u >> 6) & 0x3F));
    out[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

long fp_jscan_unescape(const fp_jscan_token *t, char *out, size_t outsz)
{
    size_t n = 0;
    if (!t->escaped) {
        if (t->len >= outsz)
            return -1;
        memcpy(out, t->text, t->len);
        n = t->len;
    } else {
        const char *p = t->text, *end = t->text + t->len;
        while (p < end) {
            char c[4];
            size_t k = decode_one(&p, c);
            if (n + k >= outsz)
                return -1;
            memcpy(out + n, c, k);
            n += k;
        }
    }
    out[n] = '\0';
    return (long)n;
}

int fp_jscan_equals(const fp_jscan_token *t, const char *s)
{
    size_t slen = strlen(s);
    if (!t->escaped)
        return t->len == slen && memcmp(t->text, s, slen) == 0;
    const char *p = t->text, *end = t->text + t->len;
    size_t at = 0;
    while (p < end) {
        char c[4];
        size_t k = decode_one(&p, c);
        if (at + k > slen || memcmp(s + at, c, k) != 0)
            return 0;
        at += k;
    }
    return at == slen;
}
