/* letters.c — see letters.h. */
#include "letters.h"
#include "clock.h"
#include "kafka.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A partition paused at a message whose dead letter could not be written. */
typedef struct blocked {
    int32_t partition;
    rd_kafka_message_t *msg;   /* the message it waits at; owned */
    fp_letter_why why;
    long long generation;
    fp_letter d;               /* the latest attempt */
    int in_flight;             /* an attempt was produced and not yet reported */
    int revoked;               /* no longer ours: dropped once no attempt is in flight */
    long backoff;
    long long next_try_ms;
    struct blocked *next;
} blocked;

struct fp_letters {
    fp_letters_config cfg;
    char topic[300];
    fp_group *group;
    rd_kafka_t *dlq;           /* NULL only while being renewed */
    blocked *blocked;
    fp_metric *m_dead, *m_blocked;
    fp_series *m_failures;
};

/* The topic a message of source's letter goes to, or NULL. */
static const char *dlq_topic_of(const fp_letters *l, const rd_kafka_message_t *m)
{
    return l->cfg.route ? l->cfg.route(l->cfg.route_opaque, rd_kafka_topic_name(m->rkt)) : l->topic;
}

/* The topic of a message (a waiting partition's). */
static const char *topic_of(const rd_kafka_message_t *m)
{
    return rd_kafka_topic_name(m->rkt);
}

/* The delivery report: fills the letter's record (the produce's opaque). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    fp_letter *d = m->_private;
    d->err = m->err;
    d->done = 1;
}

/* The producer, idempotent, acks=all; a letter not acknowledged within the timeout is
 * reported failed, so a missing topic is noticed in bounded time. */
static int create_producer(fp_letters *l, fp_error *err)
{
    char why[512], timeout[24];
    snprintf(timeout, sizeof timeout, "%ld", l->cfg.timeout_ms);
    const char *const producer_defaults[] = {"message.timeout.ms", timeout, NULL};
    rd_kafka_conf_t *pc = fp_kafka_conf_new(l->cfg.kafka_bootstrap, producer_defaults, l->cfg.kafka_config_file,
                                            l->cfg.kafka_properties, err);
    if (!pc || fp_kafka_conf_set(pc, "enable.idempotence", "true", err) || fp_kafka_conf_set(pc, "acks", "all", err)) {
        if (pc)
            rd_kafka_conf_destroy(pc);
        return err ? err->code : FP_EINVAL;
    }
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    if (!(l->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof why))) {
        rd_kafka_conf_destroy(pc);
        return fp_error_set(err, FP_EINVAL, "kafka dead-letter producer: %s", why);
    }
    return 0;
}

/* Registers the three metrics under the owner's prefix. */
static int register_metrics(fp_letters *l, fp_metrics *m, fp_error *err)
{
    char name[160];
    const char *p = l->cfg.metrics_prefix;
    snprintf(name, sizeof name, "%s_dead_letter_failures_total", p);
    fp_metric *fail = fp_metrics_counter(m, name, "Dead letters the broker did not accept (each retried; the partition waits).",
                                         NULL, err);
    snprintf(name, sizeof name, "%s_dead_lettered_total", p);
    l->m_dead = fp_metrics_counter(m, name, "Events sent to the dead-letter topic, by reason code.",
                                   (const char *[]){"reason", NULL}, err);
    snprintf(name, sizeof name, "%s_dead_letter_blocked", p);
    l->m_blocked = fp_metrics_gauge(m, name, "1 while the partition waits at a dead letter that cannot be written, else 0.",
                                    (const char *[]){"partition", NULL}, err);
    if (!fail || !l->m_dead || !l->m_blocked)
        return err ? err->code : FP_EINVAL;
    l->m_failures = fp_metric_series(fail, NULL);
    return 0;
}

fp_letters *fp_letters_new(const fp_letters_config *cfg, fp_group *group, fp_metrics *m, fp_error *err)
{
    fp_letters *l = calloc(1, sizeof *l);
    if (!l) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    l->cfg = *cfg;
    l->group = group;
    snprintf(l->topic, sizeof l->topic, "%s", cfg->topic);
    l->cfg.topic = l->topic;
    if (cfg->timeout_ms < 1) {
        fp_error_set(err, FP_EINVAL, "dead-letter timeout must be at least 1 ms");
        goto fail;
    }
    if (register_metrics(l, m, err) || create_producer(l, err))
        goto fail;
    return l;
fail:
    fp_letters_free(l);
    return NULL;
}

rd_kafka_headers_t *fp_letters_headers(const rd_kafka_message_t *m, const fp_letter_why *why, long long generation)
{
    fp_deadletter info = {.reason = why->reason, .time_ms = fp_clock_wall_ms(), .generation = generation,
                          .source_partition = m->partition, .source_offset = m->offset};
    snprintf(info.message, sizeof info.message, "%s", why->message);
    snprintf(info.source_topic, sizeof info.source_topic, "%s", rd_kafka_topic_name(m->rkt));
    return fp_deadletter_headers(&info);
}

void fp_letters_produce(fp_letters *l, const rd_kafka_message_t *m, const fp_letter_why *why, long long generation,
                        fp_letter *d)
{
    *d = (fp_letter){0};
    const char *to = dlq_topic_of(l, m);
    rd_kafka_headers_t *h = to ? fp_letters_headers(m, why, generation) : NULL;
    rd_kafka_resp_err_t e = !to ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                          : !h ? RD_KAFKA_RESP_ERR__FAIL
                          : !l->dlq ? RD_KAFKA_RESP_ERR__FATAL
                          : rd_kafka_producev(l->dlq, RD_KAFKA_V_TOPIC(to), RD_KAFKA_V_KEY(m->key, m->key_len),
                                              RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                              RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (e) {   /* not queued: no delivery report will come */
        if (h)
            rd_kafka_headers_destroy(h);
        *d = (fp_letter){.done = 1, .err = e};
    }
}

void fp_letters_poll(fp_letters *l, int timeout_ms)
{
    if (l->dlq)
        rd_kafka_poll(l->dlq, timeout_ms);
}

void fp_letters_wait(fp_letters *l, const fp_letter *d)
{
    while (!d->done && l->dlq)
        rd_kafka_poll(l->dlq, 100);
}

void fp_letters_note(fp_letters *l, const rd_kafka_message_t *m, const fp_letter_why *why)
{
    const char *code = fp_deadletter_reason_name(why->reason);
    fp_series_inc(fp_metric_series(l->m_dead, (const char *[]){code}));
    const char *to = dlq_topic_of(l, m);
    fp_log_warn("event dead-lettered", FP_LSTR("topic", to ? to : ""), FP_LSTR("source_topic", topic_of(m)),
                FP_LSTR("reason", code), FP_LSTR("message", why->message), FP_LINT("partition", m->partition),
                FP_LINT("offset", m->offset));
}

/* The waiting entry of a partition we own (of topic; NULL: of any), or NULL. */
static blocked *find_blocked(const fp_letters *l, const char *topic, int32_t partition)
{
    for (blocked *e = l->blocked; e; e = e->next)
        if (e->partition == partition && !e->revoked && (!topic || strcmp(topic_of(e->msg), topic) == 0))
            return e;
    return NULL;
}

/* Sets the blocked gauge of a partition. */
static void set_blocked_gauge(fp_letters *l, int32_t partition, int value)
{
    char label[16];
    snprintf(label, sizeof label, "%d", (int)partition);
    fp_series_set(fp_metric_series(l->m_blocked, (const char *[]){label}), value);
}

int fp_letters_block(fp_letters *l, rd_kafka_message_t *m, const fp_letter_why *why, long long generation,
                     rd_kafka_resp_err_t e)
{
    fp_series_inc(l->m_failures);
    blocked *w = calloc(1, sizeof *w);
    if (!w)
        return FP_ENOMEM;
    *w = (blocked){.partition = m->partition, .msg = m, .why = *why, .generation = generation,
                   .backoff = l->cfg.backoff_initial_ms, .next_try_ms = fp_clock_mono_ms() + l->cfg.backoff_initial_ms,
                   .next = l->blocked};
    l->blocked = w;
    fp_group_pause_at(l->group, topic_of(m), m->partition, 1);
    set_blocked_gauge(l, m->partition, 1);
    const char *to = dlq_topic_of(l, m);
    fp_log_warn("dead letter not written; the partition waits at it and retries in the background",
                FP_LSTR("topic", to ? to : ""), FP_LSTR("source_topic", topic_of(m)), FP_LSTR("error", rd_kafka_err2str(e)),
                FP_LINT("partition", m->partition), FP_LINT("offset", m->offset),
                FP_LSTR("reason", fp_deadletter_reason_name(why->reason)));
    return 0;
}

int fp_letters_waiting(const fp_letters *l, int32_t partition)
{
    return l->blocked && find_blocked(l, NULL, partition);
}

int fp_letters_waiting_at(const fp_letters *l, const char *topic, int32_t partition)
{
    return l->blocked && find_blocked(l, topic, partition);
}

int fp_letters_any_waiting(const fp_letters *l)
{
    return l->blocked != NULL;
}

void fp_letters_repause(fp_letters *l)
{
    for (blocked *e = l->blocked; e; e = e->next)
        if (!e->revoked)
            fp_group_pause_at(l->group, topic_of(e->msg), e->partition, 1);
}

void fp_letters_forget(fp_letters *l, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        blocked *e = find_blocked(l, parts->elems[i].topic, parts->elems[i].partition);
        if (e) {
            e->revoked = 1;
            set_blocked_gauge(l, e->partition, 0);
            fp_log_info("partition revoked while waiting at a dead letter", FP_LINT("partition", e->partition),
                        FP_LINT("offset", e->msg->offset));
        }
    }
}

/* The retry delay after backoff: doubled, at most backoff_max_ms. */
static long next_backoff(const fp_letters *l, long backoff)
{
    return backoff * 2 > l->cfg.backoff_max_ms ? l->cfg.backoff_max_ms : backoff * 2;
}

/* Moves a partition past its letter, written at last: the owner's part, then resume
 * (unless every partition is paused). */
static void unblock(fp_letters *l, blocked *w, fp_letters_written_fn *written, void *opaque)
{
    if (written)
        written(opaque, w->msg);
    if (!fp_group_paused(l->group))
        fp_group_pause_at(l->group, topic_of(w->msg), w->partition, 0);
    set_blocked_gauge(l, w->partition, 0);
    fp_letters_note(l, w->msg, &w->why);
    fp_log_warn("dead letter written; partition resumed", FP_LINT("partition", w->partition),
                FP_LINT("offset", w->msg->offset));
}

/* Replaces a producer that hit a fatal error (an idempotent producer can, e.g. when
 * the topic was deleted and re-created): pending letters are reported failed first. */
static void renew_producer(fp_letters *l)
{
    char why[256];
    fp_error err = {0};
    if (l->dlq) {
        rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(l->dlq, why, sizeof why);
        if (!fatal)
            return;
        fp_log_warn("dead-letter producer failed for good; replacing it", FP_LSTR("error", why));
        rd_kafka_purge(l->dlq, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(l->dlq, 5000);
        rd_kafka_destroy(l->dlq);
        l->dlq = NULL;
    }
    if (create_producer(l, &err))
        fp_log_error("cannot create the dead-letter producer; retrying", FP_LSTR("error", err.msg));
}

void fp_letters_tick(fp_letters *l, fp_letters_written_fn *written, void *opaque)
{
    if (l->dlq)
        rd_kafka_poll(l->dlq, 0);
    for (blocked **p = &l->blocked; *p;) {
        blocked *w = *p;
        if (w->in_flight && !w->d.done) {
            p = &w->next;
            continue;
        }
        if (w->in_flight) {
            w->in_flight = 0;
            if (!w->d.err && !w->revoked)
                unblock(l, w, written, opaque);
            if (w->d.err) {
                fp_series_inc(l->m_failures);
                fp_log_debug("dead letter still not written", FP_LINT("partition", w->partition),
                             FP_LSTR("error", rd_kafka_err2str(w->d.err)), FP_LINT("backoff_ms", w->backoff));
                w->next_try_ms = fp_clock_mono_ms() + w->backoff;
                w->backoff = next_backoff(l, w->backoff);
            }
        }
        if (w->revoked || (!w->d.err && w->d.done)) {
            *p = w->next;
            rd_kafka_message_destroy(w->msg);
            free(w);
            continue;
        }
        if (fp_clock_mono_ms() >= w->next_try_ms) {
            renew_producer(l);
            fp_letters_produce(l, w->msg, &w->why, w->generation, &w->d);
            w->in_flight = 1;
        }
        p = &w->next;
    }
}

void fp_letters_free(fp_letters *l)
{
    if (!l)
        return;
    /* The producer first: its last delivery reports write into the owners' records. */
    if (l->dlq) {
        rd_kafka_flush(l->dlq, 5000);
        rd_kafka_purge(l->dlq, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(l->dlq, 1000);
        rd_kafka_destroy(l->dlq);
    }
    while (l->blocked) {
        blocked *w = l->blocked;
        l->blocked = w->next;
        rd_kafka_message_destroy(w->msg);
        free(w);
    }
    free(l);
}
