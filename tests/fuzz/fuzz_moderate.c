/* libFuzzer target: the moderate kind's pure parts (services/task). The input's first
 * line is a filter condition and a word list term; the whole input is folded, matched
 * and, when it is an event, moderated and re-encoded. Checked: folding never lengthens
 * text, leaves single spaces between words only, and folding folded text changes
 * nothing; an enriched event is an event again (moderated type) and JSON to cJSON.
 * Any sanitizer report or abort is a finding. */
#include "filter.h"
#include "fold.h"
#include "moderate_event.h"
#include "moderate_words.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *a = malloc(size + 1), *b = malloc(size + 1);
    check(a && b, "memory");
    int one = 0;
    long n = fp_fold(in, size, FP_FOLD_ONE_I, a, size + 1, &one);
    check(n >= 0 && (size_t)n <= size && strlen(a) == (size_t)n, "folding never lengthens");
    check(n == 0 || (a[0] != ' ' && a[n - 1] != ' ' && !strstr(a, "  ")), "single spaces between words");
    long m = fp_fold(a, (size_t)n, FP_FOLD_ONE_L, b, size + 1, NULL);
    check(m == n && memcmp(a, b, (size_t)n) == 0, "folding folded text changes nothing");

    const char *nl = memchr(in, '\n', size);
    size_t first = nl ? (size_t)(nl - in) : size;
    fp_words *w = fp_words_parse(in, first, NULL);
    if (w) {
        fp_words_result r = {0};
        long found = fp_words_match(w, a, (size_t)n, &r);
        check(found == r.score && r.nterms <= FP_WORDS_MAX_REPORTED, "a match counts what it reports");
        if (fp_words_count(w) == 1 && n > 0 && strcmp(a, b) == 0) {
            fp_words_result self = {0};
            char t[FP_WORDS_MAX_TERM + 1];
            long tl = fp_fold(fp_words_term(w, 0), strlen(fp_words_term(w, 0)), FP_FOLD_ONE_I, t, sizeof t, NULL);
            check(tl > 0 && fp_words_match(w, t, (size_t)tl, &self) >= 1, "a term matches itself");
        }
    }
    char cond[300];
    snprintf(cond, sizeof cond, "%.*s", (int)(first < 299 ? first : 299), in);
    char *items[] = {cond};
    fp_strlist l = {items, 1};
    fp_filter *f = fp_filter_new(&l, NULL);
    if (f) {
        fp_filter_match(f, in, size);
        fp_filter_free(f);
    }

    fp_event ev = {0};
    fp_error err = {0};
    if (w && fp_event_parse(in, size, &ev, &err) == 0) {
        fp_modevent_config c = {.threshold = 1};
        fp_modevent_scratch s = {0};
        fp_moderation mod;
        fp_buf out;
        fp_buf_init(&out, (size_t)FP_EVENT_MAX_BYTES);
        check(fp_modevent_check(w, &c, &ev, &s, &mod) == 0, "checked");
        check(fp_modevent_encode(in, size, &mod, w, &out) == 0, "encoded");
        fp_event again;
        check(fp_event_parse(out.data, out.len, &again, &err) == 0, "the enriched event is an event");
        check(strcmp(again.type, FP_EVENT_TYPE_MODERATED) == 0 && strcmp(again.id, ev.id) == 0, "moderated type, same id");
        check(again.nfields == ev.nfields, "data unchanged");
        fp_event_clear(&again);
        cJSON *j = cJSON_ParseWithLength(out.data, out.len);
        check(j && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "moderation")), "JSON with a moderation object");
        cJSON_Delete(j);
        fp_buf_free(&out);
        fp_modevent_scratch_free(&s);
    }
    fp_event_clear(&ev);
    fp_words_free(w);
    free(a);
    free(b);
    return 0;
}
