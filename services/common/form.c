/* form.c — see form.h. */
#include "form.h"

#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A Kubernetes-style name: lowercase alphanumerics and '-', or for fields also '_'. */
static int valid_name(const char *s, int allow_underscore)
{
    size_t n = strlen(s);
    if (n == 0 || n > FP_FORM_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              (allow_underscore && (c == '_' || (c >= 'A' && c <= 'Z')))))
            return 0;
    }
    return 1;
}

static const char *string_member(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* Appends name as the next column (it must not be one already). */
static int add_column(fp_form *f, const char *name, size_t cap, fp_error *err)
{
    if (fp_form_column(f, name) >= 0)
        return fp_error_set(err, FP_EINVAL, "form definition: column '%s' appears twice", name);
    if (f->ncolumns >= cap)
        return fp_error_set(err, FP_ELIMIT, "form definition: more than %zu columns", cap);
    if (!(f->columns[f->ncolumns] = strdup(name)))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    f->ncolumns++;
    return 0;
}

/* The fields' names, checked: each a valid name, none twice. With no "columns" they are
 * the columns; with "columns", each field must be one of them. */
static int read_columns(fp_form *f, const cJSON *fields, const cJSON *columns, fp_error *err)
{
    int n = cJSON_GetArraySize(fields), ncols = cJSON_GetArraySize(columns);
    if (columns && (!cJSON_IsArray(columns) || ncols > FP_FORM_MAX_COLUMNS))
        return fp_error_set(err, columns && cJSON_IsArray(columns) ? FP_ELIMIT : FP_EINVAL,
                            "form definition: 'columns' must be an array of at most %d names", FP_FORM_MAX_COLUMNS);
    size_t cap = columns ? (size_t)ncols : (size_t)n;
    if (!(f->columns = calloc(cap ? cap : 1, sizeof *f->columns)))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, columns) {
        const char *col = cJSON_GetStringValue(it);
        i++;
        if (!col || !valid_name(col, 1))
            return fp_error_set(err, FP_EINVAL, "form definition: column %d is not a valid field name", i);
        int rc = add_column(f, col, cap, err);
        if (rc < 0)
            return rc;
    }
    i = 0;
    cJSON_ArrayForEach(it, fields) {
        const char *fname = string_member(it, "name");
        i++;
        if (!fname || !valid_name(fname, 1))
            return fp_error_set(err, FP_EINVAL, "form definition: field %d has no valid 'name'", i);
        const cJSON *earlier;
        cJSON_ArrayForEach(earlier, fields) {
            if (earlier == it)
                break;
            const char *ename = string_member(earlier, "name");
            if (ename && strcmp(ename, fname) == 0)
                return fp_error_set(err, FP_EINVAL, "form definition: field '%s' appears twice", fname);
        }
        if (columns && fp_form_column(f, fname) < 0)
            return fp_error_set(err, FP_EINVAL, "form definition: field '%s' has no column in 'columns'", fname);
        int rc = columns ? 0 : add_column(f, fname, cap, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* "topic" when present (a valid Kafka topic name), else the default. */
static int read_topic(fp_form *f, fp_error *err)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(f->json, "topic");
    char def[FP_FORM_MAX_TOPIC + 1];
    const char *topic = cJSON_GetStringValue(t);
    if (t && (!topic || !fp_names_topic_valid(topic)))
        return fp_error_set(err, FP_EINVAL, "form definition: 'topic' must be 1-%d of [a-zA-Z0-9._-]", FP_FORM_MAX_TOPIC);
    if (!t) {
        if (fp_names_topic(f->ns, f->name, def, sizeof def) < 0)
            return fp_error_set(err, FP_ELIMIT, "form definition: default topic name longer than %d", FP_FORM_MAX_TOPIC);
        topic = def;
    }
    if (!(f->topic = strdup(topic)))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    return 0;
}

fp_form *fp_form_parse(const char *text, size_t len, fp_error *err)
{
    fp_form *f = calloc(1, sizeof *f);
    if (!f) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    if (!(f->json = cJSON_ParseWithLength(text, len)) || !cJSON_IsObject(f->json)) {
        fp_error_set(err, FP_EINVAL, "form definition is not a JSON object");
        goto fail;
    }
    const char *ns = string_member(f->json, "namespace");
    const char *name = string_member(f->json, "name");
    if (!ns || !valid_name(ns, 0)) {
        fp_error_set(err, FP_EINVAL, "form definition: 'namespace' must be a DNS label");
        goto fail;
    }
    if (!name || !valid_name(name, 0)) {
        fp_error_set(err, FP_EINVAL, "form definition: 'name' must be a DNS label");
        goto fail;
    }
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(f->json, "generation");
    f->generation = cJSON_IsNumber(gen) ? (long long)gen->valuedouble : 0;
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(f->json, "fields");
    int n = cJSON_GetArraySize(fields);
    if (!cJSON_IsArray(fields) || n == 0) {
        fp_error_set(err, FP_EINVAL, "form definition: 'fields' must be a non-empty array");
        goto fail;
    }
    if (n > FP_FORM_MAX_FIELDS) {
        fp_error_set(err, FP_ELIMIT, "form definition: %d fields, at most %d", n, FP_FORM_MAX_FIELDS);
        goto fail;
    }
    if (!(f->ns = strdup(ns)) || !(f->name = strdup(name))) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    if (read_columns(f, fields, cJSON_GetObjectItemCaseSensitive(f->json, "columns"), err) < 0 ||
        read_topic(f, err) < 0)
        goto fail;
    return f;
fail:
    fp_form_free(f);
    return NULL;
}

fp_form *fp_form_load(const char *path, fp_error *err)
{
    FILE *fh = fopen(path, "rb");
    if (!fh) {
        fp_error_set(err, FP_EIO, "cannot open form definition %s", path);
        return NULL;
    }
    char *buf = malloc(FP_FORM_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, FP_FORM_MAX_FILE + 1, fh) : 0;
    fclose(fh);
    fp_form *f = NULL;
    if (!buf)
        fp_error_set(err, FP_ENOMEM, "out of memory");
    else if (n > FP_FORM_MAX_FILE)
        fp_error_set(err, FP_ELIMIT, "form definition %s is larger than %d bytes", path, FP_FORM_MAX_FILE);
    else
        f = fp_form_parse(buf, n, err);
    free(buf);
    if (!f && err && err->code == FP_EINVAL) {   /* name the file for the reader */
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        fp_error_set(err, FP_EINVAL, "%s: %s", path, msg);
    }
    return f;
}

void fp_form_free(fp_form *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ncolumns; i++)
        free(f->columns[i]);
    free(f->columns);
    free(f->topic);
    free(f->ns);
    free(f->name);
    cJSON_Delete(f->json);
    free(f);
}

int fp_form_column(const fp_form *f, const char *name)
{
    for (size_t i = 0; i < f->ncolumns; i++) {
        if (strcmp(f->columns[i], name) == 0)
            return (int)i;
    }
    return -1;
}

int fp_form_topic(const fp_form *f, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s", f->topic);
    return n < 0 || (size_t)n >= outsz ? FP_ELIMIT : 0;
}
