/* Unit tests for services/flusher/gauth: the service-account key file and the RS256
 * JWT, whose signature is checked by `openssl dgst -verify` (an independent verifier). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gauth.h"

static char dir[] = "/tmp/fp-gauth-XXXXXX";

static void run(const char *cmd)
{
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *buf = calloc(1, 1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}

static void spill(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite(data, 1, len, f);
    fclose(f);
}

/* Writes key.json beside an RSA key pair; returns its path (static). */
static const char *make_key_file(const char *extra_json)
{
    static char path[128];
    char cmd[512], pem_path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(pem_path, sizeof pem_path, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd, "openssl genrsa -out %s/key.pem 2048 2>/dev/null && "
             "openssl rsa -in %s/key.pem -pubout -out %s/pub.pem 2>/dev/null", dir, dir, dir);
    run(cmd);
    size_t n;
    char *pem = slurp(pem_path, &n);
    cJSON *k = extra_json ? cJSON_Parse(extra_json) : cJSON_CreateObject();
    if (!cJSON_GetObjectItemCaseSensitive(k, "client_email"))
        cJSON_AddStringToObject(k, "client_email", "flush@project.iam.gserviceaccount.com");
    if (!cJSON_GetObjectItemCaseSensitive(k, "private_key"))
        cJSON_AddStringToObject(k, "private_key", pem);
    if (!cJSON_GetObjectItemCaseSensitive(k, "private_key_id"))
        cJSON_AddStringToObject(k, "private_key_id", "abc123");
    if (!cJSON_GetObjectItemCaseSensitive(k, "token_uri"))
        cJSON_AddStringToObject(k, "token_uri", "https://oauth2.googleapis.com/token");
    char *text = cJSON_Print(k);
    snprintf(path, sizeof path, "%s/key.json", dir);
    spill(path, text, strlen(text));
    free(text);
    free(pem);
    cJSON_Delete(k);
    return path;
}

static unsigned char *b64url_decode(const char *s, size_t n, size_t *out_len)
{
    char *std = malloc(n + 4);
    size_t i;
    for (i = 0; i < n; i++)
        std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (i % 4)
        std[i++] = '=';
    unsigned char *out = malloc(i);
    int len = EVP_DecodeBlock(out, (unsigned char *)std, (int)i);
    cr_assert_geq(len, 0);
    size_t pad = 0;
    for (size_t j = i; j > 0 && std[j - 1] == '='; j--)
        pad++;
    *out_len = (size_t)len - pad;
    free(std);
    return out;
}

Test(gauth, jwt_is_rs256_signed_and_verifies_with_openssl)
{
    const char *key = make_key_file(NULL);
    fp_error err = {0};
    fp_gauth *g = fp_gauth_load(key, NULL, &err);
    cr_assert_not_null(g, "%s", err.msg);
    char *jwt = fp_gauth_jwt(g, 1795442727, &err);
    cr_assert_not_null(jwt, "%s", err.msg);

    char *dot1 = strchr(jwt, '.'), *dot2 = strrchr(jwt, '.');
    cr_assert(dot1 && dot2 && dot1 != dot2, "three parts: %s", jwt);
    size_t hl, cl, sl;
    unsigned char *head = b64url_decode(jwt, (size_t)(dot1 - jwt), &hl);
    unsigned char *claims = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &cl);
    unsigned char *sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &sl);
    cJSON *h = cJSON_ParseWithLength((char *)head, hl), *c = cJSON_ParseWithLength((char *)claims, cl);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(h, "alg")->valuestring, "RS256");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(h, "typ")->valuestring, "JWT");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(h, "kid")->valuestring, "abc123");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "iss")->valuestring, "flush@project.iam.gserviceaccount.com");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "scope")->valuestring, FP_GAUTH_SCOPE);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "aud")->valuestring, "https://oauth2.googleapis.com/token");
    cr_assert_eq((long long)cJSON_GetObjectItemCaseSensitive(c, "iat")->valuedouble, 1795442727LL);
    cr_assert_eq((long long)cJSON_GetObjectItemCaseSensitive(c, "exp")->valuedouble, 1795442727LL + 3600, "exp <= 1 h");

    char signed_path[128], sig_path[128], cmd[600];
    snprintf(signed_path, sizeof signed_path, "%s/signed", dir);
    snprintf(sig_path, sizeof sig_path, "%s/sig", dir);
    spill(signed_path, jwt, (size_t)(dot2 - jwt));
    spill(sig_path, sig, sl);
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -verify %s/pub.pem -signature %s %s >/dev/null",
             dir, sig_path, signed_path);
    run(cmd);
    /* and a tampered message does not verify */
    jwt[dot1 - jwt + 2] ^= 1;
    spill(signed_path, jwt, (size_t)(dot2 - jwt));
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -verify %s/pub.pem -signature %s %s >/dev/null 2>&1",
             dir, sig_path, signed_path);
    cr_assert_neq(system(cmd), 0, "a changed claim must break the signature");

    cJSON_Delete(h);
    cJSON_Delete(c);
    free(head);
    free(claims);
    free(sig);
    free(jwt);
    fp_gauth_free(g);
}

struct bad_key { const char *json; const char *msg; };

static struct bad_key bad[] = {
    {"{\"client_email\":\"\"}", "has no \"client_email\""},
    {"{\"private_key\":\"not a key\"}", "\"private_key\" is not an RSA PEM key"},
    {"{\"private_key_id\":\"\"}", "has no \"private_key_id\""},
    {"{\"token_uri\":\"\"}", "has no \"token_uri\""},
};

ParameterizedTestParameters(gauth, bad_key_files_give_one_clear_error)
{
    return cr_make_param_array(struct bad_key, bad, sizeof bad / sizeof bad[0]);
}

ParameterizedTest(struct bad_key *c, gauth, bad_key_files_give_one_clear_error)
{
    const char *key = make_key_file(c->json);
    fp_error err = {0};
    cr_assert_null(fp_gauth_load(key, NULL, &err));
    cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
    cr_assert_not_null(strstr(err.msg, key), "names the file: %s", err.msg);
}

Test(gauth, missing_or_non_json_files)
{
    fp_error err = {0};
    cr_assert_null(fp_gauth_load("/nonexistent/key.json", NULL, &err));
    cr_assert_not_null(strstr(err.msg, "cannot read the service-account key file /nonexistent/key.json"), "%s", err.msg);
    char path[] = "/tmp/fp-notjson-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_eq(write(fd, "hello", 5), 5);
    close(fd);
    cr_assert_null(fp_gauth_load(path, NULL, &err));
    cr_assert_not_null(strstr(err.msg, "is not JSON"), "%s", err.msg);
    unlink(path);
}

Test(gauth, token_uri_override_replaces_the_audience)
{
    const char *key = make_key_file(NULL);
    fp_gauth *g = fp_gauth_load(key, "http://127.0.0.1:29500/token", NULL);
    cr_assert_not_null(g);
    char *jwt = fp_gauth_jwt(g, 1, NULL);
    char *dot1 = strchr(jwt, '.'), *dot2 = strrchr(jwt, '.');
    size_t cl;
    unsigned char *claims = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &cl);
    cJSON *c = cJSON_ParseWithLength((char *)claims, cl);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(c, "aud")->valuestring, "http://127.0.0.1:29500/token");
    cJSON_Delete(c);
    free(claims);
    free(jwt);
    fp_gauth_free(g);
}
