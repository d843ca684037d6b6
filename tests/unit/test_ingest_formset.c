/* Unit tests for formpipe-ingest's formset over a directory (--forms-dir): which forms
 * are served after files come, go, change or break, and each form's own shared.ingest
 * settings (body limit, CORS origins). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formset.h"

/* Steps, applied to a temporary directory:
 *   "w FILE NAME GEN"          FILE holds form NAME of generation GEN (a new inode)
 *   "s FILE NAME GEN SHARED"   the same with "shared": SHARED (JSON, no spaces)
 *   "bad FILE"                 FILE holds text that is not a form
 *   "rm FILE"                  FILE removed */
#define MAXSTEPS 4

struct set_case {
    const char *setup[MAXSTEPS];   /* applied, then the set is opened */
    const char *step[MAXSTEPS];    /* applied, then one reload */
    const char *served;            /* "name:generation ..." served after the reload */
};

static struct set_case cases[] = {
    /* nothing changes */
    {{"w a.json a 1", "w b.json b 1"}, {NULL}, "a:1 b:1"},
    /* a new file is served */
    {{"w a.json a 1"}, {"w c.json c 1"}, "a:1 c:1"},
    /* a removed file is not */
    {{"w a.json a 1", "w b.json b 1"}, {"rm a.json"}, "b:1"},
    /* a changed file is reloaded */
    {{"w a.json a 1", "w b.json b 1"}, {"w b.json b 2"}, "a:1 b:2"},
    /* ... and may name another form */
    {{"w a.json a 1"}, {"w a.json z 3"}, "z:3"},
    /* a bad new file is skipped, the others stay */
    {{"w a.json a 1"}, {"bad b.json"}, "a:1"},
    /* a bad file at the start is skipped too */
    {{"w a.json a 1", "bad b.json"}, {NULL}, "a:1"},
    /* a changed file that is bad keeps its loaded version */
    {{"w a.json a 1", "w b.json b 1"}, {"bad b.json"}, "a:1 b:1"},
    /* ... until it is removed */
    {{"w a.json a 1", "w b.json b 1"}, {"bad b.json", "rm b.json"}, "a:1"},
    /* two files naming one form: the first by file name serves it */
    {{"w x1.json x 1", "w x2.json x 2"}, {NULL}, "x:1"},
    /* the first goes: the other (unchanged) file serves it now */
    {{"w x1.json x 1", "w x2.json x 2"}, {"rm x1.json"}, "x:2"},
    /* bad shared.ingest settings make the file unusable */
    {{"s a.json a 1 {\"ingest\":{\"maxBodyBytes\":0}}"}, {NULL}, ""},
    {{"s a.json a 1 {\"ingest\":{\"maxBodyBytes\":\"big\"}}"}, {NULL}, ""},
    {{"s a.json a 1 {\"ingest\":{\"maxBodyBytes\":1.5}}"}, {NULL}, ""},
    {{"s a.json a 1 {\"ingest\":{\"maxBodyBytes\":16777217}}"}, {NULL}, ""},
    {{"s a.json a 1 {\"ingest\":{\"allowedOrigins\":\"https://a.example\"}}"}, {NULL}, ""},
    {{"s a.json a 1 {\"ingest\":{\"allowedOrigins\":[\"\"]}}"}, {NULL}, ""},
    {{"s a.json a 1 {\"ingest\":{\"allowedOrigins\":[7]}}"}, {NULL}, ""},
    {{"s a.json a 1 {\"ingest\":[]}"}, {NULL}, ""},
    {{"s a.json a 1 \"shared\""}, {NULL}, ""},
    /* other members of shared are not the ingest's business */
    {{"s a.json a 1 {\"group\":\"g\",\"sheets\":{\"batchRows\":5}}"}, {NULL}, "a:1"},
    /* every file gone */
    {{"w a.json a 1"}, {"rm a.json"}, ""},
};

static void apply(const char *dir, const char *step)
{
    char op[8], file[64], name[64], shared[512] = "", path[256], tmp[300], text[1024];
    int gen = 0;
    int n = sscanf(step, "%7s %63s %63s %d %511s", op, file, name, &gen, shared);
    cr_assert_geq(n, 2, "step %s", step);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (!strcmp(op, "rm")) {
        cr_assert_eq(unlink(path), 0, "rm %s", path);
        return;
    }
    if (!strcmp(op, "bad"))
        snprintf(text, sizeof text, "{\"name\": not json");
    else
        snprintf(text, sizeof text,
                 "{\"name\":\"%s\",\"namespace\":\"t\",\"generation\":%d,"
                 "\"fields\":[{\"name\":\"text\",\"type\":\"string\"}]%s%s}",
                 name, gen, shared[0] ? ",\"shared\":" : "", shared);
    snprintf(tmp, sizeof tmp, "%s/.tmp", dir);   /* hidden: never a form */
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, path), 0);
}

/* "name:generation ..." for the names in want that fs serves, and their count. */
static void check_served(fp_formset *fs, const char *want, const char *after)
{
    char buf[256], *save = NULL;
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", want);
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save), n++) {
        char *colon = strchr(tok, ':');
        *colon = 0;
        fp_form_entry *e = fp_formset_get(fs, tok);
        cr_assert_not_null(e, "after %s: form %s is served", after, tok);
        cr_expect_eq(e->form->generation, atoll(colon + 1), "after %s: form %s generation %lld, want %s", after, tok,
                     e->form->generation, colon + 1);
        fp_formset_put(e);
    }
    cr_expect_eq(fp_formset_count(fs), n, "after %s: %zu forms served, want %zu (%s)", after, fp_formset_count(fs), n,
                 want);
}

ParameterizedTestParameters(formset, directory)
{
    return cr_make_param_array(struct set_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct set_case *c, formset, directory)
{
    char dir[] = "/tmp/fp-formset-XXXXXX", cmd[64];
    cr_assert_not_null(mkdtemp(dir));
    for (int i = 0; i < MAXSTEPS && c->setup[i]; i++)
        apply(dir, c->setup[i]);
    fp_error err = {0};
    fp_formset *fs = fp_formset_open_dir(dir, &err);
    cr_assert_not_null(fs, "open: %s", err.msg);
    for (int i = 0; i < MAXSTEPS && c->step[i]; i++)
        apply(dir, c->step[i]);
    fp_formset_reload(fs);
    check_served(fs, c->served, c->step[0] ? c->step[0] : c->setup[0]);
    fp_formset_free(fs);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* A request holds the version it started with while the file goes away. */
Test(formset, removed_form_stays_alive_while_held)
{
    char dir[] = "/tmp/fp-formset-XXXXXX", cmd[64];
    cr_assert_not_null(mkdtemp(dir));
    apply(dir, "w a.json a 1");
    fp_error err = {0};
    fp_formset *fs = fp_formset_open_dir(dir, &err);
    cr_assert_not_null(fs, "%s", err.msg);
    fp_form_entry *held = fp_formset_get(fs, "a");
    cr_assert_not_null(held);
    apply(dir, "rm a.json");
    fp_formset_reload(fs);
    cr_expect_null(fp_formset_get(fs, "a"), "removed: not served");
    cr_expect_str_eq(held->form->name, "a", "the held version is intact");
    fp_formset_put(held);   /* the last reference: freed here (ASan checks) */
    fp_formset_free(fs);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* The settings a form's shared.ingest gives its entry. */
Test(formset, shared_ingest_settings)
{
    char dir[] = "/tmp/fp-formset-XXXXXX", cmd[64];
    cr_assert_not_null(mkdtemp(dir));
    apply(dir, "s a.json a 1 {\"ingest\":{\"maxBodyBytes\":300,\"allowedOrigins\":[\"https://a.example\",\"*\"]}}");
    apply(dir, "s b.json b 1 {\"ingest\":{\"allowedOrigins\":[]}}");
    apply(dir, "w c.json c 1");
    fp_error err = {0};
    fp_formset *fs = fp_formset_open_dir(dir, &err);
    cr_assert_not_null(fs, "%s", err.msg);
    fp_form_entry *a = fp_formset_get(fs, "a"), *b = fp_formset_get(fs, "b"), *cc = fp_formset_get(fs, "c");
    cr_assert(a && b && cc, "all three served");
    cr_expect_eq(a->max_body_bytes, 300);
    cr_expect_eq(cJSON_GetArraySize(a->allowed_origins), 2);
    cr_expect_str_eq(cJSON_GetArrayItem(a->allowed_origins, 0)->valuestring, "https://a.example");
    cr_expect_eq(b->max_body_bytes, 0, "no maxBodyBytes: the flag's");
    cr_expect_not_null(b->allowed_origins, "an empty list is a list (no origin)");
    cr_expect_eq(cJSON_GetArraySize(b->allowed_origins), 0);
    cr_expect_eq(cc->max_body_bytes, 0);
    cr_expect_null(cc->allowed_origins, "no shared: the flags apply");
    fp_formset_put(a);
    fp_formset_put(b);
    fp_formset_put(cc);
    fp_formset_free(fs);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(formset, unreadable_directory_fails_open)
{
    fp_error err = {0};
    cr_assert_null(fp_formset_open_dir("/nonexistent/forms", &err));
    cr_expect_eq(err.code, FP_ENOTFOUND, "%s", err.msg);
}
