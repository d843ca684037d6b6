/* formdir.c — see formdir.h. */
#include "formdir.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fd_file {
    char *path;          /* dir/name, owned */
    const char *name;    /* into path */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    unsigned char sum[32];   /* SHA-256 of the content */
    int changed;         /* new or different in the scan that listed it */
} fd_file;

struct fp_formdir {
    char *dir;
    fd_file *files;      /* sorted by name */
    size_t n;
    int scanned;
};

/* Frees n files' paths and the array. */
static void files_free(fd_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i].path);
    free(files);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const fd_file *)a)->name, ((const fd_file *)b)->name);
}

/* 1 when name is a form file's name: not hidden, ends in ".json" after at least one char. */
static int is_form_name(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 5 && !strcmp(name + len - 5, ".json");
}

fp_formdir *fp_formdir_open(const char *dir, fp_error *err)
{
    struct stat st;
    if (!dir || !dir[0]) {
        fp_error_set(err, FP_EINVAL, "no forms directory given");
        return NULL;
    }
    if (stat(dir, &st) != 0) {
        fp_error_set(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        fp_error_set(err, FP_EINVAL, "%s: not a directory", dir);
        return NULL;
    }
    fp_formdir *d = calloc(1, sizeof *d);
    if (!d || !(d->dir = strdup(dir))) {
        free(d);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    return d;
}

void fp_formdir_free(fp_formdir *d)
{
    if (!d)
        return;
    files_free(d->files, d->n);
    free(d->dir);
    free(d);
}

/* Lists dir's form files (stat following links) into *out, sorted by name. */
static int list_files(const char *dir, fd_file **out, size_t *nout, fp_error *err)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return fp_error_set(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO, "%s: %s", dir, strerror(errno));
    fd_file *files = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    size_t dirlen = strlen(dir);
    while ((de = readdir(dh))) {
        if (!is_form_name(de->d_name))
            continue;
        size_t len = dirlen + 1 + strlen(de->d_name) + 1;
        char *path = malloc(len);
        if (!path) {
            rc = fp_error_set(err, FP_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(path, len, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {   /* gone, dangling mid-swap, or not a file */
            free(path);
            continue;
        }
        if (n == FP_FORMDIR_MAX_FILES) {
            free(path);
            rc = fp_error_set(err, FP_ELIMIT, "%s: more than %d form files", dir, FP_FORMDIR_MAX_FILES);
            goto out;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            fd_file *nf = realloc(files, ncap * sizeof *nf);
            if (!nf) {
                free(path);
                rc = fp_error_set(err, FP_ENOMEM, "out of memory");
                goto out;
            }
            files = nf;
            cap = ncap;
        }
        files[n++] = (fd_file){.path = path, .name = path + dirlen + 1, .dev = st.st_dev, .ino = st.st_ino,
                               .size = st.st_size, .mtime = st.st_mtim};
    }
    if (n)
        qsort(files, n, sizeof *files, by_name);
out:
    closedir(dh);
    if (rc) {
        files_free(files, n);
        return rc;
    }
    *out = files;
    *nout = n;
    return 0;
}

static int same_file(const fd_file *a, const fd_file *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The SHA-256 of f's content into f->sum (at most FP_FORMDIR_MAX_BYTES are read: a
 * longer file is a change of its own, the reader refuses it). 0, or -1 when it cannot
 * be read (gone mid-swap). */
static int checksum(fd_file *f)
{
    FILE *fh = fopen(f->path, "rb");
    if (!fh)
        return -1;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char buf[16384];
    size_t n, total = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    while (ok && total <= FP_FORMDIR_MAX_BYTES && (n = fread(buf, 1, sizeof buf, fh)) > 0) {
        ok = EVP_DigestUpdate(c, buf, n);
        total += n;
    }
    ok = ok && !ferror(fh) && EVP_DigestFinal_ex(c, f->sum, NULL);
    EVP_MD_CTX_free(c);
    fclose(fh);
    return ok ? 0 : -1;
}

int fp_formdir_scan(fp_formdir *d, fp_error *err)
{
    fd_file *files = NULL;
    size_t n = 0;
    int rc = list_files(d->dir, &files, &n, err);
    if (rc)
        return rc;
    size_t j = 0, kept = 0;   /* both lists are sorted by name: walk them together */
    for (size_t i = 0; i < n; i++) {
        while (j < d->n && strcmp(d->files[j].name, files[i].name) < 0)
            j++;
        const fd_file *old = j < d->n && !strcmp(d->files[j].name, files[i].name) ? &d->files[j] : NULL;
        if (old && same_file(old, &files[i])) {   /* the usual case: no read at all */
            memcpy(files[i].sum, old->sum, sizeof old->sum);
        } else if (checksum(&files[i])) {         /* gone since the listing: not listed */
            free(files[i].path);
            continue;
        }
        /* a new version with the same content (the kubelet rewrites every file of a
         * volume when one changes) is no change */
        files[i].changed = !old || memcmp(old->sum, files[i].sum, sizeof old->sum) != 0;
        files[kept++] = files[i];
    }
    n = kept;
    int changed = !d->scanned || n != d->n;
    for (size_t i = 0; i < n; i++)
        changed |= files[i].changed;
    files_free(d->files, d->n);
    d->files = files;
    d->n = n;
    d->scanned = 1;
    return changed;
}

size_t fp_formdir_count(const fp_formdir *d)
{
    return d->n;
}

const char *fp_formdir_path(const fp_formdir *d, size_t i)
{
    return i < d->n ? d->files[i].path : NULL;
}

const char *fp_formdir_dir(const fp_formdir *d)
{
    return d->dir;
}

long fp_formdir_find(const fp_formdir *d, const char *name)
{
    fd_file key = {.name = name};
    if (!d->n)
        return -1;
    const fd_file *f = bsearch(&key, d->files, d->n, sizeof *d->files, by_name);
    return f ? (long)(f - d->files) : -1;
}

int fp_formdir_changed(const fp_formdir *d, size_t i)
{
    return i < d->n && d->files[i].changed;
}
