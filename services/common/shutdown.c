/* shutdown.c — see shutdown.h. */
#include "shutdown.h"
#include "error.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static atomic_int requested;
static atomic_int by_signal;
static int event_fd = -1;

void fp_shutdown_request(void)
{
    atomic_store(&requested, 1);
    if (event_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(event_fd, &one, sizeof one);
        (void)n;   /* a full counter is still readable: nothing to do */
    }
}

static void on_signal(int sig)
{
    int saved = errno;
    atomic_store(&by_signal, sig);
    fp_shutdown_request();
    errno = saved;
}

int fp_shutdown_install(void)
{
    struct sigaction sa;
    if (event_fd < 0 && (event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return FP_EIO;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL))
        return FP_EIO;
    /* A peer closing a socket must be an error return, not a dead process. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

int fp_shutdown_requested(void) { return atomic_load(&requested); }

int fp_shutdown_fd(void) { return event_fd; }

int fp_shutdown_signal(void) { return atomic_load(&by_signal); }

int fp_shutdown_sleep(long timeout_ms)
{
    if (fp_shutdown_requested())
        return 1;
    if (event_fd < 0) {
        struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR && !fp_shutdown_requested())
            ;
        return fp_shutdown_requested();
    }
    struct pollfd p = {.fd = event_fd, .events = POLLIN};
    int rc;
    do {
        rc = poll(&p, 1, (int)timeout_ms);
    } while (rc < 0 && errno == EINTR && !fp_shutdown_requested());
    return fp_shutdown_requested();
}
