#!/usr/bin/env python3
"""Many forms on few pods (issue #19): FormPipelines in mode Shared share one ingest
Deployment, one consumer Deployment and one flush CronJob per namespace.

Checks, on the stack (operator, node harness, nginx, the Sheets emulator):
  * three shared pipelines make one set of shared children and no per-pipeline
    Deployment or CronJob; the shared ConfigMap holds one form per pipeline;
  * a fourth pipeline added later is served and consumed without restarting any pod;
  * submissions to every form land in their own sheets exactly once, flushed by the
    one shared CronJob; each pipeline's status is its own (lag, rows waiting, last flush);
  * the flush CronJob is suspended while every buffer is empty and resumes when rows wait;
  * a pipeline switched to Dedicated and back while submissions flow loses and
    duplicates nothing;
  * deleting a pipeline removes its form; deleting the last removes the shared children.
SHARED_N (env FORMPIPE_E2E_SHARED_N, default 400) submissions per form."""
import json, os, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (check, finish, kubectl, pipeline_yaml, post_all, ready, sanitizer_reports, sheet_values, stack,
                 status, submission, until, verify_sheet)

NS = "e2e-shared-%d" % os.getpid()   # its own topics and buffers each run
N = int(os.environ.get("FORMPIPE_E2E_SHARED_N", "400"))
COLUMNS = ["name", "roll", "university", "cgpa", "gender", "age", "email", "mobile"]
SHARED = {"ingest": "deployment/formpipe-shared-ingest", "consumer": "deployment/formpipe-shared-consumer",
          "flush": "cronjob/formpipe-shared-flush", "forms": "configmap/formpipe-shared-forms"}


def sheet(name):
    return "%s-%s" % (NS, name)


def apply(name, mode="Shared"):
    kubectl("apply", "-f", "-", input=pipeline_yaml(NS, name, sheet(name), 3, spec="  mode: %s\n" % mode))


def exists(ref):
    return kubectl("get", ref, "-n", NS, "-o", "name", check=False) != ""


def pods(component):
    """{pod name: (uid, restarts)} of the shared workload's pods."""
    out = kubectl("get", "pods", "-n", NS, "-l", "app.kubernetes.io/component=%s,formpipe.io/shared=true" % component,
                  "-o", "json")
    res = {}
    for p in json.loads(out)["items"]:
        restarts = sum(c.get("restartCount", 0) for c in p.get("status", {}).get("containerStatuses", []))
        res[p["metadata"]["name"]] = (p["metadata"]["uid"], restarts)
    return res


def forms_in_configmap():
    out = kubectl("get", SHARED["forms"], "-n", NS, "-o", "json", check=False)
    return sorted(json.loads(out).get("data", {})) if out else []


def flush_shared(want, timeout=300):
    """Runs Jobs from the shared CronJob until every sheet of want ({pipeline: rows})
    holds its rows; returns the seconds it took."""
    t0, n = time.time(), 0
    while time.time() - t0 < timeout:
        n += 1
        job = "shared-now-%d-%d" % (int(t0) % 100000, n)
        kubectl("create", "job", job, "-n", NS, "--from=" + SHARED["flush"])
        until("job %s" % job, lambda: kubectl("get", "job", job, "-n", NS, "-o",
                                              "jsonpath={.status.succeeded}{.status.failed}", check=False), 180)
        if all(len(sheet_values(sheet(p))) - 1 >= rows for p, rows in want.items()):
            return time.time() - t0
        time.sleep(1)
    raise RuntimeError("the sheets did not reach %r rows in %d s" % (want, timeout))


def suspended():
    return kubectl("get", SHARED["flush"], "-n", NS, "-o", "jsonpath={.spec.suspend}", check=False) == "true"


def post_form(name, first, count):
    return post_all("/forms/" + name, [submission(i, i, 0) for i in range(first, first + count)])


def try_post_form(name, i):
    """One submission to form name: [id] when accepted, None while the form is not served
    yet (404 from the ingress or the ingest)."""
    try:
        return post_all("/forms/" + name, [submission(i, i, 0)], threads=1, retries=1)
    except RuntimeError as e:
        if "HTTP 404" in str(e) or "gave up" in str(e):
            return None
        raise


def main():
    stack("namespace", NS)
    names = ["alpha", "beta", "gamma"]
    for name in names + ["delta"]:
        stack("sheet", sheet(name))
    for name in names:
        apply(name)
    until("three shared pipelines Ready", lambda: all(ready(NS, n) for n in names), 180)

    check("one shared ingest, consumer and flush exist", all(exists(r) for r in SHARED.values()))
    own = [r for n in names for r in ("deployment/%s-ingest" % n, "deployment/%s-consumer" % n, "cronjob/%s-flush" % n)
           if exists(r)]
    check("no pipeline has its own Deployment or CronJob", not own, " ".join(own))
    check("the shared ConfigMap holds one form per pipeline", forms_in_configmap() == [n + ".json" for n in sorted(names)],
          str(forms_in_configmap()))
    for name in names:
        check("%s reports mode Shared" % name, status(NS, name, "{.status.mode}") == "Shared")

    before = {**pods("ingest"), **pods("consumer")}
    apply("delta")
    names.append("delta")
    # not available before the kubelet can have synced the form into every shared ingest pod
    until("delta says IngestAvailable False, FormSyncing", lambda: status(
        NS, "delta", '{.status.conditions[?(@.type=="IngestAvailable")].reason}') == "FormSyncing", 8)
    until("delta Ready", lambda: ready(NS, "delta"), 180)
    accepted = {}
    # the new form is served once the kubelet has synced the ConfigMap into the pods
    accepted["delta"] = until("delta accepts a submission", lambda: try_post_form("delta", 0), 180)
    after = {**pods("ingest"), **pods("consumer")}
    check("adding a pipeline restarts no shared pod", before == after, "%r -> %r" % (before, after))

    t0 = time.time()
    threads = [threading.Thread(target=lambda n=n: accepted.__setitem__(
        n, accepted.get(n, []) + post_form(n, 1000, N))) for n in names]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print("  posted %d submissions to %d forms in %.1f s" % (sum(map(len, accepted.values())), len(names),
                                                             time.time() - t0), flush=True)
    until("every shared pipeline's lag is 0",
          lambda: all(status(NS, n, "{.status.consumer.lag}") == "0" for n in names), 180)
    took = flush_shared({n: len(accepted[n]) for n in names})
    print("  one shared CronJob flushed %d forms in %.1f s" % (len(names), took), flush=True)
    for name in names:
        verify_sheet(sheet(name), accepted[name], COLUMNS, name)
    until("each pipeline's status shows 0 rows waiting and a last flush",
          lambda: all(status(NS, n, "{.status.flush.rowsWaiting} {.status.flush.lastSuccessfulTime}").startswith("0 ")
                      for n in names), 120)

    until("the flush CronJob is suspended while every buffer is empty", suspended, 120)
    until("each pipeline says its flush is idle (FlushScheduled Idle) and stays Ready",
          lambda: all(status(NS, n, '{.status.conditions[?(@.type=="FlushScheduled")].reason} '
                                    '{.status.conditions[?(@.type=="Ready")].status}') == "Idle True" for n in names), 60)
    extra = post_form("alpha", 5000, 3)
    accepted["alpha"] += extra
    until("the flush CronJob resumes when rows wait", lambda: not suspended(), 120)
    flush_shared({"alpha": len(accepted["alpha"])})

    # beta to Dedicated and back, submissions flowing all along
    stop, during, refused = threading.Event(), [], []

    def flow():
        i = 20000
        try:
            while not stop.is_set():
                during.extend(post_form("beta", i, 20))
                i += 20
        except RuntimeError as e:   # a 4xx, or 5xx past the retries: the switch dropped the form
            refused.append(str(e)[:300])
    t = threading.Thread(target=flow)
    t.start()
    try:
        apply("beta", "Dedicated")
        until("beta runs its own Deployments", lambda: status(NS, "beta", "{.status.mode}") == "Dedicated" and
              ready(NS, "beta") and exists("deployment/beta-ingest") and exists("deployment/beta-consumer"), 300)
        until("beta's form leaves the shared ConfigMap", lambda: "beta.json" not in forms_in_configmap(), 300)
        time.sleep(3)
        apply("beta", "Shared")
        until("beta reports mode Shared", lambda: status(NS, "beta", "{.status.mode}") == "Shared", 300)
        check("its own ingest still serves while the ingress controller moves over (drain)",
              exists("deployment/beta-ingest") and exists("service/beta-ingest"))
        until("beta is shared again", lambda: status(NS, "beta", "{.status.mode}") == "Shared" and ready(NS, "beta") and
              not exists("deployment/beta-ingest") and not exists("deployment/beta-consumer"), 300)
        time.sleep(3)
    finally:
        stop.set()
        t.join()
    accepted["beta"] += during
    print("  %d submissions to beta while it switched modes twice" % len(during), flush=True)
    check("no submission to beta was refused while it switched", not refused, " ".join(refused))
    until("beta's lag is 0", lambda: status(NS, "beta", "{.status.consumer.lag}") == "0", 180)
    flush_shared({"beta": len(accepted["beta"])})
    verify_sheet(sheet("beta"), accepted["beta"], COLUMNS, "beta after switching")

    kubectl("delete", "fp", "gamma", "-n", NS, "--timeout=120s")
    until("gamma's form leaves the shared ConfigMap", lambda: "gamma.json" not in forms_in_configmap(), 120)
    for name in ("alpha", "beta", "delta"):
        kubectl("delete", "fp", name, "-n", NS, "--timeout=120s")
    until("the shared children go with the last shared pipeline",
          lambda: not any(exists(r) for r in SHARED.values()), 120)
    bad = sanitizer_reports(NS)
    check("no sanitizer report in any pod or operator log", not bad, " ".join(bad))
    kubectl("delete", "namespace", NS, "--wait=false")
    finish()


if __name__ == "__main__":
    main()
