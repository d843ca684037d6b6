/* redisconn.c — see redisconn.h. */
#include "redisconn.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fp_redistls {
    SSL_CTX *ctx;
};

struct fp_redisconn {
    int fd;
    SSL *ssl;               /* NULL: plain TCP */
    redisReader *reader;
    char *out;              /* formatted commands not yet written: out[sent..len) */
    size_t len, sent, cap;
    int failed;             /* an error or timeout happened: no close_notify on free */
    char addr[300];
};

/* OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a connection the
 * server closed; this one sends with MSG_NOSIGNAL, like the plain path. */
static int bio_write(BIO *b, const char *buf, int n)
{
    ssize_t r = send((int)(intptr_t)BIO_get_data(b), buf, (size_t)n, MSG_NOSIGNAL);
    BIO_clear_retry_flags(b);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)r;
}

static int bio_read(BIO *b, char *buf, int n)
{
    ssize_t r = recv((int)(intptr_t)BIO_get_data(b), buf, (size_t)n, 0);
    BIO_clear_retry_flags(b);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    return (int)r;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH;   /* nothing is buffered here */
}

/* One method for the whole process: BIO type indexes are few (BIO_get_new_index). */
static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fp_redisconn");
    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) && BIO_meth_set_ctrl(m, bio_ctrl))
        bio_method = m;
    else
        BIO_meth_free(m);
}

/* OpenSSL's reason for the last failure on this thread, or fallback. Clears the queue. */
static const char *ssl_reason(char *buf, size_t bufsz, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, bufsz, "%s", r ? r : fallback);
    ERR_clear_error();
    return buf;
}

/* NULL when path can be opened for reading, else why not (OpenSSL would only say
 * "system lib"). */
static const char *unreadable(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strerror(errno);
    fclose(f);
    return NULL;
}

/* Fills why with the reason a PEM file could not be used. */
static const char *file_reason(const char *path, char *why, size_t whysz)
{
    const char *sys = unreadable(path);
    if (sys) {
        snprintf(why, whysz, "%s", sys);
        ERR_clear_error();
        return why;
    }
    return ssl_reason(why, whysz, "not usable");
}

fp_redistls *fp_redistls_new(const char *ca_file, const char *cert_file, const char *key_file,
                             fp_error *err)
{
    char why[256];
    int has_cert = cert_file && *cert_file, has_key = key_file && *key_file;
    fp_redistls *t = NULL;

    if (!ca_file || !*ca_file) {
        fp_error_set(err, FP_EINVAL, "redis TLS: a CA file is required");
        return NULL;
    }
    if (has_cert != has_key) {
        fp_error_set(err, FP_EINVAL, "redis TLS: a client certificate needs its key and a key its certificate");
        return NULL;
    }
    ERR_clear_error();
    pthread_once(&bio_once, bio_method_init);
    if (!bio_method || !(t = calloc(1, sizeof *t)) || !(t->ctx = SSL_CTX_new(TLS_client_method()))) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    /* A write may end part-way (WANT_WRITE) and resume from wherever the rest is. */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
        fp_error_set(err, FP_EINVAL, "redis TLS: cannot load CA file %s: %s", ca_file,
                     file_reason(ca_file, why, sizeof why));
        goto fail;
    }
    if (has_cert && SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
        fp_error_set(err, FP_EINVAL, "redis TLS: cannot load client certificate %s: %s", cert_file,
                     file_reason(cert_file, why, sizeof why));
        goto fail;
    }
    if (has_key && (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
                    SSL_CTX_check_private_key(t->ctx) != 1)) {
        fp_error_set(err, FP_EINVAL, "redis TLS: cannot use client key %s: %s", key_file,
                     file_reason(key_file, why, sizeof why));
        goto fail;
    }
    return t;
fail:
    ERR_clear_error();
    fp_redistls_free(t);
    return NULL;
}

void fp_redistls_free(fp_redistls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

void fp_redisconn_free(fp_redisconn *c)
{
    if (!c)
        return;
    if (c->ssl) {
        if (!c->failed)
            SSL_shutdown(c->ssl);   /* one close_notify, no waiting for the peer's */
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    if (c->fd >= 0)
        close(c->fd);
    if (c->reader)
        redisReaderFree(c->reader);
    free(c->out);
    free(c);
}

/* Waits until fd is ready for events or the deadline passes. 0, or -1 with errno
 * (ETIMEDOUT on the deadline). */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - fp_clock_mono_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* A non-blocking socket connected to one resolved address by the deadline, or -1. */
static int connect_one(const struct addrinfo *ai, long long deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
            int e = soerr ? soerr : errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   /* as hiredis: commands are small */
    return fd;
}

/* Runs the TLS handshake on c->fd by the deadline. 0, or -1 with why filled. */
static int handshake(fp_redisconn *c, const fp_redistls *tls, const char *host, long long deadline,
                     char *why, size_t whysz)
{
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;

    BIO *bio = NULL;
    ERR_clear_error();
    c->failed = 1;   /* until the handshake completes */
    if (!(c->ssl = SSL_new(tls->ctx)) || !(bio = BIO_new(bio_method))) {
        snprintf(why, whysz, "out of memory");
        return -1;
    }
    BIO_set_data(bio, (void *)(intptr_t)c->fd);
    BIO_set_init(bio, 1);
    SSL_set_bio(c->ssl, bio, bio);   /* the SSL owns the BIO now */
    /* The certificate must name the host we connected to: an IP SAN for an address. */
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) : X509_VERIFY_PARAM_set1_host(vp, host, 0)) != 1 ||
        (!is_ip && SSL_set_tlsext_host_name(c->ssl, host) != 1)) {
        snprintf(why, whysz, "cannot set the expected host name");
        return -1;
    }
    for (;;) {
        int rc = SSL_connect(c->ssl), sys = errno;
        if (rc == 1) {
            c->failed = 0;
            return 0;
        }
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) == 0)
                continue;
            if (errno == ETIMEDOUT)
                snprintf(why, whysz, "no answer within the connect timeout (is it a TLS port?)");
            else
                snprintf(why, whysz, "%s", strerror(errno));
            return -1;
        }
        long vr = SSL_get_verify_result(c->ssl);
        char reason[160];
        if (vr != X509_V_OK)
            snprintf(why, whysz, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
        else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
            snprintf(why, whysz, "%s", sys ? strerror(sys) : "connection closed by the server");
        else if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_WRONG_VERSION_NUMBER)
            snprintf(why, whysz, "%s (is it a TLS port?)", ssl_reason(reason, sizeof reason, ""));
        else
            snprintf(why, whysz, "%s", ssl_reason(reason, sizeof reason, "handshake failed"));
        ERR_clear_error();
        return -1;
    }
}

fp_redisconn *fp_redisconn_open(const char *host, int port, const fp_redistls *tls, long timeout_ms,
                                fp_error *err)
{
    long long deadline = fp_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char portstr[16], why[256] = "no address";
    fp_redisconn *c = calloc(1, sizeof *c);

    if (!c || !(c->reader = redisReaderCreate())) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    c->fd = -1;
    snprintf(c->addr, sizeof c->addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai) {
        fp_error_set(err, FP_EIO, "%s: %s", c->addr, gai_strerror(gai));
        goto fail;
    }
    for (const struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
        if ((c->fd = connect_one(ai, deadline)) < 0)
            snprintf(why, sizeof why, "%s", errno == ETIMEDOUT ? "connect timed out" : strerror(errno));
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        fp_error_set(err, FP_EIO, "%s: %s", c->addr, why);
        goto fail;
    }
    if (tls && handshake(c, tls, host, deadline, why, sizeof why)) {
        fp_error_set(err, FP_EIO, "TLS handshake with %s: %s", c->addr, why);
        goto fail;
    }
    return c;
fail:
    fp_redisconn_free(c);
    return NULL;
}

int fp_redisconn_append(fp_redisconn *c, int argc, const char **argv, const size_t *argvlen,
                        fp_error *err)
{
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (n < 0)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    if (c->sent == c->len)
        c->sent = c->len = 0;
    if (c->len + (size_t)n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + (size_t)n)
            cap *= 2;
        char *out = realloc(c->out, cap);
        if (!out) {
            redisFreeCommand(cmd);
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        }
        c->out = out;
        c->cap = cap;
    }
    memcpy(c->out + c->len, cmd, (size_t)n);
    c->len += (size_t)n;
    redisFreeCommand(cmd);
    return 0;
}

/* One write or read on the connection. >0 bytes; 0 when it would block (*want says
 * for what); -1 on an error or a closed connection, with why filled. */
static ssize_t io(fp_redisconn *c, int writing, void *buf, size_t n, short *want, char *why, size_t whysz)
{
    if (!c->ssl) {
        ssize_t r = writing ? send(c->fd, buf, n, MSG_NOSIGNAL) : recv(c->fd, buf, n, 0);
        if (r > 0)
            return r;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            *want = writing ? POLLOUT : POLLIN;
            return 0;
        }
        snprintf(why, whysz, "%s", r == 0 ? "connection closed by the server" : strerror(errno));
        return -1;
    }
    size_t done = 0;
    ERR_clear_error();
    int ok = writing ? SSL_write_ex(c->ssl, buf, n, &done) : SSL_read_ex(c->ssl, buf, n, &done), sys = errno;
    if (ok)
        return (ssize_t)done;
    int e = SSL_get_error(c->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return 0;
    }
    char reason[160];
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && !ERR_peek_error() && !sys))
        snprintf(why, whysz, "connection closed by the server");
    else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
        snprintf(why, whysz, "%s", strerror(sys));
    else
        snprintf(why, whysz, "TLS: %s", ssl_reason(reason, sizeof reason, "I/O failed"));
    ERR_clear_error();
    return -1;
}

/* Writes out[sent..len) by the deadline. 0 or FP_EIO. */
static int write_all(fp_redisconn *c, long long deadline, fp_error *err)
{
    char why[200];
    while (c->sent < c->len) {
        short want = 0;
        ssize_t n = io(c, 1, c->out + c->sent, c->len - c->sent, &want, why, sizeof why);
        if (n < 0)
            return fp_error_set(err, FP_EIO, "%s: write: %s", c->addr, why);
        c->sent += (size_t)n;
        if (n == 0 && wait_fd(c->fd, want, deadline))
            return fp_error_set(err, FP_EIO, "%s: %s", c->addr,
                                errno == ETIMEDOUT ? "write timed out" : strerror(errno));
    }
    c->sent = c->len = 0;
    return 0;
}

int fp_redisconn_flush(fp_redisconn *c, long timeout_ms, fp_error *err)
{
    int rc = write_all(c, fp_clock_mono_ms() + timeout_ms, err);
    c->failed |= rc != 0;
    return rc;
}

/* Reads replies until one is complete, by the deadline. */
static int read_reply(fp_redisconn *c, long long deadline, redisReply **reply, fp_error *err)
{
    char buf[16384], why[200];
    void *rep = NULL;
    for (;;) {
        if (redisReaderGetReply(c->reader, &rep) != REDIS_OK)
            return fp_error_set(err, FP_EIO, "%s: protocol error: %s", c->addr, c->reader->errstr);
        if (rep) {
            *reply = rep;
            return 0;
        }
        short want = 0;
        ssize_t n = io(c, 0, buf, sizeof buf, &want, why, sizeof why);
        if (n < 0)
            return fp_error_set(err, FP_EIO, "%s: read: %s", c->addr, why);
        if (n == 0) {
            if (wait_fd(c->fd, want, deadline))
                return fp_error_set(err, FP_EIO, "%s: %s", c->addr,
                                    errno == ETIMEDOUT ? "no reply within the command timeout" : strerror(errno));
            continue;
        }
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK)
            return fp_error_set(err, FP_EIO, "%s: protocol error: %s", c->addr, c->reader->errstr);
    }
}

int fp_redisconn_read(fp_redisconn *c, long timeout_ms, redisReply **reply, fp_error *err)
{
    long long deadline = fp_clock_mono_ms() + timeout_ms;
    *reply = NULL;
    int rc = write_all(c, deadline, err);
    if (!rc)
        rc = read_reply(c, deadline, reply, err);
    c->failed |= rc != 0;
    return rc;
}

int fp_redisconn_command(fp_redisconn *c, long timeout_ms, redisReply **reply, fp_error *err,
                         int argc, const char **argv, const size_t *argvlen)
{
    *reply = NULL;
    int rc = fp_redisconn_append(c, argc, argv, argvlen, err);
    return rc ? rc : fp_redisconn_read(c, timeout_ms, reply, err);
}

const char *fp_redisconn_addr(const fp_redisconn *c) { return c->addr; }
