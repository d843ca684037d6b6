/* moderate_event.h — what the moderate kind does to one event: check the chosen text
 * fields against the word list (each field decoded, folded once, and folded again with
 * '1' as l when it holds a '1'), and write the enriched CloudEvent: the event's members
 * as they were, type io.formpipe.submission.moderated.v1, plus the extension member
 * "moderation": {"flagged":bool,"score":n,"fields":[names],"terms":[terms as listed]}
 * (an earlier "moderation" member is replaced). Pure. */
#ifndef FP_MODERATE_EVENT_H
#define FP_MODERATE_EVENT_H

#include "buf.h"
#include "config.h"
#include "event.h"
#include "moderate_words.h"

#define FP_MODEVENT_MAX_FIELDS 32   /* flagged fields one result names */

typedef struct fp_modevent_config {
    const fp_strlist *fields;   /* text fields checked; NULL or empty: every string member of data */
    long threshold;             /* score >= threshold: flagged (1..) */
} fp_modevent_config;

/* One event's moderation. fields point into the parsed event's names. */
typedef struct fp_moderation {
    int flagged;
    size_t nfields;
    const char *fields[FP_MODEVENT_MAX_FIELDS];
    fp_words_result words;   /* score and the distinct terms */
} fp_moderation;

/* Buffers reused from event to event (zero-initialise; fp_modevent_scratch_free). */
typedef struct fp_modevent_scratch {
    char *text, *folded;
    size_t cap;
} fp_modevent_scratch;

/* Checks ev's fields (ev parsed from its payload by fp_event_parse, payload alive).
 * 0, or FP_ENOMEM. */
int fp_modevent_check(const fp_words *w, const fp_modevent_config *c, const fp_event *ev, fp_modevent_scratch *s,
                      fp_moderation *m);

/* Appends the enriched event for payload[0..len) (a valid event) to out. 0, or
 * FP_ENOMEM / FP_ELIMIT (out's cap), or FP_EINVAL when payload is no JSON object. */
int fp_modevent_encode(const char *payload, size_t len, const fp_moderation *m, const fp_words *w, fp_buf *out);

void fp_modevent_scratch_free(fp_modevent_scratch *s);

#endif
