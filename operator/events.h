/* events.h — Kubernetes Events (core/v1) about an object, for the transitions a
 * person cares about: topic created or grown, scaled, change rejected, ownership
 * conflict. Best effort: a failure to record an Event is logged, never fatal. */
#ifndef OP_EVENTS_H
#define OP_EVENTS_H

#include <cjson/cJSON.h>

#include "kube_client.h"

/* Records an Event of type "Normal" or "Warning" about obj (which needs apiVersion,
 * kind and metadata.namespace/name/uid). */
void op_event_post(kube_conn *k, const cJSON *obj, const char *type, const char *reason,
                   const char *component, const char *instance, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

#endif
