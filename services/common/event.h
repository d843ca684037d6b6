/* event.h — the submission event on Kafka: CloudEvents 1.0, structured JSON mode.
 * {"specversion":"1.0","id":...,"source":"/forms/<ns>/<name>",
 *  "type":"io.formpipe.submission.v1","time":"2026-11-23T14:05:27.123Z",
 *  "datacontenttype":"application/json","formgeneration":3,"data":{...}} */
#ifndef FP_EVENT_H
#define FP_EVENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

#define FP_EVENT_TYPE "io.formpipe.submission.v1"
#define FP_EVENT_MAX_ID 128

typedef struct fp_event {
    char id[FP_EVENT_MAX_ID + 1];
    char source[256];
    char time[40];          /* as sent, RFC 3339 */
    long long time_ms;      /* milliseconds since the epoch */
    long long generation;   /* formgeneration; 0 when absent */
    cJSON *doc;             /* the parsed event; owns data */
    const cJSON *data;      /* the submission's fields, an object inside doc */
} fp_event;

/* Parses and checks one event (specversion, type, id, time, data object). On failure
 * returns FP_EINVAL with *err naming what is wrong: the reason a dead-letter carries. */
int fp_event_parse(const char *payload, size_t len, fp_event *ev, fp_error *err);

void fp_event_clear(fp_event *ev);   /* frees what parse allocated */

/* Encodes an event; takes no ownership of data. Returns a string the caller frees,
 * or NULL on ENOMEM. */
char *fp_event_encode(const char *id, const char *ns, const char *name, long long time_ms,
                      long long generation, const cJSON *data);

/* Parses RFC 3339 ("2026-11-23T14:05:27.123Z", "...+05:30") into ms since the epoch. */
int fp_event_parse_time(const char *s, long long *ms);

/* Formats ms since the epoch as "2026-11-23T14:05:27.123Z" (out: at least 25 bytes). */
void fp_event_format_time(long long ms, char *out, size_t outsz);

#endif
