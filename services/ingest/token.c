/* token.c — see token.h. */
#include "token.h"
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fp_token_key_init(fp_token_key *k, const char *path, fp_error *err)
{
    if (!path || !*path)
        return RAND_bytes(k->key, sizeof k->key) == 1 ? 0 : fp_error_set(err, FP_EIO, "no randomness for the token key");
    size_t len = 0;
    char *secret = fp_config_read_secret(path, &len, err);
    if (!secret)
        return err->code;
    if (len < 16) {
        fp_config_free_secret(secret, len);
        return fp_error_set(err, FP_EINVAL, "%.200s: a token key needs at least 16 bytes", path);
    }
    SHA256((const unsigned char *)secret, len, k->key);
    fp_config_free_secret(secret, len);
    return 0;
}

void fp_token_key_wipe(fp_token_key *k)
{
    OPENSSL_cleanse(k->key, sizeof k->key);
}

/* The hex signature of ns/form/expiry into hex (65 bytes). */
static void sign(const fp_token_key *k, const char *ns, const char *form, long long expiry, char *hex)
{
    char msg[512];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int n = snprintf(msg, sizeof msg, "formpipe-token\n%s\n%s\n%lld", ns, form, expiry);
    HMAC(EVP_sha256(), k->key, (int)sizeof k->key, (const unsigned char *)msg, (size_t)n, mac, &maclen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

void fp_token_make(const fp_token_key *k, const char *ns, const char *form, long long now_s, long long ttl_s,
                   char *out)
{
    char hex[65];
    sign(k, ns, form, now_s + ttl_s, hex);
    snprintf(out, FP_TOKEN_MAX, "%lld.%s", now_s + ttl_s, hex);
}

int fp_token_check(const fp_token_key *k, const char *ns, const char *form, const char *token, long long now_s)
{
    char hex[65], *dot;
    long long expiry = strtoll(token, &dot, 10);
    if (dot == token || *dot != '.' || strlen(dot + 1) != 64 || expiry <= 0)
        return FP_EINVAL;
    sign(k, ns, form, expiry, hex);
    if (CRYPTO_memcmp(hex, dot + 1, 64))
        return FP_EINVAL;
    return expiry < now_s ? FP_ELIMIT : 0;
}
