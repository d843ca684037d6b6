#!/usr/bin/python3
"""The example container task (examples/tasks/python-count) against the real broker of
scripts/testenv: it counts every valid event once (a repeated id once), in key order,
dead-letters the poison events with the headers formpipe-dlq reads, commits exactly up
to the end, stops with 0 on SIGTERM, and a restart in the same group reads only what is
new (a re-driven dead letter among them). Usage (under scripts/testenv exec):
test_example_task.py BIN_DIR (which holds formpipe-dlq). Fails loudly when Kafka, the
Python module or formpipe-dlq is missing. Ends with a plain "N passed, N failed" line."""
import datetime, json, os, signal, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
TASK = os.path.join(HERE, "..", "..", "examples", "tasks", "python-count", "count.py")
passed = failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   - " + what, flush=True)
    else:
        failed += 1
        print("FAIL - %s\n       %s" % (what, detail), flush=True)
    return ok


def die(why):
    print("FAIL - " + why, flush=True)
    print("%d passed, %d failed" % (passed, failed + 1))
    sys.exit(1)


BOOTSTRAP = os.environ.get("FORMPIPE_KAFKA_BOOTSTRAP") or die("FORMPIPE_KAFKA_BOOTSTRAP is not set: run under scripts/testenv exec")
if len(sys.argv) != 2 or not os.access(os.path.join(sys.argv[1], "formpipe-dlq"), os.X_OK):
    die("usage: test_example_task.py BIN_DIR, where BIN_DIR holds a built formpipe-dlq")
DLQ_BIN = os.path.join(sys.argv[1], "formpipe-dlq")
try:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:
    die("%s: %s has no confluent_kafka (Debian package python3-confluent-kafka, scripts/install-deps)" % (e, sys.executable))

RUN = "fp-example-%d-%d" % (os.getpid(), int(time.time()))
TOPIC, DLQ, GROUP = RUN, RUN + ".count.dlq", "formpipe.test.%s.count" % RUN
PARTITIONS = 3


def event(i, roll, gender, generation=3):
    data = {"name": "Student %d" % i, "roll": roll}
    if gender is not None:
        data["gender"] = gender
    return {"specversion": "1.0", "id": "01KB00000000000000000000%02d" % i, "source": "/forms/test/%s" % RUN,
            "type": "io.formpipe.submission.v1", "time": "2026-12-02T01:00:00.%03dZ" % i,
            "datacontenttype": "application/json", "formgeneration": generation, "data": data}


def produce(messages):
    """Produces (key, value bytes) in order; returns their (partition, offset)s."""
    p, where = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all"}), []
    for key, value in messages:
        p.produce(TOPIC, key=key, value=value,
                  on_delivery=lambda err, m: where.append(err or (m.partition(), m.offset())))
        p.flush(10)   # one at a time: known order of delivery reports
    if len(where) != len(messages) or any(not isinstance(w, tuple) for w in where):
        die("producing to %s failed: %s" % (TOPIC, where))
    return where


class Task:
    """count.py running with the task environment; stdout lines collected."""
    def __init__(self, kafka_config=None):
        env = dict(os.environ, FORMPIPE_TOPIC=TOPIC, FORMPIPE_GROUP=GROUP, FORMPIPE_DLQ_TOPIC=DLQ,
                   FORMPIPE_KAFKA_BOOTSTRAP=BOOTSTRAP, FORMPIPE_PIPELINE=RUN, FORMPIPE_TASK="count",
                   FORMPIPE_MAX_ATTEMPTS="3", COUNT_FIELD="gender", PYTHONDONTWRITEBYTECODE="1")
        env.pop("FORMPIPE_KAFKA_CONFIG", None)
        if kafka_config:
            env["FORMPIPE_KAFKA_CONFIG"] = kafka_config
        self.proc = subprocess.Popen([sys.executable, TASK], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines, self.err = [], []
        for stream, into in ((self.proc.stdout, self.lines), (self.proc.stderr, self.err)):
            threading.Thread(target=Task.collect, args=(stream, into), daemon=True).start()

    @staticmethod
    def collect(stream, into):
        for line in stream:
            into.append(line)

    def wait_for(self, pred, seconds):
        end = time.time() + seconds
        while time.time() < end and not pred() and self.proc.poll() is None:
            time.sleep(0.2)
        return pred()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "still running 20 s after SIGTERM"

    def records(self):
        return [json.loads(line) for line in list(self.lines)]


def read_all(topic):
    """Every message of topic, read with assign() from the start (no group joined)."""
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "fp-example-reader", "enable.auto.commit": False})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    out, ends = [], {}
    for p in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi > lo:
            ends[p] = hi
    c.assign([TopicPartition(topic, p, 0) for p in ends])
    deadline = time.time() + 20
    while ends and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append(m)
        if m.offset() + 1 >= ends[m.partition()]:
            del ends[m.partition()]
    c.close()
    return out


def committed_vs_end():
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": GROUP, "enable.auto.commit": False})
    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    got = {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)}
    end = {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in range(PARTITIONS)}
    c.close()
    # a partition that never had a message has nothing to commit (OFFSET_INVALID)
    return {p: got[p] if end[p] else 0 for p in got}, end


admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
try:
    for f in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1), NewTopic(DLQ, 1, 1)]).values():
        f.result(30)
except Exception as e:
    die("cannot create topics on the test broker %s: %r" % (BOOTSTRAP, e))

try:
    # 12 valid events over 6 keys (two per key, in order), the same id sent twice, an event
    # of a newer generation without the counted field, and two poison events between them.
    valid = [event(i, "r%d" % (i % 6), "FMX"[i % 3]) for i in range(12)]
    def msg(e):
        return e["data"]["roll"].encode(), json.dumps(e).encode()
    newer = event(12, "r0", None, generation=4)
    messages = [msg(e) for e in valid[:6]] + [(b"r1", b"{not json")] + [msg(e) for e in valid[6:]]
    messages += [(b"r2", json.dumps(dict(valid[2], type="io.example.other")).encode()),
                 msg(valid[3]),   # a re-delivery of an id already counted
                 msg(newer)]
    where = produce(messages)
    poison = {6: "not_json", 13: "not_cloudevent"}

    # the first run also reads a client config file as the operator mounts one
    config = "/tmp/%s.properties" % RUN
    with open(config, "w") as f:
        f.write("# the pipeline's client config\n\n! another comment\n  client.id = %s-task \nsocket.keepalive.enable=true\n" % RUN)
    task = Task(kafka_config=config)
    want_ids = [e["id"] for e in valid] + [newer["id"]]
    got_all = task.wait_for(lambda: len(task.lines) >= len(want_ids) and len(read_all(DLQ)) >= 2, 60)
    time.sleep(2)   # anything counted twice would show up now
    recs = task.records()
    ids = [r["id"] for r in recs]
    check("the task counted every valid event", got_all and sorted(set(ids)) == sorted(want_ids),
          "want %s, got %s; stderr: %s" % (want_ids, ids, "".join(task.err)[-2000:]))
    check("each id once (the re-delivered id skipped)", len(ids) == len(set(ids)), "got %s" % ids)
    by_roll, want_roll, roll_of = {}, {}, {e["id"]: e["data"]["roll"] for e in valid + [newer]}
    for i in ids:
        by_roll.setdefault(roll_of.get(i), []).append(i)
    for e in valid + [newer]:
        want_roll.setdefault(e["data"]["roll"], []).append(e["id"])
    check("events of one key in the order produced", by_roll == want_roll, "want %s, got %s" % (want_roll, by_roll))
    final = {}
    for r in recs:
        final[json.dumps(r["value"])] = r["count"]
    check("counts per value: F 4, M 4, X 4, absent 1", final == {'"F"': 4, '"M"': 4, '"X"': 4, "null": 1}, final)

    letters = read_all(DLQ)
    check("two dead letters", len(letters) == 2, "got %d" % len(letters))
    messages_written = {}
    for m in letters:
        h = {k: v.decode() for k, v in (m.headers() or [])}
        src = (int(h.get("formpipe-source-partition", -1)), int(h.get("formpipe-source-offset", -1)))
        i = where.index(src) if src in where else -1
        reason = poison.get(i, "?")
        messages_written[i] = h.get("formpipe-dlq-message")
        check("dead letter %d: the poison's key and value unchanged" % i,
              i in poison and (m.key(), m.value()) == messages[i], (src, m.key(), m.value()))
        check("dead letter %d: reason %s" % (i, reason), i in poison and h.get("formpipe-dlq-reason") == reason, h)
        try:
            t = datetime.datetime.strptime(h.get("formpipe-dlq-time", ""), "%Y-%m-%dT%H:%M:%S.%fZ")
            age = (datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - t).total_seconds()
        except ValueError:
            age = None
        check("dead letter %d: headers message, time, generation, source topic" % i,
              0 < len(h.get("formpipe-dlq-message", "").encode()) <= 255 and age is not None and -5 < age < 120
              and h.get("formpipe-dlq-form-generation") == ("0" if reason == "not_json" else "3")
              and h.get("formpipe-source-topic") == TOPIC, h)

    out = subprocess.run([DLQ_BIN, "list", "--kafka-bootstrap", BOOTSTRAP, "--topic", DLQ],
                         capture_output=True, text=True, timeout=60)
    sys.stdout.write(out.stderr)   # a sanitizer report (build-asan) must reach ctest's output
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    # PARTITION:OFFSET, reason, id ("-": no CloudEvent), time, source, message (an error
    # about the headers instead when formpipe-dlq cannot read them)
    want_rows = sorted((poison[i], "-", "%s/%d@%d" % ((TOPIC,) + where[i]), messages_written.get(i)) for i in poison)
    check("formpipe-dlq list reads both dead letters: reason, source, message",
          out.returncode == 0 and sorted((r[1], r[2], r[4], r[5]) for r in rows if len(r) == 6) == want_rows,
          "exit %d, stdout %r, stderr %r; want %s" % (out.returncode, out.stdout, out.stderr, want_rows))

    bad = [i for i in poison if poison[i] == "not_json"][0]
    out = subprocess.run([DLQ_BIN, "show", "--kafka-bootstrap", BOOTSTRAP, "--topic", DLQ, "--offset",
                          "0:%d" % next((m.offset() for m in letters if m.value() == messages[bad][1]), 0)],
                         capture_output=True, text=True, timeout=60)
    sys.stdout.write(out.stderr)
    check("formpipe-dlq show: key, reason header, payload", out.returncode == 0 and "\nkey: r1\n" in out.stdout
          and "header formpipe-dlq-reason: not_json\n" in out.stdout and "{not json" in out.stdout, out.stdout + out.stderr)

    rc = task.stop()
    check("SIGTERM: exit status 0", rc == 0, "exit %s; stderr: %s" % (rc, "".join(task.err)[-2000:]))
    got, end = committed_vs_end()
    check("committed offsets = end of every partition", got == end, "committed %s, end %s" % (got, end))

    out = subprocess.run([DLQ_BIN, "redrive", "--kafka-bootstrap", BOOTSTRAP, "--topic", DLQ, "--to", TOPIC,
                          "--reason", "not_cloudevent"], capture_output=True, text=True, timeout=60)
    sys.stdout.write(out.stderr)
    check("formpipe-dlq redrive --reason not_cloudevent re-publishes one", out.returncode == 0
          and "1 dead letter re-published" in out.stdout, out.stdout + out.stderr)
    later = event(13, "r5", "F")
    produce([(b"r5", json.dumps(later).encode())])
    task = Task()
    task.wait_for(lambda: len(task.lines) >= 1 and len(read_all(DLQ)) >= 3, 60)
    time.sleep(3)
    ids = [r["id"] for r in task.records()]
    check("a restart in the group reads only the new events", ids == [later["id"]], "got %s" % ids)
    letters = read_all(DLQ)
    h = {k: v.decode() for k, v in (letters[-1].headers() or [])} if len(letters) == 3 else {}
    check("the re-driven event is dead-lettered again, from the topic",
          h.get("formpipe-dlq-reason") == "not_cloudevent" and h.get("formpipe-source-topic") == TOPIC
          and int(h.get("formpipe-source-offset", -1)) > where[13][1], "%d dead letters, last %s" % (len(letters), h))
    rc = task.stop()
    check("second SIGTERM: exit status 0", rc == 0, "exit %s" % rc)
    got, end = committed_vs_end()
    check("committed offsets = end again", got == end, "committed %s, end %s" % (got, end))
finally:
    if os.path.exists("/tmp/%s.properties" % RUN):
        os.unlink("/tmp/%s.properties" % RUN)
    for f in admin.delete_topics([TOPIC, DLQ]).values():
        try:
            f.result(30)
        except Exception as e:
            print("note: deleting a topic: %s" % e)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
