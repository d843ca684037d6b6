/* kind.h — the contract between formpipe-task's runner and one task kind (webhook;
 * email and moderate later).
 *
 * The runner owns everything Kafka: it reads the task's source topic in the task's
 * consumer group, keeps order per key (an event starts only after every earlier event
 * of the same Kafka key in its partition has finished), bounds the events in flight,
 * retries with backoff, dead-letters an event after its last attempt or at once on a
 * permanent failure, and commits an offset only once every event up to it is done or
 * dead-lettered (at least once). A kind makes one attempt at a time for a given event,
 * asynchronously, and is only ever called from the runner's thread. */
#ifndef FP_TASK_KIND_H
#define FP_TASK_KIND_H

#include <stddef.h>
#include <stdint.h>

/* What one attempt came to. */
typedef enum fp_task_verdict {
    FP_TASK_DONE,     /* delivered: never attempted again */
    FP_TASK_RETRY,    /* transient failure: attempted again after a backoff (no sooner
                         than retry_after_ms) unless that was the last attempt */
    FP_TASK_REJECT,   /* permanent failure: dead-lettered now, with the detail */
} fp_task_verdict;

/* One event as the runner hands it to a kind. Every pointer stays valid and unchanged
 * until the kind has reported the attempt. */
typedef struct fp_task_event {
    const char *id;             /* submission id (the CloudEvent's id), NUL-terminated */
    const void *key;            /* Kafka key, may be NULL */
    size_t key_len;
    const char *value;          /* the CloudEvent JSON as read, NUL-terminated */
    size_t value_len;
    const char *type;           /* the CloudEvent's type, NUL-terminated */
    const char *source;         /* the CloudEvent's source, NUL-terminated */
    const char *time;           /* the CloudEvent's time, NUL-terminated, may be "" */
    int32_t partition;
    int64_t offset;
    int attempt;                /* 1 for the first attempt */
} fp_task_event;

/* The result of one attempt. */
typedef struct fp_task_outcome {
    fp_task_verdict verdict;
    long long retry_after_ms;   /* RETRY: the receiver's wish (Retry-After); 0 = backoff only */
    char detail[256];           /* RETRY/REJECT: for a person, e.g. "HTTP 404 from
                                   https://hooks.example.com/x"; becomes the dead letter's
                                   message. Never holds secrets. */
} fp_task_outcome;

/* The kind calls this once per finished attempt, from inside poll(). */
typedef void fp_task_report_fn(void *runner, const fp_task_event *ev, const fp_task_outcome *o);

/* A kind's operations. `self` is the kind's own state. */
typedef struct fp_task_kind {
    const char *name;           /* "webhook" */
    void *self;
    /* Begins one attempt of ev. 0, or negative when it cannot begin now (out of
     * memory, a connection limit): the runner then reports that attempt as a RETRY
     * itself. */
    int (*start)(void *self, const fp_task_event *ev);
    /* Makes progress for at most timeout_ms, returning early once an attempt finished;
     * reports every finished attempt through report(runner, ...). Returns the number
     * of attempts still running. */
    int (*poll)(void *self, long timeout_ms, fp_task_report_fn *report, void *runner);
    /* For /readyz; may be NULL (always ready). Thread-safe. */
    int (*ready)(void *self, char *why, size_t whysz);
    /* Abandons running attempts (never reported) and frees self. */
    void (*free)(void *self);
} fp_task_kind;

#endif
