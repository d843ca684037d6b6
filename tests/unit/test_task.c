/* Unit tests for operator/task, taskstatus and taskdeploy: reading a FormTask, where it
 * reads and writes, the source check, its conditions, and its Deployment's shape. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "taskdeploy.h"
#include "taskstatus.h"

static const op_defaults defaults = {
    .kafka_bootstrap = "kafka:9092", .kafka_config = {"kafka-client", "client.properties"}, .replication_factor = 3,
    .redis_sentinels = "s:1", .redis_master = "m", .google_credentials = {"google-sa", "key.json"},
    .image_pull_policy = "IfNotPresent", .log_level = "info", .image_task = "formpipe/formpipe-task:0.1.0",
};

static op_task *task(const char *spec)
{
    char json[2048];
    snprintf(json, sizeof json, "{\"metadata\":{\"name\":\"confirm\",\"namespace\":\"ns\",\"uid\":\"tu\",\"generation\":3},"
             "\"spec\":%s}", spec);
    cJSON *j = cJSON_Parse(json);
    cr_assert_not_null(j, "%s", json);
    fp_error err = {0};
    op_task *t = op_task_parse(j, &err);
    cJSON_Delete(j);
    return t;
}

static const char *pipeline_extra = "";   /* more of the pipeline's spec (a test sets it) */

static op_pipeline *pipeline(void)
{
    char json[1024];
    snprintf(json, sizeof json, "{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"pu\",\"generation\":2},"
             "\"spec\":{\"form\":{\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]},"
             "\"sheets\":{\"spreadsheetId\":\"S\"}%s}}", pipeline_extra);
    cJSON *j = cJSON_Parse(json);
    cr_assert_not_null(j, "%s", json);
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cJSON_Delete(j);
    return p;
}

struct parse_case { const char *spec; int ok; int kind; int max_attempts, min_replicas; long long lag_per_replica; };

static struct parse_case parses[] = {
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h.example.com/x\"}}", 1, OP_TASK_WEBHOOK, 10, 1, 1000},
    {"{\"pipeline\":\"p\",\"container\":{\"image\":\"team/x:1\"},\"maxAttempts\":3,"
     "\"scaling\":{\"minReplicas\":0,\"lagPerReplica\":0}}", 1, OP_TASK_CONTAINER, 3, 0, 0},
    {"{\"pipeline\":\"p\",\"email\":{\"smtpSecretRef\":{\"name\":\"smtp\"},\"from\":\"F <f@example.org>\","
     "\"toField\":\"email\",\"subject\":\"Hi {{name}}\",\"text\":\"T\"}}", 1, OP_TASK_EMAIL, 10, 1, 1000},
    {"{\"pipeline\":\"p\",\"email\":{\"smtpSecretRef\":{\"name\":\"smtp\"},\"from\":\"f@example.org\","
     "\"toField\":\"email\",\"subject\":\"Hi\"}}", 0, 0, 0, 0, 0},                                   /* no text */
    {"{\"pipeline\":\"p\",\"email\":{\"from\":\"f@example.org\",\"toField\":\"e\",\"subject\":\"S\",\"text\":\"T\"}}",
     0, 0, 0, 0, 0},                                                                            /* no Secret */
    {"{\"pipeline\":\"p\",\"email\":{\"smtpSecretRef\":{\"name\":\"s\"},\"from\":\"f@example.org\",\"toField\":\"e\","
     "\"subject\":\"S\\r\\nBcc: x@y\",\"text\":\"T\"}}", 0, 0, 0, 0, 0},                               /* a line break */
    {"{\"pipeline\":\"p\",\"email\":{\"smtpSecretRef\":{\"name\":\"s\"},\"from\":\"f@example.org\",\"toField\":\"e\","
     "\"subject\":\"S\",\"text\":\"T\"},\"webhook\":{\"url\":\"https://h/\"}}", 0, 0, 0, 0, 0},            /* two kinds */
    {"{\"pipeline\":\"p\"}", 0, 0, 0, 0, 0},                                                       /* no kind */
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h/\"},\"container\":{\"image\":\"x\"}}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"ftp://h/\"}}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"http://hooks.team.svc:8080/x\"}}", 0, 0, 0, 0, 0},   /* clear text */
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"http://hooks.team.svc:8080/x\",\"allowInsecureHTTP\":true}}", 1,
     OP_TASK_WEBHOOK, 10, 1, 1000},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"http://127.0.0.1:8080/x\"}}", 1, OP_TASK_WEBHOOK, 10, 1, 1000},
    {"{\"pipeline\":\"P_bad\",\"webhook\":{\"url\":\"https://h/\"}}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h/\"},\"maxAttempts\":101}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"source\":{\"task\":\"confirm\"},\"webhook\":{\"url\":\"https://h/\"}}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"container\":{\"image\":\"x\",\"env\":[{\"name\":\"FORMPIPE_TOPIC\",\"value\":\"y\"}]}}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"moderate\":{\"wordsConfigMap\":{\"name\":\"words.v1\"}}}", 1, OP_TASK_MODERATE, 10, 1, 1000},
    {"{\"pipeline\":\"p\",\"moderate\":{\"fields\":[\"c\"],\"wordsConfigMap\":{\"name\":\"w\",\"key\":\"l.txt\"},"
     "\"threshold\":2},\"filter\":[{\"path\":\"data.c\",\"equals\":\"x\"}]}", 1, OP_TASK_MODERATE, 10, 1, 1000},
    {"{\"pipeline\":\"p\",\"moderate\":{}}", 0, 0, 0, 0, 0},                                           /* no word list */
    {"{\"pipeline\":\"p\",\"moderate\":{\"wordsConfigMap\":{\"name\":\"W\"}}}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"moderate\":{\"wordsConfigMap\":{\"name\":\"w\",\"key\":\"a/b\"}}}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"moderate\":{\"wordsConfigMap\":{\"name\":\"w\"},\"fields\":[3]}}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"moderate\":{\"wordsConfigMap\":{\"name\":\"w\"},\"threshold\":0}}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h/\"},\"filter\":[{\"path\":\"moderation.flagged\",\"equals\":true}]}",
     1, OP_TASK_WEBHOOK, 10, 1, 1000},
    {"{\"pipeline\":\"p\",\"container\":{\"image\":\"x\"},\"filter\":[{\"path\":\"a\",\"equals\":1}]}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h/\"},\"filter\":[{\"path\":\"a..b\",\"equals\":1}]}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h/\"},\"filter\":[{\"path\":\"a\",\"equals\":{\"x\":1}}]}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h/\"},\"filter\":[{\"path\":\"a=b\",\"equals\":1}]}", 0, 0, 0, 0, 0},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h/\"},\"filter\":[{\"path\":\"a\"}]}", 0, 0, 0, 0, 0},
};

ParameterizedTestParameters(task, parse)
{
    return cr_make_param_array(struct parse_case, parses, sizeof parses / sizeof parses[0]);
}

ParameterizedTest(struct parse_case *c, task, parse)
{
    op_task *t = task(c->spec);
    cr_assert_eq(t != NULL, c->ok, "%s", c->spec);
    if (t) {
        cr_assert_eq(t->kind, (op_task_kind)c->kind);
        cr_assert_eq(t->max_attempts, c->max_attempts);
        cr_assert_eq(t->min_replicas, c->min_replicas);
        cr_assert_eq(t->lag_per_replica, c->lag_per_replica);
    }
    op_task_free(t);
}

Test(task, route_names_and_the_source_check)
{
    op_pipeline *p = pipeline();
    op_task *t = task("{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h/\"}}");
    op_task_route r;
    fp_error err = {0};
    cr_assert_eq(op_task_route_of(t, p, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.topic, "forms.ns.p");
    cr_assert_str_eq(r.group, "formpipe.ns.p.confirm");
    cr_assert_str_eq(r.dlq_topic, "forms.ns.p.confirm.dlq");
    cr_assert_eq(op_task_check_source(t, NULL), OP_SOURCE_OK, "no source: the pipeline's topic");
    op_task *reader = task("{\"pipeline\":\"p\",\"source\":{\"task\":\"other\"},\"webhook\":{\"url\":\"https://h/\"}}");
    cr_assert_eq(op_task_route_of(reader, p, &r, &err), 0);
    cr_assert_str_eq(r.topic, "forms.ns.p.other", "reads the source's stream");
    cr_assert_eq(op_task_check_source(reader, NULL), OP_SOURCE_NOT_FOUND);
    cr_assert_eq(op_task_check_source(reader, t), OP_SOURCE_NO_STREAM, "a webhook writes no stream");
    op_task *mod = task("{\"pipeline\":\"p\",\"moderate\":{\"wordsConfigMap\":{\"name\":\"w\"}}}");
    cr_assert_eq(op_task_check_source(reader, mod), OP_SOURCE_OK, "a moderate task writes a stream");
    cr_assert_eq(op_task_route_of(mod, p, &r, &err), 0);
    cr_assert_str_eq(r.stream_topic, "forms.ns.p.confirm", "its stream is <topic>.<task>");
    cr_assert_eq(op_task_route_of(t, p, &r, &err), 0);
    cr_assert_str_eq(r.stream_topic, "", "a webhook writes none");
    op_task_free(mod);
    op_task *other = task("{\"pipeline\":\"q\",\"webhook\":{\"url\":\"https://h/\"}}");
    cr_assert_eq(op_task_check_source(reader, other), OP_SOURCE_NOT_FOUND, "another pipeline's task");
    op_task_free(other);
    op_task_free(reader);
    op_task_free(t);
    op_pipeline_free(p);
}

enum { UNMEASURED, MOVING, STALLED };

struct cond_case {
    const char *what;
    op_task_block block;
    const char *conflict;
    int available, stall, dlq_recreated;
    int ready;
    const char *ready_reason;
    int progressing;
    const char *progressing_reason;
};

static struct cond_case conds[] = {
    {"running", OP_BLOCK_NONE, "", 1, MOVING, 0, 1, "Running", 1, "Progressing"},
    {"not measured yet holds nothing back", OP_BLOCK_NONE, "", 1, UNMEASURED, 0, 1, "Running", -1, "NotMeasured"},
    {"pipeline missing", OP_BLOCK_PIPELINE_NOT_FOUND, "", 0, UNMEASURED, 0, 0, "PipelineNotFound", -1, "PipelineNotFound"},
    {"pipeline unreadable", OP_BLOCK_PIPELINE_INVALID, "", 0, UNMEASURED, 0, 0, "PipelineInvalid", -1, "PipelineInvalid"},
    {"source missing", OP_BLOCK_SOURCE_NOT_FOUND, "", 0, UNMEASURED, 0, 0, "SourceTaskNotFound", -1, "SourceTaskNotFound"},
    {"source writes nothing", OP_BLOCK_SOURCE_NO_STREAM, "", 0, UNMEASURED, 0, 0, "SourceTaskHasNoStream", -1,
     "SourceTaskHasNoStream"},
    {"topic not there yet", OP_BLOCK_TOPIC_MISSING, "", 0, UNMEASURED, 0, 0, "TopicMissing", -1, "TopicMissing"},
    {"replicas starting", OP_BLOCK_NONE, "", 0, MOVING, 0, 0, "Deploying", 1, "Progressing"},
    {"stalled", OP_BLOCK_NONE, "", 1, STALLED, 0, 0, "NoProgress", 0, "NoProgress"},
    {"dead-letter topic recreated", OP_BLOCK_NONE, "", 1, MOVING, 1, 0, "DeadLetterTopicMissing", 0,
     "DeadLetterTopicMissing"},
    {"a foreign Deployment wins over progress", OP_BLOCK_NONE, "Deployment confirm-task exists", 1, STALLED, 0, 0,
     "OwnershipConflict", 0, "NoProgress"},
};

ParameterizedTestParameters(taskstatus, conditions)
{
    return cr_make_param_array(struct cond_case, conds, sizeof conds / sizeof conds[0]);
}

ParameterizedTest(struct cond_case *c, taskstatus, conditions)
{
    op_task *t = task("{\"pipeline\":\"p\",\"source\":{\"task\":\"m\"},\"webhook\":{\"url\":\"https://h/\"}}");
    op_stall stall = {.stalled = c->stall == STALLED, .first = c->stall == STALLED ? 1 : -1, .lag = 7,
                      .stalled_ms = 400000};
    op_task_observed o = {.block = c->block, .topic = "t", .group = "g", .dlq_topic = "t.confirm.dlq", .partitions = 3,
                          .dlq_recreated = c->dlq_recreated, .conflict = c->conflict, .replicas = 2,
                          .ready_replicas = c->available ? 2 : 1, .available = c->available,
                          .stall = c->stall == UNMEASURED ? NULL : &stall, .committed = 12, .dead_lettered = 2};
    op_condition cond[OP_TC_COUNT];
    cJSON *st = op_taskstatus_build(t, &o, NULL, "2026-12-02T00:00:00Z", cond);
    cr_assert_not_null(st);
    cr_assert_eq(cond[OP_TC_READY].status, c->ready, "%s: Ready %d", c->what, cond[OP_TC_READY].status);
    cr_assert_str_eq(cond[OP_TC_READY].reason, c->ready_reason, "%s", c->what);
    cr_assert_eq(cond[OP_TC_PROGRESSING].status, c->progressing, "%s", c->what);
    cr_assert_str_eq(cond[OP_TC_PROGRESSING].reason, c->progressing_reason, "%s", c->what);
    cr_assert_eq(cJSON_GetObjectItem(st, "delivered")->valueint, 10, "committed 12 - dead-lettered 2");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(st, "kind")), "webhook");
    cJSON_Delete(st);
    op_task_free(t);
}

/* The pod's container, its args joined by spaces and its env as NAME=value lines. */
static void shape(const char *spec, char *args, size_t argsz, char *env, size_t envsz, cJSON **out)
{
    op_pipeline *p = pipeline();
    op_task *t = task(spec);
    cr_assert_not_null(t, "%s", spec);
    op_task_route r;
    fp_error err = {0};
    cr_assert_eq(op_task_route_of(t, p, &r, &err), 0);
    cJSON *d = op_taskdeploy_build(t, p, &r, &defaults, defaults.image_task, 2);
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(
                                                                    d, "spec"), "template"), "spec"), "containers"), 0), *it;
    args[0] = env[0] = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(c, "args"))
        snprintf(args + strlen(args), argsz - strlen(args), "%s%s", args[0] ? " " : "", it->valuestring);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(c, "env"))
        snprintf(env + strlen(env), envsz - strlen(env), "%s=%s\n", cJSON_GetStringValue(cJSON_GetObjectItem(it, "name")),
                 cJSON_GetStringValue(cJSON_GetObjectItem(it, "value")));
    *out = d;
    op_task_free(t);
    op_pipeline_free(p);
}

Test(taskdeploy, webhook_runs_formpipe_task_with_the_contracts_command_line)
{
    char args[4096], env[4096];
    cJSON *d;
    shape("{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h.example.com/x\",\"secretRef\":{\"name\":\"hook\","
          "\"key\":\"hmac\"},\"timeoutSeconds\":5,\"contentMode\":\"binary\",\"concurrency\":8},\"maxAttempts\":4,"
          "\"backoff\":{\"initialMilliseconds\":200,\"maxSeconds\":30}}",
          args, sizeof args, env, sizeof env, &d);
    cr_assert_str_eq(args, "--kind=webhook --topic=forms.ns.p --group=formpipe.ns.p.confirm "
                     "--dlq-topic=forms.ns.p.confirm.dlq --max-attempts=4 --concurrency=8 --backoff-initial=200ms "
                     "--backoff-max=30s --admin-port=9090 "
                     "--webhook-url=https://h.example.com/x --webhook-timeout=5s --webhook-mode=binary "
                     "--webhook-secret-file=/etc/formpipe/webhook/hmac "
                     "--kafka-config=/etc/formpipe/kafka/client.properties");
    cr_assert_str_eq(env, "FORMPIPE_LOG_LEVEL=info\nFORMPIPE_KAFKA_BOOTSTRAP=kafka:9092\n");
    char *text = cJSON_PrintUnformatted(d);
    static const char *const want[] = {
        "\"name\":\"confirm-task\"", "\"app.kubernetes.io/component\":\"task\"", "\"formpipe.io/pipeline\":\"p\"",
        "\"formpipe.io/task\":\"confirm\"", "\"kind\":\"FormTask\",\"name\":\"confirm\",\"uid\":\"tu\",\"controller\":true",
        "\"image\":\"formpipe/formpipe-task:0.1.0\"", "\"readOnlyRootFilesystem\":true", "\"runAsNonRoot\":true",
        "\"secretName\":\"hook\"", "\"secretName\":\"kafka-client\"", "\"replicas\":2", "\"path\":\"/readyz\"",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(text, want[i]), "missing %s in %s", want[i], text);
    free(text);
    cJSON_Delete(d);
}

Test(taskdeploy, email_mounts_its_smtp_secret_and_gets_the_pipelines_redis)
{
    char args[8192], env[4096];
    cJSON *d;
    shape("{\"pipeline\":\"p\",\"email\":{\"smtpSecretRef\":{\"name\":\"smtp\"},\"from\":\"Forms <f@example.org>\","
          "\"toField\":\"email\",\"subject\":\"Thanks {{name}}\",\"text\":\"Hello {{name}}\",\"html\":\"<p>{{name}}</p>\","
          "\"ratePerSecond\":5,\"sentRecordTTLHours\":24}}", args, sizeof args, env, sizeof env, &d);
    cr_assert_str_eq(args, "--kind=email --topic=forms.ns.p --group=formpipe.ns.p.confirm --dlq-topic=forms.ns.p.confirm.dlq "
                     "--max-attempts=10 --concurrency=32 --backoff-initial=1000ms --backoff-max=300s --admin-port=9090 "
                     "--email-smtp-dir=/etc/formpipe/smtp --email-pipeline=ns/p --email-task=confirm "
                     "--email-from=Forms <f@example.org> --email-to-field=email --email-subject=Thanks {{name}} "
                     "--email-text=Hello {{name}} --email-html=<p>{{name}}</p> --email-rate=5 --email-timeout=30s "
                     "--email-max-connections=4 --email-sent-ttl=24h --redis-sentinels=s:1 --redis-master=m "
                     "--min-replicas-ack=0 --kafka-config=/etc/formpipe/kafka/client.properties");
    char *text = cJSON_PrintUnformatted(d);
    static const char *const want[] = {
        "{\"name\":\"smtp\",\"secret\":{\"secretName\":\"smtp\",\"defaultMode\":288}}",
        "{\"name\":\"smtp\",\"mountPath\":\"/etc/formpipe/smtp\",\"readOnly\":true}",
        "\"terminationGracePeriodSeconds\":45",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(text, want[i]), "missing %s in %s", want[i], text);
    free(text);
    cJSON_Delete(d);
}

Test(taskdeploy, container_gets_the_task_facts_in_its_environment)
{
    char args[4096], env[4096];
    cJSON *d;
    shape("{\"pipeline\":\"p\",\"container\":{\"image\":\"team/x:1\",\"args\":[\"--fast\"],"
          "\"env\":[{\"name\":\"MODE\",\"value\":\"strict\"}]}}", args, sizeof args, env, sizeof env, &d);
    cr_assert_str_eq(args, "--fast");
    cr_assert_str_eq(env, "FORMPIPE_LOG_LEVEL=info\nFORMPIPE_TOPIC=forms.ns.p\nFORMPIPE_GROUP=formpipe.ns.p.confirm\n"
                     "FORMPIPE_DLQ_TOPIC=forms.ns.p.confirm.dlq\nFORMPIPE_PIPELINE=p\nFORMPIPE_TASK=confirm\n"
                     "FORMPIPE_MAX_ATTEMPTS=10\nFORMPIPE_KAFKA_BOOTSTRAP=kafka:9092\n"
                     "FORMPIPE_KAFKA_CONFIG=/etc/formpipe/kafka/client.properties\nMODE=strict\n");
    char *text = cJSON_PrintUnformatted(d);
    cr_assert_not_null(strstr(text, "\"image\":\"team/x:1\""), "%s", text);
    cr_assert_not_null(strstr(text, "\"mountPath\":\"/tmp\""), "a writable /tmp: %s", text);
    cr_assert_null(strstr(text, "readinessProbe"), "no probes on a port we do not know: %s", text);
    free(text);
    cJSON_Delete(d);
}

/* #16: the pipeline's Kafka CA reaches every kind: our binaries as ssl.ca.location, a
 * team's container as FORMPIPE_KAFKA_CA_FILE, the Secret mounted read-only. */
Test(taskdeploy, the_pipelines_kafka_ca_is_mounted_and_named)
{
    pipeline_extra = ",\"kafka\":{\"caSecret\":{\"name\":\"cluster-ca\"}}";
    static const char *specs[] = {
        "{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h.example.com/x\"}}",
        "{\"pipeline\":\"p\",\"container\":{\"image\":\"team/x:1\"}}",
    };
    for (size_t i = 0; i < 2; i++) {
        char args[4096], env[4096];
        cJSON *d;
        shape(specs[i], args, sizeof args, env, sizeof env, &d);
        const char *where = i ? env : args;
        const char *want = i ? "FORMPIPE_KAFKA_CA_FILE=/etc/formpipe/kafka-ca/ca.crt\n"
                             : "--kafka-property=ssl.ca.location=/etc/formpipe/kafka-ca/ca.crt";
        cr_assert_not_null(strstr(where, want), "%s: %s", specs[i], where);
        char *text = cJSON_PrintUnformatted(d);
        cr_assert_not_null(strstr(text, "\"secretName\":\"cluster-ca\""), "%s", text);
        cr_assert_not_null(strstr(text, "{\"key\":\"ca.crt\",\"path\":\"ca.crt\"}"), "%s", text);
        cr_assert_not_null(strstr(text, "\"mountPath\":\"/etc/formpipe/kafka-ca\""), "%s", text);
        free(text);
        cJSON_Delete(d);
    }
}

/* #16: spec.redis.tls reaches the pods that use Redis: CA and client certificate mounted,
 * their paths on the command line. */
Test(taskdeploy, the_pipelines_redis_tls_is_mounted_and_named)
{
    pipeline_extra = ",\"redis\":{\"tls\":{\"caSecret\":{\"name\":\"redis-ca\"},\"clientSecret\":{\"name\":\"me\"}}}";
    char args[8192], env[4096];
    cJSON *d;
    shape("{\"pipeline\":\"p\",\"email\":{\"smtpSecretRef\":{\"name\":\"smtp\"},\"from\":\"f@example.org\","
          "\"toField\":\"email\",\"subject\":\"S\",\"text\":\"T\"}}", args, sizeof args, env, sizeof env, &d);
    cr_assert_not_null(strstr(args, "--redis-tls-ca-file=/etc/formpipe/redis-ca/ca.crt "
                                    "--redis-tls-cert-file=/etc/formpipe/redis-client/tls.crt "
                                    "--redis-tls-key-file=/etc/formpipe/redis-client/tls.key"), "%s", args);
    char *text = cJSON_PrintUnformatted(d);
    static const char *const want[] = {
        "\"secretName\":\"redis-ca\",\"defaultMode\":288,\"items\":[{\"key\":\"ca.crt\",\"path\":\"ca.crt\"}]",
        "\"secretName\":\"me\",\"defaultMode\":288,\"items\":[{\"key\":\"tls.crt\",\"path\":\"tls.crt\"},"
        "{\"key\":\"tls.key\",\"path\":\"tls.key\"}]",
        "{\"name\":\"redis-client\",\"mountPath\":\"/etc/formpipe/redis-client\",\"readOnly\":true}",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(text, want[i]), "missing %s in %s", want[i], text);
    free(text);
    cJSON_Delete(d);
}

Test(taskdeploy, moderate_mounts_its_configmap_and_writes_its_stream)
{
    char args[4096], env[4096];
    cJSON *d;
    shape("{\"pipeline\":\"p\",\"moderate\":{\"fields\":[\"comments\",\"name\"],\"wordsConfigMap\":{\"name\":\"words\","
          "\"key\":\"list.txt\"},\"threshold\":2},\"filter\":[{\"path\":\"data.lang\",\"equals\":\"en\"}]}",
          args, sizeof args, env, sizeof env, &d);
    cr_assert_str_eq(args, "--kind=moderate --topic=forms.ns.p --group=formpipe.ns.p.confirm "
                     "--dlq-topic=forms.ns.p.confirm.dlq --output-topic=forms.ns.p.confirm --admin-port=9090 "
                     "--moderate-words-file=/etc/formpipe/words/list.txt --moderate-threshold=2 "
                     "--moderate-field=comments --moderate-field=name --filter=data.lang=\"en\" "
                     "--kafka-config=/etc/formpipe/kafka/client.properties");
    char *text = cJSON_PrintUnformatted(d);
    cr_assert_not_null(strstr(text, "{\"name\":\"FORMPIPE_POD_NAME\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}}"),
                       "each replica's transactional.id comes from its pod's name: %s", text);
    cr_assert_not_null(strstr(text, "\"configMap\":{\"name\":\"words\"}"), "the whole ConfigMap (no items, no subPath): %s", text);
    cr_assert_not_null(strstr(text, "\"mountPath\":\"/etc/formpipe/words\",\"readOnly\":true"), "%s", text);
    cr_assert_null(strstr(text, "subPath"), "%s", text);
    free(text);
    cJSON_Delete(d);
}

Test(taskdeploy, a_webhook_allowed_plain_http_says_so_to_formpipe_task)
{
    char args[4096], env[4096];
    cJSON *d;
    shape("{\"pipeline\":\"p\",\"webhook\":{\"url\":\"http://hooks.team.svc/x\",\"allowInsecureHTTP\":true}}",
          args, sizeof args, env, sizeof env, &d);
    cr_assert_not_null(strstr(args, " --webhook-allow-http"), "%s", args);
    cJSON_Delete(d);
    shape("{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://hooks.example.com/x\"}}", args, sizeof args, env,
          sizeof env, &d);
    cr_assert_null(strstr(args, "allow-http"), "%s", args);
    cJSON_Delete(d);
}

Test(taskdeploy, webhook_passes_its_filter)
{
    char args[4096], env[4096];
    cJSON *d;
    shape("{\"pipeline\":\"p\",\"source\":{\"task\":\"mod\"},\"webhook\":{\"url\":\"https://h/\"},"
          "\"filter\":[{\"path\":\"moderation.flagged\",\"equals\":true},{\"path\":\"data.n\",\"equals\":null}]}",
          args, sizeof args, env, sizeof env, &d);
    cr_assert_not_null(strstr(args, " --filter=moderation.flagged=true --filter=data.n=null "), "%s", args);
    cr_assert_not_null(strstr(args, "--topic=forms.ns.p.mod "), "%s", args);
    cJSON_Delete(d);
}
