/* cehttp.h — a CloudEvent (structured JSON, as on Kafka) turned into the CloudEvents
 * HTTP binding's binary content mode: each context attribute becomes a "ce-<name>"
 * header (strings percent-encoded as the binding says: space, '"', '%' and anything
 * outside printable ASCII), datacontenttype becomes Content-Type, data the body. The
 * moderate kind's extension object "moderation" becomes ce-moderation holding its JSON
 * (percent-encoded like a string); any other object or array attribute is refused. */
#ifndef FP_CEHTTP_H
#define FP_CEHTTP_H

#include <stddef.h>

#include "error.h"

#define FP_CEHTTP_MAX_HEADERS_BYTES (64 * 1024)   /* all header lines together */

typedef struct fp_cehttp_binary {
    char *headers;            /* nheaders NUL-terminated lines "ce-id: 42", one after
                                 the other; owned (fp_cehttp_binary_free) */
    size_t nheaders;
    char content_type[256];   /* datacontenttype, or application/json without one */
    const char *body;         /* data as written (a JSON value): points into the event */
    size_t body_len;          /* 0 when the event has no data */
} fp_cehttp_binary;

/* Reads the event JSON event[0..len) into *out. Returns 0; FP_EINVAL with *err
 * naming the reason for JSON that is not an object, an attribute that cannot be a
 * header (an object or array value, a name other than [a-z0-9]+, a Content-Type with
 * control characters), data_base64, or headers beyond FP_CEHTTP_MAX_HEADERS_BYTES;
 * FP_ENOMEM. Call fp_cehttp_binary_free afterwards either way. */
int fp_cehttp_binary_of(const char *event, size_t len, fp_cehttp_binary *out, fp_error *err);

/* Frees the header lines; *b is empty afterwards. */
void fp_cehttp_binary_free(fp_cehttp_binary *b);

#endif
