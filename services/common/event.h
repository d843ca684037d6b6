/* event.h — the submission event on Kafka: CloudEvents 1.0, structured JSON mode.
 * {"specversion":"1.0","id":...,"source":"/forms/<ns>/<name>",
 *  "type":"io.formpipe.submission.v1","time":"2026-11-23T14:05:27.123Z",
 *  "datacontenttype":"application/json","formgeneration":3,"data":{...}} */
#ifndef FP_EVENT_H
#define FP_EVENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"
#include "jscan.h"

#define FP_EVENT_TYPE "io.formpipe.submission.v1"
/* A submission as the moderate task writes it to its output stream: data unchanged,
 * plus the extension member "moderation". fp_event_parse takes both types. */
#define FP_EVENT_TYPE_MODERATED "io.formpipe.submission.moderated.v1"
#define FP_EVENT_MAX_ID 128
#define FP_EVENT_MAX_FIELDS 1000   /* members of data */
#define FP_EVENT_MAX_BYTES (64 * 1024 * 1024)   /* an encoded event (bodies: at most 16 MiB) */

/* One member of the event's data object. */
typedef struct fp_event_field {
    const char *name;        /* decoded, NUL-terminated; owned by the event */
    fp_jscan_token value;    /* as written: points into the payload */
} fp_event_field;

typedef struct fp_event {
    char id[FP_EVENT_MAX_ID + 1];
    const char *type;       /* FP_EVENT_TYPE or FP_EVENT_TYPE_MODERATED (static) */
    char source[256];
    char time[40];          /* as sent, RFC 3339 */
    long long time_ms;      /* milliseconds since the epoch */
    long long generation;   /* formgeneration; 0 when absent */
    fp_event_field *fields; /* data's members in the order written */
    size_t nfields, fields_cap;
    char *names;            /* the decoded member names */
} fp_event;

/* Parses and checks one event (strict JSON; specversion, type, id, source, time, data
 * object) without building a tree: field values point into payload, which must outlive
 * their use. On failure returns FP_EINVAL (FP_ENOMEM) with *err naming what is wrong:
 * the reason a dead-letter carries. Call fp_event_clear afterwards either way. */
int fp_event_parse(const char *payload, size_t len, fp_event *ev, fp_error *err);

/* 1 when the event's source is the pipeline ns/name ("/forms/<ns>/<name>", the source
 * fp_event_encode writes), else 0. */
int fp_event_source_is(const fp_event *ev, const char *ns, const char *name);

/* Frees what parse allocated; id, source, time, time_ms and generation stay. */
void fp_event_clear(fp_event *ev);

/* Encodes an event; takes no ownership of data. Returns a string the caller frees,
 * or NULL on ENOMEM or when it would exceed FP_EVENT_MAX_BYTES. */
char *fp_event_encode(const char *id, const char *ns, const char *name, long long time_ms,
                      long long generation, const cJSON *data);

#endif
