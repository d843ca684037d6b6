/* Unit tests for services/common/config: flags, FORMPIPE_* env, defaults, errors. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static long long port, timeout_ms;
static char *bootstrap, *password;
static int verbose;
static fp_strlist forms;

static const fp_option opts[] = {
    {"port", FP_OPT_INT, "8080", "HTTP port", 0, 1, 65535, &port},
    {"kafka-bootstrap", FP_OPT_STRING, NULL, "Kafka bootstrap servers", FP_OPT_REQUIRED, 0, 0, &bootstrap},
    {"form", FP_OPT_LIST, NULL, "form definition file", 0, 0, 0, &forms},
    {"verbose", FP_OPT_BOOL, "false", "log more", 0, 0, 0, &verbose},
    {"timeout", FP_OPT_DURATION, "5s", "request timeout", 0, 1, 60000, &timeout_ms},
    {"redis-password", FP_OPT_STRING, NULL, "Redis password", FP_OPT_SECRET, 0, 0, &password},
};
#define NOPTS (sizeof opts / sizeof opts[0])

struct cfg_case {
    const char *args;       /* space-separated, after argv[0] */
    const char *env;        /* "NAME=value;NAME=value" */
    int rc;
    const char *msg;        /* substring of the error message */
    long long port, timeout_ms;
    const char *bootstrap;
    int verbose;
    const char *forms;      /* comma-joined */
};

static struct cfg_case cases[] = {
    /* defaults, env, and flag-wins */
    {"--kafka-bootstrap k:9092", "", 0, NULL, 8080, 5000, "k:9092", 0, ""},
    {"", "FORMPIPE_KAFKA_BOOTSTRAP=e:1;FORMPIPE_PORT=81", 0, NULL, 81, 5000, "e:1", 0, ""},
    {"--port=82 --kafka-bootstrap f:1", "FORMPIPE_KAFKA_BOOTSTRAP=e:1;FORMPIPE_PORT=81", 0, NULL, 82, 5000, "f:1", 0, ""},
    {"--kafka-bootstrap k --verbose --timeout 250ms", "", 0, NULL, 8080, 250, "k", 1, ""},
    {"--kafka-bootstrap k --verbose=false", "FORMPIPE_VERBOSE=yes", 0, NULL, 8080, 5000, "k", 0, ""},
    {"--kafka-bootstrap k", "FORMPIPE_VERBOSE=on;FORMPIPE_TIMEOUT=1m", 0, NULL, 8080, 60000, "k", 1, ""},
    /* lists: repeated flags, env comma-separated, flags replace env */
    {"--kafka-bootstrap k --form a.json --form b.json", "", 0, NULL, 8080, 5000, "k", 0, "a.json,b.json"},
    {"--kafka-bootstrap k", "FORMPIPE_FORM=x.json,y.json", 0, NULL, 8080, 5000, "k", 0, "x.json,y.json"},
    {"--kafka-bootstrap k --form z.json", "FORMPIPE_FORM=x.json,y.json", 0, NULL, 8080, 5000, "k", 0, "z.json"},
    /* errors name the option and the rule */
    {"", "", FP_EINVAL, "--kafka-bootstrap is required (or set FORMPIPE_KAFKA_BOOTSTRAP)", 0, 0, NULL, 0, NULL},
    {"--kafka-bootstrap k --bogus 1", "", FP_EINVAL, "unknown option --bogus", 0, 0, NULL, 0, NULL},
    {"--kafka-bootstrap k --port abc", "", FP_EINVAL, "--port: 'abc' is not an integer", 0, 0, NULL, 0, NULL},
    {"--kafka-bootstrap k --port 70000", "", FP_EINVAL, "--port: 70000 is out of range (1 to 65535)", 0, 0, NULL, 0, NULL},
    {"--kafka-bootstrap k", "FORMPIPE_PORT=0", FP_EINVAL, "FORMPIPE_PORT: 0 is out of range", 0, 0, NULL, 0, NULL},
    {"--kafka-bootstrap k --timeout 5", "", FP_EINVAL, "--timeout: '5' is not a duration", 0, 0, NULL, 0, NULL},
    {"--kafka-bootstrap k --timeout 2m", "", FP_EINVAL, "--timeout: '2m' is out of range (1ms to 60000ms)", 0, 0, NULL, 0, NULL},
    {"--kafka-bootstrap k --verbose=maybe", "", FP_EINVAL, "--verbose: 'maybe' is not a boolean", 0, 0, NULL, 0, NULL},
    {"--kafka-bootstrap", "", FP_EINVAL, "--kafka-bootstrap needs a value", 0, 0, NULL, 0, NULL},
    {"--kafka-bootstrap k stray", "", FP_EINVAL, "unexpected argument 'stray'", 0, 0, NULL, 0, NULL},
    {"--help", "", FP_EHELP, NULL, 0, 0, NULL, 0, NULL},
};

ParameterizedTestParameters(config, parse)
{
    return cr_make_param_array(struct cfg_case, cases, sizeof cases / sizeof cases[0]);
}

/* Splits s on sep into a NULL-terminated static array (test helper). */
static char **split(const char *s, const char *sep, char *storage, int *n)
{
    static char *v[32];
    *n = 0;
    strcpy(storage, s);
    for (char *t = strtok(storage, sep); t && *n < 31; t = strtok(NULL, sep))
        v[(*n)++] = t;
    v[*n] = NULL;
    return v;
}

ParameterizedTest(struct cfg_case *c, config, parse)
{
    char envbuf[512], argbuf[512];
    int nenv, nargs;
    char **env = split(c->env, ";", envbuf, &nenv);
    for (int i = 0; i < nenv; i++)
        putenv(strdup(env[i]));
    char **words = split(c->args, " ", argbuf, &nargs);
    char *argv[34] = {"prog"};
    for (int i = 0; i < nargs; i++)
        argv[i + 1] = words[i];

    fp_error err = {0};
    int rc = fp_config_parse(opts, NOPTS, nargs + 1, argv, &err);
    cr_assert_eq(rc, c->rc, "args '%s' env '%s': rc %d, message '%s'", c->args, c->env, rc, err.msg);
    if (c->msg)
        cr_assert_not_null(strstr(err.msg, c->msg), "expected '%s' in '%s'", c->msg, err.msg);
    if (rc != 0)
        return;
    cr_assert_eq(port, c->port);
    cr_assert_eq(timeout_ms, c->timeout_ms);
    cr_assert_str_eq(bootstrap, c->bootstrap);
    cr_assert_eq(verbose, c->verbose);
    char joined[256] = "";
    for (size_t i = 0; i < forms.n; i++) {
        strcat(joined, i ? "," : "");
        strcat(joined, forms.items[i]);
    }
    cr_assert_str_eq(joined, c->forms);
    fp_config_free(opts, NOPTS);
    cr_assert_null(bootstrap, "free resets strings");
}

Test(config, secret_values_are_not_echoed_in_errors)
{
    static long long n;
    static const fp_option o[] = {
        {"api-key-length", FP_OPT_INT, NULL, "secret number", FP_OPT_SECRET, 0, 0, &n},
    };
    char *argv[] = {"prog", "--api-key-length", "s3cr3t"};
    fp_error err = {0};
    cr_assert_eq(fp_config_parse(o, 1, 3, argv, &err), FP_EINVAL);
    cr_assert_null(strstr(err.msg, "s3cr3t"), "%s", err.msg);
}

Test(config, help_is_generated_from_the_table)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fp_config_help(f, "formpipe-test", "Tests things.", opts, NOPTS);
    fclose(f);
    cr_assert_not_null(strstr(text, "Usage: formpipe-test [options]"));
    cr_assert_not_null(strstr(text, "--kafka-bootstrap VALUE"));
    cr_assert_not_null(strstr(text, "FORMPIPE_KAFKA_BOOTSTRAP"));
    cr_assert_not_null(strstr(text, "[required]"));
    cr_assert_not_null(strstr(text, "[default: 8080]"));
    cr_assert_not_null(strstr(text, "[range: 1..65535]"));
    cr_assert_not_null(strstr(text, "(repeatable; env: comma-separated)"));
    cr_assert_not_null(strstr(text, "--help"));
    free(text);
}

Test(config, load_prints_one_line_and_exit_status_2_on_error, .init = cr_redirect_stderr)
{
    char *argv[] = {"prog", "--port", "x"};
    int status = -1;
    cr_assert_eq(fp_config_load("formpipe-test", "s", opts, NOPTS, 3, argv, &status), 1);
    cr_assert_eq(status, 2);
    fflush(stderr);
    cr_assert_stderr_eq_str("formpipe-test: --port: 'x' is not an integer\n");
}

struct dur_case { const char *in; int ok; long long ms; };

static struct dur_case dur_cases[] = {
    {"0", 1, 0}, {"250ms", 1, 250}, {"2s", 1, 2000}, {"1m", 1, 60000}, {"1h", 1, 3600000},
    {"5", 0, 0}, {"-1s", 0, 0}, {"1.5s", 0, 0}, {"s", 0, 0}, {"1d", 0, 0}, {"", 0, 0},
    {"99999999999999999h", 0, 0},
};

ParameterizedTestParameters(config, duration)
{
    return cr_make_param_array(struct dur_case, dur_cases, sizeof dur_cases / sizeof dur_cases[0]);
}

ParameterizedTest(struct dur_case *c, config, duration)
{
    long long ms = -1;
    int rc = fp_config_parse_duration(c->in, &ms);
    cr_assert_eq(rc == 0, c->ok, "'%s'", c->in);
    if (c->ok)
        cr_assert_eq(ms, c->ms, "'%s'", c->in);
}

/* A secret file: what is kept, and what is refused rather than cut short. */
struct secret_case {
    const char *bytes;      /* file content */
    size_t size;            /* its length (0: strlen) */
    int binary;             /* read with a length (an HMAC key) rather than as a C string */
    const char *want;       /* the secret, NULL = refused */
    size_t want_len;
    const char *msg;        /* substring of the error */
};

ParameterizedTestParameters(config, secret)
{
    static struct secret_case cases[] = {
        {"hunter2\n", 0, 0, "hunter2", 7, NULL},
        {"hunter2\r\n\n", 0, 0, "hunter2", 7, NULL},
        {"in\nside\n", 0, 0, "in\nside", 7, NULL},
        {"", 0, 0, "", 0, NULL},
        {"a\0b\n", 4, 0, NULL, 0, "NUL byte"},
        {"a\0b\n", 4, 1, "a\0b", 3, NULL},
        {NULL, FP_CONFIG_SECRET_MAX, 1, "", FP_CONFIG_SECRET_MAX, NULL},
        {NULL, FP_CONFIG_SECRET_MAX + 1, 1, NULL, 0, "longer than the 4096 bytes"},
    };
    return cr_make_param_array(struct secret_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct secret_case *c, config, secret)
{
    char path[] = "/tmp/fp-secret-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t size = c->size ? c->size : strlen(c->bytes);
    char *content = malloc(size + 1);
    cr_assert(content);
    if (c->bytes)
        memcpy(content, c->bytes, size);
    else
        memset(content, 'k', size);   /* a long key of 'k's */
    FILE *f = fdopen(fd, "wb");
    cr_assert_eq(fwrite(content, 1, size, f), size);
    fclose(f);
    size_t len = 12345;
    fp_error err = {0};
    char *got = fp_config_read_secret(path, c->binary ? &len : NULL, &err);
    unlink(path);
    if (!c->want) {
        cr_assert_null(got);
        cr_assert(strstr(err.msg, c->msg), "error '%s' lacks '%s'", err.msg, c->msg);
        cr_assert(strstr(err.msg, path), "error '%s' names no file", err.msg);
    } else {
        cr_assert_not_null(got, "refused: %s", err.msg);
        size_t n = c->binary ? len : strlen(got);
        cr_assert_eq(n, c->want_len);
        cr_assert(memcmp(got, c->bytes ? c->want : content, n) == 0);
        cr_assert_eq(got[n], '\0');
    }
    fp_config_free_secret(got, got ? (c->binary ? len : strlen(got)) : 0);
    free(content);
}

Test(config, secret_missing_file)
{
    fp_error err = {0};
    cr_assert_null(fp_config_read_secret("/nonexistent/formpipe/secret", NULL, &err));
    cr_assert(strstr(err.msg, "/nonexistent/formpipe/secret") && strstr(err.msg, "No such file"), "%s", err.msg);
}
