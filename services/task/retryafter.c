/* retryafter.c — see retryafter.h. */
#include "retryafter.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include "error.h"

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const longdays[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};

/* Consumes exactly n digits into *v. */
static int digits(const char **p, const char *end, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (*p >= end || !isdigit((unsigned char)**p))
            return -1;
        *v = *v * 10 + (**p - '0');
    }
    return 0;
}

/* Consumes the literal s. */
static int lit(const char **p, const char *end, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
        return -1;
    *p += n;
    return 0;
}

/* Consumes one of names (count n, case-sensitive as the grammar says); its index. */
static int name(const char **p, const char *end, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (lit(p, end, names[i]) == 0)
            return i;
    return -1;
}

/* "HH:MM:SS" */
static int clock_of(const char **p, const char *end, struct tm *tm)
{
    return digits(p, end, 2, &tm->tm_hour) || lit(p, end, ":") || digits(p, end, 2, &tm->tm_min) ||
           lit(p, end, ":") || digits(p, end, 2, &tm->tm_sec) ? -1 : 0;
}

/* Parses the three HTTP-date forms into a UTC struct tm (unchecked ranges). */
static int http_date(const char *p, const char *end, struct tm *tm)
{
    const char *s = p;
    int y;
    memset(tm, 0, sizeof *tm);
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (name(&p, end, days, 7) >= 0 && lit(&p, end, ", ") == 0) {
        if (digits(&p, end, 2, &tm->tm_mday) || lit(&p, end, " ") ||
            (tm->tm_mon = name(&p, end, months, 12)) < 0 || lit(&p, end, " ") ||
            digits(&p, end, 4, &y) || lit(&p, end, " ") || clock_of(&p, end, tm) ||
            lit(&p, end, " GMT") || p != end)
            return -1;
        tm->tm_year = y - 1900;
        return 0;
    }
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year that looks more
     * than 50 years ahead is in the past century (RFC 9110 5.6.7), read against 2000. */
    p = s;
    if (name(&p, end, longdays, 7) >= 0 && lit(&p, end, ", ") == 0) {
        if (digits(&p, end, 2, &tm->tm_mday) || lit(&p, end, "-") ||
            (tm->tm_mon = name(&p, end, months, 12)) < 0 || lit(&p, end, "-") ||
            digits(&p, end, 2, &y) || lit(&p, end, " ") || clock_of(&p, end, tm) ||
            lit(&p, end, " GMT") || p != end)
            return -1;
        tm->tm_year = y + (y < 70 ? 100 : 0);
        return 0;
    }
    /* asctime: "Sun Nov  6 08:49:37 1994" */
    p = s;
    if (name(&p, end, days, 7) >= 0 && lit(&p, end, " ") == 0) {
        if ((tm->tm_mon = name(&p, end, months, 12)) < 0 || lit(&p, end, " "))
            return -1;
        if (*p == ' ') {
            p++;
            if (digits(&p, end, 1, &tm->tm_mday))
                return -1;
        } else if (digits(&p, end, 2, &tm->tm_mday)) {
            return -1;
        }
        if (lit(&p, end, " ") || clock_of(&p, end, tm) || lit(&p, end, " ") ||
            digits(&p, end, 4, &y) || p != end)
            return -1;
        tm->tm_year = y - 1900;
        return 0;
    }
    return -1;
}

int fp_retry_after_parse(const char *value, long long now_ms, long long *wait_ms)
{
    if (!value)
        return FP_EINVAL;
    const char *p = value, *end = value + strlen(value);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    if (p == end)
        return FP_EINVAL;

    if (isdigit((unsigned char)*p)) {
        long long secs = 0;
        for (; p < end; p++) {
            if (!isdigit((unsigned char)*p))
                return FP_EINVAL;
            if (secs <= FP_RETRY_AFTER_MAX_MS / 1000)   /* saturate, never overflow */
                secs = secs * 10 + (*p - '0');
        }
        long long ms = secs * 1000;
        *wait_ms = ms > FP_RETRY_AFTER_MAX_MS ? FP_RETRY_AFTER_MAX_MS : ms;
        return 0;
    }

    struct tm tm;
    if (http_date(p, end, &tm) < 0)
        return FP_EINVAL;
    if (tm.tm_mday < 1 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return FP_EINVAL;
    int mday = tm.tm_mday, sec = tm.tm_sec;
    time_t t = timegm(&tm);
    /* timegm normalizes 31 Feb into 3 March: a date that does not exist is refused
     * (a leap second may roll the day over). */
    if (t == (time_t)-1 || (tm.tm_mday != mday && sec != 60))
        return FP_EINVAL;
    long long ms = (long long)t * 1000 - now_ms;
    *wait_ms = ms < 0 ? 0 : ms > FP_RETRY_AFTER_MAX_MS ? FP_RETRY_AFTER_MAX_MS : ms;
    return 0;
}
