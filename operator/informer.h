/* informer.h — keeps a local copy of one kind of object: a paged list, then a watch
 * from the list's resourceVersion with bookmarks; a dropped watch resumes from the
 * last version seen (backoff 800 ms doubling to 30 s), a 410 Gone relists and reports
 * the differences. Each change is reported to a callback from the informer's thread.
 * The cache drops managedFields and any top-level fields the caller names, so memory
 * stays proportional to what the controller reads. */
#ifndef OP_INFORMER_H
#define OP_INFORMER_H

#include <cjson/cJSON.h>

#include "error.h"
#include "kube_client.h"
#include "metrics.h"

typedef enum { OP_EV_ADDED, OP_EV_MODIFIED, OP_EV_DELETED } op_event_type;

/* obj is borrowed for the duration of the call (already trimmed). */
typedef void (*op_informer_fn)(void *ctx, op_event_type type, const cJSON *obj);

typedef struct op_informer_config {
    const char *name;            /* for logs: "formpipelines", "deployments", ... */
    const char *path;            /* collection path, e.g. /apis/apps/v1/deployments */
    const char *label_selector;  /* NULL: everything */
    const char *const *strip;    /* NULL-terminated top-level fields not cached, or NULL */
    int page_size;               /* list page size (limit=) */
    int watch_timeout_s;         /* timeoutSeconds of each watch request */
    long long backoff_initial_ms, backoff_max_ms;
    op_informer_fn fn;
    void *ctx;
    fp_series *restarts;         /* counts watch restarts and relists; may be NULL */
} op_informer_config;

typedef struct op_informer op_informer;

/* Starts the informer's thread. cfg's strings must outlive it. */
op_informer *op_informer_start(kube_client *c, const op_informer_config *cfg, fp_error *err);

/* Stops the thread (within a second) and frees the cache. NULL is fine. */
void op_informer_stop(op_informer *inf);

/* A copy of the cached object "namespace/name" (the caller frees it), or NULL. */
cJSON *op_informer_get(op_informer *inf, const char *key);

/* True once the first list has been delivered. */
int op_informer_synced(op_informer *inf);

/* Calls fn with every cached key (under the informer's lock: fn must be quick and
 * must not call back into the informer). */
void op_informer_each_key(op_informer *inf, void (*fn)(void *ctx, const char *key), void *ctx);

/* "namespace/name" of obj into out. 0, or FP_EINVAL when obj has no name. */
int op_object_key(const cJSON *obj, char *out, size_t outsz);

#endif
