/* kube_yaml.h — reads a YAML document (a kubeconfig) into a cJSON tree with libyaml.
 * Mappings become objects, sequences arrays, every scalar a string: the caller reads
 * the types it expects. Anchors/aliases are refused (kubeconfigs do not use them). */
#ifndef KUBE_YAML_H
#define KUBE_YAML_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

#define KUBE_YAML_MAX_DEPTH 64

/* Parses the first document of text. NULL with *err giving the line and the problem. */
cJSON *kube_yaml_parse(const char *text, size_t len, fp_error *err);

#endif
