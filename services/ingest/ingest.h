/* ingest.h — formpipe-ingest's HTTP server: POST /forms/<name> validates and
 * sanitizes a submission against its form, publishes it as a CloudEvent to the form's
 * Kafka topic, and answers 202 {"id": ...} only once the delivery report says Kafka
 * has it (idempotent producer, acks=all). Also GET /healthz, /readyz on the service
 * port, and /healthz, /readyz, /metrics on the admin port (never on the public one). */
#ifndef FP_INGEST_H
#define FP_INGEST_H

#include "config.h"
#include "error.h"
#include "metrics.h"

typedef struct fp_ingest_config {
    const fp_strlist *forms;        /* compiled form definition files (--form) */
    const char *forms_dir;          /* or a directory of them (--forms-dir); NULL/"": --form */
    const char *kafka_bootstrap;
    const char *kafka_config_file;  /* may be NULL */
    const fp_strlist *kafka_properties;
    const char *bind;
    int port;
    long max_body_bytes;
    long delivery_timeout_ms;       /* 503 when Kafka has not acknowledged by then */
    long kafka_message_timeout_ms;  /* the producer's own bound (>= delivery_timeout_ms) */
    int max_connections;            /* open client connections; more are closed at accept */
    int max_header_bytes;           /* request line + headers */
    int idle_timeout_s;
    int threads;                    /* service threads (one lws context each) */
    long shutdown_grace_ms;
    const fp_strlist *allowed_origins;  /* CORS: origins browsers may post from ("*": any) */
    double rate_limit;                  /* submissions per second per client; 0: off */
    double rate_burst;
    const fp_strlist *trusted_proxies;  /* CIDRs of peers whose X-Forwarded-For names the client */
    int max_connections_per_client;     /* open connections per client address (IPv6: /64); 0: off */
    int request_timeout_s;              /* from a request's head to its whole body */
    const char *token_key_file;         /* submission-token key; NULL/"": random per process */
    int token_ttl_s;                    /* how long a page's submission token is valid */
    const char *admin_bind;             /* /metrics (and /healthz, /readyz) off the public port */
    int admin_port;                     /* 0: any free port */
} fp_ingest_config;

/* Serves until SIGTERM/SIGINT, then finishes in-flight requests (bounded by
 * shutdown_grace_ms), flushes the producer and returns 0. Nonzero with *err when a
 * form or the configuration is bad, or the port can't be bound. */
int fp_ingest_run(const fp_ingest_config *cfg, fp_metrics *metrics, fp_error *err);

#endif
