/* fifo.c — see fifo.h. */
#include "fifo.h"

void fp_fifo_push(fp_fifo *f, fp_fifo_link *l)
{
    l->prev = f->newest;
    l->next = NULL;
    if (f->newest)
        f->newest->next = l;
    else
        f->oldest = l;
    f->newest = l;
    l->listed = 1;
}

void fp_fifo_remove(fp_fifo *f, fp_fifo_link *l)
{
    if (!l->listed)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        f->oldest = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        f->newest = l->prev;
    l->prev = l->next = NULL;
    l->listed = 0;
}
