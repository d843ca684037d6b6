/* formset.c — see formset.h. */
#include "formset.h"
#include "body.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct slot {
    const char *path;
    struct stat seen;          /* the file as last looked at */
    fp_form_entry *entry;      /* the set's reference */
} slot;

struct fp_formset {
    pthread_mutex_t lock;      /* guards the entry pointers, not the entries */
    slot *slots;
    size_t n;
};

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
    if (!(e->schema = fp_schema_compile(e->form->json, err))) {
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        fp_form_free(e->form);
        free(e);
        fp_error_set(err, FP_EINVAL, "%s: %s", path, msg);
        return NULL;
    }
    fp_form_topic(e->form, e->topic, sizeof e->topic);
    e->partition_key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e->form->json, "partitionKey"));
    if (spam_settings(e, err)) {
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        fp_schema_free(e->schema);
        fp_form_free(e->form);
        free(e);
        fp_error_set(err, FP_EINVAL, "%s: %s", path, msg);
        return NULL;
    }
    atomic_init(&e->refs, 1);
    return e;
}

void fp_formset_put(fp_form_entry *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    fp_schema_free(e->schema);
    fp_form_free(e->form);
    free(e);
}

fp_formset *fp_formset_load(const fp_strlist *files, fp_error *err)
{
    fp_formset *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->slots = calloc(files->n ? files->n : 1, sizeof *fs->slots))) {
        free(fs);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&fs->lock, NULL);
    for (size_t i = 0; i < files->n; i++) {
        slot *sl = &fs->slots[i];
        sl->path = files->items[i];
        if (!(sl->entry = entry_load(sl->path, &sl->seen, err))) {
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
        fp_log_info("form loaded", FP_LSTR("form", sl->entry->form->name), FP_LSTR("topic", sl->entry->topic),
                    FP_LINT("generation", sl->entry->form->generation));
    }
    return fs;
}

void fp_formset_free(fp_formset *fs)
{
    if (!fs)
        return;
    for (size_t i = 0; i < fs->n; i++)
        fp_formset_put(fs->slots[i].entry);
    pthread_mutex_destroy(&fs->lock);
    free(fs->slots);
    free(fs);
}

size_t fp_formset_count(const fp_formset *fs)
{
    return fs->n;
}

fp_form_entry *fp_formset_get(fp_formset *fs, const char *name)
{
    fp_form_entry *found = NULL;
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->n && !found; i++) {
        if (!strcmp(fs->slots[i].entry->form->name, name)) {
            found = fs->slots[i].entry;
            atomic_fetch_add(&found->refs, 1);
        }
    }
    pthread_mutex_unlock(&fs->lock);
    return found;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

void fp_formset_reload(fp_formset *fs)
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
        fp_log_info("form reloaded", FP_LSTR("form", n->form->name), FP_LSTR("topic", n->topic),
                    FP_LINT("generation", n->form->generation));
        fp_formset_put(old);
    }
}
