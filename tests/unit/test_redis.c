/* Unit tests for services/common/redis and redisconn: configuration checks that need no
 * server, and the timeouts against a listener that never answers. Discovery, failover,
 * AUTH and TLS run against real servers in tests/integration (redis, redis_tls). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "redis.h"
#include "redisconn.h"

struct cfg_case { const char *sentinels, *master; int ok; const char *msg; const char *order; };

static struct cfg_case cfg_cases[] = {
    {"127.0.0.1:26379", "m", 1, NULL, "127.0.0.1:26379"},
    {"a:1,b:2,c:3", "m", 1, NULL, "a:1,b:2,c:3"},
    {"[::1]:26379", "m", 1, NULL, "[::1]:26379"},
    {"", "m", 0, "sentinels and master name are required", NULL},
    {"a:1", "", 0, "sentinels and master name are required", NULL},
    {"a", "m", 0, "sentinel 'a' is not host:port", NULL},
    {"a:1,,b:2", "m", 0, "sentinel '' is not host:port", NULL},
    {"a:0", "m", 0, "sentinel 'a:0' is not host:port", NULL},
    {"a:70000", "m", 0, "sentinel 'a:70000' is not host:port", NULL},
    {"a:x", "m", 0, "sentinel 'a:x' is not host:port", NULL},
    {"a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1", "m", 0, "more than 16 sentinels", NULL},
};

ParameterizedTestParameters(redis, config)
{
    return cr_make_param_array(struct cfg_case, cfg_cases, sizeof cfg_cases / sizeof cfg_cases[0]);
}

ParameterizedTest(struct cfg_case *c, redis, config)
{
    fp_error err = {0};
    fp_redis_config cfg = {.sentinels = c->sentinels, .master_name = c->master};
    fp_redis *r = fp_redis_new(&cfg, &err);
    if (!c->ok) {
        cr_assert_null(r, "'%s' should be refused", c->sentinels);
        cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
        return;
    }
    cr_assert_not_null(r, "'%s': %s", c->sentinels, err.msg);
    char order[256];
    fp_redis_sentinel_order(r, order, sizeof order);
    cr_assert_str_eq(order, c->order);
    cr_assert_str_eq(fp_redis_master_addr(r), "");
    fp_redis_free(r);
}

Test(redis, unreachable_sentinels_give_one_clear_error)
{
    fp_error err = {0};
    /* Port 1 on loopback: nothing listens there, the connection is refused at once. */
    fp_redis_config cfg = {.sentinels = "127.0.0.1:1", .master_name = "m", .connect_timeout_ms = 200};
    fp_redis *r = fp_redis_new(&cfg, &err);
    cr_assert_not_null(r);
    cr_assert_eq(fp_redis_connect(r, &err), FP_EIO);
    cr_assert_not_null(strstr(err.msg, "cannot reach master 'm'"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "127.0.0.1:1"), "names the sentinel: %s", err.msg);
    fp_redis_free(r);
}

/* The --redis-tls-* flags: which combinations start, and the one line the others give.
 * /etc/ssl/certs/ca-certificates.crt (Debian's ca-certificates) stands in for a CA file. */
struct tls_case { const char *ca, *cert, *key; int ok; const char *msg; };

static struct tls_case tls_cases[] = {
    {NULL, NULL, NULL, 1, NULL},   /* off */
    {"", "", "", 1, NULL},
    {"/etc/ssl/certs/ca-certificates.crt", NULL, NULL, 1, NULL},
    {"/etc/ssl/certs/ca-certificates.crt", "/c.pem", NULL, 0, "--redis-tls-cert-file given without --redis-tls-key-file"},
    {"/etc/ssl/certs/ca-certificates.crt", NULL, "/k.pem", 0, "--redis-tls-key-file given without --redis-tls-cert-file"},
    {NULL, "/c.pem", "/k.pem", 0, "--redis-tls-cert-file needs --redis-tls-ca-file"},
    {"/nonexistent/ca.pem", NULL, NULL, 0, "cannot load CA file /nonexistent/ca.pem: No such file or directory"},
    {"/etc/passwd", NULL, NULL, 0, "cannot load CA file /etc/passwd: "},
    {"/etc/ssl/certs/ca-certificates.crt", "/nonexistent/c.pem", "/nonexistent/k.pem", 0,
     "cannot load client certificate /nonexistent/c.pem: No such file or directory"},
};

ParameterizedTestParameters(redis, tls_flags)
{
    return cr_make_param_array(struct tls_case, tls_cases, sizeof tls_cases / sizeof tls_cases[0]);
}

ParameterizedTest(struct tls_case *c, redis, tls_flags)
{
    fp_redis_tls_flags flags = {(char *)c->ca, (char *)c->cert, (char *)c->key};
    fp_redis_tls tls = {"x", "y", "z"};
    fp_error err = {0};
    int rc = fp_redis_tls_from_flags(&flags, &tls, &err);
    if (!c->ok) {
        cr_assert_eq(rc, FP_EINVAL, "ca=%s cert=%s key=%s should be refused", c->ca, c->cert, c->key);
        cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
        return;
    }
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(fp_redis_tls_on(&tls), c->ca && *c->ca);
    /* fp_redis_new takes the same settings */
    fp_redis_config cfg = {.sentinels = "127.0.0.1:1", .master_name = "m", .tls = tls};
    fp_redis *r = fp_redis_new(&cfg, &err);
    cr_assert_not_null(r, "%s", err.msg);
    fp_redis_free(r);
}

Test(redis, a_client_certificate_without_a_ca_is_refused_by_fp_redis_new)
{
    fp_error err = {0};
    fp_redis_config cfg = {.sentinels = "127.0.0.1:1", .master_name = "m", .tls = {.cert_file = "/c.pem"}};
    cr_assert_null(fp_redis_new(&cfg, &err));
    cr_assert_not_null(strstr(err.msg, "a client certificate needs a CA file"), "%s", err.msg);
}

/* A listener that never accepts: the kernel completes the TCP handshake, then silence. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 4) == 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

Test(redisconn, a_silent_server_times_out_the_reply_and_the_tls_handshake)
{
    int port, lfd = silent_listener(&port);
    fp_error err = {0};
    redisReply *rep = NULL;

    fp_redisconn *c = fp_redisconn_open("127.0.0.1", port, NULL, 200, &err);
    cr_assert_not_null(c, "%s", err.msg);
    double t0 = fp_clock_mono_s();
    cr_assert_eq(fp_redisconn_command(c, 300, &rep, &err, 1, (const char *[]){"PING"}, NULL), FP_EIO);
    double took = fp_clock_mono_s() - t0;
    cr_assert(took >= 0.29 && took < 1.0, "the reply wait took %.2f s, want 0.3", took);
    cr_assert_not_null(strstr(err.msg, "no reply within the command timeout"), "%s", err.msg);
    cr_assert_null(rep);
    fp_redisconn_free(c);

    fp_redistls *tls = fp_redistls_new("/etc/ssl/certs/ca-certificates.crt", NULL, NULL, &err);
    cr_assert_not_null(tls, "%s", err.msg);
    t0 = fp_clock_mono_s();
    cr_assert_null(fp_redisconn_open("127.0.0.1", port, tls, 300, &err));
    took = fp_clock_mono_s() - t0;
    cr_assert(took >= 0.29 && took < 1.0, "the handshake wait took %.2f s, want 0.3", took);
    char want[64];
    snprintf(want, sizeof want, "TLS handshake with 127.0.0.1:%d: no answer", port);
    cr_assert_not_null(strstr(err.msg, want), "%s", err.msg);
    fp_redistls_free(tls);
    close(lfd);
}
