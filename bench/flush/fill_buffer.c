/* fp-bench-fill: puts COUNT rows of the seed-004 student form straight into a
 * pipeline's Redis buffer (through Sentinel), as the consumer would, for the flush
 * benchmark. Usage: fp-bench-fill SENTINELS MASTER PASSWORD_FILE NAMESPACE NAME COUNT */
#include "rowstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 1000

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: fp-bench-fill SENTINELS MASTER PASSWORD_FILE NAMESPACE NAME COUNT\n");
        return 2;
    }
    char password[256] = "";
    FILE *f = fopen(argv[3], "r");
    if (!f || !fgets(password, sizeof password, f)) {
        fprintf(stderr, "fp-bench-fill: cannot read %s\n", argv[3]);
        return 1;
    }
    fclose(f);
    password[strcspn(password, "\r\n")] = '\0';
    fp_error err = {0};
    fp_redis_config cfg = {.sentinels = argv[1], .master_name = argv[2], .password = password};
    fp_redis *redis = fp_redis_new(&cfg, &err);
    fp_rowstore *buf = redis ? fp_rowstore_new(redis, argv[4], argv[5], &err) : NULL;
    if (!buf) {
        fprintf(stderr, "fp-bench-fill: %s\n", err.msg);
        return 1;
    }
    static const char *const columns[] = {"name", "roll", "university", "cgpa", "gender", "age", "email", "mobile"};
    long n = atol(argv[6]);
    static fp_rowstore_row rows[CHUNK];
    static char ids[CHUNK][32];
    static size_t at[CHUNK];
    fp_buf text;
    fp_buf_init(&text, (size_t)CHUNK * 1024);
    for (long base = 0; base < n; base += CHUNK) {
        int k = n - base < CHUNK ? (int)(n - base) : CHUNK;
        fp_buf_reset(&text);
        for (int j = 0; j < k; j++) {
            char data[320];
            fp_event ev = {0};
            snprintf(ids[j], sizeof ids[j], "bench-%09ld", base + j);
            snprintf(data, sizeof data,
                     "{\"name\":\"Asha Verma\",\"roll\":\"%ld\",\"university\":\"Example University\",\"cgpa\":8.7,"
                     "\"gender\":\"F\",\"age\":21,\"email\":\"asha.verma@example.com\",\"mobile\":\"+919876543210\"}",
                     base + j);
            cJSON *d = cJSON_Parse(data);
            char *json = fp_event_encode(ids[j], argv[4], argv[5], 1795442727123LL, 1, d);
            int rc = json ? fp_event_parse(json, strlen(json), &ev, &err) : fp_error_set(&err, FP_ENOMEM, "out of memory");
            at[j] = text.len;
            if (!rc)
                rc = fp_rowstore_row_append(&text, &ev, columns, 8, NULL, &err);
            if (!rc)
                rc = fp_buf_add(&text, "", 1);
            fp_event_clear(&ev);
            free(json);
            cJSON_Delete(d);
            if (rc) {
                fprintf(stderr, "fp-bench-fill: %s\n", err.msg[0] ? err.msg : "out of memory");
                return 1;
            }
        }
        for (int j = 0; j < k; j++)
            rows[j] = (fp_rowstore_row){ids[j], 1795442727123LL + base + j, text.data + at[j]};
        long long added;
        if (fp_rowstore_insert(buf, rows, (size_t)k, &added, &err)) {
            fprintf(stderr, "fp-bench-fill: %s\n", err.msg);
            return 1;
        }
    }
    fp_buf_free(&text);
    fp_rowstore_free(buf);
    fp_redis_free(redis);
    return 0;
}
