"""e2e.py - helpers for the end-to-end tests: kubectl, the stack, HTTP submissions
through the ingress, flush Jobs and the emulated sheet. Every helper raises on failure;
a test prints what it measured and exits non-zero when a check fails."""
import concurrent.futures, http.client, json, os, subprocess, sys, time, urllib.request, uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTENV = os.path.join(ROOT, "scripts", "testenv")
INGRESS = ("127.0.0.1", 29880)
STACK_DIR = os.environ.get("FORMPIPE_STACK_DIR", "/tmp/formpipe-stack")
# scripts/stack up --real-node: pods are containers on the real node, and nginx (the
# ingress, on this machine) reaches them from the bridge gateway, else from 127.0.0.1
REAL_NODE = os.path.exists(os.path.join(STACK_DIR, "real-node"))
INGRESS_PROXY = os.environ.get("FORMPIPE_NODE_GATEWAY", "") if REAL_NODE else "127.0.0.1"
RELEASE_NS = "formpipe-system"   # the chart's namespace on the real node (scripts/stack)
# the Redis Sentinel set the pipelines use: the pods' set on the real node (testenv's ports.sh)
SENTINEL_PORTS = (29485, 29486, 29487) if REAL_NODE else (29479, 29480, 29481)
REDIS_PORTS = (29385, 29386, 29387) if REAL_NODE else (29379, 29380, 29381)
SHEETS = os.environ.get("FORMPIPE_SHEETS_URL", "")
FAILURES = []


def sh(*cmd, check=True, input=None):
    r = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return r.stdout.strip()


def kubectl(*args, check=True, input=None):
    return sh("kubectl", *args, check=check, input=input)


def stack(*args):
    return sh(os.path.join(ROOT, "scripts", "stack"), *args)


def check(what, ok, detail=""):
    """Prints ok/FAIL for what (a failure is counted); returns ok."""
    print("%s - %s%s" % ("ok  " if ok else "FAIL", what, (": " + detail) if detail and not ok else ""), flush=True)
    if not ok:
        FAILURES.append(what)
    return ok


def until(what, fn, timeout):
    """Calls fn until it returns a true value; returns it, or raises after timeout."""
    t0, last = time.time(), None
    while time.time() - t0 < timeout:
        last = fn()
        if last:
            return last
        time.sleep(0.5)
    raise RuntimeError("%s: not reached in %d s (last: %r)" % (what, timeout, last))


FIELDS = [
    ("name", "{name: name, type: string, required: true, minLength: 5, maxLength: 100}"),
    ("roll", '{name: roll, type: string, required: true, pattern: "^[0-9]{1,10}$"}'),
    ("university", "{name: university, type: string, required: true}"),
    ("cgpa", "{name: cgpa, type: number, minimum: 0, maximum: 10}"),
    ("gender", "{name: gender, type: enum, values: [F, M, X]}"),
    ("age", "{name: age, type: integer, minimum: 15, maximum: 100}"),
    ("email", "{name: email, type: email, required: true}"),
    ("mobile", "{name: mobile, type: phone}"),
]


def pipeline_yaml(ns, name, sheet, partitions, extra_fields="", drop=(), topic=None, spec=""):
    """The student-data FormPipeline; drop: field names left out; topic: a custom topic;
    spec: more spec lines (two-space indented). Without a mode in spec it is Dedicated
    (its rateLimit 0 and own pods are what the load tests need; test_shared.py covers
    the Shared default)."""
    fields = "".join("    - %s\n" % f for n, f in FIELDS if n not in drop)
    if "mode:" not in spec:
        spec += "  mode: Dedicated\n"
    kafka = "{partitions: %d%s}" % (partitions, ", topic: %s" % topic if topic else "")
    return """apiVersion: formpipe.io/v1alpha1
kind: FormPipeline
metadata: {name: %s, namespace: %s}
spec:
  form:
    title: Student data
    fields:
%s%s    partitionKey: roll
  kafka: %s
  ingest: {replicas: 2, rateLimit: 0, trustedProxies: ["%s"]}
  consumer: {minReplicas: 1}
  sheets: {spreadsheetId: %s, schedule: "*/1 * * * *", batchRows: 5000}
%s""" % (name, ns, fields, extra_fields, kafka, INGRESS_PROXY, sheet, spec)


def hmac_key(work):
    """A fresh 32-byte webhook signing key in work/hmac; returns its path."""
    path = os.path.join(work, "hmac")
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    return path


def pipeline_with_hook_secret(ns, name, sheet, key):
    """Namespace ns (the stack's Secrets), spreadsheet sheet, Secret hook holding key, and
    the student-data FormPipeline name, waited for until Ready."""
    stack("namespace", ns)
    stack("sheet", sheet)
    kubectl("create", "secret", "generic", "hook", "-n", ns, "--from-file=hmac=" + key)
    kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 3))
    until("FormPipeline Ready", lambda: ready(ns, name), 120)


def status(ns, name, jsonpath):
    return kubectl("get", "fp", name, "-n", ns, "-o", "jsonpath=" + jsonpath, check=False)


def condition(ns, name, ctype):
    """(status, reason) of a condition of the FormPipeline."""
    out = status(ns, name, '{.status.conditions[?(@.type=="%s")].status} {.status.conditions[?(@.type=="%s")].reason}'
                 % (ctype, ctype)).split()
    return tuple(out) if len(out) == 2 else (None, None)


def kafka_produce(topic, lines):
    """Puts raw messages (one per line, no key) on topic with Kafka's console producer,
    each acknowledged by all in-sync replicas before the next. The tool's defaults (3
    retries, 100 ms apart) drop a message during a leader election and still exit 0, so
    retries are bounded by time instead, and any send error fails the caller."""
    out = subprocess.run([TESTENV, "kafka-tool", "tools.ConsoleProducer", "--bootstrap-server",
                          os.environ["FORMPIPE_KAFKA_BOOTSTRAP"], "--topic", topic, "--sync",
                          "--request-required-acks", "all", "--message-send-max-retries", "2147483647",
                          "--retry-backoff-ms", "250", "--producer-property", "delivery.timeout.ms=120000"],
                         input="\n".join(lines) + "\n", text=True, capture_output=True)
    if out.returncode != 0 or "Error when sending" in out.stderr or "Exception" in out.stderr:
        raise RuntimeError("kafka_produce to %s failed (exit %d): %s" % (topic, out.returncode, out.stderr[-2000:]))


def kafka_count(topic):
    """Messages ever written to topic (the sum of its partitions' end offsets)."""
    out = subprocess.run([TESTENV, "kafka-tool", "tools.GetOffsetShell", "--bootstrap-server",
                          os.environ["FORMPIPE_KAFKA_BOOTSTRAP"], "--topic", topic], text=True,
                         capture_output=True).stdout
    return sum(int(l.rsplit(":", 1)[1]) for l in out.splitlines() if l.count(":") == 2)


def kafka_topic(*args):
    return subprocess.run([TESTENV, "kafka-tool", "tools.TopicCommand", "--bootstrap-server",
                           os.environ["FORMPIPE_KAFKA_BOOTSTRAP"]] + list(args), text=True, capture_output=True)


def ready(ns, name):
    out = kubectl("get", "fp", name, "-n", ns, "-o", "json", check=False)
    if not out:
        return False
    o = json.loads(out)
    st = o.get("status", {})
    conds = {c["type"]: c["status"] for c in st.get("conditions", [])}
    return conds.get("Ready") == "True" and st.get("observedGeneration") == o["metadata"]["generation"]


def submission(i, key, seq, extra=None):
    body = {"name": "student %06d" % i, "roll": str(key), "university": "Uni of Tests", "cgpa": 7.5,
            "gender": "FMX"[i % 3], "age": 20 + i % 30, "email": "s%d@example.com" % i, "mobile": "+9112345%05d" % (i % 100000)}
    body["name"] = "student %06d seq %05d" % (i, seq)
    if extra:
        body.update(extra)
    return body


def post_all(path, bodies, threads=16, retries=8):
    """POSTs each body (with its own Idempotency-Key, retried on 5xx and connection
    errors) through the ingress. Returns the accepted ids in body order."""
    def worker(chunk):
        conn, out = None, []
        for idx, body in chunk:
            key, data = str(uuid.uuid4()), json.dumps(body)
            for attempt in range(retries):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(*INGRESS, timeout=30)
                    conn.request("POST", path, body=data, headers={"Content-Type": "application/json",
                                                                    "Idempotency-Key": key})
                    r = conn.getresponse()
                    answer = r.read()
                    if r.status == 202:
                        out.append((idx, json.loads(answer)["id"]))
                        break
                    if r.status < 500 and r.status != 429:
                        raise RuntimeError("HTTP %d for %s: %s" % (r.status, data, answer))
                except (OSError, http.client.HTTPException):
                    conn = None
                time.sleep(min(0.2 * 2 ** attempt, 3))
            else:
                raise RuntimeError("gave up on %s" % data)
        return out
    indexed = list(enumerate(bodies))
    chunks = [indexed[t::threads] for t in range(threads)]
    ids = [None] * len(bodies)
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        for part in ex.map(worker, chunks):
            for idx, sid in part:
                ids[idx] = sid
    return ids


def sheet_values(sheet):
    with urllib.request.urlopen("%s/_control/spreadsheets/%s/values/Responses" % (SHEETS, sheet)) as r:
        return json.load(r).get("values", [])


def flush_until(ns, name, sheet, rows, timeout=180):
    """Runs flush Jobs (from the CronJob) until the sheet holds rows data rows."""
    t0, n = time.time(), 0
    while time.time() - t0 < timeout:
        n += 1
        job = "%s-now-%d-%d" % (name, int(t0) % 100000, n)
        kubectl("create", "job", job, "-n", ns, "--from=cronjob/%s-flush" % name)
        until("job %s" % job, lambda: kubectl("get", "job", job, "-n", ns, "-o",
                                              "jsonpath={.status.succeeded}{.status.failed}", check=False), 120)
        have = len(sheet_values(sheet)) - 1
        if have >= rows:
            return time.time() - t0
        time.sleep(1)
    raise RuntimeError("the sheet did not reach %d rows in %d s" % (rows, timeout))


def verify_sheet(sheet, accepted, columns, what):
    values = sheet_values(sheet)
    check("%s: header is id, received_at, then the fields" % what, values and values[0][:len(columns) + 2] == ["id", "received_at"] + columns,
          str(values[:1]))
    ids = [row[0] for row in values[1:]]
    want = set(accepted)
    dup = len(ids) - len(set(ids))
    missing = len(want - set(ids))
    extra = len(set(ids) - want)
    print("  %s: accepted %d, rows %d, duplicates %d, missing %d, unexpected %d" %
          (what, len(want), len(ids), dup, missing, extra), flush=True)
    if missing:
        print("  %s: missing ids (first 10): %s" % (what, " ".join(sorted(want - set(ids))[:10])), flush=True)
    check("%s: every accepted submission is in the sheet exactly once" % what, dup == 0 and missing == 0 and extra == 0)
    return values


STACK_LOGS = os.path.join(STACK_DIR, "node", "logs")


def sanitizer_reports(ns):
    """Names of pod logs of namespace ns (and the operators') holding a sanitizer report."""
    bad = []
    logs = [os.path.join(STACK_LOGS, f) for f in os.listdir(STACK_LOGS) if f.startswith(ns + "_")]
    logs += [os.path.join(os.path.dirname(os.path.dirname(STACK_LOGS)), "logs", "operator-%d.log" % i) for i in (1, 2)]
    for path in logs:
        try:
            text = open(path, errors="replace").read()
        except OSError:
            continue
        if "ERROR: AddressSanitizer" in text or "ERROR: LeakSanitizer" in text or "runtime error: " in text:
            bad.append(os.path.basename(path))
    return bad


def check_clean(ns, killed=False):
    """The run left no sign of a crash: with the stack's processes (sanitizer builds), no
    sanitizer report in a pod's or an operator's log; on the real node (release images),
    no pod failed and no container of the namespace's pods or the operator's restarted
    (killed: the test kill -9ed some, so a restart after exit 137, SIGKILL, is fine)."""
    if not REAL_NODE:
        bad = sanitizer_reports(ns)
        return check("no sanitizer report in any pod or operator log", not bad, ", ".join(bad))
    def ours(t):   # a termination by the test's kill -9
        return killed and t.get("exitCode") == 137 and t.get("reason") != "OOMKilled"
    bad = []
    for n in (ns, RELEASE_NS):
        for p in json.loads(kubectl("get", "pods", "-n", n, "-o", "json"))["items"]:
            name = "%s/%s" % (n, p["metadata"]["name"])
            for cs in p["status"].get("containerStatuses", []):
                now = (cs.get("state") or {}).get("terminated")
                last = (cs.get("lastState") or {}).get("terminated") or {}
                if p["status"].get("phase") == "Failed" and not (now and ours(now)):
                    bad.append("%s failed (%s, exit %s)" % (name, (now or {}).get("reason"), (now or {}).get("exitCode")))
                if cs.get("restartCount") and not ours(last):
                    bad.append("%s restarted %d times (last: %s, exit %s)" % (name, cs["restartCount"], last.get("reason"),
                                                                             last.get("exitCode")))
    return check("no container of the pipeline's or the operator's pods %s, no pod failed" %
                 ("exited but by our kill -9" if killed else "restarted"), not bad, ", ".join(bad))


def container_pids(ns, selector):
    """{pod name: host pid} of the running containers (the first of each pod) of the pods
    selector picks in ns, on the real node (as containerd's runc started them)."""
    crictl = [os.environ["FORMPIPE_NODE_CRICTL"], "--runtime-endpoint", os.environ["FORMPIPE_NODE_CRI"]]
    out = {}
    for p in json.loads(kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json"))["items"]:
        for cs in p["status"].get("containerStatuses", [])[:1]:
            if "running" in (cs.get("state") or {}) and cs.get("containerID"):
                info = json.loads(sh(*crictl, "inspect", cs["containerID"].split("://", 1)[1]))
                out[p["metadata"]["name"]] = info["info"]["pid"]
    return out


def finish():
    if FAILURES:
        print("%d check(s) failed: %s" % (len(FAILURES), "; ".join(FAILURES)))
        sys.exit(1)
    print("all checks passed")


def group_lag(*groups):
    """{group: total lag} of Kafka consumer groups (a group with no committed offsets yet
    counts its whole topic), from Kafka's own ConsumerGroupCommand."""
    args = [TESTENV, "kafka-tool", "tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server",
            os.environ["FORMPIPE_KAFKA_BOOTSTRAP"], "--describe"]
    for g in groups:
        args += ["--group", g]
    out = subprocess.run(args, text=True, capture_output=True).stdout
    lag = {g: None for g in groups}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6 and f[0] in lag and f[2].isdigit():
            end = int(f[4]) if f[4].isdigit() else 0
            cur = int(f[3]) if f[3].isdigit() else 0
            lag[f[0]] = (lag[f[0]] or 0) + end - cur
    return lag


class HookReceiver:
    """tests/fakes/hook_receiver.py as a child process on 127.0.0.1 (a free port)."""

    def __init__(self, secret_file, log_path):
        import re
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "fakes", "hook_receiver.py"),
                                      "--secret-file", secret_file], stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on ([0-9.]+):(\d+)", line)
        if not m:
            raise RuntimeError("hook receiver did not start: %r" % line)
        self.url = "http://%s:%s" % (m.group(1), m.group(2))

    def control(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/_control/" + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def delivered(self):
        """{id: number of requests that carried it} over the deliveries answered 2xx, and
        the number of requests whose signature did not verify."""
        seen = {}
        for r in self.control("requests")["requests"]:
            if r["status"] is not None and 200 <= r["status"] < 300:
                seen[r["id"]] = seen.get(r["id"], 0) + 1
        return seen, self.control("stats")["bad_signatures"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
