/* fp-bench-topics BOOTSTRAP PARTITIONS [delete] — creates (or with "delete", deletes) every
 * topic named on stdin, one per line, through the operator's Kafka admin client:
 * hundreds of topics in seconds, where one Kafka CLI run per topic takes a JVM start
 * each. Exits 1 naming the first topic that failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_admin.h"

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "delete") != 0)) {
        fprintf(stderr, "usage: fp-bench-topics BOOTSTRAP PARTITIONS [delete] < topics\n");
        return 2;
    }
    int partitions = atoi(argv[2]), del = argc == 4;
    fp_error err = {0};
    op_kafka *k = op_kafka_new(argv[1], NULL, NULL, 30000, &err);
    if (!k) {
        fprintf(stderr, "fp-bench-topics: %s\n", err.msg);
        return 1;
    }
    char line[512];
    int rc = 0, n = 0;
    while (!rc && fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line)
            continue;
        rc = del ? op_kafka_delete(k, line, &err) : op_kafka_create(k, line, partitions, 1, &err);
        if (rc)
            fprintf(stderr, "fp-bench-topics: %s: %s\n", line, err.msg);
        n++;
    }
    op_kafka_free(k);
    if (!rc)
        fprintf(stderr, "fp-bench-topics: %s %d topics\n", del ? "deleted" : "created", n);
    return rc ? 1 : 0;
}
