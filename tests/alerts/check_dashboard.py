#!/usr/bin/env python3
"""Checks that every query of the chart's Grafana dashboard is valid PromQL: writes each
as a recording rule and runs `promtool check rules` on them (ctest unit.dashboard).
Fails when a panel has no query or promtool refuses one."""
import json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
dashboard = json.load(open(os.path.join(ROOT, "charts", "formpipe", "files", "dashboard.json")))
rules, bad = [], []
for panel in dashboard["panels"]:
    exprs = [t.get("expr", "") for t in panel.get("targets", [])]
    if not exprs or not all(exprs):
        bad.append("panel %r has no query" % panel.get("title"))
    for i, expr in enumerate(exprs):
        rules.append({"record": "dashboard:panel%d:%d" % (panel["id"], i), "expr": expr})
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)   # JSON is YAML
r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
os.unlink(f.name)
if r.returncode != 0:
    bad.append("promtool refuses a query: " + (r.stdout + r.stderr).strip())
print("%d queries of %d panels checked" % (len(rules), len(dashboard["panels"])))
for b in bad:
    print("FAIL - " + b)
sys.exit(1 if bad else 0)
