#!/usr/bin/env python3
"""End to end: tasks plug into a pipeline's topic, each as its own consumer group.
A pipeline (the Sheets path) plus two webhook FormTasks, each posting to its own real
HTTP receiver (tests/fakes/hook_receiver.py, checking every signature):
  * fast: answers 200;
  * flaky: answers 500 to 30% of the requests (the task retries with backoff), and its
    task process is killed with SIGKILL twice while it delivers.
and a `container` task running the team's own code (examples/tasks/python-count, which
the node harness runs for the image ".../python-count:1").
10,000 submissions -> the sheet holds each exactly once; each receiver has seen every
id, the container task counted every id, every signature verified, a repeated delivery always with the same Idempotency-Key;
the slow task never delays the sheet: the pipeline's consumer group drains while the
flaky task still has lag (both lags are printed as they move). FormTask status
(Delivered, Ready) and deleting a task (its Deployment goes, nothing else moves).
Run under scripts/testenv exec with the stack up (ctest fixture `stack`)."""
import json, os, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (HookReceiver, check, hmac_key, pipeline_with_hook_secret, finish, flush_until, group_lag, kubectl,
                 post_all, sanitizer_reports, submission, until, verify_sheet, STACK_LOGS)

COLUMNS = ["name", "roll", "university", "cgpa", "gender", "age", "email", "mobile"]
N, KEYS = 10000, 200


def task_yaml(ns, name, pipeline, url, max_attempts=10, backoff="{}"):
    return """apiVersion: formpipe.io/v1alpha1
kind: FormTask
metadata: {name: %s, namespace: %s}
spec:
  pipeline: %s
  webhook: {url: "%s/hook/%s", secretRef: {name: hook, key: hmac}, timeoutSeconds: 5}
  maxAttempts: %d
  backoff: %s
  scaling: {minReplicas: 1, lagPerReplica: 1000}
""" % (name, ns, pipeline, url, name, max_attempts, backoff)


COUNT_TASK = """apiVersion: formpipe.io/v1alpha1
kind: FormTask
metadata: {name: count, namespace: %s}
spec:
  pipeline: %s
  container:
    image: registry.example.com/python-count:1
    env: [{name: COUNT_FIELD, value: gender}]
"""


def counted_ids(ns):
    """{id: lines} the python-count task printed, over all its pods' logs."""
    seen = {}
    for f in os.listdir(STACK_LOGS):
        if f.startswith(ns + "_") and "count" in f:
            for line in open(os.path.join(STACK_LOGS, f), errors="replace"):
                if line.startswith('{"id"'):
                    i = json.loads(line)["id"]
                    seen[i] = seen.get(i, 0) + 1
    return seen


def task_status(ns, name):
    out = kubectl("get", "ft", name, "-n", ns, "-o", "json", check=False)
    return json.loads(out) if out else {}


def task_ready(ns, name):
    o = task_status(ns, name)
    conds = {c["type"]: c["status"] for c in o.get("status", {}).get("conditions", [])}
    return conds.get("Ready") == "True" and o["status"].get("observedGeneration") == o["metadata"]["generation"]



def kill_task(ns, task):
    r = subprocess.run(["pgrep", "-f", "formpipe-task .*%s_[^ ]*%s" % (ns, task)], capture_output=True, text=True)
    pids = [int(p) for p in r.stdout.split()]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return len(pids)


def main():
    ns = "e2e-tasks-%d" % os.getpid()
    name, sheet = "tasked-%d" % os.getpid(), "e2e-tasks-sheet-%d" % os.getpid()
    work = tempfile.mkdtemp(prefix="e2e-tasks-")
    key = hmac_key(work)
    fast = HookReceiver(key, os.path.join(work, "fast.log"))
    flaky = HookReceiver(key, os.path.join(work, "flaky.log"))
    flaky.control("script", {"fail_percent": 30, "action": {"status": 500}})
    try:
        run(ns, name, sheet, key, fast, flaky)
    finally:
        fast.stop()
        flaky.stop()
    finish()


def run(ns, name, sheet, key, fast, flaky):
    pipeline_with_hook_secret(ns, name, sheet, key)
    t0 = time.time()
    kubectl("apply", "-f", "-", input=task_yaml(ns, "fast", name, fast.url))
    kubectl("apply", "-f", "-", input=task_yaml(ns, "flaky", name, flaky.url, max_attempts=30,
                                                 backoff="{initialMilliseconds: 200, maxSeconds: 5}"))
    kubectl("apply", "-f", "-", input=COUNT_TASK % (ns, name))
    until("the FormTasks Ready", lambda: all(task_ready(ns, t) for t in ("fast", "flaky", "count")), 120)
    print("  apply -> three FormTasks Ready: %.1f s" % (time.time() - t0), flush=True)
    owner = task_status(ns, "fast")["metadata"].get("ownerReferences", [{}])[0]
    check("a FormTask is owned by its FormPipeline", owner.get("kind") == "FormPipeline" and owner.get("name") == name,
          str(owner))

    bodies, seq = [], {}
    for i in range(N):
        k = 1000 + i % KEYS
        seq[k] = seq.get(k, 0) + 1
        bodies.append(submission(i, k, seq[k]))
    t0 = time.time()
    ids = post_all("/forms/%s" % name, bodies, threads=20)
    print("  %d submissions accepted in %.1f s" % (N, time.time() - t0), flush=True)

    groups = {"sheet path (consumers)": "formpipe.%s.%s" % (ns, name),
              "fast task": "formpipe.%s.%s.fast" % (ns, name),
              "flaky task": "formpipe.%s.%s.flaky" % (ns, name),
              "container task": "formpipe.%s.%s.count" % (ns, name)}
    drained, kills, deadline = {}, 0, time.time() + 600
    while len(drained) < len(groups) and time.time() < deadline:
        lag = group_lag(*groups.values())
        at = time.time() - t0
        print("  t=%5.1f s lag: %s" % (at, ", ".join("%s %s" % (w, lag[g]) for w, g in groups.items())), flush=True)
        for what, g in groups.items():
            if lag[g] == 0 and what not in drained:
                drained[what] = at
        if kills < 2 and "flaky task" not in drained and at > 10 * (kills + 1):
            kills += kill_task(ns, "flaky") and 1
        time.sleep(2)
    for what in groups:
        print("  %s drained after %s s" % (what, "%.1f" % drained[what] if what in drained else "never"), flush=True)
    check("every group drained in 600 s", len(drained) == len(groups), str(drained))
    check("the flaky task's process was killed twice while delivering", kills == 2, str(kills))
    check("the slow task never delays the sheet: the consumers drained while the flaky task still had lag",
          drained.get("sheet path (consumers)", 1e9) < drained.get("flaky task", 0), str(drained))

    took = flush_until(ns, name, sheet, N)
    print("  flushed to the sheet in %.1f s" % took, flush=True)
    verify_sheet(sheet, ids, COLUMNS, "sheet with two tasks on the topic")
    want = set(ids)
    for what, receiver in (("fast", fast), ("flaky", flaky)):
        seen, bad = receiver.delivered()
        repeats = sum(n - 1 for n in seen.values())
        print("  %s receiver: %d ids answered 2xx, %d repeated deliveries, %d bad signatures"
              % (what, len(seen), repeats, bad), flush=True)
        check("the %s receiver saw every accepted id" % what, set(seen) == want,
              "missing %d, unexpected %d" % (len(want - set(seen)), len(set(seen) - want)))
        check("every %s delivery was signed with the Secret's key" % what, bad == 0)
    counted = counted_ids(ns)
    print("  container task: %d ids counted, %d repeated" % (len(counted), sum(n - 1 for n in counted.values())),
          flush=True)
    check("the container task (the team's own code) handled every accepted id once", set(counted) == want
          and all(n == 1 for n in counted.values()), "missing %d" % len(want - set(counted)))
    stats = flaky.control("stats")
    check("the flaky receiver answered 500 to some requests (retried)", stats["answered"].get("500", 0) > 0, str(stats))

    until("FormTask status counts every delivery",
          lambda: task_status(ns, "fast").get("status", {}).get("delivered") == N
          and task_status(ns, "flaky").get("status", {}).get("delivered") == N, 60)
    for t in ("fast", "flaky"):
        st = task_status(ns, t).get("status", {})
        check("FormTask %s: delivered %d, dead-lettered 0, lag 0" % (t, N),
              st.get("delivered") == N and st.get("deadLettered", 0) == 0 and st.get("lag", 0) == 0, str(st))
    print(kubectl("get", "ft", "-n", ns), flush=True)

    # deleting a task removes its Deployment and touches nothing else
    before = kubectl("get", "deploy", "-n", ns, "-o",
                     "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}").split()
    kubectl("delete", "ft", "flaky", "-n", ns)
    until("the flaky task's Deployment is gone",
          lambda: not [d for d in kubectl("get", "deploy", "-n", ns, "-o", "name").split() if "flaky" in d], 60)
    after = kubectl("get", "deploy", "-n", ns, "-o",
                    "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}").split()
    check("deleting a task leaves every other Deployment untouched",
          set(after) == {d for d in before if "flaky" not in d.split("=")[0]}, "%s -> %s" % (before, after))

    kubectl("delete", "namespace", ns)
    until("pod processes stopped", lambda: not kubectl("get", "pods", "-n", ns, "-o", "name", check=False), 60)
    bad = sanitizer_reports(ns)
    check("no sanitizer report in any pod or operator log", not bad, ", ".join(bad))


if __name__ == "__main__":
    main()
