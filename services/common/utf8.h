/* utf8.h — well-formed UTF-8 (Unicode table 3-7): no overlong forms, no encoded
 * surrogates, nothing past U+10FFFF. The one decoder every module uses. */
#ifndef FP_UTF8_H
#define FP_UTF8_H

#include <stddef.h>

/* Length (1-4) of the well-formed sequence at p, which has n > 0 bytes left, and its
 * code point in *cp; 0 when the bytes there are not UTF-8. */
size_t fp_utf8_next(const unsigned char *p, size_t n, unsigned *cp);

/* 1 when s[0..n) is all well-formed UTF-8, else 0. */
int fp_utf8_valid(const char *s, size_t n);

#endif
