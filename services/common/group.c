/* group.c — see group.h. */
#include "group.h"
#include "kafka.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fp_group {
    rd_kafka_t *rk;
    char topic[256];
    int paused;
    int transactional;
    fp_group_revoked_fn *revoked;
    void *opaque;
    fp_metric *m_lag;
};

/* librdkafka's rebalance callback: (incrementally) assigns, keeping new partitions
 * paused while every partition is; on revoke lets the owner drop its state, then
 * commits what was stored. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fp_group *g = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        fp_log_info("partitions assigned", FP_LINT("count", parts->cnt));
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
    snprintf(g->topic, sizeof g->topic, "%s", cfg->topic);
    g->transactional = cfg->transactional;
    g->revoked = cfg->revoked;
    g->opaque = cfg->opaque;
    g->m_lag = fp_metrics_gauge(m, cfg->lag_metric, "Messages behind the high watermark, by partition.",
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

void fp_group_pause_partition(fp_group *g, int32_t partition, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, g->topic, partition);
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
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, g->topic, partition)->offset = offset;
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
        char label[16];
        snprintf(label, sizeof label, "%d", (int)p->partition);
        fp_series_set(fp_metric_series(g->m_lag, (const char *[]){label}), (double)(hi > pos ? hi - pos : 0));
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
    free(g);
}
