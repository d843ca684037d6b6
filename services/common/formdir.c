/* formdir.c — see formdir.h. Files whose names start with '.' (the kubelet's ..data
 * link and its timestamped directories) are not forms; a form file may be a symlink
 * (the kubelet's layout), so stat follows it. */
#include "formdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct entry {
    char *path;
    long long mtime_ns, size, ino;
} entry;

struct fp_formdir {
    char *dir;
    entry *files;
    size_t n;
    int scanned;
};

fp_formdir *fp_formdir_open(const char *dir, fp_error *err)
{
    fp_formdir *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(dir))) {
        free(d);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    return d;
}

static void free_entries(entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].path);
    free(e);
}

void fp_formdir_free(fp_formdir *d)
{
    if (!d)
        return;
    free_entries(d->files, d->n);
    free(d->dir);
    free(d);
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

static int is_form_name(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".json") == 0;
}

int fp_formdir_scan(fp_formdir *d, fp_error *err)
{
    DIR *dir = opendir(d->dir);
    if (!dir)
        return fp_error_set(err, FP_EIO, "cannot read the forms directory %s: %s", d->dir, strerror(errno));
    entry *files = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dir)) && !rc) {
        struct stat st;
        char *path = NULL;
        if (!is_form_name(de->d_name))
            continue;
        if (asprintf(&path, "%s/%s", d->dir, de->d_name) < 0) {
            rc = fp_error_set(err, FP_ENOMEM, "out of memory");
            break;
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {   /* vanished meanwhile, or not a file */
            free(path);
            continue;
        }
        if (n == cap) {
            entry *grown = realloc(files, (cap = cap ? cap * 2 : 16) * sizeof *files);
            if (!grown) {
                free(path);
                rc = fp_error_set(err, FP_ENOMEM, "out of memory");
                break;
            }
            files = grown;
        }
        files[n++] = (entry){path, (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                             (long long)st.st_size, (long long)st.st_ino};
    }
    closedir(dir);
    if (rc) {
        free_entries(files, n);
        return rc;
    }
    qsort(files, n, sizeof *files, by_path);
    int changed = !d->scanned || n != d->n;
    for (size_t i = 0; i < n && !changed; i++)
        changed = strcmp(files[i].path, d->files[i].path) != 0 || files[i].mtime_ns != d->files[i].mtime_ns ||
                  files[i].size != d->files[i].size || files[i].ino != d->files[i].ino;
    free_entries(d->files, d->n);
    d->files = files;
    d->n = n;
    d->scanned = 1;
    return changed;
}

size_t fp_formdir_count(const fp_formdir *d) { return d->n; }

const char *fp_formdir_path(const fp_formdir *d, size_t i) { return i < d->n ? d->files[i].path : NULL; }
