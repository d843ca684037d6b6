/* body.c — see body.h. */
#include "body.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* Scans JSON text outside strings: the deepest nesting, and whether a string holds a
 * \u0000 escape (cJSON would silently cut the string there). */
static void scan(const char *s, size_t n, int *depth, int *nul)
{
    int d = 0, in_str = 0;
    *depth = 0;
    *nul = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\' && i + 1 < n) {
                if (s[i + 1] == 'u' && i + 5 < n && !strncmp(s + i + 2, "0000", 4))
                    *nul = 1;
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++d > *depth)
                *depth = d;
        } else if (c == '}' || c == ']') {
            d--;
        }
    }
}

/* 1 when s[0..n) is JSON white space only. */
static int only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 when an object in v (at any depth) names a member twice: sorted names, so a body
 * of many members costs n log n, not n^2. Out of memory counts as repeated (refused). */
static int has_repeated_names(const cJSON *v)
{
    size_t n = 0;
    const cJSON *c;
    for (c = v->child; c; c = c->next) {
        n++;
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && has_repeated_names(c))
            return 1;
    }
    if (!cJSON_IsObject(v) || n < 2)
        return 0;
    const char **names = malloc(n * sizeof *names);
    if (!names)
        return 1;
    n = 0;
    for (c = v->child; c; c = c->next)
        names[n++] = c->string;
    qsort(names, n, sizeof *names, by_name);
    int repeated = 0;
    for (size_t i = 1; i < n && !repeated; i++)
        repeated = strcmp(names[i - 1], names[i]) == 0;
    free(names);
    return repeated;
}

cJSON *fp_body_json(const char *body, size_t len, fp_error *err)
{
    int depth, nul;
    if (!fp_utf8_valid(body, len)) {
        fp_error_set(err, FP_EINVAL, "body is not valid UTF-8");
        return NULL;
    }
    scan(body, len, &depth, &nul);
    if (depth > FP_BODY_MAX_DEPTH) {
        fp_error_set(err, FP_EINVAL, "body nests deeper than %d levels", FP_BODY_MAX_DEPTH);
        return NULL;
    }
    if (nul) {
        fp_error_set(err, FP_EINVAL, "body contains a \\u0000 character");
        return NULL;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!doc) {
        fp_error_set(err, FP_EINVAL, "body is not valid JSON");
        return NULL;
    }
    const char *why = NULL;
    if (!cJSON_IsObject(doc))
        why = "body must be a JSON object";
    else if (!only_space(end, (size_t)(body + len - end)))
        why = "body has bytes after the JSON object";
    else if (has_repeated_names(doc))
        why = "body repeats a member name";
    if (why) {
        cJSON_Delete(doc);
        fp_error_set(err, FP_EINVAL, "%s", why);
        return NULL;
    }
    return doc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one urlencoded component into a new string; NULL on a bad escape. */
static char *decode(const char *s, size_t n, size_t *outlen)
{
    char *out = malloc(n + 1);
    size_t j = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[j++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    *outlen = j;
    return out;
}

cJSON *fp_body_form(const char *body, size_t len, int max_pairs, fp_error *err)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    int pairs = 0;
    for (size_t i = 0; i < len;) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && body[eq] != '=')
            eq++;
        if (end > i && ++pairs > max_pairs) {   /* before any work on it: the cost stays linear */
            cJSON_Delete(doc);
            fp_error_set(err, FP_ELIMIT, "form body has more than %d fields", max_pairs);
            return NULL;
        }
        if (end > i) {
            size_t klen, vlen;
            char *key = decode(body + i, eq - i, &klen);
            char *val = eq < end ? decode(body + eq + 1, end - eq - 1, &vlen) : strdup("");
            if (val && eq >= end)
                vlen = 0;
            int ok = key && val && klen > 0 && strlen(key) == klen && strlen(val) == vlen &&
                     fp_utf8_valid(key, klen) && fp_utf8_valid(val, vlen);
            if (ok) {
                cJSON_DeleteItemFromObjectCaseSensitive(doc, key);
                cJSON_AddStringToObject(doc, key, val);
            }
            free(key);
            free(val);
            if (!ok) {
                cJSON_Delete(doc);
                fp_error_set(err, FP_EINVAL, "form body has a bad %%-escape, an empty name, a NUL or invalid UTF-8");
                return NULL;
            }
        }
        i = end + 1;
    }
    return doc;
}
