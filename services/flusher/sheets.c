/* sheets.c — see sheets.h. */
#include "sheets.h"
#include "urlpolicy.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "shutdown.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FP_SHEETS_MAX_RESPONSE (64 * 1024 * 1024)

struct fp_sheets {
    fp_sheets_config cfg;
    fp_gauth *auth;
    CURL *curl;
    unsigned seed;
    long write_calls;
    long api_calls;
    long retries;
    long throttled;             /* answers 429 (Google's quota) */
    long long quota_wait_ms;    /* time spent pacing to the quota and backing off after 429 */
    double *write_times;   /* ring of the last writes_per_minute write times */
    int write_next;
};


fp_sheets *fp_sheets_new(const fp_sheets_config *cfg, fp_gauth *auth, fp_error *err)
{
    fp_sheets *s = calloc(1, sizeof *s);
    if (!s || !(s->curl = curl_easy_init()) ||
        !(s->write_times = calloc((size_t)(cfg->writes_per_minute > 0 ? cfg->writes_per_minute : 1), sizeof(double)))) {
        fp_sheets_free(s);
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->auth = auth;
    s->seed = (unsigned)time(NULL) ^ (unsigned)(size_t)s;
    for (int i = 0; i < cfg->writes_per_minute; i++)
        s->write_times[i] = -1e9;
    return s;
}

void fp_sheets_free(fp_sheets *s)
{
    if (!s)
        return;
    if (s->curl)
        curl_easy_cleanup(s->curl);
    free(s->write_times);
    free(s);
}

void fp_sheets_set_target(fp_sheets *s, const char *spreadsheet_id, const char *sheet)
{
    s->cfg.spreadsheet_id = spreadsheet_id;
    s->cfg.sheet = sheet;
}

long fp_sheets_write_calls(const fp_sheets *s) { return s->write_calls; }
long fp_sheets_api_calls(const fp_sheets *s) { return s->api_calls; }
long fp_sheets_retries(const fp_sheets *s) { return s->retries; }

long fp_sheets_throttled(const fp_sheets *s) { return s->throttled; }

long long fp_sheets_quota_wait_ms(const fp_sheets *s) { return s->quota_wait_ms; }

int fp_sheets_writes_available(const fp_sheets *s)
{
    int n = s->cfg.writes_per_minute, free_slots = 0;
    double now = fp_clock_mono_s();
    for (int i = 0; i < n; i++)
        free_slots += s->write_times[i] + 60.0 <= now;
    return free_slots;
}

void fp_sheets_column(int col, char out[8])
{
    char tmp[8];
    int n = 0;
    while (col > 0 && n < 7) {
        int r = (col - 1) % 26;
        tmp[n++] = (char)('A' + r);
        col = (col - 1) / 26;
    }
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

int fp_sheets_a1(char *out, size_t outsz, const char *sheet, long long r1, int c1, long long r2, int c2)
{
    fp_buf b;
    char a[8], z[8];
    fp_buf_init(&b, outsz - 1);
    int rc = fp_buf_adds(&b, "'");
    for (const char *p = sheet; *p && !rc; p++)
        rc = *p == '\'' ? fp_buf_adds(&b, "''") : fp_buf_add(&b, p, 1);
    fp_sheets_column(c1, a);
    fp_sheets_column(c2, z);
    if (!rc)
        rc = fp_buf_printf(&b, "'!%s%lld:%s%lld", a, r1, z, r2);
    if (!rc)
        memcpy(out, b.data, b.len + 1);
    fp_buf_free(&b);
    return rc ? FP_ELIMIT : 0;
}

long fp_sheets_backoff_ms(int attempt, long initial_ms, long max_ms, unsigned *seed)
{
    long wait = initial_ms;
    for (int i = 0; i < attempt && wait < max_ms; i++)
        wait *= 2;
    wait += (long)(rand_r(seed) % 1000);
    return wait > max_ms ? max_ms : wait;
}

/* Takes one unit of the shared budget, waiting for it (waiting is not a retry: no
 * attempt is spent). FP_EIO when Redis cannot say, FP_ETIMEOUT after
 * budget_max_wait_ms, FP_EIO on shutdown. */
static int take_budget(fp_sheets *s, fp_error *err)
{
    long long waited = 0, limit = s->cfg.budget_max_wait_ms > 0 ? s->cfg.budget_max_wait_ms : 600000;
    for (;;) {
        long long wait = 0;
        int rc = fp_budget_take(s->cfg.budget, &wait, err);
        if (rc < 0)
            return rc;
        if (wait == 0)
            return 0;
        if (fp_shutdown_requested())
            return fp_error_set(err, FP_EIO, "shutting down while waiting for the Sheets write budget");
        if (waited >= limit)
            return fp_error_set(err, FP_ETIMEOUT, "waited %lld ms for the Sheets write budget %s", waited,
                                s->cfg.budget->key);
        fp_shutdown_sleep((long)wait);
        waited += wait;
        s->quota_wait_ms += wait;
    }
}

/* Waits until one more write keeps us within writes_per_minute. */
static void pace_write(fp_sheets *s)
{
    int n = s->cfg.writes_per_minute;
    if (n <= 0)
        return;
    double oldest = s->write_times[s->write_next];   /* the write n writes ago */
    double wait = oldest + 60.0 - fp_clock_mono_s();
    if (wait > 0) {
        fp_log_info("pacing writes to the Sheets quota", FP_LINT("wait_ms", (long long)(wait * 1000)),
                    FP_LINT("writes_per_minute", n));
        fp_shutdown_sleep((long)(wait * 1000) + 1);
        s->quota_wait_ms += (long long)(wait * 1000) + 1;
    }
    s->write_times[s->write_next] = fp_clock_mono_s();
    s->write_next = (s->write_next + 1) % n;
    s->write_calls++;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    return fp_buf_add(userdata, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
    long *retry_after = userdata;
    if (size * n > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        *retry_after = atol(p + 12);
    return size * n;
}

void fp_sheets_error_message(const char *body, char *out, size_t outsz)
{
    cJSON *doc = body ? cJSON_Parse(body) : NULL;
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "error"), "message"));
    snprintf(out, outsz, "%.300s", m ? m : body ? body : "");
    cJSON_Delete(doc);
}

/* The code of a refusal Google gives only as text (status INVALID_ARGUMENT, no reason):
 * the workbook's cell limit is FP_ELIMIT, so callers decide on a code. This is the one
 * place that reads Google's message. */
static int refusal_code(const char *msg)
{
    return strstr(msg, "number of cells in the workbook") ? FP_ELIMIT : FP_EINVAL;
}

static int retryable(long status)
{
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/* One API call with retries. path is appended to api_base; body NULL for GET.
 * On success *out (may be NULL) receives the parsed JSON answer. */
static int call(fp_sheets *s, const char *path, const char *body, int is_write, cJSON **out, fp_error *err)
{
    char url[2048], auth[4200], msg[400];
    int refreshed = 0;
    snprintf(url, sizeof url, "%s%s", s->cfg.api_base, path);
    for (int attempt = 0;; attempt++) {
        const char *token;
        int rc = fp_gauth_token(s->auth, s->curl, s->cfg.allow_http, &token, err);
        long status = 0, retry_after = -1;
        CURLcode cc = CURLE_OK;
        fp_buf resp;
        fp_buf_init(&resp, FP_SHEETS_MAX_RESPONSE);
        if (rc == FP_EPERM || rc == FP_ENOMEM || rc == FP_EINVAL)
            return rc;   /* bad credentials: retrying can't help */
        if (!rc && is_write && s->cfg.budget && (rc = take_budget(s, err)) < 0)
            return rc;
        if (!rc) {
            if (is_write)
                pace_write(s);
            struct curl_slist *h = NULL;
            if (snprintf(auth, sizeof auth, "Authorization: Bearer %s", token) >= (int)sizeof auth)
                return fp_error_set(err, FP_EINVAL, "the access token is longer than %zu bytes", sizeof auth - 22);
            h = curl_slist_append(h, auth);
            h = curl_slist_append(h, "Content-Type: application/json");
            curl_easy_reset(s->curl);
            curl_easy_setopt(s->curl, CURLOPT_URL, url);
            curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS_STR, fp_urlpolicy_protocols(url, s->cfg.allow_http));
            curl_easy_setopt(s->curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
            curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, s->cfg.timeout_ms);
            curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_body);
            curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, &resp);
            curl_easy_setopt(s->curl, CURLOPT_HEADERFUNCTION, on_header);
            curl_easy_setopt(s->curl, CURLOPT_HEADERDATA, &retry_after);
            if (body)
                curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
            cc = curl_easy_perform(s->curl);
            s->api_calls++;
            curl_slist_free_all(h);
            curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
            if (cc == CURLE_OK && status == 200) {
                if (out && !(*out = cJSON_Parse(resp.data ? resp.data : ""))) {
                    fp_buf_free(&resp);
                    return fp_error_set(err, FP_EIO, "Sheets API answered %s with something that is not JSON", path);
                }
                fp_buf_free(&resp);
                return 0;
            }
            fp_sheets_error_message(resp.data, msg, sizeof msg);
            if (cc == CURLE_OK && status == 401 && !refreshed) {
                fp_log_info("access token refused (401); fetching a new one");
                fp_gauth_invalidate(s->auth);
                refreshed = 1;
                fp_buf_free(&resp);
                attempt--;
                continue;
            }
            if (cc == CURLE_OK && !retryable(status)) {
                fp_buf_free(&resp);
                if (status == 403)
                    return fp_error_set(err, FP_EPERM, "spreadsheet %s is not shared with %s (HTTP 403: %s)",
                                        s->cfg.spreadsheet_id, fp_gauth_email(s->auth), msg);
                if (status == 404)
                    return fp_error_set(err, FP_ENOTFOUND, "spreadsheet %s was not found (HTTP 404: %s)",
                                        s->cfg.spreadsheet_id, msg);
                return fp_error_set(err, refusal_code(msg), "Sheets API refused %s: HTTP %ld: %s", path, status, msg);
            }
        }
        fp_buf_free(&resp);
        if (attempt + 1 >= s->cfg.max_attempts || fp_shutdown_requested()) {
            if (cc != CURLE_OK)
                return fp_error_set(err, FP_EIO, "Sheets API %s: %s (after %d attempts)", path,
                                    curl_easy_strerror(cc), attempt + 1);
            return rc ? rc : fp_error_set(err, FP_EIO, "Sheets API %s: HTTP %ld: %s (after %d attempts)",
                                          path, status, msg, attempt + 1);
        }
        long wait = fp_sheets_backoff_ms(attempt, s->cfg.backoff_initial_ms, s->cfg.backoff_max_ms, &s->seed);
        if (retry_after >= 0 && retry_after * 1000 > wait)
            wait = retry_after * 1000 > s->cfg.backoff_max_ms ? s->cfg.backoff_max_ms : retry_after * 1000;
        fp_log_warn("Sheets API call failed; retrying", FP_LSTR("path", path), FP_LINT("status", status),
                    FP_LSTR("error", cc != CURLE_OK ? curl_easy_strerror(cc) : rc ? err->msg : msg),
                    FP_LINT("backoff_ms", wait), FP_LINT("attempt", attempt + 1));
        s->retries++;
        if (cc == CURLE_OK && status == 429) {
            s->throttled++;
            s->quota_wait_ms += wait;
        }
        fp_shutdown_sleep(wait);
    }
}

/* Percent-encodes s for a URL path segment. */
static int add_escaped(fp_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = fp_buf_add(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = fp_buf_add(b, e, 3);
        }
    }
    return rc;
}

/* "/v4/spreadsheets/<id><suffix>" with the id escaped; caller frees. */
static char *spreadsheet_path(const fp_sheets *s, const char *suffix)
{
    fp_buf b;
    fp_buf_init(&b, 4096);
    if (fp_buf_adds(&b, "/v4/spreadsheets/") || add_escaped(&b, s->cfg.spreadsheet_id) || fp_buf_adds(&b, suffix)) {
        fp_buf_free(&b);
        return NULL;
    }
    return fp_buf_take(&b);
}

/* Finds the tab titled sheet (any case, as Google matches titles) in a parsed
 * spreadsheets.get answer, and adds up the cells of every tab. */
static int grid_of(const cJSON *doc, const char *sheet, fp_sheets_tab *out)
{
    const cJSON *tab;
    int rc = FP_ENOTFOUND;
    out->cells = 0;
    cJSON_ArrayForEach(tab, cJSON_GetObjectItemCaseSensitive(doc, "sheets")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(tab, "properties");
        const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "title"));
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(p, "gridProperties");
        long long rows = (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(g, "rowCount"));
        long long cols = (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(g, "columnCount"));
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(g, "rowCount")))
            continue;
        out->cells += rows * (cols > 0 ? cols : 0);
        if (rc == 0 || !title || strcasecmp(title, sheet) != 0 || strlen(title) >= sizeof out->title)
            continue;
        out->sheet_id = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(p, "sheetId"));
        out->rows = rows;
        out->cols = cols;
        memcpy(out->title, title, strlen(title) + 1);
        rc = 0;
    }
    return rc;
}

int fp_sheets_parse_grid(const char *json, const char *sheet, fp_sheets_tab *tab, fp_error *err)
{
    cJSON *doc = cJSON_Parse(json);
    int rc;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "sheets")))
        rc = fp_error_set(err, FP_EINVAL, "spreadsheets.get answered without a sheets list");
    else if ((rc = grid_of(doc, sheet, tab)))
        fp_error_set(err, rc, "the spreadsheet has no tab named '%s'", sheet);
    cJSON_Delete(doc);
    return rc;
}

int fp_sheets_grid(fp_sheets *s, fp_sheets_tab *tab, fp_error *err)
{
    cJSON *doc = NULL;
    char *path = spreadsheet_path(s, "?fields=sheets.properties");
    if (!path)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    int rc = call(s, path, NULL, 0, &doc, err);
    free(path);
    if (rc)
        return rc;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "sheets")))
        rc = fp_error_set(err, FP_EINVAL, "spreadsheets.get of %s answered without a sheets list", s->cfg.spreadsheet_id);
    else if ((rc = grid_of(doc, s->cfg.sheet, tab)))
        fp_error_set(err, rc, "spreadsheet %s has no tab named '%s'", s->cfg.spreadsheet_id, s->cfg.sheet);
    cJSON_Delete(doc);
    return rc;
}

/* POSTs body (JSON text) as a write call to /v4/spreadsheets/<id><suffix>. */
static int post_write(fp_sheets *s, const char *suffix, const char *body, fp_error *err)
{
    char *path = spreadsheet_path(s, suffix);
    int rc = path ? call(s, path, body, 1, NULL, err) : fp_error_set(err, FP_ENOMEM, "out of memory");
    free(path);
    return rc;
}

/* POSTs a spreadsheets.batchUpdate whose one request is built by the printf-style
 * format (every allocation checked: a short request is never sent). */
static int batch_update(fp_sheets *s, fp_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int batch_update(fp_sheets *s, fp_error *err, const char *fmt, ...)
{
    char request[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(request, sizeof request, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof request)
        return fp_error_set(err, FP_ELIMIT, "batchUpdate request too long");
    fp_buf body;
    fp_buf_init(&body, sizeof request + 32);
    int rc = fp_buf_printf(&body, "{\"requests\":[%s]}", request);
    rc = rc ? fp_error_set(err, FP_ENOMEM, "out of memory") : post_write(s, ":batchUpdate", body.data, err);
    fp_buf_free(&body);
    return rc;
}

int fp_sheets_add_sheet(fp_sheets *s, fp_error *err)
{
    fp_buf title;
    fp_buf_init(&title, 800);
    int rc = fp_buf_add_json_string(&title, s->cfg.sheet, strlen(s->cfg.sheet));
    if (rc)
        rc = fp_error_set(err, FP_ELIMIT, "sheet name '%.100s' is too long", s->cfg.sheet);
    else
        rc = batch_update(s, err, "{\"addSheet\":{\"properties\":{\"title\":%s}}}", title.data);
    fp_buf_free(&title);
    return rc;
}

int fp_sheets_append_dimension(fp_sheets *s, int sheet_id, int columns, long long n, fp_error *err)
{
    return batch_update(s, err, "{\"appendDimension\":{\"sheetId\":%d,\"dimension\":\"%s\",\"length\":%lld}}",
                        sheet_id, columns ? "COLUMNS" : "ROWS", n);
}

int fp_sheets_last_row(fp_sheets *s, long long *row, fp_error *err)
{
    char range[1024];
    fp_buf b;
    cJSON *doc = NULL;
    fp_buf_init(&b, 8192);
    /* 'Sheet'!A:A — an open column range, quotes in the name doubled, then escaped. */
    fp_buf r;
    fp_buf_init(&r, sizeof range - 1);
    int rc = fp_buf_adds(&r, "'");
    for (const char *p = s->cfg.sheet; *p && !rc; p++)
        rc = *p == '\'' ? fp_buf_adds(&r, "''") : fp_buf_add(&r, p, 1);
    if (!rc)
        rc = fp_buf_adds(&r, "'!A:A");
    char *prefix = spreadsheet_path(s, "/values/");
    if (!rc && (!prefix || fp_buf_adds(&b, prefix) || add_escaped(&b, r.data)))
        rc = FP_ENOMEM;
    free(prefix);
    fp_buf_free(&r);
    if (rc) {
        fp_buf_free(&b);
        return fp_error_set(err, rc, "sheet name too long for a range");
    }
    rc = call(s, b.data, NULL, 0, &doc, err);
    fp_buf_free(&b);
    if (rc)
        return rc;
    *row = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "values"));
    cJSON_Delete(doc);
    return 0;
}

size_t fp_sheets_part_rows(const size_t *lens, size_t n, size_t overhead, size_t max_bytes)
{
    size_t k = 0, total = overhead;
    while (k < n && (k == 0 || total + lens[k] + 1 <= max_bytes))
        total += lens[k++] + 1;   /* the row and its separator */
    return k;
}

/* The body of one values.batchUpdate up to (not including) its rows, for rows r1..r2:
 * RAW, so a "=SUM()" stays text. */
static int write_prefix(fp_sheets *s, fp_buf *b, long long r1, long long r2, int ncols, fp_error *err)
{
    char range[1024];
    if (fp_sheets_a1(range, sizeof range, s->cfg.sheet, r1, 1, r2, ncols))
        return fp_error_set(err, FP_ELIMIT, "sheet name too long for a range");
    int rc = fp_buf_adds(b, "{\"valueInputOption\":\"RAW\",\"data\":[{\"range\":");
    if (!rc)
        rc = fp_buf_add_json_string(b, range, strlen(range));
    if (!rc)
        rc = fp_buf_adds(b, ",\"majorDimension\":\"ROWS\",\"values\":[");
    return rc ? fp_error_set(err, FP_ENOMEM, "out of memory building a write request") : 0;
}

static const char write_suffix[] = "]}]}";

/* One values.batchUpdate with rows[0..n) at start_row. */
static int write_part(fp_sheets *s, long long start_row, int ncols, const char *const *rows, const size_t *lens,
                      size_t n, size_t bytes, fp_error *err)
{
    fp_buf body;
    fp_buf_init(&body, bytes + sizeof write_suffix + 2048);
    int rc = write_prefix(s, &body, start_row, start_row + (long long)n - 1, ncols, err);
    for (size_t i = 0; i < n && !rc; i++) {
        if ((i && fp_buf_adds(&body, ",")) || fp_buf_add(&body, rows[i], lens[i]))
            rc = fp_error_set(err, FP_ENOMEM, "out of memory building a write request");
    }
    if (!rc && fp_buf_adds(&body, write_suffix))
        rc = fp_error_set(err, FP_ENOMEM, "out of memory building a write request");
    if (!rc)
        rc = post_write(s, "/values:batchUpdate", body.data, err);
    fp_buf_free(&body);
    return rc;
}

int fp_sheets_write(fp_sheets *s, long long start_row, int ncols, const char *const *rows, const size_t *lens,
                    size_t n, fp_error *err)
{
    /* Every part's range is no longer than the whole batch's: its overhead bounds theirs. */
    fp_buf prefix;
    fp_buf_init(&prefix, 4096);
    int rc = write_prefix(s, &prefix, start_row, start_row + (long long)n - 1, ncols, err);
    size_t overhead = prefix.len + sizeof write_suffix;
    fp_buf_free(&prefix);
    for (size_t done = 0; done < n && !rc;) {
        size_t k = fp_sheets_part_rows(lens + done, n - done, overhead, s->cfg.max_request_bytes), bytes = overhead;
        for (size_t i = done; i < done + k; i++)
            bytes += lens[i] + 1;
        rc = write_part(s, start_row + (long long)done, ncols, rows + done, lens + done, k, bytes, err);
        done += k;
    }
    return rc;
}

int fp_sheets_row_data(fp_buf *b, const char *row, size_t len)
{
    cJSON *cells = cJSON_ParseWithLength(row, len);
    if (!cJSON_IsArray(cells)) {
        cJSON_Delete(cells);
        return FP_EINVAL;
    }
    int rc = fp_buf_adds(b, "{\"values\":[");
    const cJSON *c;
    cJSON_ArrayForEach(c, cells) {
        if (rc || (c != cells->child && (rc = fp_buf_adds(b, ","))))
            break;
        if (cJSON_IsString(c)) {
            if (!(rc = fp_buf_adds(b, "{\"userEnteredValue\":{\"stringValue\":")) &&
                !(rc = fp_buf_add_json_string(b, c->valuestring, strlen(c->valuestring))))
                rc = fp_buf_adds(b, "}}");
        } else if (cJSON_IsNumber(c) || cJSON_IsBool(c)) {
            char *v = cJSON_PrintUnformatted(c);
            const char *kind = cJSON_IsBool(c) ? "boolValue" : "numberValue";
            rc = v ? fp_buf_printf(b, "{\"userEnteredValue\":{\"%s\":%s}}", kind, v) : FP_ENOMEM;
            free(v);
        } else if (cJSON_IsNull(c)) {
            rc = fp_buf_adds(b, "{}");
        } else {
            rc = FP_EINVAL;   /* a nested array or object is no cell */
        }
    }
    if (!rc)
        rc = fp_buf_adds(b, "]}");
    cJSON_Delete(cells);
    return rc;
}

static const char grow_suffix[] = "]}}]}";

int fp_sheets_write_growing(fp_sheets *s, int sheet_id, long long grow_rows, long long start_row, int ncols,
                            const char *const *rows, const size_t *lens, size_t n, fp_error *err)
{
    if (grow_rows <= 0 || n == 0)
        return fp_sheets_write(s, start_row, ncols, rows, lens, n, err);
    fp_buf body, cell;
    fp_buf_init(&body, s->cfg.max_request_bytes + FP_SHEETS_MAX_ROW_DATA);
    fp_buf_init(&cell, FP_SHEETS_MAX_ROW_DATA);
    int rc = fp_buf_printf(&body,
                           "{\"requests\":[{\"appendDimension\":"
                           "{\"sheetId\":%d,\"dimension\":\"ROWS\",\"length\":%lld}},"
                           "{\"updateCells\":{\"start\":{\"sheetId\":%d,\"rowIndex\":%lld,\"columnIndex\":0},"
                           "\"fields\":\"userEnteredValue\",\"rows\":[",
                           sheet_id, grow_rows, sheet_id, start_row - 1);
    size_t k = 0;
    while (!rc && k < n) {
        fp_buf_reset(&cell);
        if ((rc = fp_sheets_row_data(&cell, rows[k], lens[k])))
            break;
        /* the first row always goes; later ones while the request stays under the bound */
        if (k && body.len + 1 + cell.len + sizeof grow_suffix > s->cfg.max_request_bytes)
            break;
        if (!(rc = k ? fp_buf_adds(&body, ",") : 0))
            rc = fp_buf_add(&body, cell.data, cell.len);
        k += rc == 0;
    }
    if (!rc)
        rc = fp_buf_adds(&body, grow_suffix);
    if (rc == FP_EINVAL)
        rc = fp_error_set(err, FP_EINVAL, "row %lld is not a JSON array of cells", start_row + (long long)k);
    else if (rc == FP_ELIMIT)   /* a refusal of that row, not the workbook's limit */
        rc = fp_error_set(err, FP_EINVAL, "row %lld is too large for one request", start_row + (long long)k);
    else if (rc)
        rc = fp_error_set(err, rc, "out of memory building a write request");
    else
        rc = post_write(s, ":batchUpdate", body.data, err);
    fp_buf_free(&cell);
    fp_buf_free(&body);
    if (!rc && k < n)
        rc = fp_sheets_write(s, start_row + (long long)k, ncols, rows + k, lens + k, n - k, err);
    return rc;
}

int fp_sheets_clear(fp_sheets *s, long long r1, long long r2, int ncols, fp_error *err)
{
    char range[1024];
    fp_buf body;
    if (fp_sheets_a1(range, sizeof range, s->cfg.sheet, r1, 1, r2, ncols))
        return fp_error_set(err, FP_ELIMIT, "sheet name too long for a range");
    fp_buf_init(&body, sizeof range * 2 + 64);
    int rc = fp_buf_adds(&body, "{\"ranges\":[");
    if (!rc)
        rc = fp_buf_add_json_string(&body, range, strlen(range));
    if (!rc)
        rc = fp_buf_adds(&body, "]}");
    rc = rc ? fp_error_set(err, FP_ENOMEM, "out of memory") : post_write(s, "/values:batchClear", body.data, err);
    fp_buf_free(&body);
    return rc;
}
