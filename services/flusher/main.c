/* formpipe-flush: run by a CronJob; moves buffered rows to Google Sheets once and
 * exits. Dedicated mode (--form and the sheet flags): one pipeline; 0 when done (or
 * another run holds the lock), 75 on a retryable failure (the rows stay buffered for
 * the next run), 1 on a configuration or permission error (one line on stderr says what
 * to fix), 2 on a bad command line, 3 when every spreadsheet of the list is full (add
 * one). Shared mode (--forms-dir, --credentials-dir): every pipeline of the directory
 * with rows waiting (shared.h); 0 when every pipeline finished or had nothing to do or
 * was left for the next run, 75 when any hit a retryable failure, 1 when any needs a
 * person (the others were still flushed), 2 on a bad command line. */
#include "buf.h"
#include "config.h"
#include "flusher.h"
#include "log.h"
#include "shared.h"
#include "shutdown.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *form_path, *credentials, *token_url, *api_base, *sheet;
static fp_strlist spreadsheet_ids;
static char *redis_sentinels, *redis_master, *redis_password_file, *log_level, *termination_log;
static long long redis_connect_ms, redis_command_ms, min_replicas, wait_ms, batch_rows, max_run_ms;
static long long lock_ttl_ms, max_attempts, backoff_initial_ms, backoff_max_ms, writes_per_minute, http_timeout_ms;
static long long max_request_bytes, dead_letter_after, cell_limit, budget_wpm, rows_per_turn;
static int sheets_allow_http;
static char *forms_dir, *credentials_dir;
static fp_redis_tls_flags redis_tls_flags;
static fp_redis_tls redis_tls;   /* from redis_tls_flags */

static const fp_option options[] = {
    {"form", FP_OPT_STRING, "", "dedicated mode: compiled form definition (JSON) from the pipeline's ConfigMap", 0, 0, 0, &form_path},
    {"forms-dir", FP_OPT_STRING, "", "shared mode: flush every pipeline of this directory of form files (the shared ConfigMap); each file's shared.sheets names its spreadsheets and credentials", 0, 0, 0, &forms_dir},
    {"credentials-dir", FP_OPT_STRING, "", "shared mode: where each pipeline's shared.sheets.credentials (<secret>/<key>) is found", 0, 0, 0, &credentials_dir},
    {"rows-per-turn", FP_OPT_INT, "0", "shared mode: rows one pipeline may write before the next waiting pipeline's turn (0: its batchRows)", 0, 0, 1000000, &rows_per_turn},
    {"google-credentials", FP_OPT_STRING, "", "dedicated mode: service-account key file (default $GOOGLE_APPLICATION_CREDENTIALS)", 0, 0, 0, &credentials},
    {"google-token-url", FP_OPT_STRING, "", "OAuth2 token endpoint (default: the key file's token_uri)", 0, 0, 0, &token_url},
    {"sheets-api-url", FP_OPT_STRING, "https://sheets.googleapis.com", "Sheets API base URL", 0, 0, 0, &api_base},
    {"sheets-allow-http", FP_OPT_BOOL, "false", "allow plain http:// to a non-loopback Sheets API URL and token endpoint (an emulator in the cluster; the key's JWT travels in clear)", 0, 0, 0, &sheets_allow_http},
    {"spreadsheet-id", FP_OPT_LIST, NULL, "dedicated mode: spreadsheet to write to; further ones are filled in order when one nears the cell limit", 0, 0, 0, &spreadsheet_ids},
    {"spreadsheet-cell-limit", FP_OPT_INT, "10000000", "cells per spreadsheet (Google's limit); the next spreadsheet is used before a batch would pass it", 0, 1, 10000000, &cell_limit},
    {"sheet", FP_OPT_STRING, "", "dedicated mode: tab title inside the spreadsheet (any case; added when missing; default Responses)", 0, 0, 0, &sheet},
    {"redis-sentinels", FP_OPT_STRING, NULL, "Redis sentinels host:port,...", FP_OPT_REQUIRED, 0, 0, &redis_sentinels},
    {"redis-master", FP_OPT_STRING, NULL, "Redis master name the sentinels monitor", FP_OPT_REQUIRED, 0, 0, &redis_master},
    {"redis-password-file", FP_OPT_STRING, "", "file holding the Redis password (mounted Secret)", 0, 0, 0, &redis_password_file},
    {"redis-connect-timeout", FP_OPT_DURATION, "500ms", "timeout per sentinel or master connection", 0, 1, 60000, &redis_connect_ms},
    {"redis-command-timeout", FP_OPT_DURATION, "5s", "timeout per Redis command", 0, 1, 60000, &redis_command_ms},
    FP_REDIS_TLS_OPTIONS(&redis_tls_flags),
    {"min-replicas-ack", FP_OPT_INT, "1", "replicas that must confirm each state change (WAIT)", 0, 0, 16, &min_replicas},
    {"wait-timeout", FP_OPT_DURATION, "2s", "how long WAIT may take", 0, 1, 60000, &wait_ms},
    {"batch-rows", FP_OPT_INT, "0", "dedicated mode: rows per Sheets write (0: 5000)", 0, 0, 50000, &batch_rows},
    {"max-run-time", FP_OPT_DURATION, "50s", "stop starting new batches after this long", 0, 1000, 3600000, &max_run_ms},
    {"lock-ttl", FP_OPT_DURATION, "60s", "flush lock lifetime, renewed before every batch", 0, 1000, 600000, &lock_ttl_ms},
    {"sheets-max-attempts", FP_OPT_INT, "8", "attempts per Sheets call on 429/5xx/network errors", 0, 1, 100, &max_attempts},
    {"sheets-backoff-initial", FP_OPT_DURATION, "1s", "first retry delay", 0, 1, 600000, &backoff_initial_ms},
    {"sheets-backoff-max", FP_OPT_DURATION, "32s", "longest retry delay", 0, 1, 600000, &backoff_max_ms},
    {"writes-per-minute", FP_OPT_INT, "0", "Sheets write requests per minute of one service account, shared through Redis by every run of that account (0: 60, Google's per-user quota)", 0, 0, 100000, &budget_wpm},
    {"sheets-writes-per-minute", FP_OPT_INT, "0", "the same as --writes-per-minute (its earlier name)", 0, 0, 100000, &writes_per_minute},
    {"sheets-max-request-bytes", FP_OPT_INT, "8388608", "largest values.batchUpdate body; a bigger batch is written in several requests", 0, 1024, 1073741824, &max_request_bytes},
    {"dead-letter-after", FP_OPT_INT, "3", "times Sheets may refuse a row (HTTP 4xx) before it moves to fp:{P}:dead", 0, 1, 100, &dead_letter_after},
    {"http-timeout", FP_OPT_DURATION, "60s", "timeout per HTTP request", 0, 100, 600000, &http_timeout_ms},
    {"termination-log", FP_OPT_STRING, "", "also write the summary line here at exit (Kubernetes' terminationMessagePath: the operator reads each run's outcome from it)", 0, 0, 0, &termination_log},
    {"log-level", FP_OPT_STRING, "info", "debug, info, warn or error", 0, 0, 0, &log_level},
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* Writes the summary line to path (at most the 4096 bytes a kubelet keeps of a
 * termination message). A failure is logged: the kubelet then falls back to the log. */
static void write_termination_log(const char *path, fp_log_level level, const char *msg, const fp_log_field *fields)
{
    fp_buf line;
    fp_buf_init(&line, 4096);
    FILE *f = NULL;
    if (fp_log_format(&line, level, msg, fields) < 0 || !(f = fopen(path, "w")) ||
        fwrite(line.data, 1, line.len, f) != line.len)
        fp_log_warn("cannot write the termination log", FP_LSTR("path", path));
    if (f)
        fclose(f);
    fp_buf_free(&line);
}

/* The command line's mode: 1 shared, 0 dedicated, -1 (with a line on stderr) when it
 * mixes them or misses what its mode needs. */
static int mode(void)
{
    int shared = *forms_dir != '\0';
    if (budget_wpm && writes_per_minute && budget_wpm != writes_per_minute) {
        fprintf(stderr, "formpipe-flush: --writes-per-minute and --sheets-writes-per-minute differ; give one\n");
        return -1;
    }
    if (shared) {
        if (*form_path || spreadsheet_ids.n || *sheet || *credentials || batch_rows) {
            fprintf(stderr, "formpipe-flush: --forms-dir takes each pipeline's settings from its form file: "
                            "drop --form, --spreadsheet-id, --sheet, --google-credentials and --batch-rows\n");
            return -1;
        }
        if (!*credentials_dir) {
            fprintf(stderr, "formpipe-flush: --forms-dir needs --credentials-dir\n");
            return -1;
        }
        return 1;
    }
    if (*credentials_dir || rows_per_turn) {
        fprintf(stderr, "formpipe-flush: --credentials-dir and --rows-per-turn belong to --forms-dir\n");
        return -1;
    }
    if (!*form_path || !spreadsheet_ids.n) {
        fprintf(stderr, "formpipe-flush: give --form and --spreadsheet-id (one pipeline) or --forms-dir and "
                        "--credentials-dir (every pipeline of a directory)\n");
        return -1;
    }
    return 0;
}

/* Logs the run's summary line, and writes it to the termination log when asked. */
static void summary_line(int failed, const fp_log_field *fields)
{
    fp_log_level level = failed ? FP_LOG_ERROR : FP_LOG_INFO;
    const char *what = failed ? "flush failed" : "flush finished";
    fp_log_write(level, what, fields);
    if (*termination_log)
        write_termination_log(termination_log, level, what, fields);
}

/* Dedicated mode: one pipeline. Returns the exit status. */
static int run_dedicated(const char *key, const char *password, int wpm)
{
    fp_flusher_config cfg = {
        .form_path = form_path, .credentials_file = key, .token_url = token_url, .api_base = api_base,
        .allow_http = sheets_allow_http, .spreadsheet_ids = (const char *const *)spreadsheet_ids.items, .nspreadsheets = spreadsheet_ids.n,
        .sheet = *sheet ? sheet : "Responses", .redis_sentinels = redis_sentinels,
        .redis_master = redis_master, .redis_password = password,
        .redis_connect_timeout_ms = redis_connect_ms, .redis_command_timeout_ms = redis_command_ms,
        .redis_tls = redis_tls, .min_replicas_ack = (int)min_replicas, .wait_timeout_ms = wait_ms,
        .batch_rows = batch_rows ? (int)batch_rows : 5000,
        .max_run_ms = max_run_ms, .lock_ttl_ms = lock_ttl_ms, .max_attempts = (int)max_attempts,
        .backoff_initial_ms = backoff_initial_ms, .backoff_max_ms = backoff_max_ms,
        .writes_per_minute = wpm, .http_timeout_ms = http_timeout_ms,
        .max_request_bytes = (size_t)max_request_bytes, .dead_letter_after = (int)dead_letter_after,
        .cell_limit = cell_limit,
    };
    fp_flush_summary sum;
    fp_error err = {0};
    int frc = fp_flusher_run(&cfg, &sum, &err);
    const fp_log_field summary[] = {FP_LINT("rows", sum.rows), FP_LINT("batches", sum.batches),
                                    FP_LINT("interrupted_batches_finished", sum.redone),
                                    FP_LINT("sheets_write_calls", sum.write_calls),
                                    FP_LINT("sheets_api_calls", sum.api_calls),
                                    FP_LINT("sheets_retries", sum.retries),
                                    FP_LINT("sheets_throttled", sum.throttled),
                                    FP_LINT("quota_wait_ms", sum.quota_wait_ms),
                                    FP_LINT("duration_ms", sum.duration_ms),
                                    FP_LBOOL("quota_spent", sum.quota_spent),
                                    FP_LINT("rows_left", sum.pending_left),
                                    FP_LINT("oldest_left_ms", sum.oldest_left_ms),
                                    FP_LBOOL("lock_busy", sum.lock_busy),
                                    FP_LINT("rows_dead_lettered", sum.dead_lettered),
                                    FP_LSTR("spreadsheet", sum.spreadsheet),
                                    FP_LBOOL("spreadsheets_full", sum.spreadsheets_full),
                                    FP_LSTR("error", frc ? err.msg : ""), FP_LEND};
    summary_line(frc != 0, summary);
    if (frc)
        fprintf(stderr, "formpipe-flush: %s\n", err.msg);
    return frc && sum.spreadsheets_full ? 3 : fp_flusher_exit_status(frc);
}

/* Shared mode: every pipeline of --forms-dir. Returns the exit status. */
static int run_shared(const char *password, int wpm)
{
    fp_shared_config cfg = {
        .forms_dir = forms_dir, .credentials_dir = credentials_dir, .rows_per_turn = rows_per_turn,
        .base = {.token_url = token_url, .api_base = api_base, .allow_http = sheets_allow_http,
                 .redis_sentinels = redis_sentinels,
                 .redis_master = redis_master, .redis_password = password,
                 .redis_connect_timeout_ms = redis_connect_ms, .redis_command_timeout_ms = redis_command_ms,
                 .redis_tls = redis_tls, .min_replicas_ack = (int)min_replicas, .wait_timeout_ms = wait_ms, .batch_rows = 5000,
                 .max_run_ms = max_run_ms, .lock_ttl_ms = lock_ttl_ms, .max_attempts = (int)max_attempts,
                 .backoff_initial_ms = backoff_initial_ms, .backoff_max_ms = backoff_max_ms,
                 .writes_per_minute = wpm, .http_timeout_ms = http_timeout_ms,
                 .max_request_bytes = (size_t)max_request_bytes, .dead_letter_after = (int)dead_letter_after,
                 .cell_limit = cell_limit},
    };
    fp_shared_summary sum;
    fp_error err = {0};
    int frc = fp_shared_run(&cfg, &sum, &err);
    int status = frc ? fp_flusher_exit_status(frc) : sum.exit_status;
    const char *error = frc ? err.msg : sum.first_error;
    const fp_log_field summary[] = {FP_LINT("pipelines", sum.pipelines), FP_LINT("bad_forms", sum.bad_forms),
                                    FP_LINT("pipelines_waiting", sum.waiting),
                                    FP_LINT("pipelines_flushed", sum.flushed),
                                    FP_LINT("pipelines_left_waiting", sum.left_waiting),
                                    FP_LINT("pipelines_retryable", sum.retryable),
                                    FP_LINT("pipelines_failed", sum.failed), FP_LINT("turns", sum.turns),
                                    FP_LINT("rows", sum.rows), FP_LINT("sheets_write_calls", sum.write_calls),
                                    FP_LINT("sheets_throttled", sum.throttled),
                                    FP_LINT("quota_wait_ms", sum.quota_wait_ms),
                                    FP_LINT("duration_ms", sum.duration_ms), FP_LINT("exit", status),
                                    FP_LSTR("error", error), FP_LEND};
    summary_line(status != 0, summary);
    if (status)
        fprintf(stderr, "formpipe-flush: %s\n", error);
    return status;
}

int main(int argc, char **argv)
{
    int status;
    if (fp_config_load("formpipe-flush", "Writes buffered rows of one pipeline (--form) or of every pipeline of a "
                       "directory (--forms-dir) to Google Sheets, then exits.",
                       options, NOPTIONS, argc, argv, &status))
        return status;
    const char *key = *credentials ? credentials : getenv("GOOGLE_APPLICATION_CREDENTIALS");
    char *password = NULL;
    int rc = 2, shared = mode();
    int wpm = budget_wpm ? (int)budget_wpm : writes_per_minute ? (int)writes_per_minute : 60;
    if (shared < 0 || fp_log_setup("formpipe-flush", "flush", log_level))
        goto out;
    if (!shared && (!key || !*key)) {
        fprintf(stderr, "formpipe-flush: --google-credentials is required (or set GOOGLE_APPLICATION_CREDENTIALS)\n");
        goto out;
    }
    fp_error perr = {0};
    if (fp_redis_tls_from_flags(&redis_tls_flags, &redis_tls, &perr)) {
        fprintf(stderr, "formpipe-flush: %s\n", perr.msg);
        goto out;
    }
    if (*redis_password_file && !(password = fp_config_read_secret(redis_password_file, NULL, &perr))) {
        fprintf(stderr, "formpipe-flush: --redis-password-file: %s\n", perr.msg);
        goto out;
    }
    fp_shutdown_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = shared ? run_shared(password, wpm) : run_dedicated(key, password, wpm);
    curl_global_cleanup();
out:
    fp_config_free_secret(password, password ? strlen(password) : 0);
    fp_config_free(options, NOPTIONS);
    return rc;
}
