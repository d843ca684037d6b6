/* Kafka over TLS (#16): the brokers of scripts/testenv also listen with TLS
 * (FORMPIPE_KAFKA_SSL_BOOTSTRAP, a certificate from the environment's private CA). The
 * real formpipe-ingest and formpipe-consumer, given a librdkafka properties file that
 * trusts that CA (`--kafka-config`, as the operator mounts it), carry a submission from
 * an HTTP post to the Redis buffer over TLS only; trusting another CA, each refuses the
 * brokers (never ready, "certificate verify failed" in its log) and nothing is accepted. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "rowstore.h"
#include "testkit.h"

static char name[64], topic[128], *form_path;

static void setup(void)
{
    char form[512];
    tk_unique(name, sizeof name, "tls");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":1,\"fields\":["
             "{\"name\":\"name\",\"type\":\"string\",\"required\":true}]}", name);
    form_path = tk_write_temp(form);
    tk_topic_create(topic, 1);
    char dlq[160];
    snprintf(dlq, sizeof dlq, "%s.dlq", topic);
    tk_topic_create(dlq, 1);
}

static void teardown(void)
{
    unlink(form_path);
    free(form_path);
}

/* A properties file: TLS to the brokers, trusting ca_file (caller frees the path). */
static char *tls_properties(const char *ca_file)
{
    char text[512];
    snprintf(text, sizeof text, "security.protocol=ssl\nssl.ca.location=%s\nssl.endpoint.identification.algorithm=https\n",
             ca_file);
    return tk_write_temp(text);
}

static void start_consumer(tk_proc *c, int admin_port, const char *properties)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", admin_port);
    const char *argv[] = {"--form", form_path, "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_SSL_BOOTSTRAP"),
                          "--kafka-config", properties,
                          "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
                          "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                          "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                          "--min-replicas-ack", "1", "--admin-bind", "127.0.0.1", "--admin-port", portstr, NULL};
    tk_start(c, "formpipe-consumer", argv);
}

static long long pending(fp_rowstore *buffer)
{
    long long n = -1;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_pending(buffer, &n, &err), 0, "%s", err.msg);
    return n;
}

Test(kafka_tls, a_submission_travels_from_post_to_buffer_over_tls_only, .init = setup, .fini = teardown, .timeout = 120)
{
    char *props = tls_properties(tk_env("FORMPIPE_TESTENV_CA_FILE"));
    tk_proc ingest, consumer;
    int port = tk_start_ingest(&ingest, form_path, "/readyz",
                               (const char *const[]){"--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_SSL_BOOTSTRAP"),
                                                     "--kafka-config", props, "--delivery-timeout", "5s", NULL});
    char url[256], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/forms/%s", port, name);
    long st = tk_http(url, "{\"name\":\"over tls\"}", &body);
    cr_assert_eq(st, 202, "the ingest answers 202 once Kafka has it over TLS: %ld %s", st, body);
    free(body);

    int admin = tk_free_port();
    start_consumer(&consumer, admin, props);
    fp_error err = {0};
    fp_redis *redis = tk_redis();
    fp_rowstore *buffer = fp_rowstore_new(redis, "tests", name, &err);
    cr_assert_not_null(buffer, "%s", err.msg);
    double deadline = tk_now() + 60;
    long long n = 0;
    while (tk_now() < deadline && (n = pending(buffer)) < 1)
        usleep(100 * 1000);
    if (n != 1)
        tk_show_log(&consumer);
    cr_assert_eq(n, 1, "the consumer moved the submission to Redis over TLS (buffer holds %lld)", n);
    fp_rowstore_rowset rows;
    cr_assert_eq(fp_rowstore_oldest(buffer, 10, &rows, &err), 0, "%s", err.msg);
    cr_assert_eq(rows.n, 1);
    cr_assert_not_null(strstr(rows.rows[0], "over tls"), "%s", rows.rows[0]);
    fp_rowstore_rowset_clear(&rows);

    cr_assert_eq(tk_stop(&consumer, SIGTERM, 30), 0, "consumer: clean exit on SIGTERM");
    cr_assert_eq(tk_stop(&ingest, SIGTERM, 30), 0, "ingest: clean exit on SIGTERM");
    fp_rowstore_free(buffer);
    fp_redis_free(redis);
    unlink(props);
    free(props);
}

/* Polls p's log for up to secs until it names the failed certificate verification;
 * while waiting, check(arg) must hold (it asserts). */
static void log_says_verify_failed(tk_proc *p, double secs, void (*check)(void *), void *arg)
{
    double deadline = tk_now() + secs;
    int said = 0;
    while (!said && tk_now() < deadline) {
        if (check)
            check(arg);
        if (access(p->log, R_OK) == 0) {   /* the child may not have opened it yet */
            char *log = tk_read_file(p->log);
            said = strstr(log, "certificate verify failed") != NULL;
            free(log);
        }
        if (!said)
            usleep(250 * 1000);
    }
    if (!said)
        tk_show_log(p);
    cr_assert(said, "the log names the failed certificate verification");
}

static void never_ready(void *admin_port)
{
    long st = tk_http_get(*(int *)admin_port, "/readyz", NULL);
    cr_assert_neq(st, 200, "the ingest became ready with brokers it cannot verify");
}

Test(kafka_tls, an_ingest_trusting_another_ca_is_never_ready_and_accepts_nothing, .init = setup, .fini = teardown,
     .timeout = 120)
{
    char *props = tls_properties(tk_env("FORMPIPE_TESTENV_OTHER_CA_FILE"));
    int port = tk_free_port(), admin = tk_free_port();
    while (admin == port)
        admin = tk_free_port();
    char portstr[16], adminstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(adminstr, sizeof adminstr, "%d", admin);
    const char *argv[] = {"--form", form_path, "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_SSL_BOOTSTRAP"),
                          "--kafka-config", props, "--bind", "127.0.0.1", "--port", portstr,
                          "--admin-bind", "127.0.0.1", "--admin-port", adminstr, "--delivery-timeout", "2s", NULL};
    tk_proc ingest;
    tk_start(&ingest, "formpipe-ingest", argv);
    log_says_verify_failed(&ingest, 15, never_ready, &admin);
    never_ready(&admin);
    char url[256], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/forms/%s", port, name);
    long st = tk_http(url, "{\"name\":\"refused\"}", &body);
    cr_assert_eq(st, 503, "nothing is accepted that Kafka did not take: %ld %s", st, body);
    free(body);
    cr_assert_eq(tk_stop(&ingest, SIGTERM, 30), 0, "clean exit on SIGTERM");
    unlink(props);
    free(props);
}

Test(kafka_tls, a_consumer_trusting_another_ca_moves_nothing, .init = setup, .fini = teardown, .timeout = 120)
{
    /* a valid submission, over the plain listener: one the consumer would buffer */
    rd_kafka_t *producer = tk_producer();
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "name", "waiting");
    char *ev = fp_event_encode("id-tls-0000001", "tests", name, 1795000000000LL, 1, data);
    tk_produce(producer, topic, "k", ev, strlen(ev));
    tk_flush(producer);
    rd_kafka_destroy(producer);
    free(ev);
    cJSON_Delete(data);

    char *props = tls_properties(tk_env("FORMPIPE_TESTENV_OTHER_CA_FILE"));
    tk_proc consumer;
    start_consumer(&consumer, tk_free_port(), props);
    log_says_verify_failed(&consumer, 15, NULL, NULL);
    fp_error err = {0};
    fp_redis *redis = tk_redis();
    fp_rowstore *buffer = fp_rowstore_new(redis, "tests", name, &err);
    cr_assert_not_null(buffer, "%s", err.msg);
    sleep(3);   /* a trusting consumer buffers it within about a second (the test above) */
    cr_assert_eq(pending(buffer), 0, "nothing read from brokers it cannot verify");
    cr_assert_eq(tk_stop(&consumer, SIGTERM, 30), 0, "clean exit on SIGTERM");
    fp_rowstore_free(buffer);
    fp_redis_free(redis);
    unlink(props);
    free(props);
}
