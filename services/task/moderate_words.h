/* moderate_words.h — the moderate kind's word list and matcher. A list is text, one
 * term per line ('#' starts a comment line; blank lines are ignored); each term is
 * folded (fold.h) once when the list is read, so a term may be several words ("bad
 * word"). Matching takes text already folded: each word (and each run of up to the
 * longest term's word count) is looked up in an open-addressing hash set, so the cost
 * per word does not grow with the list. Pure apart from fp_words_load. */
#ifndef FP_MODERATE_WORDS_H
#define FP_MODERATE_WORDS_H

#include <stddef.h>

#include "error.h"

#define FP_WORDS_MAX_TERMS 1000000
#define FP_WORDS_MAX_TERM 256        /* bytes of one term as written */
#define FP_WORDS_MAX_FILE (64 * 1024 * 1024)
#define FP_WORDS_MAX_REPORTED 16     /* distinct terms one result names */

typedef struct fp_words fp_words;

/* What matching found: every occurrence counts towards score; terms are the distinct
 * ones (indices for fp_words_term), at most FP_WORDS_MAX_REPORTED. Zero-initialise. */
typedef struct fp_words_result {
    long score;
    size_t nterms;
    unsigned terms[FP_WORDS_MAX_REPORTED];
} fp_words_result;

/* Reads a list from text[0..len). NULL with *err: FP_EINVAL naming the line of a term
 * that is too long, holds a control character (NUL, ...) or folds to nothing, FP_ELIMIT for too many terms, FP_ENOMEM.
 * Duplicate terms (after folding) count once. */
fp_words *fp_words_parse(const char *text, size_t len, fp_error *err);

/* Reads the list from a file (at most FP_WORDS_MAX_FILE bytes); errors as parse, or
 * FP_EIO naming the file. */
fp_words *fp_words_load(const char *path, fp_error *err);

/* Distinct terms in the list. */
size_t fp_words_count(const fp_words *w);

/* Term i as written in the list (trimmed). */
const char *fp_words_term(const fp_words *w, unsigned i);

/* Adds the terms found in folded text (fp_fold's output, words separated by single
 * spaces) to *r. Returns the number of occurrences found. */
long fp_words_match(const fp_words *w, const char *folded, size_t len, fp_words_result *r);

void fp_words_free(fp_words *w);   /* NULL is fine */

#endif
