/* targets.h — which pipeline writes which sheet tab. Two pipelines writing one tab would
 * write over each other's rows (each keeps its own next-row position), so a tab has one
 * writer: the pipeline created first (then the smaller key). Tab titles are matched
 * without regard to case, as Google does. The controller feeds it from FormPipeline
 * events; reconcile asks who owns a pipeline's tab. Not thread-safe (the controller's
 * lock guards it). */
#ifndef OP_TARGETS_H
#define OP_TARGETS_H

#include <stddef.h>

typedef struct op_targets op_targets;

op_targets *op_targets_new(void);           /* NULL on ENOMEM */
void op_targets_free(op_targets *t);        /* NULL is fine */

/* Records that pipeline key ("ns/name", created at created_ms) writes spreadsheet/sheet,
 * replacing what it wrote before; spreadsheet NULL forgets the pipeline. Writes into
 * changed (when not NULL) the key of a pipeline that became or stopped being a tab's
 * owner because of this ("" when none), so its status can be refreshed. 0 or FP_ENOMEM. */
int op_targets_set(op_targets *t, const char *key, const char *spreadsheet, const char *sheet, long long created_ms,
                   char *changed, size_t changedsz);

/* The key of the pipeline that owns key's tab into owner. 1 when that is another
 * pipeline, 0 when key owns it (or is not recorded). */
int op_targets_owner(const op_targets *t, const char *key, char *owner, size_t ownersz);

#endif
