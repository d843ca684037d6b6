/* formpipe-operator against the real kube-apiserver + controller-manager and Kafka of
 * scripts/testenv, driven with kubectl like a user would. Each test has its own
 * namespace and its own operator process (and Lease). There is no kubelet: pods are
 * marked Running/Ready through the pods/status API where a test needs readiness. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis.h"
#include "testkit.h"

#define CRD FP_SOURCE_DIR "/crds/formpipelines.formpipe.io.yaml -f " FP_SOURCE_DIR "/crds/formtasks.formpipe.io.yaml"

static char ns[64], lease[64];

static void setup(void)
{
    tk_unique(ns, sizeof ns, "fp-op");
    tk_unique(lease, sizeof lease, "lease");
    char *out;
    /* Pod Security "restricted": the pods the operator's workloads create must pass it */
    cr_assert_eq(tk_sh(&out, "kubectl apply --server-side --force-conflicts -f %s && kubectl wait --for condition=Established crd/formpipelines.formpipe.io crd/formtasks.formpipe.io --timeout 30s && kubectl create namespace %s && "
                       "kubectl label namespace %s pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest",
                       CRD, ns, ns), 0, "%s", out);
    free(out);
}

static void teardown(void)
{
    tk_sh(NULL, "kubectl delete namespace %s --wait=false", ns);
}

/* The operators' --default-mode: most tests here are about a pipeline's own workloads
 * and name no mode; the test of the default itself sets "Shared", the product default. */
static const char *default_mode = "Dedicated";

/* Starts an operator; extra: more flags (NULL-terminated). Returns its admin port. */
static int start_operator(tk_proc *p, const char *kubeconfig, const char *const *extra)
{
    const char *argv[48] = {
        "--kafka-bootstrap", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"),
        "--redis-sentinels", tk_env("FORMPIPE_REDIS_SENTINELS"),
        "--redis-master", tk_env("FORMPIPE_REDIS_MASTER"),
        "--google-credentials-secret", "google-sa",
        "--replication-factor", "1", "--admin-port", "0", "--admin-bind", "127.0.0.1",
        "--lease-namespace", "default", "--lease-name", lease, "--kafka-timeout", "5s",
        "--default-mode", default_mode,
    };
    int n = 22;
    if (kubeconfig) {
        argv[n++] = "--kubeconfig";
        argv[n++] = kubeconfig;
    }
    for (; extra && *extra && n < 46; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    tk_start(p, "formpipe-operator", argv);
    for (int i = 0; i < 100; i++) {   /* the port is in the first log line */
        char line[4096] = "";
        FILE *f = fopen(p->log, "r");
        size_t n = f ? fread(line, 1, sizeof line - 1, f) : 0;
        if (f)
            fclose(f);
        line[n] = 0;
        char *at = strstr(line, "\"admin_port\":");
        int port = at ? atoi(at + 13) : 0;
        usleep(50000);
        if (port <= 0)
            continue;
        for (int j = 0; j < 200; j++) {   /* ready: informers listed (or a waiting standby) */
            char *body = NULL;
            long st = tk_http_get(port, "/readyz", &body);
            free(body);
            if (st == 200)
                return port;
            usleep(50000);
        }
        break;
    }
    tk_show_log(p);
    cr_assert_fail("the operator did not start");
    return 0;
}

static void apply_pipeline(const char *name, int partitions, const char *extra_spec)
{
    char *out;
    int rc = tk_sh(&out, "kubectl apply -n %s -f - <<'YAML'\n"
                   "apiVersion: formpipe.io/v1alpha1\n"
                   "kind: FormPipeline\n"
                   "metadata: {name: %s}\n"
                   "spec:\n"
                   "  form:\n"
                   "    title: Student data\n"
                   "    fields:\n"
                   "    - {name: name, type: string, required: true, minLength: 5, maxLength: 100}\n"
                   "    - {name: roll, type: string, required: true, pattern: \"^[0-9]{1,10}$\"}\n"
                   "    - {name: cgpa, type: number, minimum: 0, maximum: 10}\n"
                   "    partitionKey: roll\n"
                   "  kafka: {partitions: %d}\n"
                   "  ingest: {replicas: 2, host: forms.example.com}\n"
                   "  sheets: {spreadsheetId: s-%s-%s}\n"   /* a tab has one writer, cluster-wide */
                   "%s\n"
                   "YAML",
                   ns, name, partitions, ns, name, extra_spec ? extra_spec : "");
    cr_assert_eq(rc, 0, "kubectl apply: %s", out);
    free(out);
}

/* kubectl apply of FormTask name of pipeline with the kind's spec lines (indented by two). */
static void apply_task(const char *name, const char *pipeline, const char *kind_spec)
{
    char *out;
    int rc = tk_sh(&out, "kubectl apply -n %s -f - <<'YAML'\n"
                   "apiVersion: formpipe.io/v1alpha1\nkind: FormTask\nmetadata: {name: %s}\n"
                   "spec:\n  pipeline: %s\n%s\nYAML", ns, name, pipeline, kind_spec);
    cr_assert_eq(rc, 0, "kubectl apply: %s", out);
    free(out);
}

static char *get(const char *what, const char *jsonpath)
{
    char *out;
    tk_sh(&out, "kubectl get -n %s %s -o jsonpath='%s'", ns, what, jsonpath);
    return out;
}

/* Partitions of topic per Kafka's metadata. */
static int topic_partitions(const char *topic)
{
    rd_kafka_t *rk = tk_producer();
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, t, &md, 5000) == 0) {
        n = md->topics[0].err ? 0 : md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    return n;
}

/* Puts n messages keyed "<i>" on topic. */
static void produce_n(const char *topic, int n)
{
    rd_kafka_t *p = tk_producer();
    for (int i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        tk_produce(p, topic, key, "{}", 2);
    }
    tk_flush(p);
    rd_kafka_destroy(p);
}

/* Marks every pod of the pipeline Running and Ready (what a kubelet would report). */
static void mark_pods_ready(const char *selector)
{
    char *out;
    int rc = tk_sh(&out, "for p in $(kubectl get pods -n %s -l '%s' -o name); do "
                   "kubectl patch -n %s $p --subresource=status --type=merge -p "
                   "'{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}' >/dev/null || exit 1; done",
                   ns, selector, ns);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
}

/* The cached pipeline's Ingress backend and status.mode, "<service> <mode>". */
#define ROUTE_AND_MODE "kubectl get -n %s ingress %s-ingest -o jsonpath='{.spec.rules[0].http.paths[0].backend.service.name} ' && kubectl get -n %s fp %s -o jsonpath='{.status.mode}'"

/* ingest and consumer pods (a flush Job's pod may come and go) */
#define LONG_RUNNING "app.kubernetes.io/component in (ingest,consumer)"

static const char *condition(const char *type)
{
    static char path[128];
    snprintf(path, sizeof path, "{.status.conditions[?(@.type==\"%s\")].status}", type);
    return path;
}

Test(operator, apply_creates_every_child_in_2s_and_status_follows_readiness, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_operator(&op, NULL, NULL);
    /* warm up: a fresh apiserver builds its apply machinery per kind, a fresh Kafka its
     * first topic; the 2 s bound is about a running system */
    apply_pipeline("warm-up", 1, NULL);
    tk_sh_until(30, "warm-up-flush", "kubectl get -n %s cronjob warm-up-flush -o jsonpath='{.metadata.name}'", ns);
    double t0 = tk_now();
    apply_pipeline("student-data", 3, NULL);
    char *uid = get("formpipeline student-data", "{.metadata.uid}");
    const char *children[] = {"configmap/student-data-form", "deployment/student-data-ingest", "service/student-data-ingest",
                              "ingress/student-data-ingest", "deployment/student-data-consumer", "cronjob/student-data-flush"};
    /* one kubectl call per poll for all six (the kit trims the trailing space), so the
     * bound measures the operator, not twelve kubectl processes on a loaded machine */
    char want[512] = "";
    for (size_t i = 0; i < 6; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? " " : "", uid);
    double took = tk_now() - t0;
    took += tk_sh_until(2.0, want,
                        "kubectl get -n %s %s %s %s %s %s %s -o jsonpath='{range .items[*]}{.metadata.ownerReferences[?(@.controller==true)].uid}{\" \"}{end}' 2>&1",
                        ns, children[0], children[1], children[2], children[3], children[4], children[5]);
    cr_log_info("all six children within %.2f s", took);
    cr_assert_leq(took, 2.5, "children took %.2f s (2 s plus the checker's own kubectl calls)", took);
    for (size_t i = 0; i < 6; i++) {
        char *labels = get(children[i], "{.metadata.labels.app\\.kubernetes\\.io/managed-by} {.metadata.labels.app\\.kubernetes\\.io/instance} {.metadata.labels.app\\.kubernetes\\.io/part-of}");
        cr_assert_str_eq(labels, "formpipe-operator student-data formpipe", "%s", children[i]);
        free(labels);
    }

    char topic[160];
    snprintf(topic, sizeof topic, "forms.%s.student-data", ns);
    cr_assert_eq(topic_partitions(topic), 3);
    char *replicas = get("deployment student-data-consumer", "{.spec.replicas}");
    cr_assert_str_eq(replicas, "3", "one consumer per partition");
    free(replicas);
    char *form = get("configmap student-data-form", "{.data.form\\.json}");
    cr_assert_not_null(strstr(form, "\"namespace\":\"fp-op"), "compiled form: %s", form);
    free(form);

    tk_sh_until(10, "False", "kubectl get -n %s fp student-data -o jsonpath='%s'", ns, condition("IngestAvailable"));
    tk_sh_until(10, "True", "kubectl get -n %s fp student-data -o jsonpath='%s'", ns, condition("TopicReady"));
    tk_sh_until(10, "True", "kubectl get -n %s fp student-data -o jsonpath='%s'", ns, condition("FlushScheduled"));
    tk_sh_until(30, "5", "kubectl get pods -n %s -l 'app.kubernetes.io/instance=student-data,%s' --no-headers | wc -l", ns, LONG_RUNNING);
    mark_pods_ready("app.kubernetes.io/instance=student-data," LONG_RUNNING);
    tk_sh_until(30, "True", "kubectl get -n %s fp student-data -o jsonpath='%s'", ns, condition("IngestAvailable"));
    tk_sh_until(30, "True", "kubectl get -n %s fp student-data -o jsonpath='%s'", ns, condition("ConsumersAvailable"));
    tk_sh_until(10, "True", "kubectl get -n %s fp student-data -o jsonpath='%s'", ns, condition("Ready"));
    char *st = get("fp student-data", "{.status.observedGeneration} {.status.partitions} {.status.ingest.readyReplicas} {.status.consumer.readyReplicas} {.status.ingest.url}");
    cr_assert_str_eq(st, "1 3 2 3 http://forms.example.com/forms/student-data");
    free(st);
    char *events = NULL;
    tk_sh(&events, "kubectl get events -n %s --field-selector involvedObject.kind=FormPipeline -o jsonpath='{.items[*].reason}'", ns);
    cr_assert_not_null(strstr(events, "TopicCreated"), "events: %s", events);
    free(events);
    free(uid);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(operator, partitions_grow_topic_and_consumers_and_drift_is_reverted, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_operator(&op, NULL, NULL);
    apply_pipeline("grow", 3, NULL);
    tk_sh_until(10, "3", "kubectl get -n %s deployment grow-consumer -o jsonpath='{.spec.replicas}'", ns);
    apply_pipeline("grow", 6, NULL);
    tk_sh_until(10, "6", "kubectl get -n %s deployment grow-consumer -o jsonpath='{.spec.replicas}'", ns);
    char topic[160];
    snprintf(topic, sizeof topic, "forms.%s.grow", ns);
    cr_assert_eq(topic_partitions(topic), 6);
    tk_sh_until(10, "6", "kubectl get -n %s fp grow -o jsonpath='{.status.partitions}'", ns);

    char *out;
    cr_assert_neq(tk_sh(&out, "kubectl patch -n %s fp grow --type=merge -p '{\"spec\":{\"kafka\":{\"partitions\":2}}}'", ns), 0);
    cr_assert_not_null(strstr(out, "partitions can only grow"), "%s", out);
    free(out);

    cr_assert_eq(tk_sh(&out, "kubectl scale -n %s deployment grow-consumer --replicas=1", ns), 0, "%s", out);
    free(out);
    double took = tk_sh_until(5, "6", "kubectl get -n %s deployment grow-consumer -o jsonpath='{.spec.replicas}'", ns);
    cr_log_info("kubectl scale reverted in %.2f s", took);

    cr_assert_eq(tk_sh(&out, "kubectl patch -n %s deployment grow-ingest --type=json -p "
                             "'[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/image\",\"value\":\"evil:1\"}]'", ns), 0, "%s", out);
    free(out);
    tk_sh_until(5, "formpipe/formpipe-ingest:0.1.0", "kubectl get -n %s deployment grow-ingest -o jsonpath='{.spec.template.spec.containers[0].image}'", ns);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(operator, bad_spec_and_foreign_objects_are_reported_not_touched, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_operator(&op, NULL, NULL);
    char *out;
    int rc = tk_sh(&out, "kubectl apply -n %s -f - <<'YAML'\n"
                   "apiVersion: formpipe.io/v1alpha1\nkind: FormPipeline\nmetadata: {name: badform}\n"
                   "spec:\n  form: {fields: [{name: a, type: string, pattern: \"([\"}]}\n  sheets: {spreadsheetId: s}\nYAML", ns);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    tk_sh_until(10, "InvalidSpec", "kubectl get -n %s fp badform -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    char *msg = get("fp badform", "{.status.conditions[?(@.type==\"Ready\")].message}");
    cr_assert_not_null(strstr(msg, "pattern does not compile"), "%s", msg);
    free(msg);
    tk_sh_until(5, "InvalidSpec", "kubectl get events -n %s --field-selector involvedObject.name=badform -o jsonpath='{.items[0].reason}'", ns);
    cr_assert_eq(tk_sh(&out, "kubectl get -n %s deployments -o name", ns), 0);
    cr_assert_str_eq(out, "", "nothing is created for a bad spec");
    free(out);

    cr_assert_eq(tk_sh(&out, "kubectl create configmap -n %s taken-form --from-literal=owner=someone-else", ns), 0, "%s", out);
    free(out);
    apply_pipeline("taken", 3, NULL);
    tk_sh_until(10, "OwnershipConflict", "kubectl get -n %s fp taken -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    char *cm = get("configmap taken-form", "{.data.owner}|{.metadata.ownerReferences}");
    cr_assert_str_eq(cm, "someone-else|", "the foreign ConfigMap is left alone");
    free(cm);
    tk_sh_until(5, "OwnershipConflict", "kubectl get events -n %s --field-selector involvedObject.name=taken,reason=OwnershipConflict -o jsonpath='{.items[0].reason}'", ns);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* #16: with allowlists, a spec naming another host or Kafka cluster is Ready=False/NotAllowed
 * with an Event, and nothing is created; an allowed one runs. */
Test(operator, specs_outside_the_allowlists_create_nothing, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_operator(&op, NULL, (const char *const[]){"--allowed-host", "*.forms.example.org",
                                                    "--allowed-kafka-bootstrap", "kafka-b.example.org:9092", NULL});
    const char *specs[][2] = {{"elsewhere", "ingest: {host: forms.evil.example}"},
                              {"otherkafka", "ingest: {host: a.forms.example.org}\n  kafka: {bootstrapServers: \"evil:9092\"}"},
                              {"allowed", "ingest: {host: a.forms.example.org}"}};
    for (size_t i = 0; i < 3; i++) {
        char *applied;
        int rc = tk_sh(&applied, "kubectl apply -n %s -f - <<'YAML'\n"
                       "apiVersion: formpipe.io/v1alpha1\nkind: FormPipeline\nmetadata: {name: %s}\n"
                       "spec:\n  form: {fields: [{name: name, type: string}]}\n  sheets: {spreadsheetId: s-%s-%s}\n  %s\nYAML",
                       ns, specs[i][0], ns, specs[i][0], specs[i][1]);
        cr_assert_eq(rc, 0, "kubectl apply: %s", applied);
        free(applied);
    }
    tk_sh_until(10, "NotAllowed", "kubectl get -n %s fp elsewhere -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    tk_sh_until(10, "NotAllowed", "kubectl get -n %s fp otherkafka -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    char *msg = get("fp otherkafka", "{.status.conditions[?(@.type==\"Ready\")].message}");
    cr_assert_not_null(strstr(msg, "spec.kafka.bootstrapServers: evil:9092"), "%s", msg);
    free(msg);
    tk_sh_until(5, "NotAllowed", "kubectl get events -n %s --field-selector involvedObject.name=elsewhere -o jsonpath='{.items[0].reason}'", ns);
    tk_sh_until(15, "configmap/allowed-form", "kubectl get -n %s configmap allowed-form -o name", ns);
    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl get -n %s deployments,configmaps,ingresses -o name | grep -E 'elsewhere|otherkafka' || true", ns), 0);
    cr_assert_str_eq(out, "", "nothing is created for a spec outside the allowlists");
    free(out);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(operator, delete_collects_children_and_keeps_the_topic_unless_asked, .init = setup, .fini = teardown, .timeout = 150)
{
    tk_proc op;
    start_operator(&op, NULL, NULL);
    apply_pipeline("keep", 2, NULL);
    apply_pipeline("drop", 2, "  kafka: {partitions: 2, deleteTopicOnDelete: true}");
    char keep_topic[160], drop_topic[160];
    snprintf(keep_topic, sizeof keep_topic, "forms.%s.keep", ns);
    snprintf(drop_topic, sizeof drop_topic, "forms.%s.drop", ns);
    tk_sh_until(10, "keep-consumer", "kubectl get -n %s deployment keep-consumer -o jsonpath='{.metadata.name}'", ns);
    tk_sh_until(10, "formpipe.io/delete-topic", "kubectl get -n %s fp drop -o jsonpath='{.metadata.finalizers[*]}'", ns);
    tk_sh_until(10, "drop-consumer", "kubectl get -n %s deployment drop-consumer -o jsonpath='{.metadata.name}'", ns);
    cr_assert_eq(topic_partitions(drop_topic), 2);

    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s fp keep drop --timeout=30s", ns), 0, "%s", out);
    free(out);
    tk_sh_until(60, "", "kubectl get -n %s deployments,services,ingresses,cronjobs,configmaps -l app.kubernetes.io/managed-by=formpipe-operator -o name", ns);
    cr_assert_eq(topic_partitions(keep_topic), 2, "the topic (and its data) stays by default");
    for (int i = 0; i < 50 && topic_partitions(drop_topic) != 0; i++)
        usleep(200000);
    cr_assert_eq(topic_partitions(drop_topic), 0, "deleteTopicOnDelete removes the topic");
    tk_topic_delete(keep_topic);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(operator, a_topic_it_did_not_create_is_used_never_grown_or_deleted, .init = setup, .fini = teardown, .timeout = 150)
{
    tk_proc op;
    start_operator(&op, NULL, NULL);
    char shared[160], spec[300];
    snprintf(shared, sizeof shared, "forms.%s.shared", ns);
    snprintf(spec, sizeof spec, "  kafka: {partitions: 2, topic: %s}", shared);
    apply_pipeline("first", 2, spec);
    tk_sh_until(20, "true TopicExists", "kubectl get -n %s fp first -o jsonpath='{.status.topicOwned} "
                "{.status.conditions[?(@.type==\"TopicReady\")].reason}'", ns);
    /* a second pipeline names the same topic, asks for more partitions and its deletion */
    snprintf(spec, sizeof spec, "  kafka: {partitions: 4, topic: %s, deleteTopicOnDelete: true}", shared);
    apply_pipeline("second", 4, spec);
    tk_sh_until(20, "false TopicNotOwned", "kubectl get -n %s fp second -o jsonpath='{.status.topicOwned} "
                "{.status.conditions[?(@.type==\"TopicReady\")].reason}'", ns);
    char *msg = get("fp second", "{.status.conditions[?(@.type==\"TopicReady\")].message}");
    cr_assert_not_null(strstr(msg, "never grown, configured or deleted"), "%s", msg);
    free(msg);
    sleep(3);   /* reconciles of second come and go */
    cr_assert_eq(topic_partitions(shared), 2, "the topic keeps the partitions its creator asked for");
    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s fp second --timeout=30s", ns), 0, "%s", out);
    free(out);
    tk_sh_until(10, "TopicNotDeleted", "kubectl get events -n %s --field-selector involvedObject.name=second,"
                "reason=TopicNotDeleted -o jsonpath='{.items[0].reason}'", ns);
    cr_assert_eq(topic_partitions(shared), 2, "deleting the second pipeline leaves the first one's topic");
    char *first = get("fp first", "{.status.topicOwned}");
    cr_assert_str_eq(first, "true");
    free(first);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
    tk_topic_delete(shared);
}

/* Commits offset for every partition 0..n-1 of topic as group (what a consumer does
 * once it has stored events), without joining the group. */
static void commit_group(const char *group, const char *topic, int n, long long offset)
{
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), why, sizeof why);
    rd_kafka_conf_set(conf, "group.id", group, why, sizeof why);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    cr_assert_not_null(rk, "%s", why);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = offset;
    rd_kafka_resp_err_t e = rd_kafka_commit(rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    cr_assert_eq(e, 0, "commit: %s", rd_kafka_err2str(e));
}

static const char *const fast_measure[] = {"--lag-interval", "1s", NULL};
static double metric_value(int port, const char *series);

Test(operator, dead_letter_topic_lives_with_the_pipeline_topic, .init = setup, .fini = teardown, .timeout = 200)
{
    tk_proc op;
    start_operator(&op, NULL, fast_measure);
    apply_pipeline("dl", 2, "  kafka: {partitions: 2, deleteTopicOnDelete: true}");
    char topic[160], dlq[170];
    snprintf(topic, sizeof topic, "forms.%s.dl", ns);
    snprintf(dlq, sizeof dlq, "%s.dlq", topic);
    tk_sh_until(10, "True", "kubectl get -n %s fp dl -o jsonpath='%s'", ns, condition("TopicReady"));
    cr_assert_eq(topic_partitions(dlq), 2, "the dead-letter topic exists before any consumer runs");
    apply_pipeline("dl", 4, "  kafka: {partitions: 4, deleteTopicOnDelete: true}");
    tk_sh_until(10, "4", "kubectl get -n %s fp dl -o jsonpath='{.status.partitions}'", ns);
    cr_assert_eq(topic_partitions(dlq), 4, "the dead-letter topic grows with the topic");

    /* deleted by hand: reported (Progressing False, an Event) and created again */
    tk_topic_delete(dlq);
    tk_sh_until(20, "DeadLetterTopicMissing", "kubectl get -n %s fp dl -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].reason}'", ns);
    cr_assert_eq(topic_partitions(dlq), 4, "recreated with the topic's partitions");
    /* said for OP_DLQ_RECREATED_HOLD_MS (60 s), not a flash until the next measurement */
    double held = tk_sh_until(90, "True", "kubectl get -n %s fp dl -o jsonpath='%s'", ns, condition("Progressing"));
    cr_assert_gt(held, 45, "DeadLetterTopicMissing is held about a minute, not %.1f s", held);
    tk_sh_until(5, "DeadLetterTopicRecreated", "kubectl get events -n %s --field-selector involvedObject.name=dl,reason=DeadLetterTopicRecreated -o jsonpath='{.items[0].reason}'", ns);

    /* deleted while no operator runs: the next one (a new leader remembers nothing) goes
     * by status, which says both topics were there */
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
    tk_topic_delete(dlq);
    start_operator(&op, NULL, fast_measure);
    tk_sh_until(20, "DeadLetterTopicMissing", "kubectl get -n %s fp dl -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].reason}'", ns);
    cr_assert_eq(topic_partitions(dlq), 4, "recreated by the restarted operator");

    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s fp dl --timeout=30s", ns), 0, "%s", out);
    free(out);
    for (int i = 0; i < 50 && (topic_partitions(topic) != 0 || topic_partitions(dlq) != 0); i++)
        usleep(200000);
    cr_assert_eq(topic_partitions(dlq), 0, "deleteTopicOnDelete removes the dead-letter topic too");
    cr_assert_eq(topic_partitions(topic), 0);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(operator, progressing_turns_false_when_lagging_partitions_commit_nothing, .init = setup, .fini = teardown, .timeout = 150)
{
    tk_proc op;
    int port = start_operator(&op, NULL, fast_measure);
    apply_pipeline("slow", 2, "  progressDeadlineSeconds: 10");
    tk_sh_until(30, "4", "kubectl get pods -n %s -l 'app.kubernetes.io/instance=slow,%s' --no-headers | wc -l", ns, LONG_RUNNING);
    mark_pods_ready("app.kubernetes.io/instance=slow," LONG_RUNNING);
    tk_sh_until(30, "True", "kubectl get -n %s fp slow -o jsonpath='%s'", ns, condition("Ready"));

    char topic[160], group[160];
    snprintf(topic, sizeof topic, "forms.%s.slow", ns);
    snprintf(group, sizeof group, "formpipe.%s.slow", ns);
    produce_n(topic, 6);
    /* nobody consumes: after the deadline the pipeline says so, and why */
    double took = tk_sh_until(40, "NoProgress", "kubectl get -n %s fp slow -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].reason}'", ns);
    cr_log_info("Progressing False %.1f s after the events (deadline 10 s)", took);
    cr_assert_geq(took, 8.0, "not before the deadline: %.1f s", took);
    char *ready = get("fp slow", "{.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}");
    cr_assert_str_eq(ready, "False NoProgress", "Ready follows Progressing");
    free(ready);
    char *msg = get("fp slow", "{.status.conditions[?(@.type==\"Progressing\")].message}");
    cr_assert_not_null(strstr(msg, "events wait"), "%s", msg);
    free(msg);
    char *wide = NULL;
    tk_sh(&wide, "kubectl get -n %s fp slow --no-headers", ns);
    cr_assert_not_null(strstr(wide, "NoProgress"), "kubectl get shows why: %s", wide);
    free(wide);
    char series[256];
    snprintf(series, sizeof series, "formpipe_pipeline_progressing{namespace=\"%s\",pipeline=\"slow\"}", ns);
    cr_assert_eq(metric_value(port, series), 0, "the operator's /metrics says so too");
    snprintf(series, sizeof series, "formpipe_pipeline_lag{namespace=\"%s\",pipeline=\"slow\"}", ns);
    cr_assert_eq(metric_value(port, series), 6);

    /* the consumers catch up: True again */
    commit_group(group, topic, 2, 1000);   /* past the end: no lag */
    tk_sh_until(20, "True", "kubectl get -n %s fp slow -o jsonpath='%s'", ns, condition("Progressing"));
    tk_sh_until(10, "True", "kubectl get -n %s fp slow -o jsonpath='%s'", ns, condition("Ready"));
    snprintf(series, sizeof series, "formpipe_pipeline_progressing{namespace=\"%s\",pipeline=\"slow\"}", ns);
    cr_assert_eq(metric_value(port, series), 1);
    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s fp slow --timeout=30s", ns), 0, "%s", out);
    free(out);
    for (int i = 0; i < 50 && metric_value(port, series) != -1; i++)
        usleep(100000);
    cr_assert_eq(metric_value(port, series), -1, "a deleted pipeline's series are gone");
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* Creates a finished flush pod of pipeline (restricted Pod Security) with exit code and
 * termination message, as a kubelet would report it. */
static void finished_flush_pod(const char *pipeline, const char *name, const char *finished, int exit_code,
                               const char *message)
{
    cJSON *st = cJSON_CreateObject(), *cs = cJSON_CreateObject();
    cJSON *status = cJSON_AddObjectToObject(st, "status");
    cJSON_AddStringToObject(status, "phase", exit_code ? "Failed" : "Succeeded");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(status, "containerStatuses"), cs);
    cJSON_AddStringToObject(cs, "name", "flush");
    cJSON_AddStringToObject(cs, "image", "formpipe/formpipe-flush:0.1.0");
    cJSON_AddStringToObject(cs, "imageID", "formpipe/formpipe-flush:0.1.0");
    cJSON_AddFalseToObject(cs, "ready");
    cJSON_AddNumberToObject(cs, "restartCount", 0);
    cJSON *t = cJSON_AddObjectToObject(cJSON_AddObjectToObject(cs, "state"), "terminated");
    cJSON_AddNumberToObject(t, "exitCode", exit_code);
    cJSON_AddStringToObject(t, "finishedAt", finished);
    cJSON_AddStringToObject(t, "message", message);
    char *patch = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    cr_assert_null(strchr(patch, '\''), "the patch is passed in single quotes");
    char *out;
    int rc = tk_sh(&out, "kubectl apply -n %s -f - <<'YAML' >/dev/null && "
                   "kubectl patch -n %s pod %s --subresource=status --type=merge -p '%s' >/dev/null\n"
                   "apiVersion: v1\nkind: Pod\n"
                   "metadata:\n  name: %s\n  labels: {app.kubernetes.io/managed-by: formpipe-operator, "
                   "app.kubernetes.io/component: flush, formpipe.io/pipeline: %s}\n"
                   "spec:\n  restartPolicy: Never\n"
                   "  nodeName: no-such-node\n"   /* no node harness runs it and overwrites its status */
                   "  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}\n"
                   "  containers:\n  - name: flush\n    image: formpipe/formpipe-flush:0.1.0\n"
                   "    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n"
                   "YAML",
                   ns, ns, name, patch, name, pipeline);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    free(patch);
}

Test(operator, flush_runs_reach_status_and_failures_stop_progress, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_operator(&op, NULL, fast_measure);
    apply_pipeline("fl", 1, NULL);
    tk_sh_until(10, "True", "kubectl get -n %s fp fl -o jsonpath='%s'", ns, condition("FlushScheduled"));
    finished_flush_pod("fl", "fl-flush-1", "2026-12-01T10:00:00Z", 0, "{\"rows\":120,\"rows_left\":3,\"error\":\"\"}");
    tk_sh_until(10, "2026-12-01T10:00:00Z 120 3 0", "kubectl get -n %s fp fl -o jsonpath='{.status.flush.lastSuccessfulTime} "
                "{.status.flush.lastRunRows} {.status.flush.rowsWaiting} {.status.flush.failedRunsInARow}'", ns);
    tk_sh_until(5, "LastRunSucceeded", "kubectl get -n %s fp fl -o jsonpath='{.status.conditions[?(@.type==\"Flushing\")].reason}'", ns);
    const char *why = "{\"rows\":0,\"rows_left\":9,\"error\":\"spreadsheet sheet1 is not shared with flush@example.iam.gserviceaccount.com\"}";
    finished_flush_pod("fl", "fl-flush-2", "2026-12-01T10:01:00Z", 1, why);
    tk_sh_until(10, "LastRunFailed", "kubectl get -n %s fp fl -o jsonpath='{.status.conditions[?(@.type==\"Flushing\")].reason}'", ns);
    char *prog = get("fp fl", "{.status.conditions[?(@.type==\"Progressing\")].reason}");
    cr_assert_str_neq(prog, "FlushFailing", "one failed run is not yet a stalled pipeline");
    free(prog);
    finished_flush_pod("fl", "fl-flush-3", "2026-12-01T10:02:00Z", 1, why);
    finished_flush_pod("fl", "fl-flush-4", "2026-12-01T10:03:00Z", 75, why);
    tk_sh_until(10, "FlushFailing", "kubectl get -n %s fp fl -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].reason}'", ns);
    char *msg = get("fp fl", "{.status.flush.failedRunsInARow} {.status.conditions[?(@.type==\"Progressing\")].message}");
    cr_assert_not_null(strstr(msg, "3 the last 3 flush runs failed: spreadsheet sheet1 is not shared"), "%s", msg);
    free(msg);
    finished_flush_pod("fl", "fl-flush-5", "2026-12-01T10:04:00Z", 0, "{\"rows\":9,\"rows_left\":0,\"error\":\"\"}");
    tk_sh_until(10, "LastRunSucceeded 0", "kubectl get -n %s fp fl -o jsonpath='{.status.conditions[?(@.type==\"Flushing\")].reason} {.status.flush.failedRunsInARow}'", ns);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(operator, columns_are_append_only_and_types_never_change, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_operator(&op, NULL, NULL);
    apply_pipeline("cols", 1, NULL);
    tk_sh_until(10, "name roll cgpa", "kubectl get -n %s fp cols -o jsonpath='{.status.columns[*].name}'", ns);
    char *out;
    int rc = tk_sh(&out, "kubectl apply -n %s -f - <<'YAML'\n"
                   "apiVersion: formpipe.io/v1alpha1\nkind: FormPipeline\nmetadata: {name: cols}\n"
                   "spec:\n  form:\n    fields:\n    - {name: email, type: email}\n    - {name: name, type: string}\n"
                   "    - {name: roll, type: string}\n  kafka: {partitions: 1}\n  sheets: {spreadsheetId: s-%s-cols}\nYAML", ns, ns);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    tk_sh_until(10, "name roll cgpa email", "kubectl get -n %s fp cols -o jsonpath='{.status.columns[*].name}'", ns);
    tk_sh_until(10, "\"columns\":[\"name\",\"roll\",\"cgpa\",\"email\"]",
                "kubectl get -n %s configmap cols-form -o jsonpath='{.data.form\\.json}' | grep -o '\"columns\":\\[[^]]*\\]'", ns);
    /* a type change is refused at admission, with the reason */
    rc = tk_sh(&out, "kubectl patch -n %s fp cols --type=json -p '[{\"op\":\"replace\",\"path\":\"/spec/form/fields/2/type\",\"value\":\"integer\"}]'", ns);
    cr_assert_neq(rc, 0);
    cr_assert_not_null(strstr(out, "a field's type cannot change"), "%s", out);
    free(out);
    /* and a removed field that comes back with another type is refused by the operator */
    rc = tk_sh(&out, "kubectl patch -n %s fp cols --type=json -p '[{\"op\":\"add\",\"path\":\"/spec/form/fields/-\",\"value\":{\"name\":\"cgpa\",\"type\":\"string\"}}]'", ns);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    tk_sh_until(10, "InvalidSpec", "kubectl get -n %s fp cols -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    char *msg = get("fp cols", "{.status.conditions[?(@.type==\"Ready\")].message}");
    cr_assert_not_null(strstr(msg, "field 'cgpa' was number and cannot become string"), "%s", msg);
    free(msg);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(operator, two_pipelines_never_write_one_tab, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_operator(&op, NULL, NULL);
    char sheets[160];
    snprintf(sheets, sizeof sheets, "  sheets: {spreadsheetId: shared-%s, sheet: Responses}", ns);
    apply_pipeline("first", 1, sheets);
    tk_sh_until(10, "True", "kubectl get -n %s fp first -o jsonpath='%s'", ns, condition("FlushScheduled"));
    snprintf(sheets, sizeof sheets, "  sheets: {spreadsheetId: shared-%s, sheet: responses}", ns);
    apply_pipeline("second", 1, sheets);
    tk_sh_until(10, "SheetInUse", "kubectl get -n %s fp second -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    char *msg = get("fp second", "{.status.conditions[?(@.type==\"FlushScheduled\")].message}");
    char want[128];
    snprintf(want, sizeof want, "is written by FormPipeline %s/first", ns);
    cr_assert_not_null(strstr(msg, want), "%s", msg);
    free(msg);
    tk_sh_until(10, "true", "kubectl get -n %s cronjob second-flush -o jsonpath='{.spec.suspend}'", ns);
    char *first = get("cronjob first-flush", "{.spec.suspend}");
    cr_assert_str_eq(first, "false", "the first writer keeps flushing");
    free(first);
    /* the first moves to its own tab: the second may write now */
    snprintf(sheets, sizeof sheets, "  sheets: {spreadsheetId: shared-%s, sheet: First}", ns);
    apply_pipeline("first", 1, sheets);
    tk_sh_until(10, "false", "kubectl get -n %s cronjob second-flush -o jsonpath='{.spec.suspend}'", ns);
    tk_sh_until(10, "True", "kubectl get -n %s fp second -o jsonpath='%s'", ns, condition("FlushScheduled"));
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

static double metric_value(int port, const char *series)
{
    char *body = NULL;
    tk_http_get(port, "/metrics", &body);
    char needle[256];
    snprintf(needle, sizeof needle, "\n%s ", series);
    char *at = body ? strstr(body, needle) : NULL;
    double v = at ? atof(at + strlen(needle)) : -1;
    free(body);
    return v;
}

/* formpipe_operator_leader on the operator's /metrics (-1: unreachable). */
static int leader_gauge(int port)
{
    return (int)metric_value(port, "formpipe_operator_leader");
}

Test(operator, two_replicas_one_leads_and_the_other_takes_over_within_20s, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc a, b;
    int pa = start_operator(&a, NULL, NULL), pb = start_operator(&b, NULL, NULL);
    double t0 = tk_now();
    int la = 0, lb = 0;
    while (tk_now() - t0 < 20 && la + lb != 1) {
        usleep(200000);
        la = leader_gauge(pa) == 1;
        lb = leader_gauge(pb) == 1;
    }
    cr_assert_eq(la + lb, 1, "exactly one leader (a=%d b=%d)", la, lb);
    sleep(3);   /* and it stays that way */
    cr_assert_eq((leader_gauge(pa) == 1) + (leader_gauge(pb) == 1), 1);
    tk_proc *leader = la ? &a : &b, *standby = la ? &b : &a;
    int standby_port = la ? pb : pa;
    double killed = tk_now();
    tk_stop(leader, SIGKILL, 5);
    apply_pipeline("after-failover", 2, NULL);
    tk_sh_until(25, "after-failover-consumer", "kubectl get -n %s deployment after-failover-consumer -o jsonpath='{.metadata.name}'", ns);
    double took = tk_now() - killed;
    cr_log_info("standby acted %.1f s after the leader was killed", took);
    cr_assert_leq(took, 20.0, "took %.1f s", took);
    cr_assert_eq(leader_gauge(standby_port), 1);
    cr_assert_eq(tk_stop(standby, SIGTERM, 10), 0);
}

Test(operator, resumes_after_an_apiserver_restart_and_relists_what_it_missed, .init = setup, .fini = teardown, .timeout = 180)
{
    tk_proc op;
    int port = start_operator(&op, NULL, (const char *const[]){"--leader-elect=false", NULL});
    apply_pipeline("before", 2, NULL);
    tk_sh_until(10, "before-consumer", "kubectl get -n %s deployment before-consumer -o jsonpath='{.metadata.name}'", ns);
    kill(op.pid, SIGSTOP);   /* the operator misses what happens next */
    apply_pipeline("missed", 2, NULL);
    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s fp before", ns), 0, "%s", out);
    free(out);
    tk_testenv("kill", "kube-apiserver");
    tk_testenv("start", "kube-apiserver");
    kill(op.pid, SIGCONT);
    tk_sh_until(60, "missed-consumer", "kubectl get -n %s deployment missed-consumer -o jsonpath='{.metadata.name}'", ns);
    tk_sh_until(30, "2", "kubectl get -n %s fp missed -o jsonpath='{.status.partitions}'", ns);
    double restarts = metric_value(port, "formpipe_operator_watch_restarts_total{kind=\"formpipelines\"}");
    cr_assert_geq(restarts, 1, "the FormPipeline watch restarted (%g)", restarts);
    char *log = tk_read_file(op.log);
    cr_assert_not_null(strstr(log, "\"code\":410"), "the new apiserver's watch cache starts after our version: "
                       "a 410 Gone must have led to a relist");
    free(log);
    /* a change after the restart still arrives through the new watch */
    apply_pipeline("after", 2, NULL);
    tk_sh_until(10, "after-consumer", "kubectl get -n %s deployment after-consumer -o jsonpath='{.metadata.name}'", ns);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* Commits the group's offsets at the end of every partition ("drained"), or with
 * at_start at offset 0 (nothing consumed yet, but the group's coordinator exists: a
 * fresh Kafka loads its offsets topic on the first group request). */
static void commit_offsets(const char *group, const char *topic, int partitions, int at_start)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"), errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    cr_assert_not_null(rk, "%s", errstr);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int i = 0; i < partitions; i++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e;
        double deadline = tk_now() + 20;   /* a topic the operator just created may have no leaders yet */
        while ((e = rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, 5000)) && tk_now() < deadline)
            usleep(200 * 1000);
        if (e) {
            rd_kafka_topic_partition_list_destroy(l);
            rd_kafka_destroy(rk);
            cr_assert_fail("watermarks of %s [%d]: %s", topic, i, rd_kafka_err2str(e));
        }
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = at_start ? 0 : hi;
    }
    cr_assert_eq(rd_kafka_commit(rk, l, 0), 0);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

Test(operator, lag_scales_consumers_up_at_once_and_down_after_the_window, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_operator(&op, NULL, (const char *const[]){"--lag-interval", "1s", NULL});
    apply_pipeline("lag", 6, "  consumer: {lagPerReplica: 1000, minReplicas: 1, scaleDownStabilizationSeconds: 10}");
    tk_sh_until(20, "1", "kubectl get -n %s deployment lag-consumer -o jsonpath='{.spec.replicas}'", ns);
    char topic[160], group[160];
    snprintf(topic, sizeof topic, "forms.%s.lag", ns);
    snprintf(group, sizeof group, "formpipe.%s.lag", ns);
    commit_offsets(group, topic, 6, 1);
    produce_n(topic, 4500);
    double up = tk_sh_until(30, "5", "kubectl get -n %s deployment lag-consumer -o jsonpath='{.spec.replicas}'", ns);
    cr_log_info("backlog of 4500 -> 5 consumers after %.1f s", up);
    tk_sh_until(5, "4500", "kubectl get -n %s fp lag -o jsonpath='{.status.consumer.lag}'", ns);
    commit_offsets(group, topic, 6, 0);
    double drained = tk_now();
    tk_sh_until(10, "0", "kubectl get -n %s fp lag -o jsonpath='{.status.consumer.lag}'", ns);
    char *r = get("deployment lag-consumer", "{.spec.replicas}");
    cr_assert_str_eq(r, "5", "lag is 0 but the window holds the replicas");
    free(r);
    tk_sh_until(20, "1", "kubectl get -n %s deployment lag-consumer -o jsonpath='{.spec.replicas}'", ns);
    double down = tk_now() - drained;
    cr_log_info("scaled down %.1f s after the drain (window 10 s)", down);
    cr_assert_geq(down, 8.0, "scale-down came before the stabilization window: %.1f s", down);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(operator, the_chart_rbac_is_enough, .init = setup, .fini = teardown, .timeout = 150)
{
    char release[64], *out;
    snprintf(release, sizeof release, "rbac%d", (int)getpid());
    cr_assert_eq(tk_sh(&out, "\"$HELM\" template %s %s/charts/formpipe -n %s --show-only templates/serviceaccount.yaml "
                             "--show-only templates/clusterrole.yaml --show-only templates/clusterrolebinding.yaml "
                             "--show-only templates/role.yaml | kubectl apply -f -", release, FP_SOURCE_DIR, ns), 0, "%s", out);
    free(out);
    char *token;
    cr_assert_eq(tk_sh(&token, "kubectl create token %s-formpipe-operator -n %s --duration 1h", release, ns), 0, "%s", token);
    char kubeconfig[8192];
    snprintf(kubeconfig, sizeof kubeconfig,
             "apiVersion: v1\nkind: Config\ncurrent-context: sa\n"
             "clusters:\n- name: test\n  cluster: {server: '%s', certificate-authority: '%s'}\n"
             "users:\n- name: operator\n  user: {token: '%s'}\n"
             "contexts:\n- name: sa\n  context: {cluster: test, user: operator, namespace: %s}\n",
             tk_env("FORMPIPE_TEST_KUBE_SERVER"), tk_env("FORMPIPE_TEST_KUBE_CA_FILE"), token, ns);
    free(token);
    char *path = tk_write_temp(kubeconfig);
    char lease_name[96];
    snprintf(lease_name, sizeof lease_name, "%s-formpipe-operator", release);
    tk_proc op;
    start_operator(&op, path, (const char *const[]){"--lease-name", lease_name, "--lease-namespace", ns,
                                                    "--shared-switch-delay", "1s", NULL});
    apply_pipeline("least", 2, "  kafka: {partitions: 2, deleteTopicOnDelete: true}");
    tk_sh_until(15, "formpipe.io/delete-topic", "kubectl get -n %s fp least -o jsonpath='{.metadata.finalizers[*]}'", ns);
    const char *children[] = {"configmap/least-form", "deployment/least-ingest", "service/least-ingest",
                              "ingress/least-ingest", "deployment/least-consumer", "cronjob/least-flush"};
    for (size_t i = 0; i < 6; i++)
        tk_sh_until(10, "formpipe-operator", "kubectl get -n %s %s -o jsonpath='{.metadata.labels.app\\.kubernetes\\.io/managed-by}'", ns, children[i]);
    tk_sh_until(10, "True", "kubectl get -n %s fp least -o jsonpath='%s'", ns, condition("TopicReady"));
    tk_sh_until(10, "TopicCreated", "kubectl get events -n %s --field-selector involvedObject.name=least,reason=TopicCreated -o jsonpath='{.items[0].reason}'", ns);
    /* a FormTask under the same role: owner, finalizer, dead-letter topic, Deployment, status, deletion */
    apply_task("least-hook", "least", "  webhook: {url: 'https://hooks.example.com/x'}");
    tk_sh_until(15, "formpipe.io/delete-dead-letter-topic least", "kubectl get -n %s ft least-hook -o jsonpath='{.metadata.finalizers[*]} {.metadata.ownerReferences[0].name}'", ns);
    tk_sh_until(10, "formpipe-operator", "kubectl get -n %s deployment least-hook-task -o jsonpath='{.metadata.labels.app\\.kubernetes\\.io/managed-by}'", ns);
    tk_sh_until(10, "Deploying", "kubectl get -n %s ft least-hook -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    char least_dlq[192];
    snprintf(least_dlq, sizeof least_dlq, "forms.%s.least.least-hook.dlq", ns);
    cr_assert_eq(topic_partitions(least_dlq), 2);
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s ft least-hook --timeout=30s", ns), 0, "%s", out);
    free(out);
    cr_assert_eq(topic_partitions(least_dlq), 0, "the task's dead-letter topic went before its finalizer was released");
    /* mode: Shared under the same role: the shared workloads made, its own deleted, and
     * (below) the shared ones deleted with the last Shared pipeline */
    apply_pipeline("least", 2, "  kafka: {partitions: 2, deleteTopicOnDelete: true}\n  mode: Shared");
    tk_sh_until(15, "", "kubectl get -n %s deployment/least-consumer cronjob/least-flush --ignore-not-found -o name", ns);
    tk_sh_until(15, "1", "kubectl get pods -n %s -l app.kubernetes.io/instance=formpipe-shared,app.kubernetes.io/component=ingest -o name | wc -l | tr -d ' ' | sed 's/^[1-9][0-9]*$/1/'", ns);
    mark_pods_ready("app.kubernetes.io/instance=formpipe-shared");
    tk_sh_until(20, "formpipe-shared-ingest Shared", ROUTE_AND_MODE, ns, "least", ns, "least");
    tk_sh_until(15, "", "kubectl get -n %s deployment/least-ingest service/least-ingest --ignore-not-found -o name", ns);
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s fp least --timeout=30s", ns), 0, "%s", out);
    free(out);
    char topic[160];
    snprintf(topic, sizeof topic, "forms.%s.least", ns);
    cr_assert_eq(topic_partitions(topic), 0, "the topic went before the finalizer was released");
    tk_sh_until(20, "", "kubectl get -n %s deployments,services,cronjobs,configmaps,poddisruptionbudgets -l formpipe.io/shared=true -o name", ns);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
    unlink(path);
    free(path);
    tk_sh(NULL, "kubectl delete clusterrole,clusterrolebinding %s-formpipe-operator", release);
    /* An RBAC refusal names the user ("... is forbidden: User \"system:serviceaccount:..."); a
     * 403 for a namespace being deleted (another test's, still reconciled) does not. */
    char *log = tk_read_file(op.log), refused[1200] = "";
    const char *denial = strstr(log, "forbidden: User ");
    if (denial) {
        const char *line = denial;
        while (line > log && line[-1] != '\n')
            line--;
        snprintf(refused, sizeof refused, "%.*s", (int)strcspn(line, "\n"), line);   /* cut to fit */
    }
    free(log);
    cr_assert_str_empty(refused, "the ServiceAccount was refused something: %s", refused);
}

/* --- #24: pod settings, disruption budgets, ingest autoscaling, topic configs --- */

/* The chart's --pod-defaults file rendered by helm with values (helm flags), written to a
 * temporary file whose path the caller frees (and unlinks). */
static char *chart_pod_defaults(const char *helm_flags)
{
    char *json;
    cr_assert_eq(tk_sh(&json, "\"$HELM\" template pods %s/charts/formpipe %s --show-only templates/poddefaults.yaml | "
                              "kubectl create --dry-run=client -o jsonpath='{.data.pod-defaults\\.json}' -f -",
                       FP_SOURCE_DIR, helm_flags), 0, "%s", json);
    char *path = tk_write_temp(json);
    free(json);
    return path;
}

Test(pods, settings_from_the_chart_and_the_spec_reach_every_pod_and_budgets_hold, .init = setup, .fini = teardown, .timeout = 180)
{
    char pc[80], *out;
    snprintf(pc, sizeof pc, "%s-bulk", ns);   /* a pod naming a missing PriorityClass is refused */
    cr_assert_eq(tk_sh(&out, "kubectl create priorityclass %s --value=1000", pc), 0, "%s", out);
    free(out);
    /* a private registry's pull secret and per-component defaults, as chart values */
    char flags[1024];
    snprintf(flags, sizeof flags, "--set-json 'imagePullSecrets=[{\"name\":\"regcred\"}]' --set-json 'pipelines.pods={"
             "\"default\":{\"labels\":{\"team\":\"forms\"},\"annotations\":{\"sidecar.istio.io/inject\":\"true\"}},"
             "\"consumer\":{\"priorityClassName\":\"%s\",\"resources\":{\"limits\":{\"memory\":\"1Gi\"}}},"
             "\"task\":{\"nodeSelector\":{\"pool\":\"tasks\"}}}'", pc);
    char *defaults = chart_pod_defaults(flags);
    tk_proc op;
    start_operator(&op, NULL, (const char *const[]){"--pod-defaults", defaults, "--task-image", "formpipe/formpipe-task:test", NULL});
    apply_pipeline("podded", 2, "  ingest:\n    replicas: 2\n    pod:\n      resources: {requests: {cpu: 300m}}\n"
                   "      tolerations: [{key: web, operator: Exists, effect: NoSchedule}]\n"
                   "  consumer: {pod: {labels: {tier: bulk}}}\n"
                   "  sheets:\n    spreadsheetId: s-podded\n    pod: {annotations: {example.com/flush: \"yes\"}}");
    /* real Pod objects (the controller-manager's ReplicaSets, admitted under Pod Security "restricted") */
    tk_sh_until(30, "2", "kubectl get pods -n %s -l app.kubernetes.io/instance=podded,app.kubernetes.io/component=ingest --no-headers | wc -l", ns);
    tk_sh_until(30, "2", "kubectl get pods -n %s -l app.kubernetes.io/instance=podded,app.kubernetes.io/component=consumer --no-headers | wc -l", ns);
    char *got = get("pods -l app.kubernetes.io/instance=podded,app.kubernetes.io/component=ingest",
                    "{.items[0].spec.imagePullSecrets[0].name} {.items[0].metadata.labels.team} "
                    "{.items[0].metadata.annotations.sidecar\\.istio\\.io/inject} {.items[0].spec.containers[0].resources.requests.cpu} "
                    "{.items[0].spec.containers[0].resources.requests.memory} {.items[0].spec.tolerations[?(@.key==\"web\")].effect} "
                    "{.items[0].spec.topologySpreadConstraints[0].topologyKey} "
                    "{.items[0].spec.topologySpreadConstraints[0].labelSelector.matchLabels.app\\.kubernetes\\.io/instance}");
    cr_assert_str_eq(got, "regcred forms true 300m 64Mi NoSchedule kubernetes.io/hostname podded",
                     "chart default; the pipeline's cpu over the built-in, the built-in memory kept; spread across nodes");
    free(got);
    got = get("pods -l app.kubernetes.io/instance=podded,app.kubernetes.io/component=consumer",
              "{.items[0].spec.imagePullSecrets[0].name} {.items[0].spec.priorityClassName} "
              "{.items[0].spec.containers[0].resources.limits.memory} {.items[0].metadata.labels.tier} "
              "{.items[0].metadata.labels.team} {.items[0].metadata.labels.app\\.kubernetes\\.io/managed-by}");
    char want[256];
    snprintf(want, sizeof want, "regcred %s 1Gi bulk forms formpipe-operator", pc);
    cr_assert_str_eq(got, want);
    free(got);
    got = get("cronjob podded-flush", "{.spec.jobTemplate.spec.template.spec.imagePullSecrets[0].name} "
              "{.spec.jobTemplate.spec.template.metadata.annotations.example\\.com/flush} "
              "{.spec.jobTemplate.spec.template.metadata.labels.team} "
              "{.spec.jobTemplate.spec.template.spec.containers[0].resources.limits.memory}");
    cr_assert_str_eq(got, "regcred yes forms 256Mi");
    free(got);

    /* disruption budgets: one pod at a time, counted by the disruption controller */
    tk_sh_until(30, "1 2", "kubectl get -n %s pdb podded-ingest -o jsonpath='{.spec.maxUnavailable} {.status.expectedPods}'", ns);
    tk_sh_until(30, "1 2", "kubectl get -n %s pdb podded-consumer -o jsonpath='{.spec.maxUnavailable} {.status.expectedPods}'", ns);
    char *uid = get("formpipeline podded", "{.metadata.uid}");
    got = get("pdb podded-ingest", "{.metadata.ownerReferences[?(@.controller==true)].uid}");
    cr_assert_str_eq(got, uid);
    free(got);
    free(uid);

    /* drift: a budget, the pull secret and a per-pipeline setting come back */
    cr_assert_eq(tk_sh(&out, "kubectl patch -n %s pdb podded-ingest --type=merge -p '{\"spec\":{\"maxUnavailable\":0}}' && "
                             "kubectl patch -n %s deployment podded-ingest --type=json -p "
                             "'[{\"op\":\"remove\",\"path\":\"/spec/template/spec/imagePullSecrets\"}]' && "
                             "kubectl delete -n %s pdb podded-consumer", ns, ns, ns), 0, "%s", out);
    free(out);
    tk_sh_until(10, "1", "kubectl get -n %s pdb podded-ingest -o jsonpath='{.spec.maxUnavailable}'", ns);
    tk_sh_until(10, "regcred", "kubectl get -n %s deployment podded-ingest -o jsonpath='{.spec.template.spec.imagePullSecrets[0].name}'", ns);
    tk_sh_until(10, "1", "kubectl get -n %s pdb podded-consumer -o jsonpath='{.spec.maxUnavailable}'", ns);
    cr_assert_eq(tk_sh(&out, "kubectl patch -n %s fp podded --type=merge -p "
                             "'{\"spec\":{\"consumer\":{\"pod\":{\"resources\":{\"limits\":{\"memory\":\"2Gi\"}}}}}}'", ns), 0, "%s", out);
    free(out);
    tk_sh_until(10, "2Gi", "kubectl get -n %s deployment podded-consumer -o jsonpath='{.spec.template.spec.containers[0].resources.limits.memory}'", ns);

    /* a FormTask's Deployment: the same settings, task defaults < spec.pod */
    apply_task("podtask", "podded", "  webhook: {url: 'https://hooks.example.com/x'}\n  pod: {resources: {limits: {memory: 300Mi}}}");
    tk_sh_until(15, "regcred tasks 300Mi 64Mi forms",
                "kubectl get -n %s deployment podtask-task -o jsonpath='{.spec.template.spec.imagePullSecrets[0].name} "
                "{.spec.template.spec.nodeSelector.pool} {.spec.template.spec.containers[0].resources.limits.memory} "
                "{.spec.template.spec.containers[0].resources.requests.memory} {.spec.template.metadata.labels.team}'", ns);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
    unlink(defaults);
    free(defaults);
    tk_sh(NULL, "kubectl delete priorityclass %s", pc);
}

/* The fields the operator's field manager owns in the Deployment (its managedFields). */
static char *operator_fields(const char *deployment)
{
    char *out;
    tk_sh(&out, "kubectl get -n %s deployment %s --show-managed-fields -o jsonpath="
          "'{.metadata.managedFields[?(@.manager==\"formpipe-operator\")].fieldsV1.f:spec}'", ns, deployment);
    return out;
}

Test(pods, autoscaling_hands_ingest_replicas_to_an_hpa_and_takes_them_back, .init = setup, .fini = teardown, .timeout = 150)
{
    tk_proc op;
    start_operator(&op, NULL, fast_measure);
    apply_pipeline("scaled", 1, "  ingest:\n    replicas: 2\n    autoscaling: {minReplicas: 3, maxReplicas: 6, "
                   "targetCPUUtilizationPercentage: 60, requestsPerSecond: 150}");
    tk_sh_until(15, "Deployment scaled-ingest 3 6", "kubectl get -n %s hpa scaled-ingest -o jsonpath="
                "'{.spec.scaleTargetRef.kind} {.spec.scaleTargetRef.name} {.spec.minReplicas} {.spec.maxReplicas}'", ns);
    char *got = get("hpa scaled-ingest", "{.apiVersion} {.spec.metrics[0].resource.name} {.spec.metrics[0].resource.target.averageUtilization} "
                    "{.spec.metrics[1].pods.metric.name} {.spec.metrics[1].pods.target.averageValue}");
    cr_assert_str_eq(got, "autoscaling/v2 cpu 60 formpipe_ingest_requests_per_second 150");
    free(got);
    /* the controller-manager's HPA controller brings the Deployment to minReplicas (it
     * cannot read metrics here: no kubelet, no metrics server) */
    double took = tk_sh_until(60, "3", "kubectl get -n %s deployment scaled-ingest -o jsonpath='{.spec.replicas}'", ns);
    cr_log_info("the HPA controller scaled the ingest to its minimum in %.1f s", took);
    got = operator_fields("scaled-ingest");
    cr_assert_null(strstr(got, "f:replicas"), "the operator must not own the replicas under an HPA: %s", got);
    cr_assert_not_null(strstr(got, "f:template"), "%s", got);
    free(got);

    /* replicas are left to the HPA: a scale (what the HPA does) is not reverted */
    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl scale -n %s deployment scaled-ingest --replicas=5", ns), 0, "%s", out);
    free(out);
    sleep(4);   /* the scale itself and the one-second requeue reconcile the pipeline several times */
    got = get("deployment scaled-ingest", "{.spec.replicas}");
    cr_assert_str_eq(got, "5", "the operator reverted the HPA's replicas");
    free(got);

    /* drift of the HPA itself is reverted */
    cr_assert_eq(tk_sh(&out, "kubectl patch -n %s hpa scaled-ingest --type=merge -p '{\"spec\":{\"maxReplicas\":20}}'", ns), 0, "%s", out);
    free(out);
    tk_sh_until(10, "6", "kubectl get -n %s hpa scaled-ingest -o jsonpath='{.spec.maxReplicas}'", ns);

    /* autoscaling off: the HPA goes, spec.ingest.replicas rules again */
    cr_assert_eq(tk_sh(&out, "kubectl patch -n %s fp scaled --type=json -p '[{\"op\":\"remove\",\"path\":\"/spec/ingest/autoscaling\"}]'", ns), 0, "%s", out);
    free(out);
    tk_sh_until(15, "0", "kubectl get -n %s hpa --no-headers 2>/dev/null | wc -l", ns);
    tk_sh_until(10, "2", "kubectl get -n %s deployment scaled-ingest -o jsonpath='{.spec.replicas}'", ns);
    got = operator_fields("scaled-ingest");
    cr_assert_not_null(strstr(got, "f:replicas"), "%s", got);
    free(got);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* The value of config key of topic, and whether it is set on the topic itself
 * ("<value> dynamic" / "<value> default"), per Kafka's DescribeConfigs. */
static void topic_config(const char *topic, const char *key, char *out, size_t outsz)
{
    rd_kafka_t *rk = tk_producer();
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &cr, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    snprintf(out, outsz, "(no answer)");
    if (ev && !rd_kafka_event_error(ev)) {
        size_t n = 0, ne = 0;
        const rd_kafka_ConfigResource_t **res =
            rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
        const rd_kafka_ConfigEntry_t **e = n ? rd_kafka_ConfigResource_configs(res[0], &ne) : NULL;
        snprintf(out, outsz, "(no %s)", key);
        for (size_t i = 0; i < ne; i++)
            if (strcmp(rd_kafka_ConfigEntry_name(e[i]), key) == 0)
                snprintf(out, outsz, "%s %s", rd_kafka_ConfigEntry_value(e[i]),
                         rd_kafka_ConfigEntry_source(e[i]) == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG ? "dynamic" : "default");
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
    rd_kafka_destroy(rk);
}

/* Waits up to timeout_s for topic's key to read want (topic_config's form). */
static void topic_config_until(double timeout_s, const char *topic, const char *key, const char *want)
{
    char got[256] = "";
    for (double t0 = tk_now(); tk_now() - t0 < timeout_s; usleep(200000)) {
        topic_config(topic, key, got, sizeof got);
        if (strcmp(got, want) == 0)
            return;
    }
    cr_assert_fail("%s %s: '%s', want '%s'", topic, key, got, want);
}

/* Sets the topic's configs to exactly the key=value pairs of kv (NULL-terminated),
 * as someone with kafka-configs.sh would. */
static void set_topic_configs_by_hand(const char *topic, const char *const *kv)
{
    rd_kafka_t *rk = tk_producer();
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    for (; *kv; kv += 2)
        rd_kafka_ConfigResource_set_config(cr, kv[0], kv[1]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AlterConfigs(rk, &cr, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    cr_assert(ev && !rd_kafka_event_error(ev), "alter configs: %s", ev ? rd_kafka_event_error_string(ev) : "no answer");
    size_t n = 0;
    const rd_kafka_ConfigResource_t **res = rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
    cr_assert(n == 1 && !rd_kafka_ConfigResource_error(res[0]), "alter configs of %s", topic);
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
    rd_kafka_destroy(rk);
}

Test(pods, topic_configs_are_applied_and_drift_is_reverted_on_kafka, .init = setup, .fini = teardown, .timeout = 150)
{
    tk_proc op;
    start_operator(&op, NULL, fast_measure);   /* reconciled every second: drift shows within seconds */
    apply_pipeline("kept", 2, "  kafka:\n    partitions: 2\n    config: {retention.ms: 86400000, compression.type: zstd, "
                   "max.message.bytes: \"2000000\"}");
    char topic[160], dlq[170];
    snprintf(topic, sizeof topic, "forms.%s.kept", ns);
    snprintf(dlq, sizeof dlq, "%s.dlq", topic);
    topic_config_until(15, topic, "retention.ms", "86400000 dynamic");
    topic_config_until(5, topic, "compression.type", "zstd dynamic");
    topic_config_until(5, topic, "max.message.bytes", "2000000 dynamic");
    topic_config_until(5, dlq, "retention.ms", "2592000000 dynamic");   /* its own, longer retention */
    topic_config_until(5, dlq, "compression.type", "zstd dynamic");
    topic_config_until(5, dlq, "max.message.bytes", "2000000 dynamic");
    /* a task's dead-letter topic is created with the pipeline's dead-letter configs */
    apply_task("keeper", "kept", "  webhook: {url: 'https://hooks.example.com/x'}");
    char task_dlq[200];
    snprintf(task_dlq, sizeof task_dlq, "%s.keeper.dlq", topic);
    topic_config_until(15, task_dlq, "retention.ms", "2592000000 dynamic");
    topic_config_until(5, task_dlq, "compression.type", "zstd dynamic");

    /* by hand: a value changed, an allowlisted key added, another config added */
    set_topic_configs_by_hand(topic, (const char *const[]){"retention.ms", "1000", "compression.type", "zstd",
                                                           "max.message.bytes", "2000000", "retention.bytes", "5000",
                                                           "flush.messages", "777", NULL});
    double took = 0, t0 = tk_now();
    topic_config_until(15, topic, "retention.ms", "86400000 dynamic");
    took = tk_now() - t0;
    topic_config_until(5, topic, "retention.bytes", "-1 default");         /* not in the spec: removed */
    topic_config_until(5, topic, "flush.messages", "777 dynamic");        /* not formpipe's: kept */
    cr_log_info("topic config drift reverted in %.1f s", took);
    tk_sh_until(10, "TopicConfigured", "kubectl get events -n %s --field-selector involvedObject.name=kept,reason=TopicConfigured "
                "-o jsonpath='{.items[0].reason}'", ns);

    /* a spec change follows; a removed key goes back to the broker's default */
    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl patch -n %s fp kept --type=json -p '[{\"op\":\"replace\",\"path\":\"/spec/kafka/config\","
                             "\"value\":{\"retention.ms\":3600000}},{\"op\":\"add\",\"path\":\"/spec/kafka/deadLetterConfig\","
                             "\"value\":{\"retention.ms\":-1}}]'", ns), 0, "%s", out);
    free(out);
    topic_config_until(15, topic, "retention.ms", "3600000 dynamic");
    topic_config_until(5, topic, "compression.type", "producer default");
    topic_config_until(5, dlq, "retention.ms", "-1 dynamic");

    /* a config Kafka would accept but every write would fail on: refused by the operator */
    cr_assert_eq(tk_sh(&out, "kubectl patch -n %s fp kept --type=merge -p '{\"spec\":{\"kafka\":{\"config\":{\"min.insync.replicas\":2}}}}'", ns), 0, "%s", out);
    free(out);
    tk_sh_until(15, "InvalidSpec", "kubectl get -n %s fp kept -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    char *msg = get("fp kept", "{.status.conditions[?(@.type==\"Ready\")].message}");
    cr_assert_not_null(strstr(msg, "min.insync.replicas: 2 is above the replication factor 1"), "%s", msg);
    free(msg);
    topic_config_until(5, topic, "min.insync.replicas", "1 default");
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* When the operator last changed each of the pipeline's six children (its field
 * manager's time), for "nothing of the pipeline's was touched". Not resourceVersions:
 * the controllers' own status writes (a CronJob's lastScheduleTime every minute, a
 * Deployment's rollout status) change those whatever the operator does. */
static char *pipeline_children_versions(const char *pipeline)
{
    char *out;
    tk_sh(&out, "kubectl get -n %s configmap/%s-form deployment/%s-ingest service/%s-ingest ingress/%s-ingest "
          "deployment/%s-consumer cronjob/%s-flush -o jsonpath='{range .items[*]}{.metadata.name}="
          "{.metadata.managedFields[?(@.manager==\"formpipe-operator\")].time}{\" \"}{end}'",
          ns, pipeline, pipeline, pipeline, pipeline, pipeline, pipeline);
    return out;
}

Test(tasks, lifecycle_deployment_dead_letter_topic_update_and_delete, .init = setup, .fini = teardown, .timeout = 150)
{
    tk_proc op;
    start_operator(&op, NULL, (const char *const[]){"--task-image", "formpipe/formpipe-task:test", "--lag-interval", "1s", NULL});
    apply_pipeline("orders", 3, NULL);
    tk_sh_until(15, "orders-flush", "kubectl get -n %s cronjob orders-flush -o jsonpath='{.metadata.name}'", ns);
    tk_sh_until(15, "True", "kubectl get -n %s fp orders -o jsonpath='%s'", ns, condition("TopicReady"));
    sleep(2);   /* the pipeline's own reconciles settle */
    char *before = pipeline_children_versions("orders");
    apply_task("confirm", "orders", "  webhook: {url: 'https://hooks.example.com/a', timeoutSeconds: 5, concurrency: 8}\n  maxAttempts: 4");
    tk_sh_until(15, "confirm-task", "kubectl get -n %s deployment confirm-task -o jsonpath='{.metadata.name}'", ns);
    char want[1024];
    snprintf(want, sizeof want, "[\"--kind=webhook\",\"--topic=forms.%s.orders\",\"--group=formpipe.%s.orders.confirm\","
             "\"--dlq-topic=forms.%s.orders.confirm.dlq\",\"--max-attempts=4\",\"--concurrency=8\",\"--backoff-initial=1000ms\","
             "\"--backoff-max=300s\",\"--admin-port=9090\","
             "\"--webhook-url=https://hooks.example.com/a\",\"--webhook-timeout=5s\",\"--webhook-mode=structured\"]",
             ns, ns, ns);
    char *args = get("deployment confirm-task", "{.spec.template.spec.containers[0].args}");
    cr_assert_str_eq(args, want);
    free(args);
    char *shape = get("deployment confirm-task", "{.spec.template.spec.containers[0].image} {.spec.template.metadata.labels.app\\.kubernetes\\.io/component} {.spec.template.metadata.labels.formpipe\\.io/pipeline} {.spec.template.metadata.labels.formpipe\\.io/task} {.metadata.ownerReferences[0].kind} {.spec.template.spec.containers[0].env[?(@.name==\"FORMPIPE_KAFKA_BOOTSTRAP\")].value}");
    snprintf(want, sizeof want, "formpipe/formpipe-task:test task orders confirm FormTask %s", tk_env("FORMPIPE_KAFKA_BOOTSTRAP"));
    cr_assert_str_eq(shape, want);
    free(shape);
    char dlq[192];
    snprintf(dlq, sizeof dlq, "forms.%s.orders.confirm.dlq", ns);
    tk_sh_until(10, "orders FormPipeline true", "kubectl get -n %s ft confirm -o jsonpath='{.metadata.ownerReferences[0].name} {.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].controller}'", ns);
    cr_assert_eq(topic_partitions(dlq), 3, "the dead-letter topic has the topic's partitions");
    tk_sh_until(10, "webhook Deploying", "kubectl get -n %s ft confirm -o jsonpath='{.status.kind} {.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    /* pods Ready (no kubelet): the task is Ready */
    tk_sh_until(30, "1", "kubectl get pods -n %s -l formpipe.io/task=confirm --no-headers | wc -l", ns);
    mark_pods_ready("formpipe.io/task=confirm");
    tk_sh_until(30, "True Running", "kubectl get -n %s ft confirm -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}'", ns);

    /* a new URL reaches the Deployment; the pipeline's children are untouched */
    apply_task("confirm", "orders", "  webhook: {url: 'https://hooks.example.com/b', timeoutSeconds: 5, concurrency: 8}\n  maxAttempts: 4");
    tk_sh_until(10, "--webhook-url=https://hooks.example.com/b", "kubectl get -n %s deployment confirm-task -o jsonpath='{.spec.template.spec.containers[0].args[9]}'", ns);
    char *after = pipeline_children_versions("orders");
    cr_assert_str_eq(after, before, "adding and changing a task touched the pipeline's children");
    free(after);

    /* the dead-letter topic deleted by hand: reported and created again */
    tk_topic_delete(dlq);
    tk_sh_until(20, "DeadLetterTopicMissing", "kubectl get -n %s ft confirm -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].reason}'", ns);
    cr_assert_eq(topic_partitions(dlq), 3, "recreated with the topic's partitions");
    tk_sh_until(5, "DeadLetterTopicRecreated", "kubectl get events -n %s --field-selector involvedObject.name=confirm,reason=DeadLetterTopicRecreated -o jsonpath='{.items[0].reason}'", ns);

    /* the pipeline cannot be changed */
    char *out;
    cr_assert_neq(tk_sh(&out, "kubectl patch -n %s ft confirm --type=merge -p '{\"spec\":{\"pipeline\":\"other\"}}'", ns), 0);
    cr_assert_not_null(strstr(out, "pipeline cannot be changed"), "%s", out);
    free(out);

    /* deleted: the Deployment (garbage collection) and the dead-letter topic go, the pipeline's children stay */
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s ft confirm --timeout=30s", ns), 0, "%s", out);
    free(out);
    cr_assert_eq(topic_partitions(dlq), 0, "the dead-letter topic went with the task");
    cr_assert_eq(tk_sh(&out, "kubectl get pods -n %s -l formpipe.io/task=confirm -o name", ns), 0);
    cr_assert_str_eq(out, "", "the task's pods stopped before its dead-letter topic went");
    free(out);
    tk_sh_until(30, "", "kubectl get -n %s deployments -l formpipe.io/task=confirm -o name", ns);
    after = pipeline_children_versions("orders");
    cr_assert_str_eq(after, before, "deleting a task touched the pipeline's children");
    free(after);
    free(before);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* An email task: formpipe-task --kind=email with its templates, the SMTP Secret mounted
 * whole and the pipeline's Redis (sentinels, master, password Secret) for the
 * sent-records; kubectl shows the kind; the CRD refuses two kinds and a line break in
 * the subject at admission. */
Test(tasks, email_deployment_mounts_the_smtp_secret_and_the_pipelines_redis, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_operator(&op, NULL, (const char *const[]){"--task-image", "formpipe/formpipe-task:test", NULL});
    apply_pipeline("signup", 2, "  redis: {passwordSecret: {name: redis-auth}, minReplicasAck: 2}");
    apply_task("welcome", "signup", "  email:\n    smtpSecretRef: {name: smtp}\n    from: 'Forms <forms@example.org>'\n"
               "    toField: email\n    subject: 'Thanks {{name}}'\n    text: 'Hello {{name}}'\n    html: '<p>{{name}}</p>'\n"
               "    ratePerSecond: 3");
    tk_sh_until(20, "welcome-task", "kubectl get -n %s deployment welcome-task -o jsonpath='{.metadata.name}'", ns);
    char want[2048];
    snprintf(want, sizeof want, "[\"--kind=email\",\"--topic=forms.%s.signup\",\"--group=formpipe.%s.signup.welcome\","
             "\"--dlq-topic=forms.%s.signup.welcome.dlq\",\"--max-attempts=10\",\"--concurrency=32\",\"--backoff-initial=1000ms\","
             "\"--backoff-max=300s\",\"--admin-port=9090\",\"--email-smtp-dir=/etc/formpipe/smtp\",\"--email-pipeline=%s/signup\","
             "\"--email-task=welcome\",\"--email-from=Forms \\u003cforms@example.org\\u003e\",\"--email-to-field=email\","
             "\"--email-subject=Thanks {{name}}\",\"--email-text=Hello {{name}}\",\"--email-html=\\u003cp\\u003e{{name}}\\u003c/p\\u003e\","
             "\"--email-rate=3\",\"--email-timeout=30s\",\"--email-max-connections=4\",\"--email-sent-ttl=168h\","
             "\"--redis-sentinels=%s\",\"--redis-master=%s\",\"--min-replicas-ack=2\","
             "\"--redis-password-file=/etc/formpipe/redis/password\"]",
             ns, ns, ns, ns, tk_env("FORMPIPE_REDIS_SENTINELS"), tk_env("FORMPIPE_REDIS_MASTER"));
    char *args = get("deployment welcome-task", "{.spec.template.spec.containers[0].args}");
    cr_assert_str_eq(args, want);
    free(args);
    char *vols = get("deployment welcome-task", "{range .spec.template.spec.volumes[*]}{.name}={.secret.secretName} {end}"
                     "{range .spec.template.spec.containers[0].volumeMounts[*]}{.name}:{.mountPath} {end}");
    cr_assert_str_eq(vols, "smtp=smtp redis-password=redis-auth smtp:/etc/formpipe/smtp redis-password:/etc/formpipe/redis");
    free(vols);
    tk_sh_until(10, "email", "kubectl get -n %s ft welcome --no-headers -o custom-columns=KIND:.status.kind", ns);
    char *out = NULL;
    tk_sh(&out, "kubectl get -n %s ft welcome", ns);
    cr_assert_not_null(strstr(out, "KIND") && strstr(out, "email"), "the Kind column: %s", out);
    free(out);

    cr_assert_neq(tk_sh(&out, "kubectl apply -n %s -f - <<'YAML'\napiVersion: formpipe.io/v1alpha1\nkind: FormTask\n"
                        "metadata: {name: two}\nspec:\n  pipeline: signup\n  webhook: {url: 'https://h.example.com/'}\n"
                        "  email: {smtpSecretRef: {name: s}, from: f@example.org, toField: e, subject: s, text: t}\nYAML", ns), 0);
    cr_assert_not_null(strstr(out, "exactly one kind must be set - webhook, email, moderate or container"), "%s", out);
    free(out);
    cr_assert_neq(tk_sh(&out, "kubectl apply -n %s -f - <<'YAML'\napiVersion: formpipe.io/v1alpha1\nkind: FormTask\n"
                        "metadata: {name: crlf}\nspec:\n  pipeline: signup\n"
                        "  email: {smtpSecretRef: {name: s}, from: f@example.org, toField: e, subject: \"a\\r\\nBcc: x@example.org\", text: t}\nYAML", ns), 0);
    cr_assert_not_null(strstr(out, "subject cannot hold a line break"), "%s", out);
    free(out);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(tasks, waits_for_its_pipeline_and_goes_with_it, .init = setup, .fini = teardown, .timeout = 150)
{
    tk_proc op;
    start_operator(&op, NULL, NULL);
    apply_task("early", "later", "  container: {image: 'team/hook:1', args: [--fast], env: [{name: MODE, value: strict}]}");
    tk_sh_until(10, "False PipelineNotFound", "kubectl get -n %s ft early -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    char *out;
    tk_sh(&out, "kubectl get -n %s deployments -o name", ns);
    cr_assert_str_eq(out, "", "nothing is created without the pipeline");
    free(out);
    char *wide = NULL;
    tk_sh(&wide, "kubectl get -n %s ft early -o wide --no-headers", ns);
    cr_assert_not_null(strstr(wide, "PipelineNotFound"), "kubectl get -o wide shows why: %s", wide);
    free(wide);
    apply_pipeline("later", 2, NULL);
    tk_sh_until(20, "early-task", "kubectl get -n %s deployment early-task -o jsonpath='{.metadata.name}'", ns);
    char want[512];
    snprintf(want, sizeof want, "team/hook:1 --fast formpipe.%s.later.early strict", ns);
    char *env = get("deployment early-task", "{.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].args[0]} {.spec.template.spec.containers[0].env[?(@.name==\"FORMPIPE_GROUP\")].value} {.spec.template.spec.containers[0].env[?(@.name==\"MODE\")].value}");
    cr_assert_str_eq(env, want);
    free(env);
    tk_sh_until(10, "Deploying", "kubectl get -n %s ft early -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    /* a task reading another task's stream: missing, then one that writes none */
    apply_task("reader", "later", "  source: {task: moderate}\n  webhook: {url: 'https://hooks.example.com/r'}");
    tk_sh_until(10, "SourceTaskNotFound", "kubectl get -n %s ft reader -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    apply_task("moderate", "later", "  webhook: {url: 'https://hooks.example.com/m'}");
    tk_sh_until(10, "SourceTaskHasNoStream", "kubectl get -n %s ft reader -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    cr_assert_eq(tk_sh(&out, "kubectl get -n %s deployment reader-task", ns) != 0, 1, "no Deployment for a task with nothing to read");
    free(out);
    /* the pipeline owns the task: deleting it deletes the task (controller-manager's
     * garbage collector), whose finalizer removes its dead-letter topic */
    char *uid = get("fp later", "{.metadata.uid}");
    char *owner = get("ft early", "{.metadata.ownerReferences[0].uid}");
    cr_assert_str_eq(owner, uid);
    free(owner);
    free(uid);
    char dlq[192];
    snprintf(dlq, sizeof dlq, "forms.%s.later.early.dlq", ns);
    cr_assert_eq(topic_partitions(dlq), 2);
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s fp later --timeout=30s", ns), 0, "%s", out);
    free(out);
    tk_sh_until(60, "", "kubectl get -n %s ft -o name", ns);
    cr_assert_eq(topic_partitions(dlq), 0, "the task's dead-letter topic went with it");
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

Test(tasks, replicas_follow_the_task_groups_lag_up_to_the_partitions, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    int port = start_operator(&op, NULL, fast_measure);
    apply_pipeline("busy", 4, "  progressDeadlineSeconds: 10");
    tk_sh_until(15, "True", "kubectl get -n %s fp busy -o jsonpath='%s'", ns, condition("TopicReady"));
    apply_task("hook", "busy", "  webhook: {url: 'https://receiver.example.com/'}\n  scaling: {minReplicas: 1, lagPerReplica: 100}");
    tk_sh_until(15, "1", "kubectl get -n %s deployment hook-task -o jsonpath='{.spec.replicas}'", ns);
    char topic[160];
    snprintf(topic, sizeof topic, "forms.%s.busy", ns);
    produce_n(topic, 250);   /* no task consumer runs: the group's lag is all of it */
    double up = tk_sh_until(30, "3", "kubectl get -n %s deployment hook-task -o jsonpath='{.spec.replicas}'", ns);
    cr_log_info("lag 250 / 100 per replica -> 3 replicas after %.1f s", up);
    tk_sh_until(10, "250 0 0", "kubectl get -n %s ft hook -o jsonpath='{.status.lag} {.status.delivered} {.status.deadLettered}'", ns);
    produce_n(topic, 1000);
    tk_sh_until(30, "4", "kubectl get -n %s deployment hook-task -o jsonpath='{.spec.replicas}'", ns);
    sleep(3);
    char *r = get("deployment hook-task", "{.spec.replicas}");
    cr_assert_str_eq(r, "4", "never more replicas than partitions");
    free(r);
    /* nothing commits: after the pipeline's progressDeadlineSeconds the task says so */
    tk_sh_until(30, "False NoProgress", "kubectl get -n %s ft hook -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].status} {.status.conditions[?(@.type==\"Progressing\")].reason}'", ns);
    char group[160];
    snprintf(group, sizeof group, "formpipe.%s.busy.hook", ns);
    char series[256];
    snprintf(series, sizeof series, "formpipe_formtask_progressing{namespace=\"%s\",pipeline=\"busy\",task=\"hook\"}", ns);
    cr_assert_eq(metric_value(port, series), 0, "the operator's /metrics says so too");
    snprintf(series, sizeof series, "formpipe_formtask_lag{namespace=\"%s\",pipeline=\"busy\",task=\"hook\"}", ns);
    cr_assert_eq(metric_value(port, series), 1250);
    commit_offsets(group, topic, 4, 0);   /* the task caught up */
    tk_sh_until(20, "True 0 1250", "kubectl get -n %s ft hook -o jsonpath='{.status.conditions[?(@.type==\"Progressing\")].status} {.status.lag} {.status.delivered}'", ns);
    snprintf(series, sizeof series, "formpipe_formtask_delivered{namespace=\"%s\",pipeline=\"busy\",task=\"hook\"}", ns);
    cr_assert_eq(metric_value(port, series), 1250);
    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s ft hook --timeout=60s", ns), 0, "%s", out);
    free(out);
    for (int i = 0; i < 100 && metric_value(port, series) != -1; i++)
        usleep(100000);
    cr_assert_eq(metric_value(port, series), -1, "a deleted task's series are forgotten");
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* A moderate task: its output stream created with the topic's partitions and grown with
 * it, its word list ConfigMap mounted whole, a task reading the stream (with a filter)
 * becomes Ready, and the stream goes with the task. */
Test(tasks, moderate_writes_a_stream_another_task_reads, .init = setup, .fini = teardown, .timeout = 150)
{
    tk_proc op;
    char *out;
    start_operator(&op, NULL, (const char *const[]){"--task-image", "formpipe/formpipe-task:test", "--lag-interval", "1s", NULL});
    apply_pipeline("reviews", 3, NULL);
    tk_sh_until(15, "True", "kubectl get -n %s fp reviews -o jsonpath='%s'", ns, condition("TopicReady"));
    cr_assert_eq(tk_sh(&out, "kubectl create configmap -n %s words --from-literal=words.txt=darn", ns), 0, "%s", out);
    free(out);
    apply_task("check", "reviews", "  moderate: {fields: [comments], wordsConfigMap: {name: words}, threshold: 2}");
    tk_sh_until(15, "check-task", "kubectl get -n %s deployment check-task -o jsonpath='{.metadata.name}'", ns);
    char stream[192], want[1024];
    snprintf(stream, sizeof stream, "forms.%s.reviews.check", ns);
    cr_assert_eq(topic_partitions(stream), 3, "the output stream has the topic's partitions");
    snprintf(want, sizeof want, "[\"--kind=moderate\",\"--topic=forms.%s.reviews\",\"--group=formpipe.%s.reviews.check\","
             "\"--dlq-topic=forms.%s.reviews.check.dlq\",\"--output-topic=%s\",\"--admin-port=9090\","
             "\"--moderate-words-file=/etc/formpipe/words/words.txt\",\"--moderate-threshold=2\",\"--moderate-field=comments\"]",
             ns, ns, ns, stream);
    char *args = get("deployment check-task", "{.spec.template.spec.containers[0].args}");
    cr_assert_str_eq(args, want);
    free(args);
    char *mount = get("deployment check-task", "{.spec.template.spec.volumes[?(@.name==\"words\")].configMap.name} {.spec.template.spec.containers[0].volumeMounts[?(@.name==\"words\")].mountPath}");
    cr_assert_str_eq(mount, "words /etc/formpipe/words");
    free(mount);
    tk_sh_until(10, stream, "kubectl get -n %s ft check -o jsonpath='{.status.outputTopic}'", ns);

    /* a webhook on the stream that only receives flagged submissions */
    apply_task("review-hook", "reviews", "  source: {task: check}\n  filter: [{path: moderation.flagged, equals: true}]\n"
               "  webhook: {url: 'https://hooks.example.com/flagged'}");
    tk_sh_until(15, "review-hook-task", "kubectl get -n %s deployment review-hook-task -o jsonpath='{.metadata.name}'", ns);
    snprintf(want, sizeof want, "--topic=%s --filter=moderation.flagged=true", stream);
    char *hook = get("deployment review-hook-task", "{.spec.template.spec.containers[0].args[1]} {.spec.template.spec.containers[0].args[9]}");
    cr_assert_str_eq(hook, want);
    free(hook);
    tk_sh_until(30, "1", "kubectl get pods -n %s -l formpipe.io/task=check --no-headers | wc -l", ns);
    tk_sh_until(30, "1", "kubectl get pods -n %s -l formpipe.io/task=review-hook --no-headers | wc -l", ns);
    mark_pods_ready("formpipe.io/task=check");
    mark_pods_ready("formpipe.io/task=review-hook");
    tk_sh_until(30, "True Running", "kubectl get -n %s ft review-hook -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    tk_sh_until(30, "True Running", "kubectl get -n %s ft check -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}'", ns);

    /* refused at admission: filter on a container task, two kinds */
    cr_assert_neq(tk_sh(&out, "kubectl apply -n %s -f - <<'YAML'\napiVersion: formpipe.io/v1alpha1\nkind: FormTask\n"
                        "metadata: {name: bad}\nspec:\n  pipeline: reviews\n  container: {image: x}\n"
                        "  filter: [{path: a, equals: 1}]\nYAML", ns), 0);
    cr_assert_not_null(strstr(out, "filter is for the built-in kinds"), "%s", out);
    free(out);

    /* the pipeline grows: so does the stream */
    apply_pipeline("reviews", 5, NULL);
    double t0 = tk_now();
    while (topic_partitions(stream) != 5 && tk_now() - t0 < 20)
        usleep(200 * 1000);
    cr_assert_eq(topic_partitions(stream), 5, "the stream grew with the topic");

    /* deleted: the stream goes after the pods; its reader waits for it again */
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s ft check --timeout=30s", ns), 0, "%s", out);
    free(out);
    cr_assert_eq(topic_partitions(stream), 0, "the output stream went with the task");
    tk_sh_until(20, "SourceTaskNotFound", "kubectl get -n %s ft review-hook -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* ---- mode: Shared (shared.h): one set of workloads per namespace ---- */

/* An operator for the shared tests: measures every second, reads Redis, switches modes
 * after switch_delay, runs ingest_replicas shared ingest pods. */
static void start_shared_operator(tk_proc *op, const char *switch_delay, const char *ingest_replicas)
{
    start_operator(op, NULL, (const char *const[]){"--lag-interval", "1s", "--shared-switch-delay", switch_delay,
                                                  "--redis-password-file", tk_env("FORMPIPE_REDIS_PASSWORD_FILE"),
                                                  "--shared-ingest-replicas", ingest_replicas, NULL});
}

static const char *const shared_objects[] = {"configmap/formpipe-shared-forms", "deployment/formpipe-shared-ingest",
                                             "service/formpipe-shared-ingest", "deployment/formpipe-shared-consumer",
                                             "cronjob/formpipe-shared-flush", "poddisruptionbudget/formpipe-shared-ingest",
                                             "poddisruptionbudget/formpipe-shared-consumer"};
#define NSHARED (sizeof shared_objects / sizeof shared_objects[0])

/* The members the shared ConfigMap lists, and its data keys. */
static void expect_members(double timeout_s, const char *members, const char *keys)
{
    tk_sh_until(timeout_s, members, "kubectl get -n %s configmap formpipe-shared-forms -o "
                "jsonpath='{.metadata.annotations.formpipe\\.io/pipelines}'", ns);
    char *out;
    tk_sh(&out, "kubectl get -n %s configmap formpipe-shared-forms -o json | python3 -c "
          "'import json,sys; print(\",\".join(sorted(json.load(sys.stdin)[\"data\"])))'", ns);
    cr_assert_str_eq(out, keys, "ConfigMap keys");
    free(out);
}

Test(shared, pipelines_of_a_namespace_share_one_set_of_workloads_and_take_them_along, .init = setup, .fini = teardown,
     .timeout = 150)
{
    tk_proc op;
    start_shared_operator(&op, "90s", "2");
    apply_pipeline("alpha", 2, "  mode: Shared");
    apply_pipeline("beta", 1, "  mode: Shared");
    for (size_t i = 0; i < NSHARED; i++)
        tk_sh_until(15, "true", "kubectl get -n %s %s -o jsonpath='{.metadata.labels.formpipe\\.io/shared}'", ns,
                    shared_objects[i]);
    expect_members(15, "alpha,beta", "alpha.json,beta.json");
    char *gen0 = get("deployment formpipe-shared-ingest formpipe-shared-consumer", "{.items[*].metadata.generation}");
    apply_pipeline("gamma", 3, "  mode: Shared");
    expect_members(15, "alpha,beta,gamma", "alpha.json,beta.json,gamma.json");

    /* each pipeline: its topic and Ingress (to the shared Service), nothing else of its own */
    for (const char *const *p = (const char *const[]){"alpha", "beta", "gamma", NULL}; *p; p++) {
        tk_sh_until(15, "Shared formpipe-shared-ingest", "kubectl get -n %s fp %s -o jsonpath='{.status.mode} '"
                    "&& kubectl get -n %s ingress %s-ingest -o jsonpath='{.spec.rules[0].http.paths[0].backend.service.name}'",
                    ns, *p, ns, *p);
        char *own = NULL;
        tk_sh(&own, "kubectl get -n %s deployments,cronjobs,configmaps -l app.kubernetes.io/instance=%s -o name", ns, *p);
        cr_assert_str_eq(own, "", "%s has no workloads of its own: %s", *p, own);
        free(own);
        char topic[160];
        snprintf(topic, sizeof topic, "forms.%s.%s", ns, *p);
        cr_assert_gt(topic_partitions(topic), 0, "%s's topic exists", *p);
    }
    /* the form file: the compiled form plus what the shared services read */
    char *shared = NULL, want[1024];
    tk_sh(&shared, "kubectl get -n %s configmap formpipe-shared-forms -o json | python3 -c "
          "'import json,sys; f=json.loads(json.load(sys.stdin)[\"data\"][\"gamma.json\"]); s=f[\"shared\"]; "
          "print(f[\"name\"], f[\"topic\"], s[\"group\"], s[\"dedicatedGroup\"], s[\"dlqTopic\"], s[\"ingest\"][\"maxBodyBytes\"], "
          "s[\"sheets\"][\"spreadsheetIds\"][0], s[\"sheets\"][\"sheet\"], s[\"sheets\"][\"credentials\"])'", ns);
    snprintf(want, sizeof want, "gamma forms.%s.gamma formpipe.%s.formpipe-shared formpipe.%s.gamma forms.%s.gamma.dlq "
             "65536 s-%s-gamma Responses google-sa/key.json", ns, ns, ns, ns, ns);
    cr_assert_str_eq(shared, want);
    free(shared);
    /* a member more changed no pod template: nothing restarted */
    char *gen1 = get("deployment formpipe-shared-ingest formpipe-shared-consumer", "{.items[*].metadata.generation}");
    cr_assert_str_eq(gen1, gen0, "the shared Deployments' generations");
    free(gen0);
    free(gen1);
    char *args = get("deployment formpipe-shared-consumer", "{.spec.template.spec.containers[0].args[0]} {.spec.template.spec.containers[0].args[1]}");
    snprintf(want, sizeof want, "--forms-dir=/etc/formpipe/forms --group=formpipe.%s.formpipe-shared", ns);
    cr_assert_str_eq(args, want);
    free(args);
    char *cred = get("cronjob formpipe-shared-flush", "{.spec.jobTemplate.spec.template.spec.volumes[?(@.name==\"credentials\")].projected.sources[*].secret.name} "
                     "{.spec.jobTemplate.spec.template.spec.volumes[?(@.name==\"credentials\")].projected.sources[*].secret.items[*].path}");
    cr_assert_str_eq(cred, "google-sa google-sa/key.json");
    free(cred);
    /* the pods pass Pod Security "restricted" (the namespace enforces it) */
    tk_sh_until(30, "2", "kubectl get pods -n %s -l app.kubernetes.io/instance=formpipe-shared,app.kubernetes.io/component=ingest -o name | wc -l", ns);

    char *out;
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s fp beta --timeout=30s", ns), 0, "%s", out);
    free(out);
    expect_members(15, "alpha,gamma", "alpha.json,gamma.json");
    cr_assert_eq(tk_sh(&out, "kubectl delete -n %s fp alpha gamma --timeout=30s", ns), 0, "%s", out);
    free(out);
    tk_sh_until(30, "", "kubectl get -n %s deployments,services,ingresses,cronjobs,configmaps,poddisruptionbudgets -l formpipe.io/shared=true -o name", ns);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* #19: without spec.mode a new pipeline runs Shared (the operator's default), unless its
 * spec needs pods of its own; a running pipeline keeps its mode when the default changes. */
Test(shared, a_pipeline_without_mode_runs_shared_unless_it_needs_its_own_pods, .init = setup, .fini = teardown,
     .timeout = 120)
{
    tk_proc op;
    default_mode = "Shared";
    start_shared_operator(&op, "90s", "1");
    apply_pipeline("plain", 1, NULL);
    apply_pipeline("podded", 1, "  consumer: {pod: {labels: {team: podded}}}");
    tk_sh_until(20, "Shared formpipe-shared-ingest", "kubectl get -n %s fp plain -o jsonpath='{.status.mode} '"
                "&& kubectl get -n %s ingress plain-ingest -o jsonpath='{.spec.rules[0].http.paths[0].backend.service.name}'",
                ns, ns);
    expect_members(15, "plain", "plain.json");
    tk_sh_until(20, "Dedicated deployment.apps/podded-consumer deployment.apps/podded-ingest",
                "echo $(kubectl get -n %s fp podded -o jsonpath='{.status.mode}') "
                "$(kubectl get -n %s deployments -l app.kubernetes.io/instance=podded -o name | sort)", ns, ns);
    char *own = NULL;
    tk_sh(&own, "kubectl get -n %s deployments,cronjobs -l app.kubernetes.io/instance=plain -o name", ns);
    cr_assert_str_eq(own, "", "plain has no workloads of its own: %s", own);
    free(own);
    char *spec_mode = get("fp plain podded", "{.items[*].spec.mode}");
    cr_assert_str_eq(spec_mode, "", "no mode was written into the specs: %s", spec_mode);
    free(spec_mode);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);

    /* the default changes: both keep the mode they run in */
    default_mode = "Dedicated";
    start_shared_operator(&op, "90s", "1");
    sleep(3);
    tk_sh_until(15, "Shared Dedicated", "echo $(kubectl get -n %s fp plain podded -o jsonpath='{.items[*].status.mode}')", ns);
    expect_members(5, "plain", "plain.json");
    own = NULL;
    tk_sh(&own, "kubectl get -n %s deployments -l app.kubernetes.io/instance=plain -o name", ns);
    cr_assert_str_eq(own, "", "plain still has no workloads of its own: %s", own);
    free(own);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* What admission refuses with mode: Shared. */
struct refusal { const char *name, *spec; };

static struct refusal refusals[] = {
    {"own-kafka", "  mode: Shared\n  kafka: {bootstrapServers: 'elsewhere:9092'}"},
    {"own-kafka-config", "  mode: Shared\n  kafka: {configSecret: {name: kafka-client}}"},
    {"own-redis", "  mode: Shared\n  redis: {sentinels: 'r:26379', masterName: m}"},
    {"own-pods", "  mode: Shared\n  consumer: {pod: {nodeSelector: {disk: ssd}}}"},
    {"own-autoscaling", "  mode: Shared\n  ingest: {autoscaling: {maxReplicas: 4, targetCPUUtilizationPercentage: 80}}"},
    {"formpipe-shared", "  mode: Dedicated"},
};

Test(shared, admission_refuses_what_shared_pods_cannot_have, .init = setup, .fini = teardown, .timeout = 60)
{
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        char *out;
        int rc = tk_sh(&out, "kubectl apply -n %s -f - <<'YAML'\n"
                       "apiVersion: formpipe.io/v1alpha1\nkind: FormPipeline\nmetadata: {name: %s}\n"
                       "spec:\n  form: {fields: [{name: a, type: string}]}\n  sheets: {spreadsheetId: s1}\n%s\nYAML",
                       ns, refusals[i].name, refusals[i].spec);
        cr_expect_neq(rc, 0, "%s was accepted", refusals[i].name);
        const char *why = strcmp(refusals[i].name, "formpipe-shared") == 0 ? "reserved" : "use mode: Dedicated";
        cr_expect(strstr(out, why) != NULL, "%s: the refusal says \"%s\": %s", refusals[i].name, why, out);
        free(out);
    }
}

Test(shared, switching_modes_moves_the_ingress_only_when_the_other_side_serves, .init = setup, .fini = teardown,
     .timeout = 180)
{
    tk_proc op;
    start_shared_operator(&op, "5s", "1");   /* its own ingest has 2 */
    apply_pipeline("swing", 2, NULL);
    tk_sh_until(15, "swing-ingest Dedicated", ROUTE_AND_MODE, ns, "swing", ns, "swing");
    tk_sh_until(15, "swing-consumer", "kubectl get -n %s deployment swing-consumer -o jsonpath='{.metadata.name}'", ns);
    char *prev = get("deployment swing-consumer", "{.spec.template.spec.containers[0].args}");
    char want[256];
    snprintf(want, sizeof want, "\"--previous-group=formpipe.%s.formpipe-shared\"", ns);
    cr_assert(strstr(prev, want), "a dedicated consumer starts where the shared group got to: %s", prev);
    free(prev);

    /* Dedicated -> Shared: the form into the shared ConfigMap, its consumer and flush go at
     * once, the Ingress waits for the delay and the shared ingest */
    apply_pipeline("swing", 2, "  mode: Shared");
    expect_members(15, "swing", "swing.json");
    tk_sh_until(15, "", "kubectl get -n %s deployment/swing-consumer cronjob/swing-flush --ignore-not-found -o name", ns);
    double t0 = tk_now();
    char *replicas = get("deployment swing-ingest", "{.spec.replicas}");
    cr_assert_str_eq(replicas, "2", "its own ingest keeps its replicas while the switch waits");
    free(replicas);
    char *route = NULL;
    tk_sh(&route, ROUTE_AND_MODE, ns, "swing", ns, "swing");
    cr_assert_str_eq(route, "swing-ingest Dedicated", "the shared ingest is not available yet");
    free(route);
    tk_sh_until(15, "1", "kubectl get pods -n %s -l app.kubernetes.io/instance=formpipe-shared,app.kubernetes.io/component=ingest -o name | wc -l | tr -d ' ' | sed 's/^[1-9][0-9]*$/1/'", ns);
    mark_pods_ready("app.kubernetes.io/instance=formpipe-shared");
    tk_sh_until(30, "formpipe-shared-ingest Shared", ROUTE_AND_MODE, ns, "swing", ns, "swing");
    double moved = tk_now();
    cr_assert_geq(moved - t0, 3.5, "the Ingress moved only after --shared-switch-delay (5s)");
    char *own = NULL;
    tk_sh(&own, "kubectl get -n %s deployment/swing-ingest service/swing-ingest --ignore-not-found -o name | wc -l", ns);
    cr_assert_str_eq(own, "2", "its own ingest drains while ingress controllers follow the Ingress");
    free(own);
    tk_sh_until(15, "", "kubectl get -n %s deployment/swing-ingest configmap/swing-form --ignore-not-found -o name", ns);
    cr_assert_geq(tk_now() - moved, 3.5, "its own ingest went only after the drain (--shared-switch-delay 5s)");

    /* Shared -> Dedicated: its own workloads first, the Ingress once its ingest serves,
     * then the form leaves the ConfigMap (and, the last member gone, the shared workloads) */
    apply_pipeline("swing", 2, "  mode: Dedicated");
    tk_sh_until(15, "swing-consumer swing-flush swing-ingest", "kubectl get -n %s deployment/swing-consumer cronjob/swing-flush deployment/swing-ingest --ignore-not-found -o jsonpath='{.items[*].metadata.name}'", ns);
    route = NULL;
    tk_sh(&route, ROUTE_AND_MODE, ns, "swing", ns, "swing");
    cr_assert_str_eq(route, "formpipe-shared-ingest Shared", "its own ingest is not available yet");
    free(route);
    tk_sh_until(15, "2", "kubectl get pods -n %s -l app.kubernetes.io/instance=swing,app.kubernetes.io/component=ingest -o name | wc -l | tr -d ' '", ns);
    mark_pods_ready("app.kubernetes.io/instance=swing,app.kubernetes.io/component=ingest");
    tk_sh_until(30, "swing-ingest Dedicated", ROUTE_AND_MODE, ns, "swing", ns, "swing");
    tk_sh_until(30, "", "kubectl get -n %s deployments,services,cronjobs,configmaps -l formpipe.io/shared=true -o name", ns);
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* Runs one Redis command (arguments as strings) through the environment's sentinels. */
static void redis_cmd(int argc, const char **argv)
{
    struct fp_redis *r = tk_redis();
    redisReply *reply = NULL;
    fp_error err = {0};
    cr_assert_eq(fp_redis_command(r, &reply, &err, argc, argv, NULL), 0, "%s", err.msg);
    cr_assert_neq(reply->type, REDIS_REPLY_ERROR, "%s", reply->str);
    freeReplyObject(reply);
    fp_redis_free(r);
}

Test(shared, the_flush_sleeps_while_every_buffer_is_empty_and_status_reads_redis, .init = setup, .fini = teardown,
     .timeout = 120)
{
    tk_proc op;
    start_shared_operator(&op, "90s", "2");
    apply_pipeline("quiet", 1, "  mode: Shared");
    apply_pipeline("busy", 1, "  mode: Shared");
    tk_sh_until(20, "true", "kubectl get -n %s cronjob formpipe-shared-flush -o jsonpath='{.spec.suspend}'", ns);

    char pending[256], rows[256], last[256];
    snprintf(pending, sizeof pending, "fp:{%s/busy}:pending", ns);
    snprintf(rows, sizeof rows, "fp:{%s/busy}:rows", ns);
    snprintf(last, sizeof last, "fp:{%s/busy}:lastflush", ns);
    redis_cmd(4, (const char *[]){"ZADD", pending, "1700000000000", "id-1"});
    redis_cmd(4, (const char *[]){"HSET", rows, "id-1", "[\"id-1\"]"});
    tk_sh_until(20, "false", "kubectl get -n %s cronjob formpipe-shared-flush -o jsonpath='{.spec.suspend}'", ns);
    tk_sh_until(20, "1 2023-11-14T22:13:20.000Z", "kubectl get -n %s fp busy -o jsonpath='{.status.flush.rowsWaiting} {.status.flush.oldestWaitingTime}'", ns);

    /* a run ended: its outcome per pipeline reaches status */
    redis_cmd(3, (const char *[]){"ZREM", pending, "id-1"});
    redis_cmd(16, (const char *[]){"HSET", last, "finished_ms", "1700000100000", "rows", "1", "rows_left", "0",
                                   "exit", "0", "error", "", "throttled", "0", "quota_wait_ms", "0"});
    tk_sh_until(20, "1 0 True", "kubectl get -n %s fp busy -o jsonpath='{.status.flush.lastRunRows} {.status.flush.rowsWaiting} %s'",
                ns, condition("Flushing"));
    tk_sh_until(20, "true", "kubectl get -n %s cronjob formpipe-shared-flush -o jsonpath='{.spec.suspend}'", ns);
    redis_cmd(2, (const char *[]){"DEL", last});
    redis_cmd(2, (const char *[]){"DEL", rows});
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}

/* The spreadsheets a member's form file names in the shared ConfigMap ("" when none). */
#define SHARED_SHEETS "kubectl get -n %s configmap formpipe-shared-forms -o json | python3 -c 'import json,sys; " \
    "f=json.loads(json.load(sys.stdin)[\"data\"][\"%s.json\"]); print(f[\"shared\"].get(\"sheets\", {}).get(\"sheet\", \"\"))'"

Test(shared, two_shared_pipelines_never_flush_one_tab, .init = setup, .fini = teardown, .timeout = 120)
{
    tk_proc op;
    start_shared_operator(&op, "90s", "2");
    char spec[200];
    snprintf(spec, sizeof spec, "  mode: Shared\n  sheets: {spreadsheetId: tab-%s, sheet: Responses}", ns);
    apply_pipeline("first", 1, spec);
    tk_sh_until(15, "Responses", SHARED_SHEETS, ns, "first");
    sleep(1);   /* creationTimestamp has seconds: the first is the older */
    snprintf(spec, sizeof spec, "  mode: Shared\n  sheets: {spreadsheetId: tab-%s, sheet: responses}", ns);
    apply_pipeline("second", 1, spec);
    tk_sh_until(15, "first,second", "kubectl get -n %s configmap formpipe-shared-forms -o "
                "jsonpath='{.metadata.annotations.formpipe\\.io/pipelines}'", ns);
    tk_sh_until(15, "", SHARED_SHEETS, ns, "second");   /* served and consumed, not flushed */
    tk_sh_until(15, "SheetInUse", "kubectl get -n %s fp second -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'", ns);
    /* the first moves to its own tab: the second is flushed again */
    snprintf(spec, sizeof spec, "  mode: Shared\n  sheets: {spreadsheetId: tab-%s, sheet: First}", ns);
    apply_pipeline("first", 1, spec);
    tk_sh_until(15, "responses", SHARED_SHEETS, ns, "second");
    cr_assert_eq(tk_stop(&op, SIGTERM, 10), 0);
}
