/* hooksig.c — see hooksig.h. */
#include "hooksig.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>

#include "error.h"

int fp_hooksig_format(const void *key, size_t keylen, long long t, const void *body, size_t len,
                      char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    char ts[24];
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    int rc = FP_ENOMEM;
    EVP_MAC *hmac = NULL;
    EVP_MAC_CTX *c = NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};

    if (t < 0 || outsz < FP_HOOKSIG_MAX)
        return FP_EINVAL;
    int tslen = snprintf(ts, sizeof ts, "%lld", t);
    /* HMAC over "<t>.<body>" without building that string: the body may be large. */
    static const unsigned char empty = 0;
    if (!(hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) || !(c = EVP_MAC_CTX_new(hmac)) ||
        EVP_MAC_init(c, keylen ? key : &empty, keylen, params) != 1 ||
        EVP_MAC_update(c, (const unsigned char *)ts, (size_t)tslen) != 1 ||
        EVP_MAC_update(c, (const unsigned char *)".", 1) != 1 ||
        (len && EVP_MAC_update(c, body, len) != 1) ||
        EVP_MAC_final(c, mac, &maclen, sizeof mac) != 1)
        goto out;
    int n = snprintf(out, outsz, "t=%s,v1=", ts);
    for (size_t i = 0; i < maclen; i++) {
        out[n++] = hex[mac[i] >> 4];
        out[n++] = hex[mac[i] & 15];
    }
    out[n] = '\0';
    rc = 0;
out:
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(hmac);
    return rc;
}
