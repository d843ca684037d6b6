/* Unit tests for services/common/kafka: the same configuration for every binary,
 * with secret values kept out of messages. No broker needed. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"

static char *temp_file(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/fp-kafka-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void expect_prop(rd_kafka_conf_t *c, const char *key, const char *want)
{
    char val[512];
    size_t sz = sizeof val;
    cr_assert_eq(rd_kafka_conf_get(c, key, val, &sz), RD_KAFKA_CONF_OK, "%s not set", key);
    cr_assert_str_eq(val, want, "%s", key);
}

Test(kafka, defaults_then_file_then_flags)
{
    char *path = temp_file("# comment\n! also a comment\n\n security.protocol = SASL_SSL \n"
                           "sasl.mechanism=SCRAM-SHA-512\nclient.id=from-file\n");
    char *items[] = {"client.id=from-flag", "linger.ms = 7"};
    fp_strlist props = {items, 2};
    fp_error err = {0};
    rd_kafka_conf_t *c = fp_kafka_conf_new("b1:9092,b2:9092", (const char *[]){"client.id", "default", "linger.ms", "1", "socket.timeout.ms", "12345", NULL}, path, &props, &err);
    cr_assert_not_null(c, "%s", err.msg);
    expect_prop(c, "bootstrap.servers", "b1:9092,b2:9092");
    expect_prop(c, "security.protocol", "sasl_ssl");
    expect_prop(c, "sasl.mechanisms", "SCRAM-SHA-512");
    expect_prop(c, "client.id", "from-flag");
    expect_prop(c, "linger.ms", "7");
    expect_prop(c, "socket.timeout.ms", "12345");   /* a default nobody overrode */
    rd_kafka_conf_destroy(c);
    unlink(path);
}

struct bad_case { const char *file; const char *flag; const char *msg; const char *hidden; };

static struct bad_case bad[] = {
    {"no.such.property=1\n", NULL, ":1: ", NULL},
    {"client.id=x\nlinger.ms=soon\n", NULL, ":2: ", NULL},
    {"just words\n", NULL, "expected key=value", NULL},
    {" = value\n", NULL, "empty key", NULL},
    {NULL, "acks", "--kafka-property: expected key=value", NULL},
    {NULL, "sasl.password.bogus=hunter2", "value hidden", "hunter2"},
    {NULL, "linger.ms=-5", "kafka property linger.ms: rejected (value hidden)", "-5"},   /* #16: never the value */
    {NULL, "ssl.endpoint.identification.algorithm=hunter2", "kafka property ssl.endpoint.identification.algorithm:", "hunter2"},
};

ParameterizedTestParameters(kafka, bad_configuration_names_key_and_hides_secrets)
{
    return cr_make_param_array(struct bad_case, bad, sizeof bad / sizeof bad[0]);
}

ParameterizedTest(struct bad_case *c, kafka, bad_configuration_names_key_and_hides_secrets)
{
    char *path = c->file ? temp_file(c->file) : NULL;
    char *items[] = {(char *)c->flag};
    fp_strlist props = {items, c->flag ? 1 : 0};
    fp_error err = {0};
    cr_assert_null(fp_kafka_conf_new("b:9092", NULL, path, &props, &err), "should be refused");
    cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
    if (c->hidden)
        cr_assert_null(strstr(err.msg, c->hidden), "secret echoed: %s", err.msg);
    if (path)
        unlink(path);
}

Test(kafka, missing_file_is_named)
{
    fp_error err = {0};
    cr_assert_null(fp_kafka_conf_new("b:9092", NULL, "/nonexistent/kafka.properties", NULL, &err));
    cr_assert_not_null(strstr(err.msg, "/nonexistent/kafka.properties"), "%s", err.msg);
}
