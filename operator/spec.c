/* spec.c — see spec.h. */
#include "spec.h"

#include <string.h>

const cJSON *op_spec_member(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

const char *op_spec_str(const cJSON *o, const char *k, const char *def)
{
    const char *s = cJSON_GetStringValue(op_spec_member(o, k));
    return s && *s ? s : def;
}

long long op_spec_num(const cJSON *o, const char *k, long long def)
{
    const cJSON *v = op_spec_member(o, k);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : def;
}

int op_spec_int(const cJSON *o, const char *k, long long def, long long lo, long long hi, const char *path,
                long long *out, fp_error *err)
{
    const cJSON *v = op_spec_member(o, k);
    if (!v) {
        *out = def;
        return 0;
    }
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || d != (double)(long long)d || d < lo || d > hi)
        return fp_error_set(err, FP_EINVAL, "%s.%s: must be an integer from %lld to %lld", path, k, lo, hi);
    *out = (long long)d;
    return 0;
}

int op_spec_dns_label(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || s[0] == '-' || s[n - 1] == '-')
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}
