/* taskstatus.c — see taskstatus.h. */
#include "taskstatus.h"

#include <stdio.h>
#include <string.h>

/* Ready's reason and message when something keeps the task from running. */
static void blocked(const op_task *t, const op_task_observed *o, op_condition *c)
{
    const char *detail = o->block_detail ? o->block_detail : "";
    switch (o->block) {
    case OP_BLOCK_PIPELINE_NOT_FOUND:
        op_condition_set(c, "Ready", 0, "PipelineNotFound", "FormPipeline %s does not exist in namespace %s; nothing "
                         "runs until it does", t->pipeline, t->ns);
        break;
    case OP_BLOCK_PIPELINE_INVALID:
        op_condition_set(c, "Ready", 0, "PipelineInvalid", "FormPipeline %s cannot be read: %.180s", t->pipeline, detail);
        break;
    case OP_BLOCK_SOURCE_NOT_FOUND:
        op_condition_set(c, "Ready", 0, "SourceTaskNotFound", "spec.source.task %s names no FormTask of pipeline %s",
                         t->source_task, t->pipeline);
        break;
    case OP_BLOCK_SOURCE_NO_STREAM:
        op_condition_set(c, "Ready", 0, "SourceTaskHasNoStream", "FormTask %s produces no output stream (its kind "
                         "writes none), so there is nothing to read", t->source_task);
        break;
    case OP_BLOCK_TOPIC_MISSING:
        op_condition_set(c, "Ready", 0, "TopicMissing", "topic %s does not exist yet (the pipeline creates it)",
                         o->topic ? o->topic : "?");
        break;
    default:
        op_condition_set(c, "Ready", 0, "KafkaUnavailable", "%.200s", detail);
        break;
    }
}

static void progressing(const op_task_observed *o, op_condition *c)
{
    const op_stall *s = o->stall;
    if (op_progress_false(c, s, o->dlq_recreated, o->dlq_topic, o->group, "delivered", "the task pods'"))
        return;
    if (!s)
        op_condition_set(c, "Progressing", -1, "NotMeasured", "progress not measured yet");
    else
        op_condition_set(c, "Progressing", 1, "Progressing", "%lld events wait; every partition with lag is moving",
                         s->lag);
}

void op_taskstatus_conditions(const op_task *t, const op_task_observed *o, op_condition cond[OP_TC_COUNT])
{
    op_condition *ready = &cond[OP_TC_READY];
    if (o->block != OP_BLOCK_NONE) {
        blocked(t, o, ready);
        op_condition_set(&cond[OP_TC_PROGRESSING], "Progressing", -1, ready->reason, "%s", ready->message);
        return;
    }
    progressing(o, &cond[OP_TC_PROGRESSING]);
    const op_condition *p = &cond[OP_TC_PROGRESSING];
    if (o->conflict && o->conflict[0])
        op_condition_set(ready, "Ready", 0, "OwnershipConflict", "%s", o->conflict);
    else if (!o->available)
        op_condition_set(ready, "Ready", 0, "Deploying", "%d/%d replicas ready", o->ready_replicas, o->replicas);
    else if (p->status == 0)
        op_condition_set(ready, "Ready", 0, p->reason, "Progressing is not True: %.200s", p->message);
    else
        op_condition_set(ready, "Ready", 1, "Running", "%d/%d replicas ready, reading %s", o->ready_replicas, o->replicas,
                         o->topic);
}

/* Adds key = v when v >= 0. */
static void known(cJSON *o, const char *key, long long v)
{
    if (v >= 0)
        cJSON_AddNumberToObject(o, key, (double)v);
}

long long op_taskstatus_delivered(const op_task_observed *o)
{
    long long dead = o->dead_lettered > 0 ? o->dead_lettered : 0;
    if (o->committed < 0)
        return -1;
    return o->committed > dead ? o->committed - dead : 0;
}

cJSON *op_taskstatus_build(const op_task *t, const op_task_observed *o, const cJSON *old_status, const char *now,
                           op_condition cond[OP_TC_COUNT])
{
    op_taskstatus_conditions(t, o, cond);
    cJSON *status = cJSON_CreateObject();
    if (!status)
        return NULL;
    int ok = cJSON_AddNumberToObject(status, "observedGeneration", (double)t->generation) &&
             cJSON_AddStringToObject(status, "kind", op_task_kinds[t->kind].name);
    if (o->topic)
        ok = ok && cJSON_AddStringToObject(status, "topic", o->topic) && cJSON_AddStringToObject(status, "group", o->group) &&
             cJSON_AddStringToObject(status, "deadLetterTopic", o->dlq_topic);
    if (o->topic && o->output_topic)
        ok = ok && cJSON_AddStringToObject(status, "outputTopic", o->output_topic);
    if (o->partitions > 0)
        known(status, "partitions", o->partitions);
    if (o->block == OP_BLOCK_NONE) {
        known(status, "replicas", o->replicas);
        known(status, "readyReplicas", o->ready_replicas);
    }
    if (o->stall)
        known(status, "lag", o->stall->lag);
    if (o->committed >= 0)
        known(status, "delivered", op_taskstatus_delivered(o));
    known(status, "deadLettered", o->dead_lettered);
    cJSON *conds = op_conditions_build(cJSON_GetObjectItemCaseSensitive(old_status, "conditions"), cond, OP_TC_COUNT,
                                       t->generation, now);
    if (!ok || !conds || !cJSON_AddItemToObject(status, "conditions", conds)) {
        if (conds && !cJSON_GetObjectItemCaseSensitive(status, "conditions"))
            cJSON_Delete(conds);
        cJSON_Delete(status);
        return NULL;
    }
    return status;
}

cJSON *op_taskstatus_invalid(const cJSON *old_status, long long generation, const char *why, const char *now)
{
    op_condition want[OP_TC_COUNT];
    op_condition_set(&want[OP_TC_READY], "Ready", 0, "InvalidSpec", "%s", why);
    op_condition_set(&want[OP_TC_PROGRESSING], "Progressing", -1, "InvalidSpec", "%s", why);
    cJSON *status = old_status ? cJSON_Duplicate(old_status, 1) : cJSON_CreateObject();
    cJSON *conds = op_conditions_build(cJSON_GetObjectItemCaseSensitive(old_status, "conditions"), want, OP_TC_COUNT,
                                       generation, now);
    if (!status || !conds) {
        cJSON_Delete(status);
        cJSON_Delete(conds);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(status, "conditions");
    cJSON_DeleteItemFromObjectCaseSensitive(status, "observedGeneration");
    cJSON_AddItemToObject(status, "conditions", conds);
    if (!cJSON_AddNumberToObject(status, "observedGeneration", (double)generation)) {
        cJSON_Delete(status);
        return NULL;
    }
    return status;
}
