/* formdir.h — a directory of compiled form files (*.json), such as the mounted shared
 * ConfigMap `formpipe-shared-forms`. A scan lists the regular files named *.json (hidden
 * names, like the kubelet's `..data` link and its `..<timestamp>` directories, are not
 * forms; links are followed) and compares each file's identity (device, inode, size,
 * mtime) with the last scan; only a file whose identity changed is read, and it changed
 * when its content (SHA-256) did. The kubelet writes every file of a volume anew (a new
 * `..<timestamp>` directory, `..data` swapped to it) when one key changes: the others
 * are new inodes with the same content, which is no change. Scans are cheap (one
 * readdir, one stat a file) and report whether anything changed; the caller reads the
 * files it cares about. */
#ifndef FP_FORMDIR_H
#define FP_FORMDIR_H

#include <stddef.h>

#include "error.h"

/* At most this many form files in a directory; a scan finding more fails (FP_ELIMIT).
 * The 1 MiB ConfigMap cap keeps a real directory far below. */
#define FP_FORMDIR_MAX_FILES 4096
/* The most bytes of a file a scan reads (the ConfigMap cap). */
#define FP_FORMDIR_MAX_BYTES (1024 * 1024)

typedef struct fp_formdir fp_formdir;

/* Opens dir for scanning (it must be a directory). Nothing is listed until the first
 * fp_formdir_scan. NULL with *err when dir is not a readable directory. */
fp_formdir *fp_formdir_open(const char *dir, fp_error *err);
void fp_formdir_free(fp_formdir *d);   /* NULL is fine */

/* Rescans; returns 1 when the set of files or any content changed since the last scan,
 * 0 when not, negative with *err. The first scan after open returns 1. A failed scan
 * keeps the last scan's list. A name whose link dangles (mid-swap) is not listed. */
int fp_formdir_scan(fp_formdir *d, fp_error *err);

/* The files of the last scan, sorted by name: full paths. */
size_t fp_formdir_count(const fp_formdir *d);
const char *fp_formdir_path(const fp_formdir *d, size_t i);

/* The directory given to fp_formdir_open. */
const char *fp_formdir_dir(const fp_formdir *d);

/* The index of the file named name (base name, e.g. "contact.json") in the last scan,
 * or -1. */
long fp_formdir_find(const fp_formdir *d, const char *name);

/* 1 when file i of the last scan is new or changed by that scan (not listed, or with
 * other content, in the scan before it), else 0. */
int fp_formdir_changed(const fp_formdir *d, size_t i);

#endif
