/* Unit tests for operator/shared (the namespace's shared workloads and the mode-switch
 * plan, a Shared pipeline's status) and the pure parts of operator/bufstate (the lastflush
 * record, flush facts). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bufstate.h"
#include "shared.h"
#include "status.h"

static const op_defaults defaults = {
    .kafka_bootstrap = "kafka:9092", .replication_factor = 3,
    .redis_sentinels = "s1:26379,s2:26379", .redis_master = "formpipe", .redis_min_replicas_ack = 1,
    .redis_password = {"redis-auth", "password"}, .google_credentials = {"google-sa", "key.json"},
    .sheets_api_url = "http://sheets", .image_ingest = "img/ingest:1", .image_consumer = "img/consumer:1",
    .image_flush = "img/flush:1", .image_pull_policy = "IfNotPresent", .log_level = "info",
};

static const op_shared_config config = {
    .ingest_replicas = 3, .ingest_rate_limit = 20, .ingest_rate_burst = 40, .consumer_max_replicas = 10, .consumer_lag_per_replica = 1000,
    .flush_schedule = "*/2 * * * *", .flush_writes_per_minute = 60, .flush_deadline_s = 300, .switch_delay_ms = 90000,
};

/* ---- the mode-switch plan ---- */

#define ALL 0x1ffu   /* every child of a dedicated pipeline (OP_CHILD_COUNT bits) */
#define INGRESS (1u << OP_CHILD_INGEST_INGRESS)
#define INGEST_SIDE ((1u << OP_CHILD_CONFIGMAP) | (1u << OP_CHILD_INGEST_DEPLOYMENT) | (1u << OP_CHILD_INGEST_SERVICE) | \
                     (1u << OP_CHILD_INGEST_PDB) | (1u << OP_CHILD_INGEST_HPA) | INGRESS)

struct plan_case {
    op_mode_facts f;
    unsigned children;
    int ingress_shared, consumer_shared, now_shared;
    const char *phase;
};

static struct plan_case plans[] = {
    /* want, now, in_forms, delay_passed, shared_ingest_ok, dedicated_ingest_ok, own_ingest_draining */
    {{0, 0, 0, 0, 0, 1, 0}, ALL, 0, 0, 0, "Dedicated"},
    {{0, 0, 1, 1, 1, 1, 0}, ALL, 0, 0, 0, "Dedicated"},           /* other pipelines' shared workloads change nothing */
    {{1, 1, 1, 0, 0, 0, 0}, INGRESS, 1, 1, 1, "Shared"},
    {{1, 1, 0, 0, 0, 0, 0}, INGRESS, 1, 1, 1, "Shared"},          /* a new Shared pipeline: its form is on its way */
    /* Dedicated -> Shared */
    {{1, 0, 0, 0, 1, 1, 1}, ALL, 0, 0, 0, "SwitchingToShared"},   /* the form is not in the ConfigMap yet: nothing moves */
    {{1, 0, 1, 0, 1, 1, 1}, INGEST_SIDE, 0, 1, 0, "SwitchingToShared"},   /* consumer + flush go at once */
    {{1, 0, 1, 1, 0, 1, 1}, INGEST_SIDE, 0, 1, 0, "SwitchingToShared"},   /* the shared ingest is not available */
    {{1, 0, 1, 1, 1, 1, 1}, INGEST_SIDE, 1, 1, 1, "Shared"},   /* the Ingress moves, its own ingest drains */
    {{1, 1, 1, 1, 1, 1, 1}, INGEST_SIDE, 1, 1, 1, "Shared"},   /* ... for the switch delay */
    {{1, 1, 1, 1, 1, 1, 0}, INGRESS, 1, 1, 1, "Shared"},       /* then it goes */
    /* Shared -> Dedicated */
    {{0, 1, 1, 1, 1, 0, 0}, ALL, 1, 0, 1, "SwitchingToDedicated"},   /* its own first; the Ingress stays */
    {{0, 1, 1, 1, 1, 1, 0}, ALL, 0, 0, 0, "Dedicated"},              /* its ingest serves: the Ingress moves back */
};

ParameterizedTestParameters(shared, plan)
{
    return cr_make_param_array(struct plan_case, plans, sizeof plans / sizeof plans[0]);
}

ParameterizedTest(struct plan_case *c, shared, plan)
{
    op_mode_plan p;
    op_shared_plan(&c->f, &p);
    const op_mode_facts *f = &c->f;
    cr_assert_eq(p.children, c->children, "children %#x, want %#x (facts %d%d%d%d%d%d%d)", p.children, c->children,
                 f->want_shared, f->now_shared, f->in_forms, f->delay_passed, f->shared_ingest_ok, f->dedicated_ingest_ok,
                 f->own_ingest_draining);
    cr_assert_eq(p.ingress_shared, c->ingress_shared, "ingress_shared");
    cr_assert_eq(p.consumer_shared, c->consumer_shared, "consumer_shared");
    cr_assert_eq(p.now_shared, c->now_shared, "now_shared");
    cr_assert_str_eq(p.phase, c->phase);
}

/* ---- membership of the ConfigMap ---- */

struct member_case { const char *members, *left_out, *name; int want; };

static struct member_case members[] = {
    {"a,b,c", "", "b", 1},
    {"a,b,c", "", "d", 0},
    {"ab,abc", "", "a", 0},          /* whole names only */
    {"alpha", "beta,gamma", "gamma", -1},
    {"", "", "a", 0},
    {NULL, NULL, "a", 0},            /* no annotations: a ConfigMap of someone else */
};

ParameterizedTestParameters(shared, membership)
{
    return cr_make_param_array(struct member_case, members, sizeof members / sizeof members[0]);
}

ParameterizedTest(struct member_case *c, shared, membership)
{
    cJSON *cm = cJSON_CreateObject();
    cJSON *ann = cJSON_AddObjectToObject(cJSON_AddObjectToObject(cm, "metadata"), "annotations");
    if (c->members) {
        cJSON_AddStringToObject(ann, OP_SHARED_MEMBERS_ANNOTATION, c->members);
        cJSON_AddStringToObject(ann, OP_SHARED_LEFT_OUT_ANNOTATION, c->left_out);
    }
    cr_assert_eq(op_shared_membership(cm, c->name), c->want, "%s in %s / %s", c->name, c->members, c->left_out);
    cJSON_Delete(cm);
}

/* Which members hear of a change of the ConfigMap's listing: only those whose entry
 * changed, each once. */
struct listing_case {
    const char *before, *after, *want;
};

static struct listing_case listings[] = {
    {"", "", ""},
    {"a,b", "a,b", ""},
    {"", "a", "a"},                  /* a new member listed */
    {"a", "a,b", "b"},
    {"a,b,c", "a,c", "b"},           /* one went */
    {"a,b", "b,a", ""},              /* order alone is no change */
    {"a,b", "a,-b", "b"},            /* b left out for the ConfigMap's size */
    {"a,-b", "a,b", "b"},            /* and back in */
    {"a,-b", "a", "b"},
    {"ab", "abc", "abc,ab"},         /* whole names only */
    {"a,b", "c,d", "c,d,a,b"},
};

ParameterizedTestParameters(shared, listing_changes)
{
    return cr_make_param_array(struct listing_case, listings, sizeof listings / sizeof listings[0]);
}

ParameterizedTest(struct listing_case *c, shared, listing_changes)
{
    char *out = NULL;
    cr_assert_eq(op_shared_listing_changes(c->before, c->after, &out), 0);
    cr_expect_str_eq(out, c->want, "%s -> %s", c->before, c->after);
    free(out);
}

/* ---- the form file ---- */

#define FORM "\"form\":{\"fields\":[{\"name\":\"name\",\"type\":\"string\"}]}"

static op_pipeline *parse(const char *name, const char *spec_tail, fp_error *err)
{
    char text[4096];
    snprintf(text, sizeof text, "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"forms\",\"uid\":\"u-%s\",\"generation\":2},"
             "\"spec\":{\"mode\":\"Shared\"," FORM "%s%s}}", name, name,
             strstr(spec_tail, "\"sheets\"") ? "" : ",\"sheets\":{\"spreadsheetId\":\"S1\"}", spec_tail);
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "%s", text);
    op_pipeline *p = op_pipeline_parse(j, &defaults, err);
    cJSON_Delete(j);
    return p;
}

static const char *jstr(const cJSON *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *at = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        at = cJSON_GetObjectItemCaseSensitive(at, k);
    return cJSON_IsString(at) ? at->valuestring : cJSON_IsNumber(at) ? "number" : at ? "other" : NULL;
}

Test(shared, the_form_file_says_what_each_shared_service_needs)
{
    fp_error err = {0};
    op_pipeline *p = parse("student-data", ",\"ingest\":{\"maxBodyBytes\":1000,\"allowedOrigins\":[\"https://a.example\"]},"
                           "\"sheets\":{\"spreadsheetId\":\"S1\",\"spreadsheetIds\":[\"S2\"],\"sheet\":\"Tab\",\"batchRows\":50,"
                           "\"credentialsSecret\":{\"name\":\"sa-2\",\"key\":\"k.json\"}}", &err);
    cr_assert_not_null(p, "%s", err.msg);
    cr_assert_eq(p->shared, 1);
    char *text = op_shared_form(p, 1);
    cJSON *f = cJSON_Parse(text);
    cr_assert_not_null(f);
    cr_assert_str_eq(jstr(f, "name"), "student-data");
    cr_assert_str_eq(jstr(f, "topic"), "forms.forms.student-data");
    cr_assert_str_eq(jstr(f, "shared.group"), "formpipe.forms.formpipe-shared");
    cr_assert_str_eq(jstr(f, "shared.dedicatedGroup"), "formpipe.forms.student-data");
    cr_assert_str_eq(jstr(f, "shared.dlqTopic"), "forms.forms.student-data.dlq");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(f, "shared"), "ingest"), "maxBodyBytes")->valuedouble, 1000);
    char *origins = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(f, "shared"), "ingest"), "allowedOrigins"));
    cr_assert_str_eq(origins, "[\"https://a.example\"]");
    char *ids = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(f, "shared"), "sheets"), "spreadsheetIds"));
    cr_assert_str_eq(ids, "[\"S1\",\"S2\"]");
    cr_assert_str_eq(jstr(f, "shared.sheets.sheet"), "Tab");
    cr_assert_str_eq(jstr(f, "shared.sheets.credentials"), "sa-2/k.json");
    free(origins);
    free(ids);
    free(text);
    cJSON_Delete(f);
    op_pipeline_free(p);
}

Test(shared, a_pipeline_whose_tab_another_writes_has_no_sheets_so_the_flush_leaves_it)
{
    fp_error err = {0};
    op_pipeline *p = parse("second", "", &err);
    cr_assert_not_null(p, "%s", err.msg);
    char *text = op_shared_form(p, 0);
    cJSON *f = cJSON_Parse(text);
    cr_assert_str_eq(jstr(f, "shared.group"), "formpipe.forms.formpipe-shared", "still served and consumed");
    cr_assert_null(jstr(f, "shared.sheets"), "not flushed");
    free(text);
    cJSON_Delete(f);
    op_pipeline_free(p);
}

/* What mode: Shared refuses in the operator too (the CRD's CEL rules say the same). */
struct refusal { const char *spec_tail, *field; };

static struct refusal refusals[] = {
    {",\"kafka\":{\"bootstrapServers\":\"k:9092\"}", "spec.kafka.bootstrapServers"},
    {",\"kafka\":{\"configSecret\":{\"name\":\"c\"}}", "spec.kafka.configSecret"},
    {",\"redis\":{\"masterName\":\"m\"}", "spec.redis"},
    {",\"ingest\":{\"pod\":{}}", "spec.ingest.pod"},
    {",\"ingest\":{\"autoscaling\":{\"maxReplicas\":3,\"requestsPerSecond\":5}}", "spec.ingest.autoscaling"},
    {",\"consumer\":{\"pod\":{}}", "spec.consumer.pod"},
};

ParameterizedTestParameters(shared, refusals)
{
    return cr_make_param_array(struct refusal, refusals, sizeof refusals / sizeof refusals[0]);
}

ParameterizedTest(struct refusal *c, shared, refusals)
{
    fp_error err = {0};
    op_pipeline *p = parse("x", c->spec_tail, &err);
    cr_assert_null(p, "%s accepted", c->spec_tail);
    cr_assert_eq(err.code, FP_EINVAL);
    cr_assert(strstr(err.msg, c->field) && strstr(err.msg, "use mode: Dedicated"), "%s", err.msg);
}

/* ---- the shared objects ---- */

static op_shared_set three_members(void)
{
    op_shared_set s;
    op_shared_set_init(&s, "forms");
    cr_assert_eq(op_shared_set_add(&s, "gamma", "{\"g\":1}", "sa-2", "key.json"), 0);
    cr_assert_eq(op_shared_set_add(&s, "alpha", "{\"a\":1}", "google-sa", "key.json"), 0);
    cr_assert_eq(op_shared_set_add(&s, "beta", "{\"b\":1}", "google-sa", "key.json"), 0);
    cr_assert_eq(op_shared_set_add(&s, "delta", "{\"d\":1}", "google-sa", "other.json"), 0);
    op_shared_set_fit(&s);
    return s;
}

/* The object's labels say it is a shared one, managed by formpipe, owned by nobody. */
static void expect_shared_metadata(const cJSON *o, const char *name)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    cr_assert_str_eq(jstr(md, "name"), name);
    cr_assert_str_eq(jstr(md, "namespace"), "forms");
    cr_assert(op_shared_owned(o), "%s is recognised as ours", name);
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(md, "ownerReferences"), "%s outlives any one pipeline", name);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(labels, "app.kubernetes.io/instance")), "formpipe-shared");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(labels, "formpipe.io/pipeline"));
}

Test(shared, every_object_is_labelled_shared_and_has_no_owner)
{
    op_shared_set s = three_members();
    for (int k = 0; k < OP_SHARED_COUNT; k++) {
        cJSON *o = op_shared_build(&s, &defaults, &config, (op_shared_kind)k);
        cr_assert_not_null(o);
        expect_shared_metadata(o, op_shared_types[k].name);
        cJSON_Delete(o);
    }
    op_shared_set_clear(&s);
}

Test(shared, configmap_holds_one_file_per_member_and_lists_them)
{
    op_shared_set s = three_members();
    cJSON *cm = op_shared_build(&s, &defaults, &config, OP_SHARED_CONFIGMAP);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cm, "data"), *it;
    char keys[256] = "";
    cJSON_ArrayForEach(it, data)
        snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s ", it->string);
    cr_assert_str_eq(keys, "alpha.json beta.json delta.json gamma.json ");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(data, "gamma.json")->valuestring, "{\"g\":1}");
    cr_assert_eq(op_shared_membership(cm, "delta"), 1);
    cr_assert_eq(op_shared_membership(cm, "epsilon"), 0);
    cJSON_Delete(cm);
    op_shared_set_clear(&s);
}

Test(shared, members_beyond_the_configmap_limit_are_left_out_and_listed)
{
    op_shared_set s;
    op_shared_set_init(&s, "forms");
    size_t big = OP_SHARED_DATA_MAX / 3;
    char *form = malloc(big + 1);
    memset(form, 'x', big);
    form[big] = 0;
    const char *names[] = {"d", "b", "a", "c"};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(op_shared_set_add(&s, names[i], form, "sa", "key.json"), 0);
    free(form);
    op_shared_set_fit(&s);
    cr_assert_eq(s.n_in, 2, "two thirds-of-the-limit forms fit, a third would not (metadata)");
    cr_assert_str_eq(s.m[0].name, "a");
    cJSON *cm = op_shared_build(&s, &defaults, &config, OP_SHARED_CONFIGMAP);
    cr_assert_eq(op_shared_membership(cm, "b"), 1);
    cr_assert_eq(op_shared_membership(cm, "c"), -1);
    cr_assert_eq(op_shared_membership(cm, "d"), -1);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cm, "data")), 2);
    cJSON_Delete(cm);
    op_shared_set_clear(&s);
}

/* The args of the first container of a pod template under path ("spec.template.spec"). */
static char *args_of(const cJSON *o, int cronjob)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    if (cronjob)
        spec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "jobTemplate"), "spec");
    const cJSON *pod = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "template"), "spec");
    return cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pod, "containers"), 0), "args"));
}

struct args_case { op_shared_kind kind; int cronjob; const char *want; };

static struct args_case args_cases[] = {
    {OP_SHARED_INGEST_DEPLOYMENT, 0,
     "[\"--forms-dir=/etc/formpipe/forms\",\"--port=8080\",\"--max-body-bytes=16777216\",\"--rate-limit=20\",\"--rate-burst=40\",\"--admin-port=9090\"]"},
    {OP_SHARED_CONSUMER_DEPLOYMENT, 0,
     "[\"--forms-dir=/etc/formpipe/forms\",\"--group=formpipe.forms.formpipe-shared\",\"--admin-port=9090\","
     "\"--redis-sentinels=s1:26379,s2:26379\",\"--redis-master=formpipe\",\"--min-replicas-ack=1\","
     "\"--redis-password-file=/etc/formpipe/redis/password\"]"},
    {OP_SHARED_FLUSH_CRONJOB, 1,
     "[\"--forms-dir=/etc/formpipe/forms\",\"--credentials-dir=/etc/formpipe/credentials\",\"--writes-per-minute=60\","
     "\"--termination-log=/dev/termination-log\",\"--max-run-time=270s\",\"--sheets-api-url=http://sheets\",\"--sheets-allow-http\","
     "\"--redis-sentinels=s1:26379,s2:26379\",\"--redis-master=formpipe\",\"--min-replicas-ack=1\","
     "\"--redis-password-file=/etc/formpipe/redis/password\"]"},
};

/* ---- a flush pod's Sheets API flags ---- */

struct sheets_api_case {
    const char *url;
    const char *want;
};

static struct sheets_api_case sheets_api_cases[] = {
    {"", "[]"},                                                                       /* the real API */
    {"https://sheets.example", "[\"--sheets-api-url=https://sheets.example\"]"},
    {"http://127.0.0.1:29500", "[\"--sheets-api-url=http://127.0.0.1:29500\"]"},      /* loopback: allowed anyway */
    {"http://10.229.0.1:29500", "[\"--sheets-api-url=http://10.229.0.1:29500\",\"--sheets-allow-http\"]"},
    {"HTTP://emulator.test", "[\"--sheets-api-url=HTTP://emulator.test\",\"--sheets-allow-http\"]"},
};

ParameterizedTestParameters(shared, sheets_api_args)
{
    return cr_make_param_array(struct sheets_api_case, sheets_api_cases,
                               sizeof sheets_api_cases / sizeof sheets_api_cases[0]);
}

ParameterizedTest(struct sheets_api_case *c, shared, sheets_api_args)
{
    cJSON *args = cJSON_CreateArray();
    op_child_sheets_api_args(args, c->url);
    char *got = cJSON_PrintUnformatted(args);
    cr_assert_str_eq(got, c->want, "url %s", c->url);
    free(got);
    cJSON_Delete(args);
}

ParameterizedTestParameters(shared, args)
{
    return cr_make_param_array(struct args_case, args_cases, sizeof args_cases / sizeof args_cases[0]);
}

ParameterizedTest(struct args_case *c, shared, args)
{
    op_shared_set s = three_members();
    cJSON *o = op_shared_build(&s, &defaults, &config, c->kind);
    char *args = args_of(o, c->cronjob);
    cr_assert_str_eq(args, c->want);
    free(args);
    cJSON_Delete(o);
    op_shared_set_clear(&s);
}

Test(shared, flush_mounts_each_credentials_secret_once_with_the_keys_members_name)
{
    op_shared_set s = three_members();
    s.suspended = 1;
    cJSON *cj = op_shared_build(&s, &defaults, &config, OP_SHARED_FLUSH_CRONJOB);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(cj, "spec");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "suspend")));
    cr_assert(op_shared_idle(cj), "the suspension is also in metadata (the operator's cache strips spec)");
    cr_assert_str_eq(jstr(spec, "schedule"), "*/2 * * * *");
    const cJSON *pod = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "jobTemplate"), "spec"), "template"), "spec");
    const cJSON *v, *cred = NULL;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(pod, "volumes"))
        if (strcmp(jstr(v, "name"), "credentials") == 0)
            cred = v;
    cr_assert_not_null(cred);
    char *sources = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cred, "projected"), "sources"));
    cr_assert_str_eq(sources, "[{\"secret\":{\"name\":\"google-sa\",\"items\":[{\"key\":\"key.json\",\"path\":\"google-sa/key.json\"},"
                              "{\"key\":\"other.json\",\"path\":\"google-sa/other.json\"}]}},"
                              "{\"secret\":{\"name\":\"sa-2\",\"items\":[{\"key\":\"key.json\",\"path\":\"sa-2/key.json\"}]}}]");
    free(sources);
    cJSON_Delete(cj);
    op_shared_set_clear(&s);
}

Test(shared, pods_mount_the_whole_configmap_so_new_forms_arrive_without_a_restart)
{
    op_shared_set s = three_members();
    s.consumer_replicas = 4;
    cJSON *d = op_shared_build(&s, &defaults, &config, OP_SHARED_CONSUMER_DEPLOYMENT);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "spec"), "replicas")->valuedouble, 4);
    char *before = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "spec"), "template"));
    cr_assert(strstr(before, "{\"name\":\"forms\",\"configMap\":{\"name\":\"formpipe-shared-forms\"}}"), "%s", before);
    cr_assert_null(strstr(before, "subPath"), "a subPath mount never sees updates");
    cJSON_Delete(d);
    /* a member more: the pod template is the same */
    cr_assert_eq(op_shared_set_add(&s, "epsilon", "{}", "sa-9", "key.json"), 0);
    op_shared_set_fit(&s);
    d = op_shared_build(&s, &defaults, &config, OP_SHARED_CONSUMER_DEPLOYMENT);
    char *after = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "spec"), "template"));
    cr_assert_str_eq(after, before);
    free(before);
    free(after);
    cJSON_Delete(d);
    op_shared_set_clear(&s);
}

/* ---- bufstate: the lastflush record and the facts status reads ---- */

struct lastflush_case {
    const char *kv[16];
    size_t npairs;
    int present, exit_code;
    long long rows, rows_left, finished_ms;
    const char *error;
};

static struct lastflush_case lastflush_cases[] = {
    {{NULL}, 0, 0, -1, -1, -1, -1, ""},
    {{"finished_ms", "1700000000000", "rows", "500", "rows_left", "20", "exit", "0", "error", ""}, 5, 1, 0, 500, 20,
     1700000000000LL, ""},
    {{"exit", "75", "error", "Sheets answered 503", "rows", "0"}, 3, 1, 75, 0, -1, -1, "Sheets answered 503"},
    {{"unknown", "x", "exit", "1"}, 2, 1, 1, -1, -1, -1, ""},
};

ParameterizedTestParameters(bufstate, lastflush)
{
    return cr_make_param_array(struct lastflush_case, lastflush_cases, sizeof lastflush_cases / sizeof lastflush_cases[0]);
}

ParameterizedTest(struct lastflush_case *c, bufstate, lastflush)
{
    op_lastflush l;
    op_bufstate_lastflush(c->kv, c->npairs, &l);
    cr_assert_eq(l.present, c->present);
    cr_assert_eq(l.exit_code, c->exit_code);
    cr_assert_eq(l.rows, c->rows);
    cr_assert_eq(l.rows_left, c->rows_left);
    cr_assert_eq(l.finished_ms, c->finished_ms);
    cr_assert_str_eq(l.error, c->error);
}

Test(bufstate, failures_in_a_row_count_new_records_only)
{
    op_flush_history h = {0};
    op_flush_facts f;
    op_buffer b = {.pending = 3, .oldest_ms = 1000};
    op_bufstate_facts(&b, &h, &f);
    cr_assert_eq(f.runs, 0, "no record: no run yet");
    cr_assert_eq(f.rows_waiting, 3);
    cr_assert_eq(f.oldest_waiting_ms, 1000);
    b.last = (op_lastflush){.present = 1, .finished_ms = 10, .exit_code = 75, .rows = 0, .error = "503"};
    op_bufstate_facts(&b, &h, &f);
    op_bufstate_facts(&b, &h, &f);   /* the same record seen again is the same run */
    cr_assert_eq(f.failures_in_a_row, 1);
    cr_assert_str_eq(f.last_error, "503");
    b.last.finished_ms = 20;
    op_bufstate_facts(&b, &h, &f);
    cr_assert_eq(f.failures_in_a_row, 2);
    cr_assert_str_eq(f.last_success, "");
    b.last = (op_lastflush){.present = 1, .finished_ms = 1700000000000LL, .exit_code = 0, .rows = 7};
    b.pending = 0;
    op_bufstate_facts(&b, &h, &f);
    cr_assert_eq(f.failures_in_a_row, 0);
    cr_assert_eq(f.last_rows, 7);
    cr_assert_eq(f.oldest_waiting_ms, -1, "nothing waits");
    cr_assert_str_eq(f.last_success, "2023-11-14T22:13:20.000Z");
}

/* ---- status of a Shared pipeline ---- */

struct status_case {
    const char *mode;
    const char *note_reason;   /* NULL: the form is served */
    int ingest_ok;
    const char *ingest_status, *ingest_reason;
};

static struct status_case status_cases[] = {
    {"Shared", NULL, 1, "True", "ReplicasReady"},
    {"Shared", NULL, 0, "False", "ReplicasNotReady"},
    {"Shared", "SharedFormsFull", 1, "False", "SharedFormsFull"},   /* available pods that do not have the form */
    {"Shared", "NotInSharedForms", 1, "False", "NotInSharedForms"},
    {"Dedicated", NULL, 1, "True", "ReplicasReady"},
};

ParameterizedTestParameters(shared, status)
{
    return cr_make_param_array(struct status_case, status_cases, sizeof status_cases / sizeof status_cases[0]);
}

ParameterizedTest(struct status_case *c, shared, status)
{
    fp_error err = {0};
    op_pipeline *p = parse("x", "", &err);
    cr_assert_not_null(p, "%s", err.msg);
    op_flush_facts none = {.last_rows = -1, .rows_waiting = -1, .oldest_waiting_ms = -1};
    op_observed o = {.partitions = 3, .topic = {.type = "TopicReady", .status = 1, .reason = "TopicExists"},
                     .ingest_ok = c->ingest_ok, .ingest_ready = 2, .consumers = 1, .consumer_ready = 1,
                     .consumers_ok = 1, .cronjob_ok = 1, .lag = 0, .dead_letters = 0, .flush = &none, .conflict = "",
                     .tab_owner = "", .group = p->shared_group, .dlq_topic = p->dlq_topic, .mode = c->mode,
                     .ingest_note_reason = c->note_reason, .ingest_note = c->note_reason ? "why" : NULL};
    op_condition cond[OP_C_COUNT];
    cJSON *s = op_status_build(p, &o, NULL, "2026-12-01T10:00:00Z", cond);
    cr_assert_not_null(s);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "mode")), c->mode);
    cr_assert_eq(cond[OP_C_INGEST].status, strcmp(c->ingest_status, "True") == 0);
    cr_assert_str_eq(cond[OP_C_INGEST].reason, c->ingest_reason);
    if (c->note_reason)
        cr_assert_str_eq(cond[OP_C_READY].reason, c->note_reason, "Ready says why the form is not served");
    cJSON_Delete(s);
    op_pipeline_free(p);
}
