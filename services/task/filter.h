/* filter.h — a task's spec.filter: conditions on the CloudEvent that must all hold for
 * the task to act on it. One condition is "<path>=<JSON scalar>": path is dotted member
 * names from the event's top level ("moderation.flagged", "data.country"), the value a
 * JSON string, number, true, false or null; it holds when the member exists and equals
 * the value (strings compared after unescaping, numbers numerically). Pure. */
#ifndef FP_FILTER_H
#define FP_FILTER_H

#include <stddef.h>

#include "config.h"
#include "error.h"

#define FP_FILTER_MAX 16          /* conditions */
#define FP_FILTER_MAX_PATH 255    /* bytes of a path */

typedef struct fp_filter fp_filter;

/* Reads the conditions ("path=value" each). NULL with *err (FP_EINVAL naming the
 * condition, FP_ENOMEM). An empty list makes a filter every event passes. */
fp_filter *fp_filter_new(const fp_strlist *conds, fp_error *err);

/* Conditions in the filter. */
size_t fp_filter_count(const fp_filter *f);

/* 1 when every condition holds for the JSON object json[0..len), else 0. The text is
 * read only as far as the conditions need (callers pass events fp_event_parse took):
 * what is no object, or breaks off before a member is found, is 0. */
int fp_filter_match(const fp_filter *f, const char *json, size_t len);

void fp_filter_free(fp_filter *f);   /* NULL is fine */

#endif
