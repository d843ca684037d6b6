/* clock.h — the two clocks every binary reads: monotonic milliseconds for timeouts,
 * backoffs and rates (never moved by wall-clock jumps), and wall-clock milliseconds
 * for timestamps that leave the process (event times, Redis scores, status). */
#ifndef FP_CLOCK_H
#define FP_CLOCK_H

/* Milliseconds since an arbitrary point (CLOCK_MONOTONIC). */
long long fp_clock_mono_ms(void);

/* Seconds since an arbitrary point (CLOCK_MONOTONIC), with sub-millisecond precision. */
double fp_clock_mono_s(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
long long fp_clock_wall_ms(void);

#endif
