/* Unit tests for services/common/utf8: the one UTF-8 decoder (buf, schema, jscan and
 * the ingest's body parsing all call it). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "utf8.h"

struct utf8_case {
    const char *bytes;
    size_t len;       /* of the first sequence; 0: invalid */
    unsigned cp;
};

static struct utf8_case cases[] = {
    {"A", 1, 0x41},
    {"\x7f", 1, 0x7F},
    {"\xc2\x80", 2, 0x80},
    {"\xc3\xa9", 2, 0xE9},
    {"\xe0\xa0\x80", 3, 0x800},
    {"\xe2\x82\xac", 3, 0x20AC},
    {"\xed\x9f\xbf", 3, 0xD7FF},
    {"\xee\x80\x80", 3, 0xE000},
    {"\xf0\x9f\x98\x80", 4, 0x1F600},
    {"\xf4\x8f\xbf\xbf", 4, 0x10FFFF},
    {"\x80", 0, 0},                 /* a lone continuation byte */
    {"\xc0\xaf", 0, 0},             /* overlong '/' */
    {"\xc1\xbf", 0, 0},             /* overlong */
    {"\xe0\x9f\xbf", 0, 0},         /* overlong */
    {"\xf0\x8f\xbf\xbf", 0, 0},     /* overlong */
    {"\xed\xa0\x80", 0, 0},         /* an encoded surrogate */
    {"\xed\xbf\xbf", 0, 0},         /* an encoded surrogate */
    {"\xf4\x90\x80\x80", 0, 0},     /* past U+10FFFF */
    {"\xf8\x88\x80\x80\x80", 0, 0}, /* five-byte form */
    {"\xc3", 0, 0},                 /* cut short */
    {"\xe2\x82", 0, 0},             /* cut short */
    {"\xe2\x28\xac", 0, 0},         /* not a continuation byte */
};

ParameterizedTestParameters(utf8, sequences_decode_or_are_refused)
{
    return cr_make_param_array(struct utf8_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct utf8_case *c, utf8, sequences_decode_or_are_refused)
{
    unsigned cp = 0;
    size_t n = strlen(c->bytes);
    size_t len = fp_utf8_next((const unsigned char *)c->bytes, n, &cp);
    cr_assert_eq(len, c->len, "sequence %zu bytes long", n);
    if (len)
        cr_assert_eq(cp, c->cp, "U+%04X", c->cp);
    cr_assert_eq(fp_utf8_valid(c->bytes, n), len == n, "whole text valid");
}

Test(utf8, a_text_is_valid_only_when_every_sequence_is)
{
    cr_assert(fp_utf8_valid("", 0));
    const char *mixed = "Asha \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    cr_assert(fp_utf8_valid(mixed, strlen(mixed)));
    cr_assert(!fp_utf8_valid(mixed, strlen(mixed) - 1), "the last character cut short");
    cr_assert(!fp_utf8_valid("Asha \xc3\xa9 \xed\xa0\x80", 11));
    cr_assert(!fp_utf8_valid("ok\xc3", 3), "a sequence cut by the length");
    cr_assert(fp_utf8_valid("a\0b", 3), "NUL is a character; callers that refuse it say so");
}
