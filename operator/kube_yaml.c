/* kube_yaml.c — libyaml event stream -> cJSON tree. */
#include "kube_yaml.h"

#include <string.h>
#include <yaml.h>

/* Adds child to parent: appended to an array, or set under *key for an object (the
 * key is consumed). Takes ownership of child. Returns 0 or FP_ENOMEM/FP_EINVAL. */
static int attach(cJSON *parent, char **key, cJSON *child)
{
    if (cJSON_IsArray(parent)) {
        cJSON_AddItemToArray(parent, child);
        return 0;
    }
    if (!*key) {
        cJSON_Delete(child);
        return FP_EINVAL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(parent, *key);   /* last key wins */
    cJSON_AddItemToObject(parent, *key, child);
    free(*key);
    *key = NULL;
    return 0;
}

/* Consumes events for one node (already started by ev) into *out. */
static int parse_node(yaml_parser_t *p, yaml_event_t *ev, int depth, cJSON **out, fp_error *err)
{
    if (depth > KUBE_YAML_MAX_DEPTH)
        return fp_error_set(err, FP_ELIMIT, "line %zu: nesting deeper than %d",
                            ev->start_mark.line + 1, KUBE_YAML_MAX_DEPTH);
    if (ev->type == YAML_SCALAR_EVENT) {
        *out = cJSON_CreateString((const char *)ev->data.scalar.value);
        return *out ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
    }
    if (ev->type == YAML_ALIAS_EVENT)
        return fp_error_set(err, FP_EINVAL, "line %zu: aliases are not supported", ev->start_mark.line + 1);
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    if (!is_map && ev->type != YAML_SEQUENCE_START_EVENT)
        return fp_error_set(err, FP_EINVAL, "line %zu: unexpected YAML event", ev->start_mark.line + 1);

    cJSON *node = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
    char *key = NULL;
    int rc = node ? 0 : fp_error_set(err, FP_ENOMEM, "out of memory");
    while (rc == 0) {
        yaml_event_t child;
        if (!yaml_parser_parse(p, &child)) {
            rc = fp_error_set(err, FP_EINVAL, "line %zu: %s", p->problem_mark.line + 1,
                              p->problem ? p->problem : "invalid YAML");
            break;
        }
        if (child.type == YAML_MAPPING_END_EVENT || child.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&child);
            break;
        }
        if (is_map && !key) {
            if (child.type != YAML_SCALAR_EVENT)
                rc = fp_error_set(err, FP_EINVAL, "line %zu: only scalar keys are supported",
                                  child.start_mark.line + 1);
            else if (!(key = strdup((const char *)child.data.scalar.value)))
                rc = fp_error_set(err, FP_ENOMEM, "out of memory");
            yaml_event_delete(&child);
            continue;
        }
        cJSON *value = NULL;
        rc = parse_node(p, &child, depth + 1, &value, err);
        yaml_event_delete(&child);
        if (rc == 0 && attach(node, &key, value) < 0)
            rc = fp_error_set(err, FP_EINVAL, "YAML structure error");
    }
    free(key);
    if (rc < 0) {
        cJSON_Delete(node);
        return rc;
    }
    *out = node;
    return 0;
}

cJSON *kube_yaml_parse(const char *text, size_t len, fp_error *err)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    cJSON *root = NULL;
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = fp_error_set(err, FP_EINVAL, "line %zu: %s", p.problem_mark.line + 1,
                              p.problem ? p.problem : "invalid YAML");
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_SCALAR_EVENT || t == YAML_MAPPING_START_EVENT ||
            t == YAML_SEQUENCE_START_EVENT || t == YAML_ALIAS_EVENT) {
            rc = parse_node(&p, &ev, 0, &root, err);
            yaml_event_delete(&ev);
            break;
        }
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    if (rc == 0 && !root)
        fp_error_set(err, FP_EINVAL, "empty YAML document");
    return rc == 0 ? root : NULL;
}
