/* retryafter.h — the HTTP Retry-After header (RFC 9110 10.2.3): delay-seconds or an
 * HTTP-date (IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must
 * still read). */
#ifndef FP_RETRYAFTER_H
#define FP_RETRYAFTER_H

/* Longest wait fp_retry_after_parse returns (a day); the runner caps it further. */
#define FP_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

/* Reads a Retry-After value (surrounding whitespace allowed) as a wait in ms from
 * now_ms (wall clock, ms since the epoch): seconds * 1000, or the date minus now
 * (0 for a date in the past), at most FP_RETRY_AFTER_MAX_MS. Returns 0, or FP_EINVAL
 * for anything else (the header is then ignored). */
int fp_retry_after_parse(const char *value, long long now_ms, long long *wait_ms);

#endif
