/* services/common/redis against the real Sentinel set of scripts/testenv: discovery
 * (skipping dead sentinels, answering one moves first), AUTH, clear errors, and
 * following a SENTINEL FAILOVER to the new master with no acknowledged write lost. */
#include <criterion/criterion.h>
#include <unistd.h>

#include "redis.h"
#include "testkit.h"

static char *password;
static char sentinels[512];

static fp_redis *open_redis(const char *sentinel_list, const char *master, const char *pw)
{
    fp_error err = {0};
    fp_redis_config cfg = {.sentinels = sentinel_list, .master_name = master, .password = pw,
                           .connect_timeout_ms = 300, .command_timeout_ms = 2000};
    fp_redis *r = fp_redis_new(&cfg, &err);
    cr_assert_not_null(r, "%s", err.msg);
    return r;
}

static void setup(void)
{
    snprintf(sentinels, sizeof sentinels, "%s", tk_env("FORMPIPE_REDIS_SENTINELS"));
    password = tk_read_file(tk_env("FORMPIPE_REDIS_PASSWORD_FILE"));
}

static void teardown(void) { free(password); }

TestSuite(redis, .init = setup, .fini = teardown, .timeout = 240);

/* Runs a command given as strings; returns fp_redis_command's code. */
static int cmd(fp_redis *r, redisReply **rep, fp_error *err, int argc, const char **argv)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return fp_redis_command(r, rep, err, argc, argv, lens);
}

Test(redis, discovers_the_master_past_a_dead_sentinel)
{
    char list[600];
    /* Nothing listens on loopback port 1: the first sentinel is dead. */
    snprintf(list, sizeof list, "127.0.0.1:1,%s", sentinels);
    fp_redis *r = open_redis(list, tk_env("FORMPIPE_REDIS_MASTER"), password);
    fp_error err = {0};
    cr_assert_eq(fp_redis_connect(r, &err), 0, "%s", err.msg);
    cr_assert_neq(fp_redis_master_addr(r)[0], '\0');
    char order[600];
    fp_redis_sentinel_order(r, order, sizeof order);
    cr_assert_eq(strncmp(order, sentinels, strcspn(sentinels, ",")), 0,
                 "the sentinel that answered moves to the front: %s", order);

    redisReply *rep;
    cr_assert_eq(cmd(r, &rep, &err, 1, (const char *[]){"ROLE"}), 0, "%s", err.msg);
    cr_assert_str_eq(rep->element[0]->str, "master");
    freeReplyObject(rep);
    fp_redis_free(r);
}

Test(redis, unknown_master_name_is_one_clear_error)
{
    fp_redis *r = open_redis(sentinels, "no-such-master", password);
    fp_error err = {0};
    cr_assert_eq(fp_redis_connect(r, &err), FP_EIO);
    cr_assert_not_null(strstr(err.msg, "does not know master 'no-such-master'"), "%s", err.msg);
    fp_redis_free(r);
}

Test(redis, wrong_or_missing_password_is_refused_and_not_echoed)
{
    fp_error err = {0};
    fp_redis *r = open_redis(sentinels, tk_env("FORMPIPE_REDIS_MASTER"), "wrong-pass-123");
    cr_assert_eq(fp_redis_connect(r, &err), FP_EIO);
    cr_assert_not_null(strstr(err.msg, "AUTH failed"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "wrong-pass-123"), "password echoed: %s", err.msg);
    fp_redis_free(r);

    r = open_redis(sentinels, tk_env("FORMPIPE_REDIS_MASTER"), NULL);
    cr_assert_eq(fp_redis_connect(r, &err), FP_EIO, "a master with requirepass refuses ROLE without AUTH");
    fp_redis_free(r);
}

/* Asks the first sentinel that accepts for a failover. */
static void request_failover(const char *master)
{
    double deadline = tk_now() + 60;
    char host[64];
    int port;
    while (tk_now() < deadline) {
        for (const char *p = sentinels; *p;) {
            cr_assert_eq(sscanf(p, "%63[^:]:%d", host, &port), 2);
            redisContext *c = redisConnect(host, port);
            redisReply *rep = c && !c->err ? redisCommand(c, "SENTINEL FAILOVER %s", master) : NULL;
            int ok = rep && rep->type == REDIS_REPLY_STATUS;
            freeReplyObject(rep);
            if (c)
                redisFree(c);
            if (ok)
                return;
            p += strcspn(p, ",");
            p += *p == ',';
        }
        sleep(1);
    }
    cr_assert_fail("no sentinel accepted SENTINEL FAILOVER within 60 s");
}

Test(redis, follows_a_failover_and_keeps_acknowledged_writes)
{
    const char *master = tk_env("FORMPIPE_REDIS_MASTER");
    fp_redis *r = open_redis(sentinels, master, password);
    fp_error err = {0};
    redisReply *rep;
    tk_redis_settled(r);
    char before[300], key[96], val[96];
    snprintf(before, sizeof before, "%s", fp_redis_master_addr(r));
    unsigned long discoveries = fp_redis_discoveries(r);
    tk_unique(key, sizeof key, "fp:test:failover");
    tk_unique(val, sizeof val, "v");

    cr_assert_eq(cmd(r, &rep, &err, 3, (const char *[]){"SET", key, val}), 0, "%s", err.msg);
    freeReplyObject(rep);
    cr_assert_eq(cmd(r, &rep, &err, 3, (const char *[]){"WAIT", "2", "5000"}), 0, "%s", err.msg);
    cr_assert_eq(rep->integer, 2, "both replicas acknowledge before the failover");
    freeReplyObject(rep);

    request_failover(master);

    /* Keep writing through the client until it lands on a different master. */
    int errors = 0;
    char first_error[256] = "";
    double deadline = tk_now() + 60;
    while (tk_now() < deadline) {
        int rc = cmd(r, &rep, &err, 3, (const char *[]){"SET", "fp:test:probe", "x"});
        if (rc == 0 && rep->type == REDIS_REPLY_STATUS && strcmp(fp_redis_master_addr(r), before) != 0) {
            freeReplyObject(rep);
            break;
        }
        if (rc == 0)
            freeReplyObject(rep);
        else if (errors++ == 0)
            snprintf(first_error, sizeof first_error, "%s", err.msg);
        usleep(100 * 1000);
    }
    cr_assert_str_neq(fp_redis_master_addr(r), before, "still on %s 60 s after FAILOVER", before);
    cr_assert_gt(fp_redis_discoveries(r), discoveries, "the client rediscovered the master");
    cr_log_info("failover followed from %s to %s after %d failed attempts (first: %s)", before,
                fp_redis_master_addr(r), errors, first_error);

    cr_assert_eq(cmd(r, &rep, &err, 2, (const char *[]){"GET", key}), 0, "%s", err.msg);
    cr_assert_eq(rep->type, REDIS_REPLY_STRING, "acknowledged write lost in the failover");
    cr_assert_str_eq(rep->str, val);
    freeReplyObject(rep);
    fp_redis_free(r);
}

/* Runs one command on the first sentinel of the list (raw hiredis: test set-up). */
static redisReply *sentinel0(const char *fmt, const char *a, const char *b, const char *c)
{
    char host[64];
    int port;
    cr_assert_eq(sscanf(sentinels, "%63[^:]:%d", host, &port), 2);
    redisContext *ctx = redisConnect(host, port);
    cr_assert(ctx && !ctx->err, "cannot reach sentinel %s:%d", host, port);
    redisReply *rep = redisCommand(ctx, fmt, a, b, c);
    redisFree(ctx);
    return rep;
}

Test(redis, a_named_master_whose_role_is_replica_is_refused)
{
    /* Make the first sentinel name one of the replicas as the master of a new name:
     * exactly what a client sees right after a demotion, before the sentinels agree. */
    redisReply *reps = sentinel0("SENTINEL REPLICAS %s", tk_env("FORMPIPE_REDIS_MASTER"), NULL, NULL);
    cr_assert(reps && reps->type == REDIS_REPLY_ARRAY && reps->elements > 0, "the master has replicas");
    const char *ip = NULL, *port = NULL;
    redisReply *first = reps->element[0];
    for (size_t i = 0; i + 1 < first->elements; i += 2) {
        if (!strcmp(first->element[i]->str, "ip"))
            ip = first->element[i + 1]->str;
        if (!strcmp(first->element[i]->str, "port"))
            port = first->element[i + 1]->str;
    }
    cr_assert(ip && port);
    char fake[64], one_sentinel[128];
    tk_unique(fake, sizeof fake, "fp-demoted");
    redisReply *r = sentinel0("SENTINEL MONITOR %s %s %s 1", fake, ip, port);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SENTINEL MONITOR: %s", r && r->str ? r->str : "no reply");
    freeReplyObject(r);
    snprintf(one_sentinel, sizeof one_sentinel, "%.*s", (int)strcspn(sentinels, ","), sentinels);

    fp_redis *c = open_redis(one_sentinel, fake, password);
    fp_error err = {0};
    int rc = fp_redis_connect(c, &err);
    fp_redis_free(c);
    freeReplyObject(sentinel0("SENTINEL REMOVE %s", fake, NULL, NULL));
    freeReplyObject(reps);
    cr_assert_eq(rc, FP_EIO, "a replica must never be used as the master");
    cr_assert_not_null(strstr(err.msg, "its ROLE is not master"), "%s", err.msg);
}
