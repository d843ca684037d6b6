/* formpipe-dlq: read, inspect and re-drive a pipeline's dead letters.
 *   formpipe-dlq list    --topic T [--partition P] [--max N]
 *   formpipe-dlq show    --topic T --offset [P:]O [--partition P]
 *   formpipe-dlq redrive --topic T --to SOURCE_TOPIC [--reason CODE] [--offset [P:]O ...] [--dry-run]
 * Exit status 0; 1 with one line on stderr when Kafka or a topic fails; 2 for a bad
 * command line. See docs/dlq.md. */
#include "config.h"
#include "deadletter.h"
#include "dlq.h"
#include "event.h"
#include "log.h"
#include "rfc3339.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *kafka_bootstrap, *kafka_config, *topic, *to, *reason;
static fp_strlist kafka_properties, offsets;
static long long max_letters, partition, timeout_ms;
static int dry_run;

static const fp_option options[] = {
    {"kafka-bootstrap", FP_OPT_STRING, NULL, "Kafka bootstrap servers host:port,...", FP_OPT_REQUIRED, 0, 0, &kafka_bootstrap},
    {"kafka-config", FP_OPT_STRING, "", "librdkafka properties file (security.protocol, sasl.*, ssl.*)", 0, 0, 0, &kafka_config},
    {"kafka-property", FP_OPT_LIST, NULL, "one librdkafka property key=value", 0, 0, 0, &kafka_properties},
    {"topic", FP_OPT_STRING, NULL, "the dead-letter topic (<topic>.dlq)", FP_OPT_REQUIRED, 0, 0, &topic},
    {"partition", FP_OPT_INT, "-1", "only this partition of the dead-letter topic (-1: all; show: 0)", 0, -1, 1000000, &partition},
    {"offset", FP_OPT_LIST, NULL, "a dead letter: OFFSET or PARTITION:OFFSET (show: exactly one; redrive: repeatable)", 0, 0, 0, &offsets},
    {"max", FP_OPT_INT, "1000", "most dead letters read (list, redrive)", 0, 1, 1000000, &max_letters},
    {"to", FP_OPT_STRING, "", "redrive: the topic to re-publish to (the pipeline's topic)", 0, 0, 0, &to},
    {"reason", FP_OPT_STRING, "", "redrive: only dead letters with this reason code", 0, 0, 0, &reason},
    {"dry-run", FP_OPT_BOOL, "false", "redrive: print what would be re-published, publish nothing", 0, 0, 0, &dry_run},
    {"timeout", FP_OPT_DURATION, "10s", "bound on each Kafka request and on each wait for a message", 0, 100, 600000, &timeout_ms},
};
#define NOPTIONS (sizeof options / sizeof options[0])

#define SUMMARY "Lists, shows and re-drives dead letters. Commands: list, show, redrive (formpipe-dlq COMMAND --help)."

/* A dead letter chosen by --offset: its partition (-1: any) and offset. */
typedef struct pick {
    int partition;
    long long offset;
} pick;

/* What the commands share while reading. */
typedef struct run {
    fp_dlq *dlq;
    pick *picks;
    size_t npicks;
    int has_reason;
    fp_deadletter_reason reason;
    long long matched;
    fp_error err;
} run;

/* Parses "O" or "P:O". */
static int parse_pick(const char *s, pick *p, fp_error *err)
{
    char *end;
    const char *colon = strchr(s, ':');
    errno = 0;
    p->partition = -1;
    if (colon) {
        long v = strtol(s, &end, 10);
        if (end != colon || v < 0 || v > 1000000 || errno)
            return fp_error_set(err, FP_EINVAL, "--offset: '%.64s' is not OFFSET or PARTITION:OFFSET", s);
        p->partition = (int)v;
        s = colon + 1;
    }
    p->offset = strtoll(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end || errno)
        return fp_error_set(err, FP_EINVAL, "--offset: '%.64s' is not OFFSET or PARTITION:OFFSET", s);
    return 0;
}

/* The id of a CloudEvent payload, or "-". */
static void event_id(const rd_kafka_message_t *m, char *out, size_t outsz)
{
    fp_event ev;
    fp_error err = {0};
    if (fp_event_parse(m->payload, m->len, &ev, &err) == 0)
        snprintf(out, outsz, "%s", ev.id);
    else
        snprintf(out, outsz, "-");
    fp_event_clear(&ev);
}

/* Writes n bytes with control characters escaped (\xNN), newlines kept when keep_nl. */
static void put_safe(const char *s, size_t n, int keep_nl)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && !(keep_nl && (ch == '\n' || ch == '\t'))) || ch == 0x7f)
            printf("\\x%02x", ch);
        else
            putchar(ch);
    }
}

/* One line per dead letter: where, reason, id, when, source, message. */
static int list_one(void *ctx, const rd_kafka_message_t *m)
{
    (void)ctx;
    rd_kafka_headers_t *h = NULL;
    fp_deadletter d;
    fp_error err = {0};
    char id[FP_EVENT_MAX_ID + 1], when[FP_RFC3339_MAX] = "-";
    rd_kafka_message_headers(m, &h);
    int bad = fp_deadletter_read(h, &d, &err);
    event_id(m, id, sizeof id);
    if (d.time_ms >= 0)
        fp_rfc3339_format_ms(d.time_ms, when, sizeof when);
    printf("%d:%lld\t%s\t%s\t%s\t", (int)m->partition, (long long)m->offset,
           bad && d.reason == FP_DEADLETTER_REASONS ? "-" : fp_deadletter_reason_name(d.reason), id, when);
    if (d.source_topic[0])
        printf("%s/%d@%lld\t", d.source_topic, d.source_partition, d.source_offset);
    else
        printf("-\t");
    const char *msg = bad ? err.msg : d.message;
    put_safe(msg, strlen(msg), 0);
    putchar('\n');
    return 0;
}

/* Headers and payload of one dead letter. */
static int show_one(void *ctx, const rd_kafka_message_t *m)
{
    run *r = ctx;
    rd_kafka_headers_t *h = NULL;
    const char *name;
    const void *val;
    size_t len;
    r->matched++;
    printf("topic: %s\npartition: %d\noffset: %lld\nkey: ", rd_kafka_topic_name(m->rkt), (int)m->partition,
           (long long)m->offset);
    put_safe(m->key ? m->key : "", m->key_len, 0);
    printf("\n");
    if (rd_kafka_message_headers(m, &h) == 0)
        for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &len) == 0; i++) {
            printf("header %s: ", name);
            put_safe(val ? val : "", val ? len : 0, 0);
            printf("\n");
        }
    printf("payload (%zu bytes):\n", m->len);
    put_safe(m->payload ? m->payload : "", m->len, 1);
    printf("\n");
    return 0;
}

/* 1 when m is one of the dead letters --offset and --reason chose. */
static int chosen(const run *r, const rd_kafka_message_t *m)
{
    if (r->has_reason) {
        rd_kafka_headers_t *h = NULL;
        fp_deadletter d;
        rd_kafka_message_headers(m, &h);
        fp_deadletter_read(h, &d, NULL);
        if (d.reason != r->reason)
            return 0;
    }
    if (!r->npicks)
        return 1;
    for (size_t i = 0; i < r->npicks; i++)
        if (r->picks[i].offset == m->offset && (r->picks[i].partition < 0 || r->picks[i].partition == m->partition))
            return 1;
    return 0;
}

/* Re-publishes a chosen dead letter (or says it would). */
static int redrive_one(void *ctx, const rd_kafka_message_t *m)
{
    run *r = ctx;
    char id[FP_EVENT_MAX_ID + 1];
    if (!chosen(r, m))
        return 0;
    if (!dry_run && fp_dlq_republish(r->dlq, to, m, &r->err))
        return r->err.code;
    r->matched++;
    event_id(m, id, sizeof id);
    printf("%s %d:%lld -> %s (id %s)\n", dry_run ? "would redrive" : "redriven", (int)m->partition,
           (long long)m->offset, to, id);
    return 0;
}

/* Checks the options a command needs; the bad one is named in *err. */
static int check_command(const char *cmd, run *r, fp_error *err)
{
    for (size_t i = 0; i < offsets.n; i++)
        if (parse_pick(offsets.items[i], &r->picks[i], err))
            return FP_EINVAL;
    r->npicks = offsets.n;
    if (strcmp(cmd, "show") == 0 && offsets.n != 1)
        return fp_error_set(err, FP_EINVAL, "give exactly one --offset");
    if (strcmp(cmd, "redrive") == 0 && !*to)
        return fp_error_set(err, FP_EINVAL, "--to is required (the pipeline's topic)");
    if (strcmp(cmd, "redrive") != 0 && (*to || *reason || dry_run))
        return fp_error_set(err, FP_EINVAL, "--to, --reason and --dry-run belong to redrive");
    if (strcmp(cmd, "list") == 0 && offsets.n)
        return fp_error_set(err, FP_EINVAL, "--offset belongs to show and redrive");
    if (*reason && fp_deadletter_reason_parse(reason, &r->reason, err))
        return FP_EINVAL;
    r->has_reason = *reason != 0;
    return 0;
}

/* Runs one command once the options are read. */
static int execute(const char *cmd, run *r, fp_error *err)
{
    if (strcmp(cmd, "list") == 0)
        return fp_dlq_read(r->dlq, topic, (int)partition, -1, max_letters, list_one, r, err);
    if (strcmp(cmd, "show") == 0) {
        int p = r->picks[0].partition >= 0 ? r->picks[0].partition : partition >= 0 ? (int)partition : 0;
        return fp_dlq_read(r->dlq, topic, p, r->picks[0].offset, 1, show_one, r, err);
    }
    if (fp_dlq_topic_exists(r->dlq, to, err))
        return err->code;
    int rc = fp_dlq_read(r->dlq, topic, (int)partition, -1, max_letters, redrive_one, r, err);
    if (rc == r->err.code && rc)
        *err = r->err;
    if (!rc && !dry_run)
        rc = fp_dlq_flush(r->dlq, err);
    if (!rc)
        printf("%s%lld dead letter%s %s to %s\n", dry_run ? "dry run: " : "", r->matched, r->matched == 1 ? "" : "s",
               dry_run ? "would be re-published" : "re-published", to);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const commands[] = {"list", "show", "redrive"};
    const char *cmd = argc > 1 ? argv[1] : "";
    int known = 0, status;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        known |= strcmp(cmd, commands[i]) == 0;
    if (!known) {
        if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
            fp_config_help(stdout, "formpipe-dlq COMMAND", SUMMARY, options, NOPTIONS);
            return 0;
        }
        fprintf(stderr, "formpipe-dlq: %s%s%s: the command is list, show or redrive\n", *cmd ? "unknown command '" : "no command",
                cmd, *cmd ? "'" : "");
        return 2;
    }
    char prog[64];
    snprintf(prog, sizeof prog, "formpipe-dlq %s", cmd);
    argv[1] = prog;   /* the parser takes argv[0] as the program */
    if (fp_config_load(prog, SUMMARY, options, NOPTIONS, argc - 1, argv + 1, &status))
        return status;
    fp_error err = {0};
    int rc = 2;
    run r = {0};
    fp_log_init("dlq", FP_LOG_ERROR);
    if (!(r.picks = calloc(offsets.n + 1, sizeof *r.picks))) {
        fprintf(stderr, "%s: out of memory\n", prog);
        goto out;
    }
    if (check_command(cmd, &r, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        goto out;
    }
    fp_dlq_config cfg = {.kafka_bootstrap = kafka_bootstrap, .kafka_config_file = kafka_config,
                         .kafka_properties = &kafka_properties, .timeout_ms = (long)timeout_ms};
    rc = 1;
    if (!(r.dlq = fp_dlq_open(&cfg, &err)) || execute(cmd, &r, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        goto out;
    }
    rc = 0;
out:
    fp_dlq_close(r.dlq);
    free(r.picks);
    fp_config_free(options, NOPTIONS);
    return rc;
}
