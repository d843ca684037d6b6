/* children.c — apply bodies for the objects a FormPipeline owns. */
#include "children.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "jsonb.h"
#include "urlpolicy.h"

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
#define KAFKA_CA_DIR "/etc/formpipe/kafka-ca"
#define REDIS_DIR "/etc/formpipe/redis"
#define REDIS_CA_DIR "/etc/formpipe/redis-ca"
#define REDIS_CLIENT_DIR "/etc/formpipe/redis-client"
#define GOOGLE_DIR "/var/run/secrets/formpipe/google"
#define INGEST_PORT OP_CHILD_INGEST_PORT
#define INGEST_TOKEN_DIR "/etc/formpipe/token"
#define ADMIN_PORT OP_CHILD_ADMIN_PORT

static void labels(cJSON *o, const op_pipeline *p, const char *component, int selector_only)
{
    char name[64];
    snprintf(name, sizeof name, "formpipe-%s", component);
    op_jb_str(o, "app.kubernetes.io/name", name);
    op_jb_str(o, "app.kubernetes.io/instance", p->name);
    op_jb_str(o, "app.kubernetes.io/component", component);
    if (selector_only)
        return;
    op_jb_str(o, "app.kubernetes.io/part-of", "formpipe");
    op_jb_str(o, "app.kubernetes.io/managed-by", "formpipe-operator");
    op_jb_str(o, "formpipe.io/pipeline", p->name);
}

/* apiVersion, kind, metadata (name, namespace, labels, ownerReferences). */
static cJSON *skeleton(const op_pipeline *p, op_child_kind kind, const char *component)
{
    const op_child_type *t = &op_child_types[kind];
    cJSON *o = cJSON_CreateObject();
    char name[128];
    op_pipeline_child(p, t->suffix, name, sizeof name);
    op_jb_str(o, "apiVersion", t->api_version);
    op_jb_str(o, "kind", t->kind);
    cJSON *md = op_jb_obj(o, "metadata");
    op_jb_str(md, "name", name);
    op_jb_str(md, "namespace", p->ns);
    labels(op_jb_obj(md, "labels"), p, component, 0);
    cJSON *ref = op_jb_push_obj(op_jb_arr(md, "ownerReferences"));
    op_jb_str(ref, "apiVersion", OP_API_VERSION);
    op_jb_str(ref, "kind", OP_KIND);
    op_jb_str(ref, "name", p->name);
    op_jb_str(ref, "uid", p->uid);
    op_jb_flag(ref, "controller", 1);
    op_jb_flag(ref, "blockOwnerDeletion", 1);
    return o;
}

void op_child_env(cJSON *env, const char *name, const char *value)
{
    cJSON *e = op_jb_push_obj(env);
    op_jb_str(e, "name", name);
    op_jb_str(e, "value", value);
}

void op_child_secret_volume(cJSON *volumes, cJSON *mounts, const char *vol, const op_secret_ref *ref,
                            const char *path_in_volume, const char *dir)
{
    op_child_secret_volume_keys(volumes, mounts, vol, ref->name, &ref->key, &path_in_volume, 1, dir);
}

void op_child_secret_volume_keys(cJSON *volumes, cJSON *mounts, const char *vol, const char *secret,
                                 const char *const *keys, const char *const *paths, size_t n, const char *dir)
{
    cJSON *v = op_jb_push_obj(volumes);
    op_jb_str(v, "name", vol);
    cJSON *s = op_jb_obj(v, "secret");
    op_jb_str(s, "secretName", secret);
    op_jb_num(s, "defaultMode", 0440);
    cJSON *items = op_jb_arr(s, "items");
    for (size_t i = 0; i < n; i++) {
        cJSON *item = op_jb_push_obj(items);
        op_jb_str(item, "key", keys[i]);
        op_jb_str(item, "path", paths[i]);
    }
    cJSON *m = op_jb_push_obj(mounts);
    op_jb_str(m, "name", vol);
    op_jb_str(m, "mountPath", dir);
    op_jb_flag(m, "readOnly", 1);
}

static void probe(cJSON *c, const char *k, const char *path, const char *port, int period)
{
    cJSON *pr = op_jb_obj(c, k);
    cJSON *get = op_jb_obj(pr, "httpGet");
    op_jb_str(get, "path", path);
    op_jb_str(get, "port", port);
    op_jb_num(pr, "periodSeconds", period);
    op_jb_num(pr, "timeoutSeconds", 2);
    op_jb_num(pr, "failureThreshold", 3);
}

void op_child_served_port(cJSON *c, const char *name, int number)
{
    cJSON *port = op_jb_push_obj(op_jb_arr(c, "ports"));
    op_jb_str(port, "name", name);
    op_jb_num(port, "containerPort", number);
    op_jb_str(port, "protocol", "TCP");
    probe(c, "readinessProbe", "/readyz", name, 5);
    probe(c, "livenessProbe", "/healthz", name, 10);
}

void op_child_admin_port(cJSON *c)
{
    cJSON *admin = op_jb_push_obj(cJSON_GetObjectItemCaseSensitive(c, "ports"));
    op_jb_str(admin, "name", "admin");
    op_jb_num(admin, "containerPort", ADMIN_PORT);
    op_jb_str(admin, "protocol", "TCP");
}

void op_child_resources(cJSON *c, const char *cpu, const char *mem_request, const char *mem_limit)
{
    cJSON *r = op_jb_obj(c, "resources");
    cJSON *req = op_jb_obj(r, "requests");
    op_jb_str(req, "cpu", cpu);
    op_jb_str(req, "memory", mem_request);
    op_jb_str(op_jb_obj(r, "limits"), "memory", mem_limit);
}

void op_child_pod(cJSON *podspec, const char *container, const char *image, const op_defaults *d, op_pod_parts *out)
{
    op_jb_flag(podspec, "automountServiceAccountToken", 0);
    op_jb_flag(podspec, "enableServiceLinks", 0);
    cJSON *psc = op_jb_obj(podspec, "securityContext");
    op_jb_flag(psc, "runAsNonRoot", 1);
    op_jb_num(psc, "runAsUser", 65532);
    op_jb_num(psc, "runAsGroup", 65532);
    op_jb_num(psc, "fsGroup", 65532);
    op_jb_str(op_jb_obj(psc, "seccompProfile"), "type", "RuntimeDefault");
    cJSON *c = op_jb_push_obj(op_jb_arr(podspec, "containers"));
    op_jb_str(c, "name", container);
    op_jb_str(c, "image", image);
    op_jb_str(c, "imagePullPolicy", d->image_pull_policy);
    cJSON *sc = op_jb_obj(c, "securityContext");
    op_jb_flag(sc, "allowPrivilegeEscalation", 0);
    op_jb_flag(sc, "readOnlyRootFilesystem", 1);
    op_jb_flag(sc, "runAsNonRoot", 1);
    cJSON *drop = op_jb_arr(op_jb_obj(sc, "capabilities"), "drop");
    cJSON_AddItemToArray(drop, cJSON_CreateString("ALL"));
    out->container = c;
    out->args = op_jb_arr(c, "args");
    out->env = op_jb_arr(c, "env");
    out->mounts = op_jb_arr(c, "volumeMounts");
    out->volumes = op_jb_arr(podspec, "volumes");
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
    cJSON *v = op_jb_push_obj(*volumes);
    op_jb_str(v, "name", "form");
    op_jb_str(op_jb_obj(v, "configMap"), "name", cm);
    cJSON *m = op_jb_push_obj(*mounts);
    op_jb_str(m, "name", "form");
    op_jb_str(m, "mountPath", FORM_DIR);
    op_jb_flag(m, "readOnly", 1);
    op_jb_argf(*args, "--form=%s", FORM_DIR "/form.json");
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
            op_jb_argf(pp->args, "--kafka-config=%s", KAFKA_DIR "/client.properties");
    }
    if (p->kafka_ca.name) {
        op_child_secret_volume(pp->volumes, pp->mounts, "kafka-ca", &p->kafka_ca, "ca.crt", KAFKA_CA_DIR);
        if (config_env)
            op_child_env(pp->env, "FORMPIPE_KAFKA_CA_FILE", KAFKA_CA_DIR "/ca.crt");
        else
            op_jb_argf(pp->args, "--kafka-property=ssl.ca.location=%s", KAFKA_CA_DIR "/ca.crt");
    }
}

static void kafka_settings(cJSON *args, cJSON *env, cJSON *mounts, cJSON *volumes, const op_pipeline *p)
{
    op_pod_parts pp = {.args = args, .env = env, .mounts = mounts, .volumes = volumes};
    op_child_kafka_settings(&pp, p, NULL);
}

static void redis_settings(cJSON *args, cJSON *mounts, cJSON *volumes, const op_pipeline *p)
{
    op_jb_argf(args, "--redis-sentinels=%s", p->redis_sentinels);
    op_jb_argf(args, "--redis-master=%s", p->redis_master);
    op_jb_argf(args, "--min-replicas-ack=%d", p->redis_min_replicas_ack);
    if (p->redis_password.name) {
        op_child_secret_volume(volumes, mounts, "redis-password", &p->redis_password, "password", REDIS_DIR);
        op_jb_argf(args, "--redis-password-file=%s", REDIS_DIR "/password");
    }
    if (p->redis_tls_ca.name) {
        op_child_secret_volume(volumes, mounts, "redis-ca", &p->redis_tls_ca, "ca.crt", REDIS_CA_DIR);
        op_jb_argf(args, "--redis-tls-ca-file=%s", REDIS_CA_DIR "/ca.crt");
    }
    if (p->redis_tls_client.name) {   /* a kubernetes.io/tls Secret */
        static const char *const keys[] = {"tls.crt", "tls.key"};
        op_child_secret_volume_keys(volumes, mounts, "redis-client", p->redis_tls_client.name, keys, keys, 2,
                                    REDIS_CLIENT_DIR);
        op_jb_argf(args, "--redis-tls-cert-file=%s", REDIS_CLIENT_DIR "/tls.crt");
        op_jb_argf(args, "--redis-tls-key-file=%s", REDIS_CLIENT_DIR "/tls.key");
    }
}

void op_child_sheets_api_args(cJSON *args, const char *sheets_api_url)
{
    if (!sheets_api_url || !*sheets_api_url)
        return;
    op_jb_argf(args, "--sheets-api-url=%s", sheets_api_url);
    if (strncasecmp(sheets_api_url, "http://", 7) == 0 && !fp_urlpolicy_loopback(sheets_api_url))
        op_jb_argf(args, "--sheets-allow-http");
}

void op_child_redis_settings(const op_pod_parts *pp, const op_pipeline *p)
{
    redis_settings(pp->args, pp->mounts, pp->volumes, p);
}

/* metadata + spec.selector + spec.template.metadata of a Deployment; returns the pod spec
 * and the template's metadata in *tmd. replicas < 0: left out (an HPA owns them). */
static cJSON *deployment(cJSON *o, const op_pipeline *p, const char *component, int replicas, cJSON **tmd_out)
{
    cJSON *spec = op_jb_obj(o, "spec");
    if (replicas >= 0)
        op_jb_num(spec, "replicas", replicas);
    op_jb_num(spec, "revisionHistoryLimit", 3);
    labels(op_jb_obj(op_jb_obj(spec, "selector"), "matchLabels"), p, component, 1);
    cJSON *tmpl = op_jb_obj(spec, "template");
    cJSON *tmd = op_jb_obj(tmpl, "metadata");
    labels(op_jb_obj(tmd, "labels"), p, component, 0);
    op_jb_str(op_jb_obj(tmd, "annotations"), OP_FORM_HASH_ANNOTATION, p->form_hash);
    *tmd_out = tmd;
    return op_jb_obj(tmpl, "spec");
}

static cJSON *build_configmap(const op_pipeline *p)
{
    cJSON *o = skeleton(p, OP_CHILD_CONFIGMAP, "form");
    op_jb_str(op_jb_obj(o, "data"), "form.json", p->compiled_form);
    return o;
}

void op_child_ingest_common(const op_pod_parts *pp, int own_proxies, const op_defaults *d)
{
    cJSON *args = pp->args, *mounts = pp->mounts, *volumes = pp->volumes;
    if (!own_proxies)
        for (size_t i = 0; d->ingest_trusted_proxies && i < d->ingest_trusted_proxies->n; i++)
            op_jb_argf(args, "--trusted-proxy=%s", d->ingest_trusted_proxies->items[i]);
    if (d->ingest_token_key.name) {
        op_child_secret_volume(volumes, mounts, "token-key", &d->ingest_token_key, "token-key", INGEST_TOKEN_DIR);
        op_jb_argf(args, "--token-key-file=%s", INGEST_TOKEN_DIR "/token-key");
    }
    op_jb_argf(args, "--admin-port=%d", ADMIN_PORT);
}

static cJSON *build_ingest(const op_pipeline *p, const op_defaults *d)
{
    cJSON *o = skeleton(p, OP_CHILD_INGEST_DEPLOYMENT, "ingest");
    cJSON *args, *env, *mounts, *volumes, *item, *tmd;
    cJSON *ps = deployment(o, p, "ingest", p->autoscale ? -1 : p->ingest_replicas, &tmd);
    cJSON *c = pod(tmd, ps, p, OP_POD_INGEST, d->image_ingest, d, &args, &env, &mounts, &volumes);
    op_jb_argf(args, "--port=%d", INGEST_PORT);
    op_jb_argf(args, "--max-body-bytes=%lld", p->max_body_bytes);
    op_jb_argf(args, "--rate-limit=%d", p->rate_limit);
    op_jb_argf(args, "--rate-burst=%d", p->rate_burst);
    op_jb_argf(args, "--max-connections=%d", p->max_connections);
    op_jb_argf(args, "--max-header-bytes=%d", p->max_header_bytes);
    op_jb_argf(args, "--idle-timeout=%d", p->idle_timeout_s);
    cJSON_ArrayForEach(item, p->allowed_origins)
        if (cJSON_IsString(item))
            op_jb_argf(args, "--allowed-origin=%s", item->valuestring);
    cJSON_ArrayForEach(item, p->trusted_proxies)
        if (cJSON_IsString(item))
            op_jb_argf(args, "--trusted-proxy=%s", item->valuestring);
    op_pod_parts pp = {.args = args, .env = env, .mounts = mounts, .volumes = volumes};
    op_child_ingest_common(&pp, cJSON_GetArraySize(p->trusted_proxies) > 0, d);
    kafka_settings(args, env, mounts, volumes, p);
    op_child_served_port(c, "http", INGEST_PORT);
    op_child_admin_port(c);
    return o;
}

static cJSON *build_service(const op_pipeline *p)
{
    cJSON *o = skeleton(p, OP_CHILD_INGEST_SERVICE, "ingest");
    cJSON *spec = op_jb_obj(o, "spec");
    op_jb_str(spec, "type", "ClusterIP");
    labels(op_jb_obj(spec, "selector"), p, "ingest", 1);
    cJSON *port = op_jb_push_obj(op_jb_arr(spec, "ports"));
    op_jb_str(port, "name", "http");
    op_jb_num(port, "port", 80);
    op_jb_str(port, "targetPort", "http");
    op_jb_str(port, "protocol", "TCP");
    return o;
}

static cJSON *build_ingress(const op_pipeline *p)
{
    cJSON *o = skeleton(p, OP_CHILD_INGEST_INGRESS, "ingest");
    cJSON *spec = op_jb_obj(o, "spec");
    if (p->ingress_class)
        op_jb_str(spec, "ingressClassName", p->ingress_class);
    cJSON *rule = op_jb_push_obj(op_jb_arr(spec, "rules"));
    if (p->host)
        op_jb_str(rule, "host", p->host);
    cJSON *path = op_jb_push_obj(op_jb_arr(op_jb_obj(rule, "http"), "paths"));
    char prefix[128], svc[128];
    snprintf(prefix, sizeof prefix, "/forms/%s", p->name);
    if (p->ingress_shared)   /* the namespace's shared ingest serves the form */
        snprintf(svc, sizeof svc, "%s-ingest", OP_SHARED_NAME);
    else
        op_pipeline_child(p, "ingest", svc, sizeof svc);
    op_jb_str(path, "path", prefix);
    op_jb_str(path, "pathType", "Prefix");
    cJSON *service = op_jb_obj(op_jb_obj(path, "backend"), "service");
    op_jb_str(service, "name", svc);
    op_jb_num(op_jb_obj(service, "port"), "number", 80);
    if (p->tls_secret) {
        cJSON *tls = op_jb_push_obj(op_jb_arr(spec, "tls"));
        if (p->host)
            cJSON_AddItemToArray(op_jb_arr(tls, "hosts"), cJSON_CreateString(p->host));
        op_jb_str(tls, "secretName", p->tls_secret);
    }
    return o;
}

static cJSON *build_consumer(const op_pipeline *p, const op_defaults *d, int replicas)
{
    cJSON *o = skeleton(p, OP_CHILD_CONSUMER_DEPLOYMENT, "consumer");
    cJSON *args, *env, *mounts, *volumes, *tmd;
    cJSON *ps = deployment(o, p, "consumer", replicas, &tmd);
    cJSON *c = pod(tmd, ps, p, OP_POD_CONSUMER, d->image_consumer, d, &args, &env, &mounts, &volumes);
    op_jb_argf(args, "--topic=%s", p->topic);
    /* a partition its group never committed starts where the shared group got to (a
     * switch from mode: Shared loses and repeats nothing) */
    op_jb_argf(args, "--previous-group=%s", p->shared_group);
    op_jb_argf(args, "--admin-port=%d", ADMIN_PORT);
    kafka_settings(args, env, mounts, volumes, p);
    redis_settings(args, mounts, volumes, p);
    op_child_served_port(c, "admin", ADMIN_PORT);
    return o;
}

static cJSON *build_cronjob(const op_pipeline *p, const op_defaults *d)
{
    cJSON *o = skeleton(p, OP_CHILD_FLUSH_CRONJOB, "flush");
    cJSON *spec = op_jb_obj(o, "spec");
    op_jb_str(spec, "schedule", p->schedule);
    op_jb_str(spec, "concurrencyPolicy", "Forbid");
    op_jb_flag(spec, "suspend", p->flush_suspended);
    op_jb_num(spec, "startingDeadlineSeconds", 60);
    op_jb_num(spec, "successfulJobsHistoryLimit", 3);
    /* the runs of failed Jobs stay readable for maxFailedRuns (flushruns.h) */
    op_jb_num(spec, "failedJobsHistoryLimit", p->max_failed_runs > 3 ? p->max_failed_runs : 3);
    cJSON *jobspec = op_jb_obj(op_jb_obj(spec, "jobTemplate"), "spec");
    op_jb_num(jobspec, "backoffLimit", 1);
    op_jb_num(jobspec, "activeDeadlineSeconds", (double)p->flush_deadline_s);
    cJSON *tmpl = op_jb_obj(jobspec, "template");
    cJSON *tmd = op_jb_obj(tmpl, "metadata");
    labels(op_jb_obj(tmd, "labels"), p, "flush", 0);
    cJSON *podspec = op_jb_obj(tmpl, "spec");
    op_jb_str(podspec, "restartPolicy", "Never");
    cJSON *args, *env, *mounts, *volumes;
    cJSON *c = pod(tmd, podspec, p, OP_POD_FLUSH, d->image_flush, d, &args, &env, &mounts, &volumes);
    op_jb_argf(args, "--spreadsheet-id=%s", p->spreadsheet_id);
    cJSON *more;
    cJSON_ArrayForEach(more, p->more_spreadsheets)
        if (cJSON_IsString(more))
            op_jb_argf(args, "--spreadsheet-id=%s", more->valuestring);
    op_jb_argf(args, "--sheet=%s", p->sheet);
    /* the run's summary is its termination message: the operator reads each run's outcome */
    op_jb_argf(args, "--termination-log=%s", "/dev/termination-log");
    op_jb_str(c, "terminationMessagePath", "/dev/termination-log");
    op_jb_str(c, "terminationMessagePolicy", "FallbackToLogsOnError");
    op_jb_argf(args, "--batch-rows=%d", p->batch_rows);
    /* stop starting batches well before the Job's deadline kills the pod */
    op_jb_argf(args, "--max-run-time=%llds", p->flush_deadline_s > 60 ? p->flush_deadline_s - 30 : p->flush_deadline_s / 2);
    op_child_sheets_api_args(args, d->sheets_api_url);
    op_child_secret_volume(volumes, mounts, "google-credentials", &p->google_credentials, "key.json", GOOGLE_DIR);
    op_jb_argf(args, "--google-credentials=%s", GOOGLE_DIR "/key.json");
    redis_settings(args, mounts, volumes, p);
    return o;
}

/* At most one pod of the component down at a time by eviction (a node drain); with one
 * replica the drain may still take it (maxUnavailable, not minAvailable, never blocks). */
static cJSON *build_pdb(const op_pipeline *p, op_child_kind kind, const char *component)
{
    cJSON *o = skeleton(p, kind, component);
    cJSON *spec = op_jb_obj(o, "spec");
    op_jb_num(spec, "maxUnavailable", 1);
    labels(op_jb_obj(op_jb_obj(spec, "selector"), "matchLabels"), p, component, 1);
    return o;
}

static void hpa_metric_cpu(cJSON *metrics, int percent)
{
    cJSON *m = op_jb_push_obj(metrics);
    op_jb_str(m, "type", "Resource");
    cJSON *res = op_jb_obj(m, "resource");
    op_jb_str(res, "name", "cpu");
    cJSON *target = op_jb_obj(res, "target");
    op_jb_str(target, "type", "Utilization");
    op_jb_num(target, "averageUtilization", percent);
}

static void hpa_metric_rps(cJSON *metrics, int rps)
{
    cJSON *m = op_jb_push_obj(metrics);
    op_jb_str(m, "type", "Pods");
    cJSON *pods = op_jb_obj(m, "pods");
    op_jb_str(op_jb_obj(pods, "metric"), "name", RPS_METRIC);
    cJSON *target = op_jb_obj(pods, "target");
    char v[32];
    snprintf(v, sizeof v, "%d", rps);
    op_jb_str(target, "type", "AverageValue");
    op_jb_str(target, "averageValue", v);
}

/* autoscaling/v2 HPA of the ingest Deployment (whose replicas we then leave out). */
static cJSON *build_hpa(const op_pipeline *p)
{
    cJSON *o = skeleton(p, OP_CHILD_INGEST_HPA, "ingest");
    cJSON *spec = op_jb_obj(o, "spec");
    cJSON *ref = op_jb_obj(spec, "scaleTargetRef");
    char name[128];
    op_pipeline_child(p, "ingest", name, sizeof name);
    op_jb_str(ref, "apiVersion", "apps/v1");
    op_jb_str(ref, "kind", "Deployment");
    op_jb_str(ref, "name", name);
    op_jb_num(spec, "minReplicas", p->hpa_min);
    op_jb_num(spec, "maxReplicas", p->hpa_max);
    cJSON *metrics = op_jb_arr(spec, "metrics");
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
