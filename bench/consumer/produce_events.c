/* fp-bench-produce: produces N distinct submission events (CloudEvents, the shape
 * formpipe-ingest writes) to a topic, for the consumer and task benchmarks: as fast as
 * the broker takes them, or paced at RATE events/s with each event's time the moment it
 * was produced (so a reader can measure delivery latency from it).
 * Usage: fp-bench-produce BOOTSTRAP TOPIC NAMESPACE NAME COUNT [RATE] */
#include "clock.h"
#include "event.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        failed++;
}

int main(int argc, char **argv)
{
    char err[512];
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: fp-bench-produce BOOTSTRAP TOPIC NAMESPACE NAME COUNT [RATE]\n");
        return 2;
    }
    long n = atol(argv[5]);
    double rate = argc == 7 ? atof(argv[6]) : 0;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", argv[1]}, {"enable.idempotence", "true"}, {"acks", "all"},
                           {"linger.ms", "20"}, {"batch.size", "1000000"}, {"compression.type", "lz4"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (rd_kafka_conf_set(c, kv[i][0], kv[i][1], err, sizeof err)) {
            fprintf(stderr, "fp-bench-produce: %s\n", err);
            return 1;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!p) {
        fprintf(stderr, "fp-bench-produce: %s\n", err);
        return 1;
    }
    if (rate > 0) {   /* connected and with a producer id before the first timed event */
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(p, 1, NULL, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_metadata_destroy(md);
        for (long long until = fp_clock_mono_ms() + 1000; fp_clock_mono_ms() < until;)
            rd_kafka_poll(p, 100);
    }
    long long base = (long long)time(NULL) * 1000, start_ms = fp_clock_mono_ms();
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "name", "Asha Verma");
    cJSON *roll = cJSON_AddStringToObject(data, "roll", "0");
    cJSON_AddStringToObject(data, "university", "Example University");
    cJSON_AddNumberToObject(data, "cgpa", 8.7);
    cJSON_AddStringToObject(data, "gender", "F");
    cJSON_AddNumberToObject(data, "age", 21);
    cJSON_AddStringToObject(data, "email", "asha.verma@example.com");
    cJSON_AddStringToObject(data, "mobile", "+919876543210");
    for (long i = 0; i < n; i++) {
        char id[32], r[16];
        snprintf(id, sizeof id, "bench-%09ld", i);
        snprintf(r, sizeof r, "%ld", i % 100000);
        cJSON_SetValuestring(roll, r);
        long long at = base + i;
        if (rate > 0) {
            long long due = start_ms + (long long)(i * 1000.0 / rate);
            while (fp_clock_mono_ms() < due)
                rd_kafka_poll(p, (int)(due - fp_clock_mono_ms()));
            at = fp_clock_wall_ms();
        }
        char *ev = fp_event_encode(id, argv[3], argv[4], at, 1, data);
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_KEY(r, strlen(r)),
                                                      RD_KAFKA_V_VALUE(ev, strlen(ev)),
                                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(p, 10);
                continue;
            }
            if (e) {
                fprintf(stderr, "fp-bench-produce: %s\n", rd_kafka_err2str(e));
                return 1;
            }
            break;
        }
        rd_kafka_poll(p, 0);
    }
    rd_kafka_flush(p, 300000);
    cJSON_Delete(data);
    rd_kafka_destroy(p);
    if (failed) {
        fprintf(stderr, "fp-bench-produce: %ld events not acknowledged\n", failed);
        return 1;
    }
    return 0;
}
