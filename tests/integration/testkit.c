/* testkit.c — see testkit.h. */
#include "testkit.h"
#include "buf.h"
#include "redis.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *tk_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run under `scripts/testenv exec` (ctest's testenv fixture does)", name);
    return v;
}

char *tk_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

char *tk_write_temp(const char *text)
{
    char *path = strdup("/tmp/fp-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

void tk_unique(char *out, size_t outsz, const char *prefix)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, outsz, "%s-%ld-%ld", prefix, (long)getpid(), (long)(ts.tv_nsec / 1000));
}

double tk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static rd_kafka_t *admin_client(void)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(c, "bootstrap.servers", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), err, sizeof err),
                 RD_KAFKA_CONF_OK, "%s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    cr_assert_not_null(rk, "%s", err);
    return rk;
}

static void admin_topic(const char *topic, int partitions, int create)
{
    char err[512];
    rd_kafka_t *rk = admin_client();
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_AdminOptions_set_operation_timeout(opt, 30000, err, sizeof err);
    if (create) {
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, err, sizeof err);
        cr_assert_not_null(nt, "%s", err);
        rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
        rd_kafka_NewTopic_destroy(nt);
    } else {
        rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
        rd_kafka_DeleteTopics(rk, &dt, 1, opt, q);
        rd_kafka_DeleteTopic_destroy(dt);
    }
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    cr_assert_not_null(ev, "no admin result within 60 s");
    cr_assert_eq(rd_kafka_event_error(ev), 0, "%s", rd_kafka_event_error_string(ev));
    size_t n;
    const rd_kafka_topic_result_t **res = create
        ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n)
        : rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(rd_kafka_topic_result_error(res[0]), 0, "%s topic %s: %s", create ? "create" : "delete",
                 topic, rd_kafka_topic_result_error_string(res[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

void tk_topic_create(const char *topic, int partitions) { admin_topic(topic, partitions, 1); }
void tk_topic_delete(const char *topic) { admin_topic(topic, 0, 0); }

static int produce_failures;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        produce_failures++;
}

rd_kafka_t *tk_producer(void)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", tk_env("FORMPIPE_KAFKA_BOOTSTRAP")},
                           {"enable.idempotence", "true"}, {"acks", "all"}, {"linger.ms", "5"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        cr_assert_eq(rd_kafka_conf_set(c, kv[i][0], kv[i][1], err, sizeof err), RD_KAFKA_CONF_OK, "%s", err);
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    return p;
}

void tk_produce(rd_kafka_t *p, const char *topic, const char *key, const char *value, size_t len)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p, 100);
            continue;
        }
        cr_assert_eq(e, 0, "produce to %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_poll(p, 0);
        return;
    }
}

void tk_flush(rd_kafka_t *p)
{
    cr_assert_eq(rd_kafka_flush(p, 120000), 0, "producer flush timed out");
    cr_assert_eq(produce_failures, 0, "%d messages were not acknowledged", produce_failures);
}

void tk_start(tk_proc *p, const char *name, const char *const *argv)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FP_BIN_DIR, name);
    snprintf(p->log, sizeof p->log, "/tmp/fp-test-%s-%ld-%ld.log", name, (long)getpid(), (long)(tk_now() * 1000));
    const char *args[64] = {path};
    int n = 1;
    while (argv[n - 1] && n < 63) {
        args[n] = argv[n - 1];
        n++;
    }
    args[n] = NULL;
    p->pid = fork();
    cr_assert_geq(p->pid, 0);
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   /* a failed test leaves no process behind */
        int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(path, (char *const *)args);
        _exit(127);
    }
}

/* Reaps the child if it exited; returns its status or -1 while it runs. */
static int reap(tk_proc *p)
{
    int status = 0;
    if (waitpid(p->pid, &status, WNOHANG) != p->pid)
        return -1;
    p->pid = 0;
    /* A sanitizer report in the child (a leak at exit, say) fails the test. */
    char *text = tk_read_file(p->log);
    int bad = strstr(text, "ERROR: AddressSanitizer") || strstr(text, "ERROR: LeakSanitizer") ||
              strstr(text, "runtime error: ");
    free(text);
    if (bad) {
        tk_show_log(p);
        cr_assert_fail("sanitizer report in %s", p->log);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int tk_wait(tk_proc *p, double timeout_s)
{
    double deadline = tk_now() + timeout_s;
    while (tk_now() < deadline) {
        int rc = reap(p);
        if (rc >= 0)
            return rc;
        usleep(20 * 1000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    tk_show_log(p);
    cr_assert_fail("process did not exit within %.0f s", timeout_s);
    return -1;
}

int tk_stop(tk_proc *p, int sig, double timeout_s)
{
    kill(p->pid, sig);
    return tk_wait(p, timeout_s);
}

void tk_show_log(const tk_proc *p)
{
    char *text = tk_read_file(p->log);
    size_t n = strlen(text);
    cr_log_info("last output of %s:\n%s", p->log, n > 4000 ? text + n - 4000 : text);
    free(text);
}

static size_t on_body(char *d, size_t size, size_t n, void *userdata)
{
    return fp_buf_add(userdata, d, size * n) == 0 ? size * n : 0;
}

long tk_http(const char *url, const char *json, char **body)
{
    fp_buf b;
    fp_buf_init(&b, 256 << 20);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (json)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    if (body)
        *body = fp_buf_take(&b);
    else
        fp_buf_free(&b);
    return status;
}

long tk_http_request(const char *method, const char *url, const char *ctype, const char *body, const char *header,
                     char **headers_out, char **body_out)
{
    fp_buf b, h;
    fp_buf_init(&b, 1 << 20);
    fp_buf_init(&h, 1 << 16);
    CURL *c = curl_easy_init();
    struct curl_slist *hs = NULL;
    char ct[160];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        hs = curl_slist_append(hs, ct);
    }
    if (header)
        hs = curl_slist_append(hs, header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hs);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    if (headers_out)
        *headers_out = fp_buf_take(&h);
    else
        fp_buf_free(&h);
    if (body_out)
        *body_out = fp_buf_take(&b);
    else
        fp_buf_free(&b);
    return status;
}

void tk_kubelet_write(const char *dir, const char *const *names, const char *const *texts, size_t n)
{
    static int version;
    char path[1024], target[1024], old[256] = "", ver[64];
    snprintf(path, sizeof path, "%s/..data", dir);
    ssize_t len = readlink(path, old, sizeof old - 1);
    old[len > 0 ? len : 0] = '\0';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(ver, sizeof ver, "..%ld_%ld.%d", (long)ts.tv_sec, (long)getpid(), ++version);
    snprintf(path, sizeof path, "%s/%s", dir, ver);
    cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %s", path, strerror(errno));
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", dir, ver, names[i]);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "cannot write %s", path);
        fputs(texts[i], f);
        cr_assert_eq(fclose(f), 0);
    }
    snprintf(path, sizeof path, "%s/..data_tmp", dir);
    unlink(path);
    cr_assert_eq(symlink(ver, path), 0, "symlink %s: %s", path, strerror(errno));
    snprintf(target, sizeof target, "%s/..data", dir);
    cr_assert_eq(rename(path, target), 0, "rename %s: %s", path, strerror(errno));
    for (size_t i = 0; i < n; i++) {   /* links of new names */
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(target, sizeof target, "..data/%s", names[i]);
        if (lstat(path, &st) != 0)
            cr_assert_eq(symlink(target, path), 0, "symlink %s: %s", path, strerror(errno));
    }
    DIR *d = opendir(dir);   /* links of names that left the payload now dangle */
    cr_assert_not_null(d, "opendir %s", dir);
    for (struct dirent *de; (de = readdir(d));) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (de->d_name[0] != '.' && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && stat(path, &st) != 0)
            cr_assert_eq(unlink(path), 0, "unlink %s", path);
    }
    closedir(d);
    if (old[0])
        cr_assert_eq(tk_sh(NULL, "rm -rf '%s/%s'", dir, old), 0, "remove the old version %s", old);
}

long tk_http_get(int port, const char *path, char **body)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    return tk_http(url, NULL, body);
}

int tk_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

int tk_start_ingest(tk_proc *p, const char *form_path, const char *ready_path, const char *const *extra)
{
    char portstr[16], adminstr[16];
    int port = tk_free_port();
    snprintf(portstr, sizeof portstr, "%d", port);
    do
        p->admin_port = tk_free_port();
    while (p->admin_port == port);
    snprintf(adminstr, sizeof adminstr, "%d", p->admin_port);
    const char *argv[64] = {"--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
                            "--bind", "127.0.0.1", "--port", portstr, "--admin-bind", "127.0.0.1",
                            "--admin-port", adminstr};
    size_t n = 10;
    if (form_path) {
        argv[n++] = "--form";
        argv[n++] = form_path;
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        cr_assert_lt(n, sizeof argv / sizeof argv[0] - 1, "too many options");
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    tk_start(p, "formpipe-ingest", argv);
    long status = 0;
    double deadline = tk_now() + 30;
    while (tk_now() < deadline && (status = tk_http_get(port, ready_path, NULL)) != 200)
        usleep(100 * 1000);
    if (status != 200)
        tk_show_log(p);
    cr_assert_eq(status, 200, "formpipe-ingest answers %s within 30 s", ready_path);
    return port;
}

void tk_redis_settled(fp_redis *r)
{
    double deadline = tk_now() + 90;
    while (tk_now() < deadline) {
        redisReply *rep;
        fp_error err;
        const char *argv[] = {"INFO", "replication"};
        size_t lens[] = {4, 11};
        if (fp_redis_command(r, &rep, &err, 2, argv, lens) == 0) {
            int online = 0;
            for (const char *p = rep->str; p && (p = strstr(p, "state=online")); p++)
                online++;
            freeReplyObject(rep);
            if (online == 2)
                return;
        }
        usleep(250 * 1000);
    }
    cr_assert_fail("no settled Redis master with two online replicas within 90 s");
}

void tk_testenv(const char *verb, const char *component)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s/scripts/testenv' %s %s", FP_SOURCE_DIR, verb, component);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

void tk_redis_component(int port, char *out, size_t outsz)
{
    static const int ports[] = {29379, 29380, 29381};   /* scripts/testenv.d/ports.sh */
    for (int i = 0; i < 3; i++) {
        if (ports[i] == port) {
            snprintf(out, outsz, "redis-%d", i);
            return;
        }
    }
    cr_assert_fail("port %d is not a Redis server testenv started", port);
}

rd_kafka_t *tk_kafka_reader(const char *topic)
{
    return tk_kafka_reader_isolated(topic, "read_committed");
}

rd_kafka_t *tk_kafka_reader_isolated(const char *topic, const char *isolation_level)
{
    char err[512], group[128];
    tk_unique(group, sizeof group, "reader");
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", tk_env("FORMPIPE_KAFKA_BOOTSTRAP")}, {"group.id", group},
                           {"auto.offset.reset", "earliest"}, {"isolation.level", isolation_level}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        cr_assert_eq(rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof err), RD_KAFKA_CONF_OK, "%s", err);
    rd_kafka_t *r = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    rd_kafka_poll_set_consumer(r);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    cr_assert_eq(rd_kafka_subscribe(r, subs), 0);
    rd_kafka_topic_partition_list_destroy(subs);
    return r;
}

int tk_read_dead_letters(const char *topic, fp_deadletter *out, char (*payloads)[1024], int want, double wait_s)
{
    int got = 0;
    rd_kafka_t *r = tk_kafka_reader(topic);
    double deadline = tk_now() + wait_s;
    while (tk_now() < deadline && got < want) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r, 500);
        if (!m)
            continue;
        rd_kafka_headers_t *h = NULL;
        if (!m->err && rd_kafka_message_headers(m, &h) == 0 && fp_deadletter_read(h, &out[got], NULL) == 0) {
            snprintf(payloads[got], sizeof payloads[got], "%.*s", (int)m->len, (const char *)m->payload);
            got++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(r);
    rd_kafka_destroy(r);
    return got;
}

fp_redis *tk_redis(void)
{
    char *password = tk_read_file(tk_env("FORMPIPE_REDIS_PASSWORD_FILE"));
    fp_error err = {0};
    fp_redis_config cfg = {.sentinels = tk_env("FORMPIPE_REDIS_SENTINELS"),
                           .master_name = tk_env("FORMPIPE_REDIS_MASTER"), .password = password};
    fp_redis *r = fp_redis_new(&cfg, &err);
    free(password);
    cr_assert_not_null(r, "%s", err.msg);
    return r;
}

static int vsh(char **out, const char *fmt, va_list ap)
{
    char cmd[8192];
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    char full[8300];
    snprintf(full, sizeof full, "( %s\n) 2>&1", cmd);   /* newline: a heredoc may end the command */
    FILE *f = popen(full, "r");
    cr_assert_not_null(f, "popen %s", cmd);
    fp_buf b;
    fp_buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fp_buf_add(&b, chunk, n);
    int st = pclose(f);
    char *text = fp_buf_take(&b);
    for (size_t len = strlen(text); len && (text[len - 1] == '\n' || text[len - 1] == ' '); len--)
        text[len - 1] = 0;
    if (out)
        *out = text;
    else
        free(text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int tk_sh(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vsh(out, fmt, ap);
    va_end(ap);
    return rc;
}

double tk_sh_until(double timeout_s, const char *want, const char *fmt, ...)
{
    double t0 = tk_now();
    char *out = NULL;
    for (;;) {
        free(out);
        va_list ap;
        va_start(ap, fmt);
        vsh(&out, fmt, ap);
        va_end(ap);
        if (strcmp(out, want) == 0) {
            free(out);
            return tk_now() - t0;
        }
        if (tk_now() - t0 > timeout_s)
            break;
        usleep(200000);
    }
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char said[1024];
    snprintf(said, sizeof said, "%s", out);
    free(out);
    cr_assert_fail("after %.0f s `%s` says '%s', want '%s'", timeout_s, cmd, said, want);
    return -1;
}

cJSON *tk_sheets_control(const char *path, const char *json)
{
    char url[512], *body = NULL;
    snprintf(url, sizeof url, "%s%s", tk_env("FORMPIPE_SHEETS_URL"), path);
    long st = tk_http(url, json, &body);
    cr_assert_eq(st, 200, "%s: HTTP %ld %s", path, st, body ? body : "");
    cJSON *doc = cJSON_Parse(body ? body : "");
    cr_assert_not_null(doc, "%s answered %s", path, body ? body : "");
    free(body);
    return doc;
}

void tk_sheets_key(const char *email, const char *path, int trusted)
{
    char dir[] = "/tmp/fp-key-XXXXXX", pem_path[64], pub_path[64], token_uri[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(pem_path, sizeof pem_path, "%s/key.pem", dir);
    snprintf(pub_path, sizeof pub_path, "%s/pub.pem", dir);
    cr_assert_eq(tk_sh(NULL, "openssl genrsa -out %s 2048 && openssl rsa -in %s -pubout -out %s", pem_path, pem_path,
                       pub_path), 0, "openssl failed");
    char *pem = tk_read_file(pem_path), *pub = tk_read_file(pub_path);
    snprintf(token_uri, sizeof token_uri, "%s/token", tk_env("FORMPIPE_SHEETS_URL"));
    cJSON *key = cJSON_CreateObject();
    cJSON_AddStringToObject(key, "type", "service_account");
    cJSON_AddStringToObject(key, "client_email", email);
    cJSON_AddStringToObject(key, "private_key", pem);
    cJSON_AddStringToObject(key, "private_key_id", "test-key-1");
    cJSON_AddStringToObject(key, "token_uri", token_uri);
    char *text = cJSON_Print(key);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fputs(text, f) >= 0 && fclose(f) == 0, 1, "cannot write %s", path);
    if (trusted) {
        cJSON *reg = cJSON_CreateObject();
        cJSON_AddStringToObject(reg, "client_email", email);
        cJSON_AddStringToObject(reg, "public_key_pem", pub);
        char *json = cJSON_PrintUnformatted(reg);
        cJSON_Delete(tk_sheets_control("/_control/keys", json));
        free(json);
        cJSON_Delete(reg);
    }
    free(text);
    cJSON_Delete(key);
    free(pem);
    free(pub);
    tk_sh(NULL, "rm -rf %s", dir);
}

void tk_sheets_create(const char *id, const char *tab, int rows, const char *email)
{
    char json[1024];
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"sheets\":[{\"title\":\"%s\",\"rowCount\":%d,\"columnCount\":26}],"
             "\"shared_with\":[\"%s\"]}", id, tab, rows, email);
    cJSON_Delete(tk_sheets_control("/_control/spreadsheets", json));
}
