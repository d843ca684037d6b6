/* Unit tests for services/common/log: one JSON object per line, levels, redaction. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

/* Captures what the logger writes through a pipe. */
static int pipefd[2];

static void capture(void)
{
    cr_assert_eq(pipe(pipefd), 0);
    fp_log_set_fd(pipefd[1]);
}

static char *captured(void)
{
    static char out[65536];
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], out, sizeof out - 1);
    out[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    return out;
}

Test(log, writes_one_json_object_per_line_with_the_standard_keys)
{
    capture();
    fp_log_init("ingest", FP_LOG_INFO);
    fp_log_info("listening", FP_LINT("port", 8080), FP_LSTR("form", "student \"data\""),
                FP_LBOOL("tls", 0), FP_LDBL("ratio", 0.5));
    fp_log_warn("no fields");
    char *out = captured();
    char *nl = strchr(out, '\n');
    cr_assert_not_null(nl, "a line ends with a newline: %s", out);
    *nl = '\0';
    cJSON *j = cJSON_Parse(out);
    cr_assert_not_null(j, "line is valid JSON: %s", out);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "level")->valuestring, "info");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "component")->valuestring, "ingest");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "msg")->valuestring, "listening");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(j, "port")->valueint, 8080);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "form")->valuestring, "student \"data\"");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "tls")));
    cr_assert_float_eq(cJSON_GetObjectItemCaseSensitive(j, "ratio")->valuedouble, 0.5, 1e-12);
    const char *t = cJSON_GetObjectItemCaseSensitive(j, "time")->valuestring;
    cr_assert_eq(strlen(t), 24, "RFC 3339 UTC with milliseconds: %s", t);
    cr_assert_eq(t[23], 'Z');
    cJSON_Delete(j);
    cJSON *second = cJSON_Parse(nl + 1);
    cr_assert_not_null(second, "second line is valid JSON too: %s", nl + 1);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(second, "level")->valuestring, "warn");
    cJSON_Delete(second);
}

Test(log, drops_lines_below_the_level)
{
    capture();
    fp_log_init("t", FP_LOG_WARN);
    fp_log_debug("d");
    fp_log_info("i");
    fp_log_error("e");
    char *out = captured();
    cr_assert_null(strstr(out, "\"msg\":\"d\""));
    cr_assert_null(strstr(out, "\"msg\":\"i\""));
    cr_assert_not_null(strstr(out, "\"msg\":\"e\""));
}

struct secret_case { const char *key; int secret_type; };

static struct secret_case secret_cases[] = {
    {"password", 0}, {"redis_password", 0}, {"Authorization", 0}, {"token", 0},
    {"sasl.password", 0}, {"private_key", 0}, {"client_secret", 0}, {"anything", 1},
};

ParameterizedTestParameters(log, secrets_are_never_written)
{
    return cr_make_param_array(struct secret_case, secret_cases,
                               sizeof secret_cases / sizeof secret_cases[0]);
}

ParameterizedTest(struct secret_case *c, log, secrets_are_never_written)
{
    capture();
    fp_log_init("t", FP_LOG_DEBUG);
    if (c->secret_type)
        fp_log_info("connect", FP_LSECRET(c->key, "hunter2"));
    else
        fp_log_info("connect", FP_LSTR(c->key, "hunter2"));
    char *out = captured();
    cr_assert_null(strstr(out, "hunter2"), "secret leaked under key %s: %s", c->key, out);
    cr_assert_not_null(strstr(out, "[redacted]"), "%s", out);
}

Test(log, long_values_are_cut_and_marked)
{
    fp_buf line;
    char big[FP_LOG_MAX_VALUE * 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fp_buf_init(&line, 1 << 20);
    fp_log_init("t", FP_LOG_INFO);
    cr_assert_eq(fp_log_format(&line, FP_LOG_INFO, "m",
                               (const fp_log_field[]){FP_LSTR("v", big), FP_LEND}), 0);
    cJSON *j = cJSON_Parse(line.data);
    cr_assert_not_null(j);
    cr_assert_eq(strlen(cJSON_GetObjectItemCaseSensitive(j, "v")->valuestring), FP_LOG_MAX_VALUE);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated")));
    cJSON_Delete(j);
    fp_buf_free(&line);
}

struct level_case { const char *text; int ok; fp_log_level level; };

static struct level_case level_cases[] = {
    {"debug", 1, FP_LOG_DEBUG}, {"INFO", 1, FP_LOG_INFO}, {"warn", 1, FP_LOG_WARN},
    {"warning", 1, FP_LOG_WARN}, {"error", 1, FP_LOG_ERROR}, {"verbose", 0, FP_LOG_INFO},
    {"", 0, FP_LOG_INFO},
};

ParameterizedTestParameters(log, level_parse)
{
    return cr_make_param_array(struct level_case, level_cases,
                               sizeof level_cases / sizeof level_cases[0]);
}

ParameterizedTest(struct level_case *c, log, level_parse)
{
    fp_log_level l = FP_LOG_INFO;
    int rc = fp_log_level_parse(c->text, &l);
    cr_assert_eq(rc == 0, c->ok, "parsing '%s'", c->text);
    if (c->ok)
        cr_assert_eq(l, c->level, "parsing '%s'", c->text);
}
