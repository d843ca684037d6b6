#!/usr/bin/env python3
"""End to end on one machine: kubectl apply of a FormPipeline on the real control plane,
the real operator (two replicas), the node harness running ingest/consumer/flush as
processes, real Kafka and Redis Sentinel, submissions over HTTP through nginx (the
Ingress), rows in the emulated sheet.
  1. apply -> 10,000 submissions -> flush Jobs -> the sheet holds exactly those rows,
     per-key order kept, header right;
  2. partitions 3 -> 6 -> six consumer processes share the group, totals still exact;
  3. form change (a field added): ingest pods roll, new submissions carry the new
     column, old rows untouched;
  4. a field removed while submissions flow: nothing is dead-lettered, the column stays
     (empty in new rows), the header only grows;
  5. the dead-letter topic deleted by hand and a poison message: Progressing False with
     the reason, then True again once it is back; the poison is a dead letter;
  6. a pipeline with a custom topic: the ingest produces to it, rows reach the sheet.
Run under scripts/testenv exec with the stack up (ctest fixture `stack`), or with
`scripts/stack up --real-node` (e2e.node.pipeline): the chart's operator and every pipeline
pod in containers on the real node."""
import json, os, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (check, condition, finish, flush_until, kafka_count, kafka_produce, kafka_topic, kubectl,
                 pipeline_yaml, post_all, ready, check_clean, sheet_values, stack, status, submission, until,
                 verify_sheet)

COLUMNS = ["name", "roll", "university", "cgpa", "gender", "age", "email", "mobile"]
N, KEYS = 10000, 200


def running_pods(ns, component):
    out = kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=%s" % component, "-o",
                  "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}")
    return [l.split()[0] for l in out.splitlines() if l.endswith("Running True")]


def main():
    ns = "e2e-%d" % os.getpid()
    # names unique per run: every pipeline's path lives on the one local ingress host
    name, sheet = "students-%d" % os.getpid(), "e2e-sheet-%d" % os.getpid()
    stack("namespace", ns)
    stack("sheet", sheet)
    t0 = time.time()
    kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 3))
    took = until("FormPipeline Ready", lambda: ready(ns, name), 120) and time.time() - t0
    print("  apply -> Ready (topic, 2 ingest + 3 consumer processes, CronJob): %.1f s" % took, flush=True)
    path = "/forms/%s" % name

    # 1. 10,000 submissions, 200 keys; each key's submissions are sent in order
    bodies, seq = [], {}
    for i in range(N):
        key = 1000 + i % KEYS
        seq[key] = seq.get(key, 0) + 1
        bodies.append(submission(i, key, seq[key]))
    # keep per-key order: one key is always posted by the same thread, in sequence
    t0 = time.time()
    ids = post_all(path, bodies, threads=20)   # 20 divides 200: every key stays on one thread
    rate = N / (time.time() - t0)
    print("  %d submissions accepted (202) through the ingress at %.0f/s" % (N, rate), flush=True)
    took = flush_until(ns, name, sheet, N)
    print("  flushed to the sheet in %.1f s" % took, flush=True)
    values = verify_sheet(sheet, ids, COLUMNS, "10,000 submissions")
    by_key = {}
    for row in values[1:]:
        student, roll = row[2], row[3]
        by_key.setdefault(roll, []).append(int(student.rsplit(" ", 1)[1]))
    in_order = all(s == sorted(s) for s in by_key.values())
    check("per-key order is kept in the sheet", in_order and len(by_key) == KEYS)
    # e.g. DeadLetterTopicRecreated when the metadata lagged behind the topic just created
    warnings = kubectl("get", "events", "-n", ns, "--field-selector", "type=Warning,involvedObject.kind=FormPipeline",
                       "-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}")
    check("a new pipeline, created and used, raised no Warning event", not warnings, warnings)

    # 2. partitions 3 -> 6
    kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 6))
    until("six consumer processes", lambda: len(running_pods(ns, "consumer")) == 6, 120)
    check("six consumer processes run", len(running_pods(ns, "consumer")) == 6)
    more = [submission(N + i, 1000 + i % KEYS, 10000 + i) for i in range(2000)]
    ids2 = post_all(path, more, threads=16)
    flush_until(ns, name, sheet, N + 2000)
    verify_sheet(sheet, ids + ids2, COLUMNS, "after growing to 6 partitions")

    # 3. add a field: the ingest pods roll and take it
    before = set(running_pods(ns, "ingest"))
    old_rows = sheet_values(sheet)
    kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 6,
                                                  "    - {name: city, type: string, maxLength: 50}\n"))
    until("ingest pods rolled", lambda: (set(running_pods(ns, "ingest")) & before) == set()
          and len(running_pods(ns, "ingest")) == 2 and ready(ns, name), 120)
    check("the ingest pods rolled", not (set(running_pods(ns, "ingest")) & before))
    new = [submission(20000 + i, 1000 + i % KEYS, 20000 + i, {"city": "Dhaka"}) for i in range(500)]
    ids3 = post_all(path, new, threads=8)
    flush_until(ns, name, sheet, N + 2500)
    values = verify_sheet(sheet, ids + ids2 + ids3, COLUMNS + ["city"], "after adding a field")
    new_ids = set(ids3)
    check("new rows carry the new column", all(r[-1] == "Dhaka" and len(r) == len(COLUMNS) + 3
                                                for r in values[1:] if r[0] in new_ids))
    check("old rows are untouched", values[1:len(old_rows)] == old_rows[1:])
    accepted = ids + ids2 + ids3
    accepted += remove_a_field(ns, name, sheet, len(accepted), accepted)
    dead_letter_topic_deleted(ns, name)
    custom_topic(ns, sheet)
    kubectl("delete", "namespace", ns)   # the pods stop: their exit is checked too
    until("pod processes stopped", lambda: not kubectl("get", "pods", "-n", ns, "-o", "name", check=False), 60)
    check_clean(ns)
    finish()


def remove_a_field(ns, name, sheet, have, accepted):
    """Removes mobile while submissions are in flight: events accepted with it are still
    stored (their column stays), none is dead-lettered. Returns the new accepted ids."""
    city = "    - {name: city, type: string, maxLength: 50}\n"
    bodies = [submission(30000 + i, 1000 + i % KEYS, 30000 + i, {"city": "Pune"}) for i in range(1500)]
    first = post_all("/forms/%s" % name, bodies[:1000], threads=8)   # with mobile, many still in Kafka
    kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 6, city, drop=("mobile",)))
    until("generation with mobile removed is served", lambda: ready(ns, name), 120)
    rest = []
    for b in bodies[1000:]:
        b.pop("mobile")
        rest.append(b)
    second = post_all("/forms/%s" % name, rest, threads=8)
    flush_until(ns, name, sheet, have + 1500)
    values = verify_sheet(sheet, accepted + first + second, COLUMNS + ["city"], "after removing a field in flight")
    check("the removed field keeps its column", values[0] == ["id", "received_at"] + COLUMNS + ["city"], str(values[0]))
    new = set(second)
    check("rows accepted without the field leave its cell empty",
          all(r[2 + COLUMNS.index("mobile")] == "" for r in values[1:] if r[0] in new))
    check("columns in status are append-only", status(ns, name, "{.status.columns[*].name}").split() == COLUMNS + ["city"])
    check("nothing was dead-lettered by the form change", status(ns, name, "{.status.flush.deadLetters}") in ("", "0"),
          status(ns, name, "{.status.flush.deadLetters}"))
    return first + second


def dead_letter_topic_deleted(ns, name):
    """Deletes the dead-letter topic by hand and puts a poison message on the topic: the
    pipeline says it is not progressing, the operator brings the topic back, the poison
    becomes a dead letter and the pipeline is Progressing again."""
    topic = status(ns, name, "{.status.topic}")
    dlq = topic + ".dlq"
    before = kafka_count(dlq)
    # Every Progressing the pipeline goes through, polled from before the deletion: the
    # operator may notice the missing topic and create it again within a second, before
    # the poison is even on the topic. (kubectl get -w -o jsonpath printed no updates.)
    seen, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            now = condition(ns, name, "Progressing")
            if not seen or seen[-1] != now:
                seen.append(now)
            time.sleep(0.2)
    poller = threading.Thread(target=poll)
    poller.start()
    t0 = time.time()
    r = kafka_topic("--delete", "--topic", dlq)
    check("dead-letter topic deleted by hand", r.returncode == 0, r.stderr)
    kafka_produce(topic, ["this is not a CloudEvent"])
    until("the poison is a dead letter", lambda: kafka_count(dlq) >= 1, 180)
    until("Progressing True again", lambda: condition(ns, name, "Progressing")[0] == "True", 180)
    print("  the dead letter written and Progressing True again %.1f s after the topic was deleted"
          % (time.time() - t0), flush=True)
    stop.set()
    poller.join()
    print("  Progressing went through: %s" % ", ".join("%s %s" % w for w in seen), flush=True)
    check("Progressing was False while the topic was missing, and the reason names the cause",
          any(st == "False" and why in ("DeadLetterTopicMissing", "NoProgress") for st, why in seen), str(seen))
    check("exactly the poison was dead-lettered", kafka_count(dlq) == 1, "before %d, now %d" % (before, kafka_count(dlq)))


def custom_topic(ns, sheet_prefix):
    """A pipeline whose spec names its topic: the ingest produces there."""
    name, sheet = "custom-%d" % os.getpid(), sheet_prefix + "-custom"
    topic = "forms.%s.my-custom-topic" % ns
    stack("sheet", sheet)
    kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 2, topic=topic))
    until("custom-topic pipeline Ready", lambda: ready(ns, name), 120)
    ids = post_all("/forms/%s" % name, [submission(i, 5000 + i, i) for i in range(200)], threads=4)
    flush_until(ns, name, sheet, 200)
    verify_sheet(sheet, ids, COLUMNS, "custom topic")
    check("the events went to the custom topic", kafka_count(topic) == 200, str(kafka_count(topic)))


if __name__ == "__main__":
    main()
