/* script.h — a Lua script run on the Redis master by SHA (EVALSHA). The script is
 * loaded (SCRIPT LOAD) once per master connection before its first call, so a fresh
 * connection never meets -NOSCRIPT; should the cache still lose it (SCRIPT FLUSH on
 * the same connection), fp_script_run falls back to EVAL. */
#ifndef FP_SCRIPT_H
#define FP_SCRIPT_H

#include <stddef.h>

#include "error.h"
#include "redis.h"

typedef struct fp_script {
    const char *src;           /* the Lua source; must outlive the script */
    char sha[41];
    unsigned long loaded_on;   /* fp_redis_discoveries when it was loaded; 0: never */
} fp_script;

/* Computes the SHA1 of src. */
void fp_script_init(fp_script *s, const char *src);

/* Runs the script with nkeys keys followed by the other arguments (argv/lens hold
 * keys then args), loading it first on a connection that has not seen it. Returns
 * fp_redis_command's codes; a script error comes back as a REDIS_REPLY_ERROR reply. */
int fp_script_run(fp_redis *r, fp_script *s, int nkeys, int argc, const char **argv,
                  const size_t *lens, redisReply **reply, fp_error *err);

/* Queues EVALSHA for pipelining (see fp_redis_append), loading the script first (a
 * round trip) on a connection that has not seen it: call it before anything else is
 * queued. A -NOSCRIPT reply can then only follow a SCRIPT FLUSH; it comes back from
 * fp_redis_receive and the caller falls back to fp_script_run. */
int fp_script_append(fp_redis *r, fp_script *s, int nkeys, int argc, const char **argv,
                     const size_t *lens, fp_error *err);

#endif
