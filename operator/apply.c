/* apply.c — see apply.h. */
#include "apply.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "children.h"
#include "pipeline.h"
#include "shared.h"

/* generation when the object has one, else resourceVersion */
static void change_marker(const cJSON *obj, char *out, size_t outsz)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(md, "generation");
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "resourceVersion"));
    if (cJSON_IsNumber(gen))
        snprintf(out, outsz, "g%lld", (long long)gen->valuedouble);
    else
        snprintf(out, outsz, "r%s", rv ? rv : "");
}

/* The first 8 bytes of text's SHA-256 in hex. */
static void short_hash(const char *text, char out[17])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), md);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int op_apply_owned(kube_conn *conn, op_informer *cache, const char *collection, const char *ns, const char *name,
                   const cJSON *body, const char *owner_uid, op_applied_mark *mark, fp_error *err)
{
    char key[512], path[1024], hash[17];
    snprintf(key, sizeof key, "%s/%s", ns, name);
    snprintf(path, sizeof path, "%s/%s", collection, name);
    char *text = cJSON_PrintUnformatted(body);
    if (!text)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    cJSON *cached = op_informer_get(cache, key), *result = NULL;
    int rc = 0;
    if (!cached) {   /* not ours as far as the cache knows: look before creating */
        rc = kube_request(conn, "GET", path, NULL, NULL, &cached, NULL, err);
        if (rc == FP_ENOTFOUND)
            rc = 0;
        else if (rc < 0)
            goto out;
    }
    short_hash(text, hash);
    int owned = cached && (owner_uid ? op_child_owned_by(cached, owner_uid) : op_shared_owned(cached));
    if (cached && !owned) {
        rc = OP_APPLY_FOREIGN;
        goto out;
    }
    char marker[64] = "";
    if (cached)
        change_marker(cached, marker, sizeof marker);
    if (owned && strcmp(mark->hash, hash) == 0 && strcmp(mark->marker, marker) == 0)
        goto out;   /* our last apply is still what is there */
    strncat(path, "?fieldManager=" OP_FIELD_MANAGER "&force=true", sizeof path - strlen(path) - 1);
    rc = kube_request(conn, "PATCH", path, "application/apply-patch+yaml", text, &result, NULL, err);
    if (rc < 0) {
        mark->hash[0] = 0;
    } else {
        memcpy(mark->hash, hash, sizeof hash);
        change_marker(result, mark->marker, sizeof mark->marker);
    }
out:
    cJSON_Delete(cached);
    cJSON_Delete(result);
    free(text);
    return rc;
}

int op_apply_status(kube_conn *conn, const char *path, const cJSON *status, const cJSON *old_status, fp_error *err)
{
    if (cJSON_Compare(status, old_status, 1))
        return 0;
    cJSON *patch = cJSON_CreateObject();
    if (!patch || !cJSON_AddItemReferenceToObject(patch, "status", (cJSON *)status)) {
        cJSON_Delete(patch);
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    char *body = cJSON_PrintUnformatted(patch);
    cJSON_Delete(patch);
    int rc = body ? kube_request(conn, "PATCH", path, "application/merge-patch+json", body, NULL, NULL, err)
                  : fp_error_set(err, FP_ENOMEM, "out of memory");
    free(body);
    return rc == FP_ENOTFOUND ? 0 : rc;
}
