/* fold.c: case folding, accents, look-alikes, leetspeak, word separation. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "fold.h"

struct fold_case {
    const char *in;
    int one_as_l;
    const char *want;
    int saw_one;
};

static const struct fold_case fold_cases[] = {
    {"Hello, World!", 0, "hello world", 0},
    {"  leading and trailing  ", 0, "leading and trailing", 0},
    {"", 0, "", 0},
    {"...", 0, "", 0},
    {"sh1t", 0, "shit", 1},
    {"sh1t", 1, "shlt", 1},
    {"h3ll0 w0rld", 0, "hello world", 0},
    {"4$$", 0, "ass", 0},
    {"@55", 0, "ass", 0},
    {"7r0ll", 0, "troll", 0},
    {"ＦＵＬＬ　ｗｉｄｔｈ", 0, "full width", 0},            /* fullwidth letters and space */
    {"Ça Ñandú Ærø STRAßE", 0, "ca nandu aero strasse", 0},  /* Latin-1 accents, ligatures, ß */
    {"Łódź Œuvre ĳs", 0, "lodz oeuvre ijs", 0},             /* Latin Extended-A */
    {"cafe\xcc\x81", 0, "cafe", 0},                            /* combining acute dropped */
    {"in\xe2\x80\x8bvis\xc2\xadible", 0, "invisible", 0},     /* zero-width space, soft hyphen */
    {"ЅНІТ", 0, "shit", 0},                                  /* Cyrillic capitals shaped like Latin */
    {"рожа", 0, "po\xd0\xb6" "a", 0},                        /* Cyrillic: look-alikes fold, ж stays */
    {"ДУРАК", 0, "\xd0\xb4ypak", 0},                         /* Cyrillic case folding (Д -> д) */
    {"ΑΒΓ αβγ", 0, "aby aby", 0},                            /* Greek: Γ folds to γ, which looks like y */
    {"Һ һ Ԁ", 0, "h h d", 0},                                 /* a capital folds to its small look-alike */
    {"\xce\xa2 ς", 0, "\xce\xa2 \xcf\x83", 0},                    /* U+03A2 is unassigned: kept, not a sigma */
    {"Ӂ ӂ Ӏ", 0, "\xd3\x82 \xd3\x82 \xd3\x8f", 0},             /* Cyrillic pairs with odd capitals */
    {"ΣΟΦΟΣ", 0, "\xcf\x83o\xcf\x86o\xcf\x83", 0},          /* Σ -> σ, Ο -> o, Φ -> φ */
    {"λόγος", 0, "\xce\xbboyo\xcf\x83", 0},                  /* ό -> o, γ looks like y, final sigma -> σ */
    {"\xf0\x9d\x90\x9f\xf0\x9d\x90\xae", 0, "fu", 0},       /* mathematical bold f, u */
    {"ⓑⓐⓓ", 0, "bad", 0},                                   /* circled letters */
    {"日本語 text", 0, "日本語 text", 0},                     /* other scripts kept as words */
    {"a\xffz", 0, "a z", 0},                                  /* a byte that is not UTF-8 separates */
    {"don't", 0, "don t", 0},
    {"e-mail\tand\nnew-line", 0, "e mail and new line", 0},
    {"“quoted” — dash", 0, "quoted dash", 0},                /* general punctuation separates */
};

ParameterizedTestParameters(fold, cases)
{
    return cr_make_param_array(struct fold_case, fold_cases, sizeof fold_cases / sizeof fold_cases[0]);
}

ParameterizedTest(struct fold_case *c, fold, cases)
{
    char out[256];
    int one = -1;
    long n = fp_fold(c->in, strlen(c->in), c->one_as_l ? FP_FOLD_ONE_L : FP_FOLD_ONE_I, out, sizeof out, &one);
    cr_assert_eq(n, (long)strlen(c->want), "'%s': want '%s', got '%s' (%ld)", c->in, c->want, n >= 0 ? out : "", n);
    cr_assert_str_eq(out, c->want, "'%s'", c->in);
    cr_assert_eq(one, c->saw_one, "'%s': saw_one", c->in);
}

Test(fold, never_longer_than_its_input)
{
    /* every byte value and a spread of code points: folding fits in len + 1 */
    char in[4096], out[4097];
    size_t n = 0;
    for (unsigned cp = 1; cp < 0x20000 && n + 4 < sizeof in; cp += cp < 0x600 ? 1 : 97) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        if (cp < 0x80) {
            in[n++] = (char)cp;
        } else if (cp < 0x800) {
            in[n++] = (char)(0xC0 | cp >> 6);
            in[n++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            in[n++] = (char)(0xE0 | cp >> 12);
            in[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
            in[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            in[n++] = (char)(0xF0 | cp >> 18);
            in[n++] = (char)(0x80 | (cp >> 12 & 0x3F));
            in[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
            in[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    long got = fp_fold(in, n, FP_FOLD_ONE_I, out, n + 1, NULL);
    cr_assert(got >= 0 && (size_t)got <= n, "folded %zu bytes into %ld", n, got);
    cr_assert_eq(strlen(out), (size_t)got);
}

Test(fold, refuses_a_buffer_too_small)
{
    char out[4];
    cr_assert_eq(fp_fold("hello", 5, FP_FOLD_ONE_I, out, sizeof out, NULL), -1);
    cr_assert_eq(fp_fold("hey", 3, FP_FOLD_ONE_I, out, sizeof out, NULL), 3);
}
