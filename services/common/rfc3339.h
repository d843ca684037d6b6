/* rfc3339.h — RFC 3339 timestamps ("2026-11-23T14:05:27.123Z"), the one format every
 * formpipe binary writes: event times, log lines, Kubernetes conditions and Leases. */
#ifndef FP_RFC3339_H
#define FP_RFC3339_H

#include <stddef.h>

/* Longest text fp_rfc3339_format writes, with its NUL (years 0000-9999). */
#define FP_RFC3339_MAX 32

/* Formats a UTC instant, secs since the epoch plus nanos (0 <= nanos < 1e9), with
 * `digits` fraction digits (0: none, "…:27Z"; 3: ms; 6: µs; 9: ns; truncated, not
 * rounded). out should hold FP_RFC3339_MAX bytes; a shorter one gets a cut text. */
void fp_rfc3339_format(long long secs, long nanos, int digits, char *out, size_t outsz);

/* Formats ms since the epoch (negative: before 1970) with 3 fraction digits. */
void fp_rfc3339_format_ms(long long ms, char *out, size_t outsz);

/* Formats the wall clock now with `digits` fraction digits. */
void fp_rfc3339_now(int digits, char *out, size_t outsz);

/* Parses "2026-11-23T14:05:27.123Z" or "...+05:30" (any fraction length, 't'/'z' too)
 * into ms since the epoch. Returns 0, or FP_EINVAL for anything else, including dates
 * that do not exist (31 Feb). */
int fp_rfc3339_parse_ms(const char *s, long long *ms);

#endif
