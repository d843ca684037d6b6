/* config.c — see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FP_ENV_PREFIX "FORMPIPE_"

void fp_config_env_name(const char *name, char *out, size_t outsz)
{
    size_t j = 0;
    const char *prefix = FP_ENV_PREFIX;
    for (size_t i = 0; prefix[i] && j + 1 < outsz; i++)
        out[j++] = prefix[i];
    for (size_t i = 0; name[i] && j + 1 < outsz; i++)
        out[j++] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    out[j] = '\0';
}

int fp_config_parse_duration(const char *s, long long *ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return FP_EINVAL;
    long long mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mult = 3600 * 1000;
    else if (*end == '\0' && v == 0)
        mult = 1;
    else
        return FP_EINVAL;
    if (v > LLONG_MAX / mult)
        return FP_EINVAL;
    *ms = v * mult;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = 1; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *out = 0; return 0; }
    }
    return FP_EINVAL;
}

static void strlist_clear(fp_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int strlist_push(fp_strlist *l, const char *s, size_t len)
{
    char **items = realloc(l->items, (l->n + 1) * sizeof *items);
    if (!items)
        return FP_ENOMEM;
    l->items = items;
    if (!(items[l->n] = strndup(s, len)))
        return FP_ENOMEM;
    l->n++;
    return 0;
}

/* Describes where a value came from, for error messages: "--port" or "FORMPIPE_PORT". */
static void source_name(const fp_option *o, int from_env, char *out, size_t outsz)
{
    if (from_env)
        fp_config_env_name(o->name, out, outsz);
    else
        snprintf(out, outsz, "--%s", o->name);
}

/* Stores one textual value into o->dest. `append` is for repeated list flags. */
static int set_value(const fp_option *o, const char *val, int from_env, int append, fp_error *err)
{
    char src[128];
    long long v;
    source_name(o, from_env, src, sizeof src);
    const char *shown = (o->flags & FP_OPT_SECRET) ? "(secret)" : val;

    switch (o->type) {
    case FP_OPT_STRING: {
        char **dest = o->dest;
        char *copy = strdup(val);
        if (!copy)
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        free(*dest);
        *dest = copy;
        return 0;
    }
    case FP_OPT_BOOL:
        if (parse_bool(val, o->dest))
            return fp_error_set(err, FP_EINVAL, "%s: '%s' is not a boolean (true/false)", src, shown);
        return 0;
    case FP_OPT_INT: {
        char *end;
        errno = 0;
        v = strtoll(val, &end, 10);
        if (end == val || *end || errno)
            return fp_error_set(err, FP_EINVAL, "%s: '%s' is not an integer", src, shown);
        break;
    }
    case FP_OPT_DURATION:
        if (fp_config_parse_duration(val, &v))
            return fp_error_set(err, FP_EINVAL,
                                "%s: '%s' is not a duration (e.g. 250ms, 2s, 1m, 1h)", src, shown);
        break;
    case FP_OPT_LIST: {
        fp_strlist *l = o->dest;
        if (!append)
            strlist_clear(l);
        if (!from_env)
            return strlist_push(l, val, strlen(val)) ? fp_error_set(err, FP_ENOMEM, "out of memory") : 0;
        for (const char *p = val; *p;) {
            size_t len = strcspn(p, ",");
            if (len && strlist_push(l, p, len))
                return fp_error_set(err, FP_ENOMEM, "out of memory");
            p += len;
            if (*p == ',')
                p++;
        }
        return 0;
    }
    default:
        return fp_error_set(err, FP_EINVAL, "%s: unsupported option type", src);
    }
    if (o->min < o->max && (v < o->min || v > o->max)) {
        if (o->type == FP_OPT_DURATION)
            return fp_error_set(err, FP_EINVAL, "%s: '%s' is out of range (%lldms to %lldms)",
                                src, shown, o->min, o->max);
        return fp_error_set(err, FP_EINVAL, "%s: %s is out of range (%lld to %lld)",
                            src, shown, o->min, o->max);
    }
    *(long long *)o->dest = v;
    return 0;
}

static const fp_option *find_option(const fp_option *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    }
    return NULL;
}

/* Puts every destination in its "not given" state before defaults are applied. */
static void reset_dests(const fp_option *opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (opts[i].type) {
        case FP_OPT_STRING: *(char **)opts[i].dest = NULL; break;
        case FP_OPT_BOOL: *(int *)opts[i].dest = 0; break;
        case FP_OPT_LIST: ((fp_strlist *)opts[i].dest)->items = NULL;
                          ((fp_strlist *)opts[i].dest)->n = 0; break;
        default: *(long long *)opts[i].dest = 0; break;
        }
    }
}

int fp_config_parse(const fp_option *opts, size_t n, int argc, char **argv, fp_error *err)
{
    /* given[i]: 0 = default, 1 = env, 2 = flag */
    unsigned char *given = calloc(n ? n : 1, 1);
    int rc = 0;
    if (!given)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    reset_dests(opts, n);

    for (size_t i = 0; i < n && !rc; i++) {
        if (opts[i].def)
            rc = set_value(&opts[i], opts[i].def, 0, 0, err);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        char env[128];
        fp_config_env_name(opts[i].name, env, sizeof env);
        const char *val = getenv(env);
        if (val) {
            rc = set_value(&opts[i], val, 1, 0, err);
            given[i] = 1;
        }
    }
    for (int a = 1; a < argc && !rc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            rc = FP_EHELP;
            break;
        }
        if (strncmp(arg, "--", 2) != 0) {
            rc = fp_error_set(err, FP_EINVAL, "unexpected argument '%s' (options start with --)", arg);
            break;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const fp_option *o = find_option(opts, n, name, len);
        if (!o) {
            rc = fp_error_set(err, FP_EINVAL, "unknown option --%.*s (see --help)", (int)len, name);
            break;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type == FP_OPT_BOOL) {
            val = "true";
        } else if (!val) {
            if (a + 1 >= argc) {
                rc = fp_error_set(err, FP_EINVAL, "--%s needs a value", o->name);
                break;
            }
            val = argv[++a];
        }
        size_t idx = (size_t)(o - opts);
        rc = set_value(o, val, 0, given[idx] == 2, err);
        given[idx] = 2;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if ((opts[i].flags & FP_OPT_REQUIRED) && !given[i] && !opts[i].def) {
            char env[128];
            fp_config_env_name(opts[i].name, env, sizeof env);
            rc = fp_error_set(err, FP_EINVAL, "--%s is required (or set %s)", opts[i].name, env);
        }
    }
    free(given);
    if (rc && rc != FP_EHELP)
        fp_config_free(opts, n);
    return rc;
}

static const char *type_word(fp_opt_type t)
{
    switch (t) {
    case FP_OPT_INT: return "INT";
    case FP_OPT_DURATION: return "DURATION";
    case FP_OPT_LIST: return "VALUE";
    case FP_OPT_BOOL: return "";
    default: return "VALUE";
    }
}

void fp_config_help(FILE *out, const char *prog, const char *summary,
                    const fp_option *opts, size_t n)
{
    fprintf(out, "Usage: %s [options]\n%s\n\nOptions (flag, environment variable):\n", prog, summary);
    for (size_t i = 0; i < n; i++) {
        const fp_option *o = &opts[i];
        char env[128];
        char flag[160];
        fp_config_env_name(o->name, env, sizeof env);
        snprintf(flag, sizeof flag, "--%s%s%s", o->name, o->type == FP_OPT_BOOL ? "" : " ",
                 type_word(o->type));
        fprintf(out, "  %-34s %s\n      %s", flag, env, o->help);
        if (o->type == FP_OPT_LIST)
            fprintf(out, " (repeatable; env: comma-separated)");
        if (o->flags & FP_OPT_REQUIRED)
            fprintf(out, " [required]");
        if (o->def && *o->def && !(o->flags & FP_OPT_SECRET))
            fprintf(out, " [default: %s]", o->def);
        if (o->min < o->max)
            fprintf(out, o->type == FP_OPT_DURATION ? " [range: %lldms..%lldms]" : " [range: %lld..%lld]",
                    o->min, o->max);
        fputc('\n', out);
    }
    fprintf(out, "  %-34s\n      show this help and exit\n", "--help");
}

int fp_config_load(const char *prog, const char *summary, const fp_option *opts,
                   size_t n, int argc, char **argv, int *exit_status)
{
    fp_error err;
    fp_error_clear(&err);
    int rc = fp_config_parse(opts, n, argc, argv, &err);
    if (rc == FP_EHELP) {
        fp_config_help(stdout, prog, summary, opts, n);
        fp_config_free(opts, n);
        *exit_status = 0;
        return 1;
    }
    if (rc) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        *exit_status = 2;
        return 1;
    }
    return 0;
}

void fp_config_free(const fp_option *opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (opts[i].type == FP_OPT_STRING) {
            free(*(char **)opts[i].dest);
            *(char **)opts[i].dest = NULL;
        } else if (opts[i].type == FP_OPT_LIST) {
            strlist_clear(opts[i].dest);
        }
    }
}

char *fp_config_read_secret(const char *path, size_t *len, fp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fp_error_set(err, FP_EIO, "cannot read %.200s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = calloc(1, FP_CONFIG_SECRET_MAX + 2);
    size_t n = buf ? fread(buf, 1, FP_CONFIG_SECRET_MAX + 1, f) : 0;
    int failed = ferror(f);
    fclose(f);
    if (!buf) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    if (failed || n > FP_CONFIG_SECRET_MAX || (!len && memchr(buf, '\0', n))) {
        fp_error_set(err, FP_EINVAL, "%.200s: %s", path,
                     failed ? "read error" : n > FP_CONFIG_SECRET_MAX ? "longer than the " FP_CONFIG_SECRET_MAX_TEXT " bytes a secret may have"
                                                              : "holds a NUL byte");
        fp_config_free_secret(buf, n);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (len)
        *len = n;
    return buf;
}

void fp_config_free_secret(char *secret, size_t len)
{
    if (!secret)
        return;
    volatile char *p = secret;
    for (size_t i = 0; i < len; i++)
        p[i] = 0;
    free(secret);
}
