/* schema.c — see schema.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "schema.h"
#include "buf.h"
#include "utf8.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { T_STRING, T_INTEGER, T_NUMBER, T_BOOLEAN, T_EMAIL, T_PHONE, T_DATE, T_ENUM } ftype;

static const char *const type_names[] = {"string", "integer", "number", "boolean", "email", "phone", "date", "enum"};

typedef struct field {
    char *name;
    ftype type;
    int required;
    long min_len, max_len;         /* characters; max_len <= FP_SCHEMA_MAX_CHARS */
    int has_min, has_max;
    double minimum, maximum;
    pcre2_code *pattern;           /* the author's pattern wrapped for one anchored match */
    pcre2_match_context *mctx;     /* its match, depth and heap limits */
    char *pattern_src;
    char **values;                 /* enum */
    size_t nvalues;
} field;

struct fp_schema {
    field *fields;
    size_t n;
    int drop_unknown;
};

static void field_clear(field *f)
{
    free(f->name);
    free(f->pattern_src);
    pcre2_code_free(f->pattern);
    pcre2_match_context_free(f->mctx);
    for (size_t i = 0; i < f->nvalues; i++)
        free(f->values[i]);
    free(f->values);
}

void fp_schema_free(fp_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        field_clear(&s->fields[i]);
    free(s->fields);
    free(s);
}

/* Compiles a form author's pattern for bounded matching. JSON Schema's unanchored
 * search is one anchored match of (?s:.*?)(?:pattern): PCRE2 resets its match limit at
 * each start position of an unanchored search, so a catastrophic pattern would get the
 * limit once per character; anchored, the limits below bound the whole work on a value.
 * JIT-compiled when the platform has it (faster; it keeps the match and heap limits). */
static int compile_pattern(field *f, const char *name, const char *pattern, fp_error *err)
{
    int code;
    PCRE2_SIZE off;
    size_t plen = strlen(pattern);
    char *wrapped = malloc(plen + 16);
    if (!wrapped)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    /* the author's own compile errors first, with offsets into what they wrote */
    pcre2_code *alone = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    if (!alone) {
        free(wrapped);
        PCRE2_UCHAR why[160];
        pcre2_get_error_message(code, why, sizeof why);
        return fp_error_set(err, FP_EINVAL, "field '%s': pattern does not compile at offset %zu: %s", name,
                            (size_t)off, (char *)why);
    }
    pcre2_code_free(alone);
    snprintf(wrapped, plen + 16, "(?s:.*?)(?:%s)", pattern);
    f->pattern = pcre2_compile((PCRE2_SPTR)wrapped, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED,
                               &code, &off, NULL);
    free(wrapped);
    if (!f->pattern)   /* e.g. leading (*VERB) options, which must open a pattern */
        return fp_error_set(err, FP_EINVAL, "field '%s': pattern cannot be bounded (leading (*...) options are not allowed)",
                            name);
    (void)pcre2_jit_compile(f->pattern, PCRE2_JIT_COMPLETE);   /* optional: the interpreter keeps the same limits */
    if (!(f->mctx = pcre2_match_context_create(NULL)) || !(f->pattern_src = strdup(pattern)))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    pcre2_set_match_limit(f->mctx, FP_SCHEMA_MATCH_LIMIT);
    pcre2_set_depth_limit(f->mctx, FP_SCHEMA_DEPTH_LIMIT);
    pcre2_set_heap_limit(f->mctx, FP_SCHEMA_HEAP_LIMIT_KIB);
    return 0;
}

size_t fp_schema_count(const fp_schema *s) { return s->n; }

int fp_schema_drops_unknown(const fp_schema *s) { return s->drop_unknown; }

/* Reads a non-negative integer member into *out; 0 absent, 1 present, -1 invalid. */
static int int_member(const cJSON *o, const char *k, long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) || v->valuedouble > 1e9)
        return -1;
    *out = (long)v->valuedouble;
    return 1;
}

static int compile_field(field *f, const cJSON *def, size_t index, fp_error *err)
{
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(def, "name"));
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(def, "type"));
    if (!name || !*name || strlen(name) >= sizeof(((fp_violation *)0)->field))
        return fp_error_set(err, FP_EINVAL, "fields[%zu]: 'name' is missing or longer than 63 characters", index);
    if (!(f->name = strdup(name)))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    int found = 0;
    for (int t = 0; t < 8 && type; t++) {
        if (strcmp(type, type_names[t]) == 0) {
            f->type = (ftype)t;
            found = 1;
        }
    }
    if (!found)
        return fp_error_set(err, FP_EINVAL, "field '%s': type '%s' is not one of string, integer, number, "
                            "boolean, email, phone, date, enum", name, type ? type : "(missing)");
    f->required = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(def, "required"));
    f->max_len = FP_SCHEMA_MAX_CHARS;
    int r1 = int_member(def, "minLength", &f->min_len), r2 = int_member(def, "maxLength", &f->max_len);
    if (r1 < 0 || r2 < 0)
        return fp_error_set(err, FP_EINVAL, "field '%s': minLength and maxLength must be whole numbers >= 0", name);
    if (f->max_len > FP_SCHEMA_MAX_CHARS)
        return fp_error_set(err, FP_EINVAL, "field '%s': maxLength %ld exceeds the %d characters a sheet cell holds",
                            name, f->max_len, FP_SCHEMA_MAX_CHARS);
    if (f->min_len > f->max_len)
        return fp_error_set(err, FP_EINVAL, "field '%s': minLength %ld is greater than maxLength %ld", name,
                            f->min_len, f->max_len);
    const cJSON *mn = cJSON_GetObjectItemCaseSensitive(def, "minimum");
    const cJSON *mx = cJSON_GetObjectItemCaseSensitive(def, "maximum");
    if ((mn && !cJSON_IsNumber(mn)) || (mx && !cJSON_IsNumber(mx)))
        return fp_error_set(err, FP_EINVAL, "field '%s': minimum and maximum must be numbers", name);
    if ((mn || mx) && f->type != T_INTEGER && f->type != T_NUMBER)
        return fp_error_set(err, FP_EINVAL, "field '%s': minimum/maximum apply to integer and number fields", name);
    f->has_min = mn != NULL;
    f->has_max = mx != NULL;
    f->minimum = mn ? mn->valuedouble : 0;
    f->maximum = mx ? mx->valuedouble : 0;
    if (f->has_min && f->has_max && f->minimum > f->maximum)
        return fp_error_set(err, FP_EINVAL, "field '%s': minimum %g is greater than maximum %g", name, f->minimum,
                            f->maximum);
    const char *pattern = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(def, "pattern"));
    if (pattern && compile_pattern(f, name, pattern, err))
        return err->code;
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(def, "values"), *v;
    if (f->type == T_ENUM) {
        if (!cJSON_IsArray(values) || cJSON_GetArraySize(values) == 0)
            return fp_error_set(err, FP_EINVAL, "field '%s': an enum needs a non-empty 'values' list", name);
        if (!(f->values = calloc((size_t)cJSON_GetArraySize(values), sizeof *f->values)))
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        cJSON_ArrayForEach(v, values) {
            if (!cJSON_IsString(v))
                return fp_error_set(err, FP_EINVAL, "field '%s': enum values must be strings", name);
            if (!(f->values[f->nvalues++] = strdup(v->valuestring)))
                return fp_error_set(err, FP_ENOMEM, "out of memory");
        }
    } else if (values) {
        return fp_error_set(err, FP_EINVAL, "field '%s': 'values' belongs to enum fields", name);
    }
    return 0;
}

fp_schema *fp_schema_compile(const cJSON *form, fp_error *err)
{
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(form, "fields"), *def;
    int n = cJSON_GetArraySize(fields);
    if (!cJSON_IsArray(fields) || n == 0) {
        fp_error_set(err, FP_EINVAL, "form: 'fields' must be a non-empty list");
        return NULL;
    }
    fp_schema *s = calloc(1, sizeof *s);
    if (!s || !(s->fields = calloc((size_t)n, sizeof *s->fields))) {
        free(s);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    const char *unknown = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(form, "unknownFields"));
    if (unknown && strcmp(unknown, "drop") != 0 && strcmp(unknown, "reject") != 0) {
        fp_error_set(err, FP_EINVAL, "form: unknownFields must be 'reject' or 'drop', not '%s'", unknown);
        fp_schema_free(s);
        return NULL;
    }
    s->drop_unknown = unknown && strcmp(unknown, "drop") == 0;
    cJSON_ArrayForEach(def, fields) {
        field *f = &s->fields[s->n++];
        if (compile_field(f, def, s->n - 1, err)) {
            fp_schema_free(s);
            return NULL;
        }
        for (size_t i = 0; i + 1 < s->n; i++) {
            if (strcmp(s->fields[i].name, f->name) == 0) {
                fp_error_set(err, FP_EINVAL, "field '%s' appears twice", f->name);
                fp_schema_free(s);
                return NULL;
            }
        }
    }
    return s;
}

static void violate(fp_violations *v, const char *name, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void violate(fp_violations *v, const char *name, const char *rule, const char *fmt, ...)
{
    if (v->n == FP_SCHEMA_MAX_VIOLATIONS) {
        v->truncated = 1;
        return;
    }
    fp_violation *x = &v->items[v->n++];
    va_list ap;
    snprintf(x->field, sizeof x->field, "%s", name);
    snprintf(x->rule, sizeof x->rule, "%s", rule);
    va_start(ap, fmt);
    vsnprintf(x->message, sizeof x->message, fmt, ap);
    va_end(ap);
}

/* Sanitizes s: rejects invalid UTF-8, drops control characters (C0, DEL, C1), trims
 * white space. Returns a new string (caller frees) and its length in characters, or
 * NULL with *why set. */
static char *sanitize(const char *s, long *chars, const char **why)
{
    size_t n = strlen(s), out_len = 0;
    char *out = malloc(n + 1);
    if (!out) {
        *why = "out of memory";
        return NULL;
    }
    *chars = 0;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t len = fp_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (len == 0) {
            free(out);
            *why = "is not valid UTF-8";
            return NULL;
        }
        int control = cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
        if (!control || cp == ' ') {
            memcpy(out + out_len, s + i, len);
            out_len += len;
        }
        i += len;
    }
    size_t start = 0;
    while (start < out_len && out[start] == ' ')
        start++;
    while (out_len > start && out[out_len - 1] == ' ')
        out_len--;
    memmove(out, out + start, out_len - start);
    out_len -= start;
    out[out_len] = '\0';
    for (size_t i = 0; i < out_len; i++)
        *chars += ((unsigned char)out[i] & 0xC0) != 0x80;
    return out;
}

static int valid_email(const char *s)
{
    const char *at = strchr(s, '@');
    size_t n = strlen(s);
    if (!at || at == s || strchr(at + 1, '@') || n > 254 || (size_t)(at - s) > 64)
        return 0;
    for (const char *p = s; p < at; p++) {
        if (isspace((unsigned char)*p) || *p == '"' || *p == '(' || *p == ')' || *p == ',' || *p == ';' ||
            *p == '<' || *p == '>' || *p == '[' || *p == ']' || *p == '\\')
            return 0;
    }
    if (s[0] == '.' || at[-1] == '.' || strstr(s, ".."))
        return 0;
    const char *domain = at + 1;
    if (!strchr(domain, '.'))
        return 0;
    for (const char *label = domain; *label;) {
        size_t len = strcspn(label, ".");
        if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
            return 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)label[i];
            if (!(isalnum(c) || c == '-' || c >= 0x80))
                return 0;
        }
        label += len;
        if (*label == '.')
            label++;
        if (*label == '\0' && label[-1] == '.')
            return 0;
    }
    return 1;
}

/* E.164-like: optional leading +, digits with spaces, dashes, dots or parentheses as
 * separators, 7 to 15 digits. */
static int valid_phone(const char *s)
{
    int digits = 0;
    for (const char *p = s; *p; p++) {
        if (isdigit((unsigned char)*p))
            digits++;
        else if (!(*p == '+' && p == s) && !strchr(" -.()", *p))
            return 0;
    }
    return digits >= 7 && digits <= 15;
}

static int valid_date(const char *s)
{
    int y, m, d;
    char tail;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || s[4] != '-' || s[7] != '-')
        return 0;
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap);
}

/* Parses a whole decimal number from text; 0 on success. */
static int parse_number(const char *s, double *out)
{
    char *end;
    if (!*s)
        return -1;
    errno = 0;
    *out = strtod(s, &end);
    return *end || errno || !isfinite(*out) || strpbrk(s, "xXnN") ? -1 : 0;   /* no hex, inf, nan */
}

static int in_values(const field *f, const char *s)
{
    for (size_t i = 0; i < f->nvalues; i++) {
        if (strcmp(f->values[i], s) == 0)
            return 1;
    }
    return 0;
}

/* JSON Schema semantics: the pattern may match anywhere unless it anchors itself (one
 * bounded anchored match, compile_pattern). 1: it matches, 0: it does not, -1: the
 * match ran into a limit (too much backtracking on this value). */
static int matches(const field *f, const char *s)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int m = md ? pcre2_match(f->pattern, (PCRE2_SPTR)s, strlen(s), 0, 0, md, f->mctx) : PCRE2_ERROR_NOMEMORY;
    pcre2_match_data_free(md);
    if (m >= 0)
        return 1;
    return m == PCRE2_ERROR_NOMATCH ? 0 : -1;   /* MATCHLIMIT, DEPTHLIMIT, HEAPLIMIT, JIT stack, memory */
}

/* Reads a number value: a JSON number, or for form posts its decimal text. */
static int number_of(const cJSON *val, int from_text, double *d)
{
    if (!from_text && cJSON_IsNumber(val)) {
        *d = val->valuedouble;
        return 0;
    }
    return from_text && cJSON_IsString(val) ? parse_number(val->valuestring, d) : -1;
}

/* Checks one present value; appends the clean value to out on success. */
static void check_field(const field *f, const cJSON *val, int from_text, cJSON *out, fp_violations *v)
{
    const char *n = f->name;
    if (f->type == T_INTEGER || f->type == T_NUMBER) {
        double d;
        if (number_of(val, from_text, &d)) {
            violate(v, n, "type", "%s must be a %s", n, f->type == T_INTEGER ? "whole number" : "number");
            return;
        }
        if (f->type == T_INTEGER && (d != floor(d) || fabs(d) > 9007199254740991.0)) {
            violate(v, n, "type", "%s must be a whole number", n);
            return;
        }
        if (f->has_min && d < f->minimum)
            violate(v, n, "minimum", "%s must be at least %g", n, f->minimum);
        else if (f->has_max && d > f->maximum)
            violate(v, n, "maximum", "%s must be at most %g", n, f->maximum);
        else
            cJSON_AddNumberToObject(out, n, d);
        return;
    }
    if (f->type == T_BOOLEAN) {
        if (cJSON_IsBool(val) && !from_text) {
            cJSON_AddBoolToObject(out, n, cJSON_IsTrue(val));
        } else if (cJSON_IsString(val) && from_text) {
            const char *t = val->valuestring;
            int yes = !strcasecmp(t, "true") || !strcasecmp(t, "on") || !strcmp(t, "1") || !strcasecmp(t, "yes");
            int no = !strcasecmp(t, "false") || !strcasecmp(t, "off") || !strcmp(t, "0") || !strcasecmp(t, "no");
            if (yes || no)
                cJSON_AddBoolToObject(out, n, yes);
            else
                violate(v, n, "type", "%s must be true or false", n);
        } else {
            violate(v, n, "type", "%s must be true or false", n);
        }
        return;
    }
    if (!cJSON_IsString(val)) {
        violate(v, n, "type", "%s must be text", n);
        return;
    }
    long chars;
    int m = 0;
    const char *why;
    char *clean = sanitize(val->valuestring, &chars, &why);
    if (!clean) {
        violate(v, n, "utf8", "%s %s", n, why);
        return;
    }
    if (chars == 0) {
        if (f->required)
            violate(v, n, "required", "%s is required", n);
        /* an empty optional field is simply absent */
    } else if (chars < f->min_len)
        violate(v, n, "minLength", "%s must be at least %ld characters", n, f->min_len);
    else if (chars > f->max_len)
        violate(v, n, "maxLength", "%s must be at most %ld characters", n, f->max_len);
    else if (f->type == T_EMAIL && !valid_email(clean))
        violate(v, n, "email", "%s must be an email address", n);
    else if (f->type == T_PHONE && !valid_phone(clean))
        violate(v, n, "phone", "%s must be a phone number (7 to 15 digits)", n);
    else if (f->type == T_DATE && !valid_date(clean))
        violate(v, n, "date", "%s must be a date as YYYY-MM-DD", n);
    else if (f->type == T_ENUM && !in_values(f, clean))
        violate(v, n, "values", "%s must be one of the listed choices", n);
    else if (f->pattern && (m = matches(f, clean)) == 0)
        violate(v, n, "pattern", "%s does not match the required format", n);
    else if (f->pattern && m < 0)
        violate(v, n, "pattern", "%s takes too long to check against the required format", n);
    else
        cJSON_AddStringToObject(out, n, clean);
    free(clean);
}

int fp_schema_validate(const fp_schema *s, const cJSON *in, int from_text, cJSON **out, fp_violations *v)
{
    v->n = 0;
    v->truncated = 0;
    *out = NULL;
    if (!cJSON_IsObject(in)) {
        violate(v, "", "object", "the submission must be an object");
        return FP_EINVAL;
    }
    cJSON *clean = cJSON_CreateObject();
    if (!clean)
        return FP_ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        const field *f = &s->fields[i];
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(in, f->name);
        if (!val || cJSON_IsNull(val)) {
            if (f->required)
                violate(v, f->name, "required", "%s is required", f->name);
            else if (f->type == T_BOOLEAN && from_text)
                cJSON_AddBoolToObject(clean, f->name, 0);   /* an unticked checkbox is not posted */
            continue;
        }
        check_field(f, val, from_text, clean, v);
    }
    const cJSON *member;
    cJSON_ArrayForEach(member, in) {
        int known = 0;
        for (size_t i = 0; i < s->n && !known; i++)
            known = strcmp(s->fields[i].name, member->string) == 0;
        if (!known && !s->drop_unknown)
            violate(v, member->string, "unknown", "%.60s is not a field of this form", member->string);
    }
    if (v->n) {
        cJSON_Delete(clean);
        return FP_EINVAL;
    }
    *out = clean;
    return 0;
}

cJSON *fp_schema_json_schema(const fp_schema *s, const char *title)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "$schema", "https://json-schema.org/draft/2020-12/schema");
    if (title)
        cJSON_AddStringToObject(root, "title", title);
    cJSON_AddStringToObject(root, "type", "object");
    cJSON *props = cJSON_AddObjectToObject(root, "properties");
    cJSON *required = cJSON_AddArrayToObject(root, "required");
    for (size_t i = 0; i < s->n; i++) {
        const field *f = &s->fields[i];
        cJSON *p = cJSON_AddObjectToObject(props, f->name);
        switch (f->type) {
        case T_INTEGER: cJSON_AddStringToObject(p, "type", "integer"); break;
        case T_NUMBER: cJSON_AddStringToObject(p, "type", "number"); break;
        case T_BOOLEAN: cJSON_AddStringToObject(p, "type", "boolean"); break;
        case T_ENUM: {
            cJSON *e = cJSON_AddArrayToObject(p, "enum");
            for (size_t k = 0; k < f->nvalues; k++)
                cJSON_AddItemToArray(e, cJSON_CreateString(f->values[k]));
            break;
        }
        default:
            cJSON_AddStringToObject(p, "type", "string");
            if (f->type == T_EMAIL)
                cJSON_AddStringToObject(p, "format", "email");
            else if (f->type == T_DATE)
                cJSON_AddStringToObject(p, "format", "date");
            else if (f->type == T_PHONE)
                cJSON_AddStringToObject(p, "pattern", "^\\+?[0-9 ().-]{7,}$");
            break;
        }
        if (f->type != T_INTEGER && f->type != T_NUMBER && f->type != T_BOOLEAN && f->type != T_ENUM) {
            if (f->min_len > 0)
                cJSON_AddNumberToObject(p, "minLength", (double)f->min_len);
            cJSON_AddNumberToObject(p, "maxLength", (double)f->max_len);
        }
        if (f->pattern_src)
            cJSON_AddStringToObject(p, "pattern", f->pattern_src);
        if (f->has_min)
            cJSON_AddNumberToObject(p, "minimum", f->minimum);
        if (f->has_max)
            cJSON_AddNumberToObject(p, "maximum", f->maximum);
        if (f->required)
            cJSON_AddItemToArray(required, cJSON_CreateString(f->name));
    }
    cJSON_AddBoolToObject(root, "additionalProperties", s->drop_unknown);
    return root;
}
