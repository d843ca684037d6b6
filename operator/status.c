/* status.c — see status.h. */
#include "status.h"

#include <stdio.h>
#include <string.h>

/* Flushing: the newest finished flush run's outcome. */
static void flushing(const op_pipeline *p, const op_observed *o, op_condition *c)
{
    const op_flush_facts *f = o->flush;
    if (f->runs == 0)
        op_condition_set(c, "Flushing", -1, "NoRunYet", "no flush run has finished yet (schedule \"%s\")", p->schedule);
    else if (f->failures_in_a_row == 0)
        op_condition_set(c, "Flushing", 1, "LastRunSucceeded", "the last run wrote %lld rows; %lld rows waiting", f->last_rows,
            f->rows_waiting);
    else if (f->spreadsheets_full)
        op_condition_set(c, "Flushing", 0, "SpreadsheetsFull", "every spreadsheet is at the cell limit: add a new one to "
            "spec.sheets.spreadsheetIds (%.120s)", f->last_error);
    else
        op_condition_set(c, "Flushing", 0, "LastRunFailed", "%d run%s in a row failed (exit %d): %.160s", f->failures_in_a_row,
            f->failures_in_a_row == 1 ? "" : "s", f->last_exit, f->last_error);
}

/* Progressing: the first of a recreated dead-letter topic, a stalled partition, too many
 * failed flush runs; Unknown before the first measurement. */
static void progressing(const op_pipeline *p, const op_observed *o, op_condition *c)
{
    const op_stall *s = o->stall;
    if (op_progress_false(c, s, o->dlq_recreated, o->dlq_topic, o->group, "stored", "the consumers'"))
        return;
    if (o->flush->failures_in_a_row >= p->max_failed_runs)
        op_condition_set(c, "Progressing", 0, "FlushFailing", "the last %d flush runs failed: %.160s", o->flush->failures_in_a_row,
            o->flush->last_error);
    else if (!s)
        op_condition_set(c, "Progressing", -1, "NotMeasured", "consumer progress not measured yet");
    else
        op_condition_set(c, "Progressing", 1, "Progressing", "%lld events wait in Kafka; every partition with lag is moving", s->lag);
}

void op_status_conditions(const op_pipeline *p, const op_observed *o, op_condition cond[OP_C_COUNT])
{
    cond[OP_C_TOPIC] = o->topic;
    if (o->ingest_note)
        op_condition_set(&cond[OP_C_INGEST], "IngestAvailable", 0, o->ingest_note_reason, "%s", o->ingest_note);
    else
        op_condition_set(&cond[OP_C_INGEST], "IngestAvailable", o->ingest_ok, o->ingest_ok ? "ReplicasReady" : "ReplicasNotReady",
            "%d/%d ingest replicas ready", o->ingest_ready, p->ingest_replicas);
    op_condition_set(&cond[OP_C_CONSUMERS], "ConsumersAvailable", o->consumers_ok,
        o->consumers_ok ? "ReplicasReady" : "ReplicasNotReady", "%d/%d consumer replicas ready", o->consumer_ready,
        o->consumers);
    if (o->tab_owner && o->tab_owner[0])
        op_condition_set(&cond[OP_C_FLUSH_SCHEDULED], "FlushScheduled", 0, "SheetInUse",
            "spreadsheet %.100s tab '%.100s' is written by FormPipeline %.100s, and two pipelines must not write one "
            "tab (their rows would overwrite each other): choose another sheet; the flush is suspended",
            p->spreadsheet_id, p->sheet, o->tab_owner);
    else if (o->cronjob_ok && o->flush_idle)
        op_condition_set(&cond[OP_C_FLUSH_SCHEDULED], "FlushScheduled", 1, "Idle", "the shared flush is suspended while no "
            "rows wait in the namespace's buffers; it resumes when rows arrive");
    else if (o->cronjob_ok)
        op_condition_set(&cond[OP_C_FLUSH_SCHEDULED], "FlushScheduled", 1, "Scheduled", "flush runs on schedule \"%s\"", p->schedule);
    else
        op_condition_set(&cond[OP_C_FLUSH_SCHEDULED], "FlushScheduled", 0, "NotScheduled", "flush CronJob %s-flush not created yet",
            p->name);
    flushing(p, o, &cond[OP_C_FLUSHING]);
    progressing(p, o, &cond[OP_C_PROGRESSING]);

    op_condition *ready = &cond[OP_C_READY];
    /* causes before effects: a misconfiguration before replicas, replicas before progress */
    static const int needed[] = {OP_C_TOPIC, OP_C_FLUSH_SCHEDULED, OP_C_INGEST, OP_C_CONSUMERS, OP_C_PROGRESSING};
    if (o->conflict && o->conflict[0]) {
        op_condition_set(ready, "Ready", 0, "OwnershipConflict", "%s", o->conflict);
        return;
    }
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
        const op_condition *c = &cond[needed[i]];
        if (c->status == 1)
            continue;
        if (needed[i] == OP_C_PROGRESSING && c->status == -1)
            continue;   /* not measured yet is no reason to hold Ready back */
        op_condition_set(ready, "Ready", 0, c->reason, "%s is not True: %.200s", c->type, c->message);
        return;
    }
    op_condition_set(ready, "Ready", 1, "AllReady", "the pipeline is running");
}

/* status.flush: the schedule and what the newest runs and the dead-letter topic say. */
static void add_flush(cJSON *status, const op_pipeline *p, const op_observed *o)
{
    cJSON *flush = cJSON_AddObjectToObject(status, "flush");
    const op_flush_facts *f = o->flush;
    cJSON_AddStringToObject(flush, "schedule", p->schedule);
    if (o->last_schedule_time)
        cJSON_AddStringToObject(flush, "lastScheduleTime", o->last_schedule_time);
    if (f->last_success[0])
        cJSON_AddStringToObject(flush, "lastSuccessfulTime", f->last_success);
    if (f->last_rows >= 0)
        cJSON_AddNumberToObject(flush, "lastRunRows", (double)f->last_rows);
    if (f->rows_waiting >= 0)
        cJSON_AddNumberToObject(flush, "rowsWaiting", (double)f->rows_waiting);
    char oldest[FP_RFC3339_MAX];
    if (f->oldest_waiting_ms >= 0) {
        fp_rfc3339_format_ms(f->oldest_waiting_ms, oldest, sizeof oldest);
        cJSON_AddStringToObject(flush, "oldestWaitingTime", oldest);
    }
    cJSON_AddNumberToObject(flush, "failedRunsInARow", f->failures_in_a_row);
    if (o->dead_letters >= 0)
        cJSON_AddNumberToObject(flush, "deadLetters", (double)o->dead_letters);
}

/* True when every member the status is built with made it in (cJSON's adds fail
 * quietly on out of memory, so the result is checked once, member by member). */
static int complete(const cJSON *status)
{
    static const char *const top[] = {"observedGeneration", "topic", "partitions", "columns", "ingest", "consumer", "flush"};
    static const char *const ingest[] = {"replicas", "readyReplicas", "url"};
    static const char *const consumer[] = {"replicas", "readyReplicas"};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(status, top[i]))
            return 0;
    for (size_t i = 0; i < sizeof ingest / sizeof ingest[0]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(status, "ingest"), ingest[i]))
            return 0;
    for (size_t i = 0; i < sizeof consumer / sizeof consumer[0]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(status, "consumer"), consumer[i]))
            return 0;
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(status, "flush"), "schedule") != NULL;
}

cJSON *op_status_build(const op_pipeline *p, const op_observed *o, const cJSON *old_status, const char *now,
                       op_condition cond[OP_C_COUNT])
{
    op_status_conditions(p, o, cond);
    cJSON *status = cJSON_CreateObject();
    cJSON_AddNumberToObject(status, "observedGeneration", (double)p->generation);
    if (o->mode)
        cJSON_AddStringToObject(status, "mode", o->mode);
    cJSON_AddStringToObject(status, "topic", p->topic);
    cJSON_AddNumberToObject(status, "partitions", o->partitions);
    if (o->topic_owned >= 0)
        cJSON_AddBoolToObject(status, "topicOwned", o->topic_owned);
    cJSON_AddItemToObject(status, "columns", cJSON_Duplicate(p->columns, 1));
    cJSON *ing = cJSON_AddObjectToObject(status, "ingest");
    cJSON_AddNumberToObject(ing, "replicas", p->ingest_replicas);
    cJSON_AddNumberToObject(ing, "readyReplicas", o->ingest_ready);
    char url[512];
    const char *scheme = p->tls_secret ? "https://" : "http://";
    snprintf(url, sizeof url, "%s%s/forms/%s", p->host ? scheme : "", p->host ? p->host : "", p->name);
    cJSON_AddStringToObject(ing, "url", url);
    cJSON *con = cJSON_AddObjectToObject(status, "consumer");
    cJSON_AddNumberToObject(con, "replicas", o->consumers);
    cJSON_AddNumberToObject(con, "readyReplicas", o->consumer_ready);
    if (o->lag >= 0)
        cJSON_AddNumberToObject(con, "lag", (double)o->lag);
    add_flush(status, p, o);
    cJSON *conds = op_conditions_build(cJSON_GetObjectItemCaseSensitive(old_status, "conditions"), cond, OP_C_COUNT,
                                       p->generation, now);
    if (!conds || !cJSON_AddItemToObject(status, "conditions", conds) || !complete(status)) {
        if (conds && !cJSON_GetObjectItemCaseSensitive(status, "conditions"))
            cJSON_Delete(conds);
        cJSON_Delete(status);
        return NULL;
    }
    return status;
}
