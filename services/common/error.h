/* error.h — error codes shared by every formpipe module, and a message for a person. */
#ifndef FP_ERROR_H
#define FP_ERROR_H

/* Negative return codes. 0 is success. */
enum {
    FP_OK = 0,
    FP_ENOMEM = -1,   /* allocation failed */
    FP_EINVAL = -2,   /* bad argument or input */
    FP_ELIMIT = -3,   /* a configured limit was exceeded */
    FP_EIO = -4,      /* I/O or network failure */
    FP_ENOTFOUND = -5,
    FP_ETIMEOUT = -6,
    FP_EPERM = -7,
    FP_EHELP = -8     /* --help was asked for: not a failure, but stop */
};

typedef struct fp_error {
    int code;
    char msg[256];
} fp_error;

/* Records code and a printf-style message in *err (which may be NULL) and returns
 * code, so a caller can write `return fp_error_set(err, FP_EINVAL, "...")`. */
int fp_error_set(fp_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears *err (NULL is fine). */
void fp_error_clear(fp_error *err);

/* A short constant name for a code ("EINVAL"), for logs and tests. */
const char *fp_error_name(int code);

#endif
