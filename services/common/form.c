/* form.c — see form.h. */
#include "form.h"

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
    if (!(f->ns = strdup(ns)) || !(f->name = strdup(name)) ||
        !(f->columns = calloc((size_t)n, sizeof *f->columns))) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    const cJSON *field;
    cJSON_ArrayForEach(field, fields) {
        const char *fname = string_member(field, "name");
        if (!fname || !valid_name(fname, 1)) {
            fp_error_set(err, FP_EINVAL, "form definition: field %zu has no valid 'name'", f->ncolumns + 1);
            goto fail;
        }
        if (fp_form_column(f, fname) >= 0) {
            fp_error_set(err, FP_EINVAL, "form definition: field '%s' appears twice", fname);
            goto fail;
        }
        if (!(f->columns[f->ncolumns] = strdup(fname))) {
            fp_error_set(err, FP_ENOMEM, "out of memory");
            goto fail;
        }
        f->ncolumns++;
    }
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

int fp_form_default_topic(const fp_form *f, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "forms.%s.%s", f->ns, f->name);
    return n < 0 || (size_t)n >= outsz ? FP_ELIMIT : 0;
}
