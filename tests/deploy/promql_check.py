#!/usr/bin/env python3
"""Offline checks of Octet's Prometheus and Grafana files (no server, no network):

  - promtool check rules deploy/prometheus/alerts.yml, and its unit tests (promtool test rules
    deploy/prometheus/alerts_test.yml: the alerts fire on hand-computed inputs, and only then);
  - promtool check config deploy/prometheus/prometheus.yml and prometheus-compose.yml;
  - every dashboard query (variables filled as Grafana does), every alert expression and the
    prometheus-adapter query parse as PromQL (promtool parses them as recording rules);
  - they only name metrics of the server contract (catches misspelled metric names);
  - every panel filters on the $model and $version template variables where the metric has them;
  - the dashboard is well formed (unique ids, data source variable, layout inside 24 columns,
    no overlapping panels, a description on every panel);
  - the checks reject a deliberately broken expression and a misspelled metric (self-test).

Usage: promql_check.py [--promtool PATH]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import promql_exprs as px  # noqa: E402

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def parse_errors(promtool, exprs):
    """[(where, error)] for expressions promtool cannot parse (as recording rules). All in one
    file first; only when that fails, one file per expression to name each culprit."""
    import yaml

    def check(tmp, name, items):
        path = Path(tmp) / f"{name}.yml"
        rules = [{"record": f"octet_check:expr{i}", "expr": e} for i, (_, e) in enumerate(items)]
        path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
        code, out = run([promtool, "check", "rules", str(path)])
        return None if code == 0 else (out.splitlines()[-1] if out else f"exit {code}")

    with tempfile.TemporaryDirectory() as tmp:
        if check(tmp, "all", exprs) is None:
            return []
        errors = []
        for i, item in enumerate(exprs):
            err = check(tmp, f"expr{i}", [item])
            if err:
                errors.append((item[0], err))
        return errors or [("all expressions", check(tmp, "all", exprs))]


def unknown_metrics(exprs):
    bad = []
    for where, expr in exprs:
        for name in sorted(px.metric_names(expr)):
            if name not in px.CONTRACT_METRICS and name not in px.EXTERNAL_METRICS:
                bad.append((where, name))
    return bad


def check_dashboard(d):
    ids, rects = set(), []
    for v in ("datasource", "job", "model", "version"):
        if v not in [t["name"] for t in d["templating"]["list"]]:
            fail(f"dashboard has no ${v} template variable")
    for p in d["panels"]:
        if p["id"] in ids:
            fail(f'dashboard panel id {p["id"]} is used twice')
        ids.add(p["id"])
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 24:
            fail(f'panel "{p["title"]}" is outside the 24-column grid')
        for other, og in rects:
            if (g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"]
                    and g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]):
                fail(f'panel "{p["title"]}" overlaps "{other}"')
        rects.append((p["title"], g))
        if p["type"] == "row":
            continue
        if not p.get("description"):
            fail(f'panel "{p["title"]}" has no description')
        if p.get("datasource", {}).get("uid") != "${datasource}":
            fail(f'panel "{p["title"]}" does not use the $datasource variable')
        refs = [t["refId"] for t in p.get("targets", [])]
        if not refs or len(refs) != len(set(refs)):
            fail(f'panel "{p["title"]}" has no targets or repeats a refId')
        for t in p.get("targets", []):
            expr = t["expr"]
            names = px.metric_names(px.grafana_substitute(expr))
            octet = [n for n in names if n.startswith("octet_")]
            if octet and "$model" not in expr:
                fail(f'panel "{p["title"]}" {t["refId"]} ignores the $model variable')
            versioned = [n for n in octet if not n.startswith("octet_model_load_failures")]
            if versioned and "$version" not in expr:
                fail(f'panel "{p["title"]}" {t["refId"]} ignores the $version variable')
            if "$job" not in expr:
                fail(f'panel "{p["title"]}" {t["refId"]} ignores the $job variable')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--promtool", default="promtool")
    promtool = ap.parse_args().promtool
    prom = px.REPO / "deploy/prometheus"

    for cmd in ([promtool, "check", "rules", str(prom / "alerts.yml")],
                [promtool, "test", "rules", str(prom / "alerts_test.yml")],
                [promtool, "check", "config", str(prom / "prometheus.yml")],
                [promtool, "check", "config", str(prom / "prometheus-compose.yml")]):
        code, out = run(cmd)
        label = " ".join(Path(c).name if "/" in c else c for c in cmd)
        if code != 0:
            fail(f"{label}:\n{out}")
        else:
            print(f"  ok  {label}")

    dash = [(w, px.grafana_substitute(e)) for w, e, _ in px.dashboard_queries()]
    alerts = [(f"alert {a}", e) for a, e in px.alert_rules()]
    adapter = px.adapter_queries()
    everything = dash + alerts + adapter
    for where, err in parse_errors(promtool, everything):
        fail(f"{where} does not parse: {err}")
    for where, name in unknown_metrics(everything):
        fail(f"{where} uses {name}, which is not a metric of the server contract")
    print(f"  ok  {len(dash)} dashboard, {len(alerts)} alert and {len(adapter)} adapter "
          "expressions parsed and checked against the contract's metric names")

    check_dashboard(json.loads(px.DASHBOARD.read_text()))
    print("  ok  dashboard structure")

    # Self-test: the checks above must be able to fail.
    broken = [("broken", "sum by (model (rate(octet_requests_total[5m]))")]
    if not parse_errors(promtool, broken):
        fail("self-test: a broken expression parsed")
    if not unknown_metrics([("typo", "rate(octet_request_total[5m])")]):
        fail("self-test: a misspelled metric name was accepted")
    print("  ok  self-test: broken expression and misspelled metric rejected")

    if failures:
        print(f"promql_check: {len(failures)} failure(s)")
        return 1
    print("promql_check: all Prometheus and Grafana checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
