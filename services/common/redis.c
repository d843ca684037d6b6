/* redis.c — see redis.h. */
#include "redis.h"
#include "config.h"
#include "log.h"
#include "redisconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FP_REDIS_MAX_SENTINELS 16

typedef struct addr {
    char host[256];
    int port;
} addr;

struct fp_redis {
    addr sentinels[FP_REDIS_MAX_SENTINELS];
    int nsentinels;
    char *master_name;
    char *password;
    char *sentinel_password;
    long connect_timeout_ms;
    long command_timeout_ms;
    fp_redistls *tls;           /* NULL: plain TCP */
    fp_redisconn *conn;         /* to the master; NULL when not connected */
    addr master;
    char master_addr[300];
    unsigned long discoveries;
};

static int parse_addr(const char *s, size_t len, addr *out)
{
    char item[300];
    if (len == 0 || len >= sizeof item)
        return FP_EINVAL;
    memcpy(item, s, len);
    item[len] = '\0';
    char *colon = strrchr(item, ':');
    if (!colon || colon == item || colon[1] == '\0')
        return FP_EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535 || (size_t)(colon - item) >= sizeof out->host)
        return FP_EINVAL;
    *colon = '\0';
    char *host = item;
    size_t hlen = strlen(host);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {   /* [IPv6]:port */
        host[--hlen] = '\0';
        host++;
        hlen--;
    }
    if (hlen == 0 || hlen >= sizeof out->host)
        return FP_EINVAL;
    memcpy(out->host, host, hlen + 1);
    out->port = (int)port;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

fp_redis *fp_redis_new(const fp_redis_config *cfg, fp_error *err)
{
    if (!cfg->sentinels || !*cfg->sentinels || !cfg->master_name || !*cfg->master_name) {
        fp_error_set(err, FP_EINVAL, "redis: sentinels and master name are required");
        return NULL;
    }
    fp_redis *r = calloc(1, sizeof *r);
    if (!r) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    for (const char *p = cfg->sentinels; *p;) {
        size_t len = strcspn(p, ",");
        if (r->nsentinels == FP_REDIS_MAX_SENTINELS) {
            fp_error_set(err, FP_EINVAL, "redis: more than %d sentinels", FP_REDIS_MAX_SENTINELS);
            goto fail;
        }
        if (parse_addr(p, len, &r->sentinels[r->nsentinels])) {
            fp_error_set(err, FP_EINVAL, "redis: sentinel '%.*s' is not host:port", (int)len, p);
            goto fail;
        }
        r->nsentinels++;
        p += len + (p[len] == ',');
    }
    r->master_name = strdup(cfg->master_name);
    r->password = dup_or_null(cfg->password);
    r->sentinel_password = dup_or_null(cfg->sentinel_password);
    if (!r->master_name || (cfg->password && *cfg->password && !r->password) ||
        (cfg->sentinel_password && *cfg->sentinel_password && !r->sentinel_password)) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    if (fp_redis_tls_on(&cfg->tls) && !(r->tls = fp_redistls_new(cfg->tls.ca_file, cfg->tls.cert_file,
                                                                  cfg->tls.key_file, err)))
        goto fail;
    if (!fp_redis_tls_on(&cfg->tls) && ((cfg->tls.cert_file && *cfg->tls.cert_file) ||
                                        (cfg->tls.key_file && *cfg->tls.key_file))) {
        fp_error_set(err, FP_EINVAL, "redis TLS: a client certificate needs a CA file");
        goto fail;
    }
    r->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 500;
    r->command_timeout_ms = cfg->command_timeout_ms > 0 ? cfg->command_timeout_ms : 2000;
    return r;
fail:
    fp_redis_free(r);
    return NULL;
}

int fp_redis_tls_from_flags(const fp_redis_tls_flags *flags, fp_redis_tls *tls, fp_error *err)
{
    int ca = flags->ca_file && *flags->ca_file, cert = flags->cert_file && *flags->cert_file,
        key = flags->key_file && *flags->key_file;
    *tls = (fp_redis_tls){0};
    if (cert != key)
        return fp_error_set(err, FP_EINVAL, "%s given without %s", cert ? "--redis-tls-cert-file" : "--redis-tls-key-file",
                            cert ? "--redis-tls-key-file" : "--redis-tls-cert-file");
    if (cert && !ca)
        return fp_error_set(err, FP_EINVAL, "--redis-tls-cert-file needs --redis-tls-ca-file (the CA that signed Redis's certificate)");
    if (!ca)
        return 0;
    fp_redistls *t = fp_redistls_new(flags->ca_file, flags->cert_file, flags->key_file, err);
    if (!t)
        return err ? err->code : FP_EINVAL;
    fp_redistls_free(t);
    *tls = (fp_redis_tls){.ca_file = flags->ca_file, .cert_file = flags->cert_file, .key_file = flags->key_file};
    return 0;
}

static void drop(fp_redis *r)
{
    fp_redisconn_free(r->conn);
    r->conn = NULL;
    r->master_addr[0] = '\0';
}

void fp_redis_free(fp_redis *r)
{
    if (!r)
        return;
    drop(r);
    fp_redistls_free(r->tls);
    free(r->master_name);
    fp_config_free_secret(r->password, r->password ? strlen(r->password) : 0);   /* wiped, #16 */
    fp_config_free_secret(r->sentinel_password, r->sentinel_password ? strlen(r->sentinel_password) : 0);
    free(r);
}

/* Runs one command given as C strings on c, within the command timeout. NULL with why
 * filled on an I/O error. */
static redisReply *run(const fp_redis *r, fp_redisconn *c, int argc, const char **argv, char *why,
                       size_t whysz)
{
    fp_error e = {0};
    redisReply *rep = NULL;
    if (fp_redisconn_command(c, r->command_timeout_ms, &rep, &e, argc, argv, NULL))
        snprintf(why, whysz, "%s", e.msg);
    return rep;
}

/* Connects to a (over TLS when configured), AUTHs with password if set. NULL with
 * *why on failure. */
static fp_redisconn *open_conn(const fp_redis *r, const addr *a, const char *password,
                               char *why, size_t whysz)
{
    fp_error e = {0};
    fp_redisconn *c = fp_redisconn_open(a->host, a->port, r->tls, r->connect_timeout_ms, &e);
    if (!c) {
        snprintf(why, whysz, "%s", e.msg);
        return NULL;
    }
    if (password) {
        char io[256] = "";
        redisReply *rep = run(r, c, 2, (const char *[]){"AUTH", password}, io, sizeof io);
        int ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (!ok) {
            /* The password itself never goes into a message. */
            snprintf(why, whysz, "%s: AUTH failed: %s", fp_redisconn_addr(c),
                     rep && rep->type == REDIS_REPLY_ERROR ? rep->str : io);
            freeReplyObject(rep);
            fp_redisconn_free(c);
            return NULL;
        }
        freeReplyObject(rep);
    }
    return c;
}

/* Asks sentinel i for the master's address. 0 on success. */
static int ask_sentinel(fp_redis *r, int i, addr *master, char *why, size_t whysz)
{
    fp_redisconn *c = open_conn(r, &r->sentinels[i], r->sentinel_password, why, whysz);
    if (!c)
        return -1;
    char io[256] = "";
    redisReply *rep = run(r, c, 3, (const char *[]){"SENTINEL", "get-master-addr-by-name", r->master_name},
                          io, sizeof io);
    int rc = -1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING && rep->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(master->host, sizeof master->host, "%s", rep->element[0]->str);
        master->port = atoi(rep->element[1]->str);
        rc = master->port > 0 ? 0 : -1;
    } else if (!rep) {
        snprintf(why, whysz, "sentinel %s", io);
    } else {
        snprintf(why, whysz, "sentinel %s does not know master '%s'%s%s", fp_redisconn_addr(c),
                 r->master_name, rep->type == REDIS_REPLY_ERROR ? ": " : "",
                 rep->type == REDIS_REPLY_ERROR ? rep->str : "");
    }
    freeReplyObject(rep);
    fp_redisconn_free(c);
    return rc;
}

static int role_is_master(const fp_redis *r, fp_redisconn *c)
{
    char io[256];
    redisReply *rep = run(r, c, 1, (const char *[]){"ROLE"}, io, sizeof io);
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
             rep->element[0]->type == REDIS_REPLY_STRING && strcmp(rep->element[0]->str, "master") == 0;
    freeReplyObject(rep);
    return ok;
}

int fp_redis_connect(fp_redis *r, fp_error *err)
{
    char why[512] = "no sentinel answered";
    drop(r);
    for (int i = 0; i < r->nsentinels; i++) {
        addr master;
        if (ask_sentinel(r, i, &master, why, sizeof why))
            continue;
        /* The spec: the sentinel that answered goes first next time. */
        if (i > 0) {
            addr first = r->sentinels[i];
            memmove(&r->sentinels[1], &r->sentinels[0], (size_t)i * sizeof(addr));
            r->sentinels[0] = first;
        }
        fp_redisconn *c = open_conn(r, &master, r->password, why, sizeof why);
        if (!c)
            break;   /* the named master is unreachable: a failover is likely under way */
        if (!role_is_master(r, c)) {
            snprintf(why, sizeof why, "%s is named master by the sentinels but its ROLE is not master",
                     fp_redisconn_addr(c));
            fp_redisconn_free(c);
            break;
        }
        r->conn = c;
        r->master = master;
        snprintf(r->master_addr, sizeof r->master_addr, "%s", fp_redisconn_addr(c));
        r->discoveries++;
        fp_log_info("redis master discovered", FP_LSTR("master", r->master_addr),
                    FP_LSTR("name", r->master_name));
        return 0;
    }
    return fp_error_set(err, FP_EIO, "redis: cannot reach master '%s': %s", r->master_name, why);
}

/* Error replies that mean "this node is not (or no longer) a usable master". */
static int means_rediscover(const redisReply *rep)
{
    static const char *const prefixes[] = {"READONLY", "LOADING", "MASTERDOWN", "NOAUTH"};
    if (!rep || rep->type != REDIS_REPLY_ERROR)
        return 0;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (strncmp(rep->str, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    }
    return 0;
}

int fp_redis_command(fp_redis *r, redisReply **reply, fp_error *err,
                     int argc, const char **argv, const size_t *argvlen)
{
    *reply = NULL;
    int rc = fp_redis_append(r, argc, argv, argvlen, err);
    return rc ? rc : fp_redis_receive(r, 0, reply, err);   /* receiving sends first */
}

/* Drops the connection after an I/O error and says so: "redis HOST:PORT: reason". */
static int io_failed(fp_redis *r, const fp_error *io, fp_error *err)
{
    fp_error_set(err, FP_EIO, "redis %s", io->msg);
    drop(r);
    return FP_EIO;
}

int fp_redis_append(fp_redis *r, int argc, const char **argv, const size_t *argvlen, fp_error *err)
{
    if (!r->conn) {
        int rc = fp_redis_connect(r, err);
        if (rc)
            return rc;
    }
    fp_error io = {0};
    return fp_redisconn_append(r->conn, argc, argv, argvlen, &io) ? io_failed(r, &io, err) : 0;
}

int fp_redis_send(fp_redis *r, fp_error *err)
{
    if (!r->conn)
        return fp_error_set(err, FP_EIO, "redis: not connected");
    fp_error io = {0};
    return fp_redisconn_flush(r->conn, r->command_timeout_ms, &io) ? io_failed(r, &io, err) : 0;
}

int fp_redis_receive(fp_redis *r, long block_ms, redisReply **reply, fp_error *err)
{
    redisReply *rep = NULL;
    fp_error io = {0};
    *reply = NULL;
    if (!r->conn)
        return fp_error_set(err, FP_EIO, "redis: connection lost");
    if (fp_redisconn_read(r->conn, r->command_timeout_ms + (block_ms > 0 ? block_ms : 0), &rep, &io))
        return io_failed(r, &io, err);
    if (means_rediscover(rep)) {
        fp_error_set(err, FP_EIO, "redis %s: %s", r->master_addr, rep->str);
        freeReplyObject(rep);
        drop(r);
        return FP_EIO;
    }
    *reply = rep;
    return 0;
}

int fp_redis_append_wait(fp_redis *r, int replicas, long timeout_ms, fp_error *err)
{
    char nrep[16], tmo[24];
    snprintf(nrep, sizeof nrep, "%d", replicas);
    snprintf(tmo, sizeof tmo, "%ld", timeout_ms);
    const char *argv[] = {"WAIT", nrep, tmo};
    const size_t lens[] = {4, strlen(nrep), strlen(tmo)};
    return fp_redis_append(r, 3, argv, lens, err);
}

int fp_redis_receive_wait(fp_redis *r, int replicas, long timeout_ms, long long *acked, fp_error *err)
{
    redisReply *rep;
    *acked = 0;
    int rc = fp_redis_receive(r, timeout_ms, &rep, err);
    if (rc)
        return rc;
    if (rep->type != REDIS_REPLY_INTEGER)
        rc = fp_error_set(err, FP_EINVAL, "WAIT: unexpected reply: %s",
                          rep->type == REDIS_REPLY_ERROR ? rep->str : "not an integer");
    else if ((*acked = rep->integer) < replicas)
        rc = fp_error_set(err, FP_ETIMEOUT, "WAIT: %lld of %d replicas acknowledged within %ld ms", *acked,
                          replicas, timeout_ms);
    freeReplyObject(rep);
    return rc;
}

int fp_redis_wait(fp_redis *r, int replicas, long timeout_ms, long long *acked, fp_error *err)
{
    *acked = 0;
    int rc = fp_redis_append_wait(r, replicas, timeout_ms, err);
    return rc ? rc : fp_redis_receive_wait(r, replicas, timeout_ms, acked, err);
}

const char *fp_redis_master_addr(const fp_redis *r) { return r->master_addr; }

unsigned long fp_redis_discoveries(const fp_redis *r) { return r->discoveries; }

void fp_redis_sentinel_order(const fp_redis *r, char *out, size_t outsz)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < r->nsentinels && used < outsz; i++) {
        const char *h = r->sentinels[i].host;
        int v6 = strchr(h, ':') != NULL;
        int n = snprintf(out + used, outsz - used, "%s%s%s%s:%d", i ? "," : "", v6 ? "[" : "", h,
                         v6 ? "]" : "", r->sentinels[i].port);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}
