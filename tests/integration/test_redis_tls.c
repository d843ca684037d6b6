/* services/common/redis over TLS against the TLS-only Redis set of scripts/testenv (a
 * master, a replica and two sentinels that report TLS ports; the second sentinel
 * requires a client certificate): discovery, commands, pipelining and WAIT over TLS,
 * mutual TLS, following a failover, the refusals a person must be able to read (an
 * untrusted CA, a plain port, a missing client certificate), and formpipe-consumer writing a submission into
 * the TLS Redis from the real Kafka. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "redis.h"
#include "redisconn.h"
#include "rowstore.h"
#include "testkit.h"

#define CONNECT_MS 300

static char *password;

static void setup(void) { password = tk_read_file(tk_env("FORMPIPE_REDIS_PASSWORD_FILE")); }
static void teardown(void) { free(password); }

TestSuite(redis_tls, .init = setup, .fini = teardown, .timeout = 120);

/* A client for sentinels (a list or the name of an environment variable holding one). */
static fp_redis *open_tls(const char *sentinels, const char *ca, const char *cert, const char *key)
{
    fp_error err = {0};
    fp_redis_config cfg = {.sentinels = sentinels, .master_name = tk_env("FORMPIPE_REDIS_MASTER"),
                           .password = password, .connect_timeout_ms = CONNECT_MS,
                           .command_timeout_ms = 2000, .tls = {.ca_file = ca, .cert_file = cert, .key_file = key}};
    fp_redis *r = fp_redis_new(&cfg, &err);
    cr_assert_not_null(r, "%s", err.msg);
    return r;
}

static int cmd(fp_redis *r, redisReply **rep, fp_error *err, int argc, const char **argv)
{
    return fp_redis_command(r, rep, err, argc, argv, NULL);
}

Test(redis_tls, discovery_commands_pipelining_and_wait_over_tls)
{
    char list[256], key[96], val[96];
    /* Nothing listens on loopback port 1: the first sentinel is dead. */
    snprintf(list, sizeof list, "127.0.0.1:1,%s", tk_env("FORMPIPE_REDIS_TLS_SENTINELS"));
    fp_redis *r = open_tls(list, tk_env("FORMPIPE_TESTENV_CA_FILE"), NULL, NULL);
    fp_error err = {0};
    redisReply *rep;
    cr_assert_eq(fp_redis_connect(r, &err), 0, "%s", err.msg);
    cr_assert_null(strstr(tk_env("FORMPIPE_REDIS_SENTINELS"), fp_redis_master_addr(r)));
    cr_log_info("TLS master %s", fp_redis_master_addr(r));

    tk_unique(key, sizeof key, "fp:test:tls");
    tk_unique(val, sizeof val, "v");
    cr_assert_eq(cmd(r, &rep, &err, 3, (const char *[]){"SET", key, val}), 0, "%s", err.msg);
    cr_assert_eq(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    cr_assert_eq(cmd(r, &rep, &err, 2, (const char *[]){"GET", key}), 0, "%s", err.msg);
    cr_assert_eq(rep->type, REDIS_REPLY_STRING);
    cr_assert_str_eq(rep->str, val);
    freeReplyObject(rep);

    /* 500 pipelined INCRs, each with a 200-byte argument, then WAIT for the replica:
     * more than one TLS record each way. */
    char counter[128], pad[201];
    memset(pad, 'x', 200);
    pad[200] = 0;
    snprintf(counter, sizeof counter, "%s:n", key);
    for (int i = 0; i < 500; i++) {
        cr_assert_eq(fp_redis_append(r, 3, (const char *[]){"SET", counter, pad}, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(fp_redis_append(r, 2, (const char *[]){"INCR", key}, NULL, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(fp_redis_append_wait(r, 1, 5000, &err), 0, "%s", err.msg);
    cr_assert_eq(fp_redis_send(r, &err), 0, "%s", err.msg);
    for (int i = 0; i < 500; i++) {
        cr_assert_eq(fp_redis_receive(r, 0, &rep, &err), 0, "reply %d: %s", 2 * i, err.msg);
        cr_assert_eq(rep->type, REDIS_REPLY_STATUS);
        freeReplyObject(rep);
        cr_assert_eq(fp_redis_receive(r, 0, &rep, &err), 0, "reply %d: %s", 2 * i + 1, err.msg);
        /* the key held a non-number: INCR answers an error, in order */
        cr_assert_eq(rep->type, REDIS_REPLY_ERROR, "INCR of '%s'", val);
        freeReplyObject(rep);
    }
    long long acked = 0;
    cr_assert_eq(fp_redis_receive_wait(r, 1, 5000, &acked, &err), 0, "%s", err.msg);
    cr_assert_eq(acked, 1, "the TLS replica acknowledges");
    cr_assert_eq(fp_redis_wait(r, 1, 5000, &acked, &err), 0, "%s", err.msg);
    cr_assert_eq(cmd(r, &rep, &err, 3, (const char *[]){"DEL", key, counter}), 0, "%s", err.msg);
    freeReplyObject(rep);
    cr_assert_eq(fp_redis_discoveries(r), 1, "one discovery for all of it");
    fp_redis_free(r);
}

/* Asks the first TLS sentinel for a failover until it accepts (it refuses while one is
 * under way or the replica is not ready). */
static void request_failover(void)
{
    char host[64];
    int port;
    fp_error err = {0};
    cr_assert_eq(sscanf(tk_env("FORMPIPE_REDIS_TLS_SENTINELS"), "%63[^:]:%d", host, &port), 2);
    fp_redistls *tls = fp_redistls_new(tk_env("FORMPIPE_TESTENV_CA_FILE"), NULL, NULL, &err);
    cr_assert_not_null(tls, "%s", err.msg);
    double deadline = tk_now() + 60;
    int ok = 0;
    while (!ok && tk_now() < deadline) {
        redisReply *rep = NULL;
        fp_redisconn *c = fp_redisconn_open(host, port, tls, CONNECT_MS, &err);
        if (c && fp_redisconn_command(c, 2000, &rep, &err, 3,
                                      (const char *[]){"SENTINEL", "FAILOVER", tk_env("FORMPIPE_REDIS_MASTER")}, NULL) == 0)
            ok = rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
        fp_redisconn_free(c);
        if (!ok)
            sleep(1);
    }
    fp_redistls_free(tls);
    cr_assert(ok, "the TLS sentinel accepted no SENTINEL FAILOVER within 60 s");
}

Test(redis_tls, follows_a_failover_over_tls_and_keeps_acknowledged_writes)
{
    char key[96], val[96], before[300];
    fp_redis *r = open_tls(tk_env("FORMPIPE_REDIS_TLS_SENTINELS"), tk_env("FORMPIPE_TESTENV_CA_FILE"), NULL, NULL);
    fp_error err = {0};
    redisReply *rep;
    long long acked = 0;
    tk_unique(key, sizeof key, "fp:test:tls:failover");
    tk_unique(val, sizeof val, "v");
    cr_assert_eq(cmd(r, &rep, &err, 3, (const char *[]){"SET", key, val}), 0, "%s", err.msg);
    freeReplyObject(rep);
    cr_assert_eq(fp_redis_wait(r, 1, 10000, &acked, &err), 0, "the replica acknowledges: %s", err.msg);
    snprintf(before, sizeof before, "%s", fp_redis_master_addr(r));

    request_failover();

    double deadline = tk_now() + 60;
    while (tk_now() < deadline) {
        int rc = cmd(r, &rep, &err, 3, (const char *[]){"SET", "fp:test:tls:probe", "x"});
        int moved = rc == 0 && rep->type == REDIS_REPLY_STATUS && strcmp(fp_redis_master_addr(r), before) != 0;
        if (rc == 0)
            freeReplyObject(rep);
        if (moved)
            break;
        usleep(100 * 1000);
    }
    cr_assert_str_neq(fp_redis_master_addr(r), before, "still on %s 60 s after FAILOVER", before);
    cr_log_info("TLS failover followed from %s to %s", before, fp_redis_master_addr(r));
    cr_assert_eq(cmd(r, &rep, &err, 2, (const char *[]){"GET", key}), 0, "%s", err.msg);
    cr_assert_eq(rep->type, REDIS_REPLY_STRING, "acknowledged write lost in the failover");
    cr_assert_str_eq(rep->str, val);
    freeReplyObject(rep);

    /* Leave the set settled: the demoted master replicates the new one again. */
    deadline = tk_now() + 60;
    int settled = 0;
    while (!settled && tk_now() < deadline) {
        settled = fp_redis_wait(r, 1, 1000, &acked, &err) == 0;
        if (!settled)
            usleep(200 * 1000);
    }
    cr_assert(settled, "the old master did not come back as a replica within 60 s: %s", err.msg);
    fp_redis_free(r);
}

Test(redis_tls, mutual_tls_with_the_client_certificate)
{
    fp_redis *r = open_tls(tk_env("FORMPIPE_REDIS_MTLS_SENTINEL"), tk_env("FORMPIPE_TESTENV_CA_FILE"),
                           tk_env("FORMPIPE_TESTENV_CLIENT_CERT_FILE"), tk_env("FORMPIPE_TESTENV_CLIENT_KEY_FILE"));
    fp_error err = {0};
    redisReply *rep;
    cr_assert_eq(cmd(r, &rep, &err, 1, (const char *[]){"ROLE"}), 0, "%s", err.msg);
    cr_assert_str_eq(rep->element[0]->str, "master");
    freeReplyObject(rep);
    fp_redis_free(r);
}

/* Connections that must be refused, each with a message that names the cause, and
 * within the connect timeout (no hang). Fields name environment variables. */
struct refusal {
    const char *what, *sentinels_env, *ca_env, *cert_env, *key_env, *want;
};

static struct refusal refusals[] = {
    {"a CA that did not sign the server's certificate", "FORMPIPE_REDIS_TLS_SENTINELS",
     "FORMPIPE_TESTENV_OTHER_CA_FILE", NULL, NULL, "certificate verify failed"},
    {"TLS to a plain sentinel", "FORMPIPE_REDIS_SENTINELS", "FORMPIPE_TESTENV_CA_FILE", NULL, NULL,
     "TLS handshake with 127.0.0.1:"},
    {"plain TCP to a TLS sentinel", "FORMPIPE_REDIS_TLS_SENTINELS", NULL, NULL, NULL, "127.0.0.1:"},
    {"no client certificate where one is required", "FORMPIPE_REDIS_MTLS_SENTINEL",
     "FORMPIPE_TESTENV_CA_FILE", NULL, NULL, "127.0.0.1:"},
};

ParameterizedTestParameters(redis_tls, refused)
{
    return cr_make_param_array(struct refusal, refusals, sizeof refusals / sizeof refusals[0]);
}

ParameterizedTest(struct refusal *c, redis_tls, refused)
{
    /* Only the first sentinel of a list: the time bound is for one connection. */
    char one[128];
    const char *list = tk_env(c->sentinels_env);
    snprintf(one, sizeof one, "%.*s", (int)strcspn(list, ","), list);
    fp_redis *r = open_tls(one, c->ca_env ? tk_env(c->ca_env) : NULL, c->cert_env ? tk_env(c->cert_env) : NULL,
                           c->key_env ? tk_env(c->key_env) : NULL);
    fp_error err = {0};
    double t0 = tk_now();
    int rc = fp_redis_connect(r, &err);
    double took = tk_now() - t0;
    fp_redis_free(r);
    cr_log_info("%s: %s (%.2f s)", c->what, err.msg, took);
    cr_assert_eq(rc, FP_EIO, "%s must be refused", c->what);
    cr_assert_not_null(strstr(err.msg, c->want), "%s: '%s' not in '%s'", c->what, c->want, err.msg);
    cr_assert_not_null(strstr(err.msg, one), "%s: the message names %s: %s", c->what, one, err.msg);
    /* connect + handshake share the connect timeout; then at most one command timeout */
    cr_assert_lt(took, (CONNECT_MS + 2000) / 1000.0 + 0.5, "%s took %.2f s", c->what, took);
}

/* The end-to-end proof: formpipe-consumer reads submissions from the real Kafka and
 * buffers them in the TLS Redis, with mutual TLS to the sentinel that requires it. */
Test(redis_tls, consumer_buffers_submissions_over_mutual_tls)
{
    char name[64], topic[128], dlq[140], form[512], portstr[16];
    tk_unique(name, sizeof name, "tls");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(dlq, sizeof dlq, "%s.dlq", topic);
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,\"fields\":["
             "{\"name\":\"name\",\"type\":\"string\"}]}", name);
    char *form_path = tk_write_temp(form);
    tk_topic_create(topic, 1);
    tk_topic_create(dlq, 1);
    rd_kafka_t *p = tk_producer();
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "id-%d", i);
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "name", id);
        char *ev = fp_event_encode(id, "tests", name, 1795000000000LL + i, 1, data);
        tk_produce(p, topic, id, ev, strlen(ev));
        free(ev);
        cJSON_Delete(data);
    }
    tk_flush(p);

    int port = tk_free_port();
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *argv[] = {"--form", form_path, "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
                          "--redis-sentinels", tk_env("FORMPIPE_REDIS_MTLS_SENTINEL"),
                          "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                          "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                          "--redis-tls-ca-file", tk_env("FORMPIPE_TESTENV_CA_FILE"),
                          "--redis-tls-cert-file", tk_env("FORMPIPE_TESTENV_CLIENT_CERT_FILE"),
                          "--redis-tls-key-file", tk_env("FORMPIPE_TESTENV_CLIENT_KEY_FILE"),
                          "--min-replicas-ack", "1", "--admin-bind", "127.0.0.1", "--admin-port", portstr, NULL};
    tk_proc c;
    tk_start(&c, "formpipe-consumer", argv);

    /* Read the buffer the way the flusher does, over TLS too. */
    fp_redis *r = open_tls(tk_env("FORMPIPE_REDIS_TLS_SENTINELS"), tk_env("FORMPIPE_TESTENV_CA_FILE"), NULL, NULL);
    fp_error err = {0};
    fp_rowstore *buffer = fp_rowstore_new(r, "tests", name, &err);
    cr_assert_not_null(buffer, "%s", err.msg);
    long long n = -1;
    double deadline = tk_now() + 60;
    while (tk_now() < deadline && (fp_rowstore_pending(buffer, &n, &err) || n < 3))
        usleep(200 * 1000);
    if (n != 3)
        tk_show_log(&c);
    cr_assert_eq(n, 3, "the TLS buffer holds %lld rows, want 3 (%s)", n, err.msg);
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0, "clean exit on SIGTERM");

    fp_rowstore_free(buffer);
    fp_redis_free(r);
    rd_kafka_destroy(p);
    unlink(form_path);
    free(form_path);
}

/* A client certificate without its key is one line at start-up and exit status 2. */
Test(redis_tls, consumer_refuses_a_certificate_without_its_key)
{
    const char *argv[] = {"--form", "/nonexistent.json", "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
                          "--redis-sentinels", tk_env("FORMPIPE_REDIS_TLS_SENTINELS"),
                          "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                          "--redis-tls-ca-file", tk_env("FORMPIPE_TESTENV_CA_FILE"),
                          "--redis-tls-cert-file", tk_env("FORMPIPE_TESTENV_CLIENT_CERT_FILE"), NULL};
    tk_proc c;
    tk_start(&c, "formpipe-consumer", argv);
    cr_assert_eq(tk_wait(&c, 10), 2, "exit status 2 on a bad command line");
    char *log = tk_read_file(c.log);
    cr_assert_not_null(strstr(log, "--redis-tls-cert-file given without --redis-tls-key-file"), "%s", log);
    free(log);
}
