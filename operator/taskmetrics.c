/* taskmetrics.c — see taskmetrics.h. */
#include "taskmetrics.h"

#include <stdlib.h>

enum { G_LAG, G_READY, G_PROGRESSING, G_DELIVERED, G_DEAD, G_COUNT };

static const fp_metric_def families[G_COUNT] = {
    [G_LAG] = {"formpipe_formtask_lag", "Events in Kafka the task's consumer group has not committed."},
    [G_READY] = {"formpipe_formtask_ready", "1 while the task's Ready condition is True."},
    [G_PROGRESSING] = {"formpipe_formtask_progressing", "1 while Progressing is True, 0 while False (absent: not measured yet)."},
    [G_DELIVERED] = {"formpipe_formtask_delivered", "Events the task committed minus those it dead-lettered."},
    [G_DEAD] = {"formpipe_formtask_dead_letters", "Events on the task's dead-letter topic since it was created."},
};

struct op_taskmetrics {
    fp_metric *g[G_COUNT];
};

op_taskmetrics *op_taskmetrics_new(fp_metrics *m, fp_error *err)
{
    static const char *const labels[] = {"namespace", "pipeline", "task", NULL};
    op_taskmetrics *tm = calloc(1, sizeof *tm);
    if (!tm) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    if (fp_metrics_gauges(m, families, G_COUNT, labels, tm->g, err) < 0) {
        free(tm);
        return NULL;
    }
    return tm;
}

void op_taskmetrics_free(op_taskmetrics *tm)
{
    free(tm);
}

void op_taskmetrics_set(op_taskmetrics *tm, const op_task *t, const op_task_observed *o,
                        const op_condition cond[OP_TC_COUNT])
{
    const char *const labels[] = {t->ns, t->pipeline, t->name};
    fp_metric_put(tm->g[G_LAG], labels, o->stall ? (double)o->stall->lag : -1);
    fp_metric_put(tm->g[G_READY], labels, cond[OP_TC_READY].status == 1);
    fp_metric_put(tm->g[G_PROGRESSING], labels, cond[OP_TC_PROGRESSING].status);   /* -1 Unknown: absent */
    fp_metric_put(tm->g[G_DELIVERED], labels, (double)op_taskstatus_delivered(o));
    fp_metric_put(tm->g[G_DEAD], labels, (double)o->dead_lettered);
}

void op_taskmetrics_forget(op_taskmetrics *tm, const char *ns, const char *pipeline, const char *task)
{
    const char *const labels[] = {ns, pipeline, task};
    for (int i = 0; i < G_COUNT; i++)
        fp_metric_forget(tm->g[i], labels);
}
