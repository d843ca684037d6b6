/* Unit tests for services/common/formdir: what a scan lists and when it reports a change,
 * for files written in place and for the kubelet's `..data` symlink swap. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "formdir.h"

/* Steps, one string each, applied to a fresh temporary directory:
 *   "w NAME TEXT"        write NAME in place (a new inode only if NAME is new)
 *   "rm NAME"            remove NAME
 *   "mkdir NAME"         a directory named NAME
 *   "ln NAME TARGET"     a symlink NAME -> TARGET (may dangle)
 *   "kube N=T,N=T"       the kubelet's atomic write of the whole payload: a new
 *                        ..<version> directory, ..data swapped to it, user-visible links
 *                        added for new names and removed for gone ones, old version removed
 *   "kubeswap N=T,N=T"   the same, stopped right after the ..data swap (links of removed
 *                        names dangle, links of new names are not there yet) */
#define MAXSTEPS 4

struct dir_case {
    const char *setup[MAXSTEPS];  /* applied, then a scan that must return 1 */
    const char *step[MAXSTEPS];   /* applied, then the scan under test */
    int want;                     /* that scan's return */
    const char *listing;          /* base names it lists, space separated */
    const char *changed;          /* the names fp_formdir_changed reports, space separated */
};

static struct dir_case cases[] = {
    /* nothing happens: no change */
    {{"w a.json {}"}, {NULL}, 0, "a.json", ""},
    /* a new file */
    {{"w b.json {}"}, {"w a.json {}"}, 1, "a.json b.json", "a.json"},
    /* a removed file */
    {{"w a.json {}", "w b.json {}"}, {"rm a.json"}, 1, "b.json", ""},
    /* a file rewritten in place with the same content: no change */
    {{"w a.json {}"}, {"w a.json {}"}, 0, "a.json", ""},
    /* a file rewritten in place with other content */
    {{"w a.json {}", "w b.json {}"}, {"w a.json {\"x\":1}"}, 1, "a.json b.json", "a.json"},
    /* one removed and one added: same count, still a change */
    {{"w a.json {}"}, {"rm a.json", "w c.json {}"}, 1, "c.json", "c.json"},
    /* not forms: hidden names, other suffixes, a bare ".json", directories, dangling links */
    {{"w a.json {}"}, {"w .b.json {}", "w c.yaml x", "w .json {}", "mkdir d.json"}, 0, "a.json", ""},
    {{"w a.json {}"}, {"ln e.json nowhere.json"}, 0, "a.json", ""},
    /* a link to a file is a form (the kubelet's layout) */
    {{"w a.json {}"}, {"w .real {}", "ln b.json .real"}, 1, "a.json b.json", "b.json"},
    /* the kubelet: the first payload */
    {{"w .keep x"}, {"kube a.json={},b.json={}"}, 1, "a.json b.json", "a.json b.json"},
    /* the kubelet: nothing happens */
    {{"kube a.json={},b.json={}"}, {NULL}, 0, "a.json b.json", ""},
    /* the kubelet: the same payload written again - new inodes, same content: no change */
    {{"kube a.json={},b.json={}"}, {"kube a.json={},b.json={}"}, 0, "a.json b.json", ""},
    /* the kubelet: one file changed - every file is in the new ..<version> directory,
     * only the one with other content is changed */
    {{"kube a.json={},b.json={}"}, {"kube a.json={},b.json={\"y\":2}"}, 1, "a.json b.json", "b.json"},
    /* the kubelet: a file added and one removed */
    {{"kube a.json={},b.json={}"}, {"kube b.json={},c.json={}"}, 1, "b.json c.json", "c.json"},
    /* the kubelet mid-swap: the removed name's link dangles and is not listed; the new
     * name has no link yet */
    {{"kube a.json={},b.json={}"}, {"kubeswap b.json={},c.json={}"}, 1, "b.json", ""},
    /* the same payload after the swap, then its links: c.json appears */
    {{"kube a.json={},b.json={}"}, {"kubeswap b.json={},c.json={}", "ln c.json ..data/c.json"}, 1, "b.json c.json", "c.json"},
    /* the kubelet: everything removed */
    {{"kube a.json={}"}, {"kube "}, 1, "", ""},
};

static int version;   /* the kubelet's ..<version> directories of this process */

static void must(int ok, const char *what, const char *arg)
{
    cr_assert(ok, "%s %s failed", what, arg);
}

/* snprintf into an array, failing the test on truncation. */
#define PATHF(buf, ...) must(snprintf(buf, sizeof buf, __VA_ARGS__) < (int)sizeof buf, "snprintf", #buf)

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    must(f != NULL, "fopen", path);
    fputs(text, f);
    must(fclose(f) == 0, "fclose", path);
}

/* The kubelet's AtomicWriter, in its order of operations. */
static void kubelet_write(const char *dir, const char *payload, int finish)
{
    char path[512], target[512], old[256] = "";
    ssize_t n = readlink((snprintf(path, sizeof path, "%s/..data", dir), path), old, sizeof old - 1);
    old[n > 0 ? n : 0] = 0;
    char ver[64];
    PATHF(ver, "..2026_12_02_07_00_%02d.%d", version, version);
    version++;
    PATHF(path, "%s/%s", dir, ver);
    must(mkdir(path, 0755) == 0, "mkdir", path);
    char names[16][64];
    int nn = 0;
    char buf[512];
    PATHF(buf, "%s", payload);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        *eq = 0;
        snprintf(names[nn++], sizeof names[0], "%s", kv);
        PATHF(path, "%s/%s/%s", dir, ver, kv);
        write_file(path, eq + 1);
    }
    PATHF(path, "%s/..data_tmp", dir);
    must(symlink(ver, path) == 0, "symlink", path);
    PATHF(target, "%s/..data", dir);
    must(rename(path, target) == 0, "rename", path);
    if (!finish)
        return;
    for (int i = 0; i < nn; i++) {
        PATHF(path, "%s/%s", dir, names[i]);
        PATHF(target, "..data/%s", names[i]);
        struct stat st;
        if (lstat(path, &st) != 0)
            must(symlink(target, path) == 0, "symlink", path);
    }
    PATHF(path, "%s/%s", dir, old);
    if (old[0]) {   /* links of names no longer in the payload, then the old version */
        char cmd[1200];
        PATHF(cmd, "cd '%s' && for f in *; do [ -L \"$f\" ] && [ ! -e \"$f\" ] && rm \"$f\"; done; rm -rf '%s'",
                 dir, old);
        must(system(cmd) == 0, "cleanup", cmd);
    }
}

static void apply(const char *dir, const char *step)
{
    char path[512], op[16], name[128];
    const char *rest;
    int skip = 0;
    must(sscanf(step, "%15s %127s %n", op, name, &skip) >= 1, "parse", step);
    rest = step + (skip ? skip : (int)strlen(step));
    PATHF(path, "%s/%s", dir, name);
    if (!strcmp(op, "w"))
        write_file(path, rest);
    else if (!strcmp(op, "rm"))
        must(unlink(path) == 0, "unlink", path);
    else if (!strcmp(op, "mkdir"))
        must(mkdir(path, 0755) == 0, "mkdir", path);
    else if (!strcmp(op, "ln"))
        must(symlink(rest, path) == 0, "symlink", path);
    else if (!strcmp(op, "kube") || !strcmp(op, "kubeswap"))
        kubelet_write(dir, strcmp(step + strlen(op), " ") ? step + strlen(op) + 1 : "", !strcmp(op, "kube"));
    else
        cr_assert_fail("unknown step %s", step);
}

static void names_of(const fp_formdir *d, int only_changed, char *out, size_t outsz)
{
    out[0] = 0;
    for (size_t i = 0; i < fp_formdir_count(d); i++) {
        if (only_changed && !fp_formdir_changed(d, i))
            continue;
        const char *p = fp_formdir_path(d, i), *slash = strrchr(p, '/');
        snprintf(out + strlen(out), outsz - strlen(out), "%s%s", out[0] ? " " : "", slash + 1);
    }
}

ParameterizedTestParameters(formdir, scan)
{
    return cr_make_param_array(struct dir_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct dir_case *c, formdir, scan)
{
    char dir[] = "/tmp/fp-formdir-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    fp_error err = {0};
    for (int i = 0; i < MAXSTEPS && c->setup[i]; i++)
        apply(dir, c->setup[i]);
    fp_formdir *d = fp_formdir_open(dir, &err);
    cr_assert_not_null(d, "open: %s", err.msg);
    cr_assert_eq(fp_formdir_scan(d, &err), 1, "the first scan reports a change (%s)", err.msg);
    usleep(20000);   /* a rewrite in place gets a later mtime even on coarse clocks */
    for (int i = 0; i < MAXSTEPS && c->step[i]; i++)
        apply(dir, c->step[i]);
    int rc = fp_formdir_scan(d, &err);
    char got[512], changed[512];
    names_of(d, 0, got, sizeof got);
    names_of(d, 1, changed, sizeof changed);
    cr_expect_eq(rc, c->want, "after %s: scan returned %d, want %d (%s)", c->step[0] ? c->step[0] : "nothing", rc,
                 c->want, err.msg);
    cr_expect_str_eq(got, c->listing, "after %s: lists '%s', want '%s'", c->step[0] ? c->step[0] : "nothing", got,
                     c->listing);
    cr_expect_str_eq(changed, c->changed, "after %s: changed '%s', want '%s'", c->step[0] ? c->step[0] : "nothing",
                     changed, c->changed);
    cr_expect_eq(fp_formdir_scan(d, &err), 0, "a scan right after reports no change");
    for (size_t i = 0; i < fp_formdir_count(d); i++) {
        const char *p = fp_formdir_path(d, i);
        cr_expect_eq(strncmp(p, dir, strlen(dir)), 0, "%s is a full path under %s", p, dir);
        cr_expect_eq(fp_formdir_find(d, strrchr(p, '/') + 1), (long)i, "find %s", p);
    }
    cr_expect_eq(fp_formdir_find(d, "nope.json"), -1);
    cr_expect_null(fp_formdir_path(d, fp_formdir_count(d)));
    fp_formdir_free(d);
    char cmd[600];
    PATHF(cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

struct open_case { const char *dir; int code; };

static struct open_case opens[] = {
    {"", FP_EINVAL},
    {"/nonexistent/formdir", FP_ENOTFOUND},
    {"/etc/hostname", FP_EINVAL},   /* a file, not a directory */
};

ParameterizedTestParameters(formdir, open_refuses)
{
    return cr_make_param_array(struct open_case, opens, sizeof opens / sizeof opens[0]);
}

ParameterizedTest(struct open_case *c, formdir, open_refuses)
{
    fp_error err = {0};
    cr_assert_null(fp_formdir_open(c->dir, &err), "%s opens", c->dir);
    cr_assert_eq(err.code, c->code, "%s: %s (%s)", c->dir, fp_error_name(err.code), err.msg);
}

/* A directory that disappears: the scan fails and keeps the last listing. */
Test(formdir, scan_failure_keeps_listing)
{
    char dir[] = "/tmp/fp-formdir-XXXXXX", path[600];
    cr_assert_not_null(mkdtemp(dir));
    PATHF(path, "%s/a.json", dir);
    write_file(path, "{}");
    fp_error err = {0};
    fp_formdir *d = fp_formdir_open(dir, &err);
    cr_assert_eq(fp_formdir_scan(d, &err), 1);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(rmdir(dir), 0);
    int rc = fp_formdir_scan(d, &err);
    cr_expect_eq(rc, FP_ENOTFOUND, "scan of a removed directory: %s", fp_error_name(rc));
    cr_expect_eq(fp_formdir_count(d), 1, "the last listing stays");
    cr_expect_str_eq(fp_formdir_dir(d), dir);
    fp_formdir_free(d);
}
