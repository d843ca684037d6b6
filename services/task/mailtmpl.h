/* mailtmpl.h — the email kind's templates: literal text with {{field}} placeholders
 * (spaces inside the braces allowed; a name is letters, digits, '_', '-', '.'),
 * rendered from one submission's data. A value is written as the form sent it: a
 * string decoded, a number or true/false as written, null or a missing field as
 * nothing, an array's items joined by ", ", an object as its JSON. How a value is
 * written depends on where it goes (fp_mailtmpl_mode). Pure: no I/O. */
#ifndef FP_MAILTMPL_H
#define FP_MAILTMPL_H

#include "buf.h"
#include "error.h"
#include "event.h"

typedef enum fp_mailtmpl_mode {
    FP_MAILTMPL_TEXT,     /* values as they are */
    FP_MAILTMPL_HTML,     /* values HTML-escaped (& < > " ') */
    FP_MAILTMPL_HEADER,   /* a header (the subject): a value holding CR, LF or another
                             control character is refused */
} fp_mailtmpl_mode;

typedef struct fp_mailtmpl fp_mailtmpl;   /* opaque; owned by the caller */

/* Compiles src. NULL with *err (FP_EINVAL naming the offset) for an unclosed "{{" or
 * a bad field name, or FP_ENOMEM. */
fp_mailtmpl *fp_mailtmpl_compile(const char *src, fp_error *err);
void fp_mailtmpl_free(fp_mailtmpl *t);   /* NULL is fine */

/* Appends t rendered from ev's data to out. 0; FP_EINVAL with *err naming the field
 * when a value cannot go where it goes (HEADER: a line break; any mode: a NUL);
 * FP_ENOMEM or FP_ELIMIT (out's cap). */
int fp_mailtmpl_render(const fp_mailtmpl *t, const fp_event *ev, fp_mailtmpl_mode mode, fp_buf *out, fp_error *err);

/* Appends the value of field name in ev (as a template writes it, TEXT mode) to out.
 * 1 when the field is present and not null, 0 when not (nothing appended), negative
 * FP_ENOMEM / FP_ELIMIT. */
int fp_mailtmpl_value(const fp_event *ev, const char *name, fp_buf *out);

#endif
