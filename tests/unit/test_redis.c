/* Unit tests for services/common/redis: configuration checks that need no server.
 * Discovery, failover and AUTH run against real sentinels in tests/integration. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "redis.h"

struct cfg_case { const char *sentinels, *master; int ok; const char *msg; const char *order; };

static struct cfg_case cfg_cases[] = {
    {"127.0.0.1:26379", "m", 1, NULL, "127.0.0.1:26379"},
    {"a:1,b:2,c:3", "m", 1, NULL, "a:1,b:2,c:3"},
    {"[::1]:26379", "m", 1, NULL, "[::1]:26379"},
    {"", "m", 0, "sentinels and master name are required", NULL},
    {"a:1", "", 0, "sentinels and master name are required", NULL},
    {"a", "m", 0, "sentinel 'a' is not host:port", NULL},
    {"a:1,,b:2", "m", 0, "sentinel '' is not host:port", NULL},
    {"a:0", "m", 0, "sentinel 'a:0' is not host:port", NULL},
    {"a:70000", "m", 0, "sentinel 'a:70000' is not host:port", NULL},
    {"a:x", "m", 0, "sentinel 'a:x' is not host:port", NULL},
    {"a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1,a:1", "m", 0, "more than 16 sentinels", NULL},
};

ParameterizedTestParameters(redis, config)
{
    return cr_make_param_array(struct cfg_case, cfg_cases, sizeof cfg_cases / sizeof cfg_cases[0]);
}

ParameterizedTest(struct cfg_case *c, redis, config)
{
    fp_error err = {0};
    fp_redis_config cfg = {.sentinels = c->sentinels, .master_name = c->master};
    fp_redis *r = fp_redis_new(&cfg, &err);
    if (!c->ok) {
        cr_assert_null(r, "'%s' should be refused", c->sentinels);
        cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
        return;
    }
    cr_assert_not_null(r, "'%s': %s", c->sentinels, err.msg);
    char order[256];
    fp_redis_sentinel_order(r, order, sizeof order);
    cr_assert_str_eq(order, c->order);
    cr_assert_str_eq(fp_redis_master_addr(r), "");
    fp_redis_free(r);
}

Test(redis, unreachable_sentinels_give_one_clear_error)
{
    fp_error err = {0};
    /* Port 1 on loopback: nothing listens there, the connection is refused at once. */
    fp_redis_config cfg = {.sentinels = "127.0.0.1:1", .master_name = "m", .connect_timeout_ms = 200};
    fp_redis *r = fp_redis_new(&cfg, &err);
    cr_assert_not_null(r);
    cr_assert_eq(fp_redis_connect(r, &err), FP_EIO);
    cr_assert_not_null(strstr(err.msg, "cannot reach master 'm'"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "127.0.0.1:1"), "names the sentinel: %s", err.msg);
    fp_redis_free(r);
}
