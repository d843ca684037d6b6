/* Unit tests for services/ingest/body and services/common/ids: request bodies and
 * submission ids. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "body.h"
#include "ids.h"
#include <stdio.h>

struct json_case { const char *body; const char *msg; };

static struct json_case json_cases[] = {
    {"{\"a\":\"x\"}", NULL},
    {"{\"a\":[[[[[[[1]]]]]]]}", NULL},                              /* depth 8 */
    {"{\"a\":[[[[[[[[1]]]]]]]]}", "nests deeper than 8 levels"},
    {"{\"a\":\"[[[[[[[[[[\"}", NULL},                               /* brackets inside strings don't count */
    {"{\"a\":\"x\\u0000y\"}", "contains a \\u0000 character"},
    {"{\"a\":\"x\\\\u0000y\"}", NULL},                              /* an escaped backslash, not a NUL */
    {"[1,2]", "must be a JSON object"},
    {"\"text\"", "must be a JSON object"},
    {"{\"a\":", "is not valid JSON"},
    {"{\"a\":\"\xff\"}", "is not valid UTF-8"},
    /* strict: nothing after the object but white space, no repeated member names */
    {"{\"a\":\"x\"} \r\n\t", NULL},
    {"{\"a\":\"x\"} xyz", "bytes after the JSON object"},
    {"{\"a\":\"x\"}{\"b\":1}", "bytes after the JSON object"},
    {"{\"a\":\"x\",\"b\":1,\"a\":\"y\"}", "repeats a member name"},
    {"{\"a\":{\"k\":1,\"k\":2}}", "repeats a member name"},
    {"{\"a\":[{\"k\":1,\"k\":2}]}", "repeats a member name"},
    {"{\"a\":{\"k\":1},\"b\":{\"k\":2}}", NULL},
};

ParameterizedTestParameters(body, json)
{
    return cr_make_param_array(struct json_case, json_cases, sizeof json_cases / sizeof json_cases[0]);
}

ParameterizedTest(struct json_case *c, body, json)
{
    fp_error err = {0};
    cJSON *doc = fp_body_json(c->body, strlen(c->body), &err);
    if (c->msg) {
        cr_assert_null(doc, "%s should be refused", c->body);
        cr_assert_not_null(strstr(err.msg, c->msg), "'%s' not in '%s'", c->msg, err.msg);
    } else {
        cr_assert_not_null(doc, "%s: %s", c->body, err.msg);
    }
    cJSON_Delete(doc);
}

struct form_case { const char *body; const char *want; int max_pairs; /* 0: FP_BODY_MAX_PAIRS */ };

static struct form_case form_cases[] = {
    {"name=Asha+Verma&roll=42", "{\"name\":\"Asha Verma\",\"roll\":\"42\"}", 0},
    {"email=a%40b.co&note=100%25", "{\"email\":\"a@b.co\",\"note\":\"100%\"}", 0},
    {"city=M%C3%BCnchen", "{\"city\":\"M\xc3\xbcnchen\"}", 0},
    {"a=1&a=2", "{\"a\":\"2\"}", 0},
    {"flag&x=", "{\"flag\":\"\",\"x\":\"\"}", 0},
    {"&&a=1&&", "{\"a\":\"1\"}", 0},
    {"", "{}", 0},
    {"a=%ZZ", NULL, 0},
    {"a=%4", NULL, 0},
    {"a=%00", NULL, 0},
    {"a=1&&&&b=2&c=3", "{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}", 3},   /* at the pair limit */
    {"a=1&b=2&c=3&d=4", NULL, 3},                                     /* over it */
    {"a=1&a=2&a=3&a=4", NULL, 3},                                     /* repeats count too */
    {"a=%FF", NULL, 0},
    {"=v", NULL, 0},
};

ParameterizedTestParameters(body, form)
{
    return cr_make_param_array(struct form_case, form_cases, sizeof form_cases / sizeof form_cases[0]);
}

ParameterizedTest(struct form_case *c, body, form)
{
    fp_error err = {0};
    cJSON *doc = fp_body_form(c->body, strlen(c->body), c->max_pairs ? c->max_pairs : FP_BODY_MAX_PAIRS, &err);
    if (!c->want) {
        cr_assert_null(doc, "'%s' should be refused", c->body);
        return;
    }
    cr_assert_not_null(doc, "'%s': %s", c->body, err.msg);
    char *got = cJSON_PrintUnformatted(doc);
    cr_assert_str_eq(got, c->want, "'%s'", c->body);
    free(got);
    cJSON_Delete(doc);
}

/* A body of many distinct names costs linear time: 60 KB of them is refused at the
 * pair limit in milliseconds (repeated names used to make every pair a scan of all
 * the previous ones). The JSON twin: 60 KB of distinct members is checked for
 * repeats in n log n. */
Test(body, many_distinct_names_answer_in_milliseconds)
{
    size_t cap = 64 * 1024, n = 0;
    char *form = malloc(cap), *json = malloc(2 * cap);
    size_t jn = (size_t)snprintf(json, cap, "{");
    for (int i = 0; n < 60000; i++) {
        n += (size_t)snprintf(form + n, cap - n, "n%d=&", i);
        jn += (size_t)snprintf(json + jn, 2 * cap - jn, "\"n%d\":1,", i);
    }
    json[jn - 1] = '}';
    struct timespec t0, t1;
    fp_error err = {0};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cJSON *doc = fp_body_form(form, n, FP_BODY_MAX_PAIRS, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert_null(doc);
    cr_assert_eq(err.code, FP_ELIMIT, "%s", err.msg);
    cr_assert_lt(ms, 20.0, "urlencoded: %.1f ms", ms);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    doc = fp_body_json(json, jn, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert_not_null(doc, "%s", err.msg);
    cr_assert_lt(ms, 200.0, "json: %.1f ms", ms);
    cJSON_Delete(doc);
    free(form);
    free(json);
}

Test(ids, ulids_carry_the_time_in_their_first_ten_characters)
{
    char id[FP_ID_LEN + 1], other[FP_ID_LEN + 1];
    cr_assert_eq(fp_id_ulid(1469918176385LL, id), 0);   /* the ULID specification's example time */
    cr_assert_eq(strlen(id), 26);
    cr_assert_eq(strncmp(id, "01ARYZ6S41", 10), 0, "%s", id);
    cr_assert_eq(fp_id_ulid(1469918176385LL, other), 0);
    cr_assert_str_neq(id, other, "80 random bits differ");
    cr_assert_eq(fp_id_ulid(1469918176386LL, other), 0);
    cr_assert_gt(strcmp(other, id), 0, "later ids sort later");
    for (int i = 0; i < 26; i++)
        cr_assert_not_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", id[i]), "Crockford base32: %c", id[i]);
    /* ids come from a per-thread pool of random bytes: many in a row stay distinct */
    static char many[500][FP_ID_LEN + 1];
    for (int i = 0; i < 500; i++) {
        cr_assert_eq(fp_id_ulid(1469918176385LL, many[i]), 0);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(many[i], many[j], "ids %d and %d", i, j);
    }
}

Test(ids, derived_ids_are_stable_per_form_and_key)
{
    char a[FP_ID_LEN + 1], b[FP_ID_LEN + 1], c[FP_ID_LEN + 1], d[FP_ID_LEN + 1];
    fp_id_derived("forms", "student-data", "retry-123", 9, a);
    fp_id_derived("forms", "student-data", "retry-123", 9, b);
    fp_id_derived("forms", "other-form", "retry-123", 9, c);
    fp_id_derived("forms", "student-dat", "aretry-123", 10, d);   /* no ambiguity across the parts */
    cr_assert_str_eq(a, b, "a retry gets the same id");
    cr_assert_str_eq(a, "1M641QNJB10JES7PS957MGTAF8", "SHA-256's first 128 bits in Crockford base32, same in every version");
    cr_assert_str_neq(a, c, "the key is scoped to the form");
    cr_assert_str_neq(a, d);
    cr_assert_eq(strlen(a), 26);
}

#include "ratelimit.h"

Test(ratelimit, burst_then_rate_per_client)
{
    fp_ratelimit *rl = fp_ratelimit_new(2, 3);   /* 2 per second, bursts of 3 */
    int retry = 0;
    for (int i = 0; i < 3; i++)
        cr_assert(fp_ratelimit_take(rl, "10.0.0.1", 100.0, &retry), "burst token %d", i);
    cr_assert_not(fp_ratelimit_take(rl, "10.0.0.1", 100.0, &retry), "the fourth at once is refused");
    cr_assert_eq(retry, 1, "a token is back within a second at 2/s");
    cr_assert(fp_ratelimit_take(rl, "10.0.0.2", 100.0, &retry), "another client has its own bucket");
    cr_assert(fp_ratelimit_take(rl, "10.0.0.1", 100.5, &retry), "half a second later one token is back");
    cr_assert_not(fp_ratelimit_take(rl, "10.0.0.1", 100.5, &retry));
    cr_assert(fp_ratelimit_take(rl, "10.0.0.1", 110.0, &retry), "idle time refills");
    fp_ratelimit_free(rl);
}

Test(ratelimit, off_and_bounded_memory)
{
    fp_ratelimit *off = fp_ratelimit_new(0, 1);
    int retry;
    for (int i = 0; i < 1000; i++)
        cr_assert(fp_ratelimit_take(off, "x", 0, &retry), "rate 0 means no limit");
    fp_ratelimit_free(off);

    fp_ratelimit *rl = fp_ratelimit_new(1, 1);
    char client[32];
    for (int i = 0; i < 100000; i++) {   /* far more clients than slots: old ones are reused */
        snprintf(client, sizeof client, "c%d", i);
        cr_assert(fp_ratelimit_take(rl, client, i * 0.001, &retry), "a new client gets its burst (%d)", i);
    }
    fp_ratelimit_free(rl);
}
