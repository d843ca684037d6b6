/* podspec.c — see podspec.h. */
#include "podspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const op_pod_component_names[OP_POD_COUNT] = {"ingest", "consumer", "flush", "task"};

/* What every pod gets unless a layer says otherwise: the resources each binary was
 * measured with, and the ingest spread across nodes (a node loss takes one replica). */
static const char *const builtin[OP_POD_COUNT] = {
    [OP_POD_INGEST] = "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}},"
                      "\"topologySpreadConstraints\":[{\"maxSkew\":1,\"topologyKey\":\"kubernetes.io/hostname\","
                      "\"whenUnsatisfiable\":\"ScheduleAnyway\"}]}",
    [OP_POD_CONSUMER] = "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"512Mi\"}}}",
    [OP_POD_FLUSH] = "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}}}",
    [OP_POD_TASK] = "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}}}",
};

typedef enum { T_OBJECT, T_ARRAY, T_STRING, T_STRMAP, T_RESOURCES } member_type;

/* The members of the shape; T_STRMAP and T_RESOURCES merge per key. */
static const struct {
    const char *name;
    member_type type;
} members[] = {
    {"resources", T_RESOURCES},          {"imagePullSecrets", T_ARRAY}, {"nodeSelector", T_STRMAP},
    {"tolerations", T_ARRAY},            {"affinity", T_OBJECT},        {"topologySpreadConstraints", T_ARRAY},
    {"priorityClassName", T_STRING},     {"labels", T_STRMAP},          {"annotations", T_STRMAP},
};
#define NMEMBERS (sizeof members / sizeof members[0])

static int reserved_key(const char *k)
{
    const char *slash = strchr(k, '/');
    if (!slash)
        return 0;
    size_t n = (size_t)(slash - k);
    return (n == 17 && strncmp(k, "app.kubernetes.io", 17) == 0) || (n >= 11 && strncmp(k + n - 11, "formpipe.io", 11) == 0);
}

/* Every value of map m is a string (a quantity may be a number). */
static int check_map(const cJSON *m, const char *path, const char *name, int numbers_ok, int no_reserved, fp_error *err)
{
    const cJSON *it;
    if (!cJSON_IsObject(m))
        return fp_error_set(err, FP_EINVAL, "%s.%s: must be an object", path, name);
    cJSON_ArrayForEach(it, m) {
        if (!cJSON_IsString(it) && !(numbers_ok && cJSON_IsNumber(it)))
            return fp_error_set(err, FP_EINVAL, "%s.%s.%s: must be a string", path, name, it->string);
        if (no_reserved && reserved_key(it->string))
            return fp_error_set(err, FP_EINVAL, "%s.%s.%s: app.kubernetes.io/ and formpipe.io/ keys are the operator's",
                                path, name, it->string);
    }
    return 0;
}

int op_podspec_check(const cJSON *pod, const char *path, fp_error *err)
{
    if (!pod)
        return 0;
    if (!cJSON_IsObject(pod))
        return fp_error_set(err, FP_EINVAL, "%s: must be an object", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, pod) {
        size_t i = 0;
        while (i < NMEMBERS && strcmp(members[i].name, it->string) != 0)
            i++;
        if (i == NMEMBERS)
            return fp_error_set(err, FP_EINVAL, "%s.%s: unknown pod setting", path, it->string);
        int rc = 0;
        switch (members[i].type) {
        case T_OBJECT:
            if (!cJSON_IsObject(it))
                rc = fp_error_set(err, FP_EINVAL, "%s.%s: must be an object", path, it->string);
            break;
        case T_ARRAY:
            if (!cJSON_IsArray(it))
                rc = fp_error_set(err, FP_EINVAL, "%s.%s: must be a list", path, it->string);
            break;
        case T_STRING:
            if (!cJSON_IsString(it))
                rc = fp_error_set(err, FP_EINVAL, "%s.%s: must be a string", path, it->string);
            break;
        case T_STRMAP:
            rc = check_map(it, path, it->string, 0, strcmp(it->string, "nodeSelector") != 0, err);
            break;
        case T_RESOURCES: {
            const cJSON *r;
            if (!cJSON_IsObject(it))
                return fp_error_set(err, FP_EINVAL, "%s.resources: must be an object", path);
            cJSON_ArrayForEach(r, it) {
                if (strcmp(r->string, "requests") != 0 && strcmp(r->string, "limits") != 0)
                    return fp_error_set(err, FP_EINVAL, "%s.resources.%s: only requests and limits", path, r->string);
                char sub[256];
                snprintf(sub, sizeof sub, "%s.resources", path);
                if ((rc = check_map(r, sub, r->string, 1, 0, err)) < 0)
                    return rc;
            }
            break;
        }
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

cJSON *op_podspec_load_defaults(const char *file, fp_error *err)
{
    if (!file || !*file) {
        cJSON *empty = cJSON_CreateObject();
        if (!empty)
            fp_error_set(err, FP_ENOMEM, "out of memory");
        return empty;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        fp_error_set(err, FP_EIO, "pod defaults %s: cannot be read", file);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char buf[4096];
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (len + n + 1 > cap) {
            char *t = realloc(text, cap = (len + n + 1) * 2);
            if (!t) {
                free(text);
                fclose(f);
                fp_error_set(err, FP_ENOMEM, "out of memory");
                return NULL;
            }
            text = t;
        }
        memcpy(text + len, buf, n);
        len += n;
    }
    fclose(f);
    cJSON *j = text ? (text[len] = 0, cJSON_Parse(text)) : NULL;
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        fp_error_set(err, FP_EINVAL, "pod defaults %s: not a JSON object", file);
        return NULL;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        int known = strcmp(it->string, "default") == 0;
        for (int c = 0; c < OP_POD_COUNT; c++)
            known = known || strcmp(it->string, op_pod_component_names[c]) == 0;
        char path[128];
        snprintf(path, sizeof path, "pod defaults %s: %s", file, it->string);
        if (!known ? fp_error_set(err, FP_EINVAL, "pod defaults %s: %s is not default, ingest, consumer, flush or task",
                                  file, it->string) < 0
                   : op_podspec_check(it, path, err) < 0) {
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

/* Sets key k of object o to a copy of v (replacing). 0 or -1 on ENOMEM. */
static int put(cJSON *o, const char *k, const cJSON *v)
{
    cJSON *copy = cJSON_Duplicate(v, 1);
    if (!copy)
        return -1;
    if (cJSON_HasObjectItem(o, k))
        return cJSON_ReplaceItemInObjectCaseSensitive(o, k, copy) ? 0 : (cJSON_Delete(copy), -1);
    return cJSON_AddItemToObject(o, k, copy) ? 0 : (cJSON_Delete(copy), -1);
}

/* Merges map `from` into out[k] key by key. */
static int merge_map(cJSON *out, const char *k, const cJSON *from)
{
    cJSON *to = cJSON_GetObjectItemCaseSensitive(out, k);
    if (!to && !(to = cJSON_AddObjectToObject(out, k)))
        return -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, from)
        if (put(to, it->string, it) < 0)
            return -1;
    return 0;
}

cJSON *op_podspec_merge(const cJSON *const *layers, size_t n)
{
    cJSON *out = cJSON_CreateObject();
    for (size_t l = 0; out && l < n; l++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, layers[l]) {
            size_t i = 0;
            while (i < NMEMBERS && strcmp(members[i].name, it->string) != 0)
                i++;
            int rc;
            if (i == NMEMBERS) {
                rc = 0;   /* checked before: not reached with a checked layer */
            } else if (members[i].type == T_STRMAP) {
                rc = merge_map(out, it->string, it);
            } else if (members[i].type == T_RESOURCES) {
                cJSON *res = cJSON_GetObjectItemCaseSensitive(out, "resources");
                const cJSON *r;
                rc = !res && !(res = cJSON_AddObjectToObject(out, "resources")) ? -1 : 0;
                cJSON_ArrayForEach(r, it)
                    rc = rc < 0 ? rc : merge_map(res, r->string, r);
            } else if (strcmp(it->string, "affinity") == 0) {
                rc = merge_map(out, "affinity", it);   /* per kind: nodeAffinity, podAffinity, podAntiAffinity */
            } else {
                rc = put(out, it->string, it);
            }
            if (rc < 0) {
                cJSON_Delete(out);
                return NULL;
            }
        }
    }
    return out;
}

cJSON *op_podspec_for(op_pod_component c, const cJSON *defaults, const cJSON *extra, const cJSON *own)
{
    cJSON *base = cJSON_Parse(builtin[c]);
    if (!base)
        return NULL;
    const cJSON *layers[] = {base, cJSON_GetObjectItemCaseSensitive(defaults, "default"),
                             cJSON_GetObjectItemCaseSensitive(defaults, op_pod_component_names[c]), extra, own};
    cJSON *out = op_podspec_merge(layers, sizeof layers / sizeof layers[0]);
    cJSON_Delete(base);
    return out;
}

/* Copies member k of settings into o under k, when set (and, for lists, not empty). */
static void copy_member(cJSON *o, const cJSON *settings, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(settings, k);
    if (!v || (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0) || (cJSON_IsObject(v) && !v->child))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddItemToObject(o, k, cJSON_Duplicate(v, 1));
}

/* Adds the keys of map k of settings to meta[k] that are not there yet. */
static void add_keys(cJSON *meta, const cJSON *settings, const char *k)
{
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(settings, k), *it;
    if (!from || !from->child)
        return;
    cJSON *to = cJSON_GetObjectItemCaseSensitive(meta, k);
    if (!to)
        to = cJSON_AddObjectToObject(meta, k);
    cJSON_ArrayForEach(it, from)
        if (!cJSON_HasObjectItem(to, it->string))
            cJSON_AddItemToObject(to, it->string, cJSON_Duplicate(it, 1));
}

void op_podspec_apply(const cJSON *settings, cJSON *tmpl_metadata, cJSON *podspec, cJSON *container,
                      const cJSON *selector)
{
    static const char *const pod_members[] = {"imagePullSecrets", "nodeSelector", "tolerations", "affinity",
                                              "priorityClassName"};
    for (size_t i = 0; i < sizeof pod_members / sizeof pod_members[0]; i++)
        copy_member(podspec, settings, pod_members[i]);
    const cJSON *spread = cJSON_GetObjectItemCaseSensitive(settings, "topologySpreadConstraints"), *it;
    if (cJSON_GetArraySize(spread) > 0) {
        cJSON *list = cJSON_CreateArray();
        cJSON_ArrayForEach(it, spread) {
            cJSON *c = cJSON_Duplicate(it, 1);
            if (c && selector && !cJSON_HasObjectItem(c, "labelSelector"))
                cJSON_AddItemToObject(cJSON_AddObjectToObject(c, "labelSelector"), "matchLabels",
                                      cJSON_Duplicate(selector, 1));
            cJSON_AddItemToArray(list, c);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(podspec, "topologySpreadConstraints");
        cJSON_AddItemToObject(podspec, "topologySpreadConstraints", list);
    }
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(settings, "resources");
    if (res && res->child) {
        cJSON *r = cJSON_CreateObject();
        const cJSON *part;
        cJSON_ArrayForEach(part, res)   /* a quantity written as a number becomes a string */
            if (part->child) {
                cJSON *m = cJSON_AddObjectToObject(r, part->string);
                cJSON_ArrayForEach(it, part) {
                    char q[64];
                    if (cJSON_IsNumber(it))
                        snprintf(q, sizeof q, "%.15g", it->valuedouble);
                    cJSON_AddStringToObject(m, it->string, cJSON_IsNumber(it) ? q : cJSON_GetStringValue(it));
                }
            }
        cJSON_DeleteItemFromObjectCaseSensitive(container, "resources");
        cJSON_AddItemToObject(container, "resources", r);
    }
    add_keys(tmpl_metadata, settings, "labels");
    add_keys(tmpl_metadata, settings, "annotations");
}

int op_podspec_requests_cpu(const cJSON *settings)
{
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(settings, "resources"), "requests");
    return cJSON_GetObjectItemCaseSensitive(req, "cpu") != NULL;
}
