/* ids.h — submission ids: ULIDs (26 Crockford base32 characters, time ordered), or,
 * when the client sends an Idempotency-Key, an id derived from (form, key) so that a
 * retried request gets the same id and is stored once. */
#ifndef FP_IDS_H
#define FP_IDS_H

#include <stddef.h>

#define FP_ID_LEN 26

/* A new ULID for the moment ms (milliseconds since the epoch) into out[27]. Returns 0,
 * or FP_EIO when no randomness is available. */
int fp_id_ulid(long long ms, char out[FP_ID_LEN + 1]);

/* The id for (namespace/name, key): 26 base32 characters of SHA-256, deterministic. */
void fp_id_derived(const char *ns, const char *name, const char *key, size_t keylen,
                   char out[FP_ID_LEN + 1]);

#endif
