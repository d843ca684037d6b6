/* strmap.h — a hash map from strings to pointers (chained, grows by doubling).
 * The map copies keys; values are the caller's (a free function given at creation,
 * or NULL, releases them on removal and in op_map_free). Not thread-safe. */
#ifndef OP_STRMAP_H
#define OP_STRMAP_H

#include <stddef.h>

typedef struct op_map op_map;

/* NULL on ENOMEM. free_value may be NULL. */
op_map *op_map_new(void (*free_value)(void *));
void op_map_free(op_map *m);   /* NULL is fine */

/* Stores value under key, releasing a previous value. 0 or FP_ENOMEM. */
int op_map_put(op_map *m, const char *key, void *value);

void *op_map_get(const op_map *m, const char *key);   /* NULL when absent */
int op_map_has(const op_map *m, const char *key);

/* Removes key (releasing its value). 1 if it was there, else 0. */
int op_map_del(op_map *m, const char *key);

/* Removes key and hands its value to the caller instead of releasing it. */
void *op_map_take(op_map *m, const char *key);

size_t op_map_len(const op_map *m);

/* Calls fn for every entry; fn must not change the map. */
void op_map_each(const op_map *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx);

#endif
