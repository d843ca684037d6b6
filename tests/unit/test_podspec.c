/* Unit tests for operator/podspec (the merge of pod settings: built-in < operator-wide <
 * operator per component < the resource's, per field) and operator/topicconfig (the
 * allowlist, the dead-letter topic's retention, and what is written to make a topic
 * match). Table-driven. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "podspec.h"
#include "topicconfig.h"

static cJSON *parse(const char *text)
{
    if (!text)
        return NULL;
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "bad test JSON: %s", text);
    return j;
}

/* One merge case: the operator's defaults file, the resource's own settings, and the
 * component; want: the merged settings exactly. */
typedef struct merge_case {
    const char *name;
    op_pod_component component;
    const char *defaults, *own;
    const char *want;
} merge_case;

#define RES_INGEST "\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}}"
#define SPREAD "\"topologySpreadConstraints\":[{\"maxSkew\":1,\"topologyKey\":\"kubernetes.io/hostname\",\"whenUnsatisfiable\":\"ScheduleAnyway\"}]"

static merge_case merge_cases[] = {
    {"built-in only: resources, ingest spread across nodes", OP_POD_INGEST, NULL, NULL, "{" RES_INGEST "," SPREAD "}"},
    {"built-in consumer: no spread", OP_POD_CONSUMER, "{}", NULL,
     "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"512Mi\"}}}"},
    {"operator-wide default reaches every component", OP_POD_FLUSH,
     "{\"default\":{\"imagePullSecrets\":[{\"name\":\"regcred\"}],\"priorityClassName\":\"forms\"}}", NULL,
     "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}},"
     "\"imagePullSecrets\":[{\"name\":\"regcred\"}],\"priorityClassName\":\"forms\"}"},
    {"per component over operator-wide, per field", OP_POD_TASK,
     "{\"default\":{\"priorityClassName\":\"low\",\"nodeSelector\":{\"pool\":\"forms\"}},\"task\":{\"priorityClassName\":\"high\"}}",
     NULL,
     "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}},"
     "\"priorityClassName\":\"high\",\"nodeSelector\":{\"pool\":\"forms\"}}"},
    {"resources merge per resource name: the pipeline raises one limit", OP_POD_INGEST,
     "{\"ingest\":{\"resources\":{\"requests\":{\"cpu\":\"250m\"}}}}", "{\"resources\":{\"limits\":{\"memory\":\"1Gi\",\"cpu\":2}}}",
     "{\"resources\":{\"requests\":{\"cpu\":\"250m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"1Gi\",\"cpu\":2}}," SPREAD "}"},
    {"maps merge per key, the resource's key wins", OP_POD_CONSUMER,
     "{\"default\":{\"labels\":{\"team\":\"ops\",\"tier\":\"2\"},\"annotations\":{\"a\":\"1\"}}}",
     "{\"labels\":{\"tier\":\"1\"},\"annotations\":{\"sidecar.istio.io/inject\":\"true\"}}",
     "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"512Mi\"}},"
     "\"labels\":{\"team\":\"ops\",\"tier\":\"1\"},\"annotations\":{\"a\":\"1\",\"sidecar.istio.io/inject\":\"true\"}}"},
    {"lists are replaced whole, an empty list clears the built-in spread", OP_POD_INGEST,
     "{\"default\":{\"tolerations\":[{\"key\":\"a\",\"operator\":\"Exists\"},{\"key\":\"b\",\"operator\":\"Exists\"}]}}",
     "{\"tolerations\":[{\"key\":\"c\",\"operator\":\"Exists\"}],\"topologySpreadConstraints\":[]}",
     "{" RES_INGEST ",\"topologySpreadConstraints\":[],\"tolerations\":[{\"key\":\"c\",\"operator\":\"Exists\"}]}"},
    {"affinity merges per kind", OP_POD_FLUSH,
     "{\"default\":{\"affinity\":{\"nodeAffinity\":{\"x\":1},\"podAntiAffinity\":{\"y\":1}}}}",
     "{\"affinity\":{\"nodeAffinity\":{\"z\":1}}}",
     "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}},"
     "\"affinity\":{\"nodeAffinity\":{\"z\":1},\"podAntiAffinity\":{\"y\":1}}}"},
    {"another component's defaults do not apply", OP_POD_CONSUMER, "{\"ingest\":{\"priorityClassName\":\"x\"}}", NULL,
     "{\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"512Mi\"}}}"},
};

ParameterizedTestParameters(podspec, merge)
{
    return cr_make_param_array(merge_case, merge_cases, sizeof merge_cases / sizeof merge_cases[0]);
}

ParameterizedTest(merge_case *c, podspec, merge)
{
    cJSON *d = parse(c->defaults), *own = parse(c->own), *want = parse(c->want);
    cJSON *got = op_podspec_for(c->component, d, NULL, own);
    char *text = cJSON_PrintUnformatted(got);
    cr_assert(cJSON_Compare(got, want, 1), "%s: got %s", c->name, text);
    free(text);
    cJSON_Delete(got);
    cJSON_Delete(want);
    cJSON_Delete(own);
    cJSON_Delete(d);
}

Test(podspec, extra_layer_sits_between_the_defaults_and_the_resource)
{
    cJSON *d = parse("{\"task\":{\"resources\":{\"limits\":{\"memory\":\"300Mi\"}}}}");
    cJSON *extra = parse("{\"resources\":{\"limits\":{\"memory\":\"2Gi\"},\"requests\":{\"cpu\":\"1\"}}}");
    cJSON *own = parse("{\"resources\":{\"requests\":{\"cpu\":\"2\"}}}");
    cJSON *got = op_podspec_for(OP_POD_TASK, d, extra, own);
    cJSON *want = parse("{\"resources\":{\"requests\":{\"cpu\":\"2\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"2Gi\"}}}");
    cr_assert(cJSON_Compare(got, want, 1));
    cJSON_Delete(got);
    cJSON_Delete(want);
    cJSON_Delete(own);
    cJSON_Delete(extra);
    cJSON_Delete(d);
}

typedef struct check_case {
    const char *pod;
    const char *error;   /* NULL: accepted; else a part of the message */
} check_case;

static check_case check_cases[] = {
    {"{\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":1024}},\"imagePullSecrets\":[{\"name\":\"r\"}],"
     "\"nodeSelector\":{\"kubernetes.io/os\":\"linux\"},\"tolerations\":[],\"affinity\":{},\"topologySpreadConstraints\":[],"
     "\"priorityClassName\":\"p\",\"labels\":{\"team\":\"a\"},\"annotations\":{\"x/y\":\"z\"}}", NULL},
    {"{\"hostNetwork\":true}", "spec.pod.hostNetwork: unknown pod setting"},
    {"{\"resources\":{\"claims\":[]}}", "spec.pod.resources.claims: only requests and limits"},
    {"{\"resources\":{\"limits\":{\"memory\":true}}}", "spec.pod.resources.limits.memory: must be a string"},
    {"{\"labels\":{\"app.kubernetes.io/name\":\"x\"}}", "app.kubernetes.io/ and formpipe.io/ keys are the operator's"},
    {"{\"annotations\":{\"formpipe.io/form-hash\":\"x\"}}", "spec.pod.annotations.formpipe.io/form-hash"},
    {"{\"labels\":{\"team\":1}}", "spec.pod.labels.team: must be a string"},
    {"{\"tolerations\":{}}", "spec.pod.tolerations: must be a list"},
    {"{\"priorityClassName\":3}", "spec.pod.priorityClassName: must be a string"},
    {"[]", "spec.pod: must be an object"},
};

ParameterizedTestParameters(podspec, check)
{
    return cr_make_param_array(check_case, check_cases, sizeof check_cases / sizeof check_cases[0]);
}

ParameterizedTest(check_case *c, podspec, check)
{
    cJSON *pod = parse(c->pod);
    fp_error err = {0};
    int rc = op_podspec_check(pod, "spec.pod", &err);
    if (!c->error)
        cr_assert_eq(rc, 0, "%s: %s", c->pod, err.msg);
    else
        cr_assert(rc == FP_EINVAL && strstr(err.msg, c->error), "%s: rc %d, %s", c->pod, rc, err.msg);
    cJSON_Delete(pod);
}

Test(podspec, apply_fills_the_pod_and_keeps_the_operators_labels)
{
    cJSON *settings = parse("{\"resources\":{\"requests\":{\"cpu\":0.5}},\"imagePullSecrets\":[{\"name\":\"regcred\"}],"
                            "\"topologySpreadConstraints\":[{\"maxSkew\":1,\"topologyKey\":\"zone\"},"
                            "{\"maxSkew\":2,\"topologyKey\":\"h\",\"labelSelector\":{\"matchLabels\":{\"own\":\"x\"}}}],"
                            "\"labels\":{\"team\":\"a\"},\"annotations\":{\"m\":\"1\"},\"tolerations\":[]}");
    cJSON *md = parse("{\"labels\":{\"app.kubernetes.io/name\":\"formpipe-ingest\"}}");
    cJSON *ps = parse("{\"tolerations\":[{\"key\":\"kept\"}]}"), *ctr = parse("{\"resources\":{\"limits\":{\"memory\":\"1\"}}}");
    cJSON *sel = parse("{\"app.kubernetes.io/instance\":\"p\"}");
    op_podspec_apply(settings, md, ps, ctr, sel);
    char *text = cJSON_PrintUnformatted(ps);
    cr_assert_str_eq(text, "{\"tolerations\":[{\"key\":\"kept\"}],\"imagePullSecrets\":[{\"name\":\"regcred\"}],"
                           "\"topologySpreadConstraints\":[{\"maxSkew\":1,\"topologyKey\":\"zone\",\"labelSelector\":"
                           "{\"matchLabels\":{\"app.kubernetes.io/instance\":\"p\"}}},{\"maxSkew\":2,\"topologyKey\":\"h\","
                           "\"labelSelector\":{\"matchLabels\":{\"own\":\"x\"}}}]}");
    free(text);
    text = cJSON_PrintUnformatted(ctr);
    cr_assert_str_eq(text, "{\"resources\":{\"requests\":{\"cpu\":\"0.5\"}}}", "the merged resources replace the container's");
    free(text);
    text = cJSON_PrintUnformatted(md);
    cr_assert_str_eq(text, "{\"labels\":{\"app.kubernetes.io/name\":\"formpipe-ingest\",\"team\":\"a\"},\"annotations\":{\"m\":\"1\"}}");
    free(text);
    cr_assert(op_podspec_requests_cpu(settings));
    cJSON_Delete(settings);
    cJSON_Delete(md);
    cJSON_Delete(ps);
    cJSON_Delete(ctr);
    cJSON_Delete(sel);
}

Test(podspec, defaults_file_is_checked)
{
    char path[] = "/tmp/podspec-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"default\":{\"imagePullSecrets\":[{\"name\":\"r\"}]},\"ingest\":{\"labels\":{\"formpipe.io/x\":\"1\"}}}", f);
    fclose(f);
    fp_error err = {0};
    cr_assert_null(op_podspec_load_defaults(path, &err));
    cr_assert_not_null(strstr(err.msg, "ingest.labels.formpipe.io/x"), "%s", err.msg);
    f = fopen(path, "w");
    fputs("{\"flsh\":{}}", f);
    fclose(f);
    cr_assert_null(op_podspec_load_defaults(path, &err));
    cr_assert_not_null(strstr(err.msg, "flsh is not default, ingest, consumer, flush or task"), "%s", err.msg);
    f = fopen(path, "w");
    fputs("{\"default\":{\"priorityClassName\":\"p\"},\"task\":{}}", f);
    fclose(f);
    cJSON *d = op_podspec_load_defaults(path, &err);
    cr_assert_not_null(d, "%s", err.msg);
    cJSON_Delete(d);
    unlink(path);
    d = op_podspec_load_defaults("", &err);
    cr_assert(cJSON_IsObject(d) && !d->child);
    cJSON_Delete(d);
}

/* --- topic configs ----------------------------------------------------------- */

/* "k=v,k=v" (a trailing * marks a config set on the topic) into c. */
static void fill(op_topicconfig *c, const char *list)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list ? list : "");
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq, "bad test list %s", list);
        *eq = 0;
        size_t n = strlen(eq + 1);
        int dynamic = n && eq[n] == '*';
        if (dynamic)
            eq[n] = 0;
        cr_assert_eq(op_topicconfig_set(c, tok, eq + 1, dynamic), 0);
    }
}

/* c as "k=v,k=v" sorted by name, into out. */
static void show(const op_topicconfig *c, char *out, size_t outsz)
{
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < c->n && n < 64; i++)
        names[n++] = c->e[i].name;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), outsz - strlen(out), "%s%s=%s", i ? "," : "", names[i],
                 op_topicconfig_find(c, names[i])->value);
}

typedef struct read_case {
    const char *config, *dlq_config;   /* JSON or NULL */
    const char *topic, *dlq;           /* want, as show() writes it */
    const char *error;                 /* or the error's part */
} read_case;

static read_case read_cases[] = {
    {NULL, NULL, "", "retention.ms=2592000000", NULL},
    {"{\"retention.ms\":86400000,\"compression.type\":\"zstd\",\"min.insync.replicas\":\"2\"}", NULL,
     "compression.type=zstd,min.insync.replicas=2,retention.ms=86400000",
     "compression.type=zstd,min.insync.replicas=2,retention.ms=2592000000", NULL},
    {"{\"retention.ms\":5184000000,\"retention.bytes\":1000}", NULL, "retention.bytes=1000,retention.ms=5184000000",
     "retention.ms=5184000000", NULL},
    {"{\"retention.ms\":-1}", NULL, "retention.ms=-1", "retention.ms=-1", NULL},
    {"{\"retention.ms\":1000}", "{\"retention.ms\":2000,\"retention.bytes\":5}", "retention.ms=1000",
     "retention.bytes=5,retention.ms=2000", NULL},
    {"{\"cleanup.policy\":\"compact\"}", NULL, NULL, NULL, "spec.kafka.config.cleanup.policy: not a topic config formpipe sets"},
    {NULL, "{\"unclean.leader.election.enable\":true}", NULL, NULL, "spec.kafka.deadLetterConfig.unclean.leader.election.enable"},
    {"{\"compression.type\":\"brotli\"}", NULL, NULL, NULL, "compression.type: not a value Kafka knows"},
    {"{\"retention.ms\":\"7d\"}", NULL, NULL, NULL, "retention.ms: must be an integer"},
    {"{\"min.insync.replicas\":0}", NULL, NULL, NULL, "min.insync.replicas: must be at least 1"},
    {"{\"retention.bytes\":-2}", NULL, NULL, NULL, "retention.bytes: must be at least -1"},
};

ParameterizedTestParameters(topicconfig, read)
{
    return cr_make_param_array(read_case, read_cases, sizeof read_cases / sizeof read_cases[0]);
}

ParameterizedTest(read_case *c, topicconfig, read)
{
    cJSON *config = parse(c->config), *dlq_config = parse(c->dlq_config);
    op_topicconfig topic = {0}, dlq = {0};
    fp_error err = {0};
    int rc = op_topicconfig_read(config, dlq_config, &topic, &dlq, &err);
    if (c->error) {
        cr_assert(rc == FP_EINVAL && strstr(err.msg, c->error), "rc %d: %s", rc, err.msg);
    } else {
        cr_assert_eq(rc, 0, "%s", err.msg);
        char got[512];
        show(&topic, got, sizeof got);
        cr_assert_str_eq(got, c->topic);
        show(&dlq, got, sizeof got);
        cr_assert_str_eq(got, c->dlq);
    }
    op_topicconfig_clear(&topic);
    op_topicconfig_clear(&dlq);
    cJSON_Delete(config);
    cJSON_Delete(dlq_config);
}

typedef struct plan_case {
    const char *name;
    const char *want, *current;   /* current: * marks set on the topic */
    int changed;
    const char *write;            /* the full set written */
} plan_case;

static plan_case plan_cases[] = {
    {"matches: nothing to do", "retention.ms=5", "retention.ms=5*,segment.ms=9", 0, "retention.ms=5"},
    {"a new topic with broker defaults", "retention.ms=5", "retention.ms=604800000,compression.type=producer", 1,
     "retention.ms=5"},
    {"drift: changed by hand, set back", "retention.ms=5", "retention.ms=7*", 1, "retention.ms=5"},
    {"an allowlisted key set by hand is removed", "retention.ms=5", "retention.ms=5*,max.message.bytes=9*", 1,
     "retention.ms=5"},
    {"other dynamic configs are kept as they are", "compression.type=zstd",
     "compression.type=lz4*,local.retention.ms=3*,cleanup.policy=delete", 1, "compression.type=zstd,local.retention.ms=3"},
    {"a key removed from the spec goes back to the broker's default", "", "retention.ms=5*", 1, ""},
    {"nothing wanted, nothing set", "", "retention.ms=604800000", 0, ""},
    {"value equal but only as the broker default: made the topic's own", "compression.type=producer",
     "compression.type=producer", 1, "compression.type=producer"},
};

ParameterizedTestParameters(topicconfig, plan)
{
    return cr_make_param_array(plan_case, plan_cases, sizeof plan_cases / sizeof plan_cases[0]);
}

ParameterizedTest(plan_case *c, topicconfig, plan)
{
    op_topicconfig want = {0}, current = {0}, out = {0};
    fill(&want, c->want);
    fill(&current, c->current);
    fp_error err = {0};
    int rc = op_topicconfig_plan(&want, &current, &out, &err);
    cr_assert_eq(rc, c->changed, "%s: %d %s", c->name, rc, err.msg);
    char got[512];
    show(&out, got, sizeof got);
    cr_assert_str_eq(got, c->write, "%s", c->name);
    op_topicconfig_clear(&want);
    op_topicconfig_clear(&current);
    op_topicconfig_clear(&out);
}

/* --- a FormTask's Deployment takes the same settings ---------------------------- */

#include "taskdeploy.h"

/* The task Deployment's pod template for task spec with the operator's pod defaults. */
static cJSON *task_deployment(const char *spec, const char *pod_defaults)
{
    cJSON *pods = parse(pod_defaults);
    op_defaults d = {.kafka_bootstrap = "k:9092", .replication_factor = 3, .redis_sentinels = "s:1", .redis_master = "m",
                     .google_credentials = {"g", "key.json"}, .image_pull_policy = "IfNotPresent", .log_level = "info",
                     .image_task = "formpipe/formpipe-task:1", .pods = pods};
    char text[2048];
    snprintf(text, sizeof text, "{\"metadata\":{\"name\":\"t\",\"namespace\":\"ns\",\"uid\":\"tu\",\"generation\":1},\"spec\":%s}", spec);
    cJSON *tj = parse(text);
    cJSON *pj = parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"pu\",\"generation\":1},"
                      "\"spec\":{\"form\":{\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]},\"sheets\":{\"spreadsheetId\":\"S\"}}}");
    fp_error err = {0};
    op_task *t = op_task_parse(tj, &err);
    cr_assert_not_null(t, "%s", err.msg);
    op_pipeline *p = op_pipeline_parse(pj, &d, &err);
    cr_assert_not_null(p, "%s", err.msg);
    op_task_route r;
    cr_assert_eq(op_task_route_of(t, p, &r, &err), 0, "%s", err.msg);
    cJSON *dep = op_taskdeploy_build(t, p, &r, &d, d.image_task, 1);
    cJSON *tmpl = cJSON_DetachItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(dep, "spec"), "template");
    cJSON_Delete(dep);
    op_pipeline_free(p);
    op_task_free(t);
    cJSON_Delete(pj);
    cJSON_Delete(tj);
    cJSON_Delete(pods);
    return tmpl;
}

typedef struct task_case {
    const char *spec, *defaults;
    const char *want_resources, *want_extra;   /* the container's resources; a member of the pod spec, printed */
} task_case;

static task_case task_cases[] = {
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h.example.com/\"}}", "{}",
     "{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}}", NULL},
    {"{\"pipeline\":\"p\",\"webhook\":{\"url\":\"https://h.example.com/\"},\"pod\":{\"resources\":{\"limits\":{\"memory\":\"1Gi\"}},"
     "\"nodeSelector\":{\"pool\":\"b\"}}}",
     "{\"default\":{\"imagePullSecrets\":[{\"name\":\"regcred\"}]},\"task\":{\"nodeSelector\":{\"pool\":\"a\",\"zone\":\"z\"}}}",
     "{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"1Gi\"}}", "{\"pool\":\"b\",\"zone\":\"z\"}"},
    /* a container task: spec.container.resources sits between the defaults and spec.pod */
    {"{\"pipeline\":\"p\",\"container\":{\"image\":\"team/x:1\",\"resources\":{\"requests\":{\"cpu\":\"2\"},\"limits\":{\"memory\":\"3Gi\"}}},"
     "\"pod\":{\"resources\":{\"requests\":{\"cpu\":\"3\"}}}}", "{\"task\":{\"resources\":{\"requests\":{\"memory\":\"100Mi\"}}}}",
     "{\"requests\":{\"cpu\":\"3\",\"memory\":\"100Mi\"},\"limits\":{\"memory\":\"3Gi\"}}", NULL},
};

ParameterizedTestParameters(podspec, task_deployment)
{
    return cr_make_param_array(task_case, task_cases, sizeof task_cases / sizeof task_cases[0]);
}

ParameterizedTest(task_case *c, podspec, task_deployment)
{
    cJSON *tmpl = task_deployment(c->spec, c->defaults);
    cJSON *ps = cJSON_GetObjectItemCaseSensitive(tmpl, "spec");
    char *got = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(ps, "containers"), 0), "resources"));
    cr_assert_str_eq(got, c->want_resources);
    free(got);
    if (c->want_extra) {
        got = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(ps, "nodeSelector"));
        cr_assert_str_eq(got, c->want_extra);
        free(got);
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ps, "imagePullSecrets"), 0), "name")), "regcred");
    }
    cJSON_Delete(tmpl);
}
