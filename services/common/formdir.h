/* formdir.h — a directory of compiled form files (*.json, the mounted shared ConfigMap).
 * Scans are cheap (stat of the ..data link / mtimes) and report what changed. */
#ifndef FP_FORMDIR_H
#define FP_FORMDIR_H

#include <stddef.h>

#include "error.h"

typedef struct fp_formdir fp_formdir;

/* A handle on dir (copied); nothing is read yet. NULL with *err on no memory. */
fp_formdir *fp_formdir_open(const char *dir, fp_error *err);
void fp_formdir_free(fp_formdir *d);   /* NULL is fine */

/* Rescans; returns 1 when the set of files or any content changed since the last scan,
 * 0 when not, negative with *err. The first scan after open returns 1. */
int fp_formdir_scan(fp_formdir *d, fp_error *err);

/* The files of the last scan, sorted by name: full paths. */
size_t fp_formdir_count(const fp_formdir *d);
const char *fp_formdir_path(const fp_formdir *d, size_t i);

#endif
