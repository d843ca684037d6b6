/* Unit tests for operator/topicowner: who may create, grow, configure and delete a
 * FormPipeline's topic, from its status record and whether the topic exists. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "topicowner.h"

struct owner_case {
    const char *what;
    const char *status;    /* JSON, or NULL for no status yet */
    int exists;
    op_topic_owner want;
    int may_change;
    const char *patch;     /* the status record to write, or NULL */
};

static struct owner_case cases[] = {
    {"a new pipeline whose topic is missing claims it before creating it", NULL, 0, OP_TOPIC_CLAIM, 1,
     "{\"topicOwned\":true}"},
    {"a new pipeline naming an existing topic never changes it", NULL, 1, OP_TOPIC_RECORD_NOT_OWNED, 0,
     "{\"topicOwned\":false}"},
    {"the record says ours", "{\"topic\":\"t\",\"topicOwned\":true}", 1, OP_TOPIC_OWNED, 1, NULL},
    {"ours and deleted by hand: created again", "{\"topic\":\"t\",\"topicOwned\":true}", 0, OP_TOPIC_OWNED, 1, NULL},
    {"the record says someone else's", "{\"topic\":\"t\",\"topicOwned\":false}", 1, OP_TOPIC_NOT_OWNED, 0, NULL},
    {"someone else's and gone: still not ours to create", "{\"topicOwned\":false}", 0, OP_TOPIC_NOT_OWNED, 0, NULL},
    {"reconciled by a version before the record: ours", "{\"topic\":\"t\"}", 1, OP_TOPIC_RECORD_OWNED, 1,
     "{\"topicOwned\":true}"},
    {"an earlier status about another topic is no claim", "{\"topic\":\"other\"}", 1, OP_TOPIC_RECORD_NOT_OWNED, 0,
     "{\"topicOwned\":false}"},
    {"a status without a record, topic missing: claim", "{\"conditions\":[]}", 0, OP_TOPIC_CLAIM, 1,
     "{\"topicOwned\":true}"},
};

ParameterizedTestParameters(topicowner, decides)
{
    return cr_make_param_array(struct owner_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct owner_case *c, topicowner, decides)
{
    cJSON *status = c->status ? cJSON_Parse(c->status) : NULL;
    op_topic_owner o = op_topic_ownership(status, "t", c->exists);
    cr_assert_eq(o, c->want, "%s: got %d", c->what, o);
    cr_assert_eq(op_topic_may_change(o), c->may_change, "%s", c->what);
    cJSON *patch = op_topic_owner_record(o);
    char *text = patch ? cJSON_PrintUnformatted(patch) : NULL;
    if (c->patch)
        cr_assert(text && strcmp(text, c->patch) == 0, "%s: patch %s", c->what, text ? text : "(none)");
    else
        cr_assert_null(text, "%s: no write, got %s", c->what, text);
    cJSON_free(text);
    cJSON_Delete(patch);
    cJSON_Delete(status);
}
