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
    for (int i = 0; i < FP_ID_LEN; i++) {
        int bit = 128 - 5 * (FP_ID_LEN - i);   /* position of this digit's lowest... from the top */
        unsigned v = 0;
        for (int k = 0; k < 5; k++) {
            int pos = bit + k;                 /* bit index from the most significant, may be < 0 */
            v <<= 1;
            if (pos >= 0)
                v |= (b[pos / 8] >> (7 - pos % 8)) & 1;
        }
        out[i] = crockford[v];
    }
    out[FP_ID_LEN] = '\0';
}

int fp_id_ulid(long long ms, char out[FP_ID_LEN + 1])
{
    unsigned char b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((unsigned long long)ms >> (8 * (5 - i)));
    if (RAND_bytes(b + 6, 10) != 1)
        return FP_EIO;
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
