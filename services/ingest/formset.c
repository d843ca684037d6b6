/* formset.c — see formset.h. The served forms are an array of slots sorted by form
 * name (looked up by binary search under the lock); --form keeps one slot per file for
 * good, --forms-dir rebuilds the array after each scan that saw a change and swaps it in. */
#include "formset.h"
#include "body.h"
#include "formdir.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct slot {
    char *path;                /* owned */
    struct stat seen;          /* --form: the file as last looked at */
    fp_form_entry *entry;      /* the set's reference */
} slot;

struct fp_formset {
    pthread_mutex_t lock;      /* guards slots and n (the array, its entry pointers), not the entries */
    slot *slots;               /* sorted by form name */
    size_t n;
    fp_formdir *dir;           /* --forms-dir, or NULL */
    int scan_failing;          /* the directory could not be read at the last look (logged once) */
    int pending;               /* a change was seen but not applied (out of memory): apply next time */
};

#define ORIGIN_MAX 255   /* request.origin holds one (http.h) */

/* The honeypot and token settings of e's form, and its bound on form-post pairs:
 * under unknownFields: reject a post can have no more pairs than the form has fields
 * plus the honeypot and the token, so parsing stops right there. */
static int spam_settings(fp_form_entry *e, fp_error *err)
{
    const cJSON *json = e->form->json, *hp = cJSON_GetObjectItemCaseSensitive(json, "honeypot");
    if (hp && (!cJSON_IsString(hp) || !hp->valuestring[0] || strlen(hp->valuestring) > FP_FORM_MAX_NAME))
        return fp_error_set(err, FP_EINVAL, "honeypot must be a field name");
    e->honeypot = hp ? hp->valuestring : NULL;
    if (e->honeypot && fp_form_column(e->form, e->honeypot) >= 0)
        return fp_error_set(err, FP_EINVAL, "honeypot '%s' is a field of the form", e->honeypot);
    e->token_required = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "submissionToken"));
    int n = (int)fp_schema_count(e->schema) + 2;
    e->max_pairs = fp_schema_drops_unknown(e->schema) || n > FP_BODY_MAX_PAIRS ? FP_BODY_MAX_PAIRS : n;
    return 0;
}

/* The form's own ingest settings, "shared": {"ingest": {"maxBodyBytes": N,
 * "allowedOrigins": [...]}} (a shared ingest serves many pipelines, each with its own
 * settings); absent ones leave the process's flags in force. */
static int ingest_settings(fp_form_entry *e, fp_error *err)
{
    const cJSON *shared = cJSON_GetObjectItemCaseSensitive(e->form->json, "shared");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(shared, "ingest");
    if (shared && !cJSON_IsObject(shared))
        return fp_error_set(err, FP_EINVAL, "shared must be an object");
    if (in && !cJSON_IsObject(in))
        return fp_error_set(err, FP_EINVAL, "shared.ingest must be an object");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(in, "maxBodyBytes");
    if (max) {
        double v = cJSON_IsNumber(max) ? max->valuedouble : -1;
        if (v < 1 || v > 16 * 1024 * 1024 || v != (double)(long)v)
            return fp_error_set(err, FP_EINVAL, "shared.ingest.maxBodyBytes must be an integer from 1 to 16777216");
        e->max_body_bytes = (long)v;
    }
    const cJSON *origins = cJSON_GetObjectItemCaseSensitive(in, "allowedOrigins"), *o;
    if (origins && !cJSON_IsArray(origins))
        return fp_error_set(err, FP_EINVAL, "shared.ingest.allowedOrigins must be a list of origins");
    cJSON_ArrayForEach(o, origins) {
        if (!cJSON_IsString(o) || !o->valuestring[0] || strlen(o->valuestring) > ORIGIN_MAX)
            return fp_error_set(err, FP_EINVAL, "shared.ingest.allowedOrigins must be a list of origins (at most %d characters each)",
                                ORIGIN_MAX);
    }
    e->allowed_origins = origins;
    return 0;
}

/* Frees an entry that never was shared. */
static void entry_free(fp_form_entry *e)
{
    rd_kafka_topic_t *rkt = atomic_load(&e->rkt);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    fp_schema_free(e->schema);
    fp_form_free(e->form);
    free(e);
}

/* Loads and compiles path into a new entry holding one reference; NULL with *err. */
static fp_form_entry *entry_load(const char *path, struct stat *seen, fp_error *err)
{
    stat(path, seen);   /* before reading: a change during the read is seen next time */
    fp_form_entry *e = calloc(1, sizeof *e);
    if (!e) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    if (!(e->form = fp_form_load(path, err))) {
        free(e);
        return NULL;
    }
    if (!(e->schema = fp_schema_compile(e->form->json, err)) || spam_settings(e, err) || ingest_settings(e, err)) {
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        entry_free(e);
        fp_error_set(err, FP_EINVAL, "%s: %s", path, msg);
        return NULL;
    }
    fp_form_topic(e->form, e->topic, sizeof e->topic);
    e->partition_key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e->form->json, "partitionKey"));
    atomic_init(&e->refs, 1);
    return e;
}

void fp_formset_put(fp_form_entry *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    entry_free(e);
}

/* Slots by form name, then by path (the first file naming a form wins). */
static int by_name(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    int c = strcmp(x->entry->form->name, y->entry->form->name);
    return c ? c : strcmp(x->path, y->path);
}

/* The slot of the form named name in slots (sorted by name), or NULL. */
static slot *find_slot(slot *slots, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(slots[mid].entry->form->name, name);
        if (!c)
            return &slots[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Lets go of n slots and the array. */
static void slots_free(slot *slots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fp_formset_put(slots[i].entry);
        free(slots[i].path);
    }
    free(slots);
}

static fp_formset *formset_new(size_t cap, fp_error *err)
{
    fp_formset *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->slots = calloc(cap ? cap : 1, sizeof *fs->slots))) {
        free(fs);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&fs->lock, NULL);
    return fs;
}

static void log_loaded(const char *what, const fp_form_entry *e, const char *path)
{
    fp_log_info(what, FP_LSTR("form", e->form->name), FP_LSTR("topic", e->topic),
                FP_LINT("generation", e->form->generation), FP_LSTR("file", path));
}

fp_formset *fp_formset_load(const fp_strlist *files, fp_error *err)
{
    fp_formset *fs = formset_new(files->n, err);
    if (!fs)
        return NULL;
    for (size_t i = 0; i < files->n; i++) {
        slot *sl = &fs->slots[i];
        if (!(sl->path = strdup(files->items[i]))) {
            fp_error_set(err, FP_ENOMEM, "out of memory");
            fp_formset_free(fs);
            return NULL;
        }
        if (!(sl->entry = entry_load(sl->path, &sl->seen, err))) {
            free(sl->path);
            fp_formset_free(fs);
            return NULL;
        }
        fs->n++;
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(fs->slots[j].entry->form->name, sl->entry->form->name)) {
                fp_error_set(err, FP_EINVAL, "%s: a form named '%s' is already loaded", sl->path, sl->entry->form->name);
                fp_formset_free(fs);
                return NULL;
            }
        }
        log_loaded("form loaded", sl->entry, sl->path);
    }
    qsort(fs->slots, fs->n, sizeof *fs->slots, by_name);
    return fs;
}

static int reload_dir(fp_formset *fs, fp_error *err);

fp_formset *fp_formset_open_dir(const char *dir, fp_error *err)
{
    fp_formset *fs = formset_new(0, err);
    if (!fs)
        return NULL;
    if (!(fs->dir = fp_formdir_open(dir, err)) || reload_dir(fs, err) < 0) {
        fp_formset_free(fs);
        return NULL;
    }
    fp_log_info("forms directory loaded", FP_LSTR("dir", dir), FP_LINT("forms", (long long)fs->n),
                FP_LINT("files", (long long)fp_formdir_count(fs->dir)));
    return fs;
}

void fp_formset_free(fp_formset *fs)
{
    if (!fs)
        return;
    slots_free(fs->slots, fs->n);
    fp_formdir_free(fs->dir);
    pthread_mutex_destroy(&fs->lock);
    free(fs);
}

size_t fp_formset_count(fp_formset *fs)
{
    pthread_mutex_lock(&fs->lock);
    size_t n = fs->n;
    pthread_mutex_unlock(&fs->lock);
    return n;
}

fp_form_entry *fp_formset_get(fp_formset *fs, const char *name)
{
    pthread_mutex_lock(&fs->lock);
    slot *sl = find_slot(fs->slots, fs->n, name);
    fp_form_entry *found = sl ? sl->entry : NULL;
    if (found)
        atomic_fetch_add(&found->refs, 1);
    pthread_mutex_unlock(&fs->lock);
    return found;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* --form: each file again, in place (the slot keeps its form name, so the order holds). */
static void reload_files(fp_formset *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        slot *sl = &fs->slots[i];
        struct stat now;
        if (stat(sl->path, &now) != 0 || same_file(&now, &sl->seen))
            continue;
        fp_error err = {0};
        const fp_form *cur = sl->entry->form;   /* only this thread replaces entries */
        fp_form_entry *n = entry_load(sl->path, &sl->seen, &err);
        if (n && strcmp(n->form->name, cur->name) != 0) {
            fp_error_set(&err, FP_EINVAL, "%s: names form '%s', not '%s'", sl->path, n->form->name, cur->name);
            fp_formset_put(n);
            n = NULL;
        }
        if (!n) {
            sl->seen = now;   /* complain once per change */
            fp_log_warn("form file changed but cannot be used; keeping the loaded version",
                        FP_LSTR("form", cur->name), FP_LINT("generation", cur->generation), FP_LSTR("error", err.msg));
            continue;
        }
        pthread_mutex_lock(&fs->lock);
        fp_form_entry *old = sl->entry;
        sl->entry = n;
        pthread_mutex_unlock(&fs->lock);
        log_loaded("form reloaded", n, sl->path);
        fp_formset_put(old);
    }
}

/* The entry file i of the directory's last scan serves, with a reference for the
 * caller, given the slot that served it before (or NULL): the old entry when the file
 * did not change, else the file loaded again - or, when it does not load, the old one
 * (NULL for a new file). A refusal is logged when the file changed (once per change);
 * an unchanged file that is not served is tried again silently (it may have lost to a
 * file naming the same form, which is gone now). */
static fp_form_entry *dir_entry(fp_formset *fs, size_t i, const slot *old)
{
    const char *path = fp_formdir_path(fs->dir, i);
    int changed = fp_formdir_changed(fs->dir, i);
    if (old && !changed) {
        atomic_fetch_add(&old->entry->refs, 1);
        return old->entry;
    }
    fp_error err = {0};
    struct stat seen;
    fp_form_entry *e = entry_load(path, &seen, &err);
    if (e) {
        log_loaded(old ? "form reloaded" : "form loaded", e, path);
        return e;
    }
    if (changed && old)
        fp_log_warn("form file changed but cannot be used; keeping the loaded version", FP_LSTR("file", path),
                    FP_LSTR("form", old->entry->form->name), FP_LINT("generation", old->entry->form->generation),
                    FP_LSTR("error", err.msg));
    else if (changed)
        fp_log_warn("form file cannot be used; skipped", FP_LSTR("file", path), FP_LSTR("error", err.msg));
    if (!old)
        return NULL;
    atomic_fetch_add(&old->entry->refs, 1);
    return old->entry;
}

/* --forms-dir: rescans; after a change builds the new array of slots from the files
 * (sorted by name, the first file naming a form wins) and swaps it in. Negative with
 * *err when the directory cannot be read (the forms loaded stay). */
static int reload_dir(fp_formset *fs, fp_error *err)
{
    int rc = fp_formdir_scan(fs->dir, err);
    if (rc < 0) {
        if (!fs->scan_failing)
            fp_log_warn("cannot read the forms directory; serving the forms loaded", FP_LSTR("error", err->msg));
        fs->scan_failing = 1;
        return rc;
    }
    if (fs->scan_failing)
        fp_log_info("the forms directory can be read again", FP_LSTR("dir", fp_formdir_dir(fs->dir)));
    fs->scan_failing = 0;
    if (rc == 0 && !fs->pending)
        return 0;
    size_t nf = fp_formdir_count(fs->dir), n = 0;
    const slot **old_of = calloc(nf ? nf : 1, sizeof *old_of);   /* file index -> its old slot */
    slot *next = calloc(nf ? nf : 1, sizeof *next);
    fs->pending = 1;   /* until applied */
    if (!old_of || !next) {
        fp_log_warn("out of memory reloading the forms directory; retrying", FP_LSTR("dir", fp_formdir_dir(fs->dir)));
        goto out;
    }
    for (size_t j = 0; j < fs->n; j++) {   /* only this thread changes the slots */
        const char *base = strrchr(fs->slots[j].path, '/');
        long i = fp_formdir_find(fs->dir, base ? base + 1 : fs->slots[j].path);
        if (i >= 0)
            old_of[i] = &fs->slots[j];
    }
    for (size_t i = 0; i < nf; i++) {
        fp_form_entry *e = dir_entry(fs, i, old_of[i]);
        if (!e)
            continue;
        if (!(next[n].path = strdup(fp_formdir_path(fs->dir, i)))) {
            fp_formset_put(e);
            slots_free(next, n);
            next = NULL;
            goto out;
        }
        next[n++].entry = e;
    }
    qsort(next, n, sizeof *next, by_name);
    size_t kept = 0;
    for (size_t k = 0; k < n; k++) {   /* one slot per form name: the first file's */
        if (kept && !strcmp(next[kept - 1].entry->form->name, next[k].entry->form->name)) {
            long i = fp_formdir_find(fs->dir, strrchr(next[k].path, '/') + 1);
            if (i >= 0 && fp_formdir_changed(fs->dir, (size_t)i))
                fp_log_warn("form file names a form another file serves; skipped", FP_LSTR("file", next[k].path),
                            FP_LSTR("form", next[k].entry->form->name), FP_LSTR("served_from", next[kept - 1].path));
            fp_formset_put(next[k].entry);
            free(next[k].path);
            continue;
        }
        next[kept++] = next[k];
    }
    for (size_t j = 0; j < fs->n; j++) {
        const fp_form *f = fs->slots[j].entry->form;
        if (!find_slot(next, kept, f->name))
            fp_log_info("form removed", FP_LSTR("form", f->name), FP_LINT("generation", f->generation),
                        FP_LSTR("file", fs->slots[j].path));
    }
    pthread_mutex_lock(&fs->lock);
    slot *old = fs->slots;
    size_t nold = fs->n;
    fs->slots = next;
    fs->n = kept;
    pthread_mutex_unlock(&fs->lock);
    next = NULL;
    slots_free(old, nold);   /* requests in flight keep their own references */
    fs->pending = 0;
out:
    free(next);
    free(old_of);
    return 0;
}

void fp_formset_reload(fp_formset *fs)
{
    fp_error err = {0};
    if (fs->dir)
        reload_dir(fs, &err);
    else
        reload_files(fs);
}
