/* redis.h — a Redis connection to the master that the sentinels name, following the
 * Redis "Sentinel client spec": ask the sentinels in order (short timeouts), move the
 * one that answered to the front, connect to the master it names, AUTH when a password
 * is configured, and confirm with ROLE that it really is the master. An I/O error or a
 * -READONLY / -LOADING / -MASTERDOWN reply drops the connection so the next command
 * rediscovers the master. With a CA file configured every connection, to the sentinels
 * and to the master, is TLS (redisconn.h): the sentinels must then report the data
 * nodes' TLS ports (Redis's tls-replication yes). */
#ifndef FP_REDIS_H
#define FP_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "config.h"
#include "error.h"

/* FP_EAGAIN-class failure: the master may have moved; retry after a backoff. */
#define FP_EREDIS_RETRY FP_EIO

/* TLS to the sentinels and the data nodes: on when ca_file is set (NULL or "" = off).
 * cert_file and key_file (both or neither) add a client certificate: mutual TLS. */
typedef struct fp_redis_tls {
    const char *ca_file;            /* PEM; the servers' certificates must chain to it */
    const char *cert_file;          /* PEM client certificate chain */
    const char *key_file;           /* PEM key of cert_file */
} fp_redis_tls;

static inline int fp_redis_tls_on(const fp_redis_tls *t) { return t->ca_file && *t->ca_file; }

typedef struct fp_redis_config {
    const char *sentinels;          /* "host:port,host:port,..." */
    const char *master_name;
    const char *password;           /* AUTH for the data nodes; NULL or "" for none */
    const char *sentinel_password;  /* AUTH for the sentinels; NULL or "" for none */
    long connect_timeout_ms;        /* per sentinel or master connection attempt */
    long command_timeout_ms;        /* per command */
    fp_redis_tls tls;               /* zeroed: plain TCP */
} fp_redis_config;

/* The --redis-tls-* flags as a main's option table stores them (fp_config_free frees
 * them): put FP_REDIS_TLS_OPTIONS(&flags) in the table, then turn them into an
 * fp_redis_tls with fp_redis_tls_from_flags. */
typedef struct fp_redis_tls_flags { char *ca_file, *cert_file, *key_file; } fp_redis_tls_flags;

#define FP_REDIS_TLS_OPTIONS(flags)                                                                      \
    {"redis-tls-ca-file", FP_OPT_STRING, "",                                                              \
     "CA certificate (PEM): talk TLS to the Redis sentinels and data nodes, verifying them against it",   \
     0, 0, 0, &(flags)->ca_file},                                                                         \
    {"redis-tls-cert-file", FP_OPT_STRING, "",                                                            \
     "client certificate (PEM) for mutual TLS with Redis; needs --redis-tls-key-file", 0, 0, 0,           \
     &(flags)->cert_file},                                                                                \
    {"redis-tls-key-file", FP_OPT_STRING, "", "private key (PEM) of --redis-tls-cert-file", 0, 0, 0,     \
     &(flags)->key_file}

/* Checks the flags go together (a certificate needs its key and the CA file) and that
 * the files load, so a mistake stops the program at start-up with one line naming the
 * flag or file; then points *tls at them. 0 or FP_EINVAL with *err. */
int fp_redis_tls_from_flags(const fp_redis_tls_flags *flags, fp_redis_tls *tls, fp_error *err);

typedef struct fp_redis fp_redis;

/* Copies the configuration and loads the TLS files; connects nothing yet. NULL with
 * *err on a bad sentinel list ("host:port" items, at most 16) or TLS file. */
fp_redis *fp_redis_new(const fp_redis_config *cfg, fp_error *err);
void fp_redis_free(fp_redis *r);   /* NULL is fine; closes the connection */

/* Discovers the master and connects to it (dropping any current connection).
 * Returns 0, or FP_EIO with *err saying what every sentinel / the master answered. */
int fp_redis_connect(fp_redis *r, fp_error *err);

/* Runs one command on the master, connecting first if there is no connection. On
 * success returns 0 and *reply (free with freeReplyObject); an ordinary error reply
 * (e.g. -NOSCRIPT, -WRONGTYPE) is also returned as 0 with a REDIS_REPLY_ERROR reply.
 * On an I/O error or a reply meaning "not the master (any more)" the connection is
 * dropped and FP_EIO is returned: back off and call again. */
int fp_redis_command(fp_redis *r, redisReply **reply, fp_error *err,
                     int argc, const char **argv, const size_t *argvlen);

/* Pipelining: fp_redis_append queues a command (connecting first if needed),
 * fp_redis_send writes everything queued, fp_redis_receive reads the next reply in
 * order (waiting up to the command timeout plus block_ms). Failures and replies that
 * mean "not the master" drop the connection and return FP_EIO, as fp_redis_command. */
int fp_redis_append(fp_redis *r, int argc, const char **argv, const size_t *argvlen, fp_error *err);
int fp_redis_send(fp_redis *r, fp_error *err);
int fp_redis_receive(fp_redis *r, long block_ms, redisReply **reply, fp_error *err);

/* WAIT for `replicas` replicas to acknowledge every write so far on this connection,
 * at most timeout_ms. Returns 0 when enough acknowledged, FP_ETIMEOUT (with *acked
 * set) when fewer did, FP_EIO on connection trouble. */
int fp_redis_wait(fp_redis *r, int replicas, long timeout_ms, long long *acked, fp_error *err);

/* The same WAIT split for pipelining: fp_redis_append_wait queues it, and
 * fp_redis_receive_wait reads its answer (same returns as fp_redis_wait). */
int fp_redis_append_wait(fp_redis *r, int replicas, long timeout_ms, fp_error *err);
int fp_redis_receive_wait(fp_redis *r, int replicas, long timeout_ms, long long *acked, fp_error *err);

/* The "host:port" of the connected master, or "" when not connected. */
const char *fp_redis_master_addr(const fp_redis *r);

/* How many times a master was (re)discovered since creation; for metrics and tests. */
unsigned long fp_redis_discoveries(const fp_redis *r);

/* The order the sentinels are tried in now, "host:port,..." (tests). */
void fp_redis_sentinel_order(const fp_redis *r, char *out, size_t outsz);

#endif
