/* testkit.h — helpers for the integration tests: the environment that
 * `scripts/testenv env` exported, Kafka topics and events, and our binaries run as
 * child processes. Every helper fails the calling test loudly on error. */
#ifndef FP_TESTKIT_H
#define FP_TESTKIT_H

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <sys/types.h>

#include "deadletter.h"

/* The value of an environment variable, or the test fails naming it. */
const char *tk_env(const char *name);

/* A small file's contents without trailing newlines; caller frees. */
char *tk_read_file(const char *path);

/* Writes text to a new temporary file; returns its path (caller frees and unlinks). */
char *tk_write_temp(const char *text);

/* A name unique to this process and moment ("<prefix>-<pid>-<us>"). */
void tk_unique(char *out, size_t outsz, const char *prefix);

double tk_now(void);   /* monotonic seconds */

/* Kafka: create (partitions, broker-default replication) or delete a topic. */
void tk_topic_create(const char *topic, int partitions);
void tk_topic_delete(const char *topic);

/* An idempotent acks=all producer on FORMPIPE_KAFKA_BOOTSTRAP. */
rd_kafka_t *tk_producer(void);

/* Produces one value with a key and waits for nothing; call tk_flush at the end. */
void tk_produce(rd_kafka_t *p, const char *topic, const char *key, const char *value, size_t len);

/* Flushes and fails the test unless every message produced so far was acknowledged. */
void tk_flush(rd_kafka_t *p);

/* A child process running one of our binaries from the build's bin directory. */
typedef struct tk_proc {
    pid_t pid;
    char log[256];   /* its stderr+stdout */
    int admin_port;  /* formpipe-ingest's --admin-port (tk_start_ingest); 0 otherwise */
} tk_proc;

/* Starts bin/<name> with argv (NULL-terminated, without argv[0]); output to a log file. */
void tk_start(tk_proc *p, const char *name, const char *const *argv);

/* Sends sig and waits up to timeout_s for the exit; returns the exit status (or
 * 128+signal). Fails the test if it did not exit in time or its log holds a
 * sanitizer report. */
int tk_stop(tk_proc *p, int sig, double timeout_s);

/* Prints the last lines of the process log through cr_log_info (for failures). */
void tk_show_log(const tk_proc *p);

/* Waits up to timeout_s for the process to exit by itself; returns like tk_stop. */
int tk_wait(tk_proc *p, double timeout_s);

/* POSTs a JSON body to url (NULL body: GET); returns the status and the answer
 * (caller frees). */
long tk_http(const char *url, const char *json, char **body);

/* GETs http://127.0.0.1:port/path; returns the status and the body (caller frees; body may be NULL). */
long tk_http_get(int port, const char *path, char **body);

/* A Redis connection through the environment's sentinels, with its password (the
 * client keeps its own copy). Fails the test on a bad configuration. */
struct fp_redis *tk_redis(void);

/* Waits (up to 90 s) until the master r reaches reports both replicas online: a
 * failover earlier in the run leaves the sentinels some seconds of reconfiguration. */
struct fp_redis;
void tk_redis_settled(struct fp_redis *r);

/* Runs `scripts/testenv VERB COMPONENT` (kill / start), failing the test if it fails. */
void tk_testenv(const char *verb, const char *component);

/* testenv's name ("redis-1") for the Redis server listening on port. */
void tk_redis_component(int port, char *out, size_t outsz);

/* A consumer in a fresh group reading topic from the start (rd_kafka_consumer_close
 * and rd_kafka_destroy it; destroy every message first). */
rd_kafka_t *tk_kafka_reader(const char *topic);
/* The same with isolation.level "read_committed" or "read_uncommitted" (the outputs of
 * aborted transactions too). */
rd_kafka_t *tk_kafka_reader_isolated(const char *topic, const char *isolation_level);

/* Reads the dead letters on topic from the start (until want arrived or wait_s passed):
 * their headers into out[] and their payloads (at most 1023 bytes) into payloads[].
 * Messages without formpipe's dead-letter headers are skipped. Returns how many. */
int tk_read_dead_letters(const char *topic, fp_deadletter *out, char (*payloads)[1024], int want, double wait_s);

/* Runs a shell command (printf-style) with stdout and stderr captured into *out
 * (caller frees; may be NULL to discard). Returns its exit status. */
int tk_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs the command every 200 ms until its trimmed output equals want or timeout_s
 * passes; returns the seconds it took, or fails the test showing the last output. */
double tk_sh_until(double timeout_s, const char *want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A free TCP port on 127.0.0.1. */
int tk_free_port(void);

/* Starts formpipe-ingest for the form file on a free port of 127.0.0.1 (its admin port,
 * /metrics, on another: p->admin_port) with the extra options (NULL-terminated, may be
 * NULL), waits up to 30 s until ready_path answers 200 (fails the test otherwise) and
 * returns the port. form_path NULL: the extra options name the forms (--forms-dir). */
int tk_start_ingest(tk_proc *p, const char *form_path, const char *ready_path, const char *const *extra);

/* Sends method (GET, POST, OPTIONS...) to url with an optional Content-Type, body and
 * one extra header line ("Origin: ..."); returns the status, and the answer's headers
 * and body when asked (caller frees). Fails the test when there is no answer. */
long tk_http_request(const char *method, const char *url, const char *ctype, const char *body, const char *header,
                     char **headers_out, char **body_out);

/* Writes the files of a mounted ConfigMap volume the way the kubelet does (its
 * AtomicWriter): the whole payload (names[i] -> texts[i], n files) into a new hidden
 * `..<version>` directory of dir, `..data` swapped to it with a rename, a link
 * `<name> -> ..data/<name>` for each new name, links of names no longer in the payload
 * and the old version removed. */
void tk_kubelet_write(const char *dir, const char *const *names, const char *const *texts, size_t n);

/* The Sheets emulator (FORMPIPE_SHEETS_URL): POSTs json to a /_control path (NULL json:
 * GET) and returns the parsed answer (cJSON_Delete it); the test fails unless it is 200. */
cJSON *tk_sheets_control(const char *path, const char *json);

/* A fresh service account for email: an RSA key written as a key file at path (with the
 * emulator's token_uri), registered with the emulator unless trusted is 0. */
void tk_sheets_key(const char *email, const char *path, int trusted);

/* Creates (or replaces) spreadsheet id with one tab of rows x 26 shared with email. */
void tk_sheets_create(const char *id, const char *tab, int rows, const char *email);

#endif
