/* admin.c — see admin.h. */
#include "admin.h"
#include "buf.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FP_ADMIN_CHUNK 16384

struct fp_admin {
    struct lws_context *ctx;
    pthread_t thread;
    atomic_int stop;
    int port;
    fp_admin_routes routes;
};

/* Per-connection state: the response body being written. */
struct session {
    char *body;
    size_t len, sent;
};

static void set_body(struct session *s, char *body, size_t len)
{
    free(s->body);
    s->body = body;
    s->len = len;
    s->sent = 0;
}

#define FP_ADMIN_SHORT_BYTES 512   /* every answer but a rendered /metrics */

/* Renders r's metrics into b (capped); when they do not render, b holds {"error": ...}
 * instead (its own small cap). Returns the status. */
static int render_metrics(const fp_admin_routes *r, fp_buf *b)
{
    fp_buf_init(b, r->max_metrics_bytes ? r->max_metrics_bytes : FP_ADMIN_MAX_METRICS_BYTES);
    if (r->refresh)
        r->refresh(r->ctx);
    int rc = fp_metrics_render(r->metrics, b);
    if (!rc)
        return 200;
    fp_buf_free(b);
    fp_buf_init(b, FP_ADMIN_SHORT_BYTES);
    fp_buf_printf(b, "{\"error\":\"%s\"}", rc == FP_ELIMIT ? "metrics too large to render" : "out of memory");
    return 500;
}

int fp_admin_route(const fp_admin_routes *r, const char *path, fp_admin_answer *a)
{
    fp_buf b;
    int status = 200;
    const char *ctype = "text/plain; charset=utf-8";
    if (strcmp(path, "/healthz") == 0) {
        fp_buf_init(&b, FP_ADMIN_SHORT_BYTES);
        fp_buf_adds(&b, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        char why[256] = "";
        fp_buf_init(&b, FP_ADMIN_SHORT_BYTES);
        if (!r->ready || r->ready(r->ctx, why, sizeof why)) {
            fp_buf_adds(&b, "ok\n");
        } else {
            status = 503;
            fp_buf_printf(&b, "not ready: %s\n", why);
        }
    } else if (strcmp(path, "/metrics") == 0 && r->metrics) {
        status = render_metrics(r, &b);
        ctype = status == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "application/json";
    } else {
        return 0;
    }
    a->status = status;
    a->ctype = ctype;
    a->len = b.len;
    a->body = fp_buf_take(&b);
    return 1;
}

/* Builds the answer for one GET to the admin port: the routes, else 404. Returns the
 * HTTP status and sets the body. */
static int route(fp_admin *a, const char *path, struct session *s, const char **ctype)
{
    fp_admin_answer ans;
    if (!fp_admin_route(&a->routes, path, &ans)) {
        *ctype = "text/plain; charset=utf-8";
        set_body(s, strdup("not found\n"), 10);
        return 404;
    }
    *ctype = ans.ctype;
    set_body(s, ans.body, ans.len);
    return ans.status;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *s = user;
    fp_admin *a = lws_context_user(lws_get_context(wsi));
    uint8_t headers[LWS_PRE + 1024], *start = &headers[LWS_PRE], *p = start,
            *end = &headers[sizeof headers - 1];

    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        const char *ctype;
        int status;
        if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
            status = 405;
            ctype = "text/plain; charset=utf-8";
            set_body(s, strdup("only GET is served here\n"), 24);
        } else {
            status = route(a, (const char *)in, s, &ctype);
        }
        if (!s->body)
            return 1;
        if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, (lws_filepos_t)s->len, &p, end) ||
            (status == 405 && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ALLOW,
                                                          (const unsigned char *)"GET", 3, &p, end)) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return 1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!s->body)
            break;
        uint8_t chunk[LWS_PRE + FP_ADMIN_CHUNK];
        size_t n = s->len - s->sent < FP_ADMIN_CHUNK ? s->len - s->sent : FP_ADMIN_CHUNK;
        int last = s->sent + n == s->len;
        memcpy(chunk + LWS_PRE, s->body + s->sent, n);
        if (lws_write(wsi, chunk + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
            return 1;
        s->sent += n;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        set_body(s, NULL, 0);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
        set_body(s, NULL, 0);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", callback, sizeof(struct session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *serve(void *arg)
{
    fp_admin *a = arg;
    while (!atomic_load(&a->stop)) {
        if (lws_service(a->ctx, 0) < 0)
            break;
    }
    return NULL;
}

static void lws_log_line(int level, const char *line)
{
    char msg[512];
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        n--;
    snprintf(msg, sizeof msg, "%.*s", (int)n, line);
    fp_log_write(level == LLL_ERR ? FP_LOG_ERROR : FP_LOG_WARN, "libwebsockets",
                 (const fp_log_field[]){FP_LSTR("detail", msg), FP_LEND});
}

void fp_admin_route_lws_logs(void) { lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_line); }

/* Says why bind:port can't be listened on, before libwebsockets tries (its own failure
 * path reports less and leaks). Returns 0 when a listener could be bound. */
static int probe_port(const char *bind_addr, int port, fp_error *err)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!bind_addr || !*bind_addr)
        bind_addr = "0.0.0.0";
    if (inet_pton(AF_INET, bind_addr, &a.sin_addr) != 1)
        return fp_error_set(err, FP_EINVAL, "admin server: '%s' is not an IPv4 address", bind_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fp_error_set(err, FP_EIO, "admin server: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    int saved = errno;
    close(fd);
    if (rc)
        return fp_error_set(err, FP_EIO, "admin server: cannot listen on %s:%d: %s", bind_addr, port,
                            strerror(saved));
    return 0;
}

fp_admin *fp_admin_start(const char *bind, int port, fp_metrics *metrics,
                         fp_admin_ready_fn ready, void *ctx, fp_error *err)
{
    struct lws_context_creation_info info;
    if (port > 0 && probe_port(bind, port, err))
        return NULL;
    fp_admin *a = calloc(1, sizeof *a);
    if (!a) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    a->routes = (fp_admin_routes){.metrics = metrics, .ready = ready, .ctx = ctx};
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = bind;
    info.protocols = protocols;
    info.user = a;
    info.fd_limit_per_thread = 128;
    info.timeout_secs = 10;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (!(a->ctx = lws_create_context(&info))) {
        fp_error_set(err, FP_EIO, "admin server: cannot listen on %s:%d", bind ? bind : "*", port);
        free(a);
        return NULL;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(a->ctx, "default");
    a->port = vh ? lws_get_vhost_listen_port(vh) : port;
    if (pthread_create(&a->thread, NULL, serve, a)) {
        lws_context_destroy(a->ctx);
        free(a);
        fp_error_set(err, FP_EIO, "admin server: cannot start its thread");
        return NULL;
    }
    return a;
}

int fp_admin_port(const fp_admin *a) { return a->port; }

void fp_admin_stop(fp_admin *a)
{
    if (!a)
        return;
    atomic_store(&a->stop, 1);
    lws_cancel_service(a->ctx);
    pthread_join(a->thread, NULL);
    lws_context_destroy(a->ctx);
    free(a);
}
