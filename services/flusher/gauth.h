/* gauth.h — Google service-account authentication: read the key file, sign an RS256
 * JWT (iss = client_email, scope = spreadsheets, aud = token_uri, exp <= 1 h) and
 * exchange it at token_uri for an access token, cached until shortly before expiry. */
#ifndef FP_GAUTH_H
#define FP_GAUTH_H

#include <curl/curl.h>

#include "error.h"

#define FP_GAUTH_SCOPE "https://www.googleapis.com/auth/spreadsheets"

typedef struct fp_gauth fp_gauth;

/* Reads a service-account key file (JSON with client_email, private_key,
 * private_key_id, token_uri). token_uri_override, if set, replaces token_uri (tests,
 * private endpoints). NULL with *err saying what is wrong with the file. */
fp_gauth *fp_gauth_load(const char *key_file, const char *token_uri_override, fp_error *err);
void fp_gauth_free(fp_gauth *g);   /* NULL is fine */

/* The signed JWT for the moment now (seconds since the epoch); caller frees. */
char *fp_gauth_jwt(fp_gauth *g, long long now, fp_error *err);

/* A valid access token (fetched with curl when missing or expiring within a minute).
 * The string belongs to g and lives until the next call. The token endpoint must be
 * https:// (http:// only to a loopback host, or anywhere with allow_http). */
int fp_gauth_token(fp_gauth *g, CURL *curl, int allow_http, const char **token, fp_error *err);

/* Forgets the cached token (after a 401). */
void fp_gauth_invalidate(fp_gauth *g);

const char *fp_gauth_email(const fp_gauth *g);

#endif
