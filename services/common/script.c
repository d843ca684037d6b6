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
    s->loaded_on = 0;
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

/* SCRIPT LOAD on the current master connection (connecting first) unless this
 * connection already has the script: EVALSHA on a fresh connection finds it. */
static int ensure_loaded(fp_redis *r, fp_script *s, fp_error *err)
{
    if (s->loaded_on != 0 && s->loaded_on == fp_redis_discoveries(r) && *fp_redis_master_addr(r))
        return 0;
    const char *argv[] = {"SCRIPT", "LOAD", s->src};
    const size_t lens[] = {6, 4, strlen(s->src)};
    redisReply *rep;
    int rc = fp_redis_command(r, &rep, err, 3, argv, lens);
    if (rc)
        return rc;
    if (rep->type != REDIS_REPLY_STRING || strcmp(rep->str, s->sha) != 0)
        rc = fp_error_set(err, FP_EINVAL, "SCRIPT LOAD: unexpected reply: %s",
                          rep->type == REDIS_REPLY_ERROR ? rep->str : "not the script's SHA1");
    else
        s->loaded_on = fp_redis_discoveries(r);
    freeReplyObject(rep);
    return rc;
}

int fp_script_append(fp_redis *r, fp_script *s, int nkeys, int argc, const char **argv,
                     const size_t *lens, fp_error *err)
{
    int rc = ensure_loaded(r, s, err);
    return rc ? rc : append_call(r, s, 1, nkeys, argc, argv, lens, err);
}

int fp_script_run(fp_redis *r, fp_script *s, int nkeys, int argc, const char **argv,
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
        if (!rc)
            s->loaded_on = fp_redis_discoveries(r);   /* EVAL cached it again */
    }
    return rc;
}
