/* Smoke test against the real Kafka broker of scripts/testenv: create a topic with
 * the Admin API, produce with the idempotent producer (acks=all), consume it back
 * with a consumer group. */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include "testkit.h"

#define NMSG 20
#define PARTITIONS 3

static int delivered, delivery_errors;
static int32_t partition_of[NMSG];

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        delivery_errors++;
        return;
    }
    int idx = (int)(intptr_t)m->_private;
    partition_of[idx] = m->partition;
    delivered++;
}

static rd_kafka_conf_t *base_conf(const char *bootstrap)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err), RD_KAFKA_CONF_OK, "%s", err);
    return c;
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    cr_assert_eq(rd_kafka_conf_set(c, k, v, err, sizeof err), RD_KAFKA_CONF_OK, "%s=%s: %s", k, v, err);
}

Test(kafka, produce_idempotently_and_consume_back, .timeout = 180)
{
    const char *bootstrap = tk_env("FORMPIPE_KAFKA_BOOTSTRAP");
    char topic[128], group[128], errstr[512];
    tk_unique(topic, sizeof topic, "fp-smoke");
    tk_unique(group, sizeof group, "fp-smoke-group");

    rd_kafka_conf_t *pc = base_conf(bootstrap);
    set(pc, "enable.idempotence", "true");
    set(pc, "acks", "all");
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
    cr_assert_not_null(producer, "%s", errstr);

    tk_topic_create(topic, PARTITIONS);

    for (int i = 0; i < NMSG; i++) {
        char key[32], val[64];
        snprintf(key, sizeof key, "key-%d", i % 5);
        snprintf(val, sizeof val, "value-%d", i);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(val, strlen(val)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
        cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(err));
    }
    cr_assert_eq(rd_kafka_flush(producer, 60000), RD_KAFKA_RESP_ERR_NO_ERROR, "flush timed out");
    cr_assert_eq(delivery_errors, 0);
    cr_assert_eq(delivered, NMSG, "delivery reports: %d of %d", delivered, NMSG);
    for (int i = 5; i < NMSG; i++)
        cr_assert_eq(partition_of[i], partition_of[i % 5], "same key, same partition (message %d)", i);

    rd_kafka_conf_t *cc = base_conf(bootstrap);
    set(cc, "group.id", group);
    set(cc, "auto.offset.reset", "earliest");
    set(cc, "enable.auto.commit", "false");
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr);
    cr_assert_not_null(consumer, "%s", errstr);
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    cr_assert_eq(rd_kafka_subscribe(consumer, subs), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(subs);

    int seen[NMSG] = {0}, got = 0;
    double deadline = tk_now() + 60;
    while (got < NMSG && tk_now() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 500);
        if (!m)
            continue;
        if (!m->err) {
            int idx;
            cr_assert_eq(sscanf((const char *)m->payload, "value-%d", &idx), 1);
            cr_assert(idx >= 0 && idx < NMSG);
            char key[32];
            snprintf(key, sizeof key, "key-%d", idx % 5);
            cr_assert_eq(m->key_len, strlen(key));
            cr_assert_eq(memcmp(m->key, key, m->key_len), 0, "key of message %d", idx);
            cr_assert_eq(m->partition, partition_of[idx], "message %d read from its partition", idx);
            cr_assert_eq(seen[idx], 0, "message %d consumed twice", idx);
            seen[idx] = 1;
            got++;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            cr_log_warn("consumer: %s", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    cr_assert_eq(got, NMSG, "consumed %d of %d messages within 60 s", got, NMSG);
    cr_assert_eq(rd_kafka_commit(consumer, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);

    tk_topic_delete(topic);
    rd_kafka_destroy(producer);
}
