/* formpipe-consumer: moves submission events from a form's Kafka topic (--form), or
 * from every topic of a directory of forms (--forms-dir, shared mode), into each
 * pipeline's Redis (Sentinel) buffer. See consumer.h for the guarantees. */
#include "admin.h"
#include "config.h"
#include "consumer.h"
#include "log.h"
#include "metrics.h"
#include "shutdown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *form_path, *forms_dir, *previous_group, *topic, *group, *dlq_topic, *kafka_bootstrap, *kafka_config;
static char *redis_sentinels, *redis_master, *redis_password_file, *admin_bind, *log_level;
static fp_strlist kafka_properties;
static fp_redis_tls_flags redis_tls_flags;
static long long redis_connect_ms, redis_command_ms, min_replicas, wait_ms, batch_max, batch_wait_ms, in_flight;
static long long rescan_ms, dead_letter_timeout_ms, backoff_initial_ms, backoff_max_ms, lag_interval_ms, grace_ms, admin_port, dedup_ms, form_wait_ms;

static const fp_option options[] = {
    {"form", FP_OPT_STRING, "", "compiled form definition (JSON) from the pipeline's ConfigMap (or --forms-dir)", 0, 0, 0, &form_path},
    {"forms-dir", FP_OPT_STRING, "", "directory of compiled forms (*.json, the shared ConfigMap): one group over every form's topic (or --form)", 0, 0, 0, &forms_dir},
    {"rescan-interval", FP_OPT_DURATION, "5s", "how often --forms-dir is rescanned for added, changed and removed forms", 0, 100, 300000, &rescan_ms},
    {"topic", FP_OPT_STRING, "", "Kafka topic (default the form's, forms.<namespace>.<name>; --form only)", 0, 0, 0, &topic},
    {"group", FP_OPT_STRING, "", "consumer group (default formpipe.<namespace>.<name>; with --forms-dir the forms' shared.group)", 0, 0, 0, &group},
    {"dlq-topic", FP_OPT_STRING, "", "dead-letter topic (default <topic>.dlq; --form only, with --forms-dir each form's shared.dlqTopic)", 0, 0, 0, &dlq_topic},
    {"previous-group", FP_OPT_STRING, "", "group whose committed offsets a partition without a commit of ours starts at (the shared group when switching to dedicated; --form only, with --forms-dir each form's shared.dedicatedGroup)", 0, 0, 0, &previous_group},
    {"kafka-bootstrap", FP_OPT_STRING, NULL, "Kafka bootstrap servers host:port,...", FP_OPT_REQUIRED, 0, 0, &kafka_bootstrap},
    {"kafka-config", FP_OPT_STRING, "", "librdkafka properties file (security.protocol, sasl.*, ssl.*)", 0, 0, 0, &kafka_config},
    {"kafka-property", FP_OPT_LIST, NULL, "one librdkafka property key=value", 0, 0, 0, &kafka_properties},
    {"redis-sentinels", FP_OPT_STRING, NULL, "Redis sentinels host:port,...", FP_OPT_REQUIRED, 0, 0, &redis_sentinels},
    {"redis-master", FP_OPT_STRING, NULL, "Redis master name the sentinels monitor", FP_OPT_REQUIRED, 0, 0, &redis_master},
    {"redis-password-file", FP_OPT_STRING, "", "file holding the Redis password (mounted Secret)", 0, 0, 0, &redis_password_file},
    {"redis-connect-timeout", FP_OPT_DURATION, "500ms", "timeout per sentinel or master connection", 0, 1, 60000, &redis_connect_ms},
    {"redis-command-timeout", FP_OPT_DURATION, "2s", "timeout per Redis command", 0, 1, 60000, &redis_command_ms},
    FP_REDIS_TLS_OPTIONS(&redis_tls_flags),
    {"min-replicas-ack", FP_OPT_INT, "1", "replicas that must confirm a batch (WAIT) before offsets are stored", 0, 0, 16, &min_replicas},
    {"wait-timeout", FP_OPT_DURATION, "2s", "how long WAIT may take before the batch is retried", 0, 1, 60000, &wait_ms},
    {"batch-max", FP_OPT_INT, "1000", "most events per Redis batch", 0, 1, 10000, &batch_max},
    {"batch-wait", FP_OPT_DURATION, "20ms", "longest time spent filling a batch", 0, 1, 10000, &batch_wait_ms},
    {"batches-in-flight", FP_OPT_INT, "2", "batches sent to Redis before the oldest is confirmed, each on its own connection", 0, 1, FP_CONSUMER_MAX_IN_FLIGHT, &in_flight},
    {"dead-letter-timeout", FP_OPT_DURATION, "5s", "a dead letter not acknowledged by then pauses its partition (retried in the background)", 0, 100, 300000, &dead_letter_timeout_ms},
    {"form-wait", FP_OPT_DURATION, "2m", "how long an event of a newer form generation with a field the mounted form lacks waits for the updated form before it is dead-lettered (a ConfigMap reaches a running pod within about a minute)", 0, 0, 240000, &form_wait_ms},
    {"backoff-initial", FP_OPT_DURATION, "100ms", "first retry delay when Redis, Kafka or memory fails", 0, 1, 60000, &backoff_initial_ms},
    {"backoff-max", FP_OPT_DURATION, "5s", "longest retry delay", 0, 1, 300000, &backoff_max_ms},
    {"lag-interval", FP_OPT_DURATION, "5s", "how often lag per partition is published", 0, 100, 300000, &lag_interval_ms},
    {"dedup-window", FP_OPT_DURATION, "168h", "how long flushed ids are remembered to drop redeliveries", 0, 60000, 8760LL * 3600000, &dedup_ms},
    {"shutdown-grace", FP_OPT_DURATION, "10s", "bound on finishing the batch in hand after SIGTERM", 0, 0, 300000, &grace_ms},
    {"admin-bind", FP_OPT_STRING, "0.0.0.0", "address for /healthz, /readyz, /metrics", 0, 0, 0, &admin_bind},
    {"admin-port", FP_OPT_INT, "9090", "port for /healthz, /readyz, /metrics (0: any free port)", 0, 0, 65535, &admin_port},
    {"log-level", FP_OPT_STRING, "info", "debug, info, warn or error", 0, 0, 0, &log_level},
};
#define NOPTIONS (sizeof options / sizeof options[0])

int main(int argc, char **argv)
{
    int status;
    if (fp_config_load("formpipe-consumer", "Moves form submissions from Kafka into the Redis buffer.",
                       options, NOPTIONS, argc, argv, &status))
        return status;
    if (fp_log_setup("formpipe-consumer", "consumer", log_level)) {
        fp_config_free(options, NOPTIONS);
        return 2;
    }
    fp_admin_route_lws_logs();
    if (!*form_path == !*forms_dir || (*forms_dir && (*topic || *dlq_topic || *previous_group))) {
        fprintf(stderr, "formpipe-consumer: give either --form or --forms-dir (--topic, --dlq-topic and --previous-group go with --form)\n");
        fp_config_free(options, NOPTIONS);
        return 2;
    }

    char *password = NULL;
    fp_error perr = {0};
    fp_redis_tls redis_tls;
    if (fp_redis_tls_from_flags(&redis_tls_flags, &redis_tls, &perr)) {
        fprintf(stderr, "formpipe-consumer: %s\n", perr.msg);
        fp_config_free(options, NOPTIONS);
        return 2;
    }
    if (*redis_password_file && !(password = fp_config_read_secret(redis_password_file, NULL, &perr))) {
        fprintf(stderr, "formpipe-consumer: --redis-password-file: %s\n", perr.msg);
        fp_config_free(options, NOPTIONS);
        return 2;
    }

    int rc = 1;
    fp_error err = {0};
    fp_metrics *metrics = fp_metrics_new(1000);
    fp_consumer *consumer = NULL;
    fp_admin *admin = NULL;
    fp_consumer_config cfg = {
        .form_path = *form_path ? form_path : NULL, .forms_dir = *forms_dir ? forms_dir : NULL,
        .rescan_interval_ms = (long)rescan_ms, .previous_group = previous_group, .topic = topic, .group = group, .dlq_topic = dlq_topic,
        .kafka_bootstrap = kafka_bootstrap, .kafka_config_file = kafka_config,
        .kafka_properties = &kafka_properties, .redis_sentinels = redis_sentinels,
        .redis_master = redis_master, .redis_password = password,
        .redis_connect_timeout_ms = redis_connect_ms, .redis_command_timeout_ms = redis_command_ms,
        .redis_tls = redis_tls, .min_replicas_ack = (int)min_replicas, .form_wait_ms = form_wait_ms, .wait_timeout_ms = wait_ms, .batch_max = (int)batch_max,
        .batch_wait_ms = batch_wait_ms, .batches_in_flight = (int)in_flight,
        .dead_letter_timeout_ms = dead_letter_timeout_ms, .backoff_initial_ms = backoff_initial_ms,
        .backoff_max_ms = backoff_max_ms, .lag_interval_ms = lag_interval_ms, .shutdown_grace_ms = grace_ms,
        .dedup_window_ms = dedup_ms,
    };
    if (!metrics || fp_shutdown_install()) {
        fprintf(stderr, "formpipe-consumer: cannot initialise (out of memory or signals)\n");
        goto out;
    }
    if (!(consumer = fp_consumer_new(&cfg, metrics, &err))) {
        fprintf(stderr, "formpipe-consumer: %s\n", err.msg);
        goto out;
    }
    if (!(admin = fp_admin_start(admin_bind, (int)admin_port, metrics, fp_consumer_ready, consumer, &err))) {
        fprintf(stderr, "formpipe-consumer: %s\n", err.msg);
        goto out;
    }
    fp_log_info("admin endpoints listening", FP_LSTR("bind", admin_bind), FP_LINT("port", fp_admin_port(admin)));
    rc = fp_consumer_run(consumer) ? 1 : 0;
out:
    fp_admin_stop(admin);
    fp_consumer_free(consumer);
    fp_metrics_free(metrics);
    fp_config_free_secret(password, password ? strlen(password) : 0);
    fp_config_free(options, NOPTIONS);
    return rc;
}
