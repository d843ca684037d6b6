/* formpipe-operator: reconciles FormPipeline resources (see controller.h). One of
 * several replicas leads through a Lease; the others wait. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "netaddr.h"
#include "config.h"
#include "controller.h"
#include "kube_client.h"
#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "shutdown.h"
#include "kafka_admin.h"
#include "podspec.h"

static char *kubeconfig, *context, *kafka_bootstrap, *kafka_config, *kafka_config_secret, *kafka_ca_secret;
static long long redis_min_acks;
static char *redis_sentinels, *redis_master, *redis_password_secret, *google_secret, *sheets_api_url;
static char *redis_tls_ca_secret, *redis_tls_client_secret;
static char *image_ingest, *image_consumer, *image_flush, *image_task, *pull_policy, *lease_name, *lease_ns, *identity;
static char *admin_bind, *log_level, *workload_log_level, *pod_defaults_file;
static fp_strlist kafka_properties, ingest_trusted_proxies, allowed_hosts, allowed_classes, allowed_kafka, allowed_redis;
static char *ingest_token_key_secret;
static long long replication, workers, resync_ms, lag_interval_ms, kafka_timeout_ms, admin_port;
static long long lease_duration_ms, renew_deadline_ms, retry_ms;
static int leader_elect;
static char *redis_password_file, *shared_flush_schedule, *default_mode;
static fp_redis_tls_flags redis_tls_flags;
static fp_redis_tls redis_tls;   /* from redis_tls_flags, checked at start-up */
static long long shared_ingest_rate, shared_ingest_burst;
static long long shared_ingest_replicas, shared_consumer_max, shared_lag_per_replica, shared_writes_per_minute;
static long long shared_flush_deadline_s, shared_switch_delay_ms;

static const fp_option options[] = {
    {"kubeconfig", FP_OPT_STRING, "", "kubeconfig file (default $KUBECONFIG, else the in-cluster service account)", 0, 0, 0, &kubeconfig},
    {"context", FP_OPT_STRING, "", "kubeconfig context (default: current-context)", 0, 0, 0, &context},
    {"kafka-bootstrap", FP_OPT_STRING, NULL, "Kafka bootstrap servers host:port,... (operator and default for pipelines)", FP_OPT_REQUIRED, 0, 0, &kafka_bootstrap},
    {"kafka-config", FP_OPT_STRING, "", "librdkafka properties file for the operator's own admin client", 0, 0, 0, &kafka_config},
    {"kafka-property", FP_OPT_LIST, NULL, "one librdkafka property key=value for the admin client", 0, 0, 0, &kafka_properties},
    {"kafka-config-secret", FP_OPT_STRING, "", "Secret NAME[:KEY] with librdkafka properties mounted into pipeline pods", 0, 0, 0, &kafka_config_secret},
    {"kafka-ca-secret", FP_OPT_STRING, "", "Secret NAME[:KEY] with the PEM CA of the brokers' TLS certificates, mounted into pipeline pods (ssl.ca.location)", 0, 0, 0, &kafka_ca_secret},
    {"kafka-timeout", FP_OPT_DURATION, "10s", "timeout of each Kafka admin request", 0, 100, 300000, &kafka_timeout_ms},
    {"replication-factor", FP_OPT_INT, "3", "default replication factor of new topics", 0, 1, 32, &replication},
    {"redis-sentinels", FP_OPT_STRING, "", "default Redis sentinels host:port,... for pipelines", 0, 0, 0, &redis_sentinels},
    {"redis-master", FP_OPT_STRING, "", "default Redis master name", 0, 0, 0, &redis_master},
    {"redis-min-replicas-ack", FP_OPT_INT, "1", "default replicas that must confirm each buffer write (WAIT); the number of replicas means a failover cannot lose a confirmed row", 0, 0, 16, &redis_min_acks},
    {"redis-password-secret", FP_OPT_STRING, "", "default Secret NAME[:KEY] holding the Redis password", 0, 0, 0, &redis_password_secret},
    {"redis-tls-ca-secret", FP_OPT_STRING, "", "default Secret NAME[:KEY] with the PEM CA of Redis's TLS certificates: pipeline pods speak TLS to the sentinels and data nodes", 0, 0, 0, &redis_tls_ca_secret},
    {"redis-tls-client-secret", FP_OPT_STRING, "", "default kubernetes.io/tls Secret NAME (tls.crt, tls.key) pipeline pods present to Redis (mutual TLS)", 0, 0, 0, &redis_tls_client_secret},
    {"redis-password-file", FP_OPT_STRING, "", "file with the Redis password for the operator's own reads of Shared pipelines' buffers (the chart mounts redis.passwordSecret)", 0, 0, 0, &redis_password_file},
    FP_REDIS_TLS_OPTIONS(&redis_tls_flags),   /* the operator's own connection (--redis-password-file's reads) */
    {"shared-ingest-replicas", FP_OPT_INT, "2", "replicas of each namespace's formpipe-shared-ingest", 0, 1, 1000, &shared_ingest_replicas},
    {"shared-ingest-rate-limit", FP_OPT_INT, "20", "submissions per second per client address per formpipe-shared-ingest replica, over all its forms (0: no limit; a Shared pipeline's spec.ingest.rateLimit does not apply)", 0, 0, 1000000, &shared_ingest_rate},
    {"shared-ingest-rate-burst", FP_OPT_INT, "40", "submissions a client may send at once to formpipe-shared-ingest before the rate applies", 0, 1, 1000000, &shared_ingest_burst},
    {"shared-consumer-max-replicas", FP_OPT_INT, "10", "most replicas of each namespace's formpipe-shared-consumer (also bounded by the Shared pipelines' partitions)", 0, 1, 1000, &shared_consumer_max},
    {"shared-consumer-lag-per-replica", FP_OPT_INT, "1000", "events waiting in Kafka per shared consumer replica (0: always the most replicas)", 0, 0, 1000000000, &shared_lag_per_replica},
    {"shared-flush-schedule", FP_OPT_STRING, "*/1 * * * *", "cron schedule of each namespace's formpipe-shared-flush", 0, 0, 0, &shared_flush_schedule},
    {"shared-flush-writes-per-minute", FP_OPT_INT, "60", "Sheets write requests per minute per Google service account, shared by every flush run", 0, 1, 100000, &shared_writes_per_minute},
    {"shared-flush-deadline", FP_OPT_INT, "300", "activeDeadlineSeconds of a shared flush run", 0, 30, 3600, &shared_flush_deadline_s},
    {"default-mode", FP_OPT_STRING, "Shared", "mode of a new FormPipeline without spec.mode: Shared (the namespace's shared pods, unless its spec needs its own) or Dedicated", 0, 0, 0, &default_mode},
    {"shared-switch-delay", FP_OPT_DURATION, "90s", "switching a pipeline to mode: Shared, the Ingress moves this long after its form is in the shared ConfigMap (the kubelet's ConfigMap sync)", 0, 0, 3600000, &shared_switch_delay_ms},
    {"google-credentials-secret", FP_OPT_STRING, "", "default Secret NAME[:KEY] holding the Google service-account key", 0, 0, 0, &google_secret},
    {"sheets-api-url", FP_OPT_STRING, "", "Sheets API base URL given to flush jobs (default: the real API)", 0, 0, 0, &sheets_api_url},
    {"allowed-host", FP_OPT_LIST, NULL, "a host pipelines may serve on (spec.ingest.host): a name, or *.domain for any name under it; when given, a pipeline must name an allowed host", 0, 0, 0, &allowed_hosts},
    {"allowed-ingress-class", FP_OPT_LIST, NULL, "an IngressClass pipelines may name (spec.ingest.ingressClassName); none given: any", 0, 0, 0, &allowed_classes},
    {"allowed-kafka-bootstrap", FP_OPT_LIST, NULL, "a Kafka bootstrapServers value pipelines may name besides the operator's own; none given: any (the operator's Kafka Secret goes only to its own cluster)", 0, 0, 0, &allowed_kafka},
    {"allowed-redis-sentinels", FP_OPT_LIST, NULL, "a Redis sentinels value pipelines may name besides the operator's own; none given: any (the operator's Redis password goes only to its own sentinels)", 0, 0, 0, &allowed_redis},
    {"ingest-trusted-proxy", FP_OPT_LIST, NULL, "default address or CIDR of the ingress controller (the ingest's --trusted-proxy) for pipelines that set none", 0, 0, 0, &ingest_trusted_proxies},
    {"ingest-token-key-secret", FP_OPT_STRING, "", "Secret NAME[:KEY] with the key every ingest replica signs submission tokens with", 0, 0, 0, &ingest_token_key_secret},
    {"ingest-image", FP_OPT_STRING, "formpipe/formpipe-ingest:0.1.0", "image of formpipe-ingest", 0, 0, 0, &image_ingest},
    {"consumer-image", FP_OPT_STRING, "formpipe/formpipe-consumer:0.1.0", "image of formpipe-consumer", 0, 0, 0, &image_consumer},
    {"flush-image", FP_OPT_STRING, "formpipe/formpipe-flush:0.1.0", "image of formpipe-flush", 0, 0, 0, &image_flush},
    {"task-image", FP_OPT_STRING, "formpipe/formpipe-task:0.1.0", "image of formpipe-task (FormTasks of kind webhook)", 0, 0, 0, &image_task},
    {"image-pull-policy", FP_OPT_STRING, "IfNotPresent", "imagePullPolicy of pipeline pods", 0, 0, 0, &pull_policy},
    {"pod-defaults", FP_OPT_STRING, "", "JSON file of pod settings defaults for pipeline and task pods: {\"default\": POD, \"ingest\": POD, \"consumer\", \"flush\", \"task\"} (docs/operator.md; the chart writes it from pipelines.pods)", 0, 0, 0, &pod_defaults_file},
    {"workload-log-level", FP_OPT_STRING, "info", "log level of pipeline pods", 0, 0, 0, &workload_log_level},
    {"workers", FP_OPT_INT, "8", "pipelines reconciled at the same time (each waits on the API and Kafka most of the time)", 0, 1, 64, &workers},
    {"resync-period", FP_OPT_DURATION, "5m", "every pipeline is reconciled at least this often", 0, 1000, 86400000, &resync_ms},
    {"lag-interval", FP_OPT_DURATION, "15s", "how often lag-scaled pipelines are re-measured", 0, 100, 3600000, &lag_interval_ms},
    {"leader-elect", FP_OPT_BOOL, "true", "elect one active replica through a Lease", 0, 0, 0, &leader_elect},
    {"lease-name", FP_OPT_STRING, "formpipe-operator", "name of the leader-election Lease", 0, 0, 0, &lease_name},
    {"lease-namespace", FP_OPT_STRING, "", "namespace of the Lease (default: the operator's namespace)", 0, 0, 0, &lease_ns},
    {"lease-duration", FP_OPT_DURATION, "15s", "how long a Lease is valid without renewal", 0, 1000, 600000, &lease_duration_ms},
    {"renew-deadline", FP_OPT_DURATION, "10s", "a leader that has not renewed for this long steps down", 0, 500, 600000, &renew_deadline_ms},
    {"retry-period", FP_OPT_DURATION, "2s", "interval of acquire and renew attempts", 0, 100, 60000, &retry_ms},
    {"identity", FP_OPT_STRING, "", "leader-election identity (default: hostname_pid)", 0, 0, 0, &identity},
    {"admin-bind", FP_OPT_STRING, "0.0.0.0", "address for /healthz, /readyz, /metrics", 0, 0, 0, &admin_bind},
    {"admin-port", FP_OPT_INT, "8081", "port for /healthz, /readyz, /metrics (0: any free port)", 0, 0, 65535, &admin_port},
    {"log-level", FP_OPT_STRING, "info", "debug, info, warn or error", 0, 0, 0, &log_level},
};
#define NOPTIONS (sizeof options / sizeof options[0])

typedef struct app {
    op_controller *controller;
    op_lease *lease;
    fp_series *leader;
    int lost;
} app;

/* "name[:key]" into ref (pointing into text, which is modified). */
static void parse_secret_ref(char *text, const char *default_key, op_secret_ref *ref)
{
    if (!text || !*text)
        return;
    char *colon = strchr(text, ':');
    if (colon)
        *colon = 0;
    ref->name = text;
    ref->key = colon && colon[1] ? colon + 1 : default_key;
}

/* The operator's Redis reads (bufstate.h): the default sentinels, the password from
 * --redis-password-file; short timeouts, a reconcile must not wait on Redis. */
static op_bufstate *open_buffers(fp_error *err)
{
    char password[512] = "";
    if (*redis_password_file) {
        FILE *f = fopen(redis_password_file, "r");
        size_t n = f ? fread(password, 1, sizeof password - 1, f) : 0;
        if (!f) {
            fp_error_set(err, FP_EIO, "--redis-password-file: cannot read %s", redis_password_file);
            return NULL;
        }
        fclose(f);
        password[n] = 0;
        password[strcspn(password, "\r\n")] = 0;
    }
    fp_redis_config rc = {.sentinels = redis_sentinels, .master_name = redis_master, .password = password,
                          .connect_timeout_ms = 500, .command_timeout_ms = 1000, .tls = redis_tls};
    return op_bufstate_new(&rc, err);
}

static void on_elected(void *ctx)
{
    app *a = ctx;
    fp_series_set(a->leader, 1);
    fp_error err = {0};
    if (op_controller_start(a->controller, &err) < 0) {
        fp_log_error("controller failed to start", FP_LSTR("error", err.msg));
        a->lost = 1;
        fp_shutdown_request();
    }
}

static void on_lost(void *ctx)
{
    app *a = ctx;
    fp_series_set(a->leader, 0);
    a->lost = 1;
    fp_shutdown_request();   /* a former leader must not act: exit, let a restart campaign again */
}

static int ready(void *ctx, char *why, size_t whysz)
{
    app *a = ctx;
    if (a->lease && !op_lease_is_leader(a->lease))
        return 1;   /* a standby is healthy while it waits */
    return op_controller_ready(a->controller, why, whysz);
}

int main(int argc, char **argv)
{
    int status;
    if (fp_config_load("formpipe-operator", "Runs FormPipeline resources (topic, ingest, consumers, flush) and their FormTasks.",
                       options, NOPTIONS, argc, argv, &status))
        return status;
    fp_error arg_err = {0};
    if (strcmp(default_mode, "Shared") != 0 && strcmp(default_mode, "Dedicated") != 0)
        fp_error_set(&arg_err, FP_EINVAL, "--default-mode: must be Shared or Dedicated, not \"%s\"", default_mode);
    if (arg_err.code || fp_redis_tls_from_flags(&redis_tls_flags, &redis_tls, &arg_err)) {
        fprintf(stderr, "formpipe-operator: %s\n", arg_err.msg);
        fp_config_free(options, NOPTIONS);
        return 2;
    }
    if (fp_log_setup("formpipe-operator", "operator", log_level)) {
        fp_config_free(options, NOPTIONS);
        return 2;
    }
    fp_admin_route_lws_logs();
    fp_shutdown_install();

    op_controller_config cc = {
        .defaults = {
            .kafka_bootstrap = kafka_bootstrap, .replication_factor = (int)replication,
            .redis_sentinels = redis_sentinels, .redis_master = redis_master,
            .redis_min_replicas_ack = (int)redis_min_acks,
            .sheets_api_url = sheets_api_url, .image_ingest = image_ingest, .image_consumer = image_consumer,
            .image_flush = image_flush, .image_task = image_task, .image_pull_policy = pull_policy, .log_level = workload_log_level,
            .ingest_trusted_proxies = &ingest_trusted_proxies, .allowed_hosts = &allowed_hosts,
            .allowed_ingress_classes = &allowed_classes, .allowed_kafka = &allowed_kafka, .allowed_redis = &allowed_redis,
            .default_shared = strcmp(default_mode, "Shared") == 0,
        },
        .workers = (int)workers, .resync_ms = resync_ms, .lag_interval_ms = lag_interval_ms,
        .backoff_base_ms = 5, .backoff_max_ms = 1000000,
        .shared = {
            .ingest_replicas = (int)shared_ingest_replicas, .ingest_rate_limit = shared_ingest_rate,
            .ingest_rate_burst = shared_ingest_burst, .consumer_max_replicas = (int)shared_consumer_max,
            .consumer_lag_per_replica = shared_lag_per_replica, .flush_schedule = shared_flush_schedule,
            .flush_writes_per_minute = (int)shared_writes_per_minute, .flush_deadline_s = shared_flush_deadline_s,
            .switch_delay_ms = shared_switch_delay_ms,
        },
    };
    parse_secret_ref(kafka_config_secret, "client.properties", &cc.defaults.kafka_config);
    parse_secret_ref(kafka_ca_secret, "ca.crt", &cc.defaults.kafka_ca);
    parse_secret_ref(redis_password_secret, "password", &cc.defaults.redis_password);
    parse_secret_ref(redis_tls_ca_secret, "ca.crt", &cc.defaults.redis_tls_ca);
    parse_secret_ref(redis_tls_client_secret, "tls.crt", &cc.defaults.redis_tls_client);
    parse_secret_ref(google_secret, "key.json", &cc.defaults.google_credentials);
    parse_secret_ref(ingest_token_key_secret, "token-key", &cc.defaults.ingest_token_key);
    fp_cidrs checked;   /* a bad chart value would stop every ingest: refuse it here */
    fp_error cerr = {0};
    if (fp_cidrs_parse(&ingest_trusted_proxies, &checked, &cerr)) {
        fprintf(stderr, "formpipe-operator: --ingest-trusted-proxy: %s\n", cerr.msg);
        fp_config_free(options, NOPTIONS);
        return 2;
    }
    fp_cidrs_free(&checked);
    char idbuf[300];
    if (!*identity) {
        char host[256] = "formpipe-operator";
        gethostname(host, sizeof host - 1);
        snprintf(idbuf, sizeof idbuf, "%s_%d", host, (int)getpid());
    }
    cc.identity = *identity ? identity : idbuf;

    int rc = 1;
    fp_error err = {0};
    app a = {0};
    cJSON *pod_defaults = op_podspec_load_defaults(pod_defaults_file, &err);
    cc.defaults.pods = pod_defaults;
    kube_client *kube = NULL;
    op_kafka *kafka = NULL;
    op_bufstate *buffers = NULL;
    fp_admin *admin = NULL;
    fp_metrics *metrics = fp_metrics_new(2000);
    kube_config *kc = pod_defaults ? kube_config_load(kubeconfig, context, &err) : NULL;
    if (!pod_defaults) {
        fprintf(stderr, "formpipe-operator: --pod-defaults: %s\n", err.msg);
        goto out;
    }
    if (!kc || !(kube = kube_client_new(kc, &err))) {
        fprintf(stderr, "formpipe-operator: %s\n", err.msg);
        goto out;
    }
    if (*redis_sentinels && *redis_master && !(buffers = open_buffers(&err))) {
        fprintf(stderr, "formpipe-operator: %s\n", err.msg);
        goto out;
    }
    cc.buffers = buffers;
    if (!(kafka = op_kafka_new(kafka_bootstrap, kafka_config, &kafka_properties, kafka_timeout_ms, &err))) {
        fprintf(stderr, "formpipe-operator: %s\n", err.msg);
        goto out;
    }
    fp_metric *leader = fp_metrics_gauge(metrics, "formpipe_operator_leader", "1 while this replica leads", NULL, &err);
    a.leader = leader ? fp_metric_series(leader, NULL) : NULL;
    if (!metrics || !leader || !(a.controller = op_controller_new(kube, kafka, metrics, &cc, &err))) {
        fprintf(stderr, "formpipe-operator: %s\n", err.msg);
        goto out;
    }
    if (!(admin = fp_admin_start(admin_bind, (int)admin_port, metrics, ready, &a, &err))) {
        fprintf(stderr, "formpipe-operator: --admin-port: %s\n", err.msg);
        goto out;
    }
    fp_log_info("started", FP_LSTR("identity", cc.identity), FP_LINT("admin_port", fp_admin_port(admin)),
                                        FP_LBOOL("leader_elect", leader_elect));
    if (leader_elect) {
        op_lease_config lc = {
            .ns = *lease_ns ? lease_ns : kube_client_namespace(kube), .name = lease_name,
            .identity = cc.identity, .duration_ms = lease_duration_ms,
            .renew_deadline_ms = renew_deadline_ms, .retry_ms = retry_ms,
        };
        if (!(a.lease = op_lease_start(kube, &lc, on_elected, on_lost, &a, &err))) {
            fprintf(stderr, "formpipe-operator: %s\n", err.msg);
            goto out;
        }
    } else {
        on_elected(&a);
    }
    while (!fp_shutdown_requested()) {
        op_controller_tick(a.controller);
        fp_shutdown_sleep(1000);
    }
    rc = a.lost ? 1 : 0;
    fp_log_info(a.lost ? "stopping: leadership lost" : "stopping");
out:
    op_lease_stop(a.lease);
    op_controller_free(a.controller);
    fp_admin_stop(admin);
    op_kafka_free(kafka);
    op_bufstate_free(buffers);
    kube_client_free(kube);
    fp_metrics_free(metrics);
    fp_config_free(options, NOPTIONS);
    cJSON_Delete(pod_defaults);
    return rc;
}
