/* Unit tests for operator/pipeline and operator/children: defaults, refused specs with
 * the field and rule named, and what every child carries (labels, owner, security,
 * secrets by reference only). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "children.h"
#include "pipeline.h"
#include "status.h"

static const op_defaults defaults = {
    .kafka_bootstrap = "kafka:9092", .replication_factor = 3,
    .redis_sentinels = "s1:26379,s2:26379", .redis_master = "formpipe", .redis_min_replicas_ack = 1,
    .redis_password = {"redis-auth", "password"}, .google_credentials = {"google-sa", "key.json"},
    .sheets_api_url = "", .image_ingest = "img/ingest:1", .image_consumer = "img/consumer:1",
    .image_flush = "img/flush:1", .image_pull_policy = "IfNotPresent", .log_level = "info",
};

#define FORM "\"form\":{\"fields\":[{\"name\":\"name\",\"type\":\"string\",\"required\":true},{\"name\":\"roll\",\"type\":\"string\"}]}"
#define META "\"metadata\":{\"name\":\"student-data\",\"namespace\":\"forms\",\"uid\":\"u-1\",\"generation\":4}"

static cJSON *resource(const char *spec_tail)
{
    char text[4096];
    snprintf(text, sizeof text, "{\"apiVersion\":\"formpipe.io/v1alpha1\",\"kind\":\"FormPipeline\"," META
             ",\"spec\":{" FORM ",\"sheets\":{\"spreadsheetId\":\"S1\"}%s}}", spec_tail);
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "bad test JSON: %s", text);
    return j;
}

Test(pipeline, defaults_from_design_and_operator)
{
    cJSON *j = resource("");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_str_eq(p->topic, "forms.forms.student-data");
    cr_assert_eq(p->partitions, 3);
    cr_assert_eq(p->replication_factor, 3);
    cr_assert_eq(p->ingest_replicas, 2);
    cr_assert_eq(p->max_body_bytes, 65536);
    cr_assert_eq(p->consumer_min, 1);
    cr_assert_eq(p->lag_per_replica, 0);
    cr_assert_eq(p->stabilization_s, 300);
    cr_assert_str_eq(p->sheet, "Responses");
    cr_assert_str_eq(p->schedule, "*/1 * * * *");
    cr_assert_eq(p->batch_rows, 5000);
    cr_assert_str_eq(p->google_credentials.name, "google-sa");
    cr_assert_str_eq(p->redis_password.name, "redis-auth");
    cr_assert_str_eq(p->kafka_bootstrap, "kafka:9092");
    cr_assert_null(p->kafka_config.name);
    cr_assert_eq(p->delete_topic, 0);
    cJSON *compiled = cJSON_Parse(p->compiled_form);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(compiled, "name")->valuestring, "student-data");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(compiled, "namespace")->valuestring, "forms");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(compiled, "generation")->valuedouble, 4);
    cr_assert_eq(strlen(p->form_hash), 16);
    cJSON_Delete(compiled);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

Test(pipeline, form_hash_follows_the_form_only)
{
    fp_error err = {0};
    cJSON *a = resource(""), *b = resource(",\"ingest\":{\"replicas\":5}");
    cJSON *c = resource("");
    cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "spec"), "form"), "unknownFields", "drop");
    op_pipeline *pa = op_pipeline_parse(a, &defaults, &err), *pb = op_pipeline_parse(b, &defaults, &err);
    op_pipeline *pc = op_pipeline_parse(c, &defaults, &err);
    cr_assert(pa && pb && pc, "%s", err.msg);
    cr_assert_str_eq(pa->form_hash, pb->form_hash, "a replica change must not roll the pods");
    cr_assert_str_neq(pa->form_hash, pc->form_hash, "a form change rolls the pods");
    op_pipeline_free(pa);
    op_pipeline_free(pb);
    op_pipeline_free(pc);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
}

struct bad_case { const char *tail, *error; };
static struct bad_case bad[] = {
    {",\"kafka\":{\"partitions\":0}", "spec.kafka.partitions: must be an integer from 1 to 1000"},
    {",\"kafka\":{\"partitions\":2.5}", "spec.kafka.partitions: must be an integer"},
    {",\"kafka\":{\"topic\":\"bad topic\"}", "spec.kafka.topic"},
    {",\"kafka\":{\"topic\":\"forms.other.student-data\"}", "spec.kafka.topic: must start with forms.forms."},
    {",\"kafka\":{\"topic\":\"orders\"}", "spec.kafka.topic: must start with forms.forms."},
    {",\"kafka\":{\"topic\":\"forms.formsx.a\"}", "spec.kafka.topic: must start with forms.forms."},
    {",\"kafka\":{\"topic\":\"forms.forms.\"}", "spec.kafka.topic: must start with forms.forms."},
    {",\"ingest\":{\"maxBodyBytes\":0}", "spec.ingest.maxBodyBytes"},
    {",\"ingest\":{\"maxConnections\":0}", "spec.ingest.maxConnections: must be an integer from 1 to 1000000"},
    {",\"ingest\":{\"maxHeaderBytes\":100}", "spec.ingest.maxHeaderBytes: must be an integer from 512 to 65535"},
    {",\"ingest\":{\"idleTimeoutSeconds\":0}", "spec.ingest.idleTimeoutSeconds: must be an integer from 1 to 3600"},
    {",\"ingest\":{\"trustedProxies\":[\"10.0.0.1/8\"]}", "spec.ingest.trustedProxies: trusted proxy 10.0.0.1/8: host bits are set after /8"},
    {",\"ingest\":{\"trustedProxies\":[\"ingress-nginx\"]}", "spec.ingest.trustedProxies: trusted proxy ingress-nginx: not an address or CIDR"},
    {",\"redis\":{\"minReplicasAck\":17}", "spec.redis.minReplicasAck: must be an integer from 0 to 16"},
    {",\"sheets\":{\"spreadsheetId\":\"\"}", "spec.sheets.spreadsheetId: required"},
    {",\"sheets\":{\"spreadsheetId\":\"S\",\"maxFailedRuns\":0}", "spec.sheets.maxFailedRuns: must be an integer from 1 to 10"},
    {",\"progressDeadlineSeconds\":5", "spec.progressDeadlineSeconds: must be an integer from 10 to 86400"},
    {",\"redis\":{\"tls\":{\"clientSecret\":{\"name\":\"me\"}}}", "spec.redis.tls.clientSecret: needs caSecret"},
    {",\"mode\":\"Shared\",\"kafka\":{\"caSecret\":{\"name\":\"ca\"}}", "spec.kafka.caSecret needs its own pods"},
    {",\"redis\":{\"sentinels\":\"\"},\"kafka\":{\"bootstrapServers\":\"\"}", NULL},   /* empty = default */
    /* pod settings, autoscaling, topic configs (#24) */
    {",\"ingest\":{\"pod\":{\"hostPID\":true}}", "spec.ingest.pod.hostPID: unknown pod setting"},
    {",\"consumer\":{\"pod\":{\"labels\":{\"app.kubernetes.io/name\":\"x\"}}}", "spec.consumer.pod.labels.app.kubernetes.io/name"},
    {",\"sheets\":{\"spreadsheetId\":\"S\",\"pod\":{\"tolerations\":{}}}", "spec.sheets.pod.tolerations: must be a list"},
    {",\"ingest\":{\"autoscaling\":{\"minReplicas\":2}}", "spec.ingest.autoscaling.maxReplicas: required"},
    {",\"ingest\":{\"autoscaling\":{\"minReplicas\":5,\"maxReplicas\":3,\"requestsPerSecond\":100}}", "minReplicas must not be above maxReplicas"},
    {",\"ingest\":{\"autoscaling\":{\"maxReplicas\":3}}", "set targetCPUUtilizationPercentage and/or requestsPerSecond"},
    {",\"ingest\":{\"autoscaling\":{\"maxReplicas\":3,\"targetCPUUtilizationPercentage\":70},\"pod\":{\"resources\":{\"requests\":{}}}}", NULL},
    {",\"kafka\":{\"config\":{\"cleanup.policy\":\"compact\"}}", "spec.kafka.config.cleanup.policy: not a topic config formpipe sets"},
    {",\"kafka\":{\"config\":{\"min.insync.replicas\":4}}", "spec.kafka.config.min.insync.replicas: 4 is above the replication factor 3"},
    {",\"kafka\":{\"replicationFactor\":1,\"deadLetterConfig\":{\"min.insync.replicas\":2}}", "spec.kafka.deadLetterConfig.min.insync.replicas"},
};

ParameterizedTestParameters(pipeline, refused_specs_name_field_and_rule)
{
    return cr_make_param_array(struct bad_case, bad, sizeof bad / sizeof bad[0]);
}

ParameterizedTest(struct bad_case *c, pipeline, refused_specs_name_field_and_rule)
{
    cJSON *j = resource(c->tail);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(j, "spec");
    /* a later duplicate key wins in the tail: move it over the first */
    cJSON *first = cJSON_GetObjectItemCaseSensitive(spec, "sheets"), *it;
    cJSON_ArrayForEach(it, spec)
        if (it != first && it->string && strcmp(it->string, "sheets") == 0)
            cJSON_ReplaceItemViaPointer(spec, first, cJSON_Duplicate(it, 1));
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    if (!c->error) {
        cr_assert_not_null(p, "%s", err.msg);
    } else {
        cr_assert_null(p);
        cr_assert_eq(err.code, FP_EINVAL);
        cr_assert_not_null(strstr(err.msg, c->error), "'%s' not in '%s'", c->error, err.msg);
    }
    op_pipeline_free(p);
    cJSON_Delete(j);
}

struct form_case { const char *form, *error; };
static struct form_case bad_forms[] = {
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\",\"pattern\":\"([\"}]}", "pattern does not compile"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"colour\"}]}", "type 'colour'"},
    {"{\"fields\":[{\"name\":\"a\",\"type\":\"string\"}],\"partitionKey\":\"b\"}", "partitionKey \"b\" is not a field"},
    {"{\"fields\":[]}", "fields"},
};

ParameterizedTestParameters(pipeline, bad_forms_are_refused_before_anything_changes)
{
    return cr_make_param_array(struct form_case, bad_forms, sizeof bad_forms / sizeof bad_forms[0]);
}

ParameterizedTest(struct form_case *c, pipeline, bad_forms_are_refused_before_anything_changes)
{
    cJSON *j = resource("");
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "spec"), "form", cJSON_Parse(c->form));
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_null(p);
    cr_assert_not_null(strstr(err.msg, "spec.form"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, c->error), "'%s' not in '%s'", c->error, err.msg);
    cJSON_Delete(j);
}

static const cJSON *at(const cJSON *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save, *tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save))
        o = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, atoi(tok)) : cJSON_GetObjectItemCaseSensitive(o, tok);
    return o;
}

static const char *sat(const cJSON *o, const char *path)
{
    return cJSON_GetStringValue(at(o, path));
}

Test(children, every_child_is_labelled_and_owned)
{
    cJSON *j = resource("");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    static const char *const names[] = {"student-data-form", "student-data-ingest", "student-data-ingest",
                                        "student-data-ingest", "student-data-consumer", "student-data-flush",
                                        "student-data-ingest", "student-data-consumer", "student-data-ingest"};
    cr_assert_eq(sizeof names / sizeof names[0], OP_CHILD_COUNT);
    for (int k = 0; k < OP_CHILD_COUNT; k++) {
        cJSON *c = op_child_build(p, &defaults, (op_child_kind)k, 3);
        cr_assert_not_null(c);
        cr_assert_str_eq(sat(c, "kind"), op_child_types[k].kind);
        cr_assert_str_eq(sat(c, "metadata.name"), names[k]);
        cr_assert_str_eq(sat(c, "metadata.namespace"), "forms");
        const cJSON *labels = at(c, "metadata.labels");
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, "app.kubernetes.io/managed-by")), "formpipe-operator");
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, "app.kubernetes.io/instance")), "student-data");
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, "app.kubernetes.io/part-of")), "formpipe");
        cr_assert_str_eq(sat(c, "metadata.ownerReferences.0.uid"), "u-1");
        cr_assert(cJSON_IsTrue(at(c, "metadata.ownerReferences.0.controller")));
        cr_assert(op_child_owned_by(c, "u-1"));
        cr_assert(!op_child_owned_by(c, "u-2"));
        char key[128];
        cr_assert_eq(op_child_owner_key(c, key, sizeof key), 0);
        cr_assert_str_eq(key, "forms/student-data");
        cJSON_Delete(c);
    }
    op_pipeline_free(p);
    cJSON_Delete(j);
}

/* The pod spec of a workload child. */
static const cJSON *podspec(const cJSON *c)
{
    const cJSON *s = at(c, "spec.template.spec");
    return s ? s : at(c, "spec.jobTemplate.spec.template.spec");
}

Test(children, pods_are_locked_down_and_secrets_are_mounted_not_copied)
{
    cJSON *j = resource(",\"kafka\":{\"configSecret\":{\"name\":\"kafka-client\"}}");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    op_child_kind workloads[] = {OP_CHILD_INGEST_DEPLOYMENT, OP_CHILD_CONSUMER_DEPLOYMENT, OP_CHILD_FLUSH_CRONJOB};
    for (size_t i = 0; i < 3; i++) {
        cJSON *c = op_child_build(p, &defaults, workloads[i], 4);
        const cJSON *ps = podspec(c);
        cr_assert_not_null(ps);
        cr_assert(cJSON_IsFalse(at(ps, "automountServiceAccountToken")));
        cr_assert(cJSON_IsTrue(at(ps, "securityContext.runAsNonRoot")));
        cr_assert_str_eq(sat(ps, "securityContext.seccompProfile.type"), "RuntimeDefault");
        const cJSON *ctr = at(ps, "containers.0");
        cr_assert(cJSON_IsTrue(at(ctr, "securityContext.readOnlyRootFilesystem")));
        cr_assert(cJSON_IsFalse(at(ctr, "securityContext.allowPrivilegeEscalation")));
        cr_assert_str_eq(sat(ctr, "securityContext.capabilities.drop.0"), "ALL");
        cr_assert_not_null(at(ctr, "resources.limits.memory"));
        if (workloads[i] != OP_CHILD_FLUSH_CRONJOB) {
            cr_assert_str_eq(sat(ctr, "readinessProbe.httpGet.path"), "/readyz");
            cr_assert_str_eq(sat(ctr, "livenessProbe.httpGet.path"), "/healthz");
        }
        char *text = cJSON_PrintUnformatted(c);
        cr_assert_null(strstr(text, "secretKeyRef"), "no secret travels through env");
        if (workloads[i] != OP_CHILD_FLUSH_CRONJOB)   /* the flusher never talks to Kafka */
            cr_assert_not_null(strstr(text, "\"secretName\":\"kafka-client\""), "Kafka settings mounted: %s", text);
        if (workloads[i] != OP_CHILD_INGEST_DEPLOYMENT)
            cr_assert_not_null(strstr(text, "--redis-password-file=/etc/formpipe/redis/password"));
        free(text);
        cJSON_Delete(c);
    }
    cJSON *consumer = op_child_build(p, &defaults, OP_CHILD_CONSUMER_DEPLOYMENT, 4);
    cr_assert_eq(at(consumer, "spec.replicas")->valuedouble, 4);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(at(consumer, "spec.template.metadata.annotations"),
                                                               OP_FORM_HASH_ANNOTATION)), p->form_hash);
    cJSON_Delete(consumer);
    cJSON *cron = op_child_build(p, &defaults, OP_CHILD_FLUSH_CRONJOB, 0);
    cr_assert_str_eq(sat(cron, "spec.concurrencyPolicy"), "Forbid");
    cr_assert_str_eq(sat(cron, "spec.schedule"), "*/1 * * * *");
    char *text = cJSON_PrintUnformatted(cron);
    cr_assert_not_null(strstr(text, "\"secretName\":\"google-sa\""));
    cr_assert_not_null(strstr(text, "--spreadsheet-id=S1"));
    free(text);
    cJSON_Delete(cron);
    cJSON *ingest = op_child_build(p, &defaults, OP_CHILD_INGEST_DEPLOYMENT, 0);
    text = cJSON_PrintUnformatted(at(ingest, "spec.template.spec.containers.0.args"));
    const char *want[] = {"--max-body-bytes=65536", "--rate-limit=20", "--rate-burst=40", "--max-connections=4096",
                          "--max-header-bytes=4096", "--idle-timeout=30"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(text, want[i]), "%s not in %s", want[i], text);
    free(text);
    cJSON_Delete(ingest);
    cJSON *ing = op_child_build(p, &defaults, OP_CHILD_INGEST_INGRESS, 0);
    cr_assert_str_eq(sat(ing, "spec.rules.0.http.paths.0.path"), "/forms/student-data");
    cr_assert_str_eq(sat(ing, "spec.rules.0.http.paths.0.backend.service.name"), "student-data-ingest");
    cJSON_Delete(ing);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

/* spec.ingest.tls: the Ingress's tls entry (hosts only with a host) and the URL status shows. */
struct tls_case {
    const char *ingest;      /* spec.ingest JSON */
    const char *tls_json;    /* spec.tls of the Ingress, printed; NULL: none */
    const char *url;         /* status.ingest.url */
};

ParameterizedTestParameters(children, ingress_tls_follows_the_spec)
{
    static struct tls_case cases[] = {
        {"{}", NULL, "/forms/student-data"},
        {"{\"host\":\"forms.example.com\"}", NULL, "http://forms.example.com/forms/student-data"},
        {"{\"host\":\"forms.example.com\",\"tls\":{\"secretName\":\"forms-tls\"}}",
         "[{\"hosts\":[\"forms.example.com\"],\"secretName\":\"forms-tls\"}]", "https://forms.example.com/forms/student-data"},
        {"{\"tls\":{\"secretName\":\"forms-tls\"}}", "[{\"secretName\":\"forms-tls\"}]", "/forms/student-data"},
    };
    return cr_make_param_array(struct tls_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct tls_case *c, children, ingress_tls_follows_the_spec)
{
    char tail[512];
    snprintf(tail, sizeof tail, ",\"ingest\":%s", c->ingest);
    cJSON *j = resource(tail);
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cJSON *ing = op_child_build(p, &defaults, OP_CHILD_INGEST_INGRESS, 0);
    const cJSON *tls = at(ing, "spec.tls");
    char *text = tls ? cJSON_PrintUnformatted(tls) : NULL;
    if (c->tls_json)
        cr_assert(text && strcmp(text, c->tls_json) == 0, "tls %s, want %s", text ? text : "(none)", c->tls_json);
    else
        cr_assert_null(text, "tls %s, want none", text);
    free(text);
    cJSON_Delete(ing);
    op_flush_facts flush = {.last_rows = -1, .rows_waiting = -1, .oldest_waiting_ms = -1};
    op_observed o = {.partitions = 1, .topic = {"TopicReady", 1, "TopicExists", "t"}, .flush = &flush, .conflict = "",
                     .tab_owner = "", .group = "g", .dlq_topic = "d"};
    op_condition cond[OP_C_COUNT];
    cJSON *st = op_status_build(p, &o, NULL, "2026-12-01T10:01:00Z", cond);
    cr_assert_str_eq(sat(st, "ingest.url"), c->url);
    cJSON_Delete(st);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

Test(children, ingest_limits_from_the_spec_reach_the_ingest_arguments)
{
    cJSON *j = resource(",\"ingest\":{\"maxConnections\":100,\"maxHeaderBytes\":8192,\"idleTimeoutSeconds\":7}");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cJSON *ingest = op_child_build(p, &defaults, OP_CHILD_INGEST_DEPLOYMENT, 0);
    char *text = cJSON_PrintUnformatted(at(ingest, "spec.template.spec.containers.0.args"));
    const char *want[] = {"--max-connections=100", "--max-header-bytes=8192", "--idle-timeout=7"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(text, want[i]), "%s not in %s", want[i], text);
    free(text);
    cJSON_Delete(ingest);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

/* #16: the chart's trusted proxies when the pipeline names none (its own win), the
 * shared token key mounted, /metrics on an admin port the Ingress does not route. */
struct proxy_case { const char *spec_tail; const char *want, *not_want; };
static struct proxy_case proxy_cases[] = {
    {"", "\"--trusted-proxy=10.244.0.0/16\",\"--trusted-proxy=fd00:10:244::/56\"", NULL},
    {",\"ingest\":{\"trustedProxies\":[\"192.168.5.0/24\"]}", "\"--trusted-proxy=192.168.5.0/24\"", "10.244.0.0/16"},
};

ParameterizedTestParameters(children, ingest_abuse_settings)
{
    return cr_make_param_array(struct proxy_case, proxy_cases, sizeof proxy_cases / sizeof proxy_cases[0]);
}

ParameterizedTest(struct proxy_case *c, children, ingest_abuse_settings)
{
    char *items[] = {"10.244.0.0/16", "fd00:10:244::/56"};
    fp_strlist proxies = {items, 2};
    op_defaults d = defaults;
    d.ingest_trusted_proxies = &proxies;
    d.ingest_token_key = (op_secret_ref){"ingest-token", "token-key"};
    cJSON *j = resource(c->spec_tail);
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &d, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cJSON *ingest = op_child_build(p, &d, OP_CHILD_INGEST_DEPLOYMENT, 0);
    char *args = cJSON_PrintUnformatted(at(ingest, "spec.template.spec.containers.0.args"));
    cr_assert_not_null(strstr(args, c->want), "%s not in %s", c->want, args);
    if (c->not_want)
        cr_assert_null(strstr(args, c->not_want), "%s in %s", c->not_want, args);
    cr_assert_not_null(strstr(args, "\"--token-key-file=/etc/formpipe/token/token-key\""), "%s", args);
    cr_assert_not_null(strstr(args, "\"--admin-port=9090\""), "%s", args);
    char *ports = cJSON_PrintUnformatted(at(ingest, "spec.template.spec.containers.0.ports"));
    cr_assert_not_null(strstr(ports, "{\"name\":\"admin\",\"containerPort\":9090"), "%s", ports);
    char *vols = cJSON_PrintUnformatted(at(ingest, "spec.template.spec.volumes"));
    cr_assert_not_null(strstr(vols, "\"secretName\":\"ingest-token\""), "%s", vols);
    free(args);
    free(ports);
    free(vols);
    cJSON_Delete(ingest);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

Test(children, wait_for_replicas_comes_from_the_spec_or_the_operator_default)
{
    const char *tails[] = {"", ",\"redis\":{\"minReplicasAck\":2}"};
    const char *want[] = {"--min-replicas-ack=1", "--min-replicas-ack=2"};
    op_child_kind kinds[] = {OP_CHILD_CONSUMER_DEPLOYMENT, OP_CHILD_FLUSH_CRONJOB};
    for (int t = 0; t < 2; t++) {
        cJSON *j = resource(tails[t]);
        fp_error err = {0};
        op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
        cr_assert_not_null(p, "%s", err.msg);
        for (int k = 0; k < 2; k++) {
            cJSON *c = op_child_build(p, &defaults, kinds[k], 1);
            char *text = cJSON_PrintUnformatted(c);
            cr_assert_not_null(strstr(text, want[t]), "%s not in %s", want[t], text);
            free(text);
            cJSON_Delete(c);
        }
        op_pipeline_free(p);
        cJSON_Delete(j);
    }
}

/* The resource with status.columns set to columns (a JSON array). */
static cJSON *resource_with_columns(const char *fields, const char *columns)
{
    char text[4096];
    snprintf(text, sizeof text, "{\"apiVersion\":\"formpipe.io/v1alpha1\",\"kind\":\"FormPipeline\"," META
             ",\"spec\":{\"form\":{\"fields\":%s},\"sheets\":{\"spreadsheetId\":\"S1\"}},"
             "\"status\":{\"columns\":%s}}", fields, columns);
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "bad test JSON: %s", text);
    return j;
}

struct columns_case {
    const char *fields, *status_columns;
    const char *want;          /* compiled "columns", joined with ','; NULL: refused */
    int changed;
    const char *refusal;
};

static struct columns_case columns_cases[] = {
    /* first reconcile: the fields in order */
    {"[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"integer\"}]", "[]", "a,b", 1, NULL},
    /* nothing new */
    {"[{\"name\":\"a\",\"type\":\"string\"}]", "[{\"name\":\"a\",\"type\":\"string\"}]", "a", 0, NULL},
    /* a removed field keeps its column; a new one goes to the end */
    {"[{\"name\":\"c\",\"type\":\"email\"},{\"name\":\"a\",\"type\":\"string\"}]",
     "[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"integer\"}]", "a,b,c", 1, NULL},
    /* reordering fields never reorders columns */
    {"[{\"name\":\"b\",\"type\":\"integer\"},{\"name\":\"a\",\"type\":\"string\"}]",
     "[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"integer\"}]", "a,b", 0, NULL},
    /* a type change is refused, also for a field that comes back after removal */
    {"[{\"name\":\"a\",\"type\":\"integer\"}]", "[{\"name\":\"a\",\"type\":\"string\"}]", NULL, 0,
     "spec.form.fields[0].type: field 'a' was string and cannot become integer"},
    {"[{\"name\":\"x\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"date\"}]",
     "[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"integer\"}]", NULL, 0,
     "spec.form.fields[1].type: field 'b' was integer and cannot become date"},
};

ParameterizedTestParameters(pipeline, columns_are_append_only)
{
    return cr_make_param_array(struct columns_case, columns_cases, sizeof columns_cases / sizeof columns_cases[0]);
}

ParameterizedTest(struct columns_case *c, pipeline, columns_are_append_only)
{
    cJSON *j = resource_with_columns(c->fields, c->status_columns);
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    if (!c->want) {
        cr_assert_null(p);
        cr_assert_eq(err.code, FP_EINVAL);
        cr_assert_not_null(strstr(err.msg, c->refusal), "'%s' not in '%s'", c->refusal, err.msg);
        cJSON_Delete(j);
        return;
    }
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_eq(p->columns_changed, c->changed);
    cJSON *compiled = cJSON_Parse(p->compiled_form);
    char joined[256] = "";
    const cJSON *col;
    cJSON_ArrayForEach(col, cJSON_GetObjectItemCaseSensitive(compiled, "columns")) {
        strcat(joined, joined[0] ? "," : "");
        strcat(joined, col->valuestring);
    }
    cr_assert_str_eq(joined, c->want);
    cr_assert_eq(cJSON_GetArraySize(p->columns), cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(compiled, "columns")));
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(compiled, "topic")), "forms.forms.student-data");
    cJSON_Delete(compiled);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

Test(pipeline, names_and_progress_settings)
{
    cJSON *j = resource(",\"kafka\":{\"topic\":\"forms.forms.custom\"},\"progressDeadlineSeconds\":45");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_str_eq(p->dlq_topic, "forms.forms.custom.dlq");
    cr_assert_str_eq(p->group, "formpipe.forms.student-data");
    cr_assert_eq(p->progress_deadline_s, 45);
    cr_assert_eq(p->max_failed_runs, 3);
    cJSON *compiled = cJSON_Parse(p->compiled_form);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(compiled, "topic")), "forms.forms.custom",
                     "the ingest produces to the custom topic");
    cJSON_Delete(compiled);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

Test(children, flush_runs_report_their_outcome_and_fill_spreadsheets_in_order)
{
    cJSON *j = resource("");
    cJSON *sheets = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "spec"), "sheets");
    cJSON_AddItemToObject(sheets, "spreadsheetIds", cJSON_CreateStringArray((const char *[]){"S2", "S3"}, 2));
    cJSON_AddNumberToObject(sheets, "maxFailedRuns", 5);
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cJSON *cj = op_child_build(p, &defaults, OP_CHILD_FLUSH_CRONJOB, 0);
    const cJSON *c = at(cj, "spec.jobTemplate.spec.template.spec.containers.0");
    char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "args"));
    cr_assert_not_null(strstr(args, "\"--spreadsheet-id=S1\",\"--spreadsheet-id=S2\",\"--spreadsheet-id=S3\""), "%s", args);
    cr_assert_not_null(strstr(args, "\"--termination-log=/dev/termination-log\""), "%s", args);
    free(args);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "terminationMessagePolicy")),
                     "FallbackToLogsOnError");
    cr_assert_eq(at(cj, "spec.failedJobsHistoryLimit")->valuedouble, 5, "failed runs stay readable for maxFailedRuns");
    cr_assert(cJSON_IsFalse(at(cj, "spec.suspend")));
    cJSON_Delete(cj);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

/* --- #24: pod settings, PDBs, the ingest HPA ---------------------------------- */

Test(children, pod_settings_reach_every_workload_from_defaults_and_spec)
{
    cJSON *pods = cJSON_Parse("{\"default\":{\"imagePullSecrets\":[{\"name\":\"regcred\"}],\"priorityClassName\":\"forms\","
                              "\"labels\":{\"team\":\"ops\"}},\"consumer\":{\"resources\":{\"limits\":{\"memory\":\"1Gi\"}}}}");
    op_defaults d = defaults;
    d.pods = pods;
    cJSON *j = resource(",\"ingest\":{\"pod\":{\"nodeSelector\":{\"pool\":\"web\"},\"annotations\":{\"sidecar.istio.io/inject\":\"true\"}}},"
                        "\"consumer\":{\"pod\":{\"priorityClassName\":\"bulk\"}}");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &d, &err);
    cr_assert_not_null(p, "%s", err.msg);
    struct { op_child_kind kind; const char *priority, *memory; int spread; } want[] = {
        {OP_CHILD_INGEST_DEPLOYMENT, "forms", "256Mi", 1},
        {OP_CHILD_CONSUMER_DEPLOYMENT, "bulk", "1Gi", 0},
        {OP_CHILD_FLUSH_CRONJOB, "forms", "256Mi", 0},
    };
    for (size_t i = 0; i < 3; i++) {
        cJSON *c = op_child_build(p, &d, want[i].kind, 2);
        const cJSON *ps = podspec(c);
        const cJSON *tmd = at(c, "spec.template.metadata") ? at(c, "spec.template.metadata")
                                                           : at(c, "spec.jobTemplate.spec.template.metadata");
        cr_assert_str_eq(sat(ps, "imagePullSecrets.0.name"), "regcred");
        cr_assert_str_eq(sat(ps, "priorityClassName"), want[i].priority);
        cr_assert_str_eq(sat(ps, "containers.0.resources.limits.memory"), want[i].memory);
        cr_assert_str_eq(sat(ps, "containers.0.resources.requests.cpu"), "100m");
        cr_assert_str_eq(sat(tmd, "labels.team"), "ops");
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(at(tmd, "labels"), "app.kubernetes.io/managed-by")),
                         "formpipe-operator");
        cr_assert_eq(at(ps, "topologySpreadConstraints") != NULL, want[i].spread);
        cJSON_Delete(c);
    }
    cJSON *ingest = op_child_build(p, &d, OP_CHILD_INGEST_DEPLOYMENT, 0);
    cr_assert_str_eq(sat(ingest, "spec.template.spec.nodeSelector.pool"), "web");
    const cJSON *ann = at(ingest, "spec.template.metadata.annotations");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ann, "sidecar.istio.io/inject")), "true");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ann, OP_FORM_HASH_ANNOTATION)), p->form_hash);
    const cJSON *spread = at(ingest, "spec.template.spec.topologySpreadConstraints.0");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spread, "topologyKey")), "kubernetes.io/hostname");
    const cJSON *sel = at(spread, "labelSelector.matchLabels");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sel, "app.kubernetes.io/component")), "ingest");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sel, "app.kubernetes.io/instance")), "student-data");
    cr_assert_eq(at(ingest, "spec.replicas")->valuedouble, 2);
    cJSON_Delete(ingest);
    op_pipeline_free(p);
    cJSON_Delete(j);
    cJSON_Delete(pods);
}

Test(children, disruption_budgets_take_one_pod_at_a_time)
{
    cJSON *j = resource("");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    const char *component[] = {"ingest", "consumer"};
    op_child_kind kinds[] = {OP_CHILD_INGEST_PDB, OP_CHILD_CONSUMER_PDB};
    for (int i = 0; i < 2; i++) {
        cJSON *c = op_child_build(p, &defaults, kinds[i], 3);
        cr_assert_str_eq(sat(c, "apiVersion"), "policy/v1");
        cr_assert_eq(at(c, "spec.maxUnavailable")->valuedouble, 1);
        const cJSON *sel = at(c, "spec.selector.matchLabels");
        cr_assert_eq(cJSON_GetArraySize(sel), 3, "the Deployment's selector labels");
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sel, "app.kubernetes.io/component")), component[i]);
        cr_assert(op_child_wanted(p, kinds[i]));
        cJSON_Delete(c);
    }
    cr_assert(!op_child_wanted(p, OP_CHILD_INGEST_HPA), "no HPA without spec.ingest.autoscaling");
    op_pipeline_free(p);
    cJSON_Delete(j);
}

Test(children, autoscaling_gives_an_hpa_and_leaves_replicas_to_it)
{
    cJSON *j = resource(",\"ingest\":{\"replicas\":7,\"autoscaling\":{\"minReplicas\":3,\"maxReplicas\":12,"
                        "\"targetCPUUtilizationPercentage\":70,\"requestsPerSecond\":200}}");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &defaults, &err);
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert(op_child_wanted(p, OP_CHILD_INGEST_HPA));
    cr_assert_eq(p->ingest_replicas, 3, "status waits for the HPA's minimum");
    cJSON *hpa = op_child_build(p, &defaults, OP_CHILD_INGEST_HPA, 0);
    char *text = cJSON_PrintUnformatted(at(hpa, "spec"));
    cr_assert_str_eq(text, "{\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"student-data-ingest\"},"
                           "\"minReplicas\":3,\"maxReplicas\":12,\"metrics\":[{\"type\":\"Resource\",\"resource\":{\"name\":\"cpu\","
                           "\"target\":{\"type\":\"Utilization\",\"averageUtilization\":70}}},{\"type\":\"Pods\",\"pods\":"
                           "{\"metric\":{\"name\":\"formpipe_ingest_requests_per_second\"},\"target\":{\"type\":\"AverageValue\","
                           "\"averageValue\":\"200\"}}}]}");
    free(text);
    cr_assert_str_eq(sat(hpa, "apiVersion"), "autoscaling/v2");
    cJSON *ingest = op_child_build(p, &defaults, OP_CHILD_INGEST_DEPLOYMENT, 0);
    cr_assert_null(at(ingest, "spec.replicas"), "the operator does not own the ingest's replicas under an HPA");
    cJSON_Delete(ingest);
    cJSON_Delete(hpa);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

/* #16: hosts, ingress classes and endpoints outside the operator's allowlists are refused
 * with FP_EPERM (Ready=False/NotAllowed), naming the field; the operator's own endpoints
 * are always allowed. */
static char *hosts[] = {"forms.example.com", "*.forms.example.org"};
static char *classes[] = {"nginx"};
static char *kafkas[] = {"kafka-b:9092"};
static char *redises[] = {"r1:26379"};
static const fp_strlist allow_hosts = {hosts, 2}, allow_classes = {classes, 1}, allow_kafka = {kafkas, 1},
                        allow_redis = {redises, 1};

struct allow_case {
    const char *tail;   /* more spec */
    int code;           /* 0 or FP_EPERM */
    const char *says;   /* part of the message */
};

ParameterizedTestParameters(pipeline, allowlists_refuse_what_is_not_listed)
{
    static struct allow_case cases[] = {
        {",\"ingest\":{\"host\":\"forms.example.com\"}", 0, ""},
        {",\"ingest\":{\"host\":\"a.forms.example.org\"}", 0, ""},
        {",\"ingest\":{\"host\":\"x.y.forms.example.org\"}", 0, ""},
        {",\"ingest\":{\"host\":\"forms.example.org\"}", FP_EPERM, "spec.ingest.host: forms.example.org"},
        {",\"ingest\":{\"host\":\"evilforms.example.org\"}", FP_EPERM, "spec.ingest.host"},
        {",\"ingest\":{\"host\":\"evil.com\"}", FP_EPERM, "not among the operator's allowed hosts"},
        {"", FP_EPERM, "spec.ingest.host: required"},
        {",\"ingest\":{\"host\":\"forms.example.com\",\"ingressClassName\":\"nginx\"}", 0, ""},
        {",\"ingest\":{\"host\":\"forms.example.com\",\"ingressClassName\":\"traefik\"}", FP_EPERM, "spec.ingest.ingressClassName"},
        {",\"ingest\":{\"host\":\"forms.example.com\"},\"kafka\":{\"bootstrapServers\":\"kafka:9092\"}", 0, ""},
        {",\"ingest\":{\"host\":\"forms.example.com\"},\"kafka\":{\"bootstrapServers\":\"kafka-b:9092\"}", 0, ""},
        {",\"ingest\":{\"host\":\"forms.example.com\"},\"kafka\":{\"bootstrapServers\":\"evil:9092\"}", FP_EPERM,
         "spec.kafka.bootstrapServers: evil:9092"},
        {",\"ingest\":{\"host\":\"forms.example.com\"},\"redis\":{\"sentinels\":\"r1:26379\"}", 0, ""},
        {",\"ingest\":{\"host\":\"forms.example.com\"},\"redis\":{\"sentinels\":\"evil:26379\"}", FP_EPERM,
         "spec.redis.sentinels"},
    };
    return cr_make_param_array(struct allow_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct allow_case *c, pipeline, allowlists_refuse_what_is_not_listed)
{
    op_defaults d = defaults;
    d.allowed_hosts = &allow_hosts;
    d.allowed_ingress_classes = &allow_classes;
    d.allowed_kafka = &allow_kafka;
    d.allowed_redis = &allow_redis;
    cJSON *j = resource(c->tail);
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &d, &err);
    if (c->code) {
        cr_assert_null(p, "accepted %s", c->tail);
        cr_assert_eq(err.code, c->code, "code %d for %s: %s", err.code, c->tail, err.msg);
        cr_assert_not_null(strstr(err.msg, c->says), "\"%s\" does not say \"%s\"", err.msg, c->says);
    } else {
        cr_assert_not_null(p, "refused %s: %s", c->tail, err.msg);
    }
    op_pipeline_free(p);
    cJSON_Delete(j);
}

/* #16: the operator's default Kafka and Redis Secrets are given only to pipelines that use
 * its own endpoints; a pipeline naming another cluster gets none (or its own). */
struct secret_case {
    const char *tail;
    const char *kafka_secret, *redis_secret;   /* expected names, NULL: none */
};

ParameterizedTestParameters(pipeline, default_secrets_only_for_default_endpoints)
{
    static struct secret_case cases[] = {
        {"", "kafka-client", "redis-auth"},
        {",\"kafka\":{\"bootstrapServers\":\"kafka:9092\"},\"redis\":{\"sentinels\":\"s1:26379,s2:26379\"}", "kafka-client",
         "redis-auth"},
        {",\"kafka\":{\"bootstrapServers\":\"other:9092\"}", NULL, "redis-auth"},
        {",\"kafka\":{\"bootstrapServers\":\"other:9092\",\"configSecret\":{\"name\":\"mine\"}}", "mine", "redis-auth"},
        {",\"redis\":{\"sentinels\":\"other:26379\"}", "kafka-client", NULL},
        {",\"redis\":{\"sentinels\":\"other:26379\",\"passwordSecret\":{\"name\":\"pw\"}}", "kafka-client", "pw"},
        {",\"redis\":{\"masterName\":\"other\"}", "kafka-client", "redis-auth"},
    };
    return cr_make_param_array(struct secret_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct secret_case *c, pipeline, default_secrets_only_for_default_endpoints)
{
    op_defaults d = defaults;
    d.kafka_config = (op_secret_ref){"kafka-client", "client.properties"};
    d.kafka_ca = (op_secret_ref){"kafka-ca", "ca.crt"};
    d.redis_tls_ca = (op_secret_ref){"redis-ca", "ca.crt"};
    cJSON *j = resource(c->tail);
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &d, &err);
    cr_assert_not_null(p, "%s", err.msg);
    const char *k = p->kafka_config.name, *r = p->redis_password.name;
    cr_assert(c->kafka_secret ? k && strcmp(k, c->kafka_secret) == 0 : !k, "kafka Secret %s for %s", k ? k : "(none)", c->tail);
    cr_assert(c->redis_secret ? r && strcmp(r, c->redis_secret) == 0 : !r, "redis Secret %s for %s", r ? r : "(none)", c->tail);
    cr_assert_eq(p->kafka_ca.name != NULL, p->kafka_default, "the default Kafka CA only with the default brokers: %s", c->tail);
    cr_assert_eq(p->redis_tls_ca.name != NULL, p->redis_default, "the default Redis CA only with the default sentinels: %s",
                 c->tail);
    op_pipeline_free(p);
    cJSON_Delete(j);
}

/* #19: which mode a pipeline runs in. spec.mode decides when set; without it a spec
 * needing its own pods is Dedicated, a running pipeline keeps its status.mode, and a new
 * one takes the operator's default. */
struct mode_case {
    const char *tail;         /* spec members after the form and sheets */
    const char *status_mode;  /* status.mode, NULL: none recorded */
    int default_shared;       /* --default-mode Shared */
    int shared;               /* expected */
};

ParameterizedTestParameters(pipeline, mode_follows_spec_then_status_then_default)
{
    static struct mode_case cases[] = {
        {"", NULL, 1, 1},                                        /* new: the default, Shared */
        {"", NULL, 0, 0},                                        /* new: the default, Dedicated */
        {",\"mode\":\"Dedicated\"", NULL, 1, 0},                 /* asked for */
        {",\"mode\":\"Shared\"", NULL, 0, 1},
        {",\"mode\":\"Dedicated\"", "Shared", 1, 0},             /* asked for: a switch */
        {"", "Dedicated", 1, 0},                                 /* keeps what it runs in */
        {"", "Shared", 0, 1},
        {",\"redis\":{\"sentinels\":\"other:26379\"}", NULL, 1, 0},            /* needs its own pods */
        {",\"redis\":{\"sentinels\":\"other:26379\"}", "Shared", 1, 0},        /* ...so it switches */
        {",\"kafka\":{\"caSecret\":{\"name\":\"ca\"}}", NULL, 1, 0},
        {",\"ingest\":{\"autoscaling\":{\"maxReplicas\":4,\"requestsPerSecond\":50}}", NULL, 1, 0},
        {",\"consumer\":{\"pod\":{\"priorityClassName\":\"bulk\"}}", NULL, 1, 0},
        {",\"ingest\":{\"replicas\":3,\"maxBodyBytes\":2048}", NULL, 1, 1},   /* nothing of its own */
    };
    return cr_make_param_array(struct mode_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct mode_case *c, pipeline, mode_follows_spec_then_status_then_default)
{
    op_defaults d = defaults;
    d.default_shared = c->default_shared;
    cJSON *j = resource(c->tail);
    if (c->status_mode)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(j, "status"), "mode", c->status_mode);
    cr_assert_eq(op_pipeline_wants_shared(j, &d), c->shared, "%s (status %s, default %s)", c->tail,
                 c->status_mode ? c->status_mode : "-", c->default_shared ? "Shared" : "Dedicated");
    fp_error err = {0};
    op_pipeline *p = op_pipeline_parse(j, &d, &err);
    cr_assert_not_null(p, "an unset mode is never refused: %s", err.msg);
    cr_assert_eq(p->shared, c->shared);
    op_pipeline_free(p);
    cJSON_Delete(j);
}
