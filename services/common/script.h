/* script.h — a Lua script run on the Redis master by SHA (EVALSHA), loading it with
 * EVAL when the server answers -NOSCRIPT (after a restart, failover or SCRIPT FLUSH). */
#ifndef FP_SCRIPT_H
#define FP_SCRIPT_H

#include <stddef.h>

#include "error.h"
#include "redis.h"

typedef struct fp_script {
    const char *src;   /* the Lua source; must outlive the script */
    char sha[41];
} fp_script;

/* Computes the SHA1 of src. */
void fp_script_init(fp_script *s, const char *src);

/* Runs the script with nkeys keys followed by the other arguments (argv/lens hold
 * keys then args). Returns fp_redis_command's codes; a script error comes back as a
 * REDIS_REPLY_ERROR reply. */
int fp_script_run(fp_redis *r, const fp_script *s, int nkeys, int argc, const char **argv,
                  const size_t *lens, redisReply **reply, fp_error *err);

/* Queues EVALSHA for pipelining (see fp_redis_append); a -NOSCRIPT reply then comes
 * back from fp_redis_receive and the caller falls back to fp_script_run. */
int fp_script_append(fp_redis *r, const fp_script *s, int nkeys, int argc, const char **argv,
                     const size_t *lens, fp_error *err);

#endif
