/* jsonb.h — small builders for the Kubernetes objects the operator writes (children.c,
 * shared.c, taskdeploy.c). Each adds to o and returns the new item where there is one.
 * A NULL item (out of memory) is harmless: cJSON ignores it, and the caller's final
 * print of the object fails, which callers treat as FP_ENOMEM. */
#ifndef OP_JSONB_H
#define OP_JSONB_H

#include <cjson/cJSON.h>

cJSON *op_jb_obj(cJSON *o, const char *k);                   /* o[k] = {} */
cJSON *op_jb_arr(cJSON *o, const char *k);                   /* o[k] = [] */
void op_jb_str(cJSON *o, const char *k, const char *v);      /* o[k] = "v" */
void op_jb_num(cJSON *o, const char *k, double v);           /* o[k] = v */
void op_jb_flag(cJSON *o, const char *k, int v);             /* o[k] = true/false */
cJSON *op_jb_push_obj(cJSON *array);                         /* array += {} */

/* array += one string made from fmt, of any length (a null item when out of memory, so
 * the apply fails loudly). */
void op_jb_argf(cJSON *array, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
