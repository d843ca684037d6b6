/* kafka.c — see kafka.h. */
#include "kafka.h"
#include "log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fp_kafka_key_is_secret(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.oauthbearer.config") ||
           strstr(key, "ssl.key.pem") || strstr(key, "ssl_key");
}

int fp_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, fp_error *err)
{
    char why[512];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        /* The value is never echoed (#16): it may be a credential under a key that does not
         * look like one; librdkafka's reason is shown only when it does not quote it. */
        if (fp_kafka_key_is_secret(key) || (value && *value && strstr(why, value)))
            return fp_error_set(err, FP_EINVAL, "kafka property %s: rejected (value hidden)", key);
        return fp_error_set(err, FP_EINVAL, "kafka property %s: %s (value hidden)", key, why);
    }
    return 0;
}

/* Splits "key=value" (spaces around both trimmed) and sets it. */
static int set_pair(rd_kafka_conf_t *conf, char *line, const char *where, fp_error *err)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return fp_error_set(err, FP_EINVAL, "%s: expected key=value", where);
    *eq = '\0';
    char *key = line, *val = eq + 1;
    while (isspace((unsigned char)*key))
        key++;
    for (char *e = key + strlen(key); e > key && isspace((unsigned char)e[-1]);)
        *--e = '\0';
    while (isspace((unsigned char)*val))
        val++;
    for (char *e = val + strlen(val); e > val && isspace((unsigned char)e[-1]);)
        *--e = '\0';
    if (!*key)
        return fp_error_set(err, FP_EINVAL, "%s: empty key", where);
    int rc = fp_kafka_conf_set(conf, key, val, err);
    if (rc && err) {   /* say where the bad line came from */
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        fp_error_set(err, rc, "%s: %s", where, msg);
    }
    return rc;
}

static int load_file(rd_kafka_conf_t *conf, const char *path, fp_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fp_error_set(err, FP_EIO, "cannot open kafka properties file %s", path);
    char line[4096], where[512];
    int lineno = 0, rc = 0;
    long total = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        total += (long)strlen(line);
        if (total > FP_KAFKA_MAX_PROPERTIES_FILE) {
            rc = fp_error_set(err, FP_ELIMIT, "%s is larger than %d bytes", path, FP_KAFKA_MAX_PROPERTIES_FILE);
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == '#' || *p == '!')
            continue;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        rc = set_pair(conf, p, where, err);
    }
    fclose(f);
    return rc;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    fp_log_level l = level <= 3 ? FP_LOG_ERROR : level <= 5 ? FP_LOG_WARN : level == 6 ? FP_LOG_INFO : FP_LOG_DEBUG;
    fp_log_write(l, "librdkafka", (const fp_log_field[]){FP_LSTR("facility", fac), FP_LSTR("detail", buf), FP_LEND});
}

rd_kafka_conf_t *fp_kafka_conf_new(const char *bootstrap, const char *const *defaults,
                                   const char *properties_file, const fp_strlist *properties,
                                   fp_error *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = 0;
    if (!conf) {
        fp_error_set(err, FP_ENOMEM, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (bootstrap && *bootstrap)
        rc = fp_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err);
    for (size_t i = 0; !rc && defaults && defaults[i]; i += 2)
        rc = fp_kafka_conf_set(conf, defaults[i], defaults[i + 1], err);
    if (!rc && properties_file && *properties_file)
        rc = load_file(conf, properties_file, err);
    for (size_t i = 0; !rc && properties && i < properties->n; i++) {
        char *copy = strdup(properties->items[i]);
        if (!copy) {
            rc = fp_error_set(err, FP_ENOMEM, "out of memory");
            break;
        }
        rc = set_pair(conf, copy, "--kafka-property", err);
        free(copy);
    }
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int fp_kafka_committed(const rd_kafka_conf_t *base, const char *group, rd_kafka_topic_partition_list_t *parts,
                       int timeout_ms, fp_error *err)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(base);
    if (rd_kafka_conf_set(conf, "group.id", group, why, sizeof why) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", why, sizeof why) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return fp_error_set(err, FP_EINVAL, "committed offsets of %s: %s", group, why);
    }
    rd_kafka_conf_set_rebalance_cb(conf, NULL);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return fp_error_set(err, FP_EIO, "committed offsets of %s: %s", group, why);
    }
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, timeout_ms);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);   /* it never joined */
    for (int i = 0; !e && i < parts->cnt; i++)
        e = parts->elems[i].err;
    if (e)
        return fp_error_set(err, e == RD_KAFKA_RESP_ERR__TIMED_OUT ? FP_ETIMEOUT : FP_EIO, "committed offsets of %s: %s",
                            group, rd_kafka_err2str(e));
    return 0;
}
