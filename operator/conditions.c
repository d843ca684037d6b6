/* conditions.c — see conditions.h. */
#include "conditions.h"

#include <stdarg.h>

#include <stdio.h>
#include <string.h>

static const char *status_text(int s)
{
    return s > 0 ? "True" : s == 0 ? "False" : "Unknown";
}

static const cJSON *find(const cJSON *conditions, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, conditions) {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type"));
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

const char *op_condition_status(const cJSON *conditions, const char *type)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(find(conditions, type), "status"));
}

cJSON *op_conditions_build(const cJSON *prev, const op_condition *want, size_t n,
                           long long generation, const char *now)
{
    cJSON *out = cJSON_CreateArray();
    for (size_t i = 0; out && i < n; i++) {
        const op_condition *w = &want[i];
        const cJSON *old = find(prev, w->type);
        const char *old_status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(old, "status"));
        const char *old_time = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(old, "lastTransitionTime"));
        const char *status = status_text(w->status);
        const char *when = old_status && old_time && strcmp(old_status, status) == 0 ? old_time : now;
        cJSON *c = cJSON_CreateObject();
        if (!c) {
            cJSON_Delete(out);
            return NULL;
        }
        cJSON_AddStringToObject(c, "type", w->type);
        cJSON_AddStringToObject(c, "status", status);
        cJSON_AddNumberToObject(c, "observedGeneration", (double)generation);
        cJSON_AddStringToObject(c, "lastTransitionTime", when);
        cJSON_AddStringToObject(c, "reason", w->reason);
        cJSON_AddStringToObject(c, "message", w->message);
        cJSON_AddItemToArray(out, c);
    }
    return out;
}

void op_condition_set(op_condition *c, const char *type, int status, const char *reason, const char *fmt, ...)
{
    c->type = type;
    c->status = status;
    c->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
}
