/* budget.h — a rate shared by every process that takes from it (the replicas of a
 * task, later every flush run of one Google service account): at most `limit` takes
 * per `window_ms`, evenly spaced, with up to `burst` at once. The state is one Redis
 * key (the theoretical arrival time of the next take, GCRA) updated by one Lua script
 * on the master's clock, so processes on different machines share it exactly and
 * their own clocks do not matter. */
#ifndef FP_BUDGET_H
#define FP_BUDGET_H

#include "error.h"
#include "redis.h"
#include "script.h"

typedef struct fp_budget {
    fp_redis *redis;          /* borrowed: outlives the budget */
    char key[512];
    long long interval_us;    /* window / limit */
    long long tolerance_us;   /* interval * (burst - 1) */
    fp_script script;
} fp_budget;

/* Sets up a budget of limit takes per window_ms (limit, window_ms, burst >= 1) under
 * key. FP_EINVAL for a bad rate, FP_ELIMIT for a key longer than the buffer. */
int fp_budget_init(fp_budget *b, fp_redis *redis, const char *key, long limit, long window_ms, long burst,
                   fp_error *err);

/* Takes one unit if the budget allows it now: *wait_ms 0. Otherwise takes nothing
 * and *wait_ms says how long until it will (> 0). Redis errors as fp_redis_command's. */
int fp_budget_take(fp_budget *b, long long *wait_ms, fp_error *err);

#endif
