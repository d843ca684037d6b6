/* Smoke test against the real Redis Sentinel set of scripts/testenv: discover the
 * master through the sentinels, write and read a key, and follow a SENTINEL FAILOVER
 * to the new master, where the (WAIT-replicated) key is still there. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include "testenv_util.h"

struct addr { char host[96]; int port; };

static int parse_sentinels(const char *list, struct addr *out, int max)
{
    int n = 0;
    const char *p = list;
    while (*p && n < max) {
        size_t len = strcspn(p, ",");
        char item[96];
        cr_assert_lt(len, sizeof item);
        memcpy(item, p, len);
        item[len] = '\0';
        char *colon = strrchr(item, ':');
        cr_assert_not_null(colon, "sentinel '%s' has no port", item);
        *colon = '\0';
        snprintf(out[n].host, sizeof out[n].host, "%s", item);
        out[n].port = atoi(colon + 1);
        n++;
        p += len + (p[len] == ',');
    }
    return n;
}

static redisContext *connect_to(const struct addr *a)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c)
        redisSetTimeout(c, tv);
    return c;
}

/* Asks the sentinels in order; fills *master from the first that answers. */
static int discover_master(const struct addr *s, int ns, const char *name, struct addr *master)
{
    for (int i = 0; i < ns; i++) {
        redisContext *c = connect_to(&s[i]);
        if (!c)
            continue;
        redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", name);
        int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2;
        if (ok) {
            snprintf(master->host, sizeof master->host, "%s", r->element[0]->str);
            master->port = atoi(r->element[1]->str);
        }
        freeReplyObject(r);
        redisFree(c);
        if (ok)
            return 0;
    }
    return -1;
}

static int role_is_master(redisContext *c)
{
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    return ok;
}

/* Counts replicas the master reports as online (INFO replication). */
static int online_replicas(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO replication");
    int n = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        for (const char *p = r->str; (p = strstr(p, "state=online")); p++)
            n++;
    }
    freeReplyObject(r);
    return n;
}

/* A failover earlier in the run leaves the old master to be turned into a replica by
 * the sentinels some seconds later; wait for a settled master with both replicas. */
static int wait_settled(const struct addr *s, int ns, const char *name, struct addr *master)
{
    double deadline = testenv_now() + 90;
    while (testenv_now() < deadline) {
        if (discover_master(s, ns, name, master) == 0) {
            redisContext *c = connect_to(master);
            int ok = c && role_is_master(c) && online_replicas(c) == 2;
            if (c)
                redisFree(c);
            if (ok)
                return 0;
        }
        usleep(250 * 1000);
    }
    return -1;
}

Test(sentinel, discover_write_read_and_follow_failover, .timeout = 240)
{
    const char *list = testenv_require("FORMPIPE_REDIS_SENTINELS");
    const char *name = testenv_require("FORMPIPE_REDIS_MASTER");
    struct addr sentinels[8], master, after;
    int ns = parse_sentinels(list, sentinels, 8);
    cr_assert_geq(ns, 3, "expected three sentinels, got '%s'", list);

    cr_assert_eq(wait_settled(sentinels, ns, name, &master), 0,
                 "no settled master %s with two online replicas within 90 s", name);
    redisContext *c = connect_to(&master);
    cr_assert_not_null(c, "cannot connect to master %s:%d", master.host, master.port);
    cr_assert(role_is_master(c), "%s:%d does not say ROLE master", master.host, master.port);

    char key[96], val[96];
    testenv_unique(key, sizeof key, "fp:smoke");
    testenv_unique(val, sizeof val, "value");
    redisReply *r = redisCommand(c, "SET %s %s", key, val);
    cr_assert(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0);
    freeReplyObject(r);
    r = redisCommand(c, "WAIT 2 5000");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 2, "both replicas acknowledge the write");
    freeReplyObject(r);
    r = redisCommand(c, "GET %s", key);
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    cr_assert_str_eq(r->str, val);
    freeReplyObject(r);
    redisFree(c);

    /* Ask any sentinel for a failover; retry while a previous one is still settling. */
    int asked = 0;
    double deadline = testenv_now() + 60;
    while (!asked && testenv_now() < deadline) {
        redisContext *s = connect_to(&sentinels[0]);
        cr_assert_not_null(s);
        r = redisCommand(s, "SENTINEL FAILOVER %s", name);
        asked = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
        if (!asked)
            cr_log_info("SENTINEL FAILOVER: %s (retrying)", r && r->str ? r->str : "no reply");
        freeReplyObject(r);
        redisFree(s);
        if (!asked)
            sleep(1);
    }
    cr_assert(asked, "no sentinel accepted SENTINEL FAILOVER within 60 s");

    int moved = 0;
    deadline = testenv_now() + 60;
    while (!moved && testenv_now() < deadline) {
        if (discover_master(sentinels, ns, name, &after) == 0 && after.port != master.port) {
            redisContext *n = connect_to(&after);
            if (n && role_is_master(n)) {
                r = redisCommand(n, "GET %s", key);
                cr_assert(r && r->type == REDIS_REPLY_STRING, "key lost in failover");
                cr_assert_str_eq(r->str, val);
                freeReplyObject(r);
                moved = 1;
            }
            if (n)
                redisFree(n);
        }
        if (!moved)
            usleep(250 * 1000);
    }
    cr_assert(moved, "sentinels still report %s:%d as master 60 s after FAILOVER", master.host, master.port);
}
