/* kube_config.c — kubeconfig (via kube_yaml) and in-cluster configuration. */
#include "kube_config.h"

#include <errno.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_yaml.h"

char *kube_read_file(const char *path, size_t max, size_t *len, fp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fp_error_set(err, FP_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *data = malloc(max + 1);
    size_t n = data ? fread(data, 1, max + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!data || bad || n > max) {
        free(data);
        fp_error_set(err, !data ? FP_ENOMEM : bad ? FP_EIO : FP_ELIMIT, "%s: %s", path,
                     !data ? "out of memory" : bad ? "read error" : "file too large");
        return NULL;
    }
    data[n] = 0;
    if (len)
        *len = n;
    return data;
}

/* Drops trailing whitespace (token files end with a newline). */
static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = 0;
}

static int decode_base64(const char *text, kube_blob *out, const char *what, fp_error *err)
{
    size_t n = 0;
    char *clean = malloc(strlen(text) + 1);
    if (!clean)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    for (const char *p = text; *p; p++)
        if (*p != '\n' && *p != '\r' && *p != ' ')
            clean[n++] = *p;
    if (n == 0 || n % 4) {
        free(clean);
        return fp_error_set(err, FP_EINVAL, "%s: not valid base64", what);
    }
    unsigned char *bin = malloc(n / 4 * 3 + 1);
    int got = bin ? EVP_DecodeBlock(bin, (const unsigned char *)clean, (int)n) : -1;
    if (got < 0) {
        free(clean);
        free(bin);
        return fp_error_set(err, FP_EINVAL, "%s: not valid base64", what);
    }
    got -= (clean[n - 1] == '=') + (clean[n - 2] == '=');   /* padding decodes as zeros */
    free(clean);
    bin[got] = 0;
    out->data = (char *)bin;
    out->len = (size_t)got;
    return 0;
}

/* Resolves path against dir unless it is absolute. Caller frees. */
static char *resolve(const char *dir, const char *path)
{
    if (path[0] == '/' || !dir)
        return strdup(path);
    size_t n = strlen(dir) + strlen(path) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, path);
    return s;
}

/* Fills blob from either "<field>-data" (base64) or "<field>" (a file). */
static int load_blob(const cJSON *obj, const char *field, const char *dir, kube_blob *out, fp_error *err)
{
    char key[64];
    snprintf(key, sizeof key, "%s-data", field);
    const char *data = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
    if (data && *data)
        return decode_base64(data, out, key, err);
    const char *file = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, field));
    if (!file || !*file)
        return 0;
    char *path = resolve(dir, file);
    if (!path)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    out->data = kube_read_file(path, KUBE_CONFIG_MAX_FILE, &out->len, err);
    free(path);
    return out->data ? 0 : (err ? err->code : FP_EIO);
}

/* The entry named name in a kubeconfig list (clusters, users, contexts): its inner
 * object (cluster/user/context), or NULL. */
static const cJSON *named(const cJSON *root, const char *list, const char *inner, const char *name)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, list)) {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "name"));
        if (n && strcmp(n, name) == 0)
            return cJSON_GetObjectItemCaseSensitive(item, inner);
    }
    return NULL;
}

static const char *str_field(const cJSON *obj, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
    return s && *s ? s : NULL;
}

static int fill_from_kubeconfig(kube_config *c, const cJSON *root, const char *context,
                                const char *dir, fp_error *err)
{
    if (!context || !*context)
        context = str_field(root, "current-context");
    if (!context)
        return fp_error_set(err, FP_EINVAL, "no current-context set");
    const cJSON *ctx = named(root, "contexts", "context", context);
    if (!ctx)
        return fp_error_set(err, FP_ENOTFOUND, "context \"%s\" not found", context);
    const char *cluster_name = str_field(ctx, "cluster"), *user_name = str_field(ctx, "user");
    const cJSON *cluster = cluster_name ? named(root, "clusters", "cluster", cluster_name) : NULL;
    if (!cluster)
        return fp_error_set(err, FP_ENOTFOUND, "context \"%s\": cluster \"%s\" not found", context,
                            cluster_name ? cluster_name : "");
    const char *server = str_field(cluster, "server");
    if (!server)
        return fp_error_set(err, FP_EINVAL, "cluster \"%s\": no server", cluster_name);
    if (!(c->server = strdup(server)))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    size_t n = strlen(c->server);
    while (n && c->server[n - 1] == '/')
        c->server[--n] = 0;
    const char *insecure = str_field(cluster, "insecure-skip-tls-verify");
    c->insecure = insecure && strcmp(insecure, "true") == 0;
    int rc = load_blob(cluster, "certificate-authority", dir, &c->ca, err);
    if (rc < 0)
        return rc;
    const cJSON *user = user_name ? named(root, "users", "user", user_name) : NULL;
    if (user_name && !user)
        return fp_error_set(err, FP_ENOTFOUND, "context \"%s\": user \"%s\" not found", context, user_name);
    if (user) {
        if ((rc = load_blob(user, "client-certificate", dir, &c->cert, err)) < 0 ||
            (rc = load_blob(user, "client-key", dir, &c->key, err)) < 0)
            return rc;
        if (!c->cert.data != !c->key.data)
            return fp_error_set(err, FP_EINVAL, "user \"%s\": client certificate and key must come together", user_name);
        const char *token = str_field(user, "token"), *token_file = str_field(user, "tokenFile");
        if (token && !(c->token = strdup(token)))
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        if (!token && token_file && !(c->token_file = resolve(dir, token_file)))
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        if (cJSON_GetObjectItemCaseSensitive(user, "exec") || cJSON_GetObjectItemCaseSensitive(user, "auth-provider"))
            return fp_error_set(err, FP_EINVAL, "user \"%s\": exec and auth-provider credentials are not supported", user_name);
    }
    const char *ns = str_field(ctx, "namespace");
    c->ns = strdup(ns ? ns : "default");
    return c->ns ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
}

kube_config *kube_config_from_kubeconfig(const char *path, const char *context, fp_error *err)
{
    size_t len;
    char *text = kube_read_file(path, KUBE_CONFIG_MAX_FILE, &len, err);
    if (!text)
        return NULL;
    fp_error perr = {0};
    cJSON *root = kube_yaml_parse(text, len, &perr);
    free(text);
    kube_config *c = calloc(1, sizeof *c);
    char *pathcopy = strdup(path);
    int rc = !root ? fp_error_set(err, perr.code, "%s", perr.msg)
           : !c || !pathcopy ? fp_error_set(err, FP_ENOMEM, "out of memory")
           : fill_from_kubeconfig(c, root, context, dirname(pathcopy), err);
    free(pathcopy);
    cJSON_Delete(root);
    if (rc < 0) {
        if (err) {
            char msg[sizeof err->msg + 32];
            snprintf(msg, sizeof msg, "kubeconfig %s: %s", path, err->msg);
            memcpy(err->msg, msg, sizeof err->msg - 1);   /* cut to fit */
            err->msg[sizeof err->msg - 1] = 0;
        }
        kube_config_free(c);
        return NULL;
    }
    return c;
}

kube_config *kube_config_in_cluster(const char *sa_dir, fp_error *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        fp_error_set(err, FP_ENOTFOUND, "not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no kubeconfig given");
        return NULL;
    }
    kube_config *c = calloc(1, sizeof *c);
    char path[4096];
    int rc = c ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
    if (rc == 0) {
        size_t n = strlen(host) + strlen(port) + 16;
        if ((c->server = malloc(n)))
            snprintf(c->server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
        snprintf(path, sizeof path, "%s/token", sa_dir);
        c->token_file = strdup(path);
        rc = c->server && c->token_file ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/ca.crt", sa_dir);
        c->ca.data = kube_read_file(path, KUBE_CONFIG_MAX_FILE, &c->ca.len, err);
        rc = c->ca.data ? 0 : FP_EIO;
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/namespace", sa_dir);
        c->ns = kube_read_file(path, 256, NULL, NULL);
        if (c->ns)
            rstrip(c->ns);
        else
            c->ns = strdup("default");
        rc = c->ns ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    if (rc < 0) {
        kube_config_free(c);
        return NULL;
    }
    return c;
}

kube_config *kube_config_load(const char *kubeconfig, const char *context, fp_error *err)
{
    if (kubeconfig && *kubeconfig)
        return kube_config_from_kubeconfig(kubeconfig, context, err);
    const char *env = getenv("KUBECONFIG");
    if (env && *env) {
        char first[4096];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(env, ":"), env);   /* first file of a list */
        return kube_config_from_kubeconfig(first, context, err);
    }
    return kube_config_in_cluster(KUBE_SA_DIR, err);
}

static void blob_free(kube_blob *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->len);
    free(b->data);
}

void kube_config_free(kube_config *c)
{
    if (!c)
        return;
    free(c->server);
    blob_free(&c->ca);
    blob_free(&c->cert);
    blob_free(&c->key);
    if (c->token)
        OPENSSL_cleanse(c->token, strlen(c->token));
    free(c->token);
    free(c->token_file);
    free(c->ns);
    free(c);
}
