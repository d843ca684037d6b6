/* fold.h — text folded for word-list matching (the moderate kind): Unicode case
 * folding for Latin, Greek and Cyrillic, accents dropped (Latin-1 and Latin
 * Extended-A letters to their base letter, combining marks removed), NFKC-style
 * look-alikes (fullwidth forms, mathematical alphanumerics, circled letters, Greek and
 * Cyrillic letters shaped like Latin ones), leetspeak (0 o, 1 i or l, 3 e, 4 a, 5 s,
 * 7 t, @ a, $ s) and invisible characters (zero-width, soft hyphen) removed. What is
 * left is a sequence of words separated by single spaces: a word is a run of letters
 * (ASCII letters after folding, or other non-punctuation characters kept as they are);
 * everything else separates words. The word list is folded by the same function, so
 * "Ѕ Н 1 Т" and "sh1t" both fold to words the list's "shit" matches. Pure. */
#ifndef FP_FOLD_H
#define FP_FOLD_H

#include <stddef.h>

/* How '1' folds: it stands for i as often as for l. */
typedef enum fp_fold_one { FP_FOLD_ONE_I, FP_FOLD_ONE_L } fp_fold_one;

/* Folds in[0..len) (UTF-8; bytes that are not UTF-8 separate words) into out, the
 * words separated by one space, no leading or trailing space, NUL-terminated. out needs
 * len + 1 bytes at most (folding never lengthens text). Returns the folded length, or
 * -1 when outsz is too small. *saw_one (may be NULL) is set to 1 when a '1' was folded
 * (the caller may then fold again with FP_FOLD_ONE_L). */
long fp_fold(const char *in, size_t len, fp_fold_one one, char *out, size_t outsz, int *saw_one);

#endif
