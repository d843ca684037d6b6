/* body.h — turning a request body into a JSON object of submitted values:
 * application/json (an object; UTF-8 checked, nesting bounded, NUL escapes refused)
 * and application/x-www-form-urlencoded (an HTML form post; every value a string). */
#ifndef FP_BODY_H
#define FP_BODY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

#define FP_BODY_MAX_DEPTH 8

/* Parses a JSON body. NULL with *err (FP_EINVAL) saying what is wrong: invalid UTF-8,
 * nesting deeper than FP_BODY_MAX_DEPTH, a \u0000 escape, malformed JSON, not an object,
 * bytes after the object, a member name repeated in an object. */
cJSON *fp_body_json(const char *body, size_t len, fp_error *err);

/* Parses a urlencoded body ("a=1&b=x+y%21"); a repeated key keeps its last value.
 * NULL with *err on bad %-escapes or values that are not UTF-8 (FP_EINVAL), or on more
 * than max_pairs name=value pairs (FP_ELIMIT: refused before the pair is decoded, so
 * the work stays linear in the body; repeated names count each time). The caller
 * passes a bound from the form (FP_BODY_MAX_PAIRS at most). */
cJSON *fp_body_form(const char *body, size_t len, int max_pairs, fp_error *err);

#define FP_BODY_MAX_PAIRS 256   /* a form has at most 200 fields (FP_FORM_MAX_FIELDS) */

#endif
