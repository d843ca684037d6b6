/* form.h — a compiled form definition as the operator writes it into the pipeline's
 * ConfigMap: spec.form plus name, namespace, generation, the topic and the sheet's
 * columns. This module knows the identity, the topic and the column order; validation
 * rules belong to the schema module.
 *
 * Columns are append-only (DESIGN.md "Form changes"): "columns" lists every field the
 * form ever had, in sheet order, so a field removed from "fields" keeps its column and
 * events accepted before the change still fit. Without "columns" (a hand-written
 * definition) the columns are the fields in order. */
#ifndef FP_FORM_H
#define FP_FORM_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"
#include "names.h"

/* Hard limits on a definition (the CRD enforces the same). */
#define FP_FORM_MAX_FIELDS 200
#define FP_FORM_MAX_NAME 63
#define FP_FORM_MAX_COLUMNS 1000   /* current fields plus removed ones that keep a column */
#define FP_FORM_MAX_FILE (1024 * 1024)
#define FP_FORM_MAX_TOPIC FP_NAMES_MAX_TOPIC

typedef struct fp_form {
    char *ns;             /* metadata.namespace */
    char *name;           /* metadata.name */
    long long generation;
    char *topic;          /* "topic", else forms.<namespace>.<name> */
    char **columns;       /* column names in sheet order: every field, then removed ones keep theirs */
    size_t ncolumns;
    cJSON *json;          /* the whole definition, for modules that need the rules */
} fp_form;

/* Parses a definition. Returns NULL with *err naming the problem (missing name,
 * duplicate field, too many fields, ...). */
fp_form *fp_form_parse(const char *text, size_t len, fp_error *err);

/* Reads and parses a definition file (at most FP_FORM_MAX_FILE bytes). */
fp_form *fp_form_load(const char *path, fp_error *err);

void fp_form_free(fp_form *f);   /* NULL is fine */

/* Index of the column named name, or -1. */
int fp_form_column(const fp_form *f, const char *name);

/* The form's topic (see fp_form.topic) into out; FP_ELIMIT if too small. */
int fp_form_topic(const fp_form *f, char *out, size_t outsz);

#endif
