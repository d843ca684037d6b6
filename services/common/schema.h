/* schema.h — form definitions compiled for validating and sanitizing submissions.
 * Field types: string, integer, number, boolean, email, phone, date (ISO 8601
 * YYYY-MM-DD), enum. Constraints: required, minLength, maxLength (in characters, not
 * bytes), pattern (PCRE2, unanchored as in JSON Schema, bounded per value), minimum, maximum, values.
 * Sanitizing: invalid UTF-8 is rejected, control characters are stripped, surrounding
 * white space is trimmed. unknownFields: reject (default) or drop. */
#ifndef FP_SCHEMA_H
#define FP_SCHEMA_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

#define FP_SCHEMA_MAX_CHARS 50000      /* a Sheets cell holds at most 50,000 characters */
#define FP_SCHEMA_MAX_VIOLATIONS 64
/* Bounds on one pattern match (one value): a value that needs more backtracking than
 * this fails the "pattern" rule ("takes too long to check"). pcre2_set_match_limit,
 * pcre2_set_depth_limit, pcre2_set_heap_limit (KiB). docs/security.md. */
#define FP_SCHEMA_MATCH_LIMIT 100000
#define FP_SCHEMA_DEPTH_LIMIT 5000
#define FP_SCHEMA_HEAP_LIMIT_KIB 1024

typedef struct fp_violation {
    char field[64];
    char rule[24];      /* "required", "type", "maxLength", "pattern", "unknown", ... */
    char message[200];  /* for a person */
} fp_violation;

typedef struct fp_violations {
    fp_violation items[FP_SCHEMA_MAX_VIOLATIONS];
    size_t n;
    int truncated;      /* more violations than FP_SCHEMA_MAX_VIOLATIONS */
} fp_violations;

typedef struct fp_schema fp_schema;

/* Compiles a definition (spec.form: fields, unknownFields). NULL with *err naming the
 * field and the problem (unknown type, minLength > maxLength, bad pattern, ...). */
fp_schema *fp_schema_compile(const cJSON *form, fp_error *err);
void fp_schema_free(fp_schema *s);   /* NULL is fine */

/* The number of fields, and whether unknown fields are dropped (1) or refused (0). */
size_t fp_schema_count(const fp_schema *s);
int fp_schema_drops_unknown(const fp_schema *s);

/* Validates and sanitizes one submission (a JSON object). from_text: every value is a
 * string, as an HTML form posts them, and is converted to the field's type. On success
 * returns 0 and *out (caller deletes) holds the clean values in field order. On failure
 * returns FP_EINVAL and *v lists every failing field with its rule. */
int fp_schema_validate(const fp_schema *s, const cJSON *in, int from_text, cJSON **out,
                       fp_violations *v);

/* The form as a JSON Schema (draft 2020-12) object, for clients that validate before
 * posting; title is the form's title (may be NULL). Caller deletes; NULL on ENOMEM. */
cJSON *fp_schema_json_schema(const fp_schema *s, const char *title);

#endif
