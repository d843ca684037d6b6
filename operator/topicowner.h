/* topicowner.h — may this FormPipeline change its topic? The operator creates, grows,
 * configures and may delete topics with its own Kafka credentials, so a pipeline may
 * only do that to a topic it created itself (#16): a custom spec.kafka.topic naming a
 * topic that already exists (another pipeline's, or one a team made by hand) is used as
 * it is. The record is status.topicOwned, written by the operator before it creates the
 * topic (a claim), so a crash between the two never loses it; a claim that loses the
 * race to another creator is withdrawn. Pure: the caller reads and writes. */
#ifndef OP_TOPICOWNER_H
#define OP_TOPICOWNER_H

#include <cjson/cJSON.h>

typedef enum {
    OP_TOPIC_OWNED,        /* created by this object: create, grow, configure, delete */
    OP_TOPIC_NOT_OWNED,    /* someone else's: use it as it is */
    OP_TOPIC_CLAIM,        /* missing and never claimed: record topicOwned true, then create */
    OP_TOPIC_RECORD_OWNED, /* reconciled by a version before the record: record it as ours */
    OP_TOPIC_RECORD_NOT_OWNED, /* exists, never ours: record topicOwned false */
} op_topic_owner;

/* What to do about the topic, from the pipeline's current status (may be NULL) and
 * whether the topic exists now. */
op_topic_owner op_topic_ownership(const cJSON *status, const char *topic, int exists);

/* 1 when the pipeline may change the topic (OWNED, CLAIM, RECORD_OWNED), else 0. */
int op_topic_may_change(op_topic_owner o);

/* The status members that record o ({"topicOwned":...}, for a merge patch of
 * /status), or NULL when o needs no write (OWNED, NOT_OWNED) or on ENOMEM. Owned by the
 * caller (cJSON_Delete). */
cJSON *op_topic_owner_record(op_topic_owner o);

#endif
