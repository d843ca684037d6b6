/* shutdown.h — graceful-shutdown plumbing: SIGTERM/SIGINT set a flag and make an
 * eventfd readable, so poll/epoll loops and plain loops both notice. */
#ifndef FP_SHUTDOWN_H
#define FP_SHUTDOWN_H

/* Installs handlers for SIGTERM and SIGINT and creates the eventfd. Call once, early,
 * from the main thread. Returns 0 or FP_EIO. */
int fp_shutdown_install(void);

/* True once a shutdown was requested (by signal or fp_shutdown_request). */
int fp_shutdown_requested(void);

/* Requests shutdown from code (async-signal-safe). */
void fp_shutdown_request(void);

/* A descriptor that becomes readable (and stays readable) once shutdown is
 * requested; -1 before fp_shutdown_install. Add it to poll sets; do not read it. */
int fp_shutdown_fd(void);

/* Sleeps up to timeout_ms, waking early on shutdown. Returns 1 if shutdown was
 * requested, 0 if the time passed. For backoff loops. */
int fp_shutdown_sleep(long timeout_ms);

/* The signal that requested shutdown, or 0. */
int fp_shutdown_signal(void);

#endif
