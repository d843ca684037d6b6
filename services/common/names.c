/* names.c — see names.h. */
#include "names.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static int name_into(char *out, size_t outsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int name_into(char *out, size_t outsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outsz, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= outsz ? FP_ELIMIT : 0;
}

int fp_names_topic_valid(const char *topic)
{
    size_t n = strlen(topic);
    if (n == 0 || n > FP_NAMES_MAX_TOPIC || strcmp(topic, ".") == 0 || strcmp(topic, "..") == 0)
        return 0;
    return strspn(topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int fp_names_topic(const char *ns, const char *name, char *out, size_t outsz)
{
    return name_into(out, outsz, "forms.%s.%s", ns, name);
}

int fp_names_group(const char *ns, const char *name, char *out, size_t outsz)
{
    return name_into(out, outsz, "formpipe.%s.%s", ns, name);
}

int fp_names_dlq_topic(const char *topic, char *out, size_t outsz)
{
    return name_into(out, outsz, "%s.dlq", topic);
}

int fp_names_task_group(const char *ns, const char *pipeline, const char *task, char *out, size_t outsz)
{
    return name_into(out, outsz, "formpipe.%s.%s.%s", ns, pipeline, task);
}

int fp_names_task_dlq_topic(const char *topic, const char *task, char *out, size_t outsz)
{
    return name_into(out, outsz, "%s.%s.dlq", topic, task);
}

int fp_names_task_stream(const char *topic, const char *task, char *out, size_t outsz)
{
    return name_into(out, outsz, "%s.%s", topic, task);
}
