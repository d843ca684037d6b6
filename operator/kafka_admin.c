/* kafka_admin.c — synchronous wrappers around the asynchronous Admin API. */
#include "kafka_admin.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

/* One topic to create, waiting in k->pending for a CreateTopics request to carry it. */
typedef struct create_req {
    rd_kafka_NewTopic_t *nt;
    const char *topic;
    int done;                 /* the answer (or the request's failure) is in rc/err */
    int rc, existed;
    fp_error err;
    struct create_req *next;
} create_req;

struct op_kafka {
    rd_kafka_t *rk;
    rd_kafka_conf_t *conf;   /* a copy, for the short-lived handles that read group offsets */
    long long timeout_ms;
    /* CreateTopics is group-committed: the controller commits one request's topics in one
     * metadata write (about 1 ms a topic batched against tens of ms each alone), so the
     * topics asked for while a request is out go together in the next one. */
    pthread_mutex_t lock;
    pthread_cond_t answered;
    create_req *pending;     /* oldest first */
    int sending;             /* a caller has a request out and sends the next one */
};

op_kafka *op_kafka_new(const char *bootstrap, const char *properties_file, const fp_strlist *properties,
                       long long timeout_ms, fp_error *err)
{
    static const char *const defaults[] = {"allow.auto.create.topics", "false", NULL};
    rd_kafka_conf_t *conf = fp_kafka_conf_new(bootstrap, defaults, properties_file, properties, err);
    if (!conf)
        return NULL;
    op_kafka *k = calloc(1, sizeof *k);
    char why[512];
    if (k)
        k->conf = rd_kafka_conf_dup(conf);
    if (!k || !(k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why))) {
        if (k)
            fp_error_set(err, FP_EINVAL, "kafka admin client: %s", why);
        else
            fp_error_set(err, FP_ENOMEM, "out of memory");
        rd_kafka_conf_destroy(conf);
        if (k && k->conf)
            rd_kafka_conf_destroy(k->conf);
        free(k);
        return NULL;
    }
    k->timeout_ms = timeout_ms;
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->answered, NULL);
    return k;
}

void op_kafka_free(op_kafka *k)
{
    if (!k)
        return;
    rd_kafka_destroy(k->rk);
    rd_kafka_conf_destroy(k->conf);
    pthread_cond_destroy(&k->answered);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

int op_kafka_partitions(op_kafka *k, const char *topic, int *n, fp_error *err)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(k->rk, topic, NULL);
    if (!t)
        return fp_error_set(err, FP_ENOMEM, "out of memory");
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(k->rk, 0, t, &md, (int)k->timeout_ms);
    rd_kafka_topic_destroy(t);
    if (e)
        return fp_error_set(err, e == RD_KAFKA_RESP_ERR__TIMED_OUT ? FP_ETIMEOUT : FP_EIO,
                            "metadata for %s: %s", topic, rd_kafka_err2str(e));
    int rc = 0;
    if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        rc = fp_error_set(err, FP_ENOTFOUND, "topic %s does not exist", topic);
    else if (md->topics[0].err)
        rc = fp_error_set(err, FP_EIO, "topic %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
    else
        *n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Waits for the admin result on q. Returns the event (caller destroys) or NULL. */
static rd_kafka_event_t *wait_result(op_kafka *k, rd_kafka_queue_t *q, const char *what, fp_error *err)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)k->timeout_ms + 1000);
    if (!ev) {
        fp_error_set(err, FP_ETIMEOUT, "%s: no answer from Kafka", what);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        fp_error_set(err, FP_EIO, "%s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static rd_kafka_AdminOptions_t *options(op_kafka *k, rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(k->rk, op);
    char why[256];
    if (o)
        rd_kafka_AdminOptions_set_request_timeout(o, (int)k->timeout_ms, why, sizeof why);
    if (o && (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS ||
              op == RD_KAFKA_ADMIN_OP_DELETETOPICS))
        rd_kafka_AdminOptions_set_operation_timeout(o, (int)k->timeout_ms, why, sizeof why);
    return o;
}

/* The first topic result's error, mapping "already exists"/"unknown" to ok as asked. */
static int topic_result(const rd_kafka_topic_result_t **res, size_t n, const char *what,
                        rd_kafka_resp_err_t ok_err, fp_error *err)
{
    if (n < 1)
        return fp_error_set(err, FP_EIO, "%s: empty answer", what);
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[0]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == ok_err)
        return 0;
    const char *msg = rd_kafka_topic_result_error_string(res[0]);
    return fp_error_set(err, e == RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR ||
                                     e == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS ? FP_EINVAL : FP_EIO,
                        "%s: %s", what, msg ? msg : rd_kafka_err2str(e));
}

int op_kafka_create(op_kafka *k, const char *topic, int partitions, int replication, fp_error *err)
{
    return op_kafka_create_with(k, topic, partitions, replication, NULL, NULL, err);
}

/* Takes the pending requests off k->pending into batch (at most max, one per topic name:
 * CreateTopics refuses a name twice); the rest stay. Returns how many. Lock held. */
static size_t take_batch(op_kafka *k, create_req **batch, size_t max)
{
    size_t n = 0;
    create_req **link = &k->pending;
    while (*link && n < max) {
        create_req *r = *link;
        size_t i = 0;
        while (i < n && strcmp(batch[i]->topic, r->topic) != 0)
            i++;
        if (i < n) {
            link = &r->next;
            continue;
        }
        *link = r->next;
        batch[n++] = r;
    }
    return n;
}

/* Sends one CreateTopics for batch[0..n-1] and files each topic's answer in its request
 * (not marking it done). Lock not held. */
static void send_batch(op_kafka *k, create_req **batch, size_t n)
{
    rd_kafka_NewTopic_t *nts[OP_KAFKA_CREATE_BATCH];
    for (size_t i = 0; i < n; i++) {
        nts[i] = batch[i]->nt;
        batch[i]->rc = fp_error_set(&batch[i]->err, FP_EIO, "create topic %s: no answer for it", batch[i]->topic);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *o = options(k, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(k->rk, nts, n, o, q);
    fp_error err = {0};
    rd_kafka_event_t *ev = wait_result(k, q, "create topic", &err);
    if (!ev) {
        for (size_t i = 0; i < n; i++) {
            batch[i]->err = err;
            batch[i]->rc = err.code;
        }
    } else {
        size_t m = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &m);
        for (size_t j = 0; j < m; j++)
            for (size_t i = 0; i < n; i++)
                if (strcmp(rd_kafka_topic_result_name(res[j]), batch[i]->topic) == 0) {
                    batch[i]->rc = topic_result(&res[j], 1, "create topic", RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS,
                                                &batch[i]->err);
                    batch[i]->existed = rd_kafka_topic_result_error(res[j]) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
                }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
}

int op_kafka_create_with(op_kafka *k, const char *topic, int partitions, int replication, const op_topicconfig *config,
                         int *existed, fp_error *err)
{
    if (existed)
        *existed = 0;
    char why[256];
    create_req me = {.topic = topic};
    if (!(me.nt = rd_kafka_NewTopic_new(topic, partitions, replication, why, sizeof why)))
        return fp_error_set(err, FP_EINVAL, "create topic %s: %s", topic, why);
    for (size_t i = 0; config && i < config->n; i++)
        if (rd_kafka_NewTopic_set_config(me.nt, config->e[i].name, config->e[i].value)) {
            rd_kafka_NewTopic_destroy(me.nt);
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        }
    pthread_mutex_lock(&k->lock);
    create_req **tail = &k->pending;
    while (*tail)
        tail = &(*tail)->next;
    *tail = &me;
    while (!me.done) {
        if (k->sending) {
            pthread_cond_wait(&k->answered, &k->lock);
            continue;
        }
        /* nobody is sending: this caller carries what waits, its own topic among it unless
         * a request with the same name is ahead of it */
        create_req *batch[OP_KAFKA_CREATE_BATCH];
        size_t n = take_batch(k, batch, OP_KAFKA_CREATE_BATCH);
        k->sending = 1;
        pthread_mutex_unlock(&k->lock);
        send_batch(k, batch, n);
        pthread_mutex_lock(&k->lock);
        for (size_t i = 0; i < n; i++)
            batch[i]->done = 1;
        k->sending = 0;
        pthread_cond_broadcast(&k->answered);
    }
    pthread_mutex_unlock(&k->lock);
    rd_kafka_NewTopic_destroy(me.nt);
    if (me.rc < 0) {
        *err = me.err;
        return me.rc;
    }
    if (existed)
        *existed = me.existed;
    return 0;
}

int op_kafka_grow(op_kafka *k, const char *topic, int partitions, fp_error *err)
{
    char why[256];
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(topic, (size_t)partitions, why, sizeof why);
    if (!np)
        return fp_error_set(err, FP_EINVAL, "grow topic %s: %s", topic, why);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *o = options(k, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_CreatePartitions(k->rk, &np, 1, o, q);
    int rc = FP_EIO;
    rd_kafka_event_t *ev = wait_result(k, q, "grow topic", err);
    if (ev) {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
        rc = topic_result(res, n, "grow topic", RD_KAFKA_RESP_ERR_NO_ERROR, err);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewPartitions_destroy(np);
    return rc;
}

int op_kafka_delete(op_kafka *k, const char *topic, fp_error *err)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *o = options(k, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(k->rk, &dt, 1, o, q);
    int rc = FP_EIO;
    rd_kafka_event_t *ev = wait_result(k, q, "delete topic", err);
    if (ev) {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        rc = topic_result(res, n, "delete topic", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, err);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy(dt);
    return rc;
}

/* The one resource of a DescribeConfigs/AlterConfigs result, or NULL with *err. */
static const rd_kafka_ConfigResource_t *config_result(const rd_kafka_ConfigResource_t **res, size_t n, const char *what,
                                                      const char *topic, fp_error *err)
{
    if (n < 1) {
        fp_error_set(err, FP_EIO, "%s of %s: empty answer", what, topic);
        return NULL;
    }
    rd_kafka_resp_err_t e = rd_kafka_ConfigResource_error(res[0]);
    if (e) {
        const char *msg = rd_kafka_ConfigResource_error_string(res[0]);
        fp_error_set(err, e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? FP_ENOTFOUND
                          : e == RD_KAFKA_RESP_ERR_INVALID_CONFIG || e == RD_KAFKA_RESP_ERR_INVALID_REQUEST ? FP_EINVAL : FP_EIO,
                     "%s of %s: %s", what, topic, msg ? msg : rd_kafka_err2str(e));
        return NULL;
    }
    return res[0];
}

int op_kafka_topic_configs(op_kafka *k, const char *topic, op_topicconfig *out, fp_error *err)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *o = options(k, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(k->rk, &cr, 1, o, q);
    int rc = FP_EIO;
    rd_kafka_event_t *ev = wait_result(k, q, "describe topic configs", err);
    if (ev) {
        size_t n = 0, ne = 0;
        const rd_kafka_ConfigResource_t **res =
            rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
        const rd_kafka_ConfigResource_t *r = config_result(res, n, "describe configs", topic, err);
        const rd_kafka_ConfigEntry_t **entries = r ? rd_kafka_ConfigResource_configs(r, &ne) : NULL;
        rc = r ? 0 : err->code;
        for (size_t i = 0; rc == 0 && i < ne; i++) {
            const char *name = rd_kafka_ConfigEntry_name(entries[i]), *value = rd_kafka_ConfigEntry_value(entries[i]);
            if (name && value &&
                op_topicconfig_set(out, name, value,
                                   rd_kafka_ConfigEntry_source(entries[i]) == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG) < 0)
                rc = fp_error_set(err, FP_ENOMEM, "out of memory");
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
    return rc;
}

int op_kafka_alter_topic_configs(op_kafka *k, const char *topic, const op_topicconfig *all, fp_error *err)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    for (size_t i = 0; i < all->n; i++)
        if (rd_kafka_ConfigResource_set_config(cr, all->e[i].name, all->e[i].value)) {
            rd_kafka_ConfigResource_destroy(cr);
            return fp_error_set(err, FP_ENOMEM, "out of memory");
        }
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
    rd_kafka_AdminOptions_t *o = options(k, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(k->rk, &cr, 1, o, q);
    int rc = FP_EIO;
    rd_kafka_event_t *ev = wait_result(k, q, "alter topic configs", err);
    if (ev) {
        size_t n = 0;
        const rd_kafka_ConfigResource_t **res =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
        rc = config_result(res, n, "alter configs", topic, err) ? 0 : err->code;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
    return rc;
}

/* The group's committed offsets for topic's partitions (offset < 0: none), read by a
 * short-lived consumer handle of that group that never joins it. Not the Admin API's
 * ListConsumerGroupOffsets: librdkafka 2.0 (Debian 12) dereferences NULL in it when the
 * coordinator answers NOT_COORDINATOR, as a fresh cluster does for a new group. */
static int committed(op_kafka *k, const char *group, const char *topic, int partitions,
                     rd_kafka_topic_partition_list_t **out, fp_error *err)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(k->conf);
    if (rd_kafka_conf_set(conf, "group.id", group, why, sizeof why) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, sizeof why) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return fp_error_set(err, FP_EINVAL, "consumer group offsets: %s", why);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return fp_error_set(err, FP_EIO, "consumer group offsets: %s", why);
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int i = 0; i < partitions; i++)
        rd_kafka_topic_partition_list_add(l, topic, i);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, (int)k->timeout_ms);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);   /* it never joined */
    if (e) {
        rd_kafka_topic_partition_list_destroy(l);
        return fp_error_set(err, e == RD_KAFKA_RESP_ERR__TIMED_OUT ? FP_ETIMEOUT : FP_EIO,
                            "consumer group offsets: %s", rd_kafka_err2str(e));
    }
    *out = l;
    return 0;
}

/* Offsets of every partition of topic at the end (RD_KAFKA_OFFSET_END) or the start
 * (RD_KAFKA_OFFSET_BEGINNING) of the log: one ListOffsets request per leader, one
 * timeout for all (a query per partition could block a reconcile for partitions x
 * timeout on a broker that is still settling). */
static int log_offsets(op_kafka *k, const char *topic, int partitions, int64_t where,
                       rd_kafka_topic_partition_list_t **out, fp_error *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int i = 0; i < partitions; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = where;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(k->rk, l, (int)k->timeout_ms);
    for (int i = 0; !e && i < l->cnt; i++)
        e = l->elems[i].err;
    if (e) {
        rd_kafka_topic_partition_list_destroy(l);
        return fp_error_set(err, e == RD_KAFKA_RESP_ERR__TIMED_OUT ? FP_ETIMEOUT : FP_EIO,
                            "offsets of %s: %s", topic, rd_kafka_err2str(e));
    }
    *out = l;
    return 0;
}

int op_kafka_offsets(op_kafka *k, const char *group, const char *topic, int partitions, op_partition_offsets *out,
                     fp_error *err)
{
    int rc;
    rd_kafka_topic_partition_list_t *offsets = NULL, *end = NULL, *start = NULL;
    if ((rc = committed(k, group, topic, partitions, &offsets, err)) < 0 ||
        (rc = log_offsets(k, topic, partitions, RD_KAFKA_OFFSET_END, &end, err)) < 0 ||
        (rc = log_offsets(k, topic, partitions, RD_KAFKA_OFFSET_BEGINNING, &start, err)) < 0) {
        if (offsets)
            rd_kafka_topic_partition_list_destroy(offsets);
        if (end)
            rd_kafka_topic_partition_list_destroy(end);
        return rc;
    }
    for (int i = 0; i < partitions; i++) {
        const rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(offsets, topic, i);
        const rd_kafka_topic_partition_t *hi = rd_kafka_topic_partition_list_find(end, topic, i);
        const rd_kafka_topic_partition_t *lo = rd_kafka_topic_partition_list_find(start, topic, i);
        out[i].committed = tp && tp->offset >= 0 ? tp->offset : -1;
        out[i].start = lo ? lo->offset : 0;
        out[i].end = hi ? hi->offset : 0;
    }
    rd_kafka_topic_partition_list_destroy(offsets);
    rd_kafka_topic_partition_list_destroy(end);
    rd_kafka_topic_partition_list_destroy(start);
    return 0;
}

long long op_partition_lag(const op_partition_offsets *o)
{
    long long at = o->committed >= 0 ? o->committed : o->start;
    return o->end > at ? o->end - at : 0;
}

int op_kafka_log_end_total(op_kafka *k, const char *topic, int partitions, long long *total, fp_error *err)
{
    rd_kafka_topic_partition_list_t *end = NULL;
    int rc = log_offsets(k, topic, partitions, RD_KAFKA_OFFSET_END, &end, err);
    if (rc < 0)
        return rc;
    long long sum = 0;
    for (int i = 0; i < end->cnt; i++)
        sum += end->elems[i].offset > 0 ? end->elems[i].offset : 0;
    rd_kafka_topic_partition_list_destroy(end);
    *total = sum;
    return 0;
}
