#!/usr/bin/env python3
"""Checks the chart's Grafana dashboard (ctest unit.dashboard): every query is valid PromQL
(each written as a recording rule for `promtool check rules`), every panel sits under a
row (one row per stage), and every per-pipeline panel honours the namespace and pipeline
variables. tests/e2e imports queries() and expand() to run them against a real Prometheus."""
import json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH = os.path.join(ROOT, "charts", "formpipe", "files", "dashboard.json")
ROWS = ["Ingest", "Kafka", "Buffer (Redis)", "Flush (Google Sheets)", "Dead letters", "Tasks", "Operator"]


def queries(dashboard):
    """(panel title, row title, expr) for every panel query, and the variables' queries."""
    out, row = [], None
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            row = panel["title"]
            continue
        for t in panel.get("targets", []) or [{}]:
            out.append((panel.get("title"), row, t.get("expr", "")))
    return out


def expand(expr, namespace=".*", pipeline=".*"):
    """The query as Grafana sends it with both variables set."""
    return expr.replace("$namespace", namespace).replace("$pipeline", pipeline)


def main():
    dashboard = json.load(open(PATH))
    bad, rules = [], []
    rows = [p["title"] for p in dashboard["panels"] if p.get("type") == "row"]
    if rows != ROWS:
        bad.append("rows are %r, want one per stage %r" % (rows, ROWS))
    names = [v["name"] for v in dashboard.get("templating", {}).get("list", [])]
    for want in ("datasource", "namespace", "pipeline"):
        if want not in names:
            bad.append("no %s variable" % want)
    qs = queries(dashboard)
    for i, (title, row, expr) in enumerate(qs):
        if not expr:
            bad.append("panel %r has no query" % title)
            continue
        if row is None:
            bad.append("panel %r is above the first row" % title)
        if row != "Operator" and ('namespace=~"$namespace"' not in expr or 'pipeline=~"$pipeline"' not in expr):
            bad.append("panel %r ignores the namespace or pipeline variable" % title)
        rules.append({"record": "dashboard:query%d" % i, "expr": expand(expr)})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)   # JSON is YAML
    r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    os.unlink(f.name)
    if r.returncode != 0:
        bad.append("promtool refuses a query: " + (r.stdout + r.stderr).strip())
    print("%d queries of %d panels in %d rows checked" % (len(qs), len(dashboard["panels"]) - len(rows), len(rows)))
    for b in bad:
        print("FAIL - " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
