/* taskdeploy.h — the Deployment of one FormTask as a server-side-apply body: named
 * <task>-task, controlled by the FormTask, pods labelled app.kubernetes.io/component=task,
 * formpipe.io/pipeline and formpipe.io/task, built with the same pod building blocks as
 * the pipeline's workloads (children.h). webhook runs formpipe-task with its command line;
 * container runs the team's image with the task's facts in FORMPIPE_* variables. Pure. */
#ifndef OP_TASKDEPLOY_H
#define OP_TASKDEPLOY_H

#include <cjson/cJSON.h>

#include "pipeline.h"
#include "task.h"

#define OP_TASK_WEBHOOK_DIR "/etc/formpipe/webhook"
#define OP_TASK_SMTP_DIR "/etc/formpipe/smtp"   /* the email kind's SMTP Secret: url, username, password */
#define OP_TASK_ADMIN_PORT 9090
#define OP_TASK_WORDS_DIR "/etc/formpipe/words"   /* the moderate kind's ConfigMap (whole volume: updates arrive) */

/* The apply body. image_task is formpipe-task's image. NULL on ENOMEM. */
cJSON *op_taskdeploy_build(const op_task *t, const op_pipeline *p, const op_task_route *r, const op_defaults *d,
                           const char *image_task, int replicas);

#endif
