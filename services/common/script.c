/* script.c — see script.h. */
#include "script.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fp_script_init(fp_script *s, const char *src)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    s->src = src;
    SHA1((const unsigned char *)src, strlen(src), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
}

/* Queues "EVALSHA sha nkeys args..." (or "EVAL source nkeys args..."). */
static int append_call(fp_redis *r, const fp_script *s, int by_sha, int nkeys, int argc,
                       const char **argv, const size_t *lens, fp_error *err)
{
    int total = argc + 3;
    const char **av = malloc((size_t)total * sizeof *av);
    size_t *al = malloc((size_t)total * sizeof *al);
    char nk[16];
    int rc;
    if (!av || !al) {
        rc = fp_error_set(err, FP_ENOMEM, "out of memory");
    } else {
        snprintf(nk, sizeof nk, "%d", nkeys);
        av[0] = by_sha ? "EVALSHA" : "EVAL";
        al[0] = strlen(av[0]);
        av[1] = by_sha ? s->sha : s->src;
        al[1] = strlen(av[1]);
        av[2] = nk;
        al[2] = strlen(nk);
        memcpy(av + 3, argv, (size_t)argc * sizeof *av);
        memcpy(al + 3, lens, (size_t)argc * sizeof *al);
        rc = fp_redis_append(r, total, av, al, err);
    }
    free(av);
    free(al);
    return rc;
}

int fp_script_append(fp_redis *r, const fp_script *s, int nkeys, int argc, const char **argv,
                     const size_t *lens, fp_error *err)
{
    return append_call(r, s, 1, nkeys, argc, argv, lens, err);
}

int fp_script_run(fp_redis *r, const fp_script *s, int nkeys, int argc, const char **argv,
                  const size_t *lens, redisReply **reply, fp_error *err)
{
    int rc = fp_script_append(r, s, nkeys, argc, argv, lens, err);
    if (!rc)
        rc = fp_redis_receive(r, 0, reply, err);
    if (rc == 0 && (*reply)->type == REDIS_REPLY_ERROR && strncmp((*reply)->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(*reply);
        *reply = NULL;
        rc = append_call(r, s, 0, nkeys, argc, argv, lens, err);
        if (!rc)
            rc = fp_redis_receive(r, 0, reply, err);
    }
    return rc;
}
