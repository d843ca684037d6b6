/* log.h — JSON-lines logging to stderr: one object per line with time, level,
 * component, msg and typed fields. Secrets are never written: FP_LSECRET fields and
 * fields whose key names a secret (password, token, ...) print as "[redacted]". */
#ifndef FP_LOG_H
#define FP_LOG_H

#include <stddef.h>

typedef enum { FP_LOG_DEBUG, FP_LOG_INFO, FP_LOG_WARN, FP_LOG_ERROR, FP_LOG_OFF } fp_log_level;

typedef enum { FP_LOG_F_STR, FP_LOG_F_INT, FP_LOG_F_DBL, FP_LOG_F_BOOL, FP_LOG_F_SECRET } fp_log_ftype;

typedef struct fp_log_field {
    const char *key;            /* NULL ends a field list */
    fp_log_ftype type;
    union { const char *s; long long i; double d; int b; } v;
} fp_log_field;

#define FP_LSTR(k, x)    ((fp_log_field){.key = (k), .type = FP_LOG_F_STR, .v.s = (x)})
#define FP_LINT(k, x)    ((fp_log_field){.key = (k), .type = FP_LOG_F_INT, .v.i = (x)})
#define FP_LDBL(k, x)    ((fp_log_field){.key = (k), .type = FP_LOG_F_DBL, .v.d = (x)})
#define FP_LBOOL(k, x)   ((fp_log_field){.key = (k), .type = FP_LOG_F_BOOL, .v.b = (x)})
#define FP_LSECRET(k, x) ((fp_log_field){.key = (k), .type = FP_LOG_F_SECRET, .v.s = (x)})
#define FP_LEND          ((fp_log_field){.key = NULL})

/* Longest string value written; longer ones are cut and the line says "truncated". */
#define FP_LOG_MAX_VALUE 2048

/* Sets the component name written on every line and the lowest level written.
 * The component string must outlive logging (a literal). */
void fp_log_init(const char *component, fp_log_level level);

/* For main(): parses the --log-level text and initialises logging for component.
 * Returns 0, or prints "prog: --log-level: ..." to stderr and returns 2 (the exit
 * status for a bad command line). */
int fp_log_setup(const char *prog, const char *component, const char *level_text);

/* Sends lines to fd instead of stderr (tests). */
void fp_log_set_fd(int fd);

/* Parses "debug", "info", "warn" or "error" (any case). Returns 0 or FP_EINVAL. */
int fp_log_level_parse(const char *s, fp_log_level *out);

/* True when a line at level would be written. */
int fp_log_enabled(fp_log_level level);

/* Writes one line with the fields up to the FP_LEND entry. Thread-safe: lines from
 * different threads never interleave. */
void fp_log_write(fp_log_level level, const char *msg, const fp_log_field *fields);

/* Formats one line (with its newline) into out, as fp_log_write would write it.
 * Returns 0 or a negative FP_E* code. */
struct fp_buf;
int fp_log_format(struct fp_buf *out, fp_log_level level, const char *msg,
                  const fp_log_field *fields);

#define FP_LOG_AT_(lvl, msg, ...) fp_log_write((lvl), (msg), (const fp_log_field[]){__VA_ARGS__})
/* fp_log_info("listening", FP_LINT("port", 8080)); fields are optional. */
#define fp_log_debug(...) FP_LOG_AT_(FP_LOG_DEBUG, __VA_ARGS__, FP_LEND)
#define fp_log_info(...)  FP_LOG_AT_(FP_LOG_INFO, __VA_ARGS__, FP_LEND)
#define fp_log_warn(...)  FP_LOG_AT_(FP_LOG_WARN, __VA_ARGS__, FP_LEND)
#define fp_log_error(...) FP_LOG_AT_(FP_LOG_ERROR, __VA_ARGS__, FP_LEND)

#endif
