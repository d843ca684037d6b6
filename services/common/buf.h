/* buf.h — a growable byte buffer with a hard cap (after curl's dynbuf). */
#ifndef FP_BUF_H
#define FP_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct fp_buf {
    char *data;     /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;     /* allocated bytes */
    size_t max;     /* hard cap on len; appends beyond it fail with FP_ELIMIT */
} fp_buf;

/* Starts an empty buffer that may hold at most max bytes. Allocates nothing yet. */
void fp_buf_init(fp_buf *b, size_t max);

/* Releases the memory; the buffer is empty and reusable afterwards. */
void fp_buf_free(fp_buf *b);

/* Empties the buffer, keeping its memory. */
void fp_buf_reset(fp_buf *b);

/* Appends n bytes. Returns 0, FP_ELIMIT when the cap would be exceeded (the buffer is
 * left unchanged), or FP_ENOMEM. */
int fp_buf_add(fp_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string; same returns as fp_buf_add. */
int fp_buf_adds(fp_buf *b, const char *s);

/* Appends printf-style text; same returns as fp_buf_add. */
int fp_buf_printf(fp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fp_buf_vprintf(fp_buf *b, const char *fmt, va_list ap);

/* Appends s as the inside of a JSON string (no quotes): escapes quotes, backslashes
 * and control characters; invalid UTF-8 bytes become U+FFFD. */
int fp_buf_add_json_str(fp_buf *b, const char *s, size_t n);

/* Appends s as a whole JSON string: quotes around fp_buf_add_json_str's escaping.
 * On failure the buffer may hold part of it; same returns as fp_buf_add. */
int fp_buf_add_json_string(fp_buf *b, const char *s, size_t n);

/* Hands the contents to the caller (free() it) and leaves the buffer empty. Returns
 * an empty allocated string for an empty buffer, NULL only on allocation failure. */
char *fp_buf_take(fp_buf *b);

#endif
