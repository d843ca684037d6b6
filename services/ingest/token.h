/* token.h — per-form submission tokens: a form with "submissionToken": true embeds a
 * signed, short-lived token in its page (hidden input FP_TOKEN_FIELD), and a post
 * without a valid one is refused (403). Token: "<expiry unix seconds>.<hex HMAC-SHA256
 * over namespace, form and expiry>" under a key every replica shares (--token-key-file;
 * without it a random key per process, so only one replica can check its tokens). It
 * proves the client fetched the page recently, not who it is: it raises the cost of
 * blind scripted posts and pairs with the rate limit and the honeypot. */
#ifndef FP_TOKEN_H
#define FP_TOKEN_H

#include "error.h"

#define FP_TOKEN_FIELD "_formpipe_token"   /* the form field (and header Formpipe-Token) */
#define FP_TOKEN_MAX 96                    /* a token's length with its NUL, with room */

typedef struct fp_token_key {
    unsigned char key[32];
} fp_token_key;

/* The key from a secret file (its SHA-256), or random bytes when path is NULL or "".
 * 0, or nonzero with *err (the file's content is never shown). */
int fp_token_key_init(fp_token_key *k, const char *path, fp_error *err);

/* Wipes the key. */
void fp_token_key_wipe(fp_token_key *k);

/* A token for ns/form valid until now_s + ttl_s, into out (FP_TOKEN_MAX). */
void fp_token_make(const fp_token_key *k, const char *ns, const char *form, long long now_s, long long ttl_s,
                   char *out);

/* 0 when token is one of ns/form's and not expired at now_s; FP_EINVAL when it is
 * malformed or its signature is wrong; FP_ELIMIT when it has expired. */
int fp_token_check(const fp_token_key *k, const char *ns, const char *form, const char *token, long long now_s);

#endif
