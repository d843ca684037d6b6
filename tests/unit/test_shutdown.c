/* Unit tests for services/common/shutdown: signals reach the flag and the eventfd. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <poll.h>
#include <signal.h>
#include <time.h>

#include "shutdown.h"

static int fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

ParameterizedTestParameters(shutdown, signal_sets_flag_and_fd)
{
    static int sigs[] = {SIGTERM, SIGINT};
    return cr_make_param_array(int, sigs, 2);
}

ParameterizedTest(int *sig, shutdown, signal_sets_flag_and_fd)
{
    cr_assert_eq(fp_shutdown_install(), 0);
    cr_assert_not(fp_shutdown_requested());
    cr_assert_geq(fp_shutdown_fd(), 0);
    cr_assert_not(fd_readable(fp_shutdown_fd()), "fd quiet before the signal");
    raise(*sig);
    cr_assert(fp_shutdown_requested());
    cr_assert_eq(fp_shutdown_signal(), *sig);
    cr_assert(fd_readable(fp_shutdown_fd()), "fd readable after the signal");
    cr_assert(fd_readable(fp_shutdown_fd()), "and stays readable for every loop");
}

Test(shutdown, sleep_returns_early_on_request)
{
    struct timespec a, b;
    cr_assert_eq(fp_shutdown_install(), 0);
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert_eq(fp_shutdown_sleep(30), 0, "no request: the full sleep passes");
    fp_shutdown_request();
    cr_assert_eq(fp_shutdown_sleep(60000), 1);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double elapsed = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert_lt(elapsed, 5.0, "a requested shutdown must not wait out the timeout");
}
