/* formset.h — the forms an ingest serves: the compiled form files given by --form, or
 * every form file of --forms-dir (the shared ConfigMap, fp_formdir), looked at again on
 * request (a mounted ConfigMap changes its files in place; a directory also gains and
 * loses files).
 * Entries are reference counted: a request holds the version it started with while a
 * reload swaps in a new one, so the service threads never see a form freed under them. */
#ifndef FP_FORMSET_H
#define FP_FORMSET_H

#include "config.h"
#include "error.h"
#include "form.h"
#include "schema.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>

typedef struct fp_form_entry {
    atomic_int refs;
    fp_form *form;
    fp_schema *schema;
    char topic[256];
    _Atomic(rd_kafka_topic_t *) rkt;  /* the producer's handle of topic, made on first use (http.c); destroyed with the entry */
    const char *partition_key;   /* field name, or NULL: the submission id keys the event */
    const char *honeypot;        /* "honeypot": a field a person leaves empty, or NULL */
    int token_required;          /* "submissionToken": true - posts need a token (token.h) */
    int max_pairs;               /* the most name=value pairs a form post may have (body.h) */
    long max_body_bytes;         /* "shared.ingest.maxBodyBytes", 0: none (--max-body-bytes) */
    const cJSON *allowed_origins; /* "shared.ingest.allowedOrigins", strings; NULL: none (--allowed-origin) */
} fp_form_entry;

typedef struct fp_formset fp_formset;

/* Loads and compiles every file; fails (naming the file) on the first that does not
 * load, or on two files naming the same form. */
fp_formset *fp_formset_load(const fp_strlist *files, fp_error *err);
void fp_formset_free(fp_formset *fs);

/* Serves the forms of directory dir (fp_formdir): loads every form file that loads; one
 * that does not, or that names a form an earlier file (by file name) names, is logged
 * and skipped. Fails only when dir cannot be read. */
fp_formset *fp_formset_open_dir(const char *dir, fp_error *err);

/* How many forms are served now. Thread-safe. */
size_t fp_formset_count(fp_formset *fs);

/* The current version of the named form with a reference taken (fp_formset_put it), or
 * NULL. Thread-safe. */
fp_form_entry *fp_formset_get(fp_formset *fs, const char *name);
void fp_formset_put(fp_form_entry *e);

/* Looks at every file; a changed one that loads and still names the same form replaces
 * it, otherwise the loaded version stays and the refusal is logged once per change.
 * A directory (fp_formset_open_dir) is rescanned: a new file is served, a removed one
 * is not any more (its requests in flight keep their reference), a changed one is
 * reloaded as above except that it may name another form; a bad file is logged once
 * per change. Thread-safe; meant for one housekeeping thread. */
void fp_formset_reload(fp_formset *fs);

#endif
