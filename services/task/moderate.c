/* moderate.c — see moderate.h. One thread: poll a message, turn it into an output (or a
 * dead letter, or nothing when filtered) produced inside the open transaction, and note
 * its partition's offsets; commit the transaction (offsets included) every
 * commit_interval_ms or batch_max events, and before partitions are revoked. */
#include "moderate.h"
#include "clock.h"
#include "event.h"
#include "filter.h"
#include "group.h"
#include "kafka.h"
#include "letters.h"
#include "log.h"
#include "shutdown.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A partition read in the open transaction: where it started and the next offset. */
typedef struct txpart {
    int32_t partition;
    int64_t first, next;
} txpart;

/* Outcomes of the open transaction, counted once it commits. */
typedef struct txcount {
    long delivered, flagged, filtered, dead[FP_DEADLETTER_REASONS];
} txcount;

/* What identifies the word list file's current version. */
typedef struct fileid {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} fileid;

struct fp_moderate {
    fp_moderate_config cfg;
    fp_group *group;
    rd_kafka_t *producer;
    fp_words *words;
    fp_filter *filter;
    fileid words_id;
    long long next_reload_ms, next_lag_ms;
    int in_txn, failed, fatal;
    long long txn_start_ms;
    long txn_events;
    txpart *parts;
    size_t nparts, parts_cap;
    txcount count;
    fp_buf out;
    fp_modevent_scratch scratch;
    atomic_int stop, looping;
    fp_metric *m_dead;
    fp_series *m_delivered, *m_dead_lettered, *m_filtered, *m_flagged, *m_unflagged, *m_committed, *m_aborted,
        *m_words, *m_reload_ok, *m_reload_failed;
};

static int register_metrics(fp_moderate *m, fp_metrics *r, fp_error *err)
{
    fp_metric *events = fp_metrics_counter(r, "formpipe_task_events_total", "Events finished, by outcome.",
                                           (const char *[]){"outcome", NULL}, err);
    fp_metric *filtered = fp_metrics_counter(r, "formpipe_task_events_filtered_total",
                                             "Events the task's filter skipped (committed, never acted on).", NULL, err);
    fp_metric *moderated = fp_metrics_counter(r, "formpipe_task_moderated_total",
                                              "Events moderated and committed, by whether they were flagged.",
                                              (const char *[]){"flagged", NULL}, err);
    m->m_dead = fp_metrics_counter(r, "formpipe_task_dead_lettered_total", "Events sent to the dead-letter topic, by reason code.",
                                   (const char *[]){"reason", NULL}, err);
    fp_metric *txns = fp_metrics_counter(r, "formpipe_task_transactions_total", "Kafka transactions, by result.",
                                         (const char *[]){"result", NULL}, err);
    fp_metric *words = fp_metrics_gauge(r, "formpipe_task_words", "Terms in the word list in use.", NULL, err);
    fp_metric *reloads = fp_metrics_counter(r, "formpipe_task_word_list_reloads_total",
                                            "Word list changes seen, by result (failed: the list in use stays).",
                                            (const char *[]){"result", NULL}, err);
    if (!events || !filtered || !moderated || !m->m_dead || !txns || !words || !reloads)
        return err ? err->code : FP_EINVAL;
    m->m_delivered = fp_metric_series(events, (const char *[]){"delivered"});
    m->m_dead_lettered = fp_metric_series(events, (const char *[]){"dead_lettered"});
    m->m_filtered = fp_metric_series(filtered, NULL);
    m->m_flagged = fp_metric_series(moderated, (const char *[]){"true"});
    m->m_unflagged = fp_metric_series(moderated, (const char *[]){"false"});
    m->m_committed = fp_metric_series(txns, (const char *[]){"committed"});
    m->m_aborted = fp_metric_series(txns, (const char *[]){"aborted"});
    m->m_words = fp_metric_series(words, NULL);
    m->m_reload_ok = fp_metric_series(reloads, (const char *[]){"ok"});
    m->m_reload_failed = fp_metric_series(reloads, (const char *[]){"failed"});
    return 0;
}

/* The file's identity now (following symlinks); 0, or -1 when it cannot be read. */
static int file_id(const char *path, fileid *id)
{
    struct stat st;
    if (stat(path, &st))
        return -1;
    *id = (fileid){.dev = st.st_dev, .ino = st.st_ino, .size = st.st_size, .mtime = st.st_mtim};
    return 0;
}

static int same_file(const fileid *a, const fileid *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Reloads the word list when its file changed; a list that fails keeps the old one. */
static void maybe_reload(fp_moderate *m)
{
    long long now = fp_clock_mono_ms();
    if (now < m->next_reload_ms)
        return;
    m->next_reload_ms = now + m->cfg.reload_interval_ms;
    fileid id;
    if (file_id(m->cfg.words_file, &id) || same_file(&id, &m->words_id))
        return;
    fp_error err = {0};
    fp_words *w = fp_words_load(m->cfg.words_file, &err);
    m->words_id = id;   /* a bad version is not read again until the file changes */
    if (!w) {
        fp_series_inc(m->m_reload_failed);
        fp_log_warn("word list changed but cannot be used; keeping the one in use", FP_LSTR("file", m->cfg.words_file),
                    FP_LSTR("error", err.msg));
        return;
    }
    fp_words_free(m->words);
    m->words = w;
    fp_series_inc(m->m_reload_ok);
    fp_series_set(m->m_words, (double)fp_words_count(w));
    fp_log_info("word list reloaded", FP_LSTR("file", m->cfg.words_file), FP_LINT("terms", (long long)fp_words_count(w)));
}

/* Forgets the transaction's partitions and counts. */
static void txn_reset(fp_moderate *m)
{
    m->in_txn = 0;
    m->failed = 0;
    m->txn_events = 0;
    m->nparts = 0;
    m->count = (txcount){0};
}

/* Seeks every partition of the failed transaction back to where it started. */
static void rewind_parts(fp_moderate *m)
{
    if (!m->nparts)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)m->nparts);
    for (size_t i = 0; i < m->nparts; i++)
        rd_kafka_topic_partition_list_add(l, m->cfg.topic, m->parts[i].partition)->offset = m->parts[i].first;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(fp_group_rk(m->group), l, 5000);
    if (e) {   /* a revoked partition cannot be sought: its next owner reads from the commit */
        fp_log_debug("rewind failed", FP_LSTR("error", rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Aborts the open transaction and rewinds; a fatal error ends the loop. */
static void txn_abort(fp_moderate *m, const char *why)
{
    fp_log_warn("transaction aborted; its events are read again", FP_LSTR("error", why),
                FP_LINT("events", m->txn_events));
    rd_kafka_error_t *e = rd_kafka_abort_transaction(m->producer, (int)m->cfg.txn_timeout_ms);
    if (e) {
        fp_log_error("aborting the transaction failed", FP_LSTR("error", rd_kafka_error_string(e)));
        m->fatal = 1;
        rd_kafka_error_destroy(e);
    }
    fp_series_inc(m->m_aborted);
    rewind_parts(m);
    txn_reset(m);
}

/* A transactional call failed for good: a fatal error ends the loop, anything else
 * aborts the transaction. Takes e. */
static void txn_failed(fp_moderate *m, rd_kafka_error_t *e, const char *what)
{
    char why[512];
    snprintf(why, sizeof why, "%s: %s", what, rd_kafka_error_string(e));
    int fatal = rd_kafka_error_is_fatal(e);
    rd_kafka_error_destroy(e);
    if (fatal) {
        fp_log_error("the transactional producer failed for good (fenced by another instance with the same "
                     "transactional.id, or transactions unavailable); exiting", FP_LSTR("error", why));
        m->fatal = 1;
        return;
    }
    if (m->in_txn)
        txn_abort(m, why);
}

/* Sends the offsets (attempt 0) or commits (attempt 1), retrying a retriable error
 * twice. NULL, or the error. */
static rd_kafka_error_t *txn_call(fp_moderate *m, int commit, const rd_kafka_topic_partition_list_t *l,
                                  const rd_kafka_consumer_group_metadata_t *cgmd)
{
    rd_kafka_error_t *e = NULL;
    for (int attempt = 1;; attempt++) {
        e = commit ? rd_kafka_commit_transaction(m->producer, (int)m->cfg.txn_timeout_ms)
                   : rd_kafka_send_offsets_to_transaction(m->producer, l, cgmd, (int)m->cfg.txn_timeout_ms);
        if (!e || !rd_kafka_error_is_retriable(e) || attempt == 3)
            return e;
        fp_log_info("transaction call failed; retrying", FP_LSTR("error", rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
    }
}

/* Commits the open transaction with its input offsets. 0, or -1 when it was aborted
 * (or the producer failed for good). */
static int txn_commit(fp_moderate *m)
{
    if (!m->in_txn || m->fatal)
        return m->fatal ? -1 : 0;
    if (m->failed) {
        txn_abort(m, "a message could not be produced");
        return -1;
    }
    if (!m->nparts) {   /* begun, nothing read: nothing was sent to the broker yet */
        rd_kafka_error_t *e = rd_kafka_abort_transaction(m->producer, (int)m->cfg.txn_timeout_ms);
        if (e)
            rd_kafka_error_destroy(e);
        txn_reset(m);
        return 0;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)m->nparts);
    for (size_t i = 0; i < m->nparts; i++)
        rd_kafka_topic_partition_list_add(l, m->cfg.topic, m->parts[i].partition)->offset = m->parts[i].next;
    rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(fp_group_rk(m->group));
    rd_kafka_error_t *e = txn_call(m, 0, l, cgmd);
    const char *what = "sending the offsets";
    if (!e) {
        e = txn_call(m, 1, l, cgmd);
        what = "committing";
    }
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        txn_failed(m, e, what);
        return -1;
    }
    fp_series_inc(m->m_committed);
    fp_series_add(m->m_delivered, (double)m->count.delivered);
    fp_series_add(m->m_flagged, (double)m->count.flagged);
    fp_series_add(m->m_unflagged, (double)(m->count.delivered - m->count.flagged));
    fp_series_add(m->m_filtered, (double)m->count.filtered);
    for (int r = 0; r < FP_DEADLETTER_REASONS; r++) {
        if (!m->count.dead[r])
            continue;
        fp_series_add(m->m_dead_lettered, (double)m->count.dead[r]);
        fp_series_add(fp_metric_series(m->m_dead, (const char *[]){fp_deadletter_reason_name((fp_deadletter_reason)r)}),
                      (double)m->count.dead[r]);
    }
    txn_reset(m);
    return 0;
}

/* fp_group's revoke hook: what was read is committed before the partitions go. */
static void on_revoked(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    (void)parts;
    txn_commit(opaque);
}

/* Notes that m was read in the open transaction. FP_ENOMEM. */
static int note_offset(fp_moderate *m, const rd_kafka_message_t *msg)
{
    for (size_t i = 0; i < m->nparts; i++)
        if (m->parts[i].partition == msg->partition) {
            m->parts[i].next = msg->offset + 1;
            return 0;
        }
    if (m->nparts == m->parts_cap) {
        size_t cap = m->parts_cap ? m->parts_cap * 2 : 16;
        txpart *p = realloc(m->parts, cap * sizeof *p);
        if (!p)
            return FP_ENOMEM;
        m->parts = p;
        m->parts_cap = cap;
    }
    m->parts[m->nparts++] = (txpart){.partition = msg->partition, .first = msg->offset, .next = msg->offset + 1};
    return 0;
}

/* Produces one message in the transaction (waiting while the local queue is full);
 * takes headers. 0, or -1 (the transaction is marked failed). */
static int produce(fp_moderate *m, const char *topic, int32_t partition, const rd_kafka_message_t *in, const void *value,
                   size_t len, rd_kafka_headers_t *h)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            m->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(in->key, in->key_len),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_END);
        if (!e)
            return 0;
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(m->producer, 10);
            continue;
        }
        if (h)
            rd_kafka_headers_destroy(h);
        fp_log_warn("producing failed", FP_LSTR("topic", topic), FP_LINT("partition", partition),
                    FP_LSTR("error", rd_kafka_err2str(e)));
        m->failed = 1;
        return -1;
    }
}

/* Begins a transaction unless one is open. 0, or -1. */
static int txn_begin(fp_moderate *m)
{
    if (m->in_txn)
        return 0;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(m->producer);
    if (e) {   /* only ever a state error or fatal: the loop ends */
        fp_log_error("beginning a transaction failed", FP_LSTR("error", rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
        m->fatal = 1;
        return -1;
    }
    m->in_txn = 1;
    m->txn_start_ms = fp_clock_mono_ms();
    return 0;
}

/* One message read: its output, dead letter or nothing, in the open transaction.
 * Returns -1 when the message must be read again (put back). */
static int handle(fp_moderate *m, const rd_kafka_message_t *msg)
{
    fp_event ev = {0};
    fp_error err = {0};
    if (txn_begin(m))
        return -1;
    int rc = fp_event_parse(msg->payload, msg->len, &ev, &err);
    if (rc == FP_ENOMEM) {
        fp_event_clear(&ev);
        m->failed = 1;
        return -1;
    }
    if (note_offset(m, msg)) {
        fp_event_clear(&ev);
        m->failed = 1;
        return -1;
    }
    m->txn_events++;
    if (rc) {
        fp_letter_why why = {.reason = fp_deadletter_unparsable(msg->payload, msg->len)};
        snprintf(why.message, sizeof why.message, "%s", err.msg);
        rd_kafka_headers_t *h = fp_letters_headers(msg, &why, 0);
        if (!h || produce(m, m->cfg.dlq_topic, RD_KAFKA_PARTITION_UA, msg, msg->payload, msg->len, h) == 0)
            m->count.dead[why.reason]++;
        if (!h)
            m->failed = 1;
        fp_log_warn("event dead-lettered", FP_LSTR("topic", m->cfg.dlq_topic),
                    FP_LSTR("reason", fp_deadletter_reason_name(why.reason)), FP_LSTR("message", why.message),
                    FP_LINT("partition", msg->partition), FP_LINT("offset", msg->offset));
    } else if (m->filter && !fp_filter_match(m->filter, msg->payload, msg->len)) {
        m->count.filtered++;
    } else {
        fp_moderation mod;
        fp_buf_reset(&m->out);
        if (fp_modevent_check(m->words, &m->cfg.check, &ev, &m->scratch, &mod) ||
            fp_modevent_encode(msg->payload, msg->len, &mod, m->words, &m->out)) {
            m->failed = 1;
        } else if (produce(m, m->cfg.output_topic, msg->partition, msg, m->out.data, m->out.len, NULL) == 0) {
            m->count.delivered++;
            m->count.flagged += mod.flagged;
        }
    }
    fp_event_clear(&ev);
    return 0;
}

fp_moderate *fp_moderate_new(const fp_moderate_config *cfg, fp_metrics *metrics, fp_error *err)
{
    fp_moderate *m = calloc(1, sizeof *m);
    char why[512];
    if (!m) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    fp_buf_init(&m->out, (size_t)FP_EVENT_MAX_BYTES + 64 * 1024);
    if (register_metrics(m, metrics, err))
        goto fail;
    if (file_id(cfg->words_file, &m->words_id) || !(m->words = fp_words_load(cfg->words_file, err))) {
        if (!err->code)
            fp_error_set(err, FP_EIO, "word list %s: cannot be opened", cfg->words_file);
        goto fail;
    }
    fp_series_set(m->m_words, (double)fp_words_count(m->words));
    if (!(m->filter = fp_filter_new(cfg->filter, err)))
        goto fail;
    fp_group_config gc = {.kafka_bootstrap = cfg->kafka_bootstrap, .kafka_config_file = cfg->kafka_config_file,
                          .kafka_properties = cfg->kafka_properties, .group = cfg->group, .topic = cfg->topic,
                          .lag_metric = "formpipe_task_lag", .transactional = 1, .revoked = on_revoked, .opaque = m};
    if (!(m->group = fp_group_new(&gc, metrics, err)))
        goto fail;
    const char *const producer_defaults[] = {"linger.ms", "5", "batch.size", "1000000", NULL};
    rd_kafka_conf_t *pc = fp_kafka_conf_new(cfg->kafka_bootstrap, producer_defaults, cfg->kafka_config_file,
                                            cfg->kafka_properties, err);
    if (!pc || fp_kafka_conf_set(pc, "transactional.id", cfg->transactional_id, err) ||
        fp_kafka_conf_set(pc, "enable.idempotence", "true", err) || fp_kafka_conf_set(pc, "acks", "all", err)) {
        if (pc)
            rd_kafka_conf_destroy(pc);
        goto fail;
    }
    if (!(m->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof why))) {
        rd_kafka_conf_destroy(pc);
        fp_error_set(err, FP_EINVAL, "kafka transactional producer: %s", why);
        goto fail;
    }
    return m;
fail:
    fp_moderate_free(m);
    return NULL;
}

int fp_moderate_run(fp_moderate *m)
{
    rd_kafka_error_t *e;
    while ((e = rd_kafka_init_transactions(m->producer, (int)m->cfg.txn_timeout_ms))) {
        int retry = rd_kafka_error_is_retriable(e) && !fp_shutdown_requested() && !atomic_load(&m->stop);
        fp_log_warn("initialising transactions failed", FP_LSTR("error", rd_kafka_error_string(e)),
                    FP_LBOOL("retrying", retry));
        rd_kafka_error_destroy(e);
        if (!retry)
            return fp_shutdown_requested() || atomic_load(&m->stop) ? 0 : FP_EIO;
    }
    if (fp_group_subscribe(m->group))
        return FP_EIO;
    fp_log_info("running", FP_LSTR("kind", "moderate"), FP_LSTR("topic", m->cfg.topic), FP_LSTR("group", m->cfg.group),
                FP_LSTR("output_topic", m->cfg.output_topic), FP_LSTR("transactional_id", m->cfg.transactional_id),
                FP_LINT("terms", (long long)fp_words_count(m->words)), FP_LINT("filter", (long long)fp_filter_count(m->filter)));
    atomic_store(&m->looping, 1);
    rd_kafka_t *rk = fp_group_rk(m->group);
    while (!fp_shutdown_requested() && !atomic_load(&m->stop) && !m->fatal) {
        maybe_reload(m);
        long long now = fp_clock_mono_ms(), wait = 100;
        if (m->txn_events) {
            long long left = m->txn_start_ms + m->cfg.commit_interval_ms - now;
            wait = left < 0 ? 0 : left < wait ? left : wait;
        }
        for (int n = 0; n < 1000 && !m->fatal; n++) {
            rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, n ? 0 : (int)wait);
            if (!msg)
                break;
            if (msg->err) {
                if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    fp_log_warn("consumer error", FP_LSTR("error", rd_kafka_message_errstr(msg)));
            } else if (!m->failed && handle(m, msg)) {   /* read again after the abort's rewind */
                rd_kafka_seek(msg->rkt, msg->partition, msg->offset, 0);
            }
            rd_kafka_message_destroy(msg);
            if (m->failed || m->txn_events >= m->cfg.batch_max)
                break;
        }
        if (m->in_txn && (m->failed || m->txn_events >= m->cfg.batch_max ||
                          fp_clock_mono_ms() - m->txn_start_ms >= m->cfg.commit_interval_ms))
            txn_commit(m);
        rd_kafka_poll(m->producer, 0);
        if (fp_clock_mono_ms() >= m->next_lag_ms) {
            fp_group_publish_lag(m->group);
            m->next_lag_ms = fp_clock_mono_ms() + m->cfg.lag_interval_ms;
        }
    }
    if (!m->fatal)
        txn_commit(m);
    atomic_store(&m->looping, 0);
    fp_group_close(m->group);
    fp_log_info("moderate task stopped", FP_LINT("signal", fp_shutdown_signal()), FP_LBOOL("failed", m->fatal));
    return m->fatal ? FP_EIO : 0;
}

void fp_moderate_stop(fp_moderate *m)
{
    atomic_store(&m->stop, 1);
}

int fp_moderate_ready(void *moderate, char *why, size_t whysz)
{
    fp_moderate *m = moderate;
    if (!atomic_load(&m->looping)) {
        snprintf(why, whysz, "moderate loop not running");
        return 0;
    }
    return 1;
}

void fp_moderate_free(fp_moderate *m)
{
    if (!m)
        return;
    if (m->producer)
        rd_kafka_destroy(m->producer);
    fp_group_free(m->group);
    fp_words_free(m->words);
    fp_filter_free(m->filter);
    fp_buf_free(&m->out);
    fp_modevent_scratch_free(&m->scratch);
    free(m->parts);
    free(m);
}
