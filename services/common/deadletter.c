/* deadletter.c — see deadletter.h. */
#include "deadletter.h"
#include "jscan.h"
#include "rfc3339.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[FP_DEADLETTER_REASONS] = {
    [FP_DEADLETTER_NOT_JSON] = "not_json",
    [FP_DEADLETTER_NOT_CLOUDEVENT] = "not_cloudevent",
    [FP_DEADLETTER_WRONG_SOURCE] = "wrong_source",
    [FP_DEADLETTER_UNKNOWN_FIELD] = "unknown_field",
    [FP_DEADLETTER_REPEATED_FIELD] = "repeated_field",
    [FP_DEADLETTER_BAD_VALUE] = "bad_value",
    [FP_DEADLETTER_TOO_LARGE] = "too_large",
    [FP_DEADLETTER_REJECTED] = "rejected",
    [FP_DEADLETTER_ATTEMPTS_EXHAUSTED] = "attempts_exhausted",
};

const char *fp_deadletter_reason_name(fp_deadletter_reason r)
{
    return (unsigned)r < FP_DEADLETTER_REASONS ? reason_names[r] : "unknown";
}

int fp_deadletter_reason_parse(const char *name, fp_deadletter_reason *out, fp_error *err)
{
    for (int r = 0; r < FP_DEADLETTER_REASONS; r++) {
        if (strcmp(name, reason_names[r]) == 0) {
            *out = (fp_deadletter_reason)r;
            return 0;
        }
    }
    return fp_error_set(err, FP_EINVAL,
                        "reason '%.64s' is not one of not_json, not_cloudevent, wrong_source, unknown_field, "
                        "repeated_field, bad_value, too_large, rejected, attempts_exhausted", name);
}

fp_deadletter_reason fp_deadletter_unparsable(const char *payload, size_t len)
{
    fp_jscan s;
    fp_jscan_token t;
    fp_jscan_init(&s, payload, len);
    int object = fp_jscan_value(&s, &t) == 0 && t.kind == FP_JSCAN_OBJECT && fp_jscan_finish(&s) == 0;
    return object ? FP_DEADLETTER_NOT_CLOUDEVENT : FP_DEADLETTER_NOT_JSON;
}

rd_kafka_headers_t *fp_deadletter_headers(const fp_deadletter *d)
{
    char when[FP_RFC3339_MAX], generation[24], partition[16], offset[24];
    fp_rfc3339_format_ms(d->time_ms, when, sizeof when);
    snprintf(generation, sizeof generation, "%lld", d->generation);
    snprintf(partition, sizeof partition, "%d", d->source_partition);
    snprintf(offset, sizeof offset, "%lld", d->source_offset);
    const char *const kv[][2] = {
        {FP_DEADLETTER_H_REASON, fp_deadletter_reason_name(d->reason)},
        {FP_DEADLETTER_H_MESSAGE, d->message},
        {FP_DEADLETTER_H_TIME, when},
        {FP_DEADLETTER_H_GENERATION, generation},
        {FP_DEADLETTER_H_SOURCE_TOPIC, d->source_topic},
        {FP_DEADLETTER_H_SOURCE_PARTITION, partition},
        {FP_DEADLETTER_H_SOURCE_OFFSET, offset},
    };
    size_t n = sizeof kv / sizeof kv[0];
    rd_kafka_headers_t *h = rd_kafka_headers_new(n);
    for (size_t i = 0; h && i < n; i++) {
        if (rd_kafka_header_add(h, kv[i][0], -1, kv[i][1], -1)) {
            rd_kafka_headers_destroy(h);
            h = NULL;
        }
    }
    return h;
}

/* Copies the last value of header name into out (NUL-terminated). 0, or FP_EINVAL
 * when it is missing or does not fit. */
static int get_text(const rd_kafka_headers_t *h, const char *name, char *out, size_t outsz, fp_error *err)
{
    const void *v = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (!h || rd_kafka_header_get_last(h, name, &v, &len) || !v)
        return fp_error_set(err, FP_EINVAL, "header %s is missing", name);
    if (len >= outsz)
        return fp_error_set(err, FP_EINVAL, "header %s is longer than %zu bytes", name, outsz - 1);
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

/* Reads header name as a non-negative decimal integer. */
static int get_integer(const rd_kafka_headers_t *h, const char *name, long long *out, fp_error *err)
{
    char text[24], *end;
    if (get_text(h, name, text, sizeof text, err))
        return FP_EINVAL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!text[0] || *end || errno || v < 0)
        return fp_error_set(err, FP_EINVAL, "header %s is not a non-negative integer", name);
    *out = v;
    return 0;
}

/* Reads header name as an RFC 3339 time. */
static int get_time(const rd_kafka_headers_t *h, const char *name, long long *ms, fp_error *err)
{
    char text[64];
    if (get_text(h, name, text, sizeof text, err))
        return FP_EINVAL;
    if (fp_rfc3339_parse_ms(text, ms)) {
        *ms = -1;
        return fp_error_set(err, FP_EINVAL, "header %s is not an RFC 3339 time", name);
    }
    return 0;
}

/* Reads header name as a reason code. */
static int get_reason(const rd_kafka_headers_t *h, const char *name, fp_deadletter_reason *r, fp_error *err)
{
    char text[64];
    return get_text(h, name, text, sizeof text, err) || fp_deadletter_reason_parse(text, r, err) ? FP_EINVAL : 0;
}

/* Reads header name as a partition number. */
static int get_partition(const rd_kafka_headers_t *h, const char *name, int *partition, fp_error *err)
{
    long long v;
    if (get_integer(h, name, &v, err))
        return FP_EINVAL;
    if (v > 0x7fffffff)
        return fp_error_set(err, FP_EINVAL, "header %s is out of range", name);
    *partition = (int)v;
    return 0;
}

int fp_deadletter_read(const rd_kafka_headers_t *h, fp_deadletter *d, fp_error *err)
{
    memset(d, 0, sizeof *d);
    d->reason = FP_DEADLETTER_REASONS;
    d->time_ms = d->generation = d->source_offset = -1;
    d->source_partition = -1;
    /* Every header is read, so *d holds whatever is there; the first failure in
     * header order is the one reported. */
    enum { N = 7 };
    fp_error e[N] = {{0}};
    int rc[N] = {
        get_reason(h, FP_DEADLETTER_H_REASON, &d->reason, &e[0]),
        get_text(h, FP_DEADLETTER_H_MESSAGE, d->message, sizeof d->message, &e[1]),
        get_time(h, FP_DEADLETTER_H_TIME, &d->time_ms, &e[2]),
        get_integer(h, FP_DEADLETTER_H_GENERATION, &d->generation, &e[3]),
        get_text(h, FP_DEADLETTER_H_SOURCE_TOPIC, d->source_topic, sizeof d->source_topic, &e[4]),
        get_partition(h, FP_DEADLETTER_H_SOURCE_PARTITION, &d->source_partition, &e[5]),
        get_integer(h, FP_DEADLETTER_H_SOURCE_OFFSET, &d->source_offset, &e[6]),
    };
    for (int i = 0; i < N; i++) {
        if (rc[i]) {
            if (err)
                *err = e[i];
            return FP_EINVAL;
        }
    }
    return 0;
}
