/* podspec.h — the pod settings of the pods the operator makes (ingest, consumer, flush,
 * task): resources, imagePullSecrets, nodeSelector, tolerations, affinity,
 * topologySpreadConstraints, priorityClassName, extra labels and annotations. One shape
 * everywhere (FormPipeline spec.ingest.pod / spec.consumer.pod / spec.sheets.pod,
 * FormTask spec.pod, the chart's pipelines.pods.*). Layers, later wins, per field:
 *   built-in defaults < operator-wide ("default") < operator per component < the resource's.
 * "Per field": resources.requests.<name> and resources.limits.<name>, and each key of
 * nodeSelector, labels and annotations, are fields of their own; every other member
 * (a list, affinity.<kind>, priorityClassName) is replaced whole (an empty list clears
 * what a lower layer set). Pure: no I/O but op_podspec_load_defaults. */
#ifndef OP_PODSPEC_H
#define OP_PODSPEC_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

typedef enum { OP_POD_INGEST, OP_POD_CONSUMER, OP_POD_FLUSH, OP_POD_TASK, OP_POD_COUNT } op_pod_component;

/* "ingest", "consumer", "flush", "task": the keys of the operator's defaults file. */
extern const char *const op_pod_component_names[OP_POD_COUNT];

/* Checks one pod settings object (NULL is fine): only known members, each of the JSON
 * type the CRD gives it, no label or annotation key of the operator's own
 * (app.kubernetes.io/, formpipe.io/). FP_EINVAL with *err naming "<path>.<member>". */
int op_podspec_check(const cJSON *pod, const char *path, fp_error *err);

/* Reads the operator's defaults file (JSON: {"default": POD, "ingest": POD, ...}, each
 * checked). NULL with *err; an empty file name gives an empty object. The caller owns it. */
cJSON *op_podspec_load_defaults(const char *file, fp_error *err);

/* Merges layers[0..n-1] (NULL entries skipped; later wins, per field as above) into a
 * new object the caller owns. NULL on ENOMEM. */
cJSON *op_podspec_merge(const cJSON *const *layers, size_t n);

/* The settings of component c: built-in < defaults["default"] < defaults[c] < extra <
 * own (defaults, extra and own may be NULL). NULL on ENOMEM. */
cJSON *op_podspec_for(op_pod_component c, const cJSON *defaults, const cJSON *extra, const cJSON *own);

/* Writes merged settings into a pod template: into podspec imagePullSecrets,
 * nodeSelector, tolerations, affinity, topologySpreadConstraints (a constraint without a
 * labelSelector selects the component's own pods: matchLabels selector) and
 * priorityClassName; the container's resources; labels and annotations into the
 * template's metadata (keys already there, the operator's own, are kept). */
void op_podspec_apply(const cJSON *settings, cJSON *tmpl_metadata, cJSON *podspec, cJSON *container,
                      const cJSON *selector);

/* True when the settings request CPU (an HPA on CPU utilization needs a request). */
int op_podspec_requests_cpu(const cJSON *settings);

#endif
