/* letters.h — writing dead letters, as every binary that dead-letters does it: an
 * idempotent acks=all producer whose letters report back (within the dead-letter
 * timeout) so that the owner moves an offset past an event only once its letter was
 * acknowledged; and partitions waiting at a letter that could not be written: such a
 * partition is paused at its message, the letter is retried in the background with
 * backoff, and once written the owner is told and the partition resumes.
 * Metrics (<prefix> given by the owner): <prefix>_dead_lettered_total{reason},
 * <prefix>_dead_letter_failures_total, <prefix>_dead_letter_blocked{partition}. */
#ifndef FP_LETTERS_H
#define FP_LETTERS_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "deadletter.h"
#include "error.h"
#include "group.h"
#include "metrics.h"

/* One letter's delivery as the broker reports it; must stay at its address until done. */
typedef struct fp_letter {
    int done;
    rd_kafka_resp_err_t err;
} fp_letter;

/* Why an event is dead-lettered: the code and a message for a person. */
typedef struct fp_letter_why {
    fp_deadletter_reason reason;
    char message[256];
} fp_letter_why;

typedef struct fp_letters_config {
    const char *kafka_bootstrap;
    const char *kafka_config_file;      /* may be NULL */
    const fp_strlist *kafka_properties; /* may be NULL */
    const char *topic;                  /* the dead-letter topic (unless route is set) */
    /* A group over several pipelines' topics: the dead-letter topic of a message from
     * source_topic, NULL when none is known (the letter then fails and is retried). */
    const char *(*route)(void *opaque, const char *source_topic);
    void *route_opaque;
    long timeout_ms;                    /* a letter not acknowledged by then failed */
    long backoff_initial_ms;            /* retries of a letter that failed */
    long backoff_max_ms;
    const char *metrics_prefix;         /* "formpipe_consumer" */
} fp_letters_config;

typedef struct fp_letters fp_letters;

/* Called from fp_letters_tick once the letter of a waiting partition was written, before
 * the partition resumes: the owner moves its offset past m. */
typedef void fp_letters_written_fn(void *opaque, const rd_kafka_message_t *m);

/* Creates the producer and registers the metrics; group (borrowed) is the consumer
 * whose partitions wait. NULL with *err on a bad configuration. */
fp_letters *fp_letters_new(const fp_letters_config *cfg, fp_group *group, fp_metrics *m, fp_error *err);

/* The dead-letter headers of m (now, its topic, partition and offset, why, generation),
 * for a writer that produces the letter itself (the moderate task, inside its
 * transaction). NULL on ENOMEM; the caller owns them until produced. */
rd_kafka_headers_t *fp_letters_headers(const rd_kafka_message_t *m, const fp_letter_why *why, long long generation);

/* Produces m's dead letter (its key and payload, with the dead-letter headers) without
 * waiting; *d is filled when the broker answers (or at once when the produce fails). */
void fp_letters_produce(fp_letters *l, const rd_kafka_message_t *m, const fp_letter_why *why, long long generation,
                        fp_letter *d);

/* Serves delivery reports for at most timeout_ms. */
void fp_letters_poll(fp_letters *l, int timeout_ms);

/* Waits until *d is done (bounded by the dead-letter timeout). */
void fp_letters_wait(fp_letters *l, const fp_letter *d);

/* Counts and logs a letter the broker acknowledged. */
void fp_letters_note(fp_letters *l, const rd_kafka_message_t *m, const fp_letter_why *why);

/* Pauses m's partition at m, whose letter failed with e, taking ownership of m on 0;
 * the letter is retried by fp_letters_tick. FP_ENOMEM: nothing recorded (m not taken). */
int fp_letters_block(fp_letters *l, rd_kafka_message_t *m, const fp_letter_why *why, long long generation,
                     rd_kafka_resp_err_t e);

/* 1 when a partition we own waits at a letter (of any topic). */
int fp_letters_waiting(const fp_letters *l, int32_t partition);

/* 1 when the partition of topic waits at a letter. */
int fp_letters_waiting_at(const fp_letters *l, const char *topic, int32_t partition);

/* 1 when any partition waits. */
int fp_letters_any_waiting(const fp_letters *l);

/* Pauses again every waiting partition (after fp_group_set_paused(g, 0)). */
void fp_letters_repause(fp_letters *l);

/* Forgets the waits of revoked partitions: the next owner starts from the committed
 * offset, which is not past the waiting message, and meets it again. */
void fp_letters_forget(fp_letters *l, const rd_kafka_topic_partition_list_t *parts);

/* One step of the background work for waiting partitions: read the answers, retry the
 * due letters (renewing a producer that failed for good), call written() and resume for
 * the written ones, drop revoked ones. Never waits. */
void fp_letters_tick(fp_letters *l, fp_letters_written_fn *written, void *opaque);

/* Flushes (bounded), abandons what is left and frees; every fp_letter is done afterwards. */
void fp_letters_free(fp_letters *l);   /* NULL is fine */

#endif
