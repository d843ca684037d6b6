/* events.c — see events.h. */
#include "events.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "conditions.h"
#include "log.h"
#include "rfc3339.h"

void op_event_post(kube_conn *k, const cJSON *obj, const char *type, const char *reason,
                   const char *component, const char *instance, const char *fmt, ...)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
    if (!ns || !name)
        return;
    char message[1024], now[FP_RFC3339_MAX], evname[128], path[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    struct timespec ts;   /* one clock reading names the Event and stamps it */
    clock_gettime(CLOCK_REALTIME, &ts);
    fp_rfc3339_format(ts.tv_sec, ts.tv_nsec, 0, now, sizeof now);
    snprintf(evname, sizeof evname, "%.60s.%llx%05lx", name, (long long)ts.tv_sec, ts.tv_nsec / 10000);

    cJSON *ev = cJSON_CreateObject();
    cJSON *emd = cJSON_AddObjectToObject(ev, "metadata");
    cJSON_AddStringToObject(emd, "name", evname);
    cJSON_AddStringToObject(emd, "namespace", ns);
    cJSON *inv = cJSON_AddObjectToObject(ev, "involvedObject");
    static const char *const copy[] = {"apiVersion", "kind"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, copy[i]));
        if (v)
            cJSON_AddStringToObject(inv, copy[i], v);
    }
    cJSON_AddStringToObject(inv, "namespace", ns);
    cJSON_AddStringToObject(inv, "name", name);
    const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "uid"));
    if (uid)
        cJSON_AddStringToObject(inv, "uid", uid);
    cJSON_AddStringToObject(ev, "type", type);
    cJSON_AddStringToObject(ev, "reason", reason);
    cJSON_AddStringToObject(ev, "message", message);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(ev, "source"), "component", component);
    cJSON_AddStringToObject(ev, "reportingComponent", component);
    cJSON_AddStringToObject(ev, "reportingInstance", instance);
    cJSON_AddStringToObject(ev, "firstTimestamp", now);
    cJSON_AddStringToObject(ev, "lastTimestamp", now);
    cJSON_AddNumberToObject(ev, "count", 1);
    char *body = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/events", ns);
    fp_error err = {0};
    if (!body || kube_request(k, "POST", path, "application/json", body, NULL, NULL, &err) < 0)
        fp_log_warn("cannot record event", FP_LSTR("reason", reason), FP_LSTR("error", body ? err.msg : "out of memory"));
    else
        fp_log_info(message, FP_LSTR("event", reason), FP_LSTR("namespace", ns), FP_LSTR("name", name));
    free(body);
}
