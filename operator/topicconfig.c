/* topicconfig.c — see topicconfig.h. */
#include "topicconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not cleanup.policy (compaction would drop submissions sharing a key), not
 * unclean.leader.election.enable (loses acknowledged events). */
const char *const op_topicconfig_keys[] = {
    "retention.ms", "retention.bytes", "compression.type", "min.insync.replicas", "max.message.bytes",
    "segment.ms", "segment.bytes", "message.timestamp.type", NULL,
};

static int allowed(const char *k)
{
    for (const char *const *a = op_topicconfig_keys; *a; a++)
        if (strcmp(*a, k) == 0)
            return 1;
    return 0;
}

void op_topicconfig_clear(op_topicconfig *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].name);
        free(c->e[i].value);
    }
    free(c->e);
    *c = (op_topicconfig){0};
}

const op_topicconfig_entry *op_topicconfig_find(const op_topicconfig *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0)
            return &c->e[i];
    return NULL;
}

int op_topicconfig_set(op_topicconfig *c, const char *name, const char *value, int dynamic)
{
    char *v = strdup(value);
    if (!v)
        return FP_ENOMEM;
    op_topicconfig_entry *e = (op_topicconfig_entry *)op_topicconfig_find(c, name);
    if (e) {
        free(e->value);
        e->value = v;
        e->dynamic = dynamic;
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        op_topicconfig_entry *ne = realloc(c->e, cap * sizeof *ne);
        if (!ne) {
            free(v);
            return FP_ENOMEM;
        }
        c->e = ne;
        c->cap = cap;
    }
    char *n = strdup(name);
    if (!n) {
        free(v);
        return FP_ENOMEM;
    }
    c->e[c->n++] = (op_topicconfig_entry){n, v, dynamic};
    return 0;
}

/* The value of a config as Kafka writes it: integers in decimal, strings as they are. */
static int value_text(const cJSON *v, const char *path, char *out, size_t outsz, fp_error *err)
{
    const char *k = v->string;
    if (strcmp(k, "compression.type") == 0 || strcmp(k, "message.timestamp.type") == 0) {
        static const char *const compression[] = {"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer", NULL};
        static const char *const timestamp[] = {"CreateTime", "LogAppendTime", NULL};
        const char *const *ok = k[0] == 'c' ? compression : timestamp;
        for (; cJSON_IsString(v) && *ok; ok++)
            if (strcmp(*ok, v->valuestring) == 0) {
                snprintf(out, outsz, "%s", v->valuestring);
                return 0;
            }
        return fp_error_set(err, FP_EINVAL, "%s.%s: not a value Kafka knows", path, k);
    }
    long long n;
    char *end = NULL;
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble)
        n = (long long)v->valuedouble;
    else if (cJSON_IsString(v) && *v->valuestring && (n = strtoll(v->valuestring, &end, 10), !*end))
        ;
    else
        return fp_error_set(err, FP_EINVAL, "%s.%s: must be an integer", path, k);
    long long lo = strcmp(k, "retention.ms") == 0 || strcmp(k, "retention.bytes") == 0 ? -1 : 1;
    if (n < lo)
        return fp_error_set(err, FP_EINVAL, "%s.%s: must be at least %lld", path, k, lo);
    snprintf(out, outsz, "%lld", n);
    return 0;
}

static int read_map(const cJSON *m, const char *path, op_topicconfig *out, fp_error *err)
{
    const cJSON *it;
    if (m && !cJSON_IsObject(m))
        return fp_error_set(err, FP_EINVAL, "%s: must be a map of topic configs", path);
    cJSON_ArrayForEach(it, m) {
        char v[64];
        int rc;
        if (!allowed(it->string))
            return fp_error_set(err, FP_EINVAL, "%s.%s: not a topic config formpipe sets (allowed: retention.ms, "
                                "retention.bytes, compression.type, min.insync.replicas, max.message.bytes, segment.ms, "
                                "segment.bytes, message.timestamp.type)", path, it->string);
        if ((rc = value_text(it, path, v, sizeof v, err)) < 0 || (rc = op_topicconfig_set(out, it->string, v, 1)) < 0)
            return rc == FP_ENOMEM ? fp_error_set(err, FP_ENOMEM, "out of memory") : rc;
    }
    return 0;
}

int op_topicconfig_read(const cJSON *config, const cJSON *dlq_config, op_topicconfig *topic, op_topicconfig *dlq,
                        fp_error *err)
{
    op_topicconfig own = {0};
    int rc = read_map(config, "spec.kafka.config", topic, err);
    if (rc == 0)
        rc = read_map(dlq_config, "spec.kafka.deadLetterConfig", &own, err);
    for (size_t i = 0; rc == 0 && i < topic->n; i++)
        if (strncmp(topic->e[i].name, "retention.", 10) != 0)
            rc = op_topicconfig_set(dlq, topic->e[i].name, topic->e[i].value, 1);
    if (rc == 0 && !op_topicconfig_find(&own, "retention.ms")) {
        const op_topicconfig_entry *t = op_topicconfig_find(topic, "retention.ms");
        long long ms = t ? strtoll(t->value, NULL, 10) : 0;
        char v[32];
        snprintf(v, sizeof v, "%lld", ms < 0 ? -1 : ms > OP_DLQ_RETENTION_MS ? ms : OP_DLQ_RETENTION_MS);
        rc = op_topicconfig_set(dlq, "retention.ms", v, 1);
    }
    for (size_t i = 0; rc == 0 && i < own.n; i++)
        rc = op_topicconfig_set(dlq, own.e[i].name, own.e[i].value, 1);
    op_topicconfig_clear(&own);
    return rc == FP_ENOMEM ? fp_error_set(err, FP_ENOMEM, "out of memory") : rc;
}

int op_topicconfig_plan(const op_topicconfig *want, const op_topicconfig *current, op_topicconfig *out, fp_error *err)
{
    int changed = 0, rc = 0;
    for (size_t i = 0; rc == 0 && i < current->n; i++) {
        const op_topicconfig_entry *e = &current->e[i];
        if (!e->dynamic)
            continue;
        if (!allowed(e->name))
            rc = op_topicconfig_set(out, e->name, e->value, 1);
        else if (!op_topicconfig_find(want, e->name))
            changed = 1;   /* set by hand: removed */
    }
    for (size_t i = 0; rc == 0 && i < want->n; i++) {
        const op_topicconfig_entry *have = op_topicconfig_find(current, want->e[i].name);
        if (!have || !have->dynamic || strcmp(have->value, want->e[i].value) != 0)
            changed = 1;
        rc = op_topicconfig_set(out, want->e[i].name, want->e[i].value, 1);
    }
    return rc < 0 ? fp_error_set(err, FP_ENOMEM, "out of memory") : changed;
}
