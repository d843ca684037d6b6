/* children.c — apply bodies for the objects a FormPipeline owns. */
#include "children.h"

#include <stdio.h>
#include <string.h>

const op_child_type op_child_types[OP_CHILD_COUNT] = {
    [OP_CHILD_CONFIGMAP] = {"ConfigMap", "v1", "/api/v1/namespaces/%s/configmaps", "/api/v1/configmaps", "form"},
    [OP_CHILD_INGEST_DEPLOYMENT] = {"Deployment", "apps/v1", "/apis/apps/v1/namespaces/%s/deployments",
                                    "/apis/apps/v1/deployments", "ingest"},
    [OP_CHILD_INGEST_SERVICE] = {"Service", "v1", "/api/v1/namespaces/%s/services", "/api/v1/services", "ingest"},
    [OP_CHILD_INGEST_INGRESS] = {"Ingress", "networking.k8s.io/v1", "/apis/networking.k8s.io/v1/namespaces/%s/ingresses",
                                 "/apis/networking.k8s.io/v1/ingresses", "ingest"},
    [OP_CHILD_CONSUMER_DEPLOYMENT] = {"Deployment", "apps/v1", "/apis/apps/v1/namespaces/%s/deployments",
                                      "/apis/apps/v1/deployments", "consumer"},
    [OP_CHILD_FLUSH_CRONJOB] = {"CronJob", "batch/v1", "/apis/batch/v1/namespaces/%s/cronjobs",
                                "/apis/batch/v1/cronjobs", "flush"},
    [OP_CHILD_INGEST_PDB] = {"PodDisruptionBudget", "policy/v1", "/apis/policy/v1/namespaces/%s/poddisruptionbudgets",
                             "/apis/policy/v1/poddisruptionbudgets", "ingest"},
    [OP_CHILD_CONSUMER_PDB] = {"PodDisruptionBudget", "policy/v1", "/apis/policy/v1/namespaces/%s/poddisruptionbudgets",
                               "/apis/policy/v1/poddisruptionbudgets", "consumer"},
    [OP_CHILD_INGEST_HPA] = {"HorizontalPodAutoscaler", "autoscaling/v2",
                             "/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers",
                             "/apis/autoscaling/v2/horizontalpodautoscalers", "ingest"},
};

/* The requests-per-second metric the HPA reads per ingest pod (custom metrics API, e.g.
 * prometheus-adapter over formpipe_ingest_requests_total; docs/operator.md). */
#define RPS_METRIC "formpipe_ingest_requests_per_second"

#define FORM_DIR "/etc/formpipe/form"
#define KAFKA_DIR "/etc/formpipe/kafka"
#define REDIS_DIR "/etc/formpipe/redis"
#define GOOGLE_DIR "/var/run/secrets/formpipe/google"
#define INGEST_PORT OP_CHILD_INGEST_PORT
#define INGEST_TOKEN_DIR "/etc/formpipe/token"
#define ADMIN_PORT OP_CHILD_ADMIN_PORT

/* Small builders: each adds to o and returns the new item (NULL items are harmless:
 * cJSON ignores them and the final print fails, which callers treat as ENOMEM). */
static cJSON *obj(cJSON *o, const char *k)
{
    return cJSON_AddObjectToObject(o, k);
}

static cJSON *arr(cJSON *o, const char *k)
{
    return cJSON_AddArrayToObject(o, k);
}

static void str(cJSON *o, const char *k, const char *v)
{
    cJSON_AddStringToObject(o, k, v);
}

static void num(cJSON *o, const char *k, double v)
{
    cJSON_AddNumberToObject(o, k, v);
}

static void flag(cJSON *o, const char *k, int v)
{
    cJSON_AddBoolToObject(o, k, v);
}

static void arg(cJSON *args, const char *fmt, const char *v)
{
    char buf[1024];
    snprintf(buf, sizeof buf, fmt, v);
    cJSON_AddItemToArray(args, cJSON_CreateString(buf));
}

static void arg_int(cJSON *args, const char *fmt, long long v)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    cJSON_AddItemToArray(args, cJSON_CreateString(buf));
}

static cJSON *push_obj(cJSON *array)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(array, o);
    return o;
}

static void labels(cJSON *o, const op_pipeline *p, const char *component, int selector_only)
{
    char name[64];
    snprintf(name, sizeof name, "formpipe-%s", component);
    str(o, "app.kubernetes.io/name", name);
    str(o, "app.kubernetes.io/instance", p->name);
    str(o, "app.kubernetes.io/component", component);
    if (selector_only)
        return;
    str(o, "app.kubernetes.io/part-of", "formpipe");
    str(o, "app.kubernetes.io/managed-by", "formpipe-operator");
    str(o, "formpipe.io/pipeline", p->name);
}

/* apiVersion, kind, metadata (name, namespace, labels, ownerReferences). */
static cJSON *skeleton(const op_pipeline *p, op_child_kind kind, const char *component)
{
    const op_child_type *t = &op_child_types[kind];
    cJSON *o = cJSON_CreateObject();
    char name[128];
    op_pipeline_child(p, t->suffix, name, sizeof name);
    str(o, "apiVersion", t->api_version);
    str(o, "kind", t->kind);
    cJSON *md = obj(o, "metadata");
    str(md, "name", name);
    str(md, "namespace", p->ns);
    labels(obj(md, "labels"), p, component, 0);
    cJSON *ref = push_obj(arr(md, "ownerReferences"));
    str(ref, "apiVersion", OP_API_VERSION);
    str(ref, "kind", OP_KIND);
    str(ref, "name", p->name);
    str(ref, "uid", p->uid);
    flag(ref, "controller", 1);
    flag(ref, "blockOwnerDeletion", 1);
    return o;
}

void op_child_env(cJSON *env, const char *name, const char *value)
{
    cJSON *e = push_obj(env);
    str(e, "name", name);
    str(e, "value", value);
}

void op_child_secret_volume(cJSON *volumes, cJSON *mounts, const char *vol, const op_secret_ref *ref,
                            const char *path_in_volume, const char *dir)
{
    cJSON *v = push_obj(volumes);
    str(v, "name", vol);
    cJSON *s = obj(v, "secret");
    str(s, "secretName", ref->name);
    num(s, "defaultMode", 0440);
    cJSON *item = push_obj(arr(s, "items"));
    str(item, "key", ref->key);
    str(item, "path", path_in_volume);
    cJSON *m = push_obj(mounts);
    str(m, "name", vol);
    str(m, "mountPath", dir);
    flag(m, "readOnly", 1);
}

static void probe(cJSON *c, const char *k, const char *path, const char *port, int period)
{
    cJSON *pr = obj(c, k);
    cJSON *get = obj(pr, "httpGet");
    str(get, "path", path);
    str(get, "port", port);
    num(pr, "periodSeconds", period);
    num(pr, "timeoutSeconds", 2);
    num(pr, "failureThreshold", 3);
}

void op_child_served_port(cJSON *c, const char *name, int number)
{
    cJSON *port = push_obj(arr(c, "ports"));
    str(port, "name", name);
    num(port, "containerPort", number);
    str(port, "protocol", "TCP");
    probe(c, "readinessProbe", "/readyz", name, 5);
    probe(c, "livenessProbe", "/healthz", name, 10);
}

void op_child_resources(cJSON *c, const char *cpu, const char *mem_request, const char *mem_limit)
{
    cJSON *r = obj(c, "resources");
    cJSON *req = obj(r, "requests");
    str(req, "cpu", cpu);
    str(req, "memory", mem_request);
    str(obj(r, "limits"), "memory", mem_limit);
}

void op_child_pod(cJSON *podspec, const char *container, const char *image, const op_defaults *d, op_pod_parts *out)
{
    flag(podspec, "automountServiceAccountToken", 0);
    flag(podspec, "enableServiceLinks", 0);
    cJSON *psc = obj(podspec, "securityContext");
    flag(psc, "runAsNonRoot", 1);
    num(psc, "runAsUser", 65532);
    num(psc, "runAsGroup", 65532);
    num(psc, "fsGroup", 65532);
    str(obj(psc, "seccompProfile"), "type", "RuntimeDefault");
    cJSON *c = push_obj(arr(podspec, "containers"));
    str(c, "name", container);
    str(c, "image", image);
    str(c, "imagePullPolicy", d->image_pull_policy);
    cJSON *sc = obj(c, "securityContext");
    flag(sc, "allowPrivilegeEscalation", 0);
    flag(sc, "readOnlyRootFilesystem", 1);
    flag(sc, "runAsNonRoot", 1);
    cJSON *drop = arr(obj(sc, "capabilities"), "drop");
    cJSON_AddItemToArray(drop, cJSON_CreateString("ALL"));
    out->container = c;
    out->args = arr(c, "args");
    out->env = arr(c, "env");
    out->mounts = arr(c, "volumeMounts");
    out->volumes = arr(podspec, "volumes");
    op_child_env(out->env, "FORMPIPE_LOG_LEVEL", d->log_level);
}

/* Pod spec shared by the pipeline's workloads: op_child_pod, the form volume and the
 * component's pod settings (tmd: the template's metadata); returns the container and
 * hands back its args, env, mounts and the pod's volumes. */
static cJSON *pod(cJSON *tmd, cJSON *podspec, const op_pipeline *p, op_pod_component component, const char *image,
                  const op_defaults *d, cJSON **args, cJSON **env, cJSON **mounts, cJSON **volumes)
{
    op_pod_parts pp;
    const char *container = op_pod_component_names[component];
    op_child_pod(podspec, container, image, d, &pp);
    cJSON *selector = cJSON_CreateObject();
    labels(selector, p, container, 1);
    op_podspec_apply(p->pods[component], tmd, podspec, pp.container, selector);
    cJSON_Delete(selector);
    *args = pp.args;
    *env = pp.env;
    *mounts = pp.mounts;
    *volumes = pp.volumes;

    char cm[128];
    op_pipeline_child(p, "form", cm, sizeof cm);
    cJSON *v = push_obj(*volumes);
    str(v, "name", "form");
    str(obj(v, "configMap"), "name", cm);
    cJSON *m = push_obj(*mounts);
    str(m, "name", "form");
    str(m, "mountPath", FORM_DIR);
    flag(m, "readOnly", 1);
    arg(*args, "--form=%s", FORM_DIR "/form.json");
    return pp.container;
}

void op_child_kafka_settings(const op_pod_parts *pp, const op_pipeline *p, const char *config_env)
{
    op_child_env(pp->env, "FORMPIPE_KAFKA_BOOTSTRAP", p->kafka_bootstrap);
    if (p->kafka_config.name) {
        op_child_secret_volume(pp->volumes, pp->mounts, "kafka-config", &p->kafka_config, "client.properties", KAFKA_DIR);
        if (config_env)
            op_child_env(pp->env, config_env, KAFKA_DIR "/client.properties");
        else
            arg(pp->args, "--kafka-config=%s", KAFKA_DIR "/client.properties");
    }
}

static void kafka_settings(cJSON *args, cJSON *env, cJSON *mounts, cJSON *volumes, const op_pipeline *p)
{
    op_pod_parts pp = {.args = args, .env = env, .mounts = mounts, .volumes = volumes};
    op_child_kafka_settings(&pp, p, NULL);
}

static void redis_settings(cJSON *args, cJSON *mounts, cJSON *volumes, const op_pipeline *p)
{
    arg(args, "--redis-sentinels=%s", p->redis_sentinels);
    arg(args, "--redis-master=%s", p->redis_master);
    arg_int(args, "--min-replicas-ack=%lld", p->redis_min_replicas_ack);
    if (p->redis_password.name) {
        op_child_secret_volume(volumes, mounts, "redis-password", &p->redis_password, "password", REDIS_DIR);
        arg(args, "--redis-password-file=%s", REDIS_DIR "/password");
    }
}

void op_child_redis_settings(const op_pod_parts *pp, const op_pipeline *p)
{
    redis_settings(pp->args, pp->mounts, pp->volumes, p);
}

/* metadata + spec.selector + spec.template.metadata of a Deployment; returns the pod spec
 * and the template's metadata in *tmd. replicas < 0: left out (an HPA owns them). */
static cJSON *deployment(cJSON *o, const op_pipeline *p, const char *component, int replicas, cJSON **tmd_out)
{
    cJSON *spec = obj(o, "spec");
    if (replicas >= 0)
        num(spec, "replicas", replicas);
    num(spec, "revisionHistoryLimit", 3);
    labels(obj(obj(spec, "selector"), "matchLabels"), p, component, 1);
    cJSON *tmpl = obj(spec, "template");
    cJSON *tmd = obj(tmpl, "metadata");
    labels(obj(tmd, "labels"), p, component, 0);
    str(obj(tmd, "annotations"), OP_FORM_HASH_ANNOTATION, p->form_hash);
    *tmd_out = tmd;
    return obj(tmpl, "spec");
}

static cJSON *build_configmap(const op_pipeline *p)
{
    cJSON *o = skeleton(p, OP_CHILD_CONFIGMAP, "form");
    str(obj(o, "data"), "form.json", p->compiled_form);
    return o;
}

void op_child_ingest_common(const op_pod_parts *pp, int own_proxies, const op_defaults *d)
{
    cJSON *args = pp->args, *mounts = pp->mounts, *volumes = pp->volumes;
    if (!own_proxies)
        for (size_t i = 0; d->ingest_trusted_proxies && i < d->ingest_trusted_proxies->n; i++)
            arg(args, "--trusted-proxy=%s", d->ingest_trusted_proxies->items[i]);
    if (d->ingest_token_key.name) {
        op_child_secret_volume(volumes, mounts, "token-key", &d->ingest_token_key, "token-key", INGEST_TOKEN_DIR);
        arg(args, "--token-key-file=%s", INGEST_TOKEN_DIR "/token-key");
    }
    arg_int(args, "--admin-port=%lld", ADMIN_PORT);
}

static cJSON *build_ingest(const op_pipeline *p, const op_defaults *d)
{
    cJSON *o = skeleton(p, OP_CHILD_INGEST_DEPLOYMENT, "ingest");
    cJSON *args, *env, *mounts, *volumes, *item, *tmd;
    cJSON *ps = deployment(o, p, "ingest", p->autoscale ? -1 : p->ingest_replicas, &tmd);
    cJSON *c = pod(tmd, ps, p, OP_POD_INGEST, d->image_ingest, d, &args, &env, &mounts, &volumes);
    arg_int(args, "--port=%lld", INGEST_PORT);
    arg_int(args, "--max-body-bytes=%lld", p->max_body_bytes);
    arg_int(args, "--rate-limit=%lld", p->rate_limit);
    arg_int(args, "--rate-burst=%lld", p->rate_burst);
    arg_int(args, "--max-connections=%lld", p->max_connections);
    arg_int(args, "--max-header-bytes=%lld", p->max_header_bytes);
    arg_int(args, "--idle-timeout=%lld", p->idle_timeout_s);
    cJSON_ArrayForEach(item, p->allowed_origins)
        if (cJSON_IsString(item))
            arg(args, "--allowed-origin=%s", item->valuestring);
    cJSON_ArrayForEach(item, p->trusted_proxies)
        if (cJSON_IsString(item))
            arg(args, "--trusted-proxy=%s", item->valuestring);
    op_pod_parts pp = {.args = args, .env = env, .mounts = mounts, .volumes = volumes};
    op_child_ingest_common(&pp, cJSON_GetArraySize(p->trusted_proxies) > 0, d);
    kafka_settings(args, env, mounts, volumes, p);
    op_child_served_port(c, "http", INGEST_PORT);
    cJSON *admin = push_obj(cJSON_GetObjectItemCaseSensitive(c, "ports"));   /* /metrics: the Ingress routes only "http" */
    str(admin, "name", "admin");
    num(admin, "containerPort", ADMIN_PORT);
    str(admin, "protocol", "TCP");
    return o;
}

static cJSON *build_service(const op_pipeline *p)
{
    cJSON *o = skeleton(p, OP_CHILD_INGEST_SERVICE, "ingest");
    cJSON *spec = obj(o, "spec");
    str(spec, "type", "ClusterIP");
    labels(obj(spec, "selector"), p, "ingest", 1);
    cJSON *port = push_obj(arr(spec, "ports"));
    str(port, "name", "http");
    num(port, "port", 80);
    str(port, "targetPort", "http");
    str(port, "protocol", "TCP");
    return o;
}

static cJSON *build_ingress(const op_pipeline *p)
{
    cJSON *o = skeleton(p, OP_CHILD_INGEST_INGRESS, "ingest");
    cJSON *spec = obj(o, "spec");
    if (p->ingress_class)
        str(spec, "ingressClassName", p->ingress_class);
    cJSON *rule = push_obj(arr(spec, "rules"));
    if (p->host)
        str(rule, "host", p->host);
    cJSON *path = push_obj(arr(obj(rule, "http"), "paths"));
    char prefix[128], svc[128];
    snprintf(prefix, sizeof prefix, "/forms/%s", p->name);
    if (p->ingress_shared)   /* the namespace's shared ingest serves the form */
        snprintf(svc, sizeof svc, "%s-ingest", OP_SHARED_NAME);
    else
        op_pipeline_child(p, "ingest", svc, sizeof svc);
    str(path, "path", prefix);
    str(path, "pathType", "Prefix");
    cJSON *service = obj(obj(path, "backend"), "service");
    str(service, "name", svc);
    num(obj(service, "port"), "number", 80);
    if (p->tls_secret) {
        cJSON *tls = push_obj(arr(spec, "tls"));
        if (p->host)
            cJSON_AddItemToArray(arr(tls, "hosts"), cJSON_CreateString(p->host));
        str(tls, "secretName", p->tls_secret);
    }
    return o;
}

static cJSON *build_consumer(const op_pipeline *p, const op_defaults *d, int replicas)
{
    cJSON *o = skeleton(p, OP_CHILD_CONSUMER_DEPLOYMENT, "consumer");
    cJSON *args, *env, *mounts, *volumes, *tmd;
    cJSON *ps = deployment(o, p, "consumer", replicas, &tmd);
    cJSON *c = pod(tmd, ps, p, OP_POD_CONSUMER, d->image_consumer, d, &args, &env, &mounts, &volumes);
    arg(args, "--topic=%s", p->topic);
    /* a partition its group never committed starts where the shared group got to (a
     * switch from mode: Shared loses and repeats nothing) */
    arg(args, "--previous-group=%s", p->shared_group);
    arg_int(args, "--admin-port=%lld", ADMIN_PORT);
    kafka_settings(args, env, mounts, volumes, p);
    redis_settings(args, mounts, volumes, p);
    op_child_served_port(c, "admin", ADMIN_PORT);
    return o;
}

static cJSON *build_cronjob(const op_pipeline *p, const op_defaults *d)
{
    cJSON *o = skeleton(p, OP_CHILD_FLUSH_CRONJOB, "flush");
    cJSON *spec = obj(o, "spec");
    str(spec, "schedule", p->schedule);
    str(spec, "concurrencyPolicy", "Forbid");
    flag(spec, "suspend", p->flush_suspended);
    num(spec, "startingDeadlineSeconds", 60);
    num(spec, "successfulJobsHistoryLimit", 3);
    /* the runs of failed Jobs stay readable for maxFailedRuns (flushruns.h) */
    num(spec, "failedJobsHistoryLimit", p->max_failed_runs > 3 ? p->max_failed_runs : 3);
    cJSON *jobspec = obj(obj(spec, "jobTemplate"), "spec");
    num(jobspec, "backoffLimit", 1);
    num(jobspec, "activeDeadlineSeconds", (double)p->flush_deadline_s);
    cJSON *tmpl = obj(jobspec, "template");
    cJSON *tmd = obj(tmpl, "metadata");
    labels(obj(tmd, "labels"), p, "flush", 0);
    cJSON *podspec = obj(tmpl, "spec");
    str(podspec, "restartPolicy", "Never");
    cJSON *args, *env, *mounts, *volumes;
    cJSON *c = pod(tmd, podspec, p, OP_POD_FLUSH, d->image_flush, d, &args, &env, &mounts, &volumes);
    arg(args, "--spreadsheet-id=%s", p->spreadsheet_id);
    cJSON *more;
    cJSON_ArrayForEach(more, p->more_spreadsheets)
        if (cJSON_IsString(more))
            arg(args, "--spreadsheet-id=%s", more->valuestring);
    arg(args, "--sheet=%s", p->sheet);
    /* the run's summary is its termination message: the operator reads each run's outcome */
    arg(args, "--termination-log=%s", "/dev/termination-log");
    str(c, "terminationMessagePath", "/dev/termination-log");
    str(c, "terminationMessagePolicy", "FallbackToLogsOnError");
    arg_int(args, "--batch-rows=%lld", p->batch_rows);
    /* stop starting batches well before the Job's deadline kills the pod */
    arg_int(args, "--max-run-time=%llds", p->flush_deadline_s > 60 ? p->flush_deadline_s - 30 : p->flush_deadline_s / 2);
    if (d->sheets_api_url && *d->sheets_api_url)
        arg(args, "--sheets-api-url=%s", d->sheets_api_url);
    op_child_secret_volume(volumes, mounts, "google-credentials", &p->google_credentials, "key.json", GOOGLE_DIR);
    arg(args, "--google-credentials=%s", GOOGLE_DIR "/key.json");
    redis_settings(args, mounts, volumes, p);
    return o;
}

/* At most one pod of the component down at a time by eviction (a node drain); with one
 * replica the drain may still take it (maxUnavailable, not minAvailable, never blocks). */
static cJSON *build_pdb(const op_pipeline *p, op_child_kind kind, const char *component)
{
    cJSON *o = skeleton(p, kind, component);
    cJSON *spec = obj(o, "spec");
    num(spec, "maxUnavailable", 1);
    labels(obj(obj(spec, "selector"), "matchLabels"), p, component, 1);
    return o;
}

static void hpa_metric_cpu(cJSON *metrics, int percent)
{
    cJSON *m = push_obj(metrics);
    str(m, "type", "Resource");
    cJSON *res = obj(m, "resource");
    str(res, "name", "cpu");
    cJSON *target = obj(res, "target");
    str(target, "type", "Utilization");
    num(target, "averageUtilization", percent);
}

static void hpa_metric_rps(cJSON *metrics, int rps)
{
    cJSON *m = push_obj(metrics);
    str(m, "type", "Pods");
    cJSON *pods = obj(m, "pods");
    str(obj(pods, "metric"), "name", RPS_METRIC);
    cJSON *target = obj(pods, "target");
    char v[32];
    snprintf(v, sizeof v, "%d", rps);
    str(target, "type", "AverageValue");
    str(target, "averageValue", v);
}

/* autoscaling/v2 HPA of the ingest Deployment (whose replicas we then leave out). */
static cJSON *build_hpa(const op_pipeline *p)
{
    cJSON *o = skeleton(p, OP_CHILD_INGEST_HPA, "ingest");
    cJSON *spec = obj(o, "spec");
    cJSON *ref = obj(spec, "scaleTargetRef");
    char name[128];
    op_pipeline_child(p, "ingest", name, sizeof name);
    str(ref, "apiVersion", "apps/v1");
    str(ref, "kind", "Deployment");
    str(ref, "name", name);
    num(spec, "minReplicas", p->hpa_min);
    num(spec, "maxReplicas", p->hpa_max);
    cJSON *metrics = arr(spec, "metrics");
    if (p->hpa_cpu_percent)
        hpa_metric_cpu(metrics, p->hpa_cpu_percent);
    if (p->hpa_rps)
        hpa_metric_rps(metrics, p->hpa_rps);
    return o;
}

int op_child_wanted(const op_pipeline *p, op_child_kind kind)
{
    if (p->skip_children & (1u << kind))
        return 0;
    return kind != OP_CHILD_INGEST_HPA || p->autoscale;
}

cJSON *op_child_build(const op_pipeline *p, const op_defaults *d, op_child_kind kind, int consumer_replicas)
{
    switch (kind) {
    case OP_CHILD_CONFIGMAP: return build_configmap(p);
    case OP_CHILD_INGEST_DEPLOYMENT: return build_ingest(p, d);
    case OP_CHILD_INGEST_SERVICE: return build_service(p);
    case OP_CHILD_INGEST_INGRESS: return build_ingress(p);
    case OP_CHILD_CONSUMER_DEPLOYMENT: return build_consumer(p, d, consumer_replicas);
    case OP_CHILD_FLUSH_CRONJOB: return build_cronjob(p, d);
    case OP_CHILD_INGEST_PDB: return build_pdb(p, kind, "ingest");
    case OP_CHILD_CONSUMER_PDB: return build_pdb(p, kind, "consumer");
    case OP_CHILD_INGEST_HPA: return build_hpa(p);
    default: return NULL;
    }
}

const cJSON *op_child_controller_ref(const cJSON *obj)
{
    const cJSON *ref;
    cJSON_ArrayForEach(ref, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
                                                             "ownerReferences"))
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller")))
            return ref;
    return NULL;
}

int op_child_owned_by(const cJSON *obj, const char *uid)
{
    const char *u = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op_child_controller_ref(obj), "uid"));
    return u && uid && strcmp(u, uid) == 0;
}

int op_child_owner_key(const cJSON *obj, char *out, size_t outsz)
{
    const cJSON *ref = op_child_controller_ref(obj);
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "kind"));
    const char *api = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "apiVersion"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "name"));
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "namespace"));
    if (!kind || !api || !name || !ns || strcmp(kind, OP_KIND) || strncmp(api, OP_GROUP "/", strlen(OP_GROUP) + 1))
        return -1;
    int n = snprintf(out, outsz, "%s/%s", ns, name);
    return n > 0 && (size_t)n < outsz ? 0 : -1;
}
