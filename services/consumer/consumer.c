/* consumer.c — see consumer.h. One thread: poll a batch, turn events into rows (or
 * dead letters), insert the rows with one Lua script, WAIT for the replicas, and only
 * then store the batch's offsets. Every failure before the offsets are stored leads to
 * redelivery, which the idempotent insert makes harmless. */
#include "consumer.h"
#include "buffer.h"
#include "event.h"
#include "form.h"
#include "kafka.h"
#include "log.h"
#include "names.h"
#include "redis.h"
#include "shutdown.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DLQ_REASON_HEADER "formpipe-dlq-reason"

/* One batch: the Kafka messages and the rows built from them. Row texts live one
 * after another (each NUL-terminated) in text, the batch's single allocation for them. */
typedef struct batch {
    rd_kafka_message_t **msgs;
    size_t n;
    fp_event *events;
    fp_buf text;
    size_t *row_at;      /* offset of each row in text */
    fp_buffer_row *rows;
    size_t nrows;
    int lane;            /* the Redis connection it uses */
    int in_flight;       /* its insert was sent and not yet finished */
    double sent_at;
} batch;

struct fp_consumer {
    fp_consumer_config cfg;
    fp_form *form;
    char topic[256];
    char group[256];
    char dlq_topic[300];
    rd_kafka_t *rk;          /* the group consumer */
    rd_kafka_t *dlq;         /* producer for dead letters */
    /* One lane (a Redis connection and the buffer on it) per batch in flight: WAIT
     * blocks its connection until a replica confirmed, so a second batch on the same
     * connection would only run after that. */
    fp_redis *redis[FP_CONSUMER_MAX_IN_FLIGHT];
    fp_buffer *buffer[FP_CONSUMER_MAX_IN_FLIGHT];
    int lanes;
    unsigned long queued_total;   /* batches ever queued: picks each one's lane */
    atomic_int redis_ok;
    atomic_int running;
    int paused;
    long long next_lag_ms;
    long long next_trim_ms;
    batch *b;                /* a ring: the queued batches (oldest at head), then the one being collected */
    int nb;                  /* batches_in_flight + 1 */
    int head, queued;        /* queued: sent (or waiting for their turn), not yet complete */
    /* metrics */
    fp_series *m_consumed, *m_inserted, *m_duplicates, *m_redis_errors, *m_batches;
    fp_series *m_redis_seconds;
    fp_metric *m_dead, *m_lag;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static double now_s(void) { return now_ms() / 1000.0; }

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

#define TRIM_INTERVAL_MS 60000

/* Forgets flushed ids older than the dedup window (a redelivery older than that is
 * impossible: Kafka offsets were committed long before), on a lane with nothing in
 * flight. Failures are retried later. */
static void trim_dedup_window(fp_consumer *c, int lane)
{
    fp_error err = {0};
    long long removed = 0;
    if (fp_buffer_trim_flushed(c->buffer[lane], wall_ms() - c->cfg.dedup_window_ms, &removed, &err))
        fp_log_warn("trimming the dedup window failed", FP_LSTR("error", err.msg));
    else if (removed)
        fp_log_info("dedup window trimmed", FP_LINT("removed", removed));
}

static int register_metrics(fp_consumer *c, fp_metrics *m, fp_error *err)
{
    fp_metric *consumed = fp_metrics_counter(m, "formpipe_consumer_events_total", "Events read from Kafka.", NULL, err);
    fp_metric *inserted = fp_metrics_counter(m, "formpipe_consumer_inserted_total", "Rows newly added to the Redis buffer.", NULL, err);
    fp_metric *dups = fp_metrics_counter(m, "formpipe_consumer_duplicates_total", "Events skipped because their id was already buffered or flushed.", NULL, err);
    fp_metric *rerr = fp_metrics_counter(m, "formpipe_consumer_redis_errors_total", "Failed Redis operations (each retried).", NULL, err);
    fp_metric *batches = fp_metrics_counter(m, "formpipe_consumer_batches_total", "Batches stored in Redis and confirmed by WAIT.", NULL, err);
    fp_metric *rsec = fp_metrics_histogram(m, "formpipe_consumer_redis_seconds", "Time to insert a batch and WAIT for replicas.",
                                           NULL, fp_metrics_latency_buckets, fp_metrics_latency_nbuckets, err);
    c->m_dead = fp_metrics_counter(m, "formpipe_consumer_dead_lettered_total", "Events sent to the dead-letter topic, by reason.",
                                   (const char *[]){"reason", NULL}, err);
    c->m_lag = fp_metrics_gauge(m, "formpipe_consumer_lag", "Messages behind the high watermark, by partition.",
                                (const char *[]){"partition", NULL}, err);
    if (!consumed || !inserted || !dups || !rerr || !batches || !rsec || !c->m_dead || !c->m_lag)
        return err ? err->code : FP_EINVAL;
    c->m_consumed = fp_metric_series(consumed, NULL);
    c->m_inserted = fp_metric_series(inserted, NULL);
    c->m_duplicates = fp_metric_series(dups, NULL);
    c->m_redis_errors = fp_metric_series(rerr, NULL);
    c->m_batches = fp_metric_series(batches, NULL);
    c->m_redis_seconds = fp_metric_series(rsec, NULL);
    return 0;
}

/* Pauses (or resumes) every partition assigned to us. */
static void set_paused(fp_consumer *c, int paused)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (c->paused == paused || rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (paused)
        rd_kafka_pause_partitions(c->rk, parts);
    else
        rd_kafka_resume_partitions(c->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    c->paused = paused;
    fp_log_info(paused ? "partitions paused until Redis answers" : "partitions resumed");
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fp_consumer *c = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        fp_log_info("partitions assigned", FP_LINT("count", parts->cnt));
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
        if (c->paused)   /* while Redis is away nothing new may be fetched either */
            rd_kafka_pause_partitions(rk, parts);
        return;
    }
    /* Revoked (or lost): commit what has been stored; the batch in hand was not, so
     * the next owner reads it again and the idempotent insert drops the repeats. */
    fp_log_info("partitions revoked", FP_LINT("count", parts->cnt));
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !rd_kafka_assignment_lost(rk))
        rd_kafka_commit(rk, NULL, 0);
    if (cooperative)
        rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
    else
        rd_kafka_assign(rk, NULL);
}

static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    int *status = m->_private;
    *status = m->err ? -1 : 1;
}

static int batch_init(batch *b, size_t cap)
{
    b->msgs = calloc(cap, sizeof *b->msgs);
    b->events = calloc(cap, sizeof *b->events);
    b->row_at = calloc(cap, sizeof *b->row_at);
    b->rows = calloc(cap, sizeof *b->rows);
    fp_buf_init(&b->text, cap * (FP_BUFFER_MAX_ROW + 1));
    return b->msgs && b->events && b->row_at && b->rows ? 0 : FP_ENOMEM;
}

/* Drops the batch's contents (messages, events, rows), keeping its memory. */
static void batch_release(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        fp_event_clear(&b->events[i]);
        rd_kafka_message_destroy(b->msgs[i]);
    }
    fp_buf_reset(&b->text);
    b->n = b->nrows = 0;
    b->in_flight = 0;
}

static void batch_free(batch *b)
{
    if (b->msgs)
        batch_release(b);
    free(b->msgs);
    free(b->events);
    free(b->row_at);
    free(b->rows);
    fp_buf_free(&b->text);
}

fp_consumer *fp_consumer_new(const fp_consumer_config *cfg, fp_metrics *metrics, fp_error *err)
{
    char why[512];
    fp_consumer *c = calloc(1, sizeof *c);
    rd_kafka_conf_t *kc = NULL, *pc = NULL;
    if (!c) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    if (!(c->form = fp_form_load(cfg->form_path, err)))
        goto fail;
    if (cfg->topic && *cfg->topic)
        snprintf(c->topic, sizeof c->topic, "%s", cfg->topic);
    else
        fp_form_topic(c->form, c->topic, sizeof c->topic);
    if (cfg->group && *cfg->group)
        snprintf(c->group, sizeof c->group, "%s", cfg->group);
    else
        fp_names_group(c->form->ns, c->form->name, c->group, sizeof c->group);
    if (cfg->dlq_topic && *cfg->dlq_topic)
        snprintf(c->dlq_topic, sizeof c->dlq_topic, "%s", cfg->dlq_topic);
    else
        fp_names_dlq_topic(c->topic, c->dlq_topic, sizeof c->dlq_topic);
    if (cfg->batches_in_flight < 1 || cfg->batches_in_flight > FP_CONSUMER_MAX_IN_FLIGHT) {
        fp_error_set(err, FP_EINVAL, "batches in flight must be 1 to %d", FP_CONSUMER_MAX_IN_FLIGHT);
        goto fail;
    }
    c->lanes = cfg->batches_in_flight;
    c->nb = c->lanes + 1;
    if (!(c->b = calloc((size_t)c->nb, sizeof *c->b))) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < c->nb; i++) {
        if (batch_init(&c->b[i], (size_t)cfg->batch_max)) {
            fp_error_set(err, FP_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (register_metrics(c, metrics, err))
        goto fail;

    /* Prefetch at most 8 MiB / 20,000 messages per partition: memory stays bounded.
     * Fetch up to 4 MiB per partition per request: with librdkafka's 1 MiB a backlog
     * drained at ~100k events/s whatever the Redis side did, 4 MiB drains ~145k
     * (docs/consumer.md). Each can be overridden with --kafka-property. */
    static const char *const consumer_defaults[] = {"queued.max.messages.kbytes", "8192",
                                                    "queued.min.messages", "20000",
                                                    "max.partition.fetch.bytes", "4194304", NULL};
    if (!(kc = fp_kafka_conf_new(cfg->kafka_bootstrap, consumer_defaults, cfg->kafka_config_file,
                                 cfg->kafka_properties, err)) ||
        fp_kafka_conf_set(kc, "group.id", c->group, err) ||
        fp_kafka_conf_set(kc, "partition.assignment.strategy", "cooperative-sticky", err) ||
        fp_kafka_conf_set(kc, "enable.auto.offset.store", "false", err) ||
        fp_kafka_conf_set(kc, "enable.auto.commit", "true", err) ||
        fp_kafka_conf_set(kc, "auto.offset.reset", "earliest", err))
        goto fail;
    rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
    rd_kafka_conf_set_opaque(kc, c);
    if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof why))) {
        fp_error_set(err, FP_EINVAL, "kafka consumer: %s", why);
        goto fail;
    }
    kc = NULL;   /* owned by rk now */
    rd_kafka_poll_set_consumer(c->rk);

    if (!(pc = fp_kafka_conf_new(cfg->kafka_bootstrap, NULL, cfg->kafka_config_file, cfg->kafka_properties, err)) ||
        fp_kafka_conf_set(pc, "enable.idempotence", "true", err) ||
        fp_kafka_conf_set(pc, "acks", "all", err))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(pc, on_dlq_delivery);
    if (!(c->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof why))) {
        fp_error_set(err, FP_EINVAL, "kafka dead-letter producer: %s", why);
        goto fail;
    }
    pc = NULL;

    fp_redis_config rc = {.sentinels = cfg->redis_sentinels, .master_name = cfg->redis_master,
                          .password = cfg->redis_password,
                          .connect_timeout_ms = cfg->redis_connect_timeout_ms,
                          .command_timeout_ms = cfg->redis_command_timeout_ms};
    for (int i = 0; i < c->lanes; i++) {
        if (!(c->redis[i] = fp_redis_new(&rc, err)) ||
            !(c->buffer[i] = fp_buffer_new(c->redis[i], c->form->ns, c->form->name, err)))
            goto fail;
    }
    return c;
fail:
    if (kc)
        rd_kafka_conf_destroy(kc);
    if (pc)
        rd_kafka_conf_destroy(pc);
    fp_consumer_free(c);
    return NULL;
}

/* Classifies a dead letter for the metric label (the header carries the full text). */
static const char *reason_class(const char *why)
{
    if (strstr(why, "not a JSON object") || strstr(why, "not valid JSON"))
        return "not_json";
    if (strstr(why, "unknown field") || (strncmp(why, "field '", 7) == 0 && strstr(why, "appears twice")))
        return "unknown_field";
    if (strstr(why, "is not a string, number or boolean"))
        return "bad_value";
    if (strstr(why, "source"))
        return "wrong_source";
    return "not_cloudevent";
}

/* Sends one message to the dead-letter topic and waits for the broker's ack, retrying
 * with backoff: an event is never dropped, only moved. */
static int dead_letter(fp_consumer *c, const rd_kafka_message_t *m, const char *why)
{
    long backoff = c->cfg.backoff_initial_ms;
    char partition[16], offset[24];
    snprintf(partition, sizeof partition, "%d", (int)m->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)m->offset);
    while (!fp_shutdown_requested()) {
        int status = 0;
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        rd_kafka_header_add(h, DLQ_REASON_HEADER, -1, why, -1);
        rd_kafka_header_add(h, "formpipe-source-topic", -1, rd_kafka_topic_name(m->rkt), -1);
        rd_kafka_header_add(h, "formpipe-source-partition", -1, partition, -1);
        rd_kafka_header_add(h, "formpipe-source-offset", -1, offset, -1);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            c->dlq, RD_KAFKA_V_TOPIC(c->dlq_topic), RD_KAFKA_V_KEY(m->key, m->key_len),
            RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(&status), RD_KAFKA_V_END);
        if (e) {
            rd_kafka_headers_destroy(h);
        } else {
            rd_kafka_flush(c->dlq, 30000);
            if (status == 1) {
                fp_series_inc(fp_metric_series(c->m_dead, (const char *[]){reason_class(why)}));
                fp_log_warn("event dead-lettered", FP_LSTR("topic", c->dlq_topic), FP_LSTR("reason", why),
                            FP_LINT("partition", m->partition), FP_LINT("offset", m->offset));
                return 0;
            }
        }
        fp_log_error("dead-letter produce failed; retrying", FP_LSTR("topic", c->dlq_topic),
                     FP_LSTR("error", rd_kafka_err2str(e)));
        fp_shutdown_sleep(backoff);
        backoff = backoff * 2 > c->cfg.backoff_max_ms ? c->cfg.backoff_max_ms : backoff * 2;
    }
    return FP_ETIMEOUT;
}

/* Why the event's fields do not all match a column: one is no column, or is there twice. */
static void name_stray_field(const fp_consumer *c, const fp_event *ev, char *why, size_t whysz)
{
    for (size_t i = 0; i < ev->nfields; i++) {
        const char *f = ev->fields[i].name;
        if (fp_form_column(c->form, f) < 0) {
            snprintf(why, whysz, "unknown field '%.200s' for form generation %lld", f, c->form->generation);
            return;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ev->fields[j].name, f) == 0) {
                snprintf(why, whysz, "field '%.200s' appears twice", f);
                return;
            }
        }
    }
    snprintf(why, whysz, "data does not match form generation %lld", c->form->generation);
}

/* Turns one event into a row appended to text (NUL-terminated). Returns 0, or -1
 * with *why set for a dead letter (text unchanged). */
static int event_to_row(fp_consumer *c, const rd_kafka_message_t *m, fp_event *ev, fp_buf *text,
                        char *why, size_t whysz)
{
    fp_error err = {0};
    if (fp_event_parse(m->payload, m->len, ev, &err)) {
        snprintf(why, whysz, "%s", err.msg);
        return -1;
    }
    if (!fp_event_source_is(ev, c->form->ns, c->form->name)) {
        snprintf(why, whysz, "source %.200s is not this pipeline (/forms/%.100s/%.100s)", ev->source,
                 c->form->ns, c->form->name);
        return -1;
    }
    if (ev->generation > c->form->generation) {
        /* The form changed under us (the mounted ConfigMap is updated in place). */
        fp_form *newer = fp_form_load(c->cfg.form_path, &err);
        if (newer && newer->generation >= ev->generation) {
            fp_log_info("form definition reloaded", FP_LINT("generation", newer->generation));
            fp_form_free(c->form);
            c->form = newer;
        } else {
            fp_form_free(newer);
        }
    }
    size_t matched = 0, start = text->len;
    if (fp_buffer_row_append(text, ev, (const char *const *)c->form->columns, c->form->ncolumns, &matched, &err) ||
        fp_buf_add(text, "", 1)) {   /* the row's terminating NUL */
        snprintf(why, whysz, "%s", err.code ? err.msg : "out of memory building a row");
        text->len = start;
        if (text->data)
            text->data[start] = '\0';
        return -1;
    }
    if (matched < ev->nfields) {
        name_stray_field(c, ev, why, whysz);   /* the slow path, for dead letters */
        text->len = start;
        text->data[start] = '\0';
        return -1;
    }
    return 0;
}

/* Records a batch that Redis stored and the replicas confirmed. */
static void note_stored(fp_consumer *c, int lane, size_t n, long long inserted, double seconds)
{
    fp_series_observe(c->m_redis_seconds, seconds);
    fp_series_add(c->m_inserted, (double)inserted);
    fp_series_add(c->m_duplicates, (double)((long long)n - inserted));
    if (!atomic_exchange(&c->redis_ok, 1))
        fp_log_info("redis available", FP_LSTR("master", fp_redis_master_addr(c->redis[lane])));
    set_paused(c, 0);
}

/* Inserts rows and WAITs until both succeed, pausing the partitions while Redis is
 * unavailable. Returns 0, or FP_ETIMEOUT when shutdown cut the retries short. */
static int store_rows(fp_consumer *c, int lane, const fp_buffer_row *rows, size_t n)
{
    fp_buffer *buffer = c->buffer[lane];
    long backoff = c->cfg.backoff_initial_ms;
    long long deadline = 0;
    for (;;) {
        fp_error err = {0};
        long long inserted = 0, acked = 0;
        double t0 = now_s();
        int rc = fp_buffer_insert(buffer, rows, n, &inserted, &err);
        if (!rc && c->cfg.min_replicas_ack > 0)
            rc = fp_buffer_wait(buffer, c->cfg.min_replicas_ack, c->cfg.wait_timeout_ms, &acked, &err);
        if (!rc) {
            note_stored(c, lane, n, inserted, now_s() - t0);
            return 0;
        }
        fp_series_inc(c->m_redis_errors);
        atomic_store(&c->redis_ok, 0);
        set_paused(c, 1);
        fp_log_warn("redis write failed; retrying", FP_LSTR("error", err.msg), FP_LINT("backoff_ms", backoff));
        if (fp_shutdown_requested()) {
            if (!deadline)
                deadline = now_ms() + c->cfg.shutdown_grace_ms;
            if (now_ms() >= deadline)
                return FP_ETIMEOUT;
        }
        /* Serve the group (rebalances, heartbeats) while we wait; partitions are paused. */
        long long until = now_ms() + backoff;
        while (now_ms() < until) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
            if (m) {
                /* Paused partitions deliver nothing, but a message fetched before the
                 * pause may still surface: rewind to it so it is read again later and
                 * no offset past it can be stored before it is in Redis. */
                if (!m->err)
                    rd_kafka_seek(m->rkt, m->partition, m->offset, 0);
                rd_kafka_message_destroy(m);
            }
        }
        backoff = backoff * 2 > c->cfg.backoff_max_ms ? c->cfg.backoff_max_ms : backoff * 2;
    }
}

/* Stores offset+1 of every message of the batch (done only once it is in Redis). */
static void store_offsets(fp_consumer *c, const batch *b)
{
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)b->n);
    for (size_t i = 0; i < b->n; i++) {
        const rd_kafka_message_t *m = b->msgs[i];
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(offs, rd_kafka_topic_name(m->rkt), m->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(m->rkt), m->partition);
        if (m->offset + 1 > p->offset)
            p->offset = m->offset + 1;
    }
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, offs);
    if (e && e != RD_KAFKA_RESP_ERR__STATE)   /* __STATE: partition revoked meanwhile */
        fp_log_warn("storing offsets failed", FP_LSTR("error", rd_kafka_err2str(e)));
    rd_kafka_topic_partition_list_destroy(offs);
}

/* Turns the batch's events into rows; the ones that can't be rows are dead-lettered
 * now (their offsets are stored with the batch). Each parsed event is freed as soon as
 * its row is built: the allocator then reuses the same few blocks for every event. */
static int prepare_batch(fp_consumer *c, batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        char why[512];
        const rd_kafka_message_t *m = b->msgs[i];
        size_t at = b->text.len;
        int bad = event_to_row(c, m, &b->events[i], &b->text, why, sizeof why);
        fp_event_clear(&b->events[i]);   /* id and time_ms stay in the struct */
        if (bad) {
            int rc = dead_letter(c, m, why);
            if (rc)
                return rc;
            continue;
        }
        b->row_at[b->nrows] = at;
        b->rows[b->nrows] = (fp_buffer_row){b->events[i].id, b->events[i].time_ms, NULL};
        b->nrows++;
    }
    for (size_t i = 0; i < b->nrows; i++)   /* text has stopped moving */
        b->rows[i].row = b->text.data + b->row_at[i];
    return 0;
}

/* Sends the batch's insert (and WAIT) on its lane without waiting for the answer. If
 * that fails the batch stays not in flight and complete_batch stores it synchronously. */
static void start_batch(fp_consumer *c, batch *b)
{
    fp_error err = {0};
    b->sent_at = now_s();
    if (fp_buffer_insert_start(c->buffer[b->lane], b->rows, b->nrows, c->cfg.min_replicas_ack, c->cfg.wait_timeout_ms, &err))
        fp_log_warn("redis send failed; the batch will be retried", FP_LSTR("error", err.msg));
    else
        b->in_flight = 1;
}

/* Makes sure the batch is in Redis and confirmed (finishing the pipelined insert, or
 * retrying synchronously on its lane), then stores its offsets and empties it. */
static int complete_batch(fp_consumer *c, batch *b)
{
    int rc = 0;
    if (b->in_flight) {
        fp_error err = {0};
        long long inserted, acked;
        if (fp_buffer_insert_finish(c->buffer[b->lane], &inserted, &acked, &err) == 0) {
            note_stored(c, b->lane, b->nrows, inserted, now_s() - b->sent_at);
        } else {
            fp_series_inc(c->m_redis_errors);
            fp_log_warn("redis batch failed; retrying", FP_LSTR("error", err.msg));
            rc = store_rows(c, b->lane, b->rows, b->nrows);
        }
    } else if (b->nrows) {
        rc = store_rows(c, b->lane, b->rows, b->nrows);
    }
    if (rc == 0) {
        store_offsets(c, b);
        fp_series_inc(c->m_batches);
    }
    batch_release(b);
    return rc;
}

/* Completes queued batches, oldest first (so offsets are stored in order), until at
 * most keep remain. */
static int complete_queued(fp_consumer *c, int keep)
{
    while (c->queued > keep) {
        int rc = complete_batch(c, &c->b[c->head]);
        c->head = (c->head + 1) % c->nb;
        c->queued--;
        if (rc)
            return rc;
    }
    return 0;
}

/* Polls up to batch_max messages, for at most batch_wait after the first one. */
static void collect(fp_consumer *c, batch *b)
{
    long long first = 0;
    while ((int)b->n < c->cfg.batch_max) {
        long long left = first ? first + c->cfg.batch_wait_ms - now_ms() : 100;
        if (left <= 0 || fp_shutdown_requested())
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, (int)left);
        if (!m) {
            if (!first)
                break;
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fp_log_warn("consumer error", FP_LSTR("error", rd_kafka_message_errstr(m)));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!first)
            first = now_ms();
        b->msgs[b->n++] = m;
        fp_series_inc(c->m_consumed);
    }
}

/* Publishes lag per assigned partition from the cached high watermarks. */
static void update_lag(fp_consumer *c)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(c->rk, &parts) || !parts)
        return;
    rd_kafka_position(c->rk, parts);
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo, hi;
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) || hi < 0)
            continue;
        int64_t pos = p->offset >= 0 ? p->offset : lo;
        char label[16];
        snprintf(label, sizeof label, "%d", (int)p->partition);
        fp_series_set(fp_metric_series(c->m_lag, (const char *[]){label}), (double)(hi > pos ? hi - pos : 0));
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

int fp_consumer_run(fp_consumer *c)
{
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, c->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        fp_log_error("subscribe failed", FP_LSTR("topic", c->topic), FP_LSTR("error", rd_kafka_err2str(e)));
        return FP_EIO;
    }
    fp_log_info("consuming", FP_LSTR("topic", c->topic), FP_LSTR("group", c->group),
                FP_LSTR("dead_letter_topic", c->dlq_topic), FP_LINT("form_generation", c->form->generation));
    /* Find the master before declaring ready. */
    fp_error err = {0};
    if (fp_redis_connect(c->redis[0], &err) == 0)
        atomic_store(&c->redis_ok, 1);
    else
        fp_log_warn("redis not reachable yet", FP_LSTR("error", err.msg));
    atomic_store(&c->running, 1);

    /* While Redis stores up to batches_in_flight batches (one per lane), the next is
     * polled and parsed. A batch's offsets are stored only after every earlier one's:
     * batches complete in order. A lane is reused only once its previous batch is
     * complete (at most `lanes` are queued, lanes go round). */
    int rc = 0;
    while (!fp_shutdown_requested() && rc == 0) {
        batch *cur = &c->b[(c->head + c->queued) % c->nb];
        collect(c, cur);
        if (!cur->n) {   /* nothing new: finish what was sent */
            rc = complete_queued(c, 0);
        } else if (!(rc = prepare_batch(c, cur)) && !(rc = complete_queued(c, c->lanes - 1))) {
            cur->lane = (int)(c->queued_total++ % (unsigned long)c->lanes);
            if (now_ms() >= c->next_trim_ms && atomic_load(&c->redis_ok)) {
                trim_dedup_window(c, cur->lane);   /* the lane is free until cur starts */
                c->next_trim_ms = now_ms() + TRIM_INTERVAL_MS;
            }
            c->queued++;
            if (cur->nrows)
                start_batch(c, cur);   /* when sending fails, cur is stored synchronously in its turn */
        }
        if (now_ms() >= c->next_lag_ms) {
            update_lag(c);
            c->next_lag_ms = now_ms() + c->cfg.lag_interval_ms;
        }
    }
    if (rc == 0)
        complete_queued(c, 0);
    atomic_store(&c->running, 0);
    e = rd_kafka_commit(c->rk, NULL, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        fp_log_warn("final commit failed", FP_LSTR("error", rd_kafka_err2str(e)));
    rd_kafka_consumer_close(c->rk);
    fp_log_info("consumer stopped", FP_LINT("signal", fp_shutdown_signal()));
    return 0;
}

int fp_consumer_ready(void *consumer, char *why, size_t whysz)
{
    fp_consumer *c = consumer;
    if (!atomic_load(&c->running)) {
        snprintf(why, whysz, "consumer loop not running");
        return 0;
    }
    if (!atomic_load(&c->redis_ok)) {
        snprintf(why, whysz, "redis master not reachable");
        return 0;
    }
    return 1;
}

void fp_consumer_free(fp_consumer *c)
{
    if (!c)
        return;
    for (int i = 0; c->b && i < c->nb; i++)
        batch_free(&c->b[i]);
    free(c->b);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    if (c->dlq) {
        rd_kafka_flush(c->dlq, 5000);
        rd_kafka_destroy(c->dlq);
    }
    for (int i = 0; i < c->lanes; i++) {
        fp_buffer_free(c->buffer[i]);
        fp_redis_free(c->redis[i]);
    }
    fp_form_free(c->form);
    free(c);
}
