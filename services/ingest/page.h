/* page.h — the HTML page of a form (GET /forms/<name>): an accessible form rendered
 * from the definition (labels tied to inputs, required, minlength/maxlength, pattern,
 * input types email/tel/number/date, a select for enums and booleans) that posts to the
 * same URL as application/x-www-form-urlencoded. Everything taken from the definition
 * is HTML-escaped. The server validates again; the page only helps the person. */
#ifndef FP_PAGE_H
#define FP_PAGE_H

#include <cjson/cJSON.h>

#include "error.h"
#include "schema.h"

#define FP_PAGE_MAX (512 * 1024)   /* a page larger than this is refused */

/* What a page adds to the form's fields (each may be NULL). */
typedef struct fp_page_extras {
    const char *honeypot;   /* the honeypot input's name (spec.form.honeypot) */
    const char *token;      /* a submission token (token.h) for a hidden input */
} fp_page_extras;

/* Renders the page of form (a compiled definition: name, title, description, fields)
 * with x (NULL: none). Returns an allocated string, or NULL with *err. */
char *fp_page_render(const cJSON *form, const fp_page_extras *x, fp_error *err);

/* The Content-Security-Policy of every page this module renders: nothing loads, only
 * the page's own style element applies (by hash), the form posts to the same origin,
 * no framing (frame-ancestors 'none'). */
const char *fp_page_csp(void);

/* The page a browser's form post gets back: heading, text, the submission's reference
 * (NULL: none), for a refusal each failing field with its message (v may be NULL), and
 * a link back to /forms/<form_name> (NULL: none). Everything is escaped. NULL on ENOMEM. */
char *fp_page_answer(const char *heading, const char *text, const char *reference, const fp_violations *v,
                     const char *form_name);

#endif
