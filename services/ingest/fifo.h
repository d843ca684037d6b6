/* fifo.h — an intrusive list in arrival order, oldest first: O(1) append at the newest
 * end and O(1) removal from anywhere. A holder embeds an fp_fifo_link and finds itself
 * again with FP_FIFO_ENTRY. The ingest keeps two per worker, both expired from the
 * oldest end: submissions waiting for Kafka (the delivery bound) and keep-alive
 * connections waiting for their next request (the idle timeout). */
#ifndef FP_INGEST_FIFO_H
#define FP_INGEST_FIFO_H

#include <stddef.h>

typedef struct fp_fifo_link {
    struct fp_fifo_link *prev, *next;
    int listed;
} fp_fifo_link;

typedef struct fp_fifo {
    fp_fifo_link *oldest, *newest;
} fp_fifo;

/* The holder of type `type` whose member `member` is link (link must not be NULL). */
#define FP_FIFO_ENTRY(link, type, member) ((type *)(void *)((char *)(link) - offsetof(type, member)))

/* Appends l (not on any list) at the newest end of f. */
void fp_fifo_push(fp_fifo *f, fp_fifo_link *l);

/* Takes l off f; nothing when l is not listed. */
void fp_fifo_remove(fp_fifo *f, fp_fifo_link *l);

#endif
