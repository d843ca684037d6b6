/* libFuzzer target: what formpipe-consumer does with a Kafka message, minus Kafka and
 * Redis. The input is the payload: it is parsed as a CloudEvent (fp_event_parse, the
 * strict allocation-free reader) and, when accepted, turned into a buffer row with the
 * event's own field names as columns. Checked on the way: a refused event says why;
 * what the strict reader accepts cJSON accepts too; every row is a JSON array of
 * [id, time, one value per column]. Any sanitizer report or abort is a finding. */
#include "rowstore.h"
#include "event.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fp_event ev;
    fp_error err = {0};
    if (fp_event_parse((const char *)data, size, &ev, &err)) {
        check(err.msg[0] != '\0', "a refused event says why");
        fp_event_clear(&ev);
        return 0;
    }
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    check(doc != NULL, "cJSON accepts what the strict reader accepts");
    check(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "data")) == (int)ev.nfields, "every member of data is a field");
    cJSON_Delete(doc);

    const char **columns = malloc((ev.nfields + 1) * sizeof *columns);
    check(columns != NULL, "memory");
    for (size_t i = 0; i < ev.nfields; i++)
        columns[i] = ev.fields[i].name;
    fp_buf row;
    size_t matched = 0;
    fp_buf_init(&row, FP_ROWSTORE_MAX_ROW);
    if (fp_rowstore_row_append(&row, &ev, columns, ev.nfields, &matched, &err) == 0) {
        cJSON *r = cJSON_Parse(row.data);
        check(cJSON_IsArray(r) && cJSON_GetArraySize(r) == (int)ev.nfields + 2, "a row is [id, time, columns...]");
        check(matched == ev.nfields, "every column has its field");
        cJSON_Delete(r);
    } else {
        check(err.msg[0] != '\0' && row.len == 0, "a refused row says why and leaves nothing");
    }
    fp_buf_free(&row);
    free(columns);
    fp_event_clear(&ev);
    return 0;
}
