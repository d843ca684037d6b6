#!/usr/bin/env python3
"""End to end: a real Prometheus (Debian's package) scrapes the local stack the way the
chart's monitors would - the operators with honor_labels (ServiceMonitor), the ingest,
consumer and task pods from tests/e2e/node.py's file_sd list with the PodMonitor's labels -
and evaluates the chart's alert rules. Checks:
  * every query of the chart's dashboard is accepted by Prometheus, and the ones a working
    student form feeds return data for that form's namespace and pipeline;
  * FormPipelineNotProgressing fires when the pipeline's consumers are frozen (SIGSTOP)
    while events wait, and clears once they run again (SIGCONT).
The rules' `for:` durations are shortened to seconds in the copy Prometheus loads (their
real durations are tested by promtool, ctest unit.alerts).
Run under scripts/testenv exec with the stack up (ctest fixture `stack`)."""
import http.client, json, os, re, signal, subprocess, sys, tempfile, time, urllib.parse, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "alerts"))
from e2e import (INGRESS, ROOT, check, finish, flush_until, kubectl, pipeline_yaml, post_all, ready, sanitizer_reports, stack,
                 submission, until)
import check_dashboard

PROM_PORT = 29909
PROM = "http://127.0.0.1:%d" % PROM_PORT
OPERATOR_PORTS = (29881, 29882)
TARGETS = os.path.join(os.environ.get("FORMPIPE_STACK_DIR", "/tmp/formpipe-stack"), "node", "scrape-targets.json")
# Panels a working student form without tasks, dead letters or waiting rows feeds.
MUST_HAVE_DATA = {
    "Submissions accepted /s by form", "Refused /s by status (4xx: the client, 5xx: formpipe)",
    "Failing fields /s by rule", "Kafka acknowledgement latency p99", "Pipeline lag (events not yet in the buffer)",
    "Consumer lag by partition", "Rows inserted /s", "Rows waiting for the sheet", "Redis errors /s",
    "Rows written to the sheet /s", "Rows written by the newest run", "Failed runs in a row", "Quota waits per run", "429 answers per run",
    "Time since the last successful run", "On the pipelines' dead-letter topics", "Reconciles /s by result",
    "Leader (1: a replica leads)", "Work queue depth", "Watch restarts /s",
}


def start_prometheus(work):
    rules = open(os.path.join(ROOT, "charts", "formpipe", "files", "alerts.yaml")).read()
    rules = re.sub(r"for: \d+m", "for: 4s", rules)
    with open(os.path.join(work, "alerts.yaml"), "w") as f:
        f.write(rules)
    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [os.path.join(work, "alerts.yaml")],
        "scrape_configs": [
            {"job_name": "formpipe-operator", "honor_labels": True,
             "static_configs": [{"targets": ["127.0.0.1:%d" % p for p in OPERATOR_PORTS]}]},
            {"job_name": "formpipe-pods", "file_sd_configs": [{"files": [TARGETS], "refresh_interval": "2s"}]},
        ],
    }
    with open(os.path.join(work, "prometheus.yml"), "w") as f:
        json.dump(config, f)   # JSON is YAML
    log = open(os.path.join(work, "prometheus.log"), "w")
    proc = subprocess.Popen(["prometheus", "--config.file=" + os.path.join(work, "prometheus.yml"),
                             "--storage.tsdb.path=" + os.path.join(work, "data"),
                             "--web.listen-address=127.0.0.1:%d" % PROM_PORT], stdout=log, stderr=log)
    until("Prometheus ready", lambda: get("/-/ready", raw=True), 60)
    return proc


def get(path, raw=False, **params):
    url = PROM + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
    except OSError:
        return None
    return body if raw else json.loads(body)


def query(expr):
    """(status, result list) of an instant query."""
    r = get("/api/v1/query", query=expr)
    return (r or {}).get("status"), (r or {}).get("data", {}).get("result", [])


def firing(alert, ns, name):
    alerts = (get("/api/v1/alerts") or {}).get("data", {}).get("alerts", [])
    return any(a["labels"].get("alertname") == alert and a["labels"].get("namespace") == ns and
               a["labels"].get("pipeline") == name and a["state"] == "firing" for a in alerts)


def consumer_pids(topic):
    r = subprocess.run(["pgrep", "-f", "formpipe-consumer .*--topic=%s( |$)" % re.escape(topic)],
                       capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def main():
    ns = "e2e-obs-%d" % os.getpid()
    name, sheet = "observed-%d" % os.getpid(), "e2e-obs-sheet-%d" % os.getpid()
    work = tempfile.mkdtemp(prefix="e2e-obs-")
    stack("namespace", ns)
    stack("sheet", sheet)
    kubectl("apply", "-f", "-", input=pipeline_yaml(ns, name, sheet, 2, spec="  progressDeadlineSeconds: 15\n"))
    until("FormPipeline Ready", lambda: ready(ns, name), 120)
    prom = start_prometheus(work)
    try:
        run(ns, name, sheet)
    finally:
        prom.terminate()
        prom.wait(30)
    kubectl("delete", "namespace", ns, "--wait=false")
    check("no sanitizer report in the pods' or operators' logs", not sanitizer_reports(ns), str(sanitizer_reports(ns)))
    finish()


def run(ns, name, sheet):
    ids = post_all("/forms/%s" % name, [submission(i, 7000 + i % 50, i) for i in range(300)], threads=4)
    refused = refuse_some(name)
    check("invalid submissions are refused with 422", refused == 5, str(refused))
    flush_until(ns, name, sheet, len(ids))
    until("the operator exports the flush outcome",
          lambda: query('formpipe_pipeline_flush_last_run_rows{namespace="%s",pipeline="%s"}' % (ns, name))[1], 120)
    until("the pods are scraped",
          lambda: len(query('up{job="formpipe-pods",namespace="%s",pipeline="%s"} == 1' % (ns, name))[1]) >= 3, 60)

    t0 = time.time()
    missing = set(MUST_HAVE_DATA)
    while missing and time.time() - t0 < 60:
        for title, row, expr in check_dashboard.queries(json.load(open(check_dashboard.PATH))):
            if title in missing and query(check_dashboard.expand(expr, ns, name))[1]:
                missing.discard(title)
        time.sleep(2)
    refused_queries = []
    for title, row, expr in check_dashboard.queries(json.load(open(check_dashboard.PATH))):
        st, _ = query(check_dashboard.expand(expr, ns, name))
        if st != "success":
            refused_queries.append(title)
    check("Prometheus accepts every dashboard query", not refused_queries, str(refused_queries))
    check("the dashboard's panels have data for the student form", not missing, "no data: %s" % sorted(missing))
    st, res = query('formpipe_pipeline_ready{namespace="%s",pipeline="%s"}' % (ns, name))
    check("the operator's series keep the pipeline's namespace (honor_labels)", res and res[0]["value"][1] == "1",
          str(res))

    topic = kubectl("get", "fp", name, "-n", ns, "-o", "jsonpath={.status.topic}")
    pids = consumer_pids(topic)
    check("the pipeline's consumers are found", len(pids) >= 1, topic)
    t0 = time.time()
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        post_all("/forms/%s" % name, [submission(i, 8000 + i, i) for i in range(50)], threads=2)
        until("FormPipelineNotProgressing fires", lambda: firing("FormPipelineNotProgressing", ns, name), 180)
        print("  consumers frozen: the alert fired after %.1f s" % (time.time() - t0), flush=True)
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    t0 = time.time()
    until("FormPipelineNotProgressing clears", lambda: not firing("FormPipelineNotProgressing", ns, name), 180)
    print("  consumers running again: the alert cleared after %.1f s" % (time.time() - t0), flush=True)


def refuse_some(name):
    """POSTs 5 invalid submissions; returns how many got 422."""
    n = 0
    for i in range(5):
        c = http.client.HTTPConnection(*INGRESS, timeout=10)
        c.request("POST", "/forms/%s" % name, json.dumps({"name": "x", "roll": "abc"}),
                  {"Content-Type": "application/json"})
        n += c.getresponse().status == 422
        c.close()
    return n


if __name__ == "__main__":
    main()
