/* conditions.h — metav1.Condition lists: type, status ("True"/"False"/"Unknown"),
 * reason, message, observedGeneration and lastTransitionTime, which changes only when
 * the status of that condition flips. */
#ifndef OP_CONDITIONS_H
#define OP_CONDITIONS_H

#include <cjson/cJSON.h>

typedef struct op_condition {
    const char *type;      /* "Ready", "TopicReady", ... */
    int status;            /* 1 True, 0 False, -1 Unknown */
    const char *reason;    /* CamelCase */
    char message[256];
} op_condition;

/* Sets *c to type/status/reason and a printf-style message (cut to fit). */
void op_condition_set(op_condition *c, const char *type, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The conditions array for want[0..n-1]: lastTransitionTime is taken from prev (the
 * current status.conditions, may be NULL) when that type had the same status, else
 * now (RFC 3339). NULL on ENOMEM. */
cJSON *op_conditions_build(const cJSON *prev, const op_condition *want, size_t n,
                           long long generation, const char *now);

/* The status string of type in a conditions array, or NULL. */
const char *op_condition_status(const cJSON *conditions, const char *type);

#endif
