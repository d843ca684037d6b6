/* event.c — see event.h. */
#include "event.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fp_event_format_time(long long ms, char *out, size_t outsz)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char date[32];
    gmtime_r(&secs, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outsz, "%s.%03lldZ", date, ms % 1000);
}

/* Reads exactly n digits into *v. */
static int digits(const char **p, int n, int *v)
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

int fp_event_parse_time(const char *s, long long *ms)
{
    struct tm tm;
    int year, mon, day, hh, mm, ss, frac_ms = 0;
    const char *p = s;
    memset(&tm, 0, sizeof tm);
    if (digits(&p, 4, &year) || *p++ != '-' || digits(&p, 2, &mon) || *p++ != '-' ||
        digits(&p, 2, &day) || (*p != 'T' && *p != 't') || !*p++ || digits(&p, 2, &hh) ||
        *p++ != ':' || digits(&p, 2, &mm) || *p++ != ':' || digits(&p, 2, &ss))
        return FP_EINVAL;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
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
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return FP_EINVAL;
        offset_s = sign * (oh * 3600L + om * 60L);
    } else {
        return FP_EINVAL;
    }
    if (*p)
        return FP_EINVAL;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t t = timegm(&tm);
    /* timegm normalizes 31 Feb into March: reject dates that did not survive. */
    struct tm check;
    gmtime_r(&t, &check);
    if (check.tm_mday != day && ss != 60)
        return FP_EINVAL;
    *ms = ((long long)t - offset_s) * 1000 + frac_ms;
    return 0;
}

static const char *str_member(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

int fp_event_parse(const char *payload, size_t len, fp_event *ev, fp_error *err)
{
    memset(ev, 0, sizeof *ev);
    cJSON *doc = cJSON_ParseWithLength(payload, len);
    if (!doc || !cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return fp_error_set(err, FP_EINVAL, "event is not a JSON object");
    }
    ev->doc = doc;
    const char *v;
    if (!(v = str_member(doc, "specversion")) || strcmp(v, "1.0") != 0)
        return fp_error_set(err, FP_EINVAL, "specversion is not \"1.0\"");
    if (!(v = str_member(doc, "type")) || strcmp(v, FP_EVENT_TYPE) != 0)
        return fp_error_set(err, FP_EINVAL, "type is not \"" FP_EVENT_TYPE "\"");
    if (!(v = str_member(doc, "id")) || !*v || strlen(v) > FP_EVENT_MAX_ID)
        return fp_error_set(err, FP_EINVAL, "id is missing or longer than %d characters", FP_EVENT_MAX_ID);
    memcpy(ev->id, v, strlen(v) + 1);
    if (!(v = str_member(doc, "source")) || strlen(v) >= sizeof ev->source)
        return fp_error_set(err, FP_EINVAL, "source is missing or too long");
    memcpy(ev->source, v, strlen(v) + 1);
    if (!(v = str_member(doc, "time")) || strlen(v) >= sizeof ev->time ||
        fp_event_parse_time(v, &ev->time_ms))
        return fp_error_set(err, FP_EINVAL, "time is missing or not RFC 3339");
    memcpy(ev->time, v, strlen(v) + 1);
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(doc, "formgeneration");
    ev->generation = cJSON_IsNumber(gen) ? (long long)gen->valuedouble : 0;
    ev->data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    if (!cJSON_IsObject(ev->data))
        return fp_error_set(err, FP_EINVAL, "data is not an object");
    return 0;
}

void fp_event_clear(fp_event *ev)
{
    cJSON_Delete(ev->doc);
    ev->doc = NULL;
    ev->data = NULL;
}

char *fp_event_encode(const char *id, const char *ns, const char *name, long long time_ms,
                      long long generation, const cJSON *data)
{
    char source[300], when[40];
    snprintf(source, sizeof source, "/forms/%s/%s", ns, name);
    fp_event_format_time(time_ms, when, sizeof when);
    cJSON *o = cJSON_CreateObject();
    cJSON *copy = cJSON_Duplicate(data, 1);
    char *out = NULL;
    if (o && copy && cJSON_AddStringToObject(o, "specversion", "1.0") &&
        cJSON_AddStringToObject(o, "id", id) && cJSON_AddStringToObject(o, "source", source) &&
        cJSON_AddStringToObject(o, "type", FP_EVENT_TYPE) && cJSON_AddStringToObject(o, "time", when) &&
        cJSON_AddStringToObject(o, "datacontenttype", "application/json") &&
        cJSON_AddNumberToObject(o, "formgeneration", (double)generation)) {
        cJSON_AddItemToObject(o, "data", copy);
        copy = NULL;
        out = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(copy);
    cJSON_Delete(o);
    return out;
}
