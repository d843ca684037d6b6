/* formpipe-ingest's connection-level limits, on raw sockets: --max-connections (more
 * are closed at accept, and a freed slot is usable again), --max-header-bytes (a larger
 * request is dropped, the service carries on), --idle-timeout (an idle keep-alive
 * connection, a silent one and a half-sent request are all closed after it). */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testkit.h"

#define IDLE_S 2
static tk_proc ingest;
static int port;
static char *form_path;

static void setup(void)
{
    char name[64], form[512];
    tk_unique(name, sizeof name, "lim");
    snprintf(form, sizeof form, "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,"
                                "\"fields\":[{\"name\":\"name\",\"type\":\"string\"}]}", name);
    form_path = tk_write_temp(form);
    port = tk_start_ingest(&ingest, form_path, "/healthz",
                           (const char *const[]){"--threads", "2", "--max-connections", "3", "--max-header-bytes",
                                                 "1024", "--idle-timeout", "2", NULL});
}

static void teardown(void)
{
    cr_assert_eq(tk_stop(&ingest, SIGTERM, 30), 0, "clean exit on SIGTERM");
    unlink(form_path);
    free(form_path);
}

TestSuite(limits, .init = setup, .fini = teardown, .timeout = 120);

static int connect_local(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return fd;
}

static void send_text(int fd, const char *text)
{
    size_t len = strlen(text);
    /* the peer may already have closed: that shows in what is read next */
    if (send(fd, text, len, MSG_NOSIGNAL) != (ssize_t)len)
        cr_log_info("send: %s", strerror(errno));
}

/* Reads what the server sends within timeout_s. Returns the bytes read (0 when it closed
 * without a word), -1 when the connection is still open and silent at the end; *closed_at
 * is the time of the close. */
static int read_some(int fd, double timeout_s, char *out, size_t outsz, double *closed_at)
{
    double deadline = tk_now() + timeout_s;
    size_t got = 0;
    out[0] = '\0';
    while (tk_now() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, out + got, outsz - 1 - got, 0);
        if (n <= 0) {   /* closed (or reset) */
            if (closed_at)
                *closed_at = tk_now();
            return (int)got;
        }
        got += (size_t)n;
        out[got] = '\0';
        const char *head_end = strstr(out, "\r\n\r\n"), *cl = strcasestr(out, "content-length:");
        if (head_end && cl && !closed_at && got >= (size_t)(head_end + 4 - out) + strtoul(cl + 15, NULL, 10))
            return (int)got;   /* a whole answer */
    }
    return got ? (int)got : -1;
}

/* A keep-alive GET /healthz on fd; returns 1 when it was answered 200. */
static int healthz(int fd)
{
    char buf[2048];
    send_text(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    return read_some(fd, 3, buf, sizeof buf, NULL) > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0;
}

Test(limits, connections_over_the_limit_are_closed_and_a_freed_slot_is_reused)
{
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = connect_local();
        cr_assert(healthz(fds[i]), "connection %d of 3 is served", i + 1);
    }
    char buf[256];
    int extra = connect_local();   /* the kernel accepts; the service closes it unanswered */
    send_text(extra, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    double closed_at = 0;
    cr_assert_eq(read_some(extra, 3, buf, sizeof buf, &closed_at), 0, "a 4th connection is closed without an answer");
    close(extra);
    for (int i = 0; i < 3; i++)
        cr_assert(healthz(fds[i]), "the 3 open connections still work");
    close(fds[0]);
    int again = 0;
    double deadline = tk_now() + 5;
    while (!again && tk_now() < deadline) {   /* the slot comes back once the close is seen */
        int fd = connect_local();
        again = healthz(fd);
        close(fd);
        if (!again)
            usleep(50 * 1000);
    }
    cr_assert(again, "a connection is served again once one of the 3 closed");
    close(fds[1]);
    close(fds[2]);
    char *metrics = NULL;
    deadline = tk_now() + 5;
    while (tk_now() < deadline && tk_http_get(ingest.admin_port, "/metrics", &metrics) != 200) {
        free(metrics);
        metrics = NULL;
        usleep(50 * 1000);
    }
    cr_assert(metrics && strstr(metrics, "formpipe_ingest_connections_refused_total "), "refusals are counted");
    cr_assert(!strstr(metrics, "formpipe_ingest_connections_refused_total 0\n"), "refusals are counted:\n%s", metrics);
    free(metrics);
}

Test(limits, a_request_head_over_max_header_bytes_is_dropped)
{
    char req[4096], buf[2048];
    int fd = connect_local();
    snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: %0700d\r\n\r\n", 0);
    send_text(fd, req);
    cr_assert(read_some(fd, 3, buf, sizeof buf, NULL) > 0 && !strncmp(buf, "HTTP/1.1 200", 12),
              "a 760-byte head is under the 1024-byte limit: %s", buf);
    close(fd);
    fd = connect_local();
    snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: %02000d\r\n\r\n", 0);
    send_text(fd, req);
    double closed_at = 0;
    cr_assert_eq(read_some(fd, 3, buf, sizeof buf, &closed_at), 0, "a 2 KB head is dropped unanswered: %s", buf);
    close(fd);
    fd = connect_local();
    cr_assert(healthz(fd), "the service goes on");
    close(fd);
}

/* Opens a connection, does what `prepare` says, and measures when the server closes it. */
static double seconds_until_closed(const char *first_bytes, int answer_first)
{
    char buf[2048];
    int fd = connect_local();
    if (answer_first)
        cr_assert(healthz(fd), "answered");
    else if (first_bytes)
        send_text(fd, first_bytes);
    double start = tk_now(), closed_at = 0;
    int n = read_some(fd, IDLE_S + 4, buf, sizeof buf, &closed_at);
    close(fd);
    cr_assert_eq(n, 0, "closed without a word within %d s (read %d)", IDLE_S + 4, n);
    return closed_at - start;
}

Test(limits, idle_silent_and_half_sent_connections_are_closed_after_the_idle_timeout)
{
    struct { const char *what; const char *bytes; int answer_first; } cases[] = {
        {"idle keep-alive after an answer", NULL, 1},
        {"silent from the start", NULL, 0},
        {"half a request head", "GET /healthz HTTP/1.1\r\nHost: t\r\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double t = seconds_until_closed(cases[i].bytes, cases[i].answer_first);
        cr_log_info("%s: closed after %.2f s", cases[i].what, t);
        cr_expect(t >= IDLE_S - 0.5 && t <= IDLE_S + 2.0, "%s: closed after %.2f s, expected about %d s",
                  cases[i].what, t, IDLE_S);
    }
}

Test(limits, a_second_ingest_on_the_same_port_refuses_to_start)
{
    /* SO_REUSEPORT would let it bind and quietly take half the connections. */
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    tk_proc second;
    const char *argv[] = {"--form", form_path, "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
                          "--bind", "127.0.0.1", "--port", portstr, NULL};
    tk_start(&second, "formpipe-ingest", argv);
    int status = tk_wait(&second, 10);
    char *log = tk_read_file(second.log);
    cr_assert_eq(status, 1, "exit 1, not serving: %s", log);
    cr_assert(strstr(log, "cannot listen on 127.0.0.1:") && strstr(log, "Address already in use"), "one clear line: %s", log);
    free(log);
    int fd = connect_local();
    cr_assert(healthz(fd), "the first one still serves");
    close(fd);
}
