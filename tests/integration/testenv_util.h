/* testenv_util.h — helpers shared by the integration tests: reading what
 * `scripts/testenv env` exported. A missing variable fails the test loudly. */
#ifndef FP_TESTENV_UTIL_H
#define FP_TESTENV_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Returns the variable's value or fails the test naming it. */
static inline const char *testenv_require(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run under `scripts/testenv exec` (ctest's testenv fixture does)", name);
    return v;
}

/* Reads a small text file (a token) without its trailing newline; caller frees. */
static inline char *testenv_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

/* A name unique to this process and moment, for topics, groups and keys. */
static inline void testenv_unique(char *out, size_t outsz, const char *prefix)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, outsz, "%s-%ld-%ld", prefix, (long)getpid(), (long)(ts.tv_nsec / 1000));
}

static inline double testenv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
