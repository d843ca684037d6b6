/* Unit tests for services/common/rfc3339: formatting at each precision, parsing with
 * zones and fractions, impossible dates, and a sweep agreeing with gmtime. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rfc3339.h"

struct time_case { const char *text; int ok; long long ms; };

static struct time_case times[] = {
    {"2026-11-23T14:05:27.123Z", 1, 1795442727123LL},
    {"2026-11-23T14:05:27Z", 1, 1795442727000LL},
    {"2026-11-23t14:05:27.1z", 1, 1795442727100LL},
    {"2026-11-23T19:35:27.123+05:30", 1, 1795442727123LL},
    {"2026-11-23T09:05:27.123-05:00", 1, 1795442727123LL},
    {"1970-01-01T00:00:00Z", 1, 0},
    {"2024-02-29T00:00:00Z", 1, 1709164800000LL},
    {"2026-02-29T00:00:00Z", 0, 0},   /* not a leap year */
    {"2026-13-01T00:00:00Z", 0, 0},
    {"2026-11-23 14:05:27Z", 0, 0},
    {"2026-11-23T14:05:27", 0, 0},     /* no zone */
    {"2026-11-23T14:05:27.Z", 0, 0},
    {"2026-11-23T24:00:00Z", 0, 0},
    {"2026-11-23T14:05:27Zjunk", 0, 0},
    {"2026-04-31T00:00:00Z", 0, 0},   /* April has 30 days */
    {"2000-02-29T00:00:00Z", 1, 951782400000LL},   /* divisible by 400: leap */
    {"2100-02-29T00:00:00Z", 0, 0},   /* divisible by 100: not */
    {"2016-12-31T23:59:60Z", 1, 1483228800000LL},   /* a leap second reads as the next one */
    {"1969-12-31T23:59:59.999Z", 1, -1},
    {"2026-11-23T14:05:27.123456789Z", 1, 1795442727123LL},   /* cut to ms */
    {"", 0, 0},
};

ParameterizedTestParameters(rfc3339, parse)
{
    return cr_make_param_array(struct time_case, times, sizeof times / sizeof times[0]);
}

ParameterizedTest(struct time_case *c, rfc3339, parse)
{
    long long ms = -1;
    int rc = fp_rfc3339_parse_ms(c->text, &ms);
    cr_assert_eq(rc == 0, c->ok, "'%s'", c->text);
    if (c->ok)
        cr_assert_eq(ms, c->ms, "'%s' -> %lld", c->text, ms);
}

struct format_case { long long ms; const char *want; };

static struct format_case formats[] = {
    {1795442727005LL, "2026-11-23T14:05:27.005Z"},
    {0, "1970-01-01T00:00:00.000Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {951782400000LL, "2000-02-29T00:00:00.000Z"},
    {1709164800123LL, "2024-02-29T00:00:00.123Z"},
    {1798761599999LL, "2026-12-31T23:59:59.999Z"},
    {4102444800000LL, "2100-01-01T00:00:00.000Z"},
};

ParameterizedTestParameters(rfc3339, format_ms)
{
    return cr_make_param_array(struct format_case, formats, sizeof formats / sizeof formats[0]);
}

ParameterizedTest(struct format_case *c, rfc3339, format_ms)
{
    char out[FP_RFC3339_MAX];
    fp_rfc3339_format_ms(c->ms, out, sizeof out);
    cr_assert_str_eq(out, c->want);
}

Test(rfc3339, format_agrees_with_gmtime_and_parses_back)
{
    /* every 7 h 13 min 17.123 s from 1901 to 2199 */
    for (long long ms = -2177452800000LL; ms < 7258118400000LL; ms += 26000000 + 397123) {
        char out[40], want[40];
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + n, sizeof want - n, ".%03lldZ", ms - (long long)secs * 1000);
        fp_rfc3339_format_ms(ms, out, sizeof out);
        cr_assert_str_eq(out, want, "%lld", ms);
        long long back = 0;
        cr_assert_eq(fp_rfc3339_parse_ms(out, &back), 0, "%s", out);
        cr_assert_eq(back, ms, "%s", out);
    }
}

struct digits_case { long long secs; long nanos; int digits; const char *want; };

static struct digits_case precisions[] = {
    {1795442727, 123456789, 0, "2026-11-23T14:05:27Z"},
    {1795442727, 123456789, 3, "2026-11-23T14:05:27.123Z"},
    {1795442727, 123456789, 6, "2026-11-23T14:05:27.123456Z"},
    {1795442727, 123456789, 9, "2026-11-23T14:05:27.123456789Z"},
    {1795442727, 5000, 6, "2026-11-23T14:05:27.000005Z"},
    {1795442727, 999999999, 3, "2026-11-23T14:05:27.999Z"},   /* truncated, never rounded up */
    {-86400, 0, 0, "1969-12-31T00:00:00Z"},
    {253402300799LL, 0, 0, "9999-12-31T23:59:59Z"},
};

ParameterizedTestParameters(rfc3339, format_precisions)
{
    return cr_make_param_array(struct digits_case, precisions, sizeof precisions / sizeof precisions[0]);
}

ParameterizedTest(struct digits_case *c, rfc3339, format_precisions)
{
    char out[FP_RFC3339_MAX];
    fp_rfc3339_format(c->secs, c->nanos, c->digits, out, sizeof out);
    cr_assert_str_eq(out, c->want);
}

Test(rfc3339, now_is_the_wall_clock)
{
    char out[FP_RFC3339_MAX];
    long long ms = 0, before = (long long)time(NULL) * 1000;
    fp_rfc3339_now(6, out, sizeof out);
    cr_assert_eq(strlen(out), 27, "%s", out);
    cr_assert_eq(fp_rfc3339_parse_ms(out, &ms), 0, "%s", out);
    cr_assert(ms >= before && ms < before + 5000, "%s is not now", out);
}
