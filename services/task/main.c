/* formpipe-task: runs one task kind (--kind) over a pipeline's events, at least once,
 * with per-key order, retries and dead letters. See runner.h and kind.h. */
#include "admin.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "moderate.h"
#include "runner.h"
#include "shutdown.h"
#include "webhook.h"
#include "email.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *kind_name, *topic, *group, *dlq_topic, *kafka_bootstrap, *kafka_config, *admin_bind, *log_level;
static char *webhook_url, *webhook_secret_file, *webhook_mode;
static fp_strlist kafka_properties, filter;
static char *email_smtp_dir, *email_ca_file, *email_from, *email_to_field, *email_subject, *email_text, *email_html;
static char *email_pipeline, *email_task, *redis_sentinels, *redis_master, *redis_password_file;
static fp_redis_tls_flags redis_tls_flags;
static long long email_rate, email_timeout_ms, email_max_connections, email_sent_ttl_ms, min_replicas_ack;
static char *output_topic, *transactional_id, *words_file;
static fp_strlist moderate_fields;
static long long moderate_threshold, words_reload_ms, commit_interval_ms, batch_max;
static long long max_attempts, concurrency, backoff_initial_ms, backoff_max_ms, dead_letter_timeout_ms;
static long long lag_interval_ms, grace_ms, admin_port, webhook_timeout_ms, webhook_max_connections;
static int webhook_allow_http;

static const fp_option options[] = {
    {"kind", FP_OPT_STRING, NULL, "the task kind: webhook, email or moderate", FP_OPT_REQUIRED, 0, 0, &kind_name},
    {"topic", FP_OPT_STRING, NULL, "source topic (the pipeline's topic, or <topic>.<task> of a producing task)", FP_OPT_REQUIRED, 0, 0, &topic},
    {"group", FP_OPT_STRING, NULL, "consumer group (formpipe.<namespace>.<pipeline>.<task>)", FP_OPT_REQUIRED, 0, 0, &group},
    {"dlq-topic", FP_OPT_STRING, NULL, "dead-letter topic (<topic>.<task>.dlq)", FP_OPT_REQUIRED, 0, 0, &dlq_topic},
    {"kafka-bootstrap", FP_OPT_STRING, NULL, "Kafka bootstrap servers host:port,...", FP_OPT_REQUIRED, 0, 0, &kafka_bootstrap},
    {"kafka-config", FP_OPT_STRING, "", "librdkafka properties file (security.protocol, sasl.*, ssl.*)", 0, 0, 0, &kafka_config},
    {"kafka-property", FP_OPT_LIST, NULL, "one librdkafka property key=value", 0, 0, 0, &kafka_properties},
    {"max-attempts", FP_OPT_INT, "10", "attempts per event; then it is dead-lettered (attempts_exhausted)", 0, 1, 100, &max_attempts},
    {"concurrency", FP_OPT_INT, "32", "events in flight per replica", 0, 1, 1024, &concurrency},
    {"backoff-initial", FP_OPT_DURATION, "1s", "first retry delay (doubled per attempt, with jitter)", 0, 1, 3600000, &backoff_initial_ms},
    {"backoff-max", FP_OPT_DURATION, "5m", "longest retry delay (also caps a receiver's Retry-After)", 0, 1, 3600000, &backoff_max_ms},
    {"dead-letter-timeout", FP_OPT_DURATION, "5s", "a dead letter not acknowledged by then pauses its partition (retried in the background)", 0, 100, 300000, &dead_letter_timeout_ms},
    {"lag-interval", FP_OPT_DURATION, "5s", "how often lag per partition is published", 0, 100, 300000, &lag_interval_ms},
    {"shutdown-grace", FP_OPT_DURATION, "10s", "how long running attempts may finish after SIGTERM", 0, 0, 300000, &grace_ms},
    {"admin-bind", FP_OPT_STRING, "0.0.0.0", "address for /healthz, /readyz, /metrics", 0, 0, 0, &admin_bind},
    {"admin-port", FP_OPT_INT, "9090", "port for /healthz, /readyz, /metrics (0: any free port)", 0, 0, 65535, &admin_port},
    {"log-level", FP_OPT_STRING, "info", "debug, info, warn or error", 0, 0, 0, &log_level},
    {"webhook-url", FP_OPT_STRING, "", "webhook kind: the URL events are POSTed to (http:// or https://)", 0, 0, 0, &webhook_url},
    {"webhook-secret-file", FP_OPT_STRING, "", "webhook kind: file holding the HMAC key (no Formpipe-Signature without)", 0, 0, 0, &webhook_secret_file},
    {"webhook-timeout", FP_OPT_DURATION, "10s", "webhook kind: timeout per request", 0, 1, 300000, &webhook_timeout_ms},
    {"webhook-mode", FP_OPT_STRING, "structured", "webhook kind: CloudEvents HTTP content mode, structured or binary", 0, 0, 0, &webhook_mode},
    {"webhook-allow-http", FP_OPT_BOOL, "false", "webhook kind: allow a plain http:// URL to a non-loopback host (the payload and its signature travel in clear)", 0, 0, 0, &webhook_allow_http},
    {"webhook-max-connections", FP_OPT_INT, "0", "webhook kind: keep-alive connections (0: --concurrency)", 0, 0, 1024, &webhook_max_connections},
    {"email-smtp-dir", FP_OPT_STRING, "", "email kind: directory of the SMTP Secret's files url (smtp:// = STARTTLS required, smtps:// = TLS), username, password", 0, 0, 0, &email_smtp_dir},
    {"email-ca-file", FP_OPT_STRING, "", "email kind: PEM CA bundle the SMTP server's certificate is verified with (default: the SMTP Secret's ca.crt if it has one, else the system's)", 0, 0, 0, &email_ca_file},
    {"email-from", FP_OPT_STRING, "", "email kind: the From header, \"Name <address>\" or an address", 0, 0, 0, &email_from},
    {"email-to-field", FP_OPT_STRING, "", "email kind: the form field holding the recipient (events without a value are skipped)", 0, 0, 0, &email_to_field},
    {"email-subject", FP_OPT_STRING, "", "email kind: subject template ({{field}}; a value with a line break is refused)", 0, 0, 0, &email_subject},
    {"email-text", FP_OPT_STRING, "", "email kind: text body template ({{field}})", 0, 0, 0, &email_text},
    {"email-html", FP_OPT_STRING, "", "email kind: HTML body template ({{field}}, values HTML-escaped); none: text only", 0, 0, 0, &email_html},
    {"email-rate", FP_OPT_INT, "10", "email kind: mails started per second per replica (0: unpaced)", 0, 0, 100000, &email_rate},
    {"email-timeout", FP_OPT_DURATION, "30s", "email kind: timeout per SMTP exchange", 0, 1, 300000, &email_timeout_ms},
    {"email-max-connections", FP_OPT_INT, "4", "email kind: SMTP connections at once", 0, 1, 256, &email_max_connections},
    {"email-sent-ttl", FP_OPT_DURATION, "168h", "email kind: how long a sent-record is kept", 0, 1000, 8760LL * 3600000, &email_sent_ttl_ms},
    {"email-pipeline", FP_OPT_STRING, "", "email kind: the pipeline as <namespace>/<name> (sent-record key, Message-ID)", 0, 0, 0, &email_pipeline},
    {"email-task", FP_OPT_STRING, "", "email kind: the task's name (sent-record key)", 0, 0, 0, &email_task},
    {"redis-sentinels", FP_OPT_STRING, "", "email kind: the pipeline's Redis sentinels host:port,...", 0, 0, 0, &redis_sentinels},
    {"redis-master", FP_OPT_STRING, "", "email kind: the Redis master name the sentinels monitor", 0, 0, 0, &redis_master},
    {"redis-password-file", FP_OPT_STRING, "", "email kind: file holding the Redis password", 0, 0, 0, &redis_password_file},
    FP_REDIS_TLS_OPTIONS(&redis_tls_flags),
    {"min-replicas-ack", FP_OPT_INT, "1", "email kind: replicas that must confirm a sent-record (WAIT)", 0, 0, 16, &min_replicas_ack},
    {"filter", FP_OPT_LIST, NULL, "only events where <path>=<JSON scalar> holds (all of them) are acted on; others are committed and counted", 0, 0, 0, &filter},
    {"output-topic", FP_OPT_STRING, "", "moderate kind: the output stream (<topic>.<task>)", 0, 0, 0, &output_topic},
    {"transactional-id", FP_OPT_STRING, "", "moderate kind: the producer's transactional.id (default <group>.<$FORMPIPE_POD_NAME, else the hostname>)", 0, 0, 0, &transactional_id},
    {"moderate-words-file", FP_OPT_STRING, "", "moderate kind: the word list, one term per line (reloaded when it changes)", 0, 0, 0, &words_file},
    {"moderate-field", FP_OPT_LIST, NULL, "moderate kind: a text field checked (repeatable; default every string field)", 0, 0, 0, &moderate_fields},
    {"moderate-threshold", FP_OPT_INT, "1", "moderate kind: score (terms found) at which an event is flagged", 0, 1, 1000000, &moderate_threshold},
    {"moderate-reload-interval", FP_OPT_DURATION, "5s", "moderate kind: how often the word list file is checked for a change", 0, 100, 3600000, &words_reload_ms},
    {"moderate-commit-interval", FP_OPT_DURATION, "100ms", "moderate kind: longest a transaction stays open", 0, 1, 60000, &commit_interval_ms},
    {"moderate-batch", FP_OPT_INT, "10000", "moderate kind: most events in one transaction", 0, 1, 1000000, &batch_max},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* The webhook kind from the --webhook-* options. NULL with *err (and *usage set when
 * the command line is at fault). */
static fp_task_kind *new_webhook(fp_metrics *m, int *usage, fp_error *err)
{
    fp_webhook_config wc = {.url = webhook_url, .timeout_ms = (long)webhook_timeout_ms,
                            .max_connections = (int)(webhook_max_connections ? webhook_max_connections : concurrency),
                            .allow_http = webhook_allow_http};
    char *key = NULL;
    *usage = 1;
    if (!*webhook_url) {
        fp_error_set(err, FP_EINVAL, "--webhook-url is required with --kind=webhook");
        return NULL;
    }
    if (strcmp(webhook_mode, "structured") == 0) {
        wc.mode = FP_WEBHOOK_STRUCTURED;
    } else if (strcmp(webhook_mode, "binary") == 0) {
        wc.mode = FP_WEBHOOK_BINARY;
    } else {
        fp_error_set(err, FP_EINVAL, "--webhook-mode must be structured or binary, not '%.40s'", webhook_mode);
        return NULL;
    }
    size_t key_len = 0;
    fp_error kerr = {0};
    if (*webhook_secret_file && !(key = fp_config_read_secret(webhook_secret_file, &key_len, &kerr))) {
        fp_error_set(err, kerr.code, "--webhook-secret-file: %s", kerr.msg);
        return NULL;
    }
    wc.secret = key;
    wc.secret_len = key_len;
    fp_task_kind *k = fp_webhook_new(&wc, m, err);
    fp_config_free_secret(key, key_len);
    return k;
}

/* Reads <--email-smtp-dir>/name into *out (fp_config_read_secret); a missing file leaves *out NULL
 * when optional. 0 or negative with *err. */
static int read_smtp_file(const char *name, int optional, char **out, size_t *len, fp_error *err)
{
    char path[4096];
    fp_error ferr = {0};
    snprintf(path, sizeof path, "%s/%s", email_smtp_dir, name);
    *out = NULL;
    *len = 0;
    if (optional && access(path, F_OK) != 0)
        return 0;
    if (!(*out = fp_config_read_secret(path, len, &ferr)))
        return fp_error_set(err, ferr.code, "--email-smtp-dir: %s: %s", name, ferr.msg);
    return 0;
}

/* The email kind from the --email-* and --redis-* options. NULL with *err (and *usage
 * set when the command line is at fault). */
static fp_task_kind *new_email(fp_metrics *m, int *usage, fp_error *err)
{
    char *url = NULL, *user = NULL, *pass = NULL, *redis_pass = NULL, ns[64] = "", secret_ca[4096];
    size_t url_len = 0, user_len = 0, pass_len = 0, redis_pass_len = 0;
    fp_task_kind *k = NULL;
    const char *slash = strchr(email_pipeline, '/');
    *usage = 1;
    if (!*email_smtp_dir || !*email_from || !*email_to_field || !*email_text || !*email_task || !slash ||
        slash == email_pipeline || (size_t)(slash - email_pipeline) >= sizeof ns || !slash[1] || !*redis_sentinels ||
        !*redis_master) {
        fp_error_set(err, FP_EINVAL, "--kind=email needs --email-smtp-dir, --email-from, --email-to-field, --email-text, "
                     "--email-pipeline=<namespace>/<name>, --email-task, --redis-sentinels and --redis-master");
        return NULL;
    }
    fp_redis_tls redis_tls;
    if (fp_redis_tls_from_flags(&redis_tls_flags, &redis_tls, err))
        return NULL;
    memcpy(ns, email_pipeline, (size_t)(slash - email_pipeline));
    *usage = 0;
    fp_error ferr = {0};
    if (read_smtp_file("url", 0, &url, &url_len, err) < 0 || read_smtp_file("username", 1, &user, &user_len, err) < 0 ||
        read_smtp_file("password", 1, &pass, &pass_len, err) < 0)
        goto out;
    if (*redis_password_file && !(redis_pass = fp_config_read_secret(redis_password_file, &redis_pass_len, &ferr))) {
        fp_error_set(err, ferr.code, "--redis-password-file: %s", ferr.msg);
        goto out;
    }
    /* a private relay's CA can come with the Secret (key ca.crt), like its url */
    const char *ca_file = email_ca_file;
    snprintf(secret_ca, sizeof secret_ca, "%s/ca.crt", email_smtp_dir);
    if (!*ca_file && access(secret_ca, R_OK) == 0)
        ca_file = secret_ca;
    fp_redis_config rc = {.sentinels = redis_sentinels, .master_name = redis_master, .password = redis_pass,
                          .connect_timeout_ms = 500, .command_timeout_ms = 2000, .tls = redis_tls};
    fp_email_config ec = {
        .url = url, .username = user, .password = pass ? pass : "", .ca_file = ca_file, .from = email_from,
        .to_field = email_to_field, .subject = email_subject, .text = email_text, .html = email_html,
        .rate_per_second = (long)email_rate, .timeout_ms = (long)email_timeout_ms,
        .max_connections = (int)email_max_connections, .ns = ns, .pipeline = slash + 1, .task = email_task,
        .redis = &rc, .min_replicas_ack = (int)min_replicas_ack, .sent_ttl_s = (long)(email_sent_ttl_ms / 1000),
    };
    if (!(k = fp_email_new(&ec, m, err)))
        *usage = err->code == FP_EINVAL;
out:
    fp_config_free_secret(url, url_len);
    fp_config_free_secret(user, user_len);
    fp_config_free_secret(pass, pass_len);
    fp_config_free_secret(redis_pass, redis_pass_len);
    return k;
}

/* The kinds by name; a kind's constructor reads its own --<kind>-* options. */
static const struct {
    const char *name;
    fp_task_kind *(*make)(fp_metrics *m, int *usage, fp_error *err);
} kinds[] = {
    {"webhook", new_webhook},
    {"email", new_email},
    {NULL, NULL},
};

/* Creates the kind named by --kind. NULL with *err; *usage when the command line is
 * at fault (exit 2). */
static fp_task_kind *new_kind(fp_metrics *m, int *usage, fp_error *err)
{
    char names[128] = "";
    for (size_t i = 0; kinds[i].name; i++) {
        if (strcmp(kinds[i].name, kind_name) == 0)
            return kinds[i].make(m, usage, err);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", kinds[i].name);
    }
    *usage = 1;
    fp_error_set(err, FP_EINVAL, "--kind: '%.40s' is not a kind (%s, moderate)", kind_name, names);
    return NULL;
}

/* The moderate kind has its own loop (transactions do not fit kind.h's attempts):
 * runs it with the --moderate-* options. The process's exit code. */
static int run_moderate(fp_metrics *metrics)
{
    char txid[512], host[256] = "";
    fp_error err = {0};
    if (!*output_topic || !*words_file) {
        fprintf(stderr, "formpipe-task: --output-topic and --moderate-words-file are required with --kind=moderate\n");
        return 2;
    }
    if (*transactional_id) {
        snprintf(txid, sizeof txid, "%s", transactional_id);
    } else {   /* the pod's name (downward API), else the hostname: stable across restarts of its container */
        const char *pod = getenv("FORMPIPE_POD_NAME");
        if (pod && *pod)
            snprintf(host, sizeof host, "%s", pod);
        else
            gethostname(host, sizeof host - 1);
        snprintf(txid, sizeof txid, "%s.%s", group, *host ? host : "task");
    }
    fp_moderate_config mc = {
        .topic = topic, .group = group, .dlq_topic = dlq_topic, .output_topic = output_topic,
        .kafka_bootstrap = kafka_bootstrap, .kafka_config_file = *kafka_config ? kafka_config : NULL,
        .kafka_properties = &kafka_properties, .transactional_id = txid, .words_file = words_file,
        .check = {.fields = &moderate_fields, .threshold = (long)moderate_threshold}, .filter = &filter,
        .reload_interval_ms = (long)words_reload_ms, .commit_interval_ms = (long)commit_interval_ms,
        .batch_max = (long)batch_max, .lag_interval_ms = (long)lag_interval_ms, .txn_timeout_ms = 30000,
    };
    fp_moderate *m = fp_moderate_new(&mc, metrics, &err);
    fp_admin *admin = NULL;
    int rc = 1;
    if (!m) {
        fprintf(stderr, "formpipe-task: %s\n", err.msg);
        rc = err.code == FP_EINVAL ? 2 : 1;
    } else if (!(admin = fp_admin_start(admin_bind, (int)admin_port, metrics, fp_moderate_ready, m, &err))) {
        fprintf(stderr, "formpipe-task: %s\n", err.msg);
    } else {
        fp_log_info("admin endpoints listening", FP_LSTR("bind", admin_bind), FP_LINT("port", fp_admin_port(admin)));
        rc = fp_moderate_run(m) ? 1 : 0;
    }
    fp_admin_stop(admin);
    fp_moderate_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    int status;
    if (fp_config_load("formpipe-task", "Runs one task kind over a pipeline's events.", options, NOPTIONS, argc, argv,
                       &status))
        return status;
    if (fp_log_setup("formpipe-task", "task", log_level)) {
        fp_config_free(options, NOPTIONS);
        return 2;
    }
    fp_admin_route_lws_logs();

    int rc = 1, usage = 0;
    fp_error err = {0};
    fp_metrics *metrics = fp_metrics_new(1000);
    fp_task_kind *kind = NULL;
    fp_runner *runner = NULL;
    fp_admin *admin = NULL;
    fp_runner_config cfg = {
        .topic = topic, .group = group, .dlq_topic = dlq_topic, .kafka_bootstrap = kafka_bootstrap,
        .kafka_config_file = *kafka_config ? kafka_config : NULL, .kafka_properties = &kafka_properties,
        .max_attempts = (int)max_attempts, .concurrency = (int)concurrency,
        .backoff_initial_ms = (long)backoff_initial_ms, .backoff_max_ms = (long)backoff_max_ms,
        .dead_letter_timeout_ms = (long)dead_letter_timeout_ms, .lag_interval_ms = (long)lag_interval_ms,
        .shutdown_grace_ms = (long)grace_ms, .filter = &filter,
    };
    if (!metrics || fp_shutdown_install()) {
        fprintf(stderr, "formpipe-task: cannot initialise (out of memory or signals)\n");
        goto out;
    }
    if (backoff_max_ms < backoff_initial_ms) {
        fprintf(stderr, "formpipe-task: --backoff-max must not be below --backoff-initial\n");
        rc = 2;
        goto out;
    }
    if (strcmp(kind_name, "moderate") == 0) {
        rc = run_moderate(metrics);
        goto out;
    }
    if (!(kind = new_kind(metrics, &usage, &err))) {
        fprintf(stderr, "formpipe-task: %s\n", err.msg);
        rc = usage ? 2 : 1;
        goto out;
    }
    if (!(runner = fp_runner_new(&cfg, kind, metrics, &err))) {   /* took the kind */
        fprintf(stderr, "formpipe-task: %s\n", err.msg);
        goto out;
    }
    if (!(admin = fp_admin_start(admin_bind, (int)admin_port, metrics, fp_runner_ready, runner, &err))) {
        fprintf(stderr, "formpipe-task: %s\n", err.msg);
        goto out;
    }
    fp_log_info("admin endpoints listening", FP_LSTR("bind", admin_bind), FP_LINT("port", fp_admin_port(admin)));
    rc = fp_runner_run(runner) ? 1 : 0;
out:
    fp_admin_stop(admin);
    fp_runner_free(runner);
    fp_metrics_free(metrics);
    fp_config_free(options, NOPTIONS);
    return rc;
}
