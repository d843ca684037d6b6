/* targets.h — which pipeline writes which sheet tab. Two pipelines writing one tab would
 * write over each other's rows (each keeps its own next-row position), so a tab has one
 * writer: the pipeline created first (then the smaller key). A pipeline writes its tab
 * in each spreadsheet of its list (spreadsheetId, then spreadsheetIds, filled in turn),
 * so two pipelines share a tab when their lists share a spreadsheet and their tab titles
 * match without regard to case, as Google matches them. The controller feeds it from
 * FormPipeline events; reconcile asks who owns a pipeline's tab. Not thread-safe (the
 * controller's lock guards it). */
#ifndef OP_TARGETS_H
#define OP_TARGETS_H

#include <stddef.h>

#define OP_TARGETS_KEY_MAX 512   /* "ns/name" */

typedef struct op_targets op_targets;

op_targets *op_targets_new(void);           /* NULL on ENOMEM */
void op_targets_free(op_targets *t);        /* NULL is fine */

/* Records that pipeline key ("ns/name", created at created_ms) writes tab sheet of the
 * nids spreadsheets ids, replacing what it wrote before; nids 0 forgets the pipeline.
 * Writes into changed[0] and changed[1] ("" when unused) the keys of other pipelines
 * that became or stopped being a tab's owner because of this, so their status can be
 * refreshed. 0 or FP_ENOMEM (the pipeline is then forgotten: it owns nothing). */
int op_targets_set(op_targets *t, const char *key, const char *const *ids, size_t nids, const char *sheet,
                   long long created_ms, char changed[2][OP_TARGETS_KEY_MAX]);

/* The key of the pipeline that owns key's tab into owner. 1 when that is another
 * pipeline, 0 when key owns it (or is not recorded). */
int op_targets_owner(const op_targets *t, const char *key, char *owner, size_t ownersz);

#endif
