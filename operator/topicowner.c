/* topicowner.c — see topicowner.h. */
#include "topicowner.h"

#include <string.h>

op_topic_owner op_topic_ownership(const cJSON *status, const char *topic, int exists)
{
    const cJSON *owned = cJSON_GetObjectItemCaseSensitive(status, "topicOwned");
    if (cJSON_IsBool(owned))
        return cJSON_IsTrue(owned) ? OP_TOPIC_OWNED : OP_TOPIC_NOT_OWNED;
    /* No record. An earlier version that reconciled this pipeline wrote status.topic:
     * it created the topic or adopted it, as every version before the record did. */
    const char *seen = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "topic"));
    if (seen && strcmp(seen, topic) == 0)
        return OP_TOPIC_RECORD_OWNED;
    return exists ? OP_TOPIC_RECORD_NOT_OWNED : OP_TOPIC_CLAIM;
}

int op_topic_may_change(op_topic_owner o)
{
    return o == OP_TOPIC_OWNED || o == OP_TOPIC_CLAIM || o == OP_TOPIC_RECORD_OWNED;
}

cJSON *op_topic_owner_record(op_topic_owner o)
{
    if (o == OP_TOPIC_OWNED || o == OP_TOPIC_NOT_OWNED)
        return NULL;
    cJSON *status = cJSON_CreateObject();
    if (!status || !cJSON_AddBoolToObject(status, "topicOwned", op_topic_may_change(o))) {
        cJSON_Delete(status);
        return NULL;
    }
    return status;
}
