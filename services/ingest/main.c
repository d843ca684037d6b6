/* formpipe-ingest: accepts form submissions over HTTP and publishes them to Kafka;
 * answers 202 only once Kafka has the event. See ingest.h. */
#include "admin.h"
#include "config.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "shutdown.h"

#include <sched.h>
#include <stdio.h>

static fp_strlist forms, kafka_properties, allowed_origins, trusted_proxies;
static char *forms_dir, *kafka_bootstrap, *kafka_config, *bind_addr, *log_level, *admin_bind, *token_key_file;
static long long port, threads, max_header, max_body, delivery_ms, message_ms, max_conns, idle_s, grace_ms, rate, burst;
static long long conns_per_client, request_timeout_s, token_ttl_s, admin_port;

static const fp_option options[] = {
    {"form", FP_OPT_LIST, NULL, "compiled form definition (JSON) to serve (or --forms-dir)", 0, 0, 0, &forms},
    {"forms-dir", FP_OPT_STRING, "", "serve every form file (*.json) of this directory, e.g. the mounted shared ConfigMap; files added, changed or removed take effect within a second, without a restart (instead of --form)", 0, 0, 0, &forms_dir},
    {"kafka-bootstrap", FP_OPT_STRING, NULL, "Kafka bootstrap servers host:port,...", FP_OPT_REQUIRED, 0, 0, &kafka_bootstrap},
    {"kafka-config", FP_OPT_STRING, "", "librdkafka properties file (security.protocol, sasl.*, ssl.*)", 0, 0, 0, &kafka_config},
    {"kafka-property", FP_OPT_LIST, NULL, "one librdkafka property key=value", 0, 0, 0, &kafka_properties},
    {"bind", FP_OPT_STRING, "0.0.0.0", "address to listen on", 0, 0, 0, &bind_addr},
    {"port", FP_OPT_INT, "8080", "HTTP port for the forms (also /healthz, /readyz; never /metrics)", 0, 1, 65535, &port},
    {"admin-bind", FP_OPT_STRING, "0.0.0.0", "address for /healthz, /readyz, /metrics (IPv4)", 0, 0, 0, &admin_bind},
    {"admin-port", FP_OPT_INT, "9090", "port for /healthz, /readyz, /metrics (0: any free port)", 0, 0, 65535, &admin_port},
    {"max-body-bytes", FP_OPT_INT, "65536", "largest accepted request body (a form's shared.ingest.maxBodyBytes may lower it for that form)", 0, 1, 16 * 1024 * 1024, &max_body},
    {"delivery-timeout", FP_OPT_DURATION, "5s", "answer 503 when Kafka has not acknowledged within this", 0, 100, 300000, &delivery_ms},
    {"kafka-message-timeout", FP_OPT_DURATION, "120s", "how long the producer keeps retrying a message (librdkafka message.timeout.ms); at least --delivery-timeout: a message still unconfirmed when its client got 503 goes on being delivered", 0, 100, 900000, &message_ms},
    {"max-connections", FP_OPT_INT, "4096", "most simultaneous connections; more are closed at accept", 0, 1, 1000000, &max_conns},
    {"max-header-bytes", FP_OPT_INT, "4096", "largest request line + headers; a larger request is dropped (connection closed)", 0, 512, 65535, &max_header},
    {"threads", FP_OPT_INT, "0", "service threads, each with its own listener on the port (0: four per usable CPU, at most 16)", 0, 0, 256, &threads},
    {"idle-timeout", FP_OPT_INT, "30", "seconds an idle connection is kept", 0, 1, 3600, &idle_s},
    {"shutdown-grace", FP_OPT_DURATION, "10s", "bound on answering in-flight submissions after SIGTERM", 0, 0, 300000, &grace_ms},
    {"allowed-origin", FP_OPT_LIST, NULL, "origin browsers may post from (CORS), e.g. https://example.com; * for any (a form's shared.ingest.allowedOrigins replace these for that form)", 0, 0, 0, &allowed_origins},
    {"rate-limit", FP_OPT_INT, "20", "submissions per second per client address (0: no limit)", 0, 0, 1000000, &rate},
    {"rate-burst", FP_OPT_INT, "40", "submissions a client may send at once before the rate applies", 0, 1, 1000000, &burst},
    {"trusted-proxy", FP_OPT_LIST, NULL, "address or CIDR (IPv4/IPv6) of peers whose X-Forwarded-For names the client (the ingress controller)", 0, 0, 0, &trusted_proxies},
    {"max-connections-per-client", FP_OPT_INT, "64", "most simultaneous connections from one client address (IPv6: its /64; trusted proxies exempt; 0: no limit)", 0, 0, 1000000, &conns_per_client},
    {"request-timeout", FP_OPT_INT, "10", "seconds from a request's head to its whole body; slower posts get 408", 0, 1, 3600, &request_timeout_s},
    {"token-key-file", FP_OPT_STRING, "", "file with the key (>= 16 bytes) signing submission tokens; every replica needs the same (empty: random per process)", 0, 0, 0, &token_key_file},
    {"token-ttl", FP_OPT_INT, "3600", "seconds a form page's submission token stays valid", 0, 60, 604800, &token_ttl_s},
    {"log-level", FP_OPT_STRING, "info", "debug, info, warn or error", 0, 0, 0, &log_level},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* CPUs this process may use: its CPU affinity, lowered to the cgroup's CPU quota
 * (cgroup v2 cpu.max, a container's CPU limit) when there is one; at least 1. */
static int cpus_available(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    long long quota, period;
    if (f) {   /* "max 100000": no quota */
        if (fscanf(f, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0) {
            long long limit = (quota + period - 1) / period;
            if (limit < n)
                n = (int)limit;
        }
        fclose(f);
    }
    return n > 0 ? n : 1;
}

/* Default --threads: four per usable CPU (lws's per-thread timer list is scanned on
 * every re-arm, so threads with fewer connections each are cheaper), at most 16. */
static int default_threads(void)
{
    int n = 4 * cpus_available();
    return n < 16 ? n : 16;
}

/* What the option table cannot check: one source of forms, and a producer bound no
 * shorter than the answer's. Prints one line and returns 0 when the options conflict. */
static int options_consistent(void)
{
    if ((forms.n > 0) == (forms_dir[0] != '\0')) {
        fprintf(stderr, "formpipe-ingest: give --form (one or more) or --forms-dir, not both\n");
        return 0;
    }
    if (message_ms < delivery_ms) {
        fprintf(stderr, "formpipe-ingest: --kafka-message-timeout (%lld ms) must be at least --delivery-timeout (%lld ms)\n",
                message_ms, delivery_ms);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    int status;
    if (fp_config_load("formpipe-ingest", "Validates form submissions and publishes them to Kafka.",
                       options, NOPTIONS, argc, argv, &status))
        return status;
    if (!options_consistent() || fp_log_setup("formpipe-ingest", "ingest", log_level)) {
        fp_config_free(options, NOPTIONS);
        return 2;
    }
    fp_admin_route_lws_logs();
    fp_shutdown_install();
    fp_metrics *metrics = fp_metrics_new(10000);
    fp_ingest_config cfg = {
        .forms = &forms, .forms_dir = forms_dir, .kafka_bootstrap = kafka_bootstrap, .kafka_config_file = kafka_config,
        .kafka_properties = &kafka_properties, .bind = bind_addr, .port = (int)port,
        .max_body_bytes = max_body, .delivery_timeout_ms = delivery_ms,
        .kafka_message_timeout_ms = message_ms, .max_connections = (int)max_conns,
        .max_header_bytes = (int)max_header, .threads = threads ? (int)threads : default_threads(),
        .idle_timeout_s = (int)idle_s, .shutdown_grace_ms = grace_ms, .allowed_origins = &allowed_origins,
        .rate_limit = (double)rate, .rate_burst = (double)burst, .trusted_proxies = &trusted_proxies,
        .max_connections_per_client = (int)conns_per_client, .request_timeout_s = (int)request_timeout_s,
        .token_key_file = token_key_file, .token_ttl_s = (int)token_ttl_s, .admin_bind = admin_bind,
        .admin_port = (int)admin_port,
    };
    fp_error err = {0};
    int rc = metrics ? fp_ingest_run(&cfg, metrics, &err) : FP_ENOMEM;
    if (rc)
        fprintf(stderr, "formpipe-ingest: %s\n", metrics ? err.msg : "out of memory");
    fp_metrics_free(metrics);
    fp_config_free(options, NOPTIONS);
    return rc ? 1 : 0;
}
