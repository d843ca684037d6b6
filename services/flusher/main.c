/* formpipe-flush: run by a CronJob; moves buffered rows of one pipeline to Google
 * Sheets once and exits: 0 when done (or another run holds the lock), 75 on a
 * retryable failure (the rows stay buffered for the next run), 1 on a configuration or
 * permission error (one line on stderr says what to fix), 2 on a bad command line, 3
 * when every spreadsheet of the list is full (add one). */
#include "buf.h"
#include "config.h"
#include "flusher.h"
#include "log.h"
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
static long long max_request_bytes, dead_letter_after, cell_limit;

static const fp_option options[] = {
    {"form", FP_OPT_STRING, NULL, "compiled form definition (JSON) from the pipeline's ConfigMap", FP_OPT_REQUIRED, 0, 0, &form_path},
    {"google-credentials", FP_OPT_STRING, "", "service-account key file (default $GOOGLE_APPLICATION_CREDENTIALS)", 0, 0, 0, &credentials},
    {"google-token-url", FP_OPT_STRING, "", "OAuth2 token endpoint (default: the key file's token_uri)", 0, 0, 0, &token_url},
    {"sheets-api-url", FP_OPT_STRING, "https://sheets.googleapis.com", "Sheets API base URL", 0, 0, 0, &api_base},
    {"spreadsheet-id", FP_OPT_LIST, NULL, "spreadsheet to write to; further ones are filled in order when one nears the cell limit", FP_OPT_REQUIRED, 0, 0, &spreadsheet_ids},
    {"spreadsheet-cell-limit", FP_OPT_INT, "10000000", "cells per spreadsheet (Google's limit); the next spreadsheet is used before a batch would pass it", 0, 1, 10000000, &cell_limit},
    {"sheet", FP_OPT_STRING, "Responses", "tab title inside the spreadsheet (any case; added when missing)", 0, 0, 0, &sheet},
    {"redis-sentinels", FP_OPT_STRING, NULL, "Redis sentinels host:port,...", FP_OPT_REQUIRED, 0, 0, &redis_sentinels},
    {"redis-master", FP_OPT_STRING, NULL, "Redis master name the sentinels monitor", FP_OPT_REQUIRED, 0, 0, &redis_master},
    {"redis-password-file", FP_OPT_STRING, "", "file holding the Redis password (mounted Secret)", 0, 0, 0, &redis_password_file},
    {"redis-connect-timeout", FP_OPT_DURATION, "500ms", "timeout per sentinel or master connection", 0, 1, 60000, &redis_connect_ms},
    {"redis-command-timeout", FP_OPT_DURATION, "5s", "timeout per Redis command", 0, 1, 60000, &redis_command_ms},
    {"min-replicas-ack", FP_OPT_INT, "1", "replicas that must confirm each state change (WAIT)", 0, 0, 16, &min_replicas},
    {"wait-timeout", FP_OPT_DURATION, "2s", "how long WAIT may take", 0, 1, 60000, &wait_ms},
    {"batch-rows", FP_OPT_INT, "5000", "rows per Sheets write", 0, 1, 50000, &batch_rows},
    {"max-run-time", FP_OPT_DURATION, "50s", "stop starting new batches after this long", 0, 1000, 3600000, &max_run_ms},
    {"lock-ttl", FP_OPT_DURATION, "60s", "flush lock lifetime, renewed before every batch", 0, 1000, 600000, &lock_ttl_ms},
    {"sheets-max-attempts", FP_OPT_INT, "8", "attempts per Sheets call on 429/5xx/network errors", 0, 1, 100, &max_attempts},
    {"sheets-backoff-initial", FP_OPT_DURATION, "1s", "first retry delay", 0, 1, 600000, &backoff_initial_ms},
    {"sheets-backoff-max", FP_OPT_DURATION, "32s", "longest retry delay", 0, 1, 600000, &backoff_max_ms},
    {"sheets-writes-per-minute", FP_OPT_INT, "60", "write requests per minute (the per-user quota)", 0, 1, 100000, &writes_per_minute},
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

int main(int argc, char **argv)
{
    int status;
    if (fp_config_load("formpipe-flush", "Writes one pipeline's buffered rows to Google Sheets, then exits.",
                       options, NOPTIONS, argc, argv, &status))
        return status;
    const char *key = *credentials ? credentials : getenv("GOOGLE_APPLICATION_CREDENTIALS");
    char *password = NULL;
    int rc = 2;
    if (fp_log_setup("formpipe-flush", "flush", log_level))
        goto out;
    if (!key || !*key) {
        fprintf(stderr, "formpipe-flush: --google-credentials is required (or set GOOGLE_APPLICATION_CREDENTIALS)\n");
        goto out;
    }
    fp_error perr = {0};
    if (*redis_password_file && !(password = fp_config_read_secret(redis_password_file, NULL, &perr))) {
        fprintf(stderr, "formpipe-flush: --redis-password-file: %s\n", perr.msg);
        goto out;
    }
    fp_shutdown_install();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fp_flusher_config cfg = {
        .form_path = form_path, .credentials_file = key, .token_url = token_url, .api_base = api_base,
        .spreadsheet_ids = (const char *const *)spreadsheet_ids.items, .nspreadsheets = spreadsheet_ids.n,
        .sheet = sheet, .redis_sentinels = redis_sentinels,
        .redis_master = redis_master, .redis_password = password,
        .redis_connect_timeout_ms = redis_connect_ms, .redis_command_timeout_ms = redis_command_ms,
        .min_replicas_ack = (int)min_replicas, .wait_timeout_ms = wait_ms, .batch_rows = (int)batch_rows,
        .max_run_ms = max_run_ms, .lock_ttl_ms = lock_ttl_ms, .max_attempts = (int)max_attempts,
        .backoff_initial_ms = backoff_initial_ms, .backoff_max_ms = backoff_max_ms,
        .writes_per_minute = (int)writes_per_minute, .http_timeout_ms = http_timeout_ms,
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
    fp_log_level level = frc ? FP_LOG_ERROR : FP_LOG_INFO;
    const char *what = frc ? "flush failed" : "flush finished";
    fp_log_write(level, what, summary);
    if (*termination_log)
        write_termination_log(termination_log, level, what, summary);
    if (frc)
        fprintf(stderr, "formpipe-flush: %s\n", err.msg);
    rc = frc == 0 ? 0 : (frc == FP_EIO || frc == FP_ETIMEOUT) ? 75 : sum.spreadsheets_full ? 3 : 1;   /* 75: EX_TEMPFAIL */
    curl_global_cleanup();
out:
    fp_config_free_secret(password, password ? strlen(password) : 0);
    fp_config_free(options, NOPTIONS);
    return rc;
}
