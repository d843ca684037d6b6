/* spec.h — reading a formpipe resource's JSON (FormPipeline, FormTask): members,
 * strings with a default, integers with their range, DNS labels. Errors name the field
 * by its path, as a user wrote it. Also used to read what the apiserver returns. */
#ifndef OP_SPEC_H
#define OP_SPEC_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

/* The member k of object o (case-sensitive), or NULL (also when o is NULL). */
const cJSON *op_spec_member(const cJSON *o, const char *k);

/* The string member k, or def when it is absent, not a string or empty. */
const char *op_spec_str(const cJSON *o, const char *k, const char *def);

/* A numeric member as long long, def when absent or not a number (for status and
 * objects the apiserver wrote, which need no range check). */
long long op_spec_num(const cJSON *o, const char *k, long long def);

/* The integer member k into *out, def when absent. 0, or FP_EINVAL with *err naming
 * "<path>.<k>" and the range when it is not an integer within [lo, hi]. */
int op_spec_int(const cJSON *o, const char *k, long long def, long long lo, long long hi, const char *path,
                long long *out, fp_error *err);

/* True when s is an RFC 1123 label (lower-case alphanumerics and '-', starting and
 * ending alphanumeric) of 1..max characters. NULL is not. */
int op_spec_dns_label(const char *s, size_t max);

#endif
