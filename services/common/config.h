/* config.h — configuration from command-line flags and FORMPIPE_* environment
 * variables, described once in a table that also generates --help. A flag wins over
 * the environment, which wins over the default. */
#ifndef FP_CONFIG_H
#define FP_CONFIG_H

#include <stdio.h>

#include "error.h"

typedef enum {
    FP_OPT_STRING,    /* dest: char **, allocated, freed by fp_config_free */
    FP_OPT_INT,       /* dest: long long * */
    FP_OPT_BOOL,      /* dest: int *; "--x" alone means true */
    FP_OPT_DURATION,  /* dest: long long * in milliseconds; "250ms", "2s", "1m", "1h" */
    FP_OPT_LIST       /* dest: fp_strlist *; flag repeatable, env comma-separated */
} fp_opt_type;

enum {
    FP_OPT_REQUIRED = 1u << 0,  /* no default: must be given by flag or env */
    FP_OPT_SECRET = 1u << 1     /* never echoed in errors or help */
};

typedef struct fp_strlist {
    char **items;
    size_t n;
} fp_strlist;

typedef struct fp_option {
    const char *name;     /* "kafka-bootstrap": flag --kafka-bootstrap, env FORMPIPE_KAFKA_BOOTSTRAP */
    fp_opt_type type;
    const char *def;      /* default in the same text form a user would write; NULL: none */
    const char *help;     /* one line */
    unsigned flags;
    long long min, max;   /* bounds for INT and DURATION (ms) when min < max */
    void *dest;
} fp_option;

/* Parses argv (argv[0] is the program) and the environment into the destinations.
 * Returns 0; FP_EHELP when --help was given; FP_EINVAL with err->msg naming the option
 * and the problem (unknown flag, missing value, bad value, out of range, missing
 * required option). Destinations hold defaults for options not given. */
int fp_config_parse(const fp_option *opts, size_t n, int argc, char **argv, fp_error *err);

/* Writes --help text generated from the table. */
void fp_config_help(FILE *out, const char *prog, const char *summary,
                    const fp_option *opts, size_t n);

/* For main(): parses, printing help to stdout or one error line "prog: message" to
 * stderr. Returns 0 to go on; 1 when the program should exit now with *exit_status
 * (0 after --help, 2 on a bad command line). */
int fp_config_load(const char *prog, const char *summary, const fp_option *opts,
                   size_t n, int argc, char **argv, int *exit_status);

/* Frees the strings and lists the parser stored in the destinations. */
void fp_config_free(const fp_option *opts, size_t n);

/* Parses a duration ("0", "250ms", "2s", "1m", "1h") into milliseconds. 0 or FP_EINVAL. */
int fp_config_parse_duration(const char *s, long long *ms);

/* Most bytes a secret file may hold; a longer one is refused, never cut short. */
#define FP_CONFIG_SECRET_MAX 4096
#define FP_CONFIG_SECRET_MAX_TEXT "4096"

/* Reads a secret (a password, an HMAC key) from a mounted file, trailing line breaks
 * (CR, LF) dropped. With len, the secret may hold any bytes and *len is its length;
 * without, it is a C string and a NUL byte in it is refused. Returns a NUL-terminated
 * buffer the caller releases with fp_config_free_secret, or NULL with *err naming the
 * file and the problem (unreadable, longer than FP_CONFIG_SECRET_MAX bytes). */
char *fp_config_read_secret(const char *path, size_t *len, fp_error *err);

/* Wipes the first len bytes of a secret and frees it. NULL is fine. */
void fp_config_free_secret(char *secret, size_t len);

/* Writes the environment variable name for an option ("FORMPIPE_KAFKA_BOOTSTRAP"). */
void fp_config_env_name(const char *name, char *out, size_t outsz);

#endif
