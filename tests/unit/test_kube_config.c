/* Unit tests for operator/kube_yaml and kube_config: kubeconfig files (contexts,
 * inline and file credentials, tokens) and the in-cluster service account. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube_config.h"
#include "kube_yaml.h"

static char dir[] = "/tmp/fp-kubeconfig-XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    write_file("ca.pem", "-----BEGIN CERTIFICATE-----\nFILE-CA\n-----END CERTIFICATE-----\n");
    write_file("token", "file-token\n");
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* "PEM-CA" base64 = UEVNLUNB; "CERT" = Q0VSVA==; "KEY" = S0VZ */
static const char *const kubeconfig =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: dev\n"
    "clusters:\n"
    "- name: c1\n"
    "  cluster: {server: 'https://127.0.0.1:6443/', certificate-authority-data: UEVNLUNB}\n"
    "- name: c2\n"
    "  cluster:\n"
    "    server: https://k8s.example:443\n"
    "    certificate-authority: ca.pem\n"
    "- name: c3\n"
    "  cluster: {server: https://insecure:1, insecure-skip-tls-verify: true}\n"
    "users:\n"
    "- name: tok\n"
    "  user: {token: inline-token}\n"
    "- name: cert\n"
    "  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}\n"
    "- name: tokfile\n"
    "  user: {tokenFile: token}\n"
    "- name: execuser\n"
    "  user: {exec: {command: aws}}\n"
    "- name: halfcert\n"
    "  user: {client-certificate-data: Q0VSVA==}\n"
    "contexts:\n"
    "- name: dev\n"
    "  context: {cluster: c1, user: tok, namespace: forms}\n"
    "- name: prod\n"
    "  context: {cluster: c2, user: cert}\n"
    "- name: files\n"
    "  context: {cluster: c3, user: tokfile}\n"
    "- name: exec\n"
    "  context: {cluster: c1, user: execuser}\n"
    "- name: half\n"
    "  context: {cluster: c1, user: halfcert}\n"
    "- name: nocluster\n"
    "  context: {cluster: nope, user: tok}\n";

struct kc_case {
    const char *context;
    const char *server, *ca, *cert, *key, *token, *token_file_end, *ns;
    int insecure;
    const char *error;   /* substring of the error, NULL when it must load */
};

static struct kc_case cases[] = {
    {"", "https://127.0.0.1:6443", "PEM-CA", NULL, NULL, "inline-token", NULL, "forms", 0, NULL},
    {"prod", "https://k8s.example:443", "-----BEGIN CERTIFICATE-----\nFILE-CA\n-----END CERTIFICATE-----\n",
     "CERT", "KEY", NULL, NULL, "default", 0, NULL},
    {"files", "https://insecure:1", NULL, NULL, NULL, NULL, "/token", "default", 1, NULL},
    {"exec", 0, 0, 0, 0, 0, 0, 0, 0, "exec and auth-provider credentials are not supported"},
    {"half", 0, 0, 0, 0, 0, 0, 0, 0, "client certificate and key must come together"},
    {"nocluster", 0, 0, 0, 0, 0, 0, 0, 0, "cluster \"nope\" not found"},
    {"missing", 0, 0, 0, 0, 0, 0, 0, 0, "context \"missing\" not found"},
};

ParameterizedTestParameters(kube_config, kubeconfig)
{
    return cr_make_param_array(struct kc_case, cases, sizeof cases / sizeof cases[0]);
}

static void blob_eq(const kube_blob *b, const char *want, const char *what)
{
    if (!want) {
        cr_assert_null(b->data, "%s should be absent", what);
        return;
    }
    cr_assert_not_null(b->data, "%s missing", what);
    cr_assert_eq(b->len, strlen(want), "%s length %zu", what, b->len);
    cr_assert_eq(memcmp(b->data, want, b->len), 0, "%s = %.*s", what, (int)b->len, b->data);
}

ParameterizedTest(struct kc_case *c, kube_config, kubeconfig, .init = setup, .fini = teardown)
{
    write_file("config", kubeconfig);
    char path[512];
    snprintf(path, sizeof path, "%s/config", dir);
    fp_error err = {0};
    kube_config *k = kube_config_from_kubeconfig(path, c->context, &err);
    if (c->error) {
        cr_assert_null(k);
        cr_assert_not_null(strstr(err.msg, c->error), "'%s' not in '%s'", c->error, err.msg);
        cr_assert_not_null(strstr(err.msg, path), "the error names the file: %s", err.msg);
        return;
    }
    cr_assert_not_null(k, "%s", err.msg);
    cr_assert_str_eq(k->server, c->server);
    blob_eq(&k->ca, c->ca, "ca");
    blob_eq(&k->cert, c->cert, "cert");
    blob_eq(&k->key, c->key, "key");
    if (c->token)
        cr_assert_str_eq(k->token, c->token);
    else
        cr_assert_null(k->token);
    if (c->token_file_end) {
        size_t n = strlen(k->token_file), m = strlen(c->token_file_end);
        cr_assert(n > m && strcmp(k->token_file + n - m, c->token_file_end) == 0 && k->token_file[0] == '/',
                  "token file resolved against the kubeconfig directory: %s", k->token_file);
    }
    cr_assert_str_eq(k->ns, c->ns);
    cr_assert_eq(k->insecure, c->insecure);
    kube_config_free(k);
}

Test(kube_config, in_cluster_reads_the_service_account_directory, .init = setup, .fini = teardown)
{
    write_file("ca.crt", "SA-CA");
    write_file("namespace", "formpipe-system\n");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    fp_error err = {0};
    kube_config *k = kube_config_in_cluster(dir, &err);
    cr_assert_not_null(k, "%s", err.msg);
    cr_assert_str_eq(k->server, "https://10.96.0.1:443");
    cr_assert_str_eq(k->ns, "formpipe-system");
    blob_eq(&k->ca, "SA-CA", "ca");
    cr_assert_not_null(strstr(k->token_file, "/token"));
    kube_config_free(k);
    unsetenv("KUBERNETES_SERVICE_HOST");
    cr_assert_null(kube_config_in_cluster(dir, &err));
    cr_assert_not_null(strstr(err.msg, "KUBERNETES_SERVICE_HOST"), "%s", err.msg);
}

Test(kube_yaml, maps_sequences_and_scalars)
{
    const char *y = "a: 1\nb: [x, 'y z']\nc:\n  d: {e: true}\n  f:\n  - g: h\n";
    fp_error err = {0};
    cJSON *j = kube_yaml_parse(y, strlen(y), &err);
    cr_assert_not_null(j, "%s", err.msg);
    char *s = cJSON_PrintUnformatted(j);
    cr_assert_str_eq(s, "{\"a\":\"1\",\"b\":[\"x\",\"y z\"],\"c\":{\"d\":{\"e\":\"true\"},\"f\":[{\"g\":\"h\"}]}}");
    free(s);
    cJSON_Delete(j);
}

struct bad_yaml { const char *text, *error; };
static struct bad_yaml bad[] = {
    {"a: [1, 2\n", "line"},
    {"a: &x 1\nb: *x\n", "aliases are not supported"},
    {"", "empty YAML document"},
    {"? [a]\n: b\n", "only scalar keys"},
};

ParameterizedTestParameters(kube_yaml, errors)
{
    return cr_make_param_array(struct bad_yaml, bad, sizeof bad / sizeof bad[0]);
}

ParameterizedTest(struct bad_yaml *c, kube_yaml, errors)
{
    fp_error err = {0};
    cJSON *j = kube_yaml_parse(c->text, strlen(c->text), &err);
    cr_assert_null(j);
    cr_assert_not_null(strstr(err.msg, c->error), "'%s' not in '%s'", c->error, err.msg);
}

Test(kube_yaml, nesting_is_bounded)
{
    char y[1000] = "";
    for (int i = 0; i < 100; i++)
        strcat(y, "[");
    fp_error err = {0};
    cr_assert_null(kube_yaml_parse(y, strlen(y), &err));
    cr_assert_not_null(strstr(err.msg, "nesting"), "%s", err.msg);
}
