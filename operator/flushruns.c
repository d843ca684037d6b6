/* flushruns.c — see flushruns.h. */
#include "flushruns.h"

#include <stdio.h>
#include <string.h>

#include "spec.h"

/* The terminated state of the pod's first container, or NULL while it runs. */
static const cJSON *terminated(const cJSON *pod)
{
    const cJSON *cs = cJSON_GetArrayItem(op_spec_member(op_spec_member(pod, "status"), "containerStatuses"), 0);
    return op_spec_member(op_spec_member(cs, "state"), "terminated");
}

/* Reads the run out of a terminated pod. -1 when it has no name or no finish time, or
 * when it found another run holding the lock and did nothing (no outcome). */
static int read_run(const cJSON *pod, const cJSON *t, op_flush_run *run)
{
    const char *name = cJSON_GetStringValue(op_spec_member(op_spec_member(pod, "metadata"), "name"));
    const char *finished = cJSON_GetStringValue(op_spec_member(t, "finishedAt"));
    memset(run, 0, sizeof *run);
    if (!name || !finished || fp_rfc3339_parse_ms(finished, &run->finished_ms) < 0)
        return -1;
    snprintf(run->pod, sizeof run->pod, "%s", name);
    snprintf(run->finished, sizeof run->finished, "%s", finished);
    run->exit_code = (int)op_spec_num(t, "exitCode", 1);
    run->rows = run->rows_left = run->oldest_left_ms = run->quota_wait_ms = run->throttled = -1;
    const char *message = cJSON_GetStringValue(op_spec_member(t, "message"));
    cJSON *summary = message ? cJSON_Parse(message) : NULL;
    if (cJSON_IsTrue(op_spec_member(summary, "lock_busy"))) {
        cJSON_Delete(summary);
        return -1;
    }
    if (cJSON_IsObject(summary)) {
        run->rows = op_spec_num(summary, "rows", -1);
        run->rows_left = op_spec_num(summary, "rows_left", -1);
        run->oldest_left_ms = op_spec_num(summary, "oldest_left_ms", -1);
        run->quota_wait_ms = op_spec_num(summary, "quota_wait_ms", -1);
        run->throttled = op_spec_num(summary, "sheets_throttled", -1);
        run->spreadsheets_full = cJSON_IsTrue(op_spec_member(summary, "spreadsheets_full"));
        const char *e = cJSON_GetStringValue(op_spec_member(summary, "error"));
        snprintf(run->error, sizeof run->error, "%s", e ? e : "");
    } else if (message && run->exit_code != 0) {   /* not our summary: the log's tail */
        snprintf(run->error, sizeof run->error, "%s", message);
    }
    cJSON_Delete(summary);
    if (run->exit_code != 0 && !run->error[0])
        snprintf(run->error, sizeof run->error, "exit status %d", run->exit_code);
    return 0;
}

/* Field by field: struct padding must not make two equal runs differ. */
static int same_run(const op_flush_run *a, const op_flush_run *b)
{
    return a->finished_ms == b->finished_ms && a->exit_code == b->exit_code && a->rows == b->rows &&
           a->rows_left == b->rows_left && a->oldest_left_ms == b->oldest_left_ms &&
           a->quota_wait_ms == b->quota_wait_ms && a->throttled == b->throttled && a->spreadsheets_full == b->spreadsheets_full &&
           strcmp(a->pod, b->pod) == 0 && strcmp(a->error, b->error) == 0;
}

int op_flushruns_finished(const cJSON *pod)
{
    return terminated(pod) != NULL;
}

int op_flushruns_record(op_flushruns *r, const cJSON *pod)
{
    const cJSON *t = terminated(pod);
    op_flush_run run;
    if (!t || read_run(pod, t, &run) < 0)
        return 0;
    long long counted = 0;   /* rows of this pod already in rows_total */
    for (int i = 0; i < r->n; i++) {   /* seen before: drop the old entry, insert again */
        if (strcmp(r->run[i].pod, run.pod) == 0) {
            if (same_run(&r->run[i], &run))
                return 0;
            counted = r->run[i].rows > 0 ? r->run[i].rows : 0;
            memmove(&r->run[i], &r->run[i + 1], (size_t)(r->n - i - 1) * sizeof run);
            r->n--;
            break;
        }
    }
    int at = 0;
    while (at < r->n && r->run[at].finished_ms >= run.finished_ms)
        at++;
    if (at == OP_FLUSHRUNS_KEPT)
        return 0;
    if (run.rows > counted)
        r->rows_total += run.rows - counted;
    int keep = r->n < OP_FLUSHRUNS_KEPT ? r->n : OP_FLUSHRUNS_KEPT - 1;
    memmove(&r->run[at + 1], &r->run[at], (size_t)(keep - at) * sizeof run);
    r->run[at] = run;
    r->n = keep + 1;
    return 1;
}

void op_flushruns_facts(const op_flushruns *r, op_flush_facts *out)
{
    memset(out, 0, sizeof *out);
    out->runs = r->n;
    out->last_rows = out->rows_waiting = out->oldest_waiting_ms = out->quota_wait_ms = out->throttled = -1;
    if (r->n == 0)
        return;
    out->last_rows = r->run[0].rows;
    out->rows_waiting = r->run[0].rows_left;
    out->oldest_waiting_ms = r->run[0].oldest_left_ms;
    out->quota_wait_ms = r->run[0].quota_wait_ms;
    out->throttled = r->run[0].throttled;
    out->last_exit = r->run[0].exit_code;
    out->spreadsheets_full = r->run[0].spreadsheets_full;
    int i = 0;
    while (i < r->n && r->run[i].exit_code != 0)
        i++;
    out->failures_in_a_row = i;
    if (i < r->n)
        snprintf(out->last_success, sizeof out->last_success, "%s", r->run[i].finished);
    if (i > 0)
        snprintf(out->last_error, sizeof out->last_error, "%s", r->run[0].error);
}
