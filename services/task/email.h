/* email.h — the email task kind: one mail per submission to the address in a form
 * field, over SMTP (libcurl multi; smtp:// = STARTTLS required, smtps:// = implicit
 * TLS; certificates verified; AUTH when a username is set), from templates
 * (mailtmpl.h) into a MIME message (mailmsg.h) whose Message-ID is derived from the
 * submission id.
 *
 * At most once in practice: a sent-record per id in the pipeline's Redis,
 * fp:{<ns>/<pipeline>}:sent:<task>:<id>, with a TTL, is looked up before sending (an
 * id that has one is DONE without a mail) and written after the server's 250 (then
 * WAITed for min_replicas_ack replicas). The window: a crash (or a lost Redis) after
 * the 250 and before the record is written sends that mail once more on redelivery,
 * with the same Message-ID.
 *
 * Verdicts: an event without a value in to_field is DONE, never sent (counted as
 * skipped); a subject value with a line break, a to address that is not one plain
 * address, or an id that cannot be a Message-ID: REJECT; SMTP 5xx: REJECT; SMTP 4xx,
 * a refused login, a connection or TLS failure, a timeout, Redis unreachable before
 * sending: RETRY. Sends are paced to rate_per_second for the whole task (a budget in
 * the pipeline's Redis that every replica takes from, budget.h): an event waiting for
 * its turn is queued inside the kind, so waiting costs no attempt. */
#ifndef FP_EMAIL_H
#define FP_EMAIL_H

#include "error.h"
#include "kind.h"
#include "metrics.h"
#include "redis.h"

typedef struct fp_email_config {
    const char *url;              /* smtp://host[:port] or smtps://host[:port] */
    const char *username;         /* NULL or "": no AUTH */
    const char *password;         /* copied, wiped on free */
    const char *ca_file;          /* PEM CA bundle to verify the server with; NULL: the system's */
    const char *from;             /* From header: "Name <a@b>" or "a@b" */
    const char *to_field;         /* form field holding the recipient */
    const char *subject, *text;   /* templates */
    const char *html;             /* template or NULL: text-only mails */
    long rate_per_second;         /* sends started per second by the whole task; 0: unpaced */
    long timeout_ms;              /* one SMTP exchange; > 0 */
    int max_connections;          /* SMTP connections at once; > 0 */
    const char *ns, *pipeline, *task;   /* the sent-record key and Message-ID domain */
    const fp_redis_config *redis; /* the pipeline's Redis (copied) */
    int min_replicas_ack;         /* WAIT after writing a sent-record; 0: none */
    long sent_ttl_s;              /* how long a sent-record is kept; > 0 */
} fp_email_config;

/* Creates the kind (nothing connects yet). m may be NULL; otherwise registers
 * formpipe_task_email_smtp_replies_total{code_class}, _skipped_total{reason}
 * (no_address, already_sent) and _sent_record_errors_total. NULL with *err for a bad
 * config (URL scheme, a template, the From value, a field name) or ENOMEM. The result
 * and its self are one allocation: kind->free(kind->self) frees both. */
fp_task_kind *fp_email_new(const fp_email_config *cfg, fp_metrics *m, fp_error *err);

/* The sent-record key of id into out: fp:{<ns>/<pipeline>}:sent:<task>:<id>. 0 or
 * FP_ELIMIT. */
int fp_email_sent_key(char *out, size_t outsz, const char *ns, const char *pipeline, const char *task, const char *id);

#endif
