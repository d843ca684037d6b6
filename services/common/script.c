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

/* Builds "EVALSHA sha nkeys argv..." into freshly allocated arrays. */
static int evalsha_args(const fp_script *s, char nk[16], int nkeys, int argc, const char **argv,
                        const size_t *lens, const char ***av, size_t **al, fp_error *err)
{
    int total = argc + 3;
    *av = malloc((size_t)total * sizeof **av);
    *al = malloc((size_t)total * sizeof **al);
    if (!*av || !*al) {
        free(*av);
        free(*al);
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    snprintf(nk, 16, "%d", nkeys);
    (*av)[0] = "EVALSHA";
    (*al)[0] = 7;
    (*av)[1] = s->sha;
    (*al)[1] = 40;
    (*av)[2] = nk;
    (*al)[2] = strlen(nk);
    memcpy(*av + 3, argv, (size_t)argc * sizeof **av);
    memcpy(*al + 3, lens, (size_t)argc * sizeof **al);
    return 0;
}

int fp_script_run(fp_redis *r, const fp_script *s, int nkeys, int argc, const char **argv,
                  const size_t *lens, redisReply **reply, fp_error *err)
{
    const char **av;
    size_t *al;
    char nk[16];
    int rc = evalsha_args(s, nk, nkeys, argc, argv, lens, &av, &al, err);
    if (rc)
        return rc;
    rc = fp_redis_command(r, reply, err, argc + 3, av, al);
    if (rc == 0 && (*reply)->type == REDIS_REPLY_ERROR && strncmp((*reply)->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(*reply);
        av[0] = "EVAL";
        al[0] = 4;
        av[1] = s->src;
        al[1] = strlen(s->src);
        rc = fp_redis_command(r, reply, err, argc + 3, av, al);
    }
    free(av);
    free(al);
    return rc;
}

int fp_script_append(fp_redis *r, const fp_script *s, int nkeys, int argc, const char **argv,
                     const size_t *lens, fp_error *err)
{
    const char **av;
    size_t *al;
    char nk[16];
    int rc = evalsha_args(s, nk, nkeys, argc, argv, lens, &av, &al, err);
    if (rc)
        return rc;
    rc = fp_redis_append(r, argc + 3, av, al, err);
    free(av);
    free(al);
    return rc;
}
