/* Unit tests for services/task/retryafter: Retry-After as delay-seconds and as each
 * HTTP-date form, relative to a fixed now; what is ignored. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "error.h"
#include "retryafter.h"

#define NOW 1795442727000LL   /* Mon, 23 Nov 2026 14:05:27 GMT */

struct ra_case { const char *value; int ok; long long wait_ms; };

static struct ra_case cases[] = {
    {"0", 1, 0},
    {"120", 1, 120000},
    {"  7\r\n", 1, 7000},
    {"86400", 1, FP_RETRY_AFTER_MAX_MS},
    {"86401", 1, FP_RETRY_AFTER_MAX_MS},                       /* capped */
    {"99999999999999999999999999", 1, FP_RETRY_AFTER_MAX_MS},  /* saturates, no overflow */
    {"Mon, 23 Nov 2026 14:05:57 GMT", 1, 30000},
    {"Mon, 23 Nov 2026 14:05:27 GMT", 1, 0},
    {"Sun, 22 Nov 2026 14:05:27 GMT", 1, 0},                   /* past: now */
    {"Tue, 24 Nov 2026 14:05:27 GMT", 1, FP_RETRY_AFTER_MAX_MS},
    {"Monday, 23-Nov-26 14:06:27 GMT", 1, 60000},              /* RFC 850 */
    {"Mon Nov 23 14:07:27 2026", 1, 120000},                   /* asctime */
    {"Sun Nov  1 14:05:27 2026", 1, 0},                        /* asctime, one-digit day */
    {"Mon, 31 Feb 2026 14:05:27 GMT", 0, 0},                   /* no such day */
    {"Mon, 23 Nov 2026 24:05:27 GMT", 0, 0},
    {"Mon, 23 Nov 2026 14:05:27 UTC", 0, 0},
    {"Mon, 23 Nov 2026 14:05:27", 0, 0},
    {"23 Nov 2026 14:05:27 GMT", 0, 0},
    {"Mon, 23 Foo 2026 14:05:27 GMT", 0, 0},
    {"-5", 0, 0},
    {"1.5", 0, 0},
    {"12abc", 0, 0},
    {"", 0, 0},
    {"   ", 0, 0},
};

ParameterizedTestParameters(retryafter, parse)
{
    return cr_make_param_array(struct ra_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct ra_case *c, retryafter, parse)
{
    long long wait = -1;
    int rc = fp_retry_after_parse(c->value, NOW, &wait);
    cr_assert_eq(rc == 0, c->ok, "'%s': rc %d", c->value, rc);
    if (c->ok)
        cr_assert_eq(wait, c->wait_ms, "'%s': %lld ms", c->value, wait);
    else
        cr_assert_eq(rc, FP_EINVAL, "'%s'", c->value);
}

Test(retryafter, null_is_no_header)
{
    long long wait;
    cr_assert_eq(fp_retry_after_parse(NULL, NOW, &wait), FP_EINVAL);
}
