/* hooksig.h — the Formpipe-Signature header of a webhook request (Stripe-style):
 * "t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>". A receiver recomputes
 * it with the shared key, compares in constant time and refuses an old t. */
#ifndef FP_HOOKSIG_H
#define FP_HOOKSIG_H

#include <stddef.h>

/* Longest header value fp_hooksig_format writes, with its NUL. */
#define FP_HOOKSIG_MAX 96

/* Writes the header value for body[0..len) signed with key[0..keylen) at unix time t
 * into out (FP_HOOKSIG_MAX bytes). Returns 0, or FP_EINVAL for a too small out or a
 * negative t, FP_ENOMEM when OpenSSL fails. */
int fp_hooksig_format(const void *key, size_t keylen, long long t, const void *body, size_t len,
                      char *out, size_t outsz);

#endif
