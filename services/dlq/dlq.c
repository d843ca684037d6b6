/* dlq.c — see dlq.h. */
#include "dlq.h"
#include "clock.h"
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fp_dlq {
    fp_dlq_config cfg;
    rd_kafka_t *reader;
    rd_kafka_t *producer;   /* created by the first republish */
    long long produced, failed;
    char last_error[256];
};


static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    fp_dlq *d = opaque;
    if (m->err) {
        d->failed++;
        snprintf(d->last_error, sizeof d->last_error, "%s", rd_kafka_err2str(m->err));
    }
}

/* A Kafka client of the given type from the configuration; extra is NULL-terminated
 * key, value pairs set after the user's properties. */
static rd_kafka_t *new_client(fp_dlq *d, rd_kafka_type_t type, const char *const *extra, fp_error *err)
{
    char why[512];
    const char *file = d->cfg.kafka_config_file && *d->cfg.kafka_config_file ? d->cfg.kafka_config_file : NULL;
    /* librdkafka's own log lines stay off (a command prints one line on failure); a
     * --kafka-property log_level=7 brings them back. */
    static const char *const defaults[] = {"log_level", "0", NULL};
    rd_kafka_conf_t *conf = fp_kafka_conf_new(d->cfg.kafka_bootstrap, defaults, file, d->cfg.kafka_properties, err);
    for (int i = 0; conf && extra[i]; i += 2) {
        if (fp_kafka_conf_set(conf, extra[i], extra[i + 1], err)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (!conf)
        return NULL;
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set_opaque(conf, d);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fp_error_set(err, FP_EINVAL, "kafka: %s", why);
    }
    return rk;
}

fp_dlq *fp_dlq_open(const fp_dlq_config *cfg, fp_error *err)
{
    /* assign() only: the group id is required by the consumer API but never joined,
     * and nothing is committed. */
    static const char *const reader_conf[] = {"group.id", "formpipe-dlq", "enable.auto.commit", "false",
                                              "enable.auto.offset.store", "false",
                                              "enable.partition.eof", "false", NULL};
    fp_dlq *d = calloc(1, sizeof *d);
    if (!d) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    d->cfg = *cfg;
    if (!(d->reader = new_client(d, RD_KAFKA_CONSUMER, reader_conf, err))) {
        free(d);
        return NULL;
    }
    rd_kafka_poll_set_consumer(d->reader);
    return d;
}

void fp_dlq_close(fp_dlq *d)
{
    if (!d)
        return;
    if (d->producer) {
        rd_kafka_flush(d->producer, 5000);
        rd_kafka_destroy(d->producer);
    }
    if (d->reader) {
        rd_kafka_consumer_close(d->reader);
        rd_kafka_destroy(d->reader);
    }
    free(d);
}

/* The broker's error for a request, as an FP_E* code and message. */
static int kafka_failure(const fp_dlq *d, rd_kafka_resp_err_t e, const char *what, fp_error *err)
{
    int code = e == RD_KAFKA_RESP_ERR__TIMED_OUT ? FP_ETIMEOUT : FP_EIO;
    return fp_error_set(err, code, "%s: kafka at %s: %s", what, d->cfg.kafka_bootstrap, rd_kafka_err2str(e));
}

/* The topic's metadata (caller destroys). */
static int topic_metadata(fp_dlq *d, const char *topic, const struct rd_kafka_metadata **md, fp_error *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(d->reader, topic, NULL);
    if (!rkt)
        return fp_error_set(err, FP_EINVAL, "topic '%s': %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
    rd_kafka_resp_err_t e = rd_kafka_metadata(d->reader, 0, rkt, md, (int)d->cfg.timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (e)
        return kafka_failure(d, e, "reading metadata", err);
    if ((*md)->topic_cnt != 1 || (*md)->topics[0].err) {
        rd_kafka_resp_err_t te = (*md)->topic_cnt == 1 ? (*md)->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        rd_kafka_metadata_destroy(*md);
        *md = NULL;
        if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            return fp_error_set(err, FP_ENOTFOUND, "topic %s does not exist", topic);
        return kafka_failure(d, te, topic, err);
    }
    return 0;
}

int fp_dlq_topic_exists(fp_dlq *d, const char *topic, fp_error *err)
{
    const struct rd_kafka_metadata *md = NULL;
    int rc = topic_metadata(d, topic, &md, err);
    if (md)
        rd_kafka_metadata_destroy(md);
    return rc;
}

/* Adds partition p to the assignment when it holds messages to read: from its low
 * watermark, or only offset. ends[p] is where reading it stops. */
static int plan_partition(fp_dlq *d, rd_kafka_topic_partition_list_t *plan, const char *topic, int p,
                          long long offset, int64_t *ends, fp_error *err)
{
    int64_t lo, hi;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(d->reader, topic, p, &lo, &hi, (int)d->cfg.timeout_ms);
    if (e)
        return kafka_failure(d, e, "reading watermarks", err);
    if (offset >= 0 && (offset < lo || offset >= hi))
        return fp_error_set(err, FP_ENOTFOUND, "offset %lld is not in %s partition %d (it holds %lld to %lld)", offset,
                            topic, p, (long long)lo, (long long)hi - 1);
    int64_t from = offset >= 0 ? offset : lo;
    ends[p] = offset >= 0 ? offset + 1 : hi;
    if (from < ends[p])
        rd_kafka_topic_partition_list_add(plan, topic, p)->offset = from;
    return 0;
}

/* Polls the assigned partitions until each reached its end or max messages were seen. */
static int drain(fp_dlq *d, const int64_t *ends, int left_partitions, long long max, fp_dlq_visit visit,
                 void *ctx, fp_error *err)
{
    long long seen = 0, last = fp_clock_mono_ms();
    while (left_partitions > 0 && seen < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(d->reader, 100);
        if (!m) {
            if (fp_clock_mono_ms() - last > d->cfg.timeout_ms)
                return fp_error_set(err, FP_ETIMEOUT, "no message from kafka at %s within %ld ms",
                                    d->cfg.kafka_bootstrap, d->cfg.timeout_ms);
            continue;
        }
        last = fp_clock_mono_ms();
        rd_kafka_resp_err_t e = m->err;
        int rc = 0;
        if (!e && m->offset < ends[m->partition]) {
            seen++;
            rc = visit(ctx, m);
            if (m->offset + 1 >= ends[m->partition])
                left_partitions--;
        }
        rd_kafka_message_destroy(m);
        if (e)
            return kafka_failure(d, e, "reading", err);
        if (rc)
            return rc;
    }
    return 0;
}

int fp_dlq_read(fp_dlq *d, const char *topic, int partition, long long offset, long long max,
                fp_dlq_visit visit, void *ctx, fp_error *err)
{
    const struct rd_kafka_metadata *md = NULL;
    int rc = topic_metadata(d, topic, &md, err);
    if (rc)
        return rc;
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (partition >= n)
        return fp_error_set(err, FP_ENOTFOUND, "topic %s has no partition %d (it has %d)", topic, partition, n);
    int64_t *ends = calloc((size_t)n, sizeof *ends);
    rd_kafka_topic_partition_list_t *plan = rd_kafka_topic_partition_list_new(n);
    if (!ends) {
        rd_kafka_topic_partition_list_destroy(plan);
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    for (int p = partition < 0 ? 0 : partition; rc == 0 && p < (partition < 0 ? n : partition + 1); p++)
        rc = plan_partition(d, plan, topic, p, offset, ends, err);
    if (rc == 0 && plan->cnt) {
        rd_kafka_resp_err_t e = rd_kafka_assign(d->reader, plan);
        rc = e ? kafka_failure(d, e, "assigning partitions", err) : drain(d, ends, plan->cnt, max, visit, ctx, err);
        rd_kafka_assign(d->reader, NULL);
    }
    rd_kafka_topic_partition_list_destroy(plan);
    free(ends);
    return rc;
}

int fp_dlq_republish(fp_dlq *d, const char *topic, const rd_kafka_message_t *m, fp_error *err)
{
    static const char *const producer_conf[] = {"enable.idempotence", "true", "acks", "all", NULL};
    char from[400];
    if (!d->producer) {
        if (!(d->producer = new_client(d, RD_KAFKA_PRODUCER, producer_conf, err)))
            return err ? err->code : FP_EINVAL;
    }
    snprintf(from, sizeof from, "%s/%d@%lld", rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    if (!h || rd_kafka_header_add(h, "formpipe-dlq-redriven-from", -1, from, -1)) {
        if (h)
            rd_kafka_headers_destroy(h);
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(d->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, m->key_len),
                                              RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h);
        return fp_error_set(err, FP_EIO, "producing to %s: %s", topic, rd_kafka_err2str(e));
    }
    d->produced++;
    rd_kafka_poll(d->producer, 0);
    return 0;
}

int fp_dlq_flush(fp_dlq *d, fp_error *err)
{
    if (!d->producer)
        return 0;
    rd_kafka_resp_err_t e = rd_kafka_flush(d->producer, (int)d->cfg.timeout_ms);
    long long unanswered = rd_kafka_outq_len(d->producer);
    if (d->failed || unanswered)
        return fp_error_set(err, FP_EIO, "%lld of %lld re-published messages were not acknowledged: %s",
                            d->failed + unanswered, d->produced, d->failed ? d->last_error : rd_kafka_err2str(e));
    return 0;
}
