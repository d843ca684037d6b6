/* operator/kube_client against the real kube-apiserver: client-certificate auth from
 * in-memory PEM, the API's Status in errors, connection reuse, watches (initial
 * events, server-side timeout, stop). The 410 Gone path is exercised by the operator
 * test that restarts the apiserver. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_client.h"
#include "testkit.h"

static kube_conn *admin_conn(kube_client **client)
{
    fp_error err = {0};
    kube_config *cfg = kube_config_load(NULL, NULL, &err);   /* $KUBECONFIG: the admin token */
    cr_assert_not_null(cfg, "%s", err.msg);
    *client = kube_client_new(cfg, &err);
    cr_assert_not_null(*client, "%s", err.msg);
    kube_conn *k = kube_conn_new(*client, 10000, &err);
    cr_assert_not_null(k, "%s", err.msg);
    return k;
}

Test(kube_client, client_certificate_from_memory_authenticates, .timeout = 60)
{
    char dir[] = "/tmp/fp-kube-cert-XXXXXX", *out;
    cr_assert_not_null(mkdtemp(dir));
    const char *ca = tk_env("FORMPIPE_TEST_KUBE_CA_FILE");
    char cakey[512];
    snprintf(cakey, sizeof cakey, "%.*s/ca.key", (int)(strrchr(ca, '/') - ca), ca);
    int rc = tk_sh(&out, "cd %s && openssl genrsa -out client.key 2048 2>/dev/null && "
                   "openssl req -new -key client.key -subj '/O=system:masters/CN=fp-cert-test' -out client.csr && "
                   "openssl x509 -req -in client.csr -CA %s -CAkey %s -CAcreateserial -days 1 -out client.crt 2>/dev/null && "
                   "printf 'apiVersion: v1\\nkind: Config\\ncurrent-context: c\\nclusters:\\n- name: k\\n  cluster:\\n"
                   "    server: %s\\n    certificate-authority-data: %%s\\nusers:\\n- name: u\\n  user:\\n"
                   "    client-certificate-data: %%s\\n    client-key-data: %%s\\ncontexts:\\n- name: c\\n"
                   "  context: {cluster: k, user: u}\\n' \"$(base64 -w0 %s)\" \"$(base64 -w0 client.crt)\" "
                   "\"$(base64 -w0 client.key)\" > kubeconfig && rm client.key",
                   dir, ca, cakey, tk_env("FORMPIPE_TEST_KUBE_SERVER"), ca);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    char path[512];
    snprintf(path, sizeof path, "%s/kubeconfig", dir);
    fp_error err = {0};
    kube_config *cfg = kube_config_from_kubeconfig(path, NULL, &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    cr_assert_null(cfg->token);
    cr_assert_not_null(cfg->key.data, "the key is held in memory");
    kube_client *c = kube_client_new(cfg, &err);
    kube_conn *k = kube_conn_new(c, 10000, &err);
    cJSON *ns = NULL;
    cr_assert_eq(kube_request(k, "GET", "/api/v1/namespaces/default", NULL, NULL, &ns, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ns, "metadata"), "name")), "default");
    cJSON_Delete(ns);
    kube_conn_free(k);
    kube_client_free(c);
    tk_sh(NULL, "rm -rf %s", dir);
}

Test(kube_client, errors_carry_the_status_reason_and_connections_are_reused, .timeout = 60)
{
    kube_client *c;
    kube_conn *k = admin_conn(&c);
    fp_error err = {0};
    long status = 0;
    cr_assert_eq(kube_request(k, "GET", "/api/v1/namespaces/fp-no-such-namespace", NULL, NULL, NULL, &status, &err), FP_ENOTFOUND);
    cr_assert_eq(status, 404);
    cr_assert_not_null(strstr(err.msg, "HTTP 404 NotFound: namespaces \"fp-no-such-namespace\" not found"), "%s", err.msg);
    char name[64], body[256];
    tk_unique(name, sizeof name, "fp-kc");
    snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"%s\"},\"data\":{\"a\":\"1\"}}", name);
    cr_assert_eq(kube_request(k, "POST", "/api/v1/namespaces/default/configmaps", "application/json", body, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(kube_request(k, "POST", "/api/v1/namespaces/default/configmaps", "application/json", body, NULL, &status, &err), KUBE_ECONFLICT);
    cr_assert_not_null(strstr(err.msg, "AlreadyExists"), "%s", err.msg);
    cr_assert_eq(kube_request(k, "POST", "/api/v1/namespaces/default/configmaps", "application/json", "{\"metadata\":{\"name\":\"Bad_Name\"}}", NULL, &status, &err), FP_EINVAL);
    cr_assert_eq(status, 422);
    cr_assert_not_null(strstr(err.msg, "Invalid"), "%s", err.msg);
    cr_assert_eq(kube_conn_connections(k), 1, "every request went over one connection (%ld)", kube_conn_connections(k));
    char path[256];
    snprintf(path, sizeof path, "/api/v1/namespaces/default/configmaps/%s", name);
    cr_assert_eq(kube_request(k, "DELETE", path, NULL, NULL, NULL, NULL, &err), 0, "%s", err.msg);
    kube_conn_free(k);
    kube_client_free(c);
}

typedef struct seen {
    int added;
    char name[64];
} seen;

static int on_event(void *ctx, const cJSON *ev)
{
    seen *s = ctx;
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    if (type && !strcmp(type, "ADDED") &&
        !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name")), s->name))
        s->added++;
    return 0;
}

Test(kube_client, watches_stream_events_and_end_on_timeout_or_stop, .timeout = 60)
{
    kube_client *c;
    kube_conn *k = admin_conn(&c);
    seen s = {0};
    tk_unique(s.name, sizeof s.name, "fp-watch");
    char body[256], path[512];
    snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"%s\"}}", s.name);
    fp_error err = {0};
    cr_assert_eq(kube_request(k, "POST", "/api/v1/namespaces/default/configmaps", "application/json", body, NULL, NULL, &err), 0, "%s", err.msg);
    snprintf(path, sizeof path, "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=2"
             "&fieldSelector=metadata.name%%3D%s", s.name);
    double t0 = tk_now();
    cr_assert_eq(kube_watch(k, path, on_event, &s, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(s.added, 1, "the existing object arrives as ADDED");
    cr_assert_geq(tk_now() - t0, 1.5, "the server ended the watch at its timeout");

    volatile int stop = 1;   /* a stop request ends a watch at once */
    snprintf(path, sizeof path, "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=30");
    t0 = tk_now();
    cr_assert_eq(kube_watch(k, path, on_event, &s, &stop, &err), 0);
    cr_assert_lt(tk_now() - t0, 5.0);
    snprintf(path, sizeof path, "/api/v1/namespaces/default/configmaps/%s", s.name);
    kube_request(k, "DELETE", path, NULL, NULL, NULL, NULL, &err);
    kube_conn_free(k);
    kube_client_free(c);
}
