/* Unit tests for services/task/hooksig: the Formpipe-Signature value against HMACs
 * computed independently (Python's hmac), and its limits. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "error.h"
#include "hooksig.h"

struct sig_case {
    int key;              /* which key below */
    long long t;
    const char *body;     /* NULL: 3000 'x' */
    const char *want;
};

static struct sig_case sigs[] = {
    {0, 1700000000, "{\"a\":1}",
     "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"},
    {1, 0, "", "t=0,v1=b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3"},
    {2, 1795442727, NULL,   /* a key longer than SHA-256's block, NUL bytes in it */
     "t=1795442727,v1=198549cea213b1c7076aeec2a771d9d8ae444810e6b8a88bb045de8de536d93a"},
};

ParameterizedTestParameters(hooksig, matches_python_hmac)
{
    return cr_make_param_array(struct sig_case, sigs, sizeof sigs / sizeof sigs[0]);
}

ParameterizedTest(struct sig_case *c, hooksig, matches_python_hmac)
{
    unsigned char big[512];
    for (int i = 0; i < 512; i++)
        big[i] = (unsigned char)(i % 256);
    char xs[3000];
    memset(xs, 'x', sizeof xs);
    const void *key = c->key == 0 ? (const void *)"whsec_test" : c->key == 1 ? (const void *)"" : big;
    size_t keylen = c->key == 0 ? 10 : c->key == 1 ? 0 : sizeof big;
    const char *body = c->body ? c->body : xs;
    size_t len = c->body ? strlen(c->body) : sizeof xs;
    char out[FP_HOOKSIG_MAX];
    cr_assert_eq(fp_hooksig_format(key, keylen, c->t, body, len, out, sizeof out), 0);
    cr_assert_str_eq(out, c->want);
}

Test(hooksig, the_body_and_time_are_both_signed)
{
    char a[FP_HOOKSIG_MAX], b[FP_HOOKSIG_MAX], c[FP_HOOKSIG_MAX];
    cr_assert_eq(fp_hooksig_format("k", 1, 100, "body", 4, a, sizeof a), 0);
    cr_assert_eq(fp_hooksig_format("k", 1, 101, "body", 4, b, sizeof b), 0);
    cr_assert_eq(fp_hooksig_format("k", 1, 100, "bodY", 4, c, sizeof c), 0);
    cr_assert_str_neq(strchr(a, 'v'), strchr(b, 'v'), "another time, another MAC");
    cr_assert_str_neq(a, c, "another body, another MAC");
}

Test(hooksig, refuses_a_short_buffer_and_a_negative_time)
{
    char out[FP_HOOKSIG_MAX];
    cr_assert_eq(fp_hooksig_format("k", 1, 1, "b", 1, out, FP_HOOKSIG_MAX - 1), FP_EINVAL);
    cr_assert_eq(fp_hooksig_format("k", 1, -1, "b", 1, out, sizeof out), FP_EINVAL);
    /* The longest time fits: 19 digits. */
    cr_assert_eq(fp_hooksig_format("k", 1, 9223372036854775807LL, "b", 1, out, sizeof out), 0);
    cr_assert_eq(strlen(out), strlen("t=9223372036854775807,v1=") + 64);
}
