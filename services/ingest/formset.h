/* formset.h — the forms an ingest serves, loaded from the compiled form files given by
 * --form and looked at again on request (a mounted ConfigMap changes its files in place).
 * Entries are reference counted: a request holds the version it started with while a
 * reload swaps in a new one, so the service threads never see a form freed under them. */
#ifndef FP_FORMSET_H
#define FP_FORMSET_H

#include "config.h"
#include "error.h"
#include "form.h"
#include "schema.h"

#include <stdatomic.h>

typedef struct fp_form_entry {
    atomic_int refs;
    fp_form *form;
    fp_schema *schema;
    char topic[256];
    const char *partition_key;   /* field name, or NULL: the submission id keys the event */
    const char *honeypot;        /* "honeypot": a field a person leaves empty, or NULL */
    int token_required;          /* "submissionToken": true - posts need a token (token.h) */
    int max_pairs;               /* the most name=value pairs a form post may have (body.h) */
} fp_form_entry;

typedef struct fp_formset fp_formset;

/* Loads and compiles every file; fails (naming the file) on the first that does not
 * load, or on two files naming the same form. */
fp_formset *fp_formset_load(const fp_strlist *files, fp_error *err);
void fp_formset_free(fp_formset *fs);

size_t fp_formset_count(const fp_formset *fs);

/* The current version of the named form with a reference taken (fp_formset_put it), or
 * NULL. Thread-safe. */
fp_form_entry *fp_formset_get(fp_formset *fs, const char *name);
void fp_formset_put(fp_form_entry *e);

/* Looks at every file; a changed one that loads and still names the same form replaces
 * it, otherwise the loaded version stays and the refusal is logged once per change.
 * Thread-safe; meant for one housekeeping thread. */
void fp_formset_reload(fp_formset *fs);

#endif
