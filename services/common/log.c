/* log.c — see log.h. */
#include "log.h"
#include "buf.h"
#include "error.h"
#include "rfc3339.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FP_LOG_MAX_LINE (64 * 1024)

static const char *log_component = "formpipe";
static atomic_int log_level = FP_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Key fragments that mark a value as secret whatever type the caller gave it. */
static const char *const secret_keys[] = {"password", "passwd", "secret", "token",
                                          "authorization", "private_key", "apikey",
                                          "api_key", "credential", "cookie"};

void fp_log_init(const char *component, fp_log_level level)
{
    log_component = component;
    atomic_store(&log_level, level);
}

int fp_log_setup(const char *prog, const char *component, const char *level_text)
{
    fp_log_level level;
    if (fp_log_level_parse(level_text, &level)) {
        fprintf(stderr, "%s: --log-level: '%s' is not debug, info, warn or error\n", prog, level_text);
        return 2;
    }
    fp_log_init(component, level);
    return 0;
}


void fp_log_set_fd(int fd) { atomic_store(&log_fd, fd); }

int fp_log_level_parse(const char *s, fp_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (fp_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = FP_LOG_WARN;
        return 0;
    }
    return FP_EINVAL;
}

int fp_log_enabled(fp_log_level level)
{
    return level != FP_LOG_OFF && (int)level >= atomic_load(&log_level);
}

static int key_is_secret(const char *key)
{
    for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0]; i++) {
        if (strcasestr(key, secret_keys[i]))
            return 1;
    }
    return 0;
}

/* Appends "key": with the key escaped. */
static int add_key(fp_buf *b, const char *key)
{
    int rc = fp_buf_adds(b, ",\"");
    if (!rc)
        rc = fp_buf_add_json_str(b, key, strlen(key));
    if (!rc)
        rc = fp_buf_adds(b, "\":");
    return rc;
}

/* Appends a quoted string value, cut at FP_LOG_MAX_VALUE bytes (sets *truncated). */
static int add_str_value(fp_buf *b, const char *s, int *truncated)
{
    if (!s)
        return fp_buf_adds(b, "null");
    size_t n = strlen(s);
    if (n > FP_LOG_MAX_VALUE) {
        n = FP_LOG_MAX_VALUE;
        *truncated = 1;
    }
    return fp_buf_add_json_string(b, s, n);
}

static int add_field(fp_buf *b, const fp_log_field *f, int *truncated)
{
    int rc = add_key(b, f->key);
    if (rc)
        return rc;
    if (f->type == FP_LOG_F_SECRET || key_is_secret(f->key))
        return fp_buf_adds(b, "\"[redacted]\"");
    switch (f->type) {
    case FP_LOG_F_STR:
        return add_str_value(b, f->v.s, truncated);
    case FP_LOG_F_INT:
        return fp_buf_printf(b, "%lld", f->v.i);
    case FP_LOG_F_DBL:
        if (!isfinite(f->v.d))
            return fp_buf_printf(b, "\"%g\"", f->v.d);
        return fp_buf_printf(b, "%.17g", f->v.d);
    case FP_LOG_F_BOOL:
        return fp_buf_adds(b, f->v.b ? "true" : "false");
    default:
        return fp_buf_adds(b, "null");
    }
}

int fp_log_format(fp_buf *out, fp_log_level level, const char *msg, const fp_log_field *fields)
{
    char when[FP_RFC3339_MAX];
    int truncated = 0;
    int rc;

    fp_rfc3339_now(3, when, sizeof when);
    rc = fp_buf_printf(out, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":\"", when,
                       level <= FP_LOG_ERROR ? level_names[level] : "error");
    if (!rc)
        rc = fp_buf_add_json_str(out, log_component, strlen(log_component));
    if (!rc)
        rc = fp_buf_adds(out, "\",\"msg\":");
    if (!rc)
        rc = add_str_value(out, msg, &truncated);
    for (const fp_log_field *f = fields; !rc && f && f->key; f++)
        rc = add_field(out, f, &truncated);
    if (!rc && truncated)
        rc = fp_buf_adds(out, ",\"truncated\":true");
    if (!rc)
        rc = fp_buf_adds(out, "}\n");
    return rc;
}

void fp_log_write(fp_log_level level, const char *msg, const fp_log_field *fields)
{
    fp_buf line;
    if (!fp_log_enabled(level))
        return;
    fp_buf_init(&line, FP_LOG_MAX_LINE);
    if (fp_log_format(&line, level, msg, fields) != 0) {
        /* Too many fields for one line: keep the message, say what happened. */
        fp_buf_reset(&line);
        const fp_log_field note[] = {FP_LBOOL("fields_dropped", 1), FP_LEND};
        if (fp_log_format(&line, level, msg, note) != 0) {
            fp_buf_free(&line);
            return;
        }
    }
    pthread_mutex_lock(&log_lock);
    const char *p = line.data;
    size_t left = line.len;
    int fd = atomic_load(&log_fd);
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n <= 0)
            break;
        p += n;
        left -= (size_t)n;
    }
    pthread_mutex_unlock(&log_lock);
    fp_buf_free(&line);
}
