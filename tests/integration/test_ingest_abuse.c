/* formpipe-ingest's abuse resistance (#16) as a process against the real Kafka of
 * scripts/testenv, over raw sockets (exact status lines and headers; framing curl would
 * not send; a source address of our choice). 127.0.0.1 is the trusted proxy
 * (--trusted-proxy 127.0.0.1/32); 127.0.0.2 is an untrusted client. A table of single
 * requests with their exact answers, then the cases that need more than one request:
 * rate limits keyed by the right client, connections per client, the whole-request
 * time bound, the honeypot (nothing stored), submission tokens, /metrics off the public
 * port. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
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

#define REQUEST_TIMEOUT_S 2
#define PER_CLIENT 4
static char name[64], topic[128], tname[80], *form_path, *tform_path;
static tk_proc ingest;
static int port;

static void setup(void)
{
    char form[1024], tform[512], ttopic[160];
    tk_unique(name, sizeof name, "ab");
    snprintf(tname, sizeof tname, "%s-t", name);
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(ttopic, sizeof ttopic, "forms.tests.%s", tname);
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,\"honeypot\":\"website\",\"fields\":["
             "{\"name\":\"name\",\"type\":\"string\",\"required\":true},"
             "{\"name\":\"roll\",\"type\":\"string\",\"pattern\":\"^(a+)+$\"}]}", name);
    snprintf(tform, sizeof tform,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,\"submissionToken\":true,\"fields\":["
             "{\"name\":\"name\",\"type\":\"string\",\"required\":true}]}", tname);
    form_path = tk_write_temp(form);
    tform_path = tk_write_temp(tform);
    tk_topic_create(topic, 1);
    tk_topic_create(ttopic, 1);
    char rt[16], pc[16];
    snprintf(rt, sizeof rt, "%d", REQUEST_TIMEOUT_S);
    snprintf(pc, sizeof pc, "%d", PER_CLIENT);
    port = tk_start_ingest(&ingest, form_path, "/readyz",
                           (const char *const[]){"--form", tform_path, "--rate-limit", "1", "--rate-burst", "3",
                                                 "--trusted-proxy", "127.0.0.1/32", "--request-timeout", rt,
                                                 "--max-connections-per-client", pc, "--threads", "2", NULL});
}

static void teardown(void)
{
    cr_assert_eq(tk_stop(&ingest, SIGTERM, 30), 0, "clean exit on SIGTERM");
    unlink(form_path);
    unlink(tform_path);
    free(form_path);
    free(tform_path);
}

TestSuite(ingest_abuse, .init = setup, .fini = teardown, .timeout = 120);

/* A connection to the ingest from source address src ("127.0.0.1" trusted, "127.0.0.2" not). */
static int connect_from(const char *src, int to_port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to_port)};
    struct sockaddr_in from = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    inet_pton(AF_INET, src, &from.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&from, sizeof from), 0, "bind %s: %s", src, strerror(errno));
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    /* the server may answer and close before reading everything: that shows in the answer */
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

/* Reads one answer (head, then Content-Length bytes) or until the server closes or
 * timeout_s passes. Returns it (caller frees; "" when nothing came). */
static char *read_answer(int fd, double timeout_s)
{
    size_t cap = 1 << 20, got = 0;
    char *out = calloc(1, cap);
    double deadline = tk_now() + timeout_s;
    while (tk_now() < deadline) {
        char *end = strstr(out, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(out, "\r\ncontent-length:");
            size_t want = (size_t)(end + 4 - out) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
            if (got >= want)
                break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return out;
}

/* Sends raw from src on a new connection and returns the answer; *ms: how long it took. */
static char *exchange(const char *src, const char *raw, size_t len, double *ms)
{
    double t0 = tk_now();
    int fd = connect_from(src, port);
    send_all(fd, raw, len);
    char *a = read_answer(fd, 20);
    if (ms)
        *ms = (tk_now() - t0) * 1000;
    close(fd);
    return a;
}

/* A POST of body to the test form (xff: an X-Forwarded-For value or NULL). */
static char *post_raw(const char *src, const char *form, const char *ctype, const char *body, const char *xff,
                      double *ms)
{
    size_t cap = strlen(body) + 1024;
    char *req = malloc(cap);
    char xh[160] = "";
    if (xff)
        snprintf(xh, sizeof xh, "X-Forwarded-For: %s\r\n", xff);
    int n = snprintf(req, cap, "POST /forms/%s HTTP/1.1\r\nHost: t\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s",
                     form, ctype, strlen(body), xh, body);
    char *a = exchange(src, req, (size_t)n, ms);
    free(req);
    return a;
}

static int status_of(const char *answer)
{
    int st = 0;
    sscanf(answer, "HTTP/1.1 %d", &st);
    return st;
}

/* One request, its exact status line and a piece of its body, answered within max_ms. */
struct abuse_case {
    const char *what;
    const char *head;      /* headers of a POST to the test form (NULL: a GET of an unknown form); a
                            * Content-Length is added unless it has its own (or Transfer-Encoding) */
    const char *body;      /* NULL: none */
    int repeat_body;       /* > 0: the body is this many "n<i>=&" pairs (a body of distinct names) */
    const char *status;    /* the exact status line */
    const char *in_answer;
    double max_ms;
};

static struct abuse_case cases[] = {
    {"a catastrophic pattern answers fast as a 422 naming the rule",
     "Content-Type: application/json\r\n",
     "{\"name\":\"x\",\"roll\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"}", 0,
     "HTTP/1.1 422 Unprocessable Content",
     "{\"field\":\"roll\",\"rule\":\"pattern\",\"message\":\"roll takes too long to check against the required format\"}", 1000},
    {"a valid submission is accepted with its reason phrase",
     "Content-Type: application/json\r\n", "{\"name\":\"x\",\"roll\":\"aaa\"}", 0,
     "HTTP/1.1 202 Accepted", "{\"id\":\"", 10000},
    {"a negative Content-Length is refused", "Content-Type: application/json\r\nContent-Length: -1\r\n", "", 0,
     "HTTP/1.1 400 Bad Request", "Content-Length must be a non-negative decimal number", 5000},
    {"a non-numeric Content-Length is refused", "Content-Type: application/json\r\nContent-Length: 12abc\r\n", "", 0,
     "HTTP/1.1 400 Bad Request", "Content-Length must be a non-negative decimal number", 5000},
    {"Transfer-Encoding is refused", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
     "0\r\n\r\n", 0, "HTTP/1.1 400 Bad Request", "Transfer-Encoding is not accepted", 5000},
    {"Transfer-Encoding with a Content-Length (smuggling) is refused",
     "Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n", 0,
     "HTTP/1.1 400 Bad Request", "Transfer-Encoding is not accepted", 5000},
    {"bytes after the JSON object are refused", "Content-Type: application/json\r\n",
     "{\"name\":\"x\"} xyz", 0, "HTTP/1.1 400 Bad Request", "bytes after the JSON object", 5000},
    {"a repeated member name is refused", "Content-Type: application/json\r\n",
     "{\"name\":\"x\",\"name\":\"y\"}", 0, "HTTP/1.1 400 Bad Request", "repeats a member name", 5000},
    {"60 KB of distinct names is answered in milliseconds", "Content-Type: application/x-www-form-urlencoded\r\n",
     NULL, 60000, "HTTP/1.1 400 Bad Request", "form body has more than 4 fields", 500},
    {"an unknown form is 404 with its reason phrase", NULL, NULL, 0, "HTTP/1.1 404 Not Found", "no such form", 5000},
};

ParameterizedTestParameters(ingest_abuse, one_request)
{
    return cr_make_param_array(struct abuse_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct abuse_case *c, ingest_abuse, one_request)
{
    char *body = NULL;
    if (c->repeat_body) {
        size_t cap = (size_t)c->repeat_body + 64, n = 0;
        body = malloc(cap);
        for (int i = 0; n < (size_t)c->repeat_body; i++)
            n += (size_t)snprintf(body + n, cap - n, "n%d=&", i);
    } else {
        body = strdup(c->body ? c->body : "");
    }
    size_t cap = strlen(body) + 1024;
    char *req = malloc(cap);
    int n;
    if (!c->head)
        n = snprintf(req, cap, "GET /forms/%s-nope HTTP/1.1\r\nHost: t\r\n\r\n", name);
    else if (strstr(c->head, "Content-Length") || strstr(c->head, "Transfer-Encoding"))
        n = snprintf(req, cap, "POST /forms/%s HTTP/1.1\r\nHost: t\r\n%s\r\n%s", name, c->head, body);
    else
        n = snprintf(req, cap, "POST /forms/%s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n\r\n%s", name, c->head,
                     strlen(body), body);
    double ms;
    char *a = exchange("127.0.0.1", req, (size_t)n, &ms);
    cr_assert_eq(strncmp(a, c->status, strlen(c->status)), 0, "%s: want %s, got:\n%s", c->what, c->status, a);
    cr_assert(a[strlen(c->status)] == '\r', "%s: the status line is exactly %s:\n%s", c->what, c->status, a);
    cr_assert_not_null(strstr(a, c->in_answer), "%s: '%s' not in:\n%s", c->what, c->in_answer, a);
    cr_assert_not_null(strcasestr(a, "\r\nx-content-type-options: nosniff\r\n"), "%s: nosniff on every answer", c->what);
    cr_assert_lt(ms, c->max_ms, "%s: %.0f ms", c->what, ms);
    free(a);
    free(req);
    free(body);
}

/* The form page carries the security headers; its own style is allowed by hash. */
Test(ingest_abuse, the_html_page_has_security_headers)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET /forms/%s HTTP/1.1\r\nHost: t\r\nAccept: text/html\r\n\r\n", name);
    char *a = exchange("127.0.0.1", req, (size_t)n, NULL);
    cr_assert_eq(strncmp(a, "HTTP/1.1 200 OK\r\n", 17), 0, "%s", a);
    const char *want[] = {"\r\ncontent-security-policy: default-src 'none'; style-src 'sha256-",
                          "frame-ancestors 'none'", "\r\nx-frame-options: DENY\r\n", "\r\nx-content-type-options: nosniff\r\n",
                          "\r\nreferrer-policy: no-referrer\r\n", "name=\"website\" tabindex=\"-1\""};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strcasestr(a, want[i]), "'%s' in:\n%s", want[i], a);
    free(a);
}

/* A client that is not a trusted proxy cannot pick its bucket with X-Forwarded-For: a
 * new forged address on every request, and it is still limited after its burst of 3. */
Test(ingest_abuse, spoofed_forwarded_for_from_an_untrusted_peer_stays_limited)
{
    int limited = 0;
    for (int i = 0; i < 6; i++) {
        char xff[32];
        snprintf(xff, sizeof xff, "198.51.100.%d", i + 1);
        char *a = post_raw("127.0.0.2", name, "application/json", "{\"name\":\"x\"}", xff, NULL);
        if (status_of(a) == 429)
            limited++;
        else
            cr_assert_eq(status_of(a), 202, "%s", a);
        free(a);
    }
    cr_assert_geq(limited, 2, "6 posts at once with a burst of 3: the 4th on are refused whatever the header says");
}

/* Through the trusted proxy each client has its own bucket, and IPv6 clients share the
 * bucket of their /64. */
Test(ingest_abuse, trusted_proxy_clients_are_keyed_by_address_and_ipv6_by_64)
{
    for (int i = 0; i < 6; i++) {   /* six clients, one post each: none limited */
        char xff[64];
        snprintf(xff, sizeof xff, "203.0.113.%d", i + 1);
        char *a = post_raw("127.0.0.1", name, "application/json", "{\"name\":\"x\"}", xff, NULL);
        cr_assert_eq(status_of(a), 202, "client %s: %s", xff, a);
        free(a);
    }
    int limited = 0;
    for (int i = 0; i < 6; i++) {   /* six addresses of one /64: one bucket of 3 */
        char xff[64];
        snprintf(xff, sizeof xff, "10.9.9.9, 2001:db8:1:2::%x", i + 1);
        char *a = post_raw("127.0.0.1", name, "application/json", "{\"name\":\"x\"}", xff, NULL);
        limited += status_of(a) == 429;
        free(a);
    }
    cr_assert_geq(limited, 2, "one /64 is one client");
    char *a = post_raw("127.0.0.1", name, "application/json", "{\"name\":\"x\"}", "2001:db8:1:3::1", NULL);
    cr_assert_eq(status_of(a), 202, "the next /64 is another client: %s", a);
    free(a);
}

/* One client address holds at most --max-connections-per-client; a closed one comes
 * back; the trusted proxy is not limited (it carries every client). */
Test(ingest_abuse, connections_per_client_address)
{
    int fds[PER_CLIENT + 1], proxy[PER_CLIENT + 2];
    for (int i = 0; i < PER_CLIENT + 1; i++)
        fds[i] = connect_from("127.0.0.2", port);
    char req[128];
    int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    /* two service threads accept in any order: whichever connection came last is refused */
    int served = 0, refused = -1;
    for (int i = 0; i < PER_CLIENT + 1; i++) {
        send_all(fds[i], req, (size_t)n);
        char *a = read_answer(fds[i], 3);
        if (status_of(a) == 200)
            served++;
        else if (!a[0])
            refused = i;
        free(a);
    }
    cr_assert_eq(served, PER_CLIENT, "%d connections from one address are served", PER_CLIENT);
    cr_assert_geq(refused, 0, "connection %d from one address is closed at accept", PER_CLIENT + 1);
    char *a;
    for (int i = 0; i < PER_CLIENT + 2; i++)
        proxy[i] = connect_from("127.0.0.1", port);
    for (int i = 0; i < PER_CLIENT + 2; i++) {
        send_all(proxy[i], req, (size_t)n);
        a = read_answer(proxy[i], 5);
        cr_assert_eq(status_of(a), 200, "the trusted proxy is not limited (connection %d): %s", i + 1, a);
        free(a);
    }
    close(fds[refused == 0 ? 1 : 0]);
    int again = 0;
    for (double deadline = tk_now() + 5; !again && tk_now() < deadline;) {
        int fd = connect_from("127.0.0.2", port);
        send_all(fd, req, (size_t)n);
        a = read_answer(fd, 2);
        again = status_of(a) == 200;
        free(a);
        close(fd);
    }
    cr_assert(again, "a closed connection's slot comes back");
    for (int i = 0; i < PER_CLIENT + 1; i++)
        if (i != (refused == 0 ? 1 : 0))
            close(fds[i]);
    for (int i = 0; i < PER_CLIENT + 2; i++)
        close(proxy[i]);
    char *m = NULL;
    cr_assert_eq(tk_http_get(ingest.admin_port, "/metrics", &m), 200);
    cr_assert_null(strstr(m, "formpipe_ingest_client_connections_refused_total 0\n"), "counted:\n%s", m);
    free(m);
}

/* A body that trickles in a byte at a time still ends at --request-timeout: lws's own
 * timeout restarts with every chunk, ours counts from the head. */
Test(ingest_abuse, a_slow_body_is_cut_off_at_the_request_timeout)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /forms/%s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", name);
    int fd = connect_from("127.0.0.1", port);
    double t0 = tk_now();
    send_all(fd, head, (size_t)n);
    char answer[512] = "";
    size_t got = 0;
    while (tk_now() - t0 < REQUEST_TIMEOUT_S + 5) {
        send(fd, "{", 1, MSG_NOSIGNAL);   /* well within lws's per-chunk timeout */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 300) > 0) {
            ssize_t r = recv(fd, answer + got, sizeof answer - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            answer[got] = '\0';
            if (strstr(answer, "\r\n\r\n"))
                break;
        }
    }
    double took = tk_now() - t0;
    close(fd);
    cr_assert_eq(strncmp(answer, "HTTP/1.1 408 Request Timeout\r\n", 30), 0, "after %.1f s: %s", took, answer);
    cr_assert_lt(took, REQUEST_TIMEOUT_S + 1.5, "cut off at %.1f s", took);
}

/* A filled-in honeypot gets the same 202 as a person, but nothing reaches Kafka, and
 * it is counted; an empty one is a person's and is stored. */
Test(ingest_abuse, honeypot_submissions_are_answered_202_but_not_stored)
{
    char *bot = post_raw("127.0.0.1", name, "application/x-www-form-urlencoded", "name=bot-marker&website=http%3A%2F%2Fspam",
                         NULL, NULL);
    cr_assert_eq(strncmp(bot, "HTTP/1.1 202 Accepted\r\n", 23), 0, "%s", bot);
    cr_assert_not_null(strstr(bot, "{\"id\":\""), "an id like any other: %s", bot);
    char *person = post_raw("127.0.0.1", name, "application/x-www-form-urlencoded", "name=person-marker&website=", NULL, NULL);
    cr_assert_eq(status_of(person), 202, "%s", person);
    const char *id = strstr(person, "{\"id\":\"") + 7;
    char pid[32];
    snprintf(pid, sizeof pid, "%.26s", id);
    /* one partition: everything produced before the person's event comes before it */
    rd_kafka_t *r = tk_kafka_reader(topic);
    int seen_person = 0, seen_bot = 0;
    for (double deadline = tk_now() + 30; !seen_person && tk_now() < deadline;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 500);
        if (m && !m->err) {
            seen_bot |= memmem(m->payload, m->len, "bot-marker", 10) != NULL;
            seen_person |= memmem(m->payload, m->len, pid, 26) != NULL;
        }
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    cr_assert(seen_person, "the person's submission %s is stored", pid);
    cr_assert_not(seen_bot, "the bot's is not");
    char *m = NULL;
    cr_assert_eq(tk_http_get(ingest.admin_port, "/metrics", &m), 200);
    char want[160];
    snprintf(want, sizeof want, "formpipe_ingest_honeypot_total{form=\"%s\"} 1\n", name);
    cr_assert_not_null(strstr(m, want), "counted: %s", m);
    free(m);
    free(bot);
    free(person);
}

/* A form with submissionToken: posts without the page's token are refused; with it
 * (field or header) accepted; a forged one is refused. */
Test(ingest_abuse, submission_tokens)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET /forms/%s HTTP/1.1\r\nHost: t\r\n\r\n", tname);
    char *page = exchange("127.0.0.1", req, (size_t)n, NULL);
    const char *v = strstr(page, "name=\"_formpipe_token\" value=\"");
    cr_assert_not_null(v, "the page embeds a token: %s", page);
    char token[128];
    snprintf(token, sizeof token, "%.*s", (int)strcspn(v + 30, "\""), v + 30);
    char *a = post_raw("127.0.0.1", tname, "application/json", "{\"name\":\"x\"}", NULL, NULL);
    cr_assert_eq(strncmp(a, "HTTP/1.1 403 Forbidden\r\n", 24), 0, "without a token: %s", a);
    cr_assert_not_null(strstr(a, "submission token is required"), "%s", a);
    free(a);
    char body[256];
    snprintf(body, sizeof body, "name=x&_formpipe_token=%s", token);
    a = post_raw("127.0.0.1", tname, "application/x-www-form-urlencoded", body, NULL, NULL);
    cr_assert_eq(status_of(a), 202, "with the page's token: %s", a);
    free(a);
    token[strlen(token) - 1] = token[strlen(token) - 1] == '0' ? '1' : '0';
    snprintf(body, sizeof body, "{\"name\":\"x\",\"_formpipe_token\":\"%s\"}", token);
    a = post_raw("127.0.0.1", tname, "application/json", body, NULL, NULL);
    cr_assert_eq(status_of(a), 403, "a forged token: %s", a);
    free(a);
    free(page);
}

/* /metrics is served on the admin port only: the Ingress, which routes the public port,
 * never exposes it. */
Test(ingest_abuse, metrics_only_on_the_admin_port)
{
    char *body = NULL;
    cr_assert_eq(tk_http_get(port, "/metrics", &body), 404, "public port: %s", body ? body : "");
    free(body);
    body = NULL;
    cr_assert_eq(tk_http_get(ingest.admin_port, "/metrics", &body), 200);
    cr_assert_not_null(strstr(body, "formpipe_ingest_requests_total"), "%s", body);
    free(body);
    body = NULL;
    cr_assert_eq(tk_http_get(port, "/readyz", &body), 200, "probes still answer on the service port");
    free(body);
}
