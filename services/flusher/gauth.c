/* gauth.c — see gauth.h. */
#include "gauth.h"
#include "config.h"
#include "urlpolicy.h"
#include "buf.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FP_GAUTH_MAX_KEY_FILE (64 * 1024)
#define FP_GAUTH_MAX_RESPONSE (64 * 1024)

struct fp_gauth {
    char *email;
    char *key_id;
    char *token_uri;
    EVP_PKEY *key;
    char *token;
    long long token_expires;   /* seconds since the epoch */
};

static char *b64url(const unsigned char *in, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
    for (size_t i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

static const char *member(const cJSON *o, const char *k)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return v && *v ? v : NULL;
}

/* Wipes the private key's PEM in the parsed key file, then deletes it (#16: secrets
 * read into memory are wiped before they are freed). */
static void wipe_doc(cJSON *doc)
{
    cJSON *pem = cJSON_GetObjectItemCaseSensitive(doc, "private_key");
    if (cJSON_IsString(pem))
        OPENSSL_cleanse(pem->valuestring, strlen(pem->valuestring));
    cJSON_Delete(doc);
}

fp_gauth *fp_gauth_load(const char *key_file, const char *token_uri_override, fp_error *err)
{
    fp_gauth *g = calloc(1, sizeof *g);
    cJSON *doc = NULL;
    char *text = calloc(1, FP_GAUTH_MAX_KEY_FILE + 1);
    FILE *f = fopen(key_file, "r");
    if (f)
        setvbuf(f, NULL, _IONBF, 0);   /* no stdio copy of the key to wipe */
    if (!g || !text) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    if (!f) {
        fp_error_set(err, FP_EIO, "cannot read the service-account key file %s", key_file);
        goto fail;
    }
    size_t n = fread(text, 1, FP_GAUTH_MAX_KEY_FILE + 1, f);
    if (n > FP_GAUTH_MAX_KEY_FILE) {
        fp_error_set(err, FP_ELIMIT, "service-account key file %s is larger than %d bytes", key_file,
                     FP_GAUTH_MAX_KEY_FILE);
        goto fail;
    }
    if (!(doc = cJSON_ParseWithLength(text, n)) || !cJSON_IsObject(doc)) {
        fp_error_set(err, FP_EINVAL, "service-account key file %s is not JSON", key_file);
        goto fail;
    }
    const char *fields[] = {"client_email", "private_key", "private_key_id", "token_uri"};
    for (size_t i = 0; i < 4; i++) {
        if (!member(doc, fields[i]) && !(i == 3 && token_uri_override && *token_uri_override)) {
            fp_error_set(err, FP_EINVAL, "service-account key file %s has no \"%s\"", key_file, fields[i]);
            goto fail;
        }
    }
    const char *pem = member(doc, "private_key");
    BIO *bio = BIO_new_mem_buf(pem, -1);
    g->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!g->key || EVP_PKEY_base_id(g->key) != EVP_PKEY_RSA) {
        fp_error_set(err, FP_EINVAL, "service-account key file %s: \"private_key\" is not an RSA PEM key", key_file);
        goto fail;
    }
    g->email = strdup(member(doc, "client_email"));
    g->key_id = strdup(member(doc, "private_key_id"));
    g->token_uri = strdup(token_uri_override && *token_uri_override ? token_uri_override : member(doc, "token_uri"));
    if (!g->email || !g->key_id || !g->token_uri) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    wipe_doc(doc);
    fp_config_free_secret(text, FP_GAUTH_MAX_KEY_FILE + 1);
    fclose(f);
    return g;
fail:
    if (f)
        fclose(f);
    wipe_doc(doc);
    fp_config_free_secret(text, text ? FP_GAUTH_MAX_KEY_FILE + 1 : 0);
    fp_gauth_free(g);
    return NULL;
}

void fp_gauth_free(fp_gauth *g)
{
    if (!g)
        return;
    EVP_PKEY_free(g->key);
    free(g->email);
    free(g->key_id);
    free(g->token_uri);
    fp_config_free_secret(g->token, g->token ? strlen(g->token) : 0);
    free(g);
}

const char *fp_gauth_email(const fp_gauth *g) { return g->email; }

void fp_gauth_invalidate(fp_gauth *g)
{
    fp_config_free_secret(g->token, g->token ? strlen(g->token) : 0);
    g->token = NULL;
}

/* base64url(json) of a cJSON object. */
static char *encode_part(cJSON *o)
{
    char *json = cJSON_PrintUnformatted(o);
    char *out = json ? b64url((const unsigned char *)json, strlen(json)) : NULL;
    free(json);
    return out;
}

char *fp_gauth_jwt(fp_gauth *g, long long now, fp_error *err)
{
    cJSON *head = cJSON_CreateObject(), *claims = cJSON_CreateObject();
    char *h = NULL, *c = NULL, *sig64 = NULL, *out = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    fp_buf b;
    fp_buf_init(&b, 16384);
    if (!head || !claims || !md)
        goto nomem;
    cJSON_AddStringToObject(head, "alg", "RS256");
    cJSON_AddStringToObject(head, "typ", "JWT");
    cJSON_AddStringToObject(head, "kid", g->key_id);
    cJSON_AddStringToObject(claims, "iss", g->email);
    cJSON_AddStringToObject(claims, "scope", FP_GAUTH_SCOPE);
    cJSON_AddStringToObject(claims, "aud", g->token_uri);
    cJSON_AddNumberToObject(claims, "iat", (double)now);
    cJSON_AddNumberToObject(claims, "exp", (double)(now + 3600));
    if (!(h = encode_part(head)) || !(c = encode_part(claims)) ||
        fp_buf_printf(&b, "%s.%s", h, c))
        goto nomem;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, g->key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)b.data, b.len) != 1 ||
        !(sig = malloc(siglen)) ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)b.data, b.len) != 1) {
        fp_error_set(err, FP_EINVAL, "signing the JWT failed");
        goto out;
    }
    if (!(sig64 = b64url(sig, siglen)) || fp_buf_printf(&b, ".%s", sig64))
        goto nomem;
    out = fp_buf_take(&b);
    goto out;
nomem:
    fp_error_set(err, FP_ENOMEM, "out of memory building the JWT");
out:
    fp_buf_free(&b);
    EVP_MD_CTX_free(md);
    free(sig);
    free(sig64);
    free(h);
    free(c);
    cJSON_Delete(head);
    cJSON_Delete(claims);
    return out;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    return fp_buf_add(userdata, p, size * n) == 0 ? size * n : 0;
}

int fp_gauth_token(fp_gauth *g, CURL *curl, int allow_http, const char **token, fp_error *err)
{
    long long now = (long long)time(NULL);
    if (g->token && now < g->token_expires - 60) {
        *token = g->token;
        return 0;
    }
    fp_gauth_invalidate(g);
    char *jwt = fp_gauth_jwt(g, now, err);
    if (!jwt)
        return err ? err->code : FP_EINVAL;
    fp_buf form, resp;
    fp_buf_init(&form, 32768);
    fp_buf_init(&resp, FP_GAUTH_MAX_RESPONSE);
    int rc = fp_buf_printf(&form, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", jwt);
    free(jwt);
    if (rc) {
        fp_buf_free(&form);
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, g->token_uri);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, fp_urlpolicy_protocols(g->token_uri, allow_http));
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form.data);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    cJSON *doc = resp.data ? cJSON_Parse(resp.data) : NULL;
    if (cc != CURLE_OK) {
        rc = fp_error_set(err, FP_EIO, "token endpoint %s: %s", g->token_uri, curl_easy_strerror(cc));
    } else if (status != 200) {
        const char *desc = member(doc, "error_description");
        rc = fp_error_set(err, status >= 500 ? FP_EIO : FP_EPERM,
                          "token endpoint refused the service account %s: HTTP %ld %s", g->email, status,
                          desc ? desc : (member(doc, "error") ? member(doc, "error") : ""));
    } else if (!member(doc, "access_token")) {
        rc = fp_error_set(err, FP_EIO, "token endpoint answered without an access_token");
    } else {
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(doc, "expires_in");
        g->token = strdup(member(doc, "access_token"));
        g->token_expires = now + (cJSON_IsNumber(exp) ? (long long)exp->valuedouble : 3600);
        rc = g->token ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
        *token = g->token;
    }
    cJSON_Delete(doc);
    fp_buf_free(&form);
    fp_buf_free(&resp);
    return rc;
}
