/* error.c — see error.h. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int fp_error_set(fp_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void fp_error_clear(fp_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

const char *fp_error_name(int code)
{
    switch (code) {
    case FP_OK: return "OK";
    case FP_ENOMEM: return "ENOMEM";
    case FP_EINVAL: return "EINVAL";
    case FP_ELIMIT: return "ELIMIT";
    case FP_EIO: return "EIO";
    case FP_ENOTFOUND: return "ENOTFOUND";
    case FP_ETIMEOUT: return "ETIMEOUT";
    case FP_EPERM: return "EPERM";
    case FP_EHELP: return "EHELP";
    default: return "EUNKNOWN";
    }
}
