/* jscan.h — a strict JSON reader that allocates nothing: it walks a text token by
 * token and hands out spans of it. RFC 8259, plus: strings must be valid UTF-8 and
 * may not escape a lone surrogate; nesting is bounded by FP_JSCAN_MAX_DEPTH. For hot
 * paths (the consumer reads every event) where building a cJSON tree costs too much. */
#ifndef FP_JSCAN_H
#define FP_JSCAN_H

#include <stddef.h>

#define FP_JSCAN_MAX_DEPTH 64

typedef enum fp_jscan_kind {
    FP_JSCAN_STRING,
    FP_JSCAN_NUMBER,
    FP_JSCAN_TRUE,
    FP_JSCAN_FALSE,
    FP_JSCAN_NULL,
    FP_JSCAN_OBJECT,
    FP_JSCAN_ARRAY,
} fp_jscan_kind;

typedef struct fp_jscan_token {
    fp_jscan_kind kind;
    const char *text;   /* the value as written; for a string, the part inside the quotes */
    size_t len;
    int escaped;        /* a string that holds backslash escapes */
} fp_jscan_token;

typedef struct fp_jscan {
    const char *p, *end;
    int depth;
    const char *why;    /* what is wrong, once a call returned -1 */
} fp_jscan;

/* Starts reading text[0..len). The text must outlive the tokens read from it. */
void fp_jscan_init(fp_jscan *s, const char *text, size_t len);

/* Skips whitespace and consumes c. Returns 0, or -1 (s->why set) when c is not next. */
int fp_jscan_expect(fp_jscan *s, char c);

/* Skips whitespace; consumes c and returns 1 when it is next, else returns 0. */
int fp_jscan_accept(fp_jscan *s, char c);

/* Reads one value; an object or array is checked whole and returned as one token.
 * Returns 0, or -1 with s->why. */
int fp_jscan_value(fp_jscan *s, fp_jscan_token *t);

/* Reads an object member's name and the ':' after it. Returns 0 or -1. */
int fp_jscan_name(fp_jscan *s, fp_jscan_token *t);

/* Returns 0 when nothing but whitespace is left, else -1. */
int fp_jscan_finish(fp_jscan *s);

/* Decodes a string token into out, NUL-terminated. Returns the decoded length, or -1
 * when that needs more than outsz - 1 bytes. */
long fp_jscan_unescape(const fp_jscan_token *t, char *out, size_t outsz);

/* 1 when string token t decodes to exactly the NUL-terminated s. */
int fp_jscan_equals(const fp_jscan_token *t, const char *s);

#endif
