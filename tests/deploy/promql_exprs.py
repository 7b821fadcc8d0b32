"""Every PromQL expression Octet ships, with Grafana and prometheus-adapter placeholders filled in.

Shared by promql_check.py (offline: promtool parses them) and prometheus_e2e.py (a live Prometheus
evaluates them against a running octet-server).
"""
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy/grafana/octet-dashboard.json"
ALERTS = REPO / "deploy/prometheus/alerts.yml"
ADAPTER_RULES = REPO / "deploy/prometheus/prometheus-adapter-rules.yaml"

# Metric names of /work/coord/SERVER_CONTRACT.md (histograms also have _bucket, _sum, _count).
CONTRACT_COUNTERS_GAUGES = {
    "octet_requests_total", "octet_inferences_total", "octet_queue_depth",
    "octet_inflight_requests", "octet_model_weight_bytes", "octet_model_fp32_weight_bytes",
    "octet_model_loaded", "octet_model_load_failures_total", "octet_compute_cpu_seconds_total",
    "octet_cost_per_million_inferences", "process_resident_memory_bytes",
    "process_cpu_seconds_total", "process_start_time_seconds",
}
CONTRACT_HISTOGRAMS = {
    "octet_request_latency_seconds", "octet_queue_latency_seconds",
    "octet_compute_latency_seconds", "octet_batch_size",
}
CONTRACT_METRICS = CONTRACT_COUNTERS_GAUGES | {
    h + s for h in CONTRACT_HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
# Series from outside the server that the alerts use: cAdvisor (kubelet) and Prometheus itself.
EXTERNAL_METRICS = {"container_memory_working_set_bytes", "container_spec_memory_limit_bytes", "up"}


def grafana_substitute(expr, rate_interval="1m", interval="15s", range_="1h", all_value=".*"):
    """What Grafana sends for a dashboard query: template variables at "All" (their allValue)."""
    for name in ("job", "model", "version"):
        expr = expr.replace("${" + name + "}", all_value).replace("$" + name, all_value)
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", interval)
    return expr.replace("$__range", range_)


def adapter_substitute(query, series, matchers, group_by):
    return (query.replace("<<.Series>>", series).replace("<<.LabelMatchers>>", matchers)
            .replace("<<.GroupBy>>", group_by))


def _yaml_load(path):
    import yaml  # python3-yaml (Debian)
    with open(path) as f:
        return yaml.safe_load(f)


def dashboard_queries(dashboard=None):
    """[(where, raw_expr, kind)] kind: "panel" (must return data live) or "variable"."""
    d = json.loads(Path(dashboard or DASHBOARD).read_text())
    out = []

    def walk(panels):
        for p in panels:
            if p.get("type") == "row":
                walk(p.get("panels", []))
                continue
            for t in p.get("targets", []):
                out.append((f'panel "{p["title"]}" {t["refId"]}', t["expr"], "panel"))

    walk(d["panels"])
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        # label_values(SELECTOR, label) is Grafana's; the selector is PromQL.
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q, re.S)
        out.append((f'variable "{v["name"]}"', m.group(1) if m else q, "variable"))
    return out


def alert_rules(path=None):
    """[(alertname, expr)] from the alert rules file."""
    out = []
    for group in _yaml_load(path or ALERTS)["groups"]:
        for rule in group["rules"]:
            out.append((rule.get("alert") or rule.get("record"), rule["expr"]))
    return out


def adapter_queries(path=None, matchers='namespace="default",pod=~".+"', group_by="pod"):
    """[(where, expr)] prometheus-adapter metricsQuery with the adapter's placeholders filled."""
    out = []
    for i, rule in enumerate(_yaml_load(path or ADAPTER_RULES)["rules"]):
        series = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", rule["seriesQuery"]).group(1)
        out.append((f"adapter rule {i} ({rule['name']['as']})",
                    adapter_substitute(rule["metricsQuery"], series, matchers, group_by)))
    return out


_PROMQL_WORDS = {
    "sum", "by", "without", "rate", "irate", "increase", "histogram_quantile", "max", "min", "avg",
    "count", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
    "max_over_time", "min_over_time", "avg_over_time", "label_values", "bool", "topk", "bottomk",
    "le", "model", "version", "code", "job", "instance", "namespace", "pod", "container",
}


def metric_names(expr):
    """Metric names an expression selects (identifiers before a selector, range or operator)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # drop string literals
    expr = re.sub(r"\{[^}]*\}", "{}", expr)                   # and label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n not in _PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?", n)
            and not n.startswith("__")}
