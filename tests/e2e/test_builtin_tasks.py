#!/usr/bin/env python3
"""End to end: the tasks seed 004 names, on one pipeline (the sheet path plus):
  * confirm - an `email` task mailing every submitter through Mailpit (a real SMTP
    server: STARTTLS, AUTH), its process killed with SIGKILL while it sends;
  * check   - a `moderate` task writing every event, enriched, to its output stream
    (Kafka transactions), its process killed with SIGKILL while it works;
  * flagged - a `webhook` task reading check's stream with the filter
    moderation.flagged == true, posting to a real receiver (tests/fakes/hook_receiver.py).
N submissions, every 10th holding a listed word (written in a look-alike way for some):
the sheet holds each exactly once, Mailpit holds one mail per submission (distinct
Message-IDs; repeats at most the documented crash window: the mails in flight per kill),
the receiver saw exactly the flagged ids, and the output stream has each id exactly once
(read_committed).
Run under scripts/testenv exec with the stack up (ctest fixture `stack`)."""
import json, os, subprocess, sys, tempfile, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (HookReceiver, TESTENV, check, hmac_key, pipeline_with_hook_secret, finish, flush_until, group_lag,
                 kubectl, post_all, sanitizer_reports, submission, until, verify_sheet)

COLUMNS = ["name", "roll", "university", "cgpa", "gender", "age", "email", "mobile"]
N, KEYS = int(os.environ.get("FORMPIPE_E2E_N", "10000")), 200
MAX_CONNECTIONS = 4      # the email task's SMTP connections: the mails a kill may repeat
WORDS = ["darn", "heck", "bad word", "rubbish", "nonsense"]
# Every 10th name holds a listed word, in one of these spellings (all must be found).
SPELLINGS = ["darn", "DARN", "d4rn", "h3ck", "bad  word", "ｒｕｂｂｉｓｈ", "n0nsense"]
API = os.environ.get("FORMPIPE_MAILPIT_API", "")


def tasks_yaml(ns, pipeline, hook_url):
    return """apiVersion: formpipe.io/v1alpha1
kind: FormTask
metadata: {name: confirm, namespace: %(ns)s}
spec:
  pipeline: %(p)s
  email:
    smtpSecretRef: {name: smtp}
    from: "Student office <office@example.org>"
    toField: email
    subject: "We got your form, {{name}}"
    text: "Hello {{name}},\\nyour roll number {{roll}} is registered."
    html: "<p>Hello <b>{{name}}</b>, roll {{roll}} is registered.</p>"
    ratePerSecond: 0
    maxConnections: %(conns)d
  maxAttempts: 20
  backoff: {initialMilliseconds: 200, maxSeconds: 5}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: words, namespace: %(ns)s}
data:
  words.txt: |
    # listed terms
%(words)s
---
apiVersion: formpipe.io/v1alpha1
kind: FormTask
metadata: {name: check, namespace: %(ns)s}
spec:
  pipeline: %(p)s
  moderate:
    fields: [name, university]
    wordsConfigMap: {name: words}
---
apiVersion: formpipe.io/v1alpha1
kind: FormTask
metadata: {name: flagged, namespace: %(ns)s}
spec:
  pipeline: %(p)s
  source: {task: check}
  filter:
  - {path: moderation.flagged, equals: true}
  webhook: {url: "%(url)s/hook/flagged", secretRef: {name: hook, key: hmac}, timeoutSeconds: 5}
""" % {"ns": ns, "p": pipeline, "url": hook_url, "conns": MAX_CONNECTIONS,
       "words": "".join("    %s\n" % w for w in WORDS)}


def mailpit(method, path, body=None):
    req = urllib.request.Request(API + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        data = r.read()
    return json.loads(data) if data and data[:1] in (b"{", b"[") else None


def mails():
    """(Message-ID -> count, recipients) of every message Mailpit holds."""
    seen, to, start = {}, set(), 0
    while True:
        page = mailpit("GET", "/api/v1/messages?start=%d&limit=1000" % start)
        msgs = page.get("messages") or []
        for m in msgs:
            seen[m["MessageID"]] = seen.get(m["MessageID"], 0) + 1
            to.update(a["Address"] for a in m.get("To") or [])
        start += len(msgs)
        if not msgs or start >= page.get("messages_count", page.get("total", 0)):
            return seen, to


def kill_task(ns, task):
    """SIGKILLs the task's formpipe-task processes (its pods restart them)."""
    group = "formpipe.%s." % ns
    r = subprocess.run(["pgrep", "-f", "formpipe-task .*--group=%s[^ ]*\\.%s( |$)" % (group.replace(".", "\\."), task)],
                       capture_output=True, text=True)
    pids = [int(p) for p in r.stdout.split()]
    for p in pids:
        os.kill(p, 9)
    return len(pids)


def stream_ids(topic):
    """Every id on a stream, read with read_committed by Kafka's console consumer."""
    out = subprocess.run([TESTENV, "kafka-tool", "tools.consumer.ConsoleConsumer", "--bootstrap-server",
                          os.environ["FORMPIPE_KAFKA_BOOTSTRAP"], "--topic", topic, "--from-beginning",
                          "--isolation-level", "read_committed", "--timeout-ms", "15000"],
                         capture_output=True, text=True).stdout
    ids = {}
    for line in out.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        ids[ev["id"]] = ids.get(ev["id"], 0) + 1
    return ids


def main():
    ns = "e2e-builtin-%d" % os.getpid()
    name, sheet = "asked-%d" % os.getpid(), "e2e-builtin-sheet-%d" % os.getpid()
    work = tempfile.mkdtemp(prefix="e2e-builtin-")
    key = hmac_key(work)
    hook = HookReceiver(key, os.path.join(work, "hook.log"))
    try:
        run(ns, name, sheet, key, hook)
    finally:
        hook.stop()
    finish()


def run(ns, name, sheet, key, hook):
    check("Mailpit runs (scripts/testenv)", bool(API) and mailpit("GET", "/api/v1/info") is not None, API)
    mailpit("DELETE", "/api/v1/messages")
    kubectl("create", "namespace", ns)
    kubectl("create", "secret", "generic", "smtp", "-n", ns, "--from-literal=url=" + os.environ["FORMPIPE_MAILPIT_SMTP"],
            "--from-literal=username=" + os.environ["FORMPIPE_MAILPIT_USER"],
            "--from-file=password=" + os.environ["FORMPIPE_MAILPIT_PASSWORD_FILE"],
            "--from-file=ca.crt=" + os.environ["FORMPIPE_MAILPIT_CA_FILE"])
    pipeline_with_hook_secret(ns, name, sheet, key)
    kubectl("apply", "-f", "-", input=tasks_yaml(ns, name, hook.url))
    until("the FormTasks Ready", lambda: all(
        kubectl("get", "ft", t, "-n", ns, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                check=False) == "True" for t in ("confirm", "check", "flagged")), 120)

    bodies, seq, listed = [], {}, []
    for i in range(N):
        k = 1000 + i % KEYS
        seq[k] = seq.get(k, 0) + 1
        extra = None
        if i % 10 == 0:
            extra = {"name": "student %06d says %s" % (i, SPELLINGS[(i // 10) % len(SPELLINGS)])}
        listed.append(extra is not None)
        bodies.append(submission(i, k, seq[k], extra))
    # moderate keeps up with the posts: it is killed while they still arrive; email while it sends
    kills = {"confirm": 0, "check": 0}

    def kill_when(task, delay):
        time.sleep(delay)
        kills[task] = kill_task(ns, task)
        print("  killed %s (%d processes) at t=%.1f s" % (task, kills[task], time.time() - t0), flush=True)
    killers = [threading.Thread(target=kill_when, args=("check", 1.0)),
               threading.Thread(target=kill_when, args=("confirm", 4.0))]
    t0 = time.time()
    for k in killers:
        k.start()
    ids = post_all("/forms/%s" % name, bodies, threads=20)
    print("  %d submissions accepted in %.1f s" % (N, time.time() - t0), flush=True)
    for k in killers:
        k.join()
    flagged_want = {i for i, is_listed in zip(ids, listed) if is_listed}

    groups = {"sheet path": "formpipe.%s.%s" % (ns, name), "email": "formpipe.%s.%s.confirm" % (ns, name),
              "moderate": "formpipe.%s.%s.check" % (ns, name), "webhook on the stream": "formpipe.%s.%s.flagged" % (ns, name)}
    drained, deadline = {}, time.time() + 900
    while len(drained) < len(groups) and time.time() < deadline:
        lag = group_lag(*groups.values())
        at = time.time() - t0
        print("  t=%5.1f s lag: %s" % (at, ", ".join("%s %s" % (w, lag[g]) for w, g in groups.items())), flush=True)
        for what, g in groups.items():
            if lag[g] == 0 and what not in drained:
                drained[what] = at
        time.sleep(2)
    check("every group drained in 900 s", len(drained) == len(groups), str(drained))
    check("the email and moderate tasks were each killed while working", all(kills.values()), str(kills))

    flush_until(ns, name, sheet, N)
    verify_sheet(sheet, ids, COLUMNS, "sheet beside three tasks")

    seen, to = mails()
    repeats = sum(n - 1 for n in seen.values())
    window = MAX_CONNECTIONS * kills["confirm"]
    print("  Mailpit: %d distinct Message-IDs, %d repeated mails (crash window %d)" % (len(seen), repeats, window),
          flush=True)
    want_mids = {"<%s@formpipe.%s.%s>" % (i, ns, name) for i in ids}
    got_mids = {m if m.startswith("<") else "<%s>" % m for m in seen}
    check("one mail per submission: a Message-ID per accepted id", got_mids == want_mids,
          "missing %d, unexpected %d" % (len(want_mids - got_mids), len(got_mids - want_mids)))
    check("repeated mails stay within the crash window", repeats <= window, "%d > %d" % (repeats, window))
    check("each mail went to its submitter", to == {b["email"] for b in bodies}, "%d addresses" % len(to))

    hooked, bad = hook.delivered()
    print("  flagged receiver: %d ids (%d expected flagged), %d repeated deliveries"
          % (len(hooked), len(flagged_want), sum(n - 1 for n in hooked.values())), flush=True)
    check("the webhook on the moderated stream received exactly the flagged submissions",
          set(hooked) == flagged_want, "missing %d, unexpected %d" % (len(flagged_want - set(hooked)),
                                                                       len(set(hooked) - flagged_want)))
    check("every delivery on the stream was signed with the Secret's key", bad == 0, str(bad))
    out_topic = kubectl("get", "ft", "check", "-n", ns, "-o", "jsonpath={.status.outputTopic}")
    streamed = stream_ids(out_topic)
    check("the moderated stream holds every id exactly once (read_committed)",
          set(streamed) == set(ids) and all(n == 1 for n in streamed.values()),
          "%d ids, %d repeated" % (len(streamed), sum(n - 1 for n in streamed.values())))
    print(kubectl("get", "ft", "-n", ns, "-o", "wide"), flush=True)

    kubectl("delete", "namespace", ns)
    until("pod processes stopped", lambda: not kubectl("get", "pods", "-n", ns, "-o", "name", check=False), 120)
    bad = sanitizer_reports(ns)
    check("no sanitizer report in any pod or operator log", not bad, ", ".join(bad))


if __name__ == "__main__":
    main()
