/* ids.c — see ids.h. */
#include "ids.h"
#include "error.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Encodes 128 bits (16 bytes, big endian) as 26 base32 characters (first holds 3 bits). */
static void encode128(const unsigned char b[16], char out[FP_ID_LEN + 1])
{
    unsigned long long hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = hi << 8 | b[i];
        lo = lo << 8 | b[8 + i];
    }
    for (int i = FP_ID_LEN - 1; i >= 0; i--) {   /* 5 bits at a time from the low end */
        out[i] = crockford[lo & 31];
        lo = lo >> 5 | (hi & 31) << 59;
        hi >>= 5;
    }
    out[FP_ID_LEN] = '\0';
}

/* Random bytes for ids, drawn from the CSPRNG a kilobyte at a time per thread (one
 * RAND_bytes call per 102 ids instead of one per id). */
#define POOL_BYTES 1020
static _Thread_local unsigned char pool[POOL_BYTES];
static _Thread_local size_t pool_used = POOL_BYTES;

int fp_id_ulid(long long ms, char out[FP_ID_LEN + 1])
{
    unsigned char b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((unsigned long long)ms >> (8 * (5 - i)));
    if (pool_used + 10 > POOL_BYTES) {
        if (RAND_bytes(pool, POOL_BYTES) != 1)
            return FP_EIO;
        pool_used = 0;
    }
    memcpy(b + 6, pool + pool_used, 10);
    memset(pool + pool_used, 0, 10);   /* each byte serves one id */
    pool_used += 10;
    encode128(b, out);
    return 0;
}

void fp_id_derived(const char *ns, const char *name, const char *key, size_t keylen,
                   char out[FP_ID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, ns, strlen(ns) + 1);     /* the NULs separate the parts */
    EVP_DigestUpdate(c, name, strlen(name) + 1);
    EVP_DigestUpdate(c, key, keylen);
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    encode128(md, out);
}
