/* jsonb.c — see jsonb.h. */
#include "jsonb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

cJSON *op_jb_obj(cJSON *o, const char *k)
{
    return cJSON_AddObjectToObject(o, k);
}

cJSON *op_jb_arr(cJSON *o, const char *k)
{
    return cJSON_AddArrayToObject(o, k);
}

void op_jb_str(cJSON *o, const char *k, const char *v)
{
    cJSON_AddStringToObject(o, k, v);
}

void op_jb_num(cJSON *o, const char *k, double v)
{
    cJSON_AddNumberToObject(o, k, v);
}

void op_jb_flag(cJSON *o, const char *k, int v)
{
    cJSON_AddBoolToObject(o, k, v);
}

cJSON *op_jb_push_obj(cJSON *array)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(array, o);
    return o;
}

void op_jb_argf(cJSON *array, const char *fmt, ...)
{
    char *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&buf, fmt, ap);   /* any length: an e-mail template is a value too */
    va_end(ap);
    cJSON_AddItemToArray(array, n < 0 ? cJSON_CreateNull() : cJSON_CreateString(buf));   /* null: the apply fails loudly */
    free(buf);
}
