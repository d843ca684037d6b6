/* apply.h — server-side apply of one object the operator owns (fieldManager
 * formpipe-operator, force), shared by the FormPipeline and FormTask reconciles: a
 * foreign object of that name is never overwritten, and an apply is skipped while the
 * object still has the generation our last identical apply produced. */
#ifndef OP_APPLY_H
#define OP_APPLY_H

#include <cjson/cJSON.h>

#include "error.h"
#include "informer.h"
#include "kube_client.h"

/* What we last applied to one object: the body's hash and the object's generation (or
 * resourceVersion for kinds without one) right after our apply. While both still match,
 * the apply is skipped. */
typedef struct op_applied_mark {
    char hash[17];
    char marker[64];
} op_applied_mark;

#define OP_APPLY_FOREIGN 1   /* an object of that name exists and is not ours: left alone */

/* Applies body as ns/name under collection ("/apis/apps/v1/namespaces/<ns>/deployments")
 * unless an object of that name exists whose controller ownerReference is not owner_uid
 * (owner_uid NULL: that is not one of the namespace's shared objects, shared.h) (returns
 * OP_APPLY_FOREIGN), or nothing changed since the apply *mark recorded. The
 * object is looked up in cache, else (not ours as far as the cache knows) on the
 * apiserver. 0 when applied or unchanged; negative with *err on failure (*mark is then
 * cleared). */
int op_apply_owned(kube_conn *conn, op_informer *cache, const char *collection, const char *ns, const char *name,
                   const cJSON *body, const char *owner_uid, op_applied_mark *mark, fp_error *err);

/* Merge-patches path (".../<name>/status") with {"status": status} when status differs
 * from old_status. FP_ENOTFOUND (deleted meanwhile) counts as done. */
int op_apply_status(kube_conn *conn, const char *path, const cJSON *status, const cJSON *old_status, fp_error *err);

#endif
