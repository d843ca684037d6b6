/* formpipe-task --kind=email against the real Kafka, Redis Sentinel and Mailpit of
 * scripts/testenv (SMTP with STARTTLS and AUTH; the tests read Mailpit's HTTP API):
 * exactly the expected mails with rendered templates and escaped values, events
 * without an address skipped, a subject value with a line break and a 550 recipient
 * dead-lettered, a 451 (Mailpit's chaos) retried until it passes, a closed port
 * retried then dead-lettered, Redis unreachable: nothing sent, a refused login retried (the Secret's fault), pacing that costs no attempt, and the sent-record:
 * a replay sends nothing again, a record lost between the 250 and its write (the
 * documented crash window) sends that mail exactly once more, and kill -9 mid-run
 * repeats at most the mails in flight. Mailpit's store is shared: every test starts
 * by emptying it, so run this suite under the testenv lock. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "email.h"
#include "event.h"
#include "redis.h"
#include "testkit.h"

#define TASK "mail"

static char name[64], topic[128], group[160], dlq[160], smtp_dir[128], api[128];
static rd_kafka_t *producer;
static tk_proc task;
static int admin_port, group_no;

/* Runs a curl command against Mailpit's API (printf-style path + extra args). */
static char *mailpit(const char *method, const char *path, const char *json)
{
    char *out = NULL;
    int rc = json ? tk_sh(&out, "curl -fsS -X %s -H 'Content-Type: application/json' -d '%s' '%s%s'", method, json, api, path)
                  : tk_sh(&out, "curl -fsS -X %s '%s%s'", method, api, path);
    cr_assert_eq(rc, 0, "Mailpit %s %s: %s", method, path, out ? out : "");
    return out;
}

/* Mailpit's 4xx on every RCPT (probability 100), or off (0). */
static void chaos(int probability)
{
    char body[160];
    snprintf(body, sizeof body, "{\"Recipient\":{\"ErrorCode\":451,\"Probability\":%d}}", probability);
    free(mailpit("PUT", "/api/v1/chaos", body));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* An SMTP Secret as the operator mounts it: url, username, password files. */
static void make_smtp_dir(const char *url)
{
    char path[256];
    snprintf(path, sizeof path, "%s/url", smtp_dir);
    write_file(path, url);
    snprintf(path, sizeof path, "%s/username", smtp_dir);
    write_file(path, tk_env("FORMPIPE_MAILPIT_USER"));
    char *pw = tk_read_file(tk_env("FORMPIPE_MAILPIT_PASSWORD_FILE"));
    snprintf(path, sizeof path, "%s/password", smtp_dir);
    write_file(path, pw);
    free(pw);
}

static void setup(void)
{
    tk_unique(name, sizeof name, "em");
    snprintf(topic, sizeof topic, "forms.tests.%s", name);
    snprintf(group, sizeof group, "formpipe.tests.%s.%s", name, TASK);
    snprintf(dlq, sizeof dlq, "%s.%s.dlq", topic, TASK);
    snprintf(smtp_dir, sizeof smtp_dir, "/tmp/%s-smtp", name);
    snprintf(api, sizeof api, "%s", tk_env("FORMPIPE_MAILPIT_API"));
    cr_assert_eq(mkdir(smtp_dir, 0700), 0);
    make_smtp_dir(tk_env("FORMPIPE_MAILPIT_SMTP"));
    tk_topic_create(topic, 3);
    tk_topic_create(dlq, 1);
    producer = tk_producer();
    memset(&task, 0, sizeof task);
    chaos(0);
    free(mailpit("DELETE", "/api/v1/messages", NULL));
}

static void teardown(void)
{
    if (task.pid > 0) {
        tk_show_log(&task);
        tk_stop(&task, SIGKILL, 10);
    }
    chaos(0);
    rd_kafka_destroy(producer);
    tk_topic_delete(topic);
    tk_topic_delete(dlq);
    tk_sh(NULL, "rm -rf '%s'", smtp_dir);
}

TestSuite(email, .init = setup, .fini = teardown, .timeout = 300);

/* Produces event id with data {name, email (omitted when NULL), comment}. */
static void produce(const char *id, const char *person, const char *email, const char *comment)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "name", person);
    if (email)
        cJSON_AddStringToObject(data, "email", email);
    cJSON_AddStringToObject(data, "comment", comment);
    char *ev = fp_event_encode(id, "tests", name, (long long)time(NULL) * 1000, 1, data);
    cJSON_Delete(data);
    cr_assert_not_null(ev);
    tk_produce(producer, topic, id, ev, strlen(ev));
    free(ev);
}

/* Starts formpipe-task --kind=email as *p in a fresh consumer group when fresh_group
 * (a replay of the whole topic, as after a crash before any commit), with extra options. */
static void start_replica(tk_proc *p, int fresh_group, const char *const *extra)
{
    char smtp[200], pipeline[128], port[32], grp[200], pwfile[300];
    admin_port = tk_free_port();
    snprintf(smtp, sizeof smtp, "--email-smtp-dir=%s", smtp_dir);
    snprintf(pipeline, sizeof pipeline, "--email-pipeline=tests/%s", name);
    snprintf(port, sizeof port, "--admin-port=%d", admin_port);
    snprintf(grp, sizeof grp, "%s%s%d", group, fresh_group ? ".replay" : "", fresh_group ? ++group_no : 0);
    snprintf(pwfile, sizeof pwfile, "--redis-password-file=%s", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"));
    static char ca[300];
    snprintf(ca, sizeof ca, "--email-ca-file=%s", tk_env("FORMPIPE_MAILPIT_CA_FILE"));
    const char *argv[48] = {"--kind=email", "--topic", topic, "--group", grp, "--dlq-topic", dlq,
                            "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), smtp, ca, pipeline,
                            "--email-task=" TASK, "--email-from=Forms <forms@example.org>", "--email-to-field=email",
                            "--email-subject=Thanks {{name}}",
                            "--email-text=Hello {{name}}, you wrote: {{comment}}",
                            "--email-html=<p>Hello <b>{{name}}</b></p><p>{{comment}}</p>",
                            "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"), "--redis-master",
                            tk_env("FORMPIPE_REDIS_MASTER"), pwfile, "--backoff-initial=50ms", "--backoff-max=500ms",
                            "--admin-bind=127.0.0.1", port, "--lag-interval=500ms", "--log-level=warn"};
    int n = 29;
    for (int i = 0; extra && extra[i] && n < 47; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    tk_start(p, "formpipe-task", argv);
}

static void start_task(int fresh_group, const char *const *extra)
{
    start_replica(&task, fresh_group, extra);
}

static void stop_task(void)
{
    int status = tk_stop(&task, SIGTERM, 30);
    if (status != 0)
        tk_show_log(&task);
    cr_assert_eq(status, 0, "formpipe-task exits 0 on SIGTERM, not %d", status);
    task.pid = 0;
}

/* Mailpit's messages (newest first), as JSON (caller deletes). */
static cJSON *messages(void)
{
    char *out = mailpit("GET", "/api/v1/messages?limit=5000", NULL);
    cJSON *doc = cJSON_Parse(out);
    free(out);
    cr_assert_not_null(doc);
    return doc;
}

static int message_count(void)
{
    cJSON *doc = messages();
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "messages"));
    cJSON_Delete(doc);
    return n;
}

/* Waits up to timeout_s for at least want messages; then a moment more so an extra one
 * would show. Returns the count. */
static int wait_messages(int want, double timeout_s)
{
    double end = tk_now() + timeout_s;
    int n;
    while ((n = message_count()) < want && tk_now() < end)
        usleep(200 * 1000);
    usleep(1500 * 1000);
    return message_count();
}

/* How many messages carry Message-ID <id>@formpipe.tests.<name>. */
static int copies_of(cJSON *doc, const char *id)
{
    char mid[256];
    snprintf(mid, sizeof mid, "%s@formpipe.tests.%s", id, name);
    int n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(doc, "messages"))
        n += strcmp(cJSON_GetObjectItemCaseSensitive(m, "MessageID")->valuestring, mid) == 0;
    return n;
}

/* The full message with Message-ID id (Subject, Text, HTML, To...); caller deletes. */
static cJSON *message_of(cJSON *doc, const char *id)
{
    char mid[256];
    snprintf(mid, sizeof mid, "%s@formpipe.tests.%s", id, name);
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(doc, "messages"))
        if (strcmp(cJSON_GetObjectItemCaseSensitive(m, "MessageID")->valuestring, mid) == 0) {
            char path[160];
            snprintf(path, sizeof path, "/api/v1/message/%s", cJSON_GetObjectItemCaseSensitive(m, "ID")->valuestring);
            char *out = mailpit("GET", path, NULL);
            cJSON *full = cJSON_Parse(out);
            free(out);
            return full;
        }
    cr_assert_fail("no mail with Message-ID %s", mid);
    return NULL;
}

/* A metric's value from the task's /metrics (the line starting with series), or -1. */
static double metric(const char *series)
{
    char *body = NULL;
    if (tk_http_get(admin_port, "/metrics", &body) != 200 || !body) {
        free(body);
        return -1;
    }
    double v = -1;
    for (char *line = body; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, series, strlen(series)) == 0 && line[strlen(series)] == ' ')
            v = atof(line + strlen(series) + 1);
    free(body);
    return v;
}

/* Dead letters on the task's DLQ: ids and details. */
static int dead_letters(fp_deadletter *out, char (*ids)[64], int want, double wait_s)
{
    static char payloads[32][1024];
    int got = tk_read_dead_letters(dlq, out, payloads, want, wait_s);
    for (int i = 0; i < got; i++) {
        cJSON *ev = cJSON_Parse(payloads[i]);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "id");
        snprintf(ids[i], 64, "%s", cJSON_IsString(id) ? id->valuestring : "?");
        cJSON_Delete(ev);
    }
    return got;
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

Test(email, sends_exactly_the_expected_mails)
{
    char id[32], addr[64], person[32];
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "ok%02d", i);
        snprintf(addr, sizeof addr, "p%02d@example.org", i);
        snprintf(person, sizeof person, "Person %d", i);
        produce(id, person, addr, "plain");
    }
    produce("html", "Zoë <b>", "zoe@example.org", "<script>alert('x')</script> & \"q\"");
    produce("noaddr1", "No Address", NULL, "x");
    produce("noaddr2", "Empty Address", "", "x");
    produce("inject", "Eve\r\nBcc: victim@example.org", "eve@example.org", "x");
    produce("blocked", "Blocked", "someone@blocked.test", "x");
    tk_flush(producer);
    start_task(0, NULL);

    fp_deadletter dl[8];
    char dl_ids[8][64];
    int got = dead_letters(dl, dl_ids, 2, 60);
    cr_assert_eq(got, 2, "two dead letters, not %d", got);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(dl[i].reason, FP_DEADLETTER_REJECTED, "%s: %s", dl_ids[i], fp_deadletter_reason_name(dl[i].reason));
        if (strcmp(dl_ids[i], "inject") == 0)
            cr_assert(strstr(dl[i].message, "field 'name' holds a line break: refused in the subject"), "%s",
                      dl[i].message);
        else
            cr_assert(strcmp(dl_ids[i], "blocked") == 0 && strstr(dl[i].message, "SMTP 550"), "%s: %s", dl_ids[i],
                      dl[i].message);
    }
    cr_assert_eq(wait_messages(13, 60), 13, "exactly 13 mails");

    cJSON *doc = messages();
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "ok%02d", i);
        cr_assert_eq(copies_of(doc, id), 1, "%s: one mail", id);
    }
    cr_assert_eq(copies_of(doc, "inject") + copies_of(doc, "blocked") + copies_of(doc, "noaddr1"), 0);
    cJSON *m = message_of(doc, "ok03");
    cr_assert_str_eq(str_of(m, "Subject"), "Thanks Person 3");
    cr_assert_str_eq(str_of(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "To"), 0), "Address"),
                     "p03@example.org");
    cr_assert_str_eq(str_of(cJSON_GetObjectItemCaseSensitive(m, "From"), "Address"), "forms@example.org");
    cr_assert_str_eq(str_of(cJSON_GetObjectItemCaseSensitive(m, "From"), "Name"), "Forms");
    cr_assert(strstr(str_of(m, "Text"), "Hello Person 3, you wrote: plain"), "%s", str_of(m, "Text"));
    cJSON_Delete(m);
    m = message_of(doc, "html");
    cr_assert_str_eq(str_of(m, "Subject"), "Thanks Zoë <b>");
    cr_assert(strstr(str_of(m, "Text"), "Hello Zoë <b>, you wrote: <script>alert('x')</script> & \"q\""), "%s",
              str_of(m, "Text"));
    cr_assert(strstr(str_of(m, "HTML"), "<p>Hello <b>Zoë &lt;b&gt;</b></p><p>&lt;script&gt;alert(&#39;x&#39;)"
                                        "&lt;/script&gt; &amp; &quot;q&quot;</p>"), "%s", str_of(m, "HTML"));
    cJSON_Delete(m);
    cJSON_Delete(doc);

    cr_assert_eq(metric("formpipe_task_email_skipped_total{reason=\"no_address\"}"), 2);
    cr_assert_eq(metric("formpipe_task_email_smtp_replies_total{code_class=\"2xx\"}"), 13);
    cr_assert_eq(metric("formpipe_task_email_smtp_replies_total{code_class=\"5xx\"}"), 1);
    /* the sent-record of a delivered mail, with its TTL */
    char key[512];
    cr_assert_eq(fp_email_sent_key(key, sizeof key, "tests", name, TASK, "ok03"), 0);
    fp_redis *r = tk_redis();
    const char *argv[] = {"TTL", key};
    redisReply *rep = NULL;
    fp_error err = {0};
    cr_assert_eq(fp_redis_command(r, &rep, &err, 2, argv, NULL), 0, "%s", err.msg);
    cr_assert(rep->type == REDIS_REPLY_INTEGER && rep->integer > 167 * 3600 && rep->integer <= 168 * 3600,
              "TTL of %s: %lld", key, rep->integer);
    freeReplyObject(rep);
    fp_redis_free(r);
    stop_task();
}

Test(email, smtp_4xx_is_retried_until_it_passes)
{
    chaos(100);
    produce("a", "A", "a@example.org", "x");
    produce("b", "B", "b@example.org", "x");
    tk_flush(producer);
    const char *extra[] = {"--max-attempts=100", NULL};
    start_task(0, extra);
    double end = tk_now() + 30;
    while (metric("formpipe_task_email_smtp_replies_total{code_class=\"4xx\"}") < 4 && tk_now() < end)
        usleep(200 * 1000);
    cr_assert_geq(metric("formpipe_task_email_smtp_replies_total{code_class=\"4xx\"}"), 4, "451s were retried");
    cr_assert_eq(message_count(), 0);
    chaos(0);
    cr_assert_eq(wait_messages(2, 30), 2, "both mails after the 451s stopped");
    fp_deadletter dl[2];
    char ids[2][64];
    cr_assert_eq(dead_letters(dl, ids, 1, 2), 0, "nothing dead-lettered");
    stop_task();
}

Test(email, connection_refused_is_retried_then_dead_lettered)
{
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", tk_free_port());   /* nothing listens there */
    make_smtp_dir(url);
    produce("c", "C", "c@example.org", "x");
    tk_flush(producer);
    const char *extra[] = {"--max-attempts=3", NULL};
    start_task(0, extra);
    fp_deadletter dl[2];
    char ids[2][64];
    cr_assert_eq(dead_letters(dl, ids, 1, 60), 1);
    cr_assert_eq(dl[0].reason, FP_DEADLETTER_ATTEMPTS_EXHAUSTED, "%s", fp_deadletter_reason_name(dl[0].reason));
    cr_assert(strstr(dl[0].message, "smtp://127.0.0.1:"), "%s", dl[0].message);
    cr_assert_eq(metric("formpipe_task_email_smtp_replies_total{code_class=\"error\"}"), 3);
    cr_assert_eq(message_count(), 0);
    stop_task();
}

Test(email, refused_login_is_retried_not_rejected)
{
    make_smtp_dir(tk_env("FORMPIPE_MAILPIT_SMTP"));
    char path[256];
    snprintf(path, sizeof path, "%s/password", smtp_dir);
    write_file(path, "not-the-password");   /* the Secret is wrong, not the mail */
    produce("d", "D", "d@example.org", "x");
    tk_flush(producer);
    const char *extra[] = {"--max-attempts=2", NULL};
    start_task(0, extra);
    fp_deadletter dl[2];
    char ids[2][64];
    cr_assert_eq(dead_letters(dl, ids, 1, 60), 1);
    cr_assert_eq(dl[0].reason, FP_DEADLETTER_ATTEMPTS_EXHAUSTED, "%s: %s", fp_deadletter_reason_name(dl[0].reason),
                 dl[0].message);
    cr_assert(strstr(dl[0].message, "SMTP 535 from smtp://127.0.0.1:"), "%s", dl[0].message);
    cr_assert(!strstr(dl[0].message, "not-the-password"), "%s", dl[0].message);
    cr_assert_eq(message_count(), 0);
    stop_task();
}

Test(email, unreadable_sent_records_send_nothing)
{
    char sentinels[64];
    snprintf(sentinels, sizeof sentinels, "--redis-sentinels=127.0.0.1:%d", tk_free_port());   /* no sentinel there */
    produce("e", "E", "e@example.org", "x");
    tk_flush(producer);
    const char *extra[] = {"--max-attempts=2", sentinels, NULL};   /* the later --redis-sentinels wins */
    start_task(0, extra);
    fp_deadletter dl[2];
    char ids[2][64];
    cr_assert_eq(dead_letters(dl, ids, 1, 60), 1);
    cr_assert_eq(dl[0].reason, FP_DEADLETTER_ATTEMPTS_EXHAUSTED, "%s", fp_deadletter_reason_name(dl[0].reason));
    cr_assert(strstr(dl[0].message, "(Redis) cannot be read"), "the send budget or the sent-record: %s", dl[0].message);
    cr_assert_eq(message_count(), 0, "never sent unchecked");
    stop_task();
}

/* Seconds between the first and the last mail Mailpit received (its receive times). */
static double receive_spread(void)
{
    double first = 1e9, last = 0;
    cJSON *doc = messages();
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(doc, "messages")) {
        int h, min;
        double sec;
        cr_assert_eq(sscanf(str_of(m, "Created"), "%*d-%*d-%*dT%d:%d:%lfZ", &h, &min, &sec), 3, "%s", str_of(m, "Created"));
        double t = h * 3600 + min * 60 + sec;   /* same day: seconds since midnight */
        first = t < first ? t : first;
        last = t > last ? t : last;
    }
    cJSON_Delete(doc);
    return last - first;
}

Test(email, implicit_tls_delivers_too)
{
    /* the second Mailpit speaks smtps:// (TLS from the first byte) */
    snprintf(api, sizeof api, "%s", tk_env("FORMPIPE_MAILPIT_TLS_API"));
    free(mailpit("DELETE", "/api/v1/messages", NULL));
    make_smtp_dir(tk_env("FORMPIPE_MAILPIT_SMTPS"));
    produce("tls-1", "Ada", "ada@example.org", "over TLS");
    produce("tls-2", "Bo", "bo@example.org", "over TLS");
    tk_flush(producer);
    start_task(0, NULL);
    cr_assert_eq(wait_messages(2, 60), 2, "both mails arrive over implicit TLS");
    fp_deadletter dl[2];
    char ids[2][64];
    cr_assert_eq(dead_letters(dl, ids, 1, 1), 0, "nothing dead-lettered");
    stop_task();
}

Test(email, pacing_costs_no_attempt)
{
    char id[16], addr[64];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "r%d", i);
        snprintf(addr, sizeof addr, "r%d@example.org", i);
        produce(id, "R", addr, "x");
    }
    tk_flush(producer);
    /* one attempt each: an attempt spent waiting for its turn would dead-letter */
    const char *extra[] = {"--max-attempts=1", "--email-rate=4", NULL};
    start_task(0, extra);
    cr_assert_eq(wait_messages(10, 60), 10);
    fp_deadletter dl[2];
    char ids[2][64];
    cr_assert_eq(dead_letters(dl, ids, 1, 1), 0, "nothing dead-lettered");
    double spread = receive_spread();
    cr_assert_geq(spread, 9 / 4.0 - 0.1, "10 mails at 4/s are spread over at least 2.25 s, not %.2f", spread);
    cr_assert_leq(spread, 9 / 4.0 + 2, "and not much more: %.2f", spread);
    stop_task();
}

Test(email, the_rate_is_the_whole_tasks_not_each_replicas)
{
    const char *extra[] = {"--email-rate=4", NULL};
    tk_proc second = {0};
    start_task(0, extra);
    start_replica(&second, 0, extra);
    sleep(10);   /* both replicas in the group, each with its partitions */
    char id[16], addr[64];
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof id, "s%02d", i);
        snprintf(addr, sizeof addr, "s%02d@example.org", i);
        produce(id, "S", addr, "x");
    }
    tk_flush(producer);
    cr_assert_eq(wait_messages(12, 60), 12);
    double spread = receive_spread();
    cr_assert_geq(spread, 11 / 4.0 - 0.1, "12 mails at 4/s for the task take 2.75 s whatever the replicas, not %.2f",
                  spread);
    cr_assert_eq(tk_stop(&second, SIGTERM, 30), 0);
    stop_task();
}

/* Deletes the sent-record of id (a crash between the 250 and its write). */
static void lose_record(fp_redis *r, const char *id)
{
    char key[512];
    cr_assert_eq(fp_email_sent_key(key, sizeof key, "tests", name, TASK, id), 0);
    const char *argv[] = {"DEL", key};
    redisReply *rep = NULL;
    fp_error err = {0};
    cr_assert_eq(fp_redis_command(r, &rep, &err, 2, argv, NULL), 0, "%s", err.msg);
    cr_assert(rep->type == REDIS_REPLY_INTEGER && rep->integer == 1, "%s had a sent-record", id);
    freeReplyObject(rep);
}

Test(email, sent_record_stops_a_replay_and_the_crash_window_resends_once)
{
    char id[16], addr[64];
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof id, "s%d", i);
        snprintf(addr, sizeof addr, "s%d@example.org", i);
        produce(id, "S", addr, "x");
    }
    tk_flush(producer);
    start_task(0, NULL);
    cr_assert_eq(wait_messages(6, 60), 6);
    stop_task();

    /* the whole topic again (offsets never committed): every sent-record is there */
    start_task(1, NULL);
    double end = tk_now() + 30;
    while (metric("formpipe_task_email_skipped_total{reason=\"already_sent\"}") < 6 && tk_now() < end)
        usleep(200 * 1000);
    cr_assert_eq(metric("formpipe_task_email_skipped_total{reason=\"already_sent\"}"), 6);
    cr_assert_eq(wait_messages(6, 0), 6, "no mail sent again");
    stop_task();

    /* the crash window: the 250 came, the record was never written */
    fp_redis *r = tk_redis();
    lose_record(r, "s1");
    lose_record(r, "s4");
    fp_redis_free(r);
    start_task(1, NULL);
    cr_assert_eq(wait_messages(8, 60), 8, "s1 and s4 once more");
    cJSON *doc = messages();
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof id, "s%d", i);
        cr_assert_eq(copies_of(doc, id), i == 1 || i == 4 ? 2 : 1, "%s", id);
    }
    cJSON_Delete(doc);
    stop_task();
    /* and never a third time */
    start_task(1, NULL);
    end = tk_now() + 30;
    while (metric("formpipe_task_email_skipped_total{reason=\"already_sent\"}") < 6 && tk_now() < end)
        usleep(200 * 1000);
    cr_assert_eq(wait_messages(8, 0), 8);
    stop_task();
}

Test(email, kill9_repeats_at_most_the_mails_in_flight)
{
    enum { N = 120, CONNECTIONS = 4 };
    char id[16], addr[64];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "k%03d", i);
        snprintf(addr, sizeof addr, "k%03d@example.org", i);
        produce(id, "K", addr, "x");
    }
    tk_flush(producer);
    const char *extra[] = {"--email-rate=40", "--email-max-connections=4", NULL};
    start_task(0, extra);
    double end = tk_now() + 60;
    while (message_count() < N / 3 && tk_now() < end)
        usleep(50 * 1000);
    cr_assert_eq(tk_stop(&task, SIGKILL, 10), 128 + SIGKILL);
    task.pid = 0;
    start_task(0, extra);
    int total = wait_messages(N, 90);
    cJSON *doc = messages();
    int repeated = 0;
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "k%03d", i);
        int c = copies_of(doc, id);
        cr_assert(c == 1 || c == 2, "%s: %d copies", id, c);
        repeated += c == 2;
    }
    cJSON_Delete(doc);
    cr_log_info("kill -9: %d mails, %d repeated", total, repeated);
    cr_assert_leq(repeated, CONNECTIONS, "at most the %d mails in flight are repeated, not %d", CONNECTIONS, repeated);
    cr_assert_eq(total, N + repeated);
    stop_task();
}
