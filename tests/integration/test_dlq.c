/* formpipe-dlq against the real Kafka of scripts/testenv: dead letters made by a real
 * formpipe-consumer run, then listed, shown and re-driven into the pipeline once the
 * form has the field that was missing; the re-driven event is buffered exactly once. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rowstore.h"
#include "event.h"
#include "testkit.h"

#define BASE_MS 1795000000000LL

static char name[64], topic[128], dlq[140], *form_path;
static fp_redis *redis;
static fp_rowstore *buffer;

/* Writes the pipeline's form: generation 1 has name and roll; generation 2 adds cgpa. */
static void write_form(int generation)
{
    char form[512];
    snprintf(form, sizeof form,
             "{\"name\":\"%s\",\"namespace\":\"tests\",\"generation\":%d,\"fields\":["
             "{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"roll\",\"type\":\"string\"}%s]}",
             name, generation, generation > 1 ? ",{\"name\":\"cgpa\",\"type\":\"number\"}" : "");
    FILE *f = fopen(form_path, "w");
    cr_assert_not_null(f);
    fputs(form, f);
    fclose(f);
}

static void setup(void)
{
    tk_unique(name, sizeof name, "d");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(dlq, sizeof dlq, "%s.dlq", topic);
    form_path = tk_write_temp("{}");
    write_form(1);
    fp_error err = {0};
    redis = tk_redis();
    buffer = fp_rowstore_new(redis, "tests", name, &err);
    cr_assert_not_null(buffer, "%s", err.msg);
}

static void teardown(void)
{
    fp_rowstore_free(buffer);
    fp_redis_free(redis);
    unlink(form_path);
    free(form_path);
}

TestSuite(dlq, .init = setup, .fini = teardown, .timeout = 300);

static void start_consumer(tk_proc *p, int port)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *argv[] = {"--form", form_path, "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
                          "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
                          "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
                          "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                          "--min-replicas-ack", "1", "--admin-bind", "127.0.0.1", "--admin-port", portstr,
                          "--kafka-property", "session.timeout.ms=6000", NULL};
    tk_start(p, "formpipe-consumer", argv);
}

/* Event i of the student form; with_cgpa adds the field generation 1 does not know. */
static char *event_json(int i, const char *source_ns, int with_cgpa)
{
    char id[32], nm[32];
    snprintf(id, sizeof id, "id-%07d", i);
    snprintf(nm, sizeof nm, "student %d", i);
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "name", nm);
    cJSON_AddStringToObject(data, "roll", "7");
    if (with_cgpa)
        cJSON_AddNumberToObject(data, "cgpa", 9.5);
    char *ev = fp_event_encode(id, source_ns, name, BASE_MS + i, 1, data);
    cJSON_Delete(data);
    return ev;
}

static long long pending(void)
{
    long long n = -1;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_pending(buffer, &n, &err), 0, "%s", err.msg);
    return n;
}

static void wait_pending(long long want, double timeout_s, tk_proc *show)
{
    double deadline = tk_now() + timeout_s;
    long long n = 0;
    while (tk_now() < deadline && (n = pending()) != want)
        usleep(100 * 1000);
    if (n != want && show)
        tk_show_log(show);
    cr_assert_eq(n, want, "buffer holds %lld rows, want %lld", n, want);
}

/* Runs formpipe-dlq with the arguments after the command; returns the exit status and
 * its output (stdout and stderr; caller frees). */
static int dlq_tool(char **out, const char *args)
{
    return tk_sh(out, "'%s/formpipe-dlq' %s", FP_BIN_DIR, args);
}

/* Lines in a command's output (tk_sh trims the last newline). */
static int count_lines(const char *s)
{
    int n = *s != '\0';
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The consumer's value of a counter without labels. */
static double metric(int port, const char *name)
{
    char *body, needle[128];
    cr_assert_eq(tk_http_get(port, "/metrics", &body), 200);
    snprintf(needle, sizeof needle, "\n%s ", name);
    char *line = strstr(body, needle);
    cr_assert_not_null(line, "%s not in /metrics", name);
    double v = atof(line + strlen(needle));
    free(body);
    return v;
}

/* The total line redrive prints for n dead letters. */
static void total_line(char *out, size_t outsz, int dry, int n)
{
    snprintf(out, outsz, "%s%d dead letter%s %s to %s", dry ? "dry run: " : "", n, n == 1 ? "" : "s",
             dry ? "would be re-published" : "re-published", topic);
}

/* Asserts that out has exactly one line and it contains want. */
static void assert_one_line(const char *out, const char *want)
{
    cr_assert_eq(count_lines(out), 1, "one line expected, got:\n%s", out);
    cr_assert_not_null(strstr(out, want), "'%s' lacks '%s'", out, want);
}

Test(dlq, list_show_and_redrive_after_the_form_is_fixed)
{
    char args[1024], *out = NULL;
    const char *bs = tk_env("FORMPIPE_KAFKA_BOOTSTRAP");
    tk_topic_create(topic, 1);   /* both topics, as the operator creates them */
    tk_topic_create(dlq, 1);
    rd_kafka_t *p = tk_producer();
    char *good0 = event_json(0, "tests", 0), *cgpa = event_json(1, "tests", 1), *other = event_json(3, "elsewhere", 0);
    char *good4 = event_json(4, "tests", 0);
    const char *bodies[] = {good0, cgpa, "not json", other, good4};
    for (int i = 0; i < 5; i++)
        tk_produce(p, topic, i == 1 ? "key-1" : "k", bodies[i], strlen(bodies[i]));
    tk_flush(p);

    tk_proc c;
    start_consumer(&c, tk_free_port());
    wait_pending(2, 60, &c);

    /* list: the three dead letters, in order, once all are there */
    snprintf(args, sizeof args, "list --kafka-bootstrap %s --topic %s", bs, dlq);
    double deadline = tk_now() + 60;
    int rc = dlq_tool(&out, args);
    while (tk_now() < deadline && (rc != 0 || count_lines(out) < 3)) {
        usleep(300 * 1000);
        free(out);
        rc = dlq_tool(&out, args);
    }
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_geq(count_lines(out), 3, "three dead letters:\n%s", out);
    /* The three in order; dead letters are at least once (a consumer that lost its
     * partition before committing, e.g. when the shared broker restarts, writes them
     * again), so any further line repeats one of them. */
    const char *starts[] = {"0:0\tunknown_field\tid-0000001\t", "0:1\tnot_json\t-\t", "0:2\twrong_source\tid-0000003\t"};
    const char *sources[] = {"/0@1\tunknown field 'cgpa' for form generation 1", "/0@2\tevent is not a JSON object",
                             "/0@3\tsource /forms/elsewhere/"};
    int unknown = 0, n = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        int which = -1;
        for (int i = 0; i < 3 && which < 0; i++) {
            char src[300];
            snprintf(src, sizeof src, "\t%s%s", topic, sources[i]);
            if (strstr(line, src))
                which = i;
        }
        cr_assert_geq(which, 0, "line %d: '%s' is none of the three dead letters", n, line);
        if (n < 3) {
            cr_assert_eq(which, n, "line %d: '%s' out of order", n, line);
            cr_assert(strncmp(line, starts[n], strlen(starts[n])) == 0, "line %d: '%s' does not start '%s'", n, line, starts[n]);
            cr_assert_not_null(strstr(line, "\t2"), "line %d has the time dead-lettered: %s", n, line);
        }
        unknown += which == 0;
    }
    free(out);
    /* show: headers and the payload of one */
    snprintf(args, sizeof args, "show --kafka-bootstrap %s --topic %s --offset 0", bs, dlq);
    cr_assert_eq(dlq_tool(&out, args), 0, "%s", out);
    const char *shown[] = {"offset: 0\n", "key: key-1\n", "header formpipe-dlq-reason: unknown_field\n",
                           "header formpipe-dlq-message: unknown field 'cgpa' for form generation 1\n",
                           "header formpipe-dlq-form-generation: 1\n", "header formpipe-source-offset: 1\n",
                           "header formpipe-source-partition: 0\n", "header formpipe-dlq-time: 20", "\"cgpa\":9.5"};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        cr_assert_not_null(strstr(out, shown[i]), "show lacks '%s':\n%s", shown[i], out);
    free(out);
    snprintf(args, sizeof args, "show --kafka-bootstrap %s --topic %s --offset 0:99", bs, dlq);
    cr_assert_eq(dlq_tool(&out, args), 1);
    assert_one_line(out, "offset 99 is not in");
    free(out);

    /* redrive --dry-run publishes nothing */
    snprintf(args, sizeof args, "redrive --kafka-bootstrap %s --topic %s --to %s --reason unknown_field --dry-run", bs, dlq, topic);
    cr_assert_eq(dlq_tool(&out, args), 0, "%s", out);
    char total[300];
    total_line(total, sizeof total, 1, unknown);
    cr_assert_not_null(strstr(out, "would redrive 0:0 -> "), "%s", out);
    cr_assert_not_null(strstr(out, total), "'%s' lacks '%s'", out, total);
    cr_assert_null(strstr(out, "0:1 "), "only unknown_field ones: %s", out);
    free(out);

    /* The form gets the field; the consumer restarts with it; the dead letter is re-driven. */
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    write_form(2);
    int port = tk_free_port();
    start_consumer(&c, port);
    sleep(2);
    cr_assert_eq(pending(), 2, "the dry run published nothing");
    snprintf(args, sizeof args, "redrive --kafka-bootstrap %s --topic %s --to %s --reason unknown_field", bs, dlq, topic);
    cr_assert_eq(dlq_tool(&out, args), 0, "%s", out);
    cr_assert_not_null(strstr(out, "redriven 0:0 -> "), "%s", out);
    cr_assert_not_null(strstr(out, "(id id-0000001)"), "%s", out);
    total_line(total, sizeof total, 0, unknown);
    cr_assert_not_null(strstr(out, total), "'%s' lacks '%s'", out, total);
    free(out);
    wait_pending(3, 60, &c);
    cJSON *ids = cJSON_CreateStringArray((const char *[]){"id-0000001"}, 1);
    fp_rowstore_rowset rows;
    fp_error err = {0};
    cr_assert_eq(fp_rowstore_rows(buffer, ids, &rows, &err), 0, "%s", err.msg);
    cr_assert_eq(rows.n, 1);
    cJSON *row = cJSON_ParseWithLength(rows.rows[0], rows.lens[0]);
    cr_assert_eq(cJSON_GetArraySize(row), 5, "id, time, name, roll, cgpa");
    cr_assert_eq(cJSON_GetArrayItem(row, 4)->valuedouble, 9.5, "the re-driven event's cgpa is in its column");
    cJSON_Delete(row);
    fp_rowstore_rowset_clear(&rows);
    cJSON_Delete(ids);

    /* Re-driving again (by offset this time) stores nothing twice: the consumer reads
     * it and counts a duplicate. */
    double dups = metric(port, "formpipe_consumer_duplicates_total");
    snprintf(args, sizeof args, "redrive --kafka-bootstrap %s --topic %s --to %s --offset 0:0", bs, dlq, topic);
    cr_assert_eq(dlq_tool(&out, args), 0, "%s", out);
    total_line(total, sizeof total, 0, 1);
    cr_assert_not_null(strstr(out, total), "'%s' lacks '%s'", out, total);
    free(out);
    deadline = tk_now() + 60;
    while (tk_now() < deadline && metric(port, "formpipe_consumer_duplicates_total") < dups + 1)
        usleep(200 * 1000);
    cr_assert_geq(metric(port, "formpipe_consumer_duplicates_total"), dups + 1, "the repeat was read");
    cr_assert_eq(pending(), 3, "a repeated re-drive is stored once");
    cr_assert_eq(tk_stop(&c, SIGTERM, 20), 0);
    free(good0);
    free(cgpa);
    free(other);
    free(good4);
    rd_kafka_destroy(p);
}

struct failure { const char *args; int status; const char *line; };

/* %1$s: bootstrap, %2$s: the dead-letter topic. */
static struct failure failures[] = {
    {"list --kafka-bootstrap %1$s --topic no.such.topic.dlq", 1, "topic no.such.topic.dlq does not exist"},
    {"redrive --kafka-bootstrap %1$s --topic %2$s --to no.such.topic", 1, "topic no.such.topic does not exist"},
    {"list --kafka-bootstrap 127.0.0.1:1 --topic %2$s --timeout 2s", 1, "kafka at 127.0.0.1:1"},
    {"list --kafka-bootstrap %1$s --topic %2$s --max 0", 2, "--max"},
    {"list --kafka-bootstrap %1$s --topic %2$s --frobnicate", 2, "--frobnicate"},
    {"redrive --kafka-bootstrap %1$s --topic %2$s", 2, "--to is required"},
    {"redrive --kafka-bootstrap %1$s --topic %2$s --to x --reason nope", 2, "reason 'nope' is not one of"},
    {"show --kafka-bootstrap %1$s --topic %2$s", 2, "exactly one --offset"},
    {"frob --topic %2$s", 2, "unknown command 'frob'"},
};

ParameterizedTestParameters(dlq, failures_are_one_readable_line)
{
    return cr_make_param_array(struct failure, failures, sizeof failures / sizeof failures[0]);
}

ParameterizedTest(struct failure *f, dlq, failures_are_one_readable_line)
{
    char args[512], *out = NULL;
    tk_topic_create(dlq, 1);
    snprintf(args, sizeof args, f->args, tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), dlq);
    cr_assert_eq(dlq_tool(&out, args), f->status, "%s: %s", args, out);
    assert_one_line(out, f->line);
    free(out);
}
