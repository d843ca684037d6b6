/* redisconn.h — one connection to one Redis node (a sentinel or a data node), plain TCP
 * or TLS through OpenSSL, with every wait bounded: the TCP connect and the TLS handshake
 * by the connect timeout, each write and each reply by the caller's timeout. hiredis
 * formats the commands (redisFormatCommandArgv) and parses the replies (redisReader);
 * this module owns the socket. Writes use MSG_NOSIGNAL, but OpenSSL writes with
 * write(2): the process must ignore SIGPIPE, as fp_shutdown_install arranges. */
#ifndef FP_REDISCONN_H
#define FP_REDISCONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "error.h"

/* TLS client settings: the CA that must have signed the server's certificate and, for
 * mutual TLS, the client certificate and key. Shared by many connections (read-only
 * once created, so threads may share it too). */
typedef struct fp_redistls fp_redistls;

/* Loads the CA file (PEM, required) and the client certificate chain and key (PEM, both
 * or neither; NULL or "" for none). NULL with *err naming the file and OpenSSL's
 * reason. Secrets (the key) never appear in a message. */
fp_redistls *fp_redistls_new(const char *ca_file, const char *cert_file, const char *key_file,
                             fp_error *err);
void fp_redistls_free(fp_redistls *t);   /* NULL is fine */

typedef struct fp_redisconn fp_redisconn;

/* Connects to host:port within timeout_ms (every address the name resolves to is
 * tried). With tls, the TLS handshake completes within the same deadline and the
 * server's certificate is verified against the CA and against host (an IP address or a
 * DNS name). NULL with *err: "HOST:PORT: reason" for TCP, "TLS handshake with
 * HOST:PORT: reason" for TLS (e.g. "certificate verify failed: ..."). */
fp_redisconn *fp_redisconn_open(const char *host, int port, const fp_redistls *tls, long timeout_ms,
                                fp_error *err);
void fp_redisconn_free(fp_redisconn *c);   /* NULL is fine; closes the socket */

/* Queues one command (argvlen NULL: every argument is a C string). Nothing is sent
 * yet. 0 or FP_ENOMEM. */
int fp_redisconn_append(fp_redisconn *c, int argc, const char **argv, const size_t *argvlen,
                        fp_error *err);

/* Writes everything queued, within timeout_ms. 0, or FP_EIO with *err
 * ("HOST:PORT: reason"); after an FP_EIO the connection is unusable: free it. */
int fp_redisconn_flush(fp_redisconn *c, long timeout_ms, fp_error *err);

/* Reads the next reply, writing anything still queued first, within timeout_ms in all.
 * 0 with *reply (free with freeReplyObject; an error reply is a reply), or FP_EIO as
 * fp_redisconn_flush (timeout, closed connection, protocol error). */
int fp_redisconn_read(fp_redisconn *c, long timeout_ms, redisReply **reply, fp_error *err);

/* fp_redisconn_append then fp_redisconn_read: one command and its reply. */
int fp_redisconn_command(fp_redisconn *c, long timeout_ms, redisReply **reply, fp_error *err,
                         int argc, const char **argv, const size_t *argvlen);

/* "HOST:PORT" as given to fp_redisconn_open. */
const char *fp_redisconn_addr(const fp_redisconn *c);

#endif
