/* rfc3339.c — see rfc3339.h. */
#include "rfc3339.h"
#include "error.h"

#include <ctype.h>
#include <stdio.h>
#include <time.h>

/* Civil date of a day count since 1970-01-01 (H. Hinnant's civil_from_days). */
static void civil_from_days(long long days, long long *y, int *m, int *d)
{
    long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

void fp_rfc3339_format(long long secs, long nanos, int digits, char *out, size_t outsz)
{
    long long days = secs / 86400 - (secs % 86400 < 0), sod = secs - days * 86400, y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    char frac[12] = "";
    if (digits > 0) {
        static const long scale[] = {1000000000, 100000000, 10000000, 1000000, 100000, 10000, 1000, 100, 10, 1};
        if (digits > 9)
            digits = 9;
        snprintf(frac, sizeof frac, ".%0*ld", digits, nanos / scale[digits]);
    }
    snprintf(out, outsz, "%04lld-%02d-%02dT%02lld:%02lld:%02lld%sZ", y, m, d, sod / 3600, sod / 60 % 60, sod % 60,
             frac);
}

void fp_rfc3339_format_ms(long long ms, char *out, size_t outsz)
{
    long long secs = ms / 1000 - (ms % 1000 < 0);
    fp_rfc3339_format(secs, (long)(ms - secs * 1000) * 1000000L, 3, out, outsz);
}

void fp_rfc3339_now(int digits, char *out, size_t outsz)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fp_rfc3339_format(ts.tv_sec, ts.tv_nsec, digits, out, outsz);
}

/* Reads exactly n digits into *v. */
static int digits_in(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        *v = *v * 10 + (**p - '0');
        (*p)++;
    }
    return 0;
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil). */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int fp_rfc3339_parse_ms(const char *s, long long *ms)
{
    int year, mon, day, hh, mm, ss, frac_ms = 0;
    const char *p = s;
    if (digits_in(&p, 4, &year) || *p++ != '-' || digits_in(&p, 2, &mon) || *p++ != '-' ||
        digits_in(&p, 2, &day) || (*p != 'T' && *p != 't') || !*p++ || digits_in(&p, 2, &hh) ||
        *p++ != ':' || digits_in(&p, 2, &mm) || *p++ != ':' || digits_in(&p, 2, &ss))
        return FP_EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] || (mon == 2 && day == 29 && !leap) || hh > 23 ||
        mm > 59 || ss > 60)
        return FP_EINVAL;
    if (*p == '.') {
        p++;
        int scale = 100, any = 0;
        while (isdigit((unsigned char)*p)) {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
            p++;
            any = 1;
        }
        if (!any)
            return FP_EINVAL;
    }
    long offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits_in(&p, 2, &oh) || *p++ != ':' || digits_in(&p, 2, &om) || oh > 23 || om > 59)
            return FP_EINVAL;
        offset_s = sign * (oh * 3600L + om * 60L);
    } else {
        return FP_EINVAL;
    }
    if (*p)
        return FP_EINVAL;
    long long secs = days_from_civil(year, mon, day) * 86400 + hh * 3600LL + mm * 60LL + ss;
    *ms = (secs - offset_s) * 1000 + frac_ms;
    return 0;
}
