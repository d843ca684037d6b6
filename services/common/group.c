/* group.c — see group.h. */
#include "group.h"
#include "kafka.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long reading another group's committed offsets may take, per attempt. */
#define COMMITTED_TIMEOUT_MS 10000
#define COMMITTED_ATTEMPTS 3

/* A subscribed topic (fp_group_subscribe_topics), its strings owned. */
typedef struct gtopic {
    char *topic, *previous, *ns, *pipeline;
} gtopic;

struct fp_group {
    rd_kafka_t *rk;
    rd_kafka_conf_t *conf;   /* a copy of rk's, for the handles that read committed offsets */
    char group[256];
    char topic[256];
    gtopic *topics;          /* sorted by topic */
    size_t ntopics;
    int paused;
    int transactional;
    int lag_by_pipeline;
    fp_group_revoked_fn *revoked;
    void *opaque;
    fp_metric *m_lag;
};

/* bsearch/qsort comparison of gtopics by name. */
static int gtopic_cmp(const void *a, const void *b)
{
    return strcmp(((const gtopic *)a)->topic, ((const gtopic *)b)->topic);
}

/* The subscribed topic named topic, or NULL. */
static const gtopic *find_topic(const fp_group *g, const char *topic)
{
    gtopic key = {.topic = (char *)topic};
    return g->ntopics ? bsearch(&key, g->topics, g->ntopics, sizeof *g->topics, gtopic_cmp) : NULL;
}

/* The lag gauge's label values of a partition of t into values (label holds the
 * partition's text). */
static void lag_labels(const gtopic *t, int32_t partition, char label[16], const char *values[3])
{
    snprintf(label, 16, "%d", (int)partition);
    values[0] = t->ns ? t->ns : "";
    values[1] = t->pipeline ? t->pipeline : t->topic;
    values[2] = label;
}

/* The lag series of a partition; NULL for a topic no longer subscribed when the
 * gauge is labelled by pipeline. */
static fp_series *lag_series(fp_group *g, const char *topic, int32_t partition)
{
    char label[16];
    const char *values[3];
    if (!g->lag_by_pipeline) {
        snprintf(label, sizeof label, "%d", (int)partition);
        return fp_metric_series(g->m_lag, (const char *[]){label});
    }
    const gtopic *t = find_topic(g, topic);
    if (!t)
        return NULL;
    lag_labels(t, partition, label, values);
    return fp_metric_series(g->m_lag, values);
}

/* Removes the lag series of the assigned partitions of topics that t (n, sorted) no
 * longer lists: those pipelines are gone. */
static void forget_lag_of_removed(fp_group *g, const gtopic *t, size_t n)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!g->lag_by_pipeline || rd_kafka_assignment(g->rk, &parts) || !parts)
        return;
    for (int i = 0; i < parts->cnt; i++) {
        gtopic key = {.topic = parts->elems[i].topic};
        const gtopic *old = find_topic(g, key.topic);
        if (old && !(n && bsearch(&key, t, n, sizeof *t, gtopic_cmp))) {
            char label[16];
            const char *values[3];
            lag_labels(old, parts->elems[i].partition, label, values);
            fp_metric_forget(g->m_lag, values);
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

/* group's committed offsets for parts (offsets filled; negative: none), a few attempts. */
static int committed_retrying(fp_group *g, const char *group, rd_kafka_topic_partition_list_t *parts)
{
    fp_error err = {0};
    for (int attempt = 1; attempt <= COMMITTED_ATTEMPTS; attempt++) {
        if (fp_kafka_committed(g->conf, group, parts, COMMITTED_TIMEOUT_MS, &err) == 0)
            return 0;
        fp_log_warn("reading committed offsets failed", FP_LSTR("group", group), FP_LSTR("error", err.msg),
                    FP_LINT("attempt", attempt));
    }
    return err.code ? err.code : FP_EIO;
}

/* The start-offset rule for newly assigned partitions of topics with a previous group:
 * without a committed offset of ours, start at the previous group's committed offset
 * (so switching groups re-reads nothing and skips nothing). Partitions left at
 * RD_KAFKA_OFFSET_INVALID start as librdkafka decides: at our commit, else the beginning
 * (auto.offset.reset). When the offsets cannot be read that is what happens too, logged:
 * the idempotent insert makes the re-read harmless within the dedup window. */
static void choose_start_offsets(fp_group *g, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *ours = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        const gtopic *t = find_topic(g, parts->elems[i].topic);
        if (t && t->previous && parts->elems[i].offset == RD_KAFKA_OFFSET_INVALID)
            rd_kafka_topic_partition_list_add(ours, parts->elems[i].topic, parts->elems[i].partition);
    }
    if (ours->cnt == 0 || committed_retrying(g, g->group, ours)) {
        if (ours->cnt)
            fp_log_error("our committed offsets are unknown; new partitions start as librdkafka decides",
                         FP_LSTR("group", g->group));
        rd_kafka_topic_partition_list_destroy(ours);
        return;
    }
    /* One lookup per previous group, for its partitions without a commit of ours. */
    for (int i = 0; i < ours->cnt; i++) {
        const gtopic *t = find_topic(g, ours->elems[i].topic);
        if (ours->elems[i].offset >= 0 || ours->elems[i].err == RD_KAFKA_RESP_ERR__NOOP)
            continue;
        rd_kafka_topic_partition_list_t *prev = rd_kafka_topic_partition_list_new(ours->cnt);
        for (int j = i; j < ours->cnt; j++) {
            const gtopic *u = find_topic(g, ours->elems[j].topic);
            if (ours->elems[j].offset < 0 && ours->elems[j].err != RD_KAFKA_RESP_ERR__NOOP &&
                strcmp(u->previous, t->previous) == 0) {
                rd_kafka_topic_partition_list_add(prev, ours->elems[j].topic, ours->elems[j].partition);
                ours->elems[j].err = RD_KAFKA_RESP_ERR__NOOP;   /* asked */
            }
        }
        if (committed_retrying(g, t->previous, prev)) {
            fp_log_error("the previous group's committed offsets are unknown; its partitions start at the beginning",
                         FP_LSTR("previous_group", t->previous));
        } else {
            for (int j = 0; j < prev->cnt; j++) {
                const rd_kafka_topic_partition_t *q = &prev->elems[j];
                if (q->offset < 0)
                    continue;
                rd_kafka_topic_partition_list_find(parts, q->topic, q->partition)->offset = q->offset;
                fp_log_info("partition starts at the previous group's commit", FP_LSTR("topic", q->topic),
                            FP_LINT("partition", q->partition), FP_LSTR("previous_group", t->previous),
                            FP_LINT("offset", q->offset));
            }
        }
        rd_kafka_topic_partition_list_destroy(prev);
    }
    rd_kafka_topic_partition_list_destroy(ours);
}

/* librdkafka's rebalance callback: (incrementally) assigns, keeping new partitions
 * paused while every partition is; on revoke lets the owner drop its state, then
 * commits what was stored. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fp_group *g = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        fp_log_info("partitions assigned", FP_LINT("count", parts->cnt));
        if (g->ntopics)
            choose_start_offsets(g, parts);
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
        if (g->paused)   /* while the owner cannot work nothing new may be fetched either */
            rd_kafka_pause_partitions(rk, parts);
        else   /* a partition paused at a dead letter, lost and got back, starts afresh */
            rd_kafka_resume_partitions(rk, parts);
        return;
    }
    /* Revoked (or lost): commit what has been stored; what was not is read again by
     * the next owner. */
    fp_log_info("partitions revoked", FP_LINT("count", parts->cnt));
    if (g->revoked)
        g->revoked(g->opaque, parts);
    for (int i = 0; i < parts->cnt; i++)   /* its next owner reports it */
        fp_series_set(lag_series(g, parts->elems[i].topic, parts->elems[i].partition), 0);
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !rd_kafka_assignment_lost(rk) && !g->transactional)
        rd_kafka_commit(rk, NULL, 0);
    if (cooperative)
        rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
    else
        rd_kafka_assign(rk, NULL);
}

fp_group *fp_group_new(const fp_group_config *cfg, fp_metrics *m, fp_error *err)
{
    char why[512];
    fp_group *g = calloc(1, sizeof *g);
    if (!g) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(g->topic, sizeof g->topic, "%s", cfg->topic ? cfg->topic : "");
    snprintf(g->group, sizeof g->group, "%s", cfg->group);
    g->transactional = cfg->transactional;
    g->lag_by_pipeline = cfg->lag_by_pipeline;
    g->revoked = cfg->revoked;
    g->opaque = cfg->opaque;
    g->m_lag = cfg->lag_by_pipeline
                 ? fp_metrics_gauge(m, cfg->lag_metric, "Messages behind the high watermark, by pipeline and partition.",
                                    (const char *[]){"namespace", "pipeline", "partition", NULL}, err)
                 : fp_metrics_gauge(m, cfg->lag_metric, "Messages behind the high watermark, by partition.",
                                    (const char *[]){"partition", NULL}, err);
    if (!g->m_lag)
        goto fail;
    /* A member that dies without leaving (kill -9, a lost node) holds its partitions
     * until its session times out: 10 s rather than librdkafka's 45 s. Heartbeats come
     * from librdkafka's own thread, so a busy loop does not end a session. The binary's
     * defaults, the client config file and --kafka-property may override both. */
    const char *defaults[2 * FP_GROUP_MAX_DEFAULTS + 5] = {"session.timeout.ms", "10000", "heartbeat.interval.ms", "3000"};
    size_t n = 4;
    for (size_t i = 0; cfg->defaults && cfg->defaults[i]; i += 2) {
        if (n + 2 >= sizeof defaults / sizeof defaults[0]) {
            fp_error_set(err, FP_EINVAL, "more than %d librdkafka defaults", FP_GROUP_MAX_DEFAULTS);
            goto fail;
        }
        defaults[n++] = cfg->defaults[i];
        defaults[n++] = cfg->defaults[i + 1];
    }
    defaults[n] = NULL;
    rd_kafka_conf_t *kc = fp_kafka_conf_new(cfg->kafka_bootstrap, defaults, cfg->kafka_config_file,
                                            cfg->kafka_properties, err);
    if (!kc || fp_kafka_conf_set(kc, "group.id", cfg->group, err) ||
        fp_kafka_conf_set(kc, "partition.assignment.strategy", "cooperative-sticky", err) ||
        fp_kafka_conf_set(kc, "enable.auto.offset.store", "false", err) ||
        fp_kafka_conf_set(kc, "enable.auto.commit", cfg->transactional ? "false" : "true", err) ||
        (cfg->transactional && fp_kafka_conf_set(kc, "isolation.level", "read_committed", err)) ||
        fp_kafka_conf_set(kc, "auto.offset.reset", "earliest", err)) {
        if (kc)
            rd_kafka_conf_destroy(kc);
        goto fail;
    }
    if (!(g->conf = rd_kafka_conf_dup(kc))) {
        rd_kafka_conf_destroy(kc);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
    rd_kafka_conf_set_opaque(kc, g);
    if (!(g->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof why))) {
        rd_kafka_conf_destroy(kc);
        fp_error_set(err, FP_EINVAL, "kafka consumer: %s", why);
        goto fail;
    }
    rd_kafka_poll_set_consumer(g->rk);
    return g;
fail:
    fp_group_free(g);
    return NULL;
}

rd_kafka_t *fp_group_rk(fp_group *g)
{
    return g->rk;
}

int fp_group_subscribe(fp_group *g)
{
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, g->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(g->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        fp_log_error("subscribe failed", FP_LSTR("topic", g->topic), FP_LSTR("error", rd_kafka_err2str(e)));
        return FP_EIO;
    }
    return 0;
}

/* Frees the topic table's strings and the table. */
static void topics_free(gtopic *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].topic);
        free(t[i].previous);
        free(t[i].ns);
        free(t[i].pipeline);
    }
    free(t);
}

/* A copy of s, NULL for NULL or "". *failed is set when memory ran out. */
static char *dup_or_null(const char *s, int *failed)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = 1;
    return d;
}

int fp_group_subscribe_topics(fp_group *g, const fp_group_topic *topics, size_t n, fp_error *err)
{
    int failed = 0;
    gtopic *t = n ? calloc(n, sizeof *t) : NULL;
    if (n && !t)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        t[i] = (gtopic){.topic = strdup(topics[i].topic), .previous = dup_or_null(topics[i].previous_group, &failed),
                        .ns = dup_or_null(topics[i].ns, &failed), .pipeline = dup_or_null(topics[i].pipeline, &failed)};
        failed |= !t[i].topic;
    }
    if (failed) {
        topics_free(t, n);
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    qsort(t, n, sizeof *t, gtopic_cmp);
    int same = n == g->ntopics;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(t[i].topic, g->topics[i].topic) == 0;
    if (!same)
        forget_lag_of_removed(g, t, n);
    topics_free(g->topics, g->ntopics);
    g->topics = t;
    g->ntopics = n;
    if (same)
        return 0;
    rd_kafka_resp_err_t e;
    if (n == 0) {
        e = rd_kafka_unsubscribe(g->rk);
    } else {
        rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++)
            rd_kafka_topic_partition_list_add(subs, t[i].topic, RD_KAFKA_PARTITION_UA);
        e = rd_kafka_subscribe(g->rk, subs);
        rd_kafka_topic_partition_list_destroy(subs);
    }
    if (e) {
        fp_log_error("subscribe failed", FP_LINT("topics", (long long)n), FP_LSTR("error", rd_kafka_err2str(e)));
        topics_free(g->topics, g->ntopics);   /* the next call tries again */
        g->topics = NULL;
        g->ntopics = 0;
        return fp_error_set(err, FP_EIO, "subscribe: %s", rd_kafka_err2str(e));
    }
    fp_log_info("subscribed", FP_LINT("topics", (long long)n));
    return 0;
}

void fp_group_pause_partition(fp_group *g, int32_t partition, int pause)
{
    fp_group_pause_at(g, g->topic, partition, pause);
}

void fp_group_pause_at(fp_group *g, const char *topic, int32_t partition, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    if (pause)
        rd_kafka_pause_partitions(g->rk, l);
    else
        rd_kafka_resume_partitions(g->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

int fp_group_set_paused(fp_group *g, int paused)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (g->paused == paused || rd_kafka_assignment(g->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    if (paused)
        rd_kafka_pause_partitions(g->rk, parts);
    else
        rd_kafka_resume_partitions(g->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    g->paused = paused;
    return 1;
}

int fp_group_paused(const fp_group *g)
{
    return g->paused;
}

void fp_group_store_offset(fp_group *g, int32_t partition, int64_t offset)
{
    fp_group_store_offset_at(g, g->topic, partition, offset);
}

void fp_group_store_offset_at(fp_group *g, const char *topic, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(g->rk, l);
    if (e && e != RD_KAFKA_RESP_ERR__STATE)
        fp_log_warn("storing an offset failed", FP_LSTR("error", rd_kafka_err2str(e)), FP_LINT("partition", partition),
                    FP_LINT("offset", offset));
    rd_kafka_topic_partition_list_destroy(l);
}

void fp_group_publish_lag(fp_group *g)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(g->rk, &parts) || !parts)
        return;
    rd_kafka_position(g->rk, parts);
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo, hi;
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (rd_kafka_get_watermark_offsets(g->rk, p->topic, p->partition, &lo, &hi) || hi < 0)
            continue;
        int64_t pos = p->offset >= 0 ? p->offset : lo;
        fp_series_set(lag_series(g, p->topic, p->partition), (double)(hi > pos ? hi - pos : 0));
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

void fp_group_store_positions(fp_group *g, int (*idle)(void *opaque, int32_t partition), void *opaque)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(g->rk, &parts) || !parts)
        return;
    rd_kafka_position(g->rk, parts);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (p->offset >= 0 && idle(opaque, p->partition))
            fp_group_store_offset(g, p->partition, p->offset);
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

void fp_group_close(fp_group *g)
{
    rd_kafka_resp_err_t e = g->transactional ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_commit(g->rk, NULL, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        fp_log_warn("final commit failed", FP_LSTR("error", rd_kafka_err2str(e)));
    rd_kafka_consumer_close(g->rk);
}

void fp_group_free(fp_group *g)
{
    if (!g)
        return;
    if (g->rk)
        rd_kafka_destroy(g->rk);
    if (g->conf)
        rd_kafka_conf_destroy(g->conf);
    topics_free(g->topics, g->ntopics);
    free(g);
}
