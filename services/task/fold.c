/* fold.c — see fold.h. One pass: decode a code point, map it to zero, one or two
 * ASCII letters, a kept code point, or a separator, and write words. */
#include "fold.h"
#include "utf8.h"

#include <string.h>

/* U+00C0..U+00FF to their base letter; '?' for the two-letter ones (see two_letters),
 * '#' for the two signs (× ÷) that separate. */
static const char latin1[] = "aaaaaa?ceeeeiiiidnooooo#ouuuuy??"
                             "aaaaaa?ceeeeiiiidnooooo#ouuuuy?y";
/* U+0100..U+017F to their base letter; '?' for Ĳ ĳ Œ œ. */
static const char latin_ext_a[] = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii??jjkkk"
                                  "llllllllllnnnnnnnnnoooooo??rrrrrrssssssssttttttuuuuuuuuuuuu"
                                  "wwyyyzzzzzzs";

/* The two letters of a ligature or ß, or NULL. */
static const char *two_letters(unsigned cp)
{
    switch (cp) {
    case 0xC6: case 0xE6: return "ae";
    case 0xDE: case 0xFE: return "th";
    case 0xDF: return "ss";
    case 0x132: case 0x133: return "ij";
    case 0x152: case 0x153: return "oe";
    default: return NULL;
    }
}

/* Greek and Cyrillic letters shaped like a Latin letter (either case), by code point. */
static const struct { unsigned cp; char to; } lookalikes[] = {
    /* Greek capitals and small letters */
    {0x391, 'a'}, {0x392, 'b'}, {0x395, 'e'}, {0x396, 'z'}, {0x397, 'h'}, {0x399, 'i'}, {0x39A, 'k'},
    {0x39C, 'm'}, {0x39D, 'n'}, {0x39F, 'o'}, {0x3A1, 'p'}, {0x3A4, 't'}, {0x3A5, 'y'}, {0x3A7, 'x'},
    {0x3AC, 'a'}, {0x3AD, 'e'}, {0x3AE, 'n'}, {0x3AF, 'i'}, {0x3B1, 'a'}, {0x3B2, 'b'}, {0x3B3, 'y'},
    {0x3B5, 'e'}, {0x3B7, 'n'}, {0x3B9, 'i'}, {0x3BA, 'k'}, {0x3BD, 'v'}, {0x3BF, 'o'}, {0x3C1, 'p'},
    {0x3C4, 't'}, {0x3C5, 'u'}, {0x3C7, 'x'}, {0x3C9, 'w'}, {0x3CA, 'i'}, {0x3CB, 'u'}, {0x3CC, 'o'},
    {0x3CD, 'u'}, {0x3CE, 'w'}, {0x386, 'a'}, {0x388, 'e'}, {0x389, 'h'}, {0x38A, 'i'}, {0x38C, 'o'},
    {0x38E, 'y'}, {0x390, 'i'}, {0x3B0, 'u'},
    /* Cyrillic */
    {0x405, 's'}, {0x406, 'i'}, {0x407, 'i'}, {0x408, 'j'}, {0x410, 'a'}, {0x412, 'b'}, {0x415, 'e'},
    {0x41A, 'k'}, {0x41C, 'm'}, {0x41D, 'h'}, {0x41E, 'o'}, {0x420, 'p'}, {0x421, 'c'}, {0x422, 't'},
    {0x423, 'y'}, {0x425, 'x'}, {0x430, 'a'}, {0x432, 'b'}, {0x435, 'e'}, {0x43A, 'k'}, {0x43C, 'm'},
    {0x43D, 'h'}, {0x43E, 'o'}, {0x440, 'p'}, {0x441, 'c'}, {0x442, 't'}, {0x443, 'y'}, {0x445, 'x'},
    {0x450, 'e'}, {0x451, 'e'}, {0x455, 's'}, {0x456, 'i'}, {0x457, 'i'}, {0x458, 'j'}, {0x400, 'e'},
    {0x401, 'e'}, {0x4BB, 'h'}, {0x501, 'd'}, {0x51B, 'q'}, {0x51D, 'w'},
};

/* The Latin letter a Greek or Cyrillic code point looks like, or 0. */
static char lookalike(unsigned cp)
{
    for (size_t i = 0; i < sizeof lookalikes / sizeof lookalikes[0]; i++)
        if (lookalikes[i].cp == cp)
            return lookalikes[i].to;
    return 0;
}

/* Simple case folding of the Greek and Cyrillic letters left after lookalike(). */
static unsigned fold_case(unsigned cp)
{
    if ((cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) || (cp >= 0x410 && cp <= 0x42F))   /* U+03A2 is unassigned */
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 0x50;
    if (cp == 0x3C2)   /* final sigma */
        return 0x3C3;
    if (cp == 0x4C0)   /* palochka */
        return 0x4CF;
    if (cp >= 0x4C1 && cp <= 0x4CE)   /* here the capitals are the odd ones */
        return cp % 2 ? cp + 1 : cp;
    if (cp >= 0x460 && cp <= 0x52F && !(cp >= 0x482 && cp <= 0x489) && cp % 2 == 0)   /* paired Cyrillic */
        return cp + 1;
    return cp;
}

/* 1 for code points that only separate words: spaces and punctuation blocks. */
static int is_separator(unsigned cp)
{
    return (cp >= 0x80 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x206F) ||
           (cp >= 0x2190 && cp <= 0x23FF) || (cp >= 0x2500 && cp <= 0x27BF) || (cp >= 0x3000 && cp <= 0x303F) ||
           (cp >= 0xFE10 && cp <= 0xFE6F) || (cp >= 0xFFF0 && cp <= 0xFFFF) || (cp >= 0x1F000 && cp <= 0x1FAFF);
}

/* 1 for code points dropped without a trace: zero-width, soft hyphen, combining marks,
 * variation selectors. */
static int is_invisible(unsigned cp)
{
    return cp == 0xAD || (cp >= 0x200B && cp <= 0x200D) || cp == 0x2060 || cp == 0xFEFF ||
           (cp >= 0x300 && cp <= 0x36F) || (cp >= 0xFE00 && cp <= 0xFE0F);
}

/* An ASCII character folded: a lowercase letter, or 0 for a separator. */
static char fold_ascii(unsigned c, fp_fold_one one, int *saw_one)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c + 32);
    if (c >= 'a' && c <= 'z')
        return (char)c;
    switch (c) {
    case '0': return 'o';
    case '1':
        if (saw_one)
            *saw_one = 1;
        return one == FP_FOLD_ONE_L ? 'l' : 'i';
    case '3': return 'e';
    case '4': case '@': return 'a';
    case '5': case '$': return 's';
    case '7': return 't';
    default: return 0;
    }
}

long fp_fold(const char *in, size_t len, fp_fold_one one, char *out, size_t outsz, int *saw_one)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + len;
    size_t o = 0;
    int gap = 0;   /* a separator was seen since the last letter written */
    if (saw_one)
        *saw_one = 0;
    if (outsz == 0)
        return -1;
    while (p < end) {
        unsigned cp;
        size_t n;
        if (*p < 0x80) {
            cp = *p;
            n = 1;
        } else if (!(n = fp_utf8_next(p, (size_t)(end - p), &cp))) {
            p++;
            gap = 1;
            continue;
        }
        const unsigned char *src = p;
        p += n;
        char letters[3] = {0};   /* up to two ASCII letters, or none */
        int keep = 0;            /* write src[0..n) as it is */
        if (cp >= 0xFF01 && cp <= 0xFF5E)   /* fullwidth ASCII */
            cp -= 0xFEE0;
        else if (cp >= 0x1D400 && cp <= 0x1D6A3)   /* mathematical alphanumerics: 13 alphabets of 52 */
            cp = (cp - 0x1D400) % 52 < 26 ? 'a' + (cp - 0x1D400) % 52 : 'a' + (cp - 0x1D400) % 52 - 26;
        else if (cp >= 0x1D7CE && cp <= 0x1D7FF)   /* mathematical digits */
            cp = '0' + (cp - 0x1D7CE) % 10;
        else if (cp >= 0x24B6 && cp <= 0x24E9)     /* circled letters */
            cp = 'a' + (cp - 0x24B6) % 26;
        if (cp < 0x80) {
            letters[0] = fold_ascii(cp, one, saw_one);
        } else if (is_invisible(cp)) {
            continue;
        } else if (cp >= 0xC0 && cp <= 0x17F) {
            char c = cp < 0x100 ? latin1[cp - 0xC0] : latin_ext_a[cp - 0x100];
            if (c == '?')
                memcpy(letters, two_letters(cp), 2);
            else if (c != '#')
                letters[0] = c;
        } else if (is_separator(cp)) {
            letters[0] = 0;
        } else if ((letters[0] = lookalike(cp)) == 0 && (letters[0] = lookalike(fold_case(cp))) == 0) {
            unsigned f = fold_case(cp);   /* a capital whose small letter looks Latin was caught above */
            keep = 1;
            if (f != cp) {   /* Greek and Cyrillic: the lowercase letter has the same length */
                unsigned char *d = (unsigned char *)out + o + (gap && o ? 1 : 0);
                if (o + (gap && o ? 1 : 0) + n + 1 > outsz)
                    return -1;
                if (gap && o)
                    out[o++] = ' ';
                gap = 0;
                d[0] = (unsigned char)(0xC0 | f >> 6);
                d[1] = (unsigned char)(0x80 | (f & 0x3F));
                o += 2;
                continue;
            }
        }
        if (!keep && !letters[0]) {
            gap = 1;
            continue;
        }
        size_t add = keep ? n : strlen(letters);
        if (o + (gap && o ? 1 : 0) + add + 1 > outsz)
            return -1;
        if (gap && o)
            out[o++] = ' ';
        gap = 0;
        memcpy(out + o, keep ? (const char *)src : letters, add);
        o += add;
    }
    out[o] = 0;
    return (long)o;
}
