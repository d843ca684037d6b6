#!/usr/bin/env python3
"""The exactly-once proof under chaos, bounded in time and count.

Kafka is restarted with 3 brokers (replication 3, min.insync.replicas 2) and the stack
with it. Then SUBMISSIONS submissions go through the ingress from many client threads
(each with an Idempotency-Key, retried on errors, as a careful client would) while a
chaos loop, every few seconds, does one of: kill -9 an ingest, consumer or flush
process; kill the Redis master (Sentinel fails over) and bring it back; restart a Kafka
broker; kill -9 the operator leader and restart it; make the Sheets emulator answer
429, 500, or apply a write and lose the answer. Flush Jobs run all along. At the end:
every id that got 202 is in the sheet exactly once and no other row exists. Poison
messages (not CloudEvents, another pipeline's source, a repeated field) go to the topic
among the faults and a field is added and removed mid-run: every poison message is a
dead letter, nothing else is, and the pipeline is Progressing at the end.
The pipeline runs in the default mode, Shared, on its namespace's shared workloads (the
form change reaches the running ingest and consumer through the shared ConfigMap);
FORMPIPE_CHAOS_MODE=Dedicated runs it on its own. FORMPIPE_CHAOS_SUBMISSIONS sets the
count (100000). Run after every other test (it replaces the single Kafka broker).
On the real node (`scripts/stack up --real-node`, e2e.node.chaos) the kills hit container
processes (their pids from containerd), pods are also deleted, the Redis set is the pods'
one, and the kubelet restarts what was killed."""
import json, os, random, subprocess, sys, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (REAL_NODE, REDIS_PORTS, RELEASE_NS, SENTINEL_PORTS, SHEETS, STACK_LOGS, TESTENV, check, check_clean,
                 condition, container_pids, finish, kafka_produce, kubectl, pipeline_yaml, post_all, ready, sheet_values,
                 stack, status, submission, until, verify_sheet)

SUBMISSIONS = int(os.environ.get("FORMPIPE_CHAOS_SUBMISSIONS", "100000"))
MODE = os.environ.get("FORMPIPE_CHAOS_MODE", "Shared")
KEYS = 1000
COLUMNS = ["name", "roll", "university", "cgpa", "gender", "age", "email", "mobile"]
STOP = threading.Event()
faults = {}
poison = []     # every poison message put on the topic (each unique)
unsure = []     # poison messages whose put failed part way (may or may not be on the topic)
timeline = []   # (wall time, fault) for a failure's diagnosis


def count(kind, what=""):
    faults[kind] = faults.get(kind, 0) + 1
    timeline.append((time.time(), kind + what))


def testenv(*args):
    return subprocess.run([TESTENV, *args], capture_output=True, text=True).returncode == 0


def pids(pattern):
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def kill_one(kind, pattern):
    found = pids(pattern)
    if found:
        pid = random.choice(found)
        os.kill(pid, 9)
        count("kill -9 " + kind, " (pid %d)" % pid)


def kill_container(kind, ns, selector, pod=None):
    """kill -9 the process of a running container (pod, else a random one) on the real node."""
    found = container_pids(ns, selector)
    if pod is None and found:
        pod = random.choice(sorted(found))
    if pod in found:
        os.kill(found[pod], 9)
        count("kill -9 " + kind, " (%s, pid %d)" % (pod, found[pod]))


def redis_master_component():
    """The data node all three sentinels name as master; None while they disagree (a
    failover still spreading: killing then would hit whatever a stale sentinel names)."""
    views = set()
    for port in SENTINEL_PORTS:
        out = subprocess.run(["redis-cli", "-p", str(port), "SENTINEL", "get-master-addr-by-name", "formpipe"],
                             capture_output=True, text=True).stdout.split()
        views.add(int(out[1]) if len(out) == 2 else 0)
    port = views.pop() if len(views) == 1 else 0
    prefix = "node-" if REAL_NODE else ""
    return {p: "%sredis-%d" % (prefix, i) for i, p in enumerate(REDIS_PORTS)}.get(port)


def restart(component):
    """Starts a stopped component of the environment again; says so when it cannot."""
    r = subprocess.run([TESTENV, "start", component], capture_output=True, text=True)
    if r.returncode != 0:
        print("  chaos: could not start %s again: %s" % (component, (r.stderr or r.stdout).strip()[-600:]), flush=True)


def sheets_fault(body):
    req = urllib.request.Request(SHEETS + "/_control/faults", data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(req).read()


def chaos(ns):
    """One disruption every 2-5 s until STOP; what was stopped is started again."""
    restore = []
    while not STOP.wait(random.uniform(2, 5)):
        for fn in restore:
            fn()
        restore = []
        try:
            disrupt(ns, restore)
        except Exception as e:   # a disruption that could not be made is not a test failure
            print("  chaos: %s" % e, flush=True)
    for fn in restore:
        fn()


def disrupt(ns, restore):
    action = random.choice(["ingest", "consumer", "flush", "redis", "kafka", "operator", "sheets", "poison"] +
                           (["pod"] if REAL_NODE else []))
    if REAL_NODE and action in ("ingest", "consumer", "flush"):
        kill_container(action, ns, "app.kubernetes.io/component=" + action)
    elif action == "pod":   # the real node: a pod deleted, its Deployment makes another
        names = kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/component in (ingest,consumer)",
                        "-o", "jsonpath={.items[*].metadata.name}").split()
        if names:
            victim = random.choice(names)
            kubectl("delete", "pod", victim, "-n", ns, "--wait=false")
            count("delete a pod", " (%s)" % victim)
    elif action == "ingest":
        kill_one(action, "formpipe-ingest .*%s_" % ns)
    elif action == "consumer":
        kill_one(action, "formpipe-consumer .*%s_" % ns)
    elif action == "flush":
        kill_one(action, "formpipe-flush .*%s_" % ns)
    elif action == "redis":
        master = redis_master_component()
        if master and testenv("kill", master):
            count("kill the Redis master", " (%s)" % master)
            restore.append(lambda m=master: restart(m))
    elif action == "kafka":
        broker = random.choice(["kafka-1", "kafka-2", "kafka-3"])
        if testenv("kill", broker):
            count("restart a Kafka broker", " (%s)" % broker)
            restore.append(lambda b=broker: restart(b))
    elif action == "operator" and REAL_NODE:   # the kubelet restarts it
        leader = stack("leader")
        kill_container("the operator leader", RELEASE_NS, "app.kubernetes.io/component=operator", pod=leader)
    elif action == "operator":
        leader = stack("leader")
        if leader and pids("formpipe-operator .*--identity %s" % leader):   # the Lease may still name a dead one
            stack("kill", leader)
            count("kill -9 the operator leader")
            restore.append(lambda l=leader: stack("start", l))
    elif action == "poison":
        put_poison(ns)
    else:
        fault = random.choice([{"status": 429, "count": 3}, {"status": 500, "count": 3},
                               {"drop_after_apply": 1}])
        sheets_fault(fault)
        count("Sheets " + ("applied, answer lost" if "drop_after_apply" in fault else str(fault["status"])))


def put_poison(ns):
    """Three messages no consumer can store: not JSON, a CloudEvent of another pipeline,
    a CloudEvent with a repeated field. Each is unique, so dead letters can be matched."""
    n = len(poison)
    topic = "forms.%s.%s" % (ns, ns)   # the chaos pipeline is named like its namespace
    event = '{"specversion":"1.0","id":"poison-%d-%s","source":"/forms/%s","type":"io.formpipe.submission.v1",' \
            '"time":"2026-12-01T00:00:00Z","datacontenttype":"application/json","formgeneration":1,"data":%s}'
    batch = ["poison-%d not a CloudEvent" % n,
             event % (n, "src", "elsewhere/other", '{"name":"x"}'),
             event % (n, "dup", "%s/%s" % (ns, ns), '{"name":"student a","name":"student b"}')]
    try:
        kafka_produce(topic, batch)
    except RuntimeError:
        unsure.extend(batch)   # some may be on the topic: each may or may not come back
        raise
    poison.extend(batch)
    count("poison messages", " (%d)" % len(batch))


def change_form(ns, name, sheet):
    """Mid-run form changes while submissions flow: a field is added and, once the operator
    has taken it in (status.columns holds it; a killed leader may still be handing over, and
    a spec it never saw is no form change), removed again."""
    city = "    - {name: city, type: string, maxLength: 50}\n"
    if STOP.wait(SUBMISSIONS / 3000):
        return
    kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 6, city, spec="  mode: %s\n" % MODE))
    count("form change: field added")
    t0 = time.time()
    while "city" not in status(ns, name, "{.status.columns[*].name}").split():
        if STOP.wait(1) or time.time() - t0 > 120:
            return   # the final check says whether the column ever came
    if not STOP.wait(SUBMISSIONS / 3000):
        kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 6, spec="  mode: %s\n" % MODE))
        count("form change: field removed")


def dead_letters(ns, name):
    """The distinct payloads on the dead-letter topic (a consumer killed between writing a
    dead letter and storing its offset writes it again: at least once)."""
    out = subprocess.run([TESTENV, "kafka-tool", "tools.consumer.ConsoleConsumer", "--bootstrap-server",
                          os.environ["FORMPIPE_KAFKA_BOOTSTRAP"], "--topic", "forms.%s.%s.dlq" % (ns, name),
                          "--from-beginning", "--timeout-ms", "15000"], capture_output=True, text=True).stdout
    # the console consumer also prints its own log lines (e.g. the timeout that ends it)
    return {line for line in out.splitlines() if line.startswith(("{", "poison-"))}


def redis_cli(*args):
    """Runs a command on the current Redis master (as the sentinels name it)."""
    out = subprocess.run(["redis-cli", "-p", str(SENTINEL_PORTS[0]), "SENTINEL", "get-master-addr-by-name", "formpipe"],
                         capture_output=True, text=True).stdout.split()
    env = dict(os.environ, REDISCLI_AUTH=open(os.environ["FORMPIPE_REDIS_PASSWORD_FILE"]).read().strip())
    return subprocess.run(["redis-cli", "-h", out[0], "-p", out[1], *args], capture_output=True, text=True,
                          env=env).stdout.strip()


def kafka_whereabouts(ns, name, lost, raw=()):
    """Where the lost ids (and the raw payloads, e.g. poison missing from the dead
    letters) are in the topic (partition, offset) and how far the consumer group has
    committed: tells a producer-side loss from a consumer-side skip."""
    topic = "forms.%s.%s" % (ns, name)
    group = "formpipe.%s.%s" % (ns, "formpipe-shared" if MODE == "Shared" else name)
    bootstrap = os.environ["FORMPIPE_KAFKA_BOOTSTRAP"]
    dump = subprocess.run([TESTENV, "kafka-tool", "tools.consumer.ConsoleConsumer", "--bootstrap-server", bootstrap,
                           "--topic", topic, "--from-beginning", "--timeout-ms", "20000",
                           "--property", "print.partition=true", "--property", "print.offset=true"],
                          capture_output=True, text=True).stdout.splitlines()
    print("  topic %s: %d events read back" % (topic, sum(1 for line in dump if "specversion" in line)), flush=True)
    for i in lost[:10]:
        where = ["%s (event time %s)" % (line.rsplit("\t", 1)[0].replace("\t", " "), json.loads(line.rsplit("\t", 1)[1]).get("time"))
                 for line in dump if '"id":"%s"' % i in line]
        print("  %s in Kafka: %s" % (i, ", ".join(where) or "nowhere"), flush=True)
    for payload in list(raw)[:10]:
        where = [line.rsplit("\t", 1)[0].replace("\t", " ") for line in dump if line.endswith("\t" + payload)]
        print("  %s... in Kafka: %s" % (payload[:60], ", ".join(where) or "nowhere"), flush=True)
    groups = subprocess.run([TESTENV, "kafka-tool", "tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server",
                             bootstrap, "--describe", "--group", group], capture_output=True, text=True).stdout
    print("  committed offsets of %s:\n    %s" % (group, groups.strip().replace("\n", "\n    ")), flush=True)


def diagnose(ns, name, sheet, accepted):
    """Where are the accepted ids the sheet lacks? Printed, and the stack's logs kept."""
    have = {row[0] for row in sheet_values(sheet)[1:]}
    lost = sorted(set(accepted) - have)
    if not lost:
        return
    key = "fp:{%s/%s}" % (ns, name)
    for i in lost[:10]:
        print("  missing %s: pending=%s rows=%s flushed=%s" % (
            i, redis_cli("ZSCORE", key + ":pending", i) or "-", redis_cli("HEXISTS", key + ":rows", i),
            redis_cli("ZSCORE", key + ":flushed", i) or "-"), flush=True)
    print("  buffer: pending %s, batch %s, nextrow %s" % (redis_cli("ZCARD", key + ":pending"),
          redis_cli("HGETALL", key + ":batch")[:200].replace("\n", " "), redis_cli("GET", key + ":nextrow")), flush=True)
    kafka_whereabouts(ns, name, lost)
    print("  faults (UTC): " + "; ".join("%s %s" % (time.strftime("%H:%M:%S", time.gmtime(t)) + ".%03d" % (t % 1 * 1000), f)
                                         for t, f in timeline), flush=True)
    keep = "/tmp/formpipe-chaos-failure-%d" % os.getpid()
    subprocess.run(["cp", "-r", os.path.dirname(STACK_LOGS), keep])
    subprocess.run(["cp", "-r", os.path.join(os.environ.get("FORMPIPE_TESTENV_DIR", "/tmp/formpipe-testenv"), "logs"),
                    keep + "/testenv-logs"])
    print("  logs kept in %s" % keep, flush=True)


def flush_cronjob(name):
    return "cronjob/" + ("formpipe-shared-flush" if MODE == "Shared" else name + "-flush")


def flusher(ns, name):
    """Starts a flush Job every 10 s (the CronJob fires every minute as well)."""
    n = 0
    while not STOP.wait(10):
        n += 1
        subprocess.run(["kubectl", "create", "job", "-n", ns, "%s-chaos-%d" % (name, n),
                        "--from=" + flush_cronjob(name)], capture_output=True)


def main():
    t_start = time.time()
    if not testenv("up", "--kafka-nodes", "3"):
        raise SystemExit("cannot start 3 Kafka brokers")
    stack("down")
    stack("up", *(["--real-node"] if REAL_NODE else []))   # the operators pick up 3 brokers, replication 3
    # names unique per run: every pipeline's path lives on the one local ingress host
    ns, name, sheet = "chaos-%d" % os.getpid(), "chaos-%d" % os.getpid(), "chaos-sheet-%d" % os.getpid()
    stack("namespace", ns)
    stack("sheet", sheet)
    kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 6, spec="  mode: %s\n" % MODE))
    until("FormPipeline Ready", lambda: ready(ns, name), 180)
    print("  pipeline Ready on 3 brokers after %.0f s" % (time.time() - t_start), flush=True)

    bodies = [submission(i, 1000 + i % KEYS, i) for i in range(SUBMISSIONS)]
    threads = [threading.Thread(target=chaos, args=(ns,)), threading.Thread(target=flusher, args=(ns, name)),
               threading.Thread(target=change_form, args=(ns, name, sheet))]
    for t in threads:
        t.start()
    t0 = time.time()
    try:
        ids = post_all("/forms/%s" % name, bodies, threads=64, retries=30)
    finally:
        STOP.set()
        for t in threads:
            t.join()
    load_s = time.time() - t0
    print("  %d submissions accepted under chaos in %.0f s (%.0f/s)" % (len(ids), load_s, len(ids) / load_s), flush=True)
    print("  faults injected: %s" % json.dumps(faults, sort_keys=True), flush=True)

    # everything is back: let the consumers drain and flush until the sheet is complete
    sheets_fault({"status": 0, "count": 0})
    sheets_fault({"drop_after_apply": 0})
    t1, n = time.time(), 0
    while len(sheet_values(sheet)) - 1 < len(set(ids)) and time.time() - t1 < 300:
        n += 1
        job = "%s-final-%d" % (name, n)
        kubectl("create", "job", job, "-n", ns, "--from=" + flush_cronjob(name))
        until("job %s" % job, lambda: kubectl("get", "job", job, "-n", ns, "-o",
                                              "jsonpath={.status.succeeded}{.status.failed}", check=False), 180)
        time.sleep(2)
    print("  sheet complete %.0f s after the load" % (time.time() - t1), flush=True)
    with urllib.request.urlopen(SHEETS + "/_control/stats") as r:
        print("  Sheets emulator faults: %s" % json.dumps(json.load(r)["faults"], sort_keys=True), flush=True)
    verify_sheet(sheet, ids, COLUMNS, "chaos")
    diagnose(ns, name, sheet, ids)
    check("submissions that got 202: %d of %d" % (len(ids), SUBMISSIONS), len(ids) == SUBMISSIONS)
    dead = dead_letters(ns, name)
    print("  poison messages %d (and %d whose put failed part way), distinct dead letters %d"
          % (len(poison), len(unsure), len(dead)), flush=True)
    if not check("every poison message is a dead letter, and nothing else is",
                 set(poison) <= dead and dead <= set(poison) | set(unsure),
                 "missing %s, unexpected %s" % (sorted(set(poison) - dead)[:3], sorted(dead - set(poison) - set(unsure))[:3])):
        kafka_whereabouts(ns, name, [], raw=sorted(set(poison) - dead))
    check("the sheet kept the column of the removed field", "city" in status(ns, name, "{.status.columns[*].name}").split())
    until("Progressing True at the end", lambda: condition(ns, name, "Progressing")[0] == "True", 120)
    if REAL_NODE:   # the pods' states, before they go
        check_clean(ns, killed=True)
    kubectl("delete", "namespace", ns)
    until("pod processes stopped", lambda: not kubectl("get", "pods", "-n", ns, "-o", "name", check=False), 120)
    if not REAL_NODE:   # the processes' logs, complete once they stopped
        check_clean(ns)
    print("  chaos test took %.0f s" % (time.time() - t_start), flush=True)
    finish()


if __name__ == "__main__":
    main()
