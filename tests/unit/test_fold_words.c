/* moderate_words.c and moderate_event.c: the word list, matching folded text, an
 * event's moderation and the enriched CloudEvent. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "fold.h"
#include "moderate_event.h"
#include "moderate_words.h"

static const char list[] = "# a comment\n"
                           "darn\n"
                           "  Heck  \r\n"
                           "\n"
                           "bad word\n"
                           "DARN\n"          /* a repeat after folding */
                           "h3ll\n"          /* leet in the list folds too */
                           "lol\n"
                           "шлак\n";

struct match_case {
    const char *text;
    long score;
    const char *terms;   /* the distinct terms found, as listed, space-separated in order of finding */
};

static const struct match_case match_cases[] = {
    {"nothing to see", 0, ""},
    {"darn it", 1, "darn"},
    {"Darn, DARN and d4rn", 3, "darn"},
    {"darned", 0, ""},                       /* word boundaries: no substring matches */
    {"what the heck", 1, "Heck"},
    {"a bad word here", 1, "bad word"},
    {"a bad  WORD here", 1, "bad word"},     /* separators fold to one space */
    {"bad wordy", 0, ""},
    {"bad", 0, ""},
    {"go to hell", 1, "h3ll"},
    {"ＨＥＬＬ and ｄａｒｎ", 2, "h3ll darn"},
    {"Ηeck", 1, "Heck"},                     /* Greek capital eta */
    {"dаrn", 1, "darn"},                     /* Cyrillic a */
    {"d\xe2\x80\x8b" "arn", 1, "darn"},      /* zero-width space inside */
    {"ШЛАК", 1, "шлак"},                     /* Cyrillic words fold their case */
    {"lo1", 1, "lol"},                       /* '1' tried as l too */
    {"he11", 1, "h3ll"},
};

ParameterizedTestParameters(words, match)
{
    return cr_make_param_array(struct match_case, match_cases, sizeof match_cases / sizeof match_cases[0]);
}

/* The event {"data":{"t": text}} moderated with every field, threshold 1. */
ParameterizedTest(struct match_case *c, words, match)
{
    fp_error err = {0};
    fp_words *w = fp_words_parse(list, strlen(list), &err);
    cr_assert(w, "%s", err.msg);
    cr_assert_eq(fp_words_count(w), 6);
    char payload[512];
    cJSON *s = cJSON_CreateString(c->text);
    char *js = cJSON_PrintUnformatted(s);
    snprintf(payload, sizeof payload,
             "{\"specversion\":\"1.0\",\"id\":\"x1\",\"source\":\"/forms/ns/p\",\"type\":\"io.formpipe.submission.v1\","
             "\"time\":\"2026-11-23T14:05:27.123Z\",\"data\":{\"t\":%s,\"n\":5}}", js);
    cJSON_free(js);
    cJSON_Delete(s);
    fp_event ev;
    cr_assert_eq(fp_event_parse(payload, strlen(payload), &ev, &err), 0, "%s", err.msg);
    fp_modevent_config cfg = {.threshold = 1};
    fp_modevent_scratch scratch = {0};
    fp_moderation m;
    cr_assert_eq(fp_modevent_check(w, &cfg, &ev, &scratch, &m), 0);
    char terms[256] = "";
    for (size_t i = 0; i < m.words.nterms; i++)
        snprintf(terms + strlen(terms), sizeof terms - strlen(terms), "%s%s", i ? " " : "", fp_words_term(w, m.words.terms[i]));
    cr_assert_eq(m.words.score, c->score, "'%s': score %ld, want %ld", c->text, m.words.score, c->score);
    cr_assert_str_eq(terms, c->terms, "'%s'", c->text);
    cr_assert_eq(m.flagged, c->score >= 1);
    cr_assert_eq(m.nfields, c->score ? 1u : 0u);
    fp_event_clear(&ev);
    fp_modevent_scratch_free(&scratch);
    fp_words_free(w);
}

struct list_case {
    const char *text;
    int code;
    const char *why;
};

static const struct list_case bad_lists[] = {
    {"ok\n!!!\n", FP_EINVAL, "line 2: the term has no letters"},
    {"ok\nbad\x01word\n", FP_EINVAL, "line 2: a term holds a control character"},
    {"ok\n\n# c\n"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
     FP_EINVAL, "line 4: a term is longer than 256 bytes"},
};

ParameterizedTestParameters(words, refused)
{
    return cr_make_param_array(struct list_case, bad_lists, sizeof bad_lists / sizeof bad_lists[0]);
}

ParameterizedTest(struct list_case *c, words, refused)
{
    fp_error err = {0};
    cr_assert_null(fp_words_parse(c->text, strlen(c->text), &err));
    cr_assert_eq(err.code, c->code);
    cr_assert(strstr(err.msg, c->why), "%s", err.msg);
}

Test(words, empty_list_matches_nothing)
{
    fp_words *w = fp_words_parse("# only a comment\n\n", 18, NULL);
    cr_assert(w);
    fp_words_result r = {0};
    cr_assert_eq(fp_words_match(w, "anything at all", 15, &r), 0);
    fp_words_free(w);
}

Test(words, five_thousand_terms_all_found_none_invented)
{
    static char text[5000 * 16];
    size_t n = 0;
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "w%c%c%c%c\n", 'a' + i % 26, 'a' + i / 26 % 26, 'a' + i / 676 % 26, 'q');
    fp_error err = {0};
    fp_words *w = fp_words_parse(text, n, &err);
    cr_assert(w, "%s", err.msg);
    cr_assert_eq(fp_words_count(w), 5000);
    fp_words_result r = {0};
    cr_assert_eq(fp_words_match(w, "wabaq wzzzq wabar", 17, &r), 1);   /* wabaq listed (i=26), wzzzq and wabar not */
    fp_words_free(w);
}

Test(modevent, encode_writes_the_moderated_type_and_replaces_moderation)
{
    const char *in = "{\"specversion\":\"1.0\",\"id\":\"x1\",\"source\":\"/forms/ns/p\",\"type\":\"io.formpipe.submission.v1\","
                     "\"time\":\"2026-11-23T14:05:27.123Z\",\"moderation\":{\"old\":1},\"data\":{\"c\":\"darn \\\"it\\\"\",\"d\":\"x\"}}";
    fp_words *w = fp_words_parse("darn\nx\n", 7, NULL);
    fp_event ev;
    fp_error err = {0};
    cr_assert_eq(fp_event_parse(in, strlen(in), &ev, &err), 0, "%s", err.msg);
    char *only[] = {"c"};
    fp_strlist fields = {only, 1};
    fp_modevent_config cfg = {.fields = &fields, .threshold = 2};
    fp_modevent_scratch scratch = {0};
    fp_moderation m;
    cr_assert_eq(fp_modevent_check(w, &cfg, &ev, &scratch, &m), 0);
    cr_assert_eq(m.words.score, 1);   /* "d" is not checked */
    cr_assert_eq(m.flagged, 0);       /* below the threshold */
    fp_buf out;
    fp_buf_init(&out, 1 << 20);
    cr_assert_eq(fp_modevent_encode(in, strlen(in), &m, w, &out), 0);
    cJSON *o = cJSON_Parse(out.data);
    cr_assert(o, "not JSON: %s", out.data);
    cr_assert_str_eq(cJSON_GetObjectItem(o, "type")->valuestring, "io.formpipe.submission.moderated.v1");
    cr_assert_str_eq(cJSON_GetObjectItem(o, "id")->valuestring, "x1");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "c")->valuestring, "darn \"it\"");
    cJSON *mod = cJSON_GetObjectItem(o, "moderation");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(mod, "flagged")));
    cr_assert_eq(cJSON_GetObjectItem(mod, "score")->valueint, 1);
    cr_assert_null(cJSON_GetObjectItem(mod, "old"));
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(mod, "fields"), 0)->valuestring, "c");
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(mod, "terms"), 0)->valuestring, "darn");
    /* the output is itself an event the runner and a second moderate task read */
    fp_event again;
    cr_assert_eq(fp_event_parse(out.data, out.len, &again, &err), 0, "%s", err.msg);
    cr_assert_str_eq(again.type, "io.formpipe.submission.moderated.v1");
    fp_event_clear(&again);
    cJSON_Delete(o);
    fp_buf_free(&out);
    fp_event_clear(&ev);
    fp_modevent_scratch_free(&scratch);
    fp_words_free(w);
}
