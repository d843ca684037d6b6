/* consumer.c — see consumer.h. One thread: poll a batch, turn events into rows (or
 * dead letters), insert each pipeline's rows of it with one Lua script, WAIT for the
 * replicas once, and only then store the batch's offsets. Every failure before the offsets are stored leads to
 * redelivery, which the idempotent insert makes harmless. A dead letter that cannot be
 * written pauses its partition at that message (offsets stay before it) and is retried
 * in the background; the other partitions keep flowing. */
#include "consumer.h"
#include "rowstore.h"
#include "clock.h"
#include "deadletter.h"
#include "event.h"
#include "form.h"
#include "formdir.h"
#include "group.h"
#include "letters.h"
#include "log.h"
#include "names.h"
#include "redis.h"
#include "shutdown.h"
#include "triage.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One pipeline the consumer serves: its form (reloaded in place when a newer
 * generation arrives), its topic, dead-letter topic and previous group, and its buffer
 * on each lane. Its topic never changes: a form file that names another topic is a new
 * pipeline. */
typedef struct pipeline {
    char *path;                /* its form file */
    fp_form *form;
    char topic[256];
    char dlq_topic[300];
    char previous_group[256];  /* "" when none */
    long long form_given_up;   /* a generation waited for in vain: events up to it do not wait */
    fp_rowstore *buffer[FP_CONSUMER_MAX_IN_FLIGHT];
} pipeline;

/* A run of a batch's rows of one pipeline (grouped rows at..at+n). */
typedef struct run {
    pipeline *p;
    size_t at, n;
} run;

/* A message of a batch that goes to the dead-letter topic, and why. */
typedef struct letter {
    size_t msg;               /* index in the batch */
    fp_triage why;
    long long generation;     /* the form generation it was judged with */
    fp_letter d;
} letter;

/* One batch: the Kafka messages and the rows built from them. Row texts live one
 * after another (each NUL-terminated) in text, the batch's single allocation for them.
 * A message is NULL once its partition was blocked at an earlier offset: it will be
 * read again, so its offset is not stored. */
typedef struct batch {
    rd_kafka_message_t **msgs;
    size_t n;
    fp_event *events;
    fp_buf text;
    size_t *row_at;      /* offset of each row in text */
    fp_rowstore_row *rows;
    pipeline **row_pipe; /* each row's pipeline */
    size_t nrows;
    fp_rowstore_row *grouped;   /* the rows again, grouped by pipeline into runs */
    run *runs;
    size_t nruns;
    size_t started;      /* runs whose insert was sent (start_batch) */
    letter *letters;     /* its dead letters, produced while it was prepared */
    size_t nletters;
    int lane;            /* the Redis connection it uses */
    double sent_at;
} batch;

struct fp_consumer {
    long long form_waited_ms;      /* spent waiting for a newer form in the batch in hand */
    fp_consumer_config cfg;
    pipeline **pipes;        /* sorted by topic; changed only while no batch is queued */
    size_t npipes;
    fp_formdir *dir;         /* --forms-dir; NULL with --form */
    long long next_scan_ms;
    int dir_dirty;           /* the last change could not be applied: apply again at the next scan */
    char group[256];
    fp_group *kgroup;        /* the group consumer */
    rd_kafka_t *rk;          /* its handle */
    fp_letters *letters;     /* the dead-letter producer and the partitions waiting at a letter */
    /* One lane (a Redis connection and the buffer on it) per batch in flight: WAIT
     * blocks its connection until a replica confirmed, so a second batch on the same
     * connection would only run after that. */
    fp_redis *redis[FP_CONSUMER_MAX_IN_FLIGHT];
    fp_rowstore *buffer[FP_CONSUMER_MAX_IN_FLIGHT];
    int lanes;
    unsigned long queued_total;   /* batches ever queued: picks each one's lane */
    atomic_int redis_ok;
    atomic_int running;
    long long next_lag_ms;
    long long next_trim_ms;
    batch *b;                /* a ring: the queued batches (oldest at head), then the one being collected */
    int nb;                  /* batches_in_flight + 1 */
    int head, queued;        /* queued: sent (or waiting for their turn), not yet complete */
    /* metrics */
    fp_series *m_consumed, *m_inserted, *m_duplicates, *m_redis_errors, *m_batches;
    fp_series *m_redis_seconds;
};

#define TRIM_INTERVAL_MS 60000

/* Forgets flushed ids older than the dedup window (a redelivery older than that is
 * impossible: Kafka offsets were committed long before), on a lane with nothing in
 * flight. Failures are retried later. */
static void trim_dedup_window(fp_consumer *c, int lane)
{
    for (size_t i = 0; i < c->npipes; i++) {
        fp_error err = {0};
        long long removed = 0;
        const fp_form *f = c->pipes[i]->form;
        if (fp_rowstore_trim_flushed(c->pipes[i]->buffer[lane], fp_clock_wall_ms() - c->cfg.dedup_window_ms, &removed,
                                     &err)) {
            fp_log_warn("trimming the dedup window failed", FP_LSTR("namespace", f->ns), FP_LSTR("pipeline", f->name),
                        FP_LSTR("error", err.msg));
            return;   /* Redis is in trouble: the next round tries again */
        }
        if (removed)
            fp_log_info("dedup window trimmed", FP_LSTR("namespace", f->ns), FP_LSTR("pipeline", f->name),
                        FP_LINT("removed", removed));
    }
}

/* bsearch/qsort comparison of pipelines by topic. */
static int pipe_cmp(const void *a, const void *b)
{
    return strcmp((*(pipeline *const *)a)->topic, (*(pipeline *const *)b)->topic);
}

/* The pipeline whose topic is topic, or NULL (a pipeline removed since). */
static pipeline *find_pipeline(const fp_consumer *c, const char *topic)
{
    pipeline key, *kp = &key;
    snprintf(key.topic, sizeof key.topic, "%s", topic);
    pipeline **hit = c->npipes ? bsearch(&kp, c->pipes, c->npipes, sizeof *c->pipes, pipe_cmp) : NULL;
    return hit ? *hit : NULL;
}

/* fp_letters' route: a message's dead-letter topic is its pipeline's. */
static const char *route_letter(void *opaque, const char *source_topic)
{
    pipeline *p = find_pipeline(opaque, source_topic);
    return p ? p->dlq_topic : NULL;
}

/* Frees p (its buffers on every lane, its form); NULL is fine. */
static void pipeline_free(fp_consumer *c, pipeline *p)
{
    if (!p)
        return;
    for (int i = 0; i < c->lanes; i++)
        fp_rowstore_free(p->buffer[i]);
    fp_form_free(p->form);
    free(p->path);
    free(p);
}

/* A string member of the form file's "shared" object, or NULL. */
static const char *shared_string(const fp_form *f, const char *key)
{
    const cJSON *shared = cJSON_GetObjectItemCaseSensitive(f->json, "shared");
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(shared, key));
}

/* Copies s into out, FP_ELIMIT when it does not fit. */
static int copy_name(char *out, size_t outsz, const char *s)
{
    int n = snprintf(out, outsz, "%s", s);
    return n < 0 || (size_t)n >= outsz ? FP_ELIMIT : 0;
}

/* Sets p's topic (only when keep_topic is 0), dead-letter topic and previous group
 * from p->form: with --form the flags (default: derived from the form) and
 * --previous-group; with --forms-dir the form's "shared" object (dlqTopic,
 * dedicatedGroup as the previous group), else derived from the form. */
static int pipeline_names(const fp_consumer *c, pipeline *p, int keep_topic, fp_error *err)
{
    const fp_consumer_config *cfg = &c->cfg;
    const fp_form *form = p->form;
    int dedicated = !c->dir;
    const char *topic = dedicated && cfg->topic && *cfg->topic ? cfg->topic : NULL;
    const char *dlq = dedicated ? cfg->dlq_topic : shared_string(form, "dlqTopic");
    const char *prev = dedicated ? cfg->previous_group : shared_string(form, "dedicatedGroup");
    int rc = keep_topic ? 0 : topic ? copy_name(p->topic, sizeof p->topic, topic) : fp_form_topic(form, p->topic, sizeof p->topic);
    if (!rc)
        rc = dlq && *dlq ? copy_name(p->dlq_topic, sizeof p->dlq_topic, dlq)
                         : fp_names_dlq_topic(p->topic, p->dlq_topic, sizeof p->dlq_topic);
    if (!rc)
        rc = dedicated || (prev && *prev) ? copy_name(p->previous_group, sizeof p->previous_group, prev ? prev : "")
                                          : fp_names_group(form->ns, form->name, p->previous_group, sizeof p->previous_group);
    return rc ? fp_error_set(err, FP_ELIMIT, "%s: a topic or group name is too long", p->path) : 0;
}

/* A pipeline for form (taken over, also on failure) read from path, with its buffer on
 * every lane. NULL with *err. */
static pipeline *pipeline_new(fp_consumer *c, const char *path, fp_form *form, fp_error *err)
{
    pipeline *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path))) {
        free(p);
        fp_form_free(form);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    p->form = form;
    if (pipeline_names(c, p, 0, err))
        goto fail;
    for (int i = 0; i < c->lanes; i++)
        if (!(p->buffer[i] = fp_rowstore_new(c->redis[i], form->ns, form->name, err)))
            goto fail;
    return p;
fail:
    pipeline_free(c, p);
    return NULL;
}

/* The consumer's metrics (events, inserts, duplicates, Redis errors and time, batches);
 * the dead-letter ones are fp_letters', lag is fp_group's. */
static int register_metrics(fp_consumer *c, fp_metrics *m, fp_error *err)
{
    fp_metric *consumed = fp_metrics_counter(m, "formpipe_consumer_events_total", "Events read from Kafka.", NULL, err);
    fp_metric *inserted = fp_metrics_counter(m, "formpipe_consumer_inserted_total", "Rows newly added to the Redis buffer.", NULL, err);
    fp_metric *dups = fp_metrics_counter(m, "formpipe_consumer_duplicates_total", "Events skipped because their id was already buffered or flushed.", NULL, err);
    fp_metric *rerr = fp_metrics_counter(m, "formpipe_consumer_redis_errors_total", "Failed Redis operations (each retried).", NULL, err);
    fp_metric *batches = fp_metrics_counter(m, "formpipe_consumer_batches_total", "Batches stored in Redis and confirmed by WAIT.", NULL, err);
    fp_metric *rsec = fp_metrics_histogram(m, "formpipe_consumer_redis_seconds", "Time to insert a batch and WAIT for replicas.",
                                           NULL, fp_metrics_latency_buckets, fp_metrics_latency_nbuckets, err);
    if (!consumed || !inserted || !dups || !rerr || !batches || !rsec)
        return err ? err->code : FP_EINVAL;
    c->m_consumed = fp_metric_series(consumed, NULL);
    c->m_inserted = fp_metric_series(inserted, NULL);
    c->m_duplicates = fp_metric_series(dups, NULL);
    c->m_redis_errors = fp_metric_series(rerr, NULL);
    c->m_batches = fp_metric_series(batches, NULL);
    c->m_redis_seconds = fp_metric_series(rsec, NULL);
    return 0;
}

/* The retry delay after backoff: doubled, at most backoff_max_ms. */
static long next_backoff(const fp_consumer *c, long backoff)
{
    return backoff * 2 > c->cfg.backoff_max_ms ? c->cfg.backoff_max_ms : backoff * 2;
}

/* Pauses (or resumes) every partition assigned to us; a resume leaves the partitions
 * that wait at a dead letter paused. */
static void set_paused(fp_consumer *c, int paused)
{
    if (!fp_group_set_paused(c->kgroup, paused))
        return;
    if (!paused)
        fp_letters_repause(c->letters);
    fp_log_info(paused ? "partitions paused until Redis answers" : "partitions resumed");
}

/* fp_group's revoke hook: the batch in hand was not stored, so the next owner reads it
 * again and the idempotent insert drops the repeats; dead-letter waits are forgotten. */
static void on_revoked(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    fp_consumer *c = opaque;
    fp_letters_forget(c->letters, parts);
}

/* Allocates a batch for cap messages. 0 or FP_ENOMEM (batch_free cleans up either way). */
static int batch_init(batch *b, size_t cap)
{
    b->msgs = calloc(cap, sizeof *b->msgs);
    b->events = calloc(cap, sizeof *b->events);
    b->row_at = calloc(cap, sizeof *b->row_at);
    b->rows = calloc(cap, sizeof *b->rows);
    b->row_pipe = calloc(cap, sizeof *b->row_pipe);
    b->grouped = calloc(cap, sizeof *b->grouped);
    b->runs = calloc(cap, sizeof *b->runs);
    b->letters = calloc(cap, sizeof *b->letters);
    fp_buf_init(&b->text, cap * (FP_ROWSTORE_MAX_ROW + 1));
    return b->msgs && b->events && b->row_at && b->rows && b->row_pipe && b->grouped && b->runs && b->letters
               ? 0 : FP_ENOMEM;
}

/* Drops the batch's contents (messages, events, rows, letters), keeping its memory.
 * Its letters' deliveries must have been reported (wait_letters). */
static void batch_release(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        fp_event_clear(&b->events[i]);
        if (b->msgs[i])
            rd_kafka_message_destroy(b->msgs[i]);
    }
    fp_buf_reset(&b->text);
    b->n = b->nrows = b->nletters = b->nruns = b->started = 0;
}

/* Releases the batch's contents and frees its memory. */
static void batch_free(batch *b)
{
    if (b->msgs)
        batch_release(b);
    free(b->msgs);
    free(b->events);
    free(b->row_at);
    free(b->rows);
    free(b->row_pipe);
    free(b->grouped);
    free(b->runs);
    free(b->letters);
    fp_buf_free(&b->text);
}

/* Step 2: the ring of batches, one per lane plus the one being collected. */
static int alloc_batches(fp_consumer *c, fp_error *err)
{
    if (c->cfg.batches_in_flight < 1 || c->cfg.batches_in_flight > FP_CONSUMER_MAX_IN_FLIGHT)
        return fp_error_set(err, FP_EINVAL, "batches in flight must be 1 to %d", FP_CONSUMER_MAX_IN_FLIGHT);
    if (c->cfg.batch_max < 1)
        return fp_error_set(err, FP_EINVAL, "batch max must be at least 1");
    c->lanes = c->cfg.batches_in_flight;
    c->nb = c->lanes + 1;
    if (!(c->b = calloc((size_t)c->nb, sizeof *c->b)))
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    for (int i = 0; i < c->nb; i++)
        if (batch_init(&c->b[i], (size_t)c->cfg.batch_max))
            return fp_error_set(err, FP_ENOMEM, "out of memory");
    return 0;
}

/* Step 3: the Redis connections, one per lane. */
static int create_lanes(fp_consumer *c, fp_error *err)
{
    const fp_consumer_config *cfg = &c->cfg;
    fp_redis_config rc = {.sentinels = cfg->redis_sentinels, .master_name = cfg->redis_master,
                          .password = cfg->redis_password,
                          .connect_timeout_ms = cfg->redis_connect_timeout_ms,
                          .command_timeout_ms = cfg->redis_command_timeout_ms, .tls = cfg->redis_tls};
    for (int i = 0; i < c->lanes; i++)
        if (!(c->redis[i] = fp_redis_new(&rc, err)))
            return err ? err->code : FP_EINVAL;
    return 0;
}

/* The index of the pipeline read from path, or -1. */
static long find_path(const fp_consumer *c, const char *path)
{
    for (size_t i = 0; i < c->npipes; i++)
        if (strcmp(c->pipes[i]->path, path) == 0)
            return (long)i;
    return -1;
}

/* The pipeline of file i of the forms directory's last scan, given old (the pipeline
 * read from that path before, or NULL): old itself when the file did not change or
 * cannot be read now (logged: the last good version keeps working), old with the new
 * form swapped in when it is the same pipeline on the same topic, else a new one. NULL
 * when there is none. */
static pipeline *dir_pipeline(fp_consumer *c, size_t i, pipeline *old)
{
    const char *path = fp_formdir_path(c->dir, i);
    if (old && !fp_formdir_changed(c->dir, i))
        return old;
    fp_error err = {0};
    char topic[256];
    fp_form *f = fp_form_load(path, &err);
    if (!f) {
        fp_log_error("form file skipped", FP_LSTR("path", path), FP_LSTR("error", err.msg));
        return old;
    }
    if (old && strcmp(old->form->ns, f->ns) == 0 && strcmp(old->form->name, f->name) == 0 &&
        fp_form_topic(f, topic, sizeof topic) == 0 && strcmp(topic, old->topic) == 0) {
        fp_form *was = old->form;
        old->form = f;
        if (pipeline_names(c, old, 1, &err)) {
            old->form = was;
            fp_form_free(f);
            fp_log_error("form file skipped", FP_LSTR("path", path), FP_LSTR("error", err.msg));
        } else {
            fp_form_free(was);
            fp_log_info("form definition reloaded", FP_LSTR("namespace", f->ns), FP_LSTR("pipeline", f->name),
                        FP_LINT("generation", f->generation));
        }
        return old;
    }
    pipeline *p = pipeline_new(c, path, f, &err);
    if (!p) {
        fp_log_error("form file skipped", FP_LSTR("path", path), FP_LSTR("error", err.msg));
        return old;
    }
    fp_log_info("pipeline added", FP_LSTR("namespace", p->form->ns), FP_LSTR("pipeline", p->form->name),
                FP_LSTR("topic", p->topic), FP_LSTR("dead_letter_topic", p->dlq_topic),
                FP_LSTR("previous_group", p->previous_group), FP_LINT("form_generation", p->form->generation));
    return p;
}

/* Rebuilds the pipeline table from the forms directory's last scan (only while no
 * batch is queued: batches point into it). A file naming a topic another file already
 * has is skipped (logged). On FP_ENOMEM the table is unchanged. */
static int load_dir(fp_consumer *c)
{
    size_t n = fp_formdir_count(c->dir), m = 0;
    pipeline **next = calloc(n ? n : 1, sizeof *next);
    char *kept = calloc(c->npipes ? c->npipes : 1, 1);
    if (!next || !kept) {
        free(next);
        free(kept);
        return FP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        long at = find_path(c, fp_formdir_path(c->dir, i));
        pipeline *p = dir_pipeline(c, i, at >= 0 ? c->pipes[at] : NULL);
        int old = p && at >= 0 && p == c->pipes[at];
        size_t j = 0;
        while (p && j < m && strcmp(next[j]->topic, p->topic))
            j++;
        if (p && j < m) {   /* two files, one topic: the pipeline we had wins, else the first file */
            pipeline *loser = old ? next[j] : p;
            fp_log_error("form file skipped: another file has its topic", FP_LSTR("path", loser->path),
                         FP_LSTR("topic", loser->topic));
            if (old) {
                next[j] = p;
                kept[at] = 1;
            }
            pipeline_free(c, loser);   /* always a new one: the old table had each topic once */
            continue;
        }
        if (!p)
            continue;
        if (old)
            kept[at] = 1;
        next[m++] = p;
    }
    qsort(next, m, sizeof *next, pipe_cmp);
    for (size_t i = 0; i < c->npipes; i++) {
        if (kept[i])
            continue;
        fp_log_info("pipeline removed", FP_LSTR("namespace", c->pipes[i]->form->ns),
                    FP_LSTR("pipeline", c->pipes[i]->form->name), FP_LSTR("topic", c->pipes[i]->topic));
        pipeline_free(c, c->pipes[i]);
    }
    free(kept);
    free(c->pipes);
    c->pipes = next;
    c->npipes = m;
    return 0;
}

/* Subscribes the group to exactly the pipelines' topics, each with its previous group. */
static int subscribe_pipelines(fp_consumer *c)
{
    fp_error err = {0};
    fp_group_topic *t = calloc(c->npipes ? c->npipes : 1, sizeof *t);
    if (!t)
        return FP_ENOMEM;
    for (size_t i = 0; i < c->npipes; i++)
        t[i] = (fp_group_topic){.topic = c->pipes[i]->topic, .previous_group = c->pipes[i]->previous_group,
                                .ns = c->pipes[i]->form->ns, .pipeline = c->pipes[i]->form->name};
    int rc = fp_group_subscribe_topics(c->kgroup, t, c->npipes, &err);
    free(t);
    return rc;
}

/* Step 4: the pipelines: the one of --form, or those of --forms-dir (scanned now). */
static int load_pipelines(fp_consumer *c, fp_error *err)
{
    const fp_consumer_config *cfg = &c->cfg;
    if (!cfg->forms_dir == !cfg->form_path)
        return fp_error_set(err, FP_EINVAL, "give either a form file or a forms directory");
    if (cfg->form_path) {
        fp_form *f = fp_form_load(cfg->form_path, err);
        pipeline *p = f ? pipeline_new(c, cfg->form_path, f, err) : NULL;
        if (!p || !(c->pipes = calloc(1, sizeof *c->pipes))) {
            pipeline_free(c, p);
            return err && err->code ? err->code : fp_error_set(err, FP_ENOMEM, "out of memory");
        }
        c->pipes[0] = p;
        c->npipes = 1;
        return 0;
    }
    if (!(c->dir = fp_formdir_open(cfg->forms_dir, err)))
        return err ? err->code : FP_EINVAL;
    int rc = fp_formdir_scan(c->dir, err);
    if (rc < 0)
        return rc;
    if ((rc = load_dir(c)))
        return fp_error_set(err, rc, "out of memory");
    return 0;
}

/* Step 5: the group's name: --group, else derived from the --form's pipeline, else the
 * "shared.group" of the first form of --forms-dir that names one. */
static int choose_group(fp_consumer *c, fp_error *err)
{
    const fp_consumer_config *cfg = &c->cfg;
    if (cfg->group && *cfg->group)
        return copy_name(c->group, sizeof c->group, cfg->group) ? fp_error_set(err, FP_ELIMIT, "group name too long") : 0;
    if (!c->dir)
        return fp_names_group(c->pipes[0]->form->ns, c->pipes[0]->form->name, c->group, sizeof c->group)
                   ? fp_error_set(err, FP_ELIMIT, "group name too long") : 0;
    for (size_t i = 0; i < c->npipes; i++) {
        const char *g = shared_string(c->pipes[i]->form, "group");
        if (g && *g)
            return copy_name(c->group, sizeof c->group, g) ? fp_error_set(err, FP_ELIMIT, "group name too long") : 0;
    }
    return fp_error_set(err, FP_EINVAL, "%s holds no form naming its group (shared.group): give --group",
                        cfg->forms_dir);
}

/* Step 6: the group consumer (offsets stored by us, committed by librdkafka), its lag
 * labelled by pipeline. */
static int create_group_consumer(fp_consumer *c, fp_metrics *m, fp_error *err)
{
    const fp_consumer_config *cfg = &c->cfg;
    /* Prefetch at most 8 MiB / 20,000 messages per partition: memory stays bounded.
     * Fetch up to 4 MiB per partition per request: librdkafka's 1 MiB capped a backlog
     * drain whatever the Redis side did (the runs are in docs/consumer.md). Each can be
     * overridden with --kafka-property. */
    static const char *const consumer_defaults[] = {"queued.max.messages.kbytes", "8192",
                                                    "queued.min.messages", "20000",
                                                    "max.partition.fetch.bytes", "4194304", NULL};
    /* Shared: a pipeline's form may arrive before its topic exists; librdkafka notices a
     * subscribed topic appear at its next metadata refresh (every 5 min by default). */
    static const char *const shared_defaults[] = {"queued.max.messages.kbytes", "8192",
                                                  "queued.min.messages", "20000",
                                                  "max.partition.fetch.bytes", "4194304",
                                                  "topic.metadata.refresh.interval.ms", "10000", NULL};
    fp_group_config gc = {.kafka_bootstrap = cfg->kafka_bootstrap, .kafka_config_file = cfg->kafka_config_file,
                          .kafka_properties = cfg->kafka_properties, .defaults = c->dir ? shared_defaults : consumer_defaults,
                          .group = c->group, .lag_metric = "formpipe_consumer_lag", .lag_by_pipeline = 1,
                          .revoked = on_revoked, .opaque = c};
    if (!(c->kgroup = fp_group_new(&gc, m, err)))
        return err ? err->code : FP_EINVAL;
    c->rk = fp_group_rk(c->kgroup);
    return 0;
}

/* Step 7: the dead-letter producer (fp_letters), each letter to its pipeline's topic. */
static int create_dlq_producer(fp_consumer *c, fp_metrics *m, fp_error *err)
{
    const fp_consumer_config *cfg = &c->cfg;
    fp_letters_config lc = {.kafka_bootstrap = cfg->kafka_bootstrap, .kafka_config_file = cfg->kafka_config_file,
                            .kafka_properties = cfg->kafka_properties, .topic = "", .route = route_letter,
                            .route_opaque = c, .timeout_ms = cfg->dead_letter_timeout_ms,
                            .backoff_initial_ms = cfg->backoff_initial_ms, .backoff_max_ms = cfg->backoff_max_ms,
                            .metrics_prefix = "formpipe_consumer"};
    if (!(c->letters = fp_letters_new(&lc, c->kgroup, m, err)))
        return err ? err->code : FP_EINVAL;
    return 0;
}

fp_consumer *fp_consumer_new(const fp_consumer_config *cfg, fp_metrics *metrics, fp_error *err)
{
    fp_consumer *c = calloc(1, sizeof *c);
    if (!c) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    if (cfg->dead_letter_timeout_ms < 1) {
        fp_error_set(err, FP_EINVAL, "dead-letter timeout must be at least 1 ms");
        goto fail;
    }
    if (alloc_batches(c, err) || create_lanes(c, err) || load_pipelines(c, err) || choose_group(c, err) ||
        register_metrics(c, metrics, err) || create_group_consumer(c, metrics, err) ||
        create_dlq_producer(c, metrics, err))
        goto fail;
    return c;
fail:
    fp_consumer_free(c);
    return NULL;
}

/* The topic of a message. */
static const char *topic_of(const rd_kafka_message_t *m)
{
    return rd_kafka_topic_name(m->rkt);
}

/* Drops, from every batch, the messages of the partition of topic after offset: they
 * will be read again once the partition resumes, so none of their offsets may be stored. */
static void drop_later_messages(fp_consumer *c, const char *topic, int32_t partition, int64_t offset)
{
    for (int k = 0; k < c->nb; k++) {
        batch *b = &c->b[k];
        for (size_t i = 0; i < b->n; i++) {
            if (b->msgs[i] && b->msgs[i]->partition == partition && b->msgs[i]->offset > offset &&
                strcmp(topic_of(b->msgs[i]), topic) == 0) {
                rd_kafka_message_destroy(b->msgs[i]);
                b->msgs[i] = NULL;
            }
        }
    }
}

/* Pauses the partition of letter l of batch b at its message, whose dead letter failed
 * with e: the message moves from the batch to fp_letters, retried in the background. */
static void block_partition(fp_consumer *c, batch *b, const letter *l, rd_kafka_resp_err_t e)
{
    rd_kafka_message_t *m = b->msgs[l->msg];
    if (fp_letters_block(c->letters, m, &l->why, l->generation, e)) {   /* no entry to wait in: read the partition again from m */
        rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(at, topic_of(m), m->partition)->offset = m->offset;
        rd_kafka_error_destroy(rd_kafka_seek_partitions(c->rk, at, 5000));
        rd_kafka_topic_partition_list_destroy(at);
        fp_log_error("out of memory recording a failed dead letter; the partition is read again from it",
                     FP_LINT("partition", m->partition), FP_LINT("offset", m->offset));
        drop_later_messages(c, topic_of(m), m->partition, m->offset - 1);
        return;
    }
    b->msgs[l->msg] = NULL;
    drop_later_messages(c, topic_of(m), m->partition, m->offset);
}

/* Waits until the broker answered for each of the batch's dead letters (bounded by
 * the producer's message timeout). */
static void wait_letters(fp_consumer *c, const batch *b)
{
    for (size_t i = 0; i < b->nletters; i++)
        fp_letters_wait(c->letters, &b->letters[i].d);
}

/* Settles the batch's dead letters before its offsets are stored: each acknowledged
 * one is counted; a failed one pauses its partition at it (and keeps the offsets of
 * that partition before it). */
static void settle_letters(fp_consumer *c, batch *b)
{
    for (size_t i = 0; i < b->nletters; i++) {
        const letter *l = &b->letters[i];
        const rd_kafka_message_t *m = b->msgs[l->msg];
        if (!m)   /* its partition waits at an earlier message: read again later */
            continue;
        if (!l->d.err) {
            fp_letters_note(c->letters, m, &l->why);
            continue;
        }
        block_partition(c, b, l, l->d.err);
    }
}

/* fp_letters' hook once the letter a partition waited at was written: stores the next
 * offset and seeks there (the messages after it were dropped from the batches). */
static void on_letter_written(void *opaque, const rd_kafka_message_t *m)
{
    fp_consumer *c = opaque;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic_of(m), m->partition)->offset = m->offset + 1;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, l);
    if (e)
        fp_log_warn("storing the offset after a dead letter failed", FP_LSTR("error", rd_kafka_err2str(e)));
    rd_kafka_error_t *se = rd_kafka_seek_partitions(c->rk, l, 5000);
    if (se) {
        fp_log_warn("seeking past a dead letter failed", FP_LSTR("error", rd_kafka_error_string(se)));
        rd_kafka_error_destroy(se);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Turns one event into a row appended to text (NUL-terminated). Returns 0; FP_EINVAL
 * with *why for a dead letter (text unchanged); FP_ENOMEM (retry). */
static int event_to_row(pipeline *p, const rd_kafka_message_t *m, fp_event *ev, fp_buf *text, fp_triage *why)
{
    int rc = fp_triage_event(p->form, m->payload, m->len, ev, why);
    if (rc)
        return rc;
    if (ev->generation > p->form->generation) {
        /* The form changed under us (the mounted ConfigMap is updated in place). */
        fp_error err = {0};
        fp_form *newer = fp_form_load(p->path, &err);
        if (newer && newer->generation >= ev->generation && strcmp(newer->ns, p->form->ns) == 0 &&
            strcmp(newer->name, p->form->name) == 0) {
            fp_log_info("form definition reloaded", FP_LSTR("namespace", newer->ns), FP_LSTR("pipeline", newer->name),
                        FP_LINT("generation", newer->generation));
            fp_form_free(p->form);
            p->form = newer;
        } else {
            fp_form_free(newer);
        }
    }
    return fp_triage_row(p->form, ev, text, why);
}

/* True when ev was accepted under a form generation this consumer has not loaded yet
 * and carries a field its form lacks: the updated ConfigMap has not reached the pod. */
static int form_behind(const pipeline *p, const fp_event *ev, int rc, const fp_triage *why)
{
    return rc == FP_EINVAL && why->reason == FP_DEADLETTER_UNKNOWN_FIELD && ev->generation > p->form->generation &&
           ev->generation > p->form_given_up;
}

/* event_to_row, retried with backoff while memory is short or while the form the event
 * was accepted under has not arrived: a valid event is never dead-lettered for our own
 * trouble or for a form change. The form wait is bounded per batch (form_wait_ms in
 * all, well under Kafka's max.poll.interval.ms), and a generation waited for in vain is
 * not waited for again. FP_ETIMEOUT when shutdown cut the retries. */
static int event_to_row_retrying(fp_consumer *c, pipeline *p, const rd_kafka_message_t *m, fp_event *ev,
                                 fp_buf *text, fp_triage *why)
{
    long backoff = c->cfg.backoff_initial_ms;
    int rc, logged = 0;
    while ((rc = event_to_row(p, m, ev, text, why)) == FP_ENOMEM || form_behind(p, ev, rc, why)) {
        if (rc != FP_ENOMEM && c->form_waited_ms >= c->cfg.form_wait_ms) {
            p->form_given_up = ev->generation;
            fp_log_warn("the form of a newer generation did not arrive; its events are dead letters",
                        FP_LINT("event_generation", ev->generation), FP_LINT("form_generation", p->form->generation),
                        FP_LSTR("pipeline", p->form->name));
            break;
        }
        if (rc == FP_ENOMEM)
            fp_log_warn("out of memory reading an event; retrying", FP_LINT("partition", m->partition),
                        FP_LINT("offset", m->offset), FP_LINT("backoff_ms", backoff));
        else if (!logged++)
            fp_log_warn("event of a newer form generation; waiting for the updated form", FP_LINT("partition", m->partition),
                        FP_LINT("offset", m->offset), FP_LINT("event_generation", ev->generation),
                        FP_LINT("form_generation", p->form->generation), FP_LINT("wait_ms", c->cfg.form_wait_ms),
                        FP_LSTR("pipeline", p->form->name));
        fp_event_clear(ev);
        if (fp_shutdown_sleep(backoff))
            return FP_ETIMEOUT;
        if (rc != FP_ENOMEM)
            c->form_waited_ms += backoff;
        backoff = next_backoff(c, backoff);
    }
    return rc;
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

/* Inserts the batch's rows (each pipeline's run with its own script run) and WAITs once
 * on its lane until all succeed, pausing the partitions while Redis is unavailable.
 * Returns 0, or FP_ETIMEOUT when shutdown cut the retries short. */
static int store_runs(fp_consumer *c, const batch *b)
{
    long backoff = c->cfg.backoff_initial_ms;
    long long deadline = 0;
    for (;;) {
        fp_error err = {0};
        long long inserted = 0, acked = 0;
        double t0 = fp_clock_mono_s();
        int rc = 0;
        for (size_t r = 0; !rc && r < b->nruns; r++) {
            long long n = 0;
            const run *u = &b->runs[r];
            rc = fp_rowstore_insert(u->p->buffer[b->lane], b->grouped + u->at, u->n, &n, &err);
            inserted += n;
        }
        if (!rc && c->cfg.min_replicas_ack > 0)   /* WAIT covers every write before it on the connection */
            rc = fp_rowstore_wait(b->runs[0].p->buffer[b->lane], c->cfg.min_replicas_ack, c->cfg.wait_timeout_ms,
                                  &acked, &err);
        if (!rc) {
            note_stored(c, b->lane, b->nrows, inserted, fp_clock_mono_s() - t0);
            return 0;
        }
        fp_series_inc(c->m_redis_errors);
        atomic_store(&c->redis_ok, 0);
        set_paused(c, 1);
        fp_log_warn("redis write failed; retrying", FP_LSTR("error", err.msg), FP_LINT("backoff_ms", backoff));
        if (fp_shutdown_requested()) {
            if (!deadline)
                deadline = fp_clock_mono_ms() + c->cfg.shutdown_grace_ms;
            if (fp_clock_mono_ms() >= deadline)
                return FP_ETIMEOUT;
        }
        /* Serve the group (rebalances, heartbeats) while we wait; partitions are paused. */
        long long until = fp_clock_mono_ms() + backoff;
        while (fp_clock_mono_ms() < until) {
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
        backoff = next_backoff(c, backoff);
    }
}

/* Stores offset+1 of every message of the batch (done only once it is in Redis and
 * its dead letters are written), except the dropped ones (NULL: read again later). */
static void store_offsets(fp_consumer *c, const batch *b)
{
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)b->n);
    for (size_t i = 0; i < b->n; i++) {
        const rd_kafka_message_t *m = b->msgs[i];
        if (!m)
            continue;
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(offs, rd_kafka_topic_name(m->rkt), m->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(offs, rd_kafka_topic_name(m->rkt), m->partition);
        if (m->offset + 1 > p->offset)
            p->offset = m->offset + 1;
    }
    rd_kafka_resp_err_t e = offs->cnt ? rd_kafka_offsets_store(c->rk, offs) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e && e != RD_KAFKA_RESP_ERR__STATE)   /* __STATE: partition revoked meanwhile */
        fp_log_warn("storing offsets failed", FP_LSTR("error", rd_kafka_err2str(e)));
    rd_kafka_topic_partition_list_destroy(offs);
}

/* Groups the batch's rows by pipeline into runs (grouped[]), each run in the order
 * the rows came. */
static void group_rows(batch *b)
{
    size_t at = 0;
    b->nruns = 0;
    for (size_t i = 0; i < b->nrows; i++) {
        pipeline *p = b->row_pipe[i];
        if (!p)   /* already in an earlier run */
            continue;
        run *u = &b->runs[b->nruns++];
        *u = (run){.p = p, .at = at};
        for (size_t j = i; j < b->nrows; j++) {
            if (b->row_pipe[j] == p) {
                b->grouped[at++] = b->rows[j];
                b->row_pipe[j] = NULL;
            }
        }
        u->n = at - u->at;
    }
}

/* Turns the batch's events into rows; the ones that can't be rows are produced to the
 * dead-letter topic now, without waiting (complete_batch settles them before the
 * offsets move). Each parsed event is freed as soon as its row is built: the allocator
 * then reuses the same few blocks for every event. FP_ETIMEOUT when shutdown cut an
 * out-of-memory retry short. */
static int prepare_batch(fp_consumer *c, batch *b)
{
    c->form_waited_ms = 0;
    for (size_t i = 0; i < b->n; i++) {
        const rd_kafka_message_t *m = b->msgs[i];
        pipeline *p = find_pipeline(c, topic_of(m));   /* collect kept only our pipelines' messages */
        letter *l = &b->letters[b->nletters];
        size_t at = b->text.len;
        int rc = event_to_row_retrying(c, p, m, &b->events[i], &b->text, &l->why);
        fp_event_clear(&b->events[i]);   /* id and time_ms stay in the struct */
        if (rc == FP_EINVAL) {
            l->msg = i;
            l->generation = p->form->generation;
            fp_letters_produce(c->letters, m, &l->why, l->generation, &l->d);
            b->nletters++;
            continue;
        }
        if (rc)
            return rc;
        b->row_at[b->nrows] = at;
        b->rows[b->nrows] = (fp_rowstore_row){b->events[i].id, b->events[i].time_ms, NULL};
        b->row_pipe[b->nrows] = p;
        b->nrows++;
    }
    for (size_t i = 0; i < b->nrows; i++)   /* text has stopped moving */
        b->rows[i].row = b->text.data + b->row_at[i];
    group_rows(b);
    return 0;
}

/* Sends the batch's inserts (one per run) and one WAIT on its lane without waiting for
 * the answers. Runs not sent (a failure) are stored synchronously by complete_batch. */
static void start_batch(fp_consumer *c, batch *b)
{
    b->sent_at = fp_clock_mono_s();
    for (size_t r = 0; r < b->nruns; r++) {
        fp_error err = {0};
        const run *u = &b->runs[r];
        int last = r + 1 == b->nruns;
        if (fp_rowstore_insert_start(u->p->buffer[b->lane], b->grouped + u->at, u->n, last ? c->cfg.min_replicas_ack : 0,
                                     c->cfg.wait_timeout_ms, &err)) {
            fp_log_warn("redis send failed; the batch will be retried", FP_LSTR("error", err.msg));
            return;
        }
        b->started++;
    }
}

/* Makes sure the batch is in Redis and confirmed (finishing the pipelined inserts, or
 * retrying synchronously on its lane) and its dead letters answered, then stores its
 * offsets and empties it. */
static int complete_batch(fp_consumer *c, batch *b)
{
    int rc = 0, ok = b->started == b->nruns;
    long long inserted = 0;
    fp_error first = {0};
    for (size_t r = 0; r < b->started; r++) {   /* every started run is finished, in order */
        fp_error err = {0};
        long long n, acked;
        if (fp_rowstore_insert_finish(b->runs[r].p->buffer[b->lane], &n, &acked, &err) == 0) {
            inserted += n;
        } else if (ok) {
            ok = 0;
            first = err;
        }
    }
    if (b->nruns && ok) {
        note_stored(c, b->lane, b->nrows, inserted, fp_clock_mono_s() - b->sent_at);
    } else if (b->nruns) {
        if (b->started) {
            fp_series_inc(c->m_redis_errors);
            fp_log_warn("redis batch failed; retrying", FP_LSTR("error", first.msg));
        }
        rc = store_runs(c, b);
    }
    wait_letters(c, b);   /* their opaques live in the batch */
    if (rc == 0) {
        settle_letters(c, b);
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

/* Polls up to batch_max messages, for at most batch_wait after the first one. A
 * message of a partition waiting at a dead letter (fetched before the pause) is
 * dropped: the partition is read again from there when it resumes. */
static void collect(fp_consumer *c, batch *b)
{
    long long first = 0;
    while ((int)b->n < c->cfg.batch_max) {
        long long left = first ? first + c->cfg.batch_wait_ms - fp_clock_mono_ms() : 100;
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
        /* A partition waiting at a dead letter, or a pipeline removed since. */
        if (fp_letters_waiting_at(c->letters, topic_of(m), m->partition) || !find_pipeline(c, topic_of(m))) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!first)
            first = fp_clock_mono_ms();
        b->msgs[b->n++] = m;
        fp_series_inc(c->m_consumed);
    }
}

/* Rescans the forms directory when due; when anything changed, finishes the queued
 * batches (they point into the pipeline table), rebuilds the table and subscribes to
 * its topics. A failure is logged and tried again at the next scan. Returns
 * complete_queued's code. */
static int rescan(fp_consumer *c)
{
    fp_error err = {0};
    if (!c->dir || fp_clock_mono_ms() < c->next_scan_ms)
        return 0;
    c->next_scan_ms = fp_clock_mono_ms() + c->cfg.rescan_interval_ms;
    int changed = fp_formdir_scan(c->dir, &err);
    if (changed < 0)
        fp_log_warn("scanning the forms directory failed", FP_LSTR("dir", c->cfg.forms_dir), FP_LSTR("error", err.msg));
    if (changed <= 0 && !c->dir_dirty)
        return 0;
    int rc = complete_queued(c, 0);
    if (rc)
        return rc;
    c->dir_dirty = load_dir(c) || subscribe_pipelines(c);
    if (c->dir_dirty)
        fp_log_warn("applying the forms directory failed; trying again at the next scan");
    return 0;
}

int fp_consumer_run(fp_consumer *c)
{
    if (subscribe_pipelines(c))
        return FP_EIO;
    c->next_scan_ms = fp_clock_mono_ms() + c->cfg.rescan_interval_ms;
    if (c->dir)
        fp_log_info("consuming", FP_LSTR("forms_dir", c->cfg.forms_dir), FP_LSTR("group", c->group),
                    FP_LINT("pipelines", (long long)c->npipes));
    else
        fp_log_info("consuming", FP_LSTR("topic", c->pipes[0]->topic), FP_LSTR("group", c->group),
                    FP_LSTR("dead_letter_topic", c->pipes[0]->dlq_topic), FP_LSTR("previous_group", c->pipes[0]->previous_group),
                    FP_LINT("form_generation", c->pipes[0]->form->generation));
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
    while (!fp_shutdown_requested() && rc == 0 && !(rc = rescan(c))) {
        batch *cur = &c->b[(c->head + c->queued) % c->nb];
        collect(c, cur);
        if (!cur->n) {   /* nothing new: finish what was sent */
            rc = complete_queued(c, 0);
        } else if (!(rc = prepare_batch(c, cur)) && !(rc = complete_queued(c, c->lanes - 1))) {
            cur->lane = (int)(c->queued_total++ % (unsigned long)c->lanes);
            if (fp_clock_mono_ms() >= c->next_trim_ms && atomic_load(&c->redis_ok)) {
                trim_dedup_window(c, cur->lane);   /* the lane is free until cur starts */
                c->next_trim_ms = fp_clock_mono_ms() + TRIM_INTERVAL_MS;
            }
            c->queued++;
            if (cur->nruns)
                start_batch(c, cur);   /* when sending fails, cur is stored synchronously in its turn */
        }
        if (fp_letters_any_waiting(c->letters))
            fp_letters_tick(c->letters, on_letter_written, c);
        if (fp_clock_mono_ms() >= c->next_lag_ms) {
            fp_group_publish_lag(c->kgroup);
            c->next_lag_ms = fp_clock_mono_ms() + c->cfg.lag_interval_ms;
        }
    }
    if (rc == 0)
        complete_queued(c, 0);
    atomic_store(&c->running, 0);
    fp_group_close(c->kgroup);
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
    /* The producer first: its last delivery reports write into batches. */
    fp_letters_free(c->letters);
    for (int i = 0; c->b && i < c->nb; i++)
        batch_free(&c->b[i]);
    free(c->b);
    fp_group_free(c->kgroup);
    for (size_t i = 0; i < c->npipes; i++)
        pipeline_free(c, c->pipes[i]);
    free(c->pipes);
    fp_formdir_free(c->dir);
    for (int i = 0; i < c->lanes; i++)
        fp_redis_free(c->redis[i]);
    free(c);
}
