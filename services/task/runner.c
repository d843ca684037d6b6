/* runner.c — see runner.h. One thread: read messages into events (bounded: every
 * partition pauses while too many are held), start the ones whose key is free while
 * attempts are below the concurrency, let the kind make progress, turn its reports
 * into done / backoff / dead letter, and store the offset each finished event lets
 * move. The kind only runs inside kind->poll, so reports never race the reading. */
#include "runner.h"
#include "backoff.h"
#include "clock.h"
#include "event.h"
#include "filter.h"
#include "group.h"
#include "keyorder.h"
#include "letters.h"
#include "log.h"
#include "offsets.h"
#include "shutdown.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum ev_state {
    EV_WAITING,   /* an earlier event of its key has not finished */
    EV_READY,     /* may start */
    EV_RUNNING,   /* an attempt is with the kind */
    EV_BACKOFF,   /* ready again at due_ms */
    EV_LETTER,    /* its dead letter was produced; waiting for the broker */
    EV_BLOCKED,   /* its dead letter failed: fp_letters retries it, the partition waits */
} ev_state;

/* One event read and not finished. ev comes first: a report's event is a tev. */
typedef struct tev {
    fp_task_event ev;
    rd_kafka_message_t *msg;   /* owned; NULL once fp_letters took it */
    char *value;               /* the payload, NUL-terminated */
    char id[FP_EVENT_MAX_ID + 1], source[256], time[40];
    long long time_ms;
    ev_state state;
    int revoked;               /* its partition was revoked while it ran: freed when reported */
    int ordered;               /* queued in the key order (a CloudEvent) */
    long long due_ms;
    fp_letter letter;
    fp_letter_why why;
    struct tev *prev, *next;   /* every held event, in read order */
} tev;

struct fp_runner {
    fp_runner_config cfg;
    fp_task_kind *kind;
    fp_group *group;
    fp_letters *letters;
    fp_offsets *offsets;
    fp_keyorder *order;
    fp_filter *filter;
    tev *head, *tail;
    size_t held, max_held;
    int running;               /* attempts with the kind */
    int full;                  /* too many events held: nothing more is read */
    long long full_since_ms;   /* when it became full */
    int closing;               /* the grace period is over: revokes wait for nothing more */
    unsigned rnd;
    long long next_lag_ms;
    atomic_int stop, looping;
    fp_series *m_filtered;
    fp_series *m_delivered, *m_dead_lettered, *m_done, *m_retry, *m_reject, *m_in_flight, *m_delivery;
};

/* How long a runner may hold max_held events without reading before it pauses its
 * partitions (well below max.poll.interval.ms: rebalances wait for the next read). */
#define FULL_PAUSE_MS 5000

/* Seconds from an event's time to its delivery: up to an hour of retries. */
static const double delivery_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};

/* The runner's own metrics (fp_group has the lag, fp_letters the dead-letter ones). */
static int register_metrics(fp_runner *r, fp_metrics *m, fp_error *err)
{
    fp_metric *events = fp_metrics_counter(m, "formpipe_task_events_total", "Events finished, by outcome.",
                                           (const char *[]){"outcome", NULL}, err);
    fp_metric *attempts = fp_metrics_counter(m, "formpipe_task_attempts_total", "Attempts finished, by result.",
                                             (const char *[]){"result", NULL}, err);
    fp_metric *inflight = fp_metrics_gauge(m, "formpipe_task_in_flight", "Attempts running now.", NULL, err);
    fp_metric *delivery = fp_metrics_histogram(m, "formpipe_task_delivery_seconds",
                                               "Time from an event's time to its delivery.", NULL, delivery_buckets,
                                               sizeof delivery_buckets / sizeof delivery_buckets[0], err);
    fp_metric *filtered = fp_metrics_counter(m, "formpipe_task_events_filtered_total",
                                             "Events the task's filter skipped (committed, never attempted).", NULL, err);
    if (!events || !attempts || !inflight || !delivery || !filtered)
        return err ? err->code : FP_EINVAL;
    r->m_filtered = fp_metric_series(filtered, NULL);
    r->m_delivered = fp_metric_series(events, (const char *[]){"delivered"});
    r->m_dead_lettered = fp_metric_series(events, (const char *[]){"dead_lettered"});
    r->m_done = fp_metric_series(attempts, (const char *[]){"done"});
    r->m_retry = fp_metric_series(attempts, (const char *[]){"retry"});
    r->m_reject = fp_metric_series(attempts, (const char *[]){"reject"});
    r->m_in_flight = fp_metric_series(inflight, NULL);
    r->m_delivery = fp_metric_series(delivery, NULL);
    return 0;
}

/* Unlinks and frees an event. */
static void drop_event(fp_runner *r, tev *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        r->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        r->tail = t->prev;
    r->held--;
    if (t->msg)
        rd_kafka_message_destroy(t->msg);
    free(t->value);
    free(t);
}

/* An event is done or dead-lettered: the next event of its key may start, the offset
 * moves if the finished prefix grew, and it is forgotten. */
static void finish(fp_runner *r, tev *t, int delivered)
{
    tev *next = t->ordered ? fp_keyorder_done(r->order, t->ev.partition, t->ev.key, t->ev.key_len) : NULL;
    if (next && next->state == EV_WAITING)
        next->state = EV_READY;
    int64_t commit = fp_offsets_finish(r->offsets, t->ev.partition, t->ev.offset);
    if (commit >= 0)
        fp_group_store_offset(r->group, t->ev.partition, commit);
    if (delivered) {
        fp_series_inc(r->m_delivered);
        if (t->time_ms > 0)
            fp_series_observe(r->m_delivery, (double)(fp_clock_wall_ms() - t->time_ms) / 1000.0);
    } else {
        fp_series_inc(r->m_dead_lettered);
    }
    drop_event(r, t);
}

/* Produces the event's dead letter; it finishes once the broker acknowledged it. */
static void dead_letter(fp_runner *r, tev *t, fp_deadletter_reason reason, const char *message)
{
    t->why.reason = reason;
    snprintf(t->why.message, sizeof t->why.message, "%s", message);
    t->state = EV_LETTER;
    fp_letters_produce(r->letters, t->msg, &t->why, 0, &t->letter);
}

/* The kind's report of one attempt (also called by start_event when start failed). */
static void on_report(void *runner, const fp_task_event *ev, const fp_task_outcome *o)
{
    fp_runner *r = runner;
    tev *t = (tev *)ev;
    r->running--;
    fp_series_set(r->m_in_flight, r->running);
    if (t->revoked) {
        drop_event(r, t);
        return;
    }
    if (o->verdict == FP_TASK_DONE) {
        fp_series_inc(r->m_done);
        finish(r, t, 1);
    } else if (o->verdict == FP_TASK_REJECT) {
        fp_series_inc(r->m_reject);
        dead_letter(r, t, FP_DEADLETTER_REJECTED, o->detail);
    } else if (t->ev.attempt >= r->cfg.max_attempts) {
        char msg[256];
        fp_series_inc(r->m_retry);
        snprintf(msg, sizeof msg, "%d attempts failed; the last: %.200s", t->ev.attempt, o->detail);
        dead_letter(r, t, FP_DEADLETTER_ATTEMPTS_EXHAUSTED, msg);
    } else {
        fp_series_inc(r->m_retry);
        r->rnd = r->rnd * 1103515245u + 12345u;
        long long delay = fp_backoff_delay(r->cfg.backoff_initial_ms, r->cfg.backoff_max_ms, t->ev.attempt,
                                           o->retry_after_ms, r->rnd >> 8);
        t->state = EV_BACKOFF;
        t->due_ms = fp_clock_mono_ms() + delay;
        fp_log_debug("attempt failed; retrying", FP_LSTR("id", t->id), FP_LINT("attempt", t->ev.attempt),
                     FP_LINT("delay_ms", delay), FP_LSTR("detail", o->detail));
    }
}

/* Begins the event's next attempt. */
static void start_event(fp_runner *r, tev *t)
{
    t->ev.attempt++;
    t->state = EV_RUNNING;
    r->running++;
    fp_series_set(r->m_in_flight, r->running);
    if (r->kind->start(r->kind->self, &t->ev) < 0) {
        fp_task_outcome o = {.verdict = FP_TASK_RETRY};
        snprintf(o.detail, sizeof o.detail, "the %s task could not begin an attempt", r->kind->name);
        on_report(r, &t->ev, &o);
    }
}

/* Starts ready (and due) events in read order while attempts are below the concurrency;
 * settles answered dead letters. Returns ms until the earliest backoff is due (or 100). */
static long long step_events(fp_runner *r, int start)
{
    long long now = fp_clock_mono_ms(), wait = 100;
    for (tev *t = r->head, *next; t; t = next) {
        next = t->next;
        if (t->state == EV_BACKOFF && t->due_ms <= now)
            t->state = EV_READY;
        if (t->state == EV_BACKOFF && t->due_ms - now < wait)
            wait = t->due_ms - now;
        if (start && t->state == EV_READY && r->running < r->cfg.concurrency)
            start_event(r, t);
        if (t->state != EV_LETTER || !t->letter.done)
            continue;
        if (!t->letter.err) {
            fp_letters_note(r->letters, t->msg, &t->why);
            finish(r, t, 0);
        } else if (fp_letters_block(r->letters, t->msg, &t->why, 0, t->letter.err) == 0) {
            t->msg = NULL;
            t->state = EV_BLOCKED;
        } else {   /* no memory to wait in: produce it again */
            fp_letters_produce(r->letters, t->msg, &t->why, 0, &t->letter);
        }
    }
    return wait;
}

/* fp_letters' hook: the letter a partition waited at was written at last. */
static void on_letter_written(void *opaque, const rd_kafka_message_t *m)
{
    fp_runner *r = opaque;
    for (tev *t = r->head; t; t = t->next) {
        if (t->state == EV_BLOCKED && t->ev.partition == m->partition && t->ev.offset == m->offset) {
            finish(r, t, 0);
            return;
        }
    }
}

/* 1 when an attempt of one of the partitions runs. */
static int running_in(const fp_runner *r, const rd_kafka_topic_partition_list_t *parts)
{
    for (const tev *t = r->head; t; t = t->next)
        if (t->state == EV_RUNNING && !t->revoked)
            for (int i = 0; i < parts->cnt; i++)
                if (parts->elems[i].partition == t->ev.partition)
                    return 1;
    return 0;
}

/* fp_group's revoke hook: lets the partitions' running attempts finish (bounded by the
 * shutdown grace; not again when closing after the grace) and waits for their dead
 * letters in flight, so what is finished is committed; then forgets their events. An
 * attempt still running is abandoned once reported. */
static void on_revoked(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    fp_runner *r = opaque;
    long long deadline = fp_clock_mono_ms() + r->cfg.shutdown_grace_ms;
    while (!r->closing && running_in(r, parts) && fp_clock_mono_ms() < deadline)
        r->kind->poll(r->kind->self, 50, on_report, r);
    fp_letters_forget(r->letters, parts);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        for (tev *t = r->head, *next; t; t = next) {
            next = t->next;
            if (t->ev.partition != p || t->revoked)
                continue;
            if (t->state == EV_LETTER) {
                fp_letters_wait(r->letters, &t->letter);
                if (!t->letter.err) {
                    fp_letters_note(r->letters, t->msg, &t->why);
                    finish(r, t, 0);
                    continue;
                }
            }
            if (t->state == EV_RUNNING)
                t->revoked = 1;
            else
                drop_event(r, t);
        }
        fp_offsets_drop(r->offsets, p);
        fp_keyorder_drop(r->order, p);
    }
}

fp_runner *fp_runner_new(const fp_runner_config *cfg, fp_task_kind *kind, fp_metrics *metrics, fp_error *err)
{
    fp_runner *r = calloc(1, sizeof *r);
    if (!r) {
        kind->free(kind->self);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    r->kind = kind;
    r->cfg = *cfg;
    r->rnd = (unsigned)fp_clock_wall_ms();
    if (cfg->max_attempts < 1 || cfg->concurrency < 1 || cfg->backoff_initial_ms < 1 ||
        cfg->backoff_max_ms < cfg->backoff_initial_ms) {
        fp_error_set(err, FP_EINVAL, "max attempts and concurrency must be at least 1, and backoff 1 ms <= initial <= max");
        goto fail;
    }
    r->max_held = (size_t)cfg->concurrency * 4 < 256 ? 256 : (size_t)cfg->concurrency * 4;
    /* librdkafka prefetches up to 64 MiB / 100,000 messages by default: a task needs a
     * few thousand events ahead (docs/tasks.md has the runs), so at most
     * 2 MiB / 2,000 messages, fetched 256 KiB per partition (a fetched batch stays in
     * memory while one of its messages is held); --kafka-property overrides. */
    static const char *const task_defaults[] = {"queued.max.messages.kbytes", "2048", "queued.min.messages", "2000",
                                                "max.partition.fetch.bytes", "262144",
                                                /* a moderate task's output stream is written in transactions */
                                                "isolation.level", "read_committed", NULL};
    fp_group_config gc = {.kafka_bootstrap = cfg->kafka_bootstrap, .kafka_config_file = cfg->kafka_config_file,
                          .kafka_properties = cfg->kafka_properties, .defaults = task_defaults,
                          .group = cfg->group, .topic = cfg->topic,
                          .lag_metric = "formpipe_task_lag", .revoked = on_revoked, .opaque = r};
    fp_letters_config lc = {.kafka_bootstrap = cfg->kafka_bootstrap, .kafka_config_file = cfg->kafka_config_file,
                            .kafka_properties = cfg->kafka_properties, .topic = cfg->dlq_topic,
                            .timeout_ms = cfg->dead_letter_timeout_ms, .backoff_initial_ms = cfg->backoff_initial_ms,
                            .backoff_max_ms = cfg->backoff_max_ms, .metrics_prefix = "formpipe_task"};
    if (!(r->offsets = fp_offsets_new()) || !(r->order = fp_keyorder_new())) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(r->filter = fp_filter_new(cfg->filter, err)))
        goto fail;
    if (register_metrics(r, metrics, err) || !(r->group = fp_group_new(&gc, metrics, err)) ||
        !(r->letters = fp_letters_new(&lc, r->group, metrics, err)))
        goto fail;
    return r;
fail:
    fp_runner_free(r);
    return NULL;
}

/* Puts a message back: the partition is read again from it later. */
static void rewind_to(rd_kafka_message_t *m)
{
    rd_kafka_seek(m->rkt, m->partition, m->offset, 0);
    rd_kafka_message_destroy(m);
}

/* Takes one message in: an event that starts (or waits for its key), or a dead letter
 * when it is no CloudEvent. */
static void take(fp_runner *r, rd_kafka_message_t *m)
{
    fp_event ev = {0};
    fp_error err = {0};
    tev *t = calloc(1, sizeof *t);
    int rc = t && (t->value = malloc(m->len + 1)) ? fp_event_parse(m->payload, m->len, &ev, &err) : FP_ENOMEM;
    fp_event_clear(&ev);   /* id, source, time and time_ms stay */
    int added = rc == FP_ENOMEM ? FP_ENOMEM : fp_offsets_add(r->offsets, m->partition, m->offset);
    if (added == FP_ENOMEM) {
        fp_log_warn("out of memory reading an event; it is read again", FP_LINT("partition", m->partition),
                    FP_LINT("offset", m->offset));
        if (t)
            free(t->value);
        free(t);
        rewind_to(m);
        return;
    }
    if (added) {   /* not after the last one read of its partition: a repeat */
        free(t->value);
        free(t);
        rd_kafka_message_destroy(m);
        return;
    }
    memcpy(t->value, m->payload, m->len);
    t->value[m->len] = 0;
    snprintf(t->id, sizeof t->id, "%s", ev.id);
    snprintf(t->source, sizeof t->source, "%s", ev.source);
    snprintf(t->time, sizeof t->time, "%s", ev.time);
    t->time_ms = ev.time_ms;
    t->msg = m;
    t->ev = (fp_task_event){.id = t->id, .key = m->key, .key_len = m->key_len, .value = t->value,
                            .value_len = m->len, .type = ev.type ? ev.type : FP_EVENT_TYPE, .source = t->source, .time = t->time,
                            .partition = m->partition, .offset = m->offset};
    t->prev = r->tail;
    if (r->tail)
        r->tail->next = t;
    else
        r->head = t;
    r->tail = t;
    r->held++;
    if (rc) {
        dead_letter(r, t, fp_deadletter_unparsable(m->payload, m->len), err.msg);
        return;
    }
    if (!fp_filter_match(r->filter, t->value, m->len)) {   /* skipped: done at once, never attempted */
        int64_t commit = fp_offsets_finish(r->offsets, m->partition, m->offset);
        if (commit >= 0)
            fp_group_store_offset(r->group, m->partition, commit);
        fp_series_inc(r->m_filtered);
        drop_event(r, t);
        return;
    }
    int may = fp_keyorder_add(r->order, m->partition, m->key, m->key_len, t);
    if (may < 0) {   /* no memory to order it: retried as a failed attempt */
        fp_task_outcome o = {.verdict = FP_TASK_RETRY};
        snprintf(o.detail, sizeof o.detail, "out of memory ordering the event");
        r->running++;
        t->ev.attempt = 1;
        on_report(r, &t->ev, &o);
        return;
    }
    t->ordered = 1;
    t->state = may ? EV_READY : EV_WAITING;
}

/* Reads what is there (waiting up to timeout_ms for the first message), at most until
 * the runner holds max_held events. While full it does not read at all: librdkafka stops
 * fetching by itself once its own queue is at its limits, and the prefetched messages
 * stay for later (pausing would purge them and fetch them again on resume, a stall per
 * cycle). Only a runner full for FULL_PAUSE_MS (a receiver down, everything in backoff)
 * pauses its partitions, so it can keep serving rebalances without taking messages. */
static void read_messages(fp_runner *r, long long timeout_ms)
{
    if (r->full && !fp_group_paused(r->group)) {
        if (fp_clock_mono_ms() - r->full_since_ms < FULL_PAUSE_MS)
            return;
        if (fp_group_set_paused(r->group, 1))
            fp_log_info("events held at the limit for a while; reading paused", FP_LINT("held", (long long)r->held));
    }
    for (int n = 0; n < 500; n++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(fp_group_rk(r->group), n ? 0 : (int)timeout_ms);
        if (!m)
            return;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fp_log_warn("consumer error", FP_LSTR("error", rd_kafka_message_errstr(m)));
            rd_kafka_message_destroy(m);
            continue;
        }
        /* Fetched before its partition paused: read again once it resumes. */
        if (r->full || fp_group_paused(r->group) || fp_letters_waiting(r->letters, m->partition)) {
            rewind_to(m);
            continue;
        }
        take(r, m);
        if (r->held >= r->max_held) {
            r->full = 1;
            r->full_since_ms = fp_clock_mono_ms();
            return;
        }
    }
}

/* Reads again once half of the held events finished. */
static void maybe_resume(fp_runner *r)
{
    if (!r->full || r->held > r->max_held / 2)
        return;
    r->full = 0;
    if (fp_group_paused(r->group) && fp_group_set_paused(r->group, 0))
        fp_letters_repause(r->letters);
}

/* 1 while an event waits for its dead letter's answer. */
static int letters_pending(const fp_runner *r)
{
    for (const tev *t = r->head; t; t = t->next)
        if (t->state == EV_LETTER)
            return 1;
    return 0;
}

/* fp_group_store_positions: a partition with no event read and unfinished. */
static int partition_idle(void *opaque, int32_t partition)
{
    fp_runner *r = opaque;
    return fp_offsets_pending(r->offsets, partition) == 0;
}

/* After a stop: no new reads or attempts; running attempts and dead letters get the
 * grace period. */
static void drain(fp_runner *r)
{
    fp_group_set_paused(r->group, 1);
    long long deadline = fp_clock_mono_ms() + r->cfg.shutdown_grace_ms;
    fp_log_info("stopping: finishing running attempts", FP_LINT("running", r->running),
                FP_LINT("grace_ms", r->cfg.shutdown_grace_ms));
    while ((r->running > 0 || letters_pending(r)) && fp_clock_mono_ms() < deadline) {
        r->kind->poll(r->kind->self, r->running ? 50 : 0, on_report, r);
        fp_letters_poll(r->letters, r->running ? 0 : 50);
        step_events(r, 0);
        read_messages(r, 0);   /* serves rebalances; anything fetched is put back */
    }
    if (r->running)
        fp_log_warn("attempts still running at the end of the grace period are abandoned (redelivered later)",
                    FP_LINT("running", r->running));
}

int fp_runner_run(fp_runner *r)
{
    if (fp_group_subscribe(r->group))
        return FP_EIO;
    fp_log_info("running", FP_LSTR("kind", r->kind->name), FP_LSTR("topic", r->cfg.topic),
                FP_LSTR("group", r->cfg.group), FP_LSTR("dead_letter_topic", r->cfg.dlq_topic),
                FP_LINT("concurrency", r->cfg.concurrency), FP_LINT("max_attempts", r->cfg.max_attempts));
    atomic_store(&r->looping, 1);
    while (!fp_shutdown_requested() && !atomic_load(&r->stop)) {
        long long wait = step_events(r, 1);
        int busy = r->running > 0;
        read_messages(r, busy ? 0 : wait);
        step_events(r, 1);
        if (r->running)
            r->kind->poll(r->kind->self, wait < 20 ? wait : 20, on_report, r);
        fp_letters_poll(r->letters, 0);
        if (fp_letters_any_waiting(r->letters))
            fp_letters_tick(r->letters, on_letter_written, r);
        maybe_resume(r);
        if (fp_clock_mono_ms() >= r->next_lag_ms) {
            fp_group_store_positions(r->group, partition_idle, r);
            fp_group_publish_lag(r->group);
            r->next_lag_ms = fp_clock_mono_ms() + r->cfg.lag_interval_ms;
        }
    }
    drain(r);
    r->closing = 1;
    atomic_store(&r->looping, 0);
    fp_group_close(r->group);
    fp_log_info("task runner stopped", FP_LINT("signal", fp_shutdown_signal()));
    return 0;
}

void fp_runner_stop(fp_runner *r)
{
    atomic_store(&r->stop, 1);
}

int fp_runner_ready(void *runner, char *why, size_t whysz)
{
    fp_runner *r = runner;
    if (!atomic_load(&r->looping)) {
        snprintf(why, whysz, "task loop not running");
        return 0;
    }
    if (r->kind->ready && !r->kind->ready(r->kind->self, why, whysz))
        return 0;
    return 1;
}

void fp_runner_free(fp_runner *r)
{
    if (!r)
        return;
    /* The kind first (it abandons attempts pointing into events), then the producer
     * (its last reports write into events). */
    r->kind->free(r->kind->self);
    fp_letters_free(r->letters);
    while (r->head)
        drop_event(r, r->head);
    fp_group_free(r->group);
    fp_keyorder_free(r->order);
    fp_offsets_free(r->offsets);
    fp_filter_free(r->filter);
    free(r);
}
