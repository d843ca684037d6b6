/* fp-bench-read: the reference for the task benchmark — reads COUNT messages of TOPIC
 * from the beginning in a fresh consumer group with librdkafka (the client formpipe-task
 * reads with), doing nothing with them, and prints "<seconds> <messages/s>".
 * Usage: fp-bench-read BOOTSTRAP TOPIC COUNT */
#include "clock.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    char err[512], group[64];
    if (argc != 4) {
        fprintf(stderr, "usage: fp-bench-read BOOTSTRAP TOPIC COUNT\n");
        return 2;
    }
    long n = atol(argv[3]);
    snprintf(group, sizeof group, "fp-bench-read-%lld", fp_clock_wall_ms());
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", argv[1]}, {"group.id", group},
                           {"auto.offset.reset", "earliest"}, {"enable.auto.commit", "false"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (rd_kafka_conf_set(c, kv[i][0], kv[i][1], err, sizeof err)) {
            fprintf(stderr, "fp-bench-read: %s\n", err);
            return 1;
        }
    }
    rd_kafka_t *k = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!k) {
        fprintf(stderr, "fp-bench-read: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(k);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(k, t);
    rd_kafka_topic_partition_list_destroy(t);
    long got = 0;
    long long t0 = 0, deadline = fp_clock_mono_ms() + 600000;
    while (got < n && fp_clock_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k, 100);
        if (!m)
            continue;
        if (!m->err) {
            if (!got)
                t0 = fp_clock_mono_ms();
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    double secs = (double)(fp_clock_mono_ms() - t0) / 1000.0;
    rd_kafka_consumer_close(k);
    rd_kafka_destroy(k);
    if (got < n) {
        fprintf(stderr, "fp-bench-read: read %ld of %ld messages in 600 s\n", got, n);
        return 1;
    }
    printf("%.3f %.0f\n", secs, (double)n / (secs > 0 ? secs : 0.001));
    return 0;
}
