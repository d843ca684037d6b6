/* ratelimit.c — see ratelimit.h. */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE 8

typedef struct bucket {
    char client[64];   /* "" = free */
    double tokens;
    double last;
} bucket;

struct fp_ratelimit {
    double rate, burst;
    pthread_mutex_t lock;   /* the service threads share one table */
    bucket *slots;
};

fp_ratelimit *fp_ratelimit_new(double rate, double burst)
{
    fp_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl || !(rl->slots = calloc(FP_RATELIMIT_SLOTS, sizeof *rl->slots))) {
        free(rl);
        return NULL;
    }
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    pthread_mutex_init(&rl->lock, NULL);
    return rl;
}

void fp_ratelimit_free(fp_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->slots);
    free(rl);
}

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The client's bucket: its own, a free one, or the one idle longest nearby. */
static bucket *find(fp_ratelimit *rl, const char *client, double now)
{
    size_t h = hash(client);
    bucket *victim = NULL;   /* a free slot if there is one, else the one idle longest */
    for (size_t i = 0; i < PROBE; i++) {
        bucket *b = &rl->slots[(h + i) % FP_RATELIMIT_SLOTS];
        if (!strcmp(b->client, client))
            return b;
        int b_free = b->client[0] == '\0';
        if (!victim || (b_free && victim->client[0]) || (!b_free && victim->client[0] && b->last < victim->last))
            victim = b;
    }
    snprintf(victim->client, sizeof victim->client, "%s", client);
    victim->tokens = rl->burst;
    victim->last = now;
    return victim;
}

int fp_ratelimit_take(fp_ratelimit *rl, const char *client, double now, int *retry_after_s)
{
    if (rl->rate <= 0)
        return 1;
    pthread_mutex_lock(&rl->lock);
    bucket *b = find(rl, client, now);
    b->tokens = fmin(rl->burst, b->tokens + (now - b->last) * rl->rate);
    b->last = now;
    int allowed = b->tokens >= 1;
    if (allowed) {
        b->tokens -= 1;
    } else {
        *retry_after_s = (int)ceil((1 - b->tokens) / rl->rate);
        if (*retry_after_s < 1)
            *retry_after_s = 1;
    }
    pthread_mutex_unlock(&rl->lock);
    return allowed;
}
