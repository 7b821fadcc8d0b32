#!/usr/bin/env python3
"""End-to-end check of Octet's observability: a real octet-server, a real Prometheus scraping it,
octet-bench driving load, then every PromQL expression of the Grafana dashboard, the alert rules
and the prometheus-adapter rule evaluated through Prometheus' HTTP API (/api/v1/query).

Passes when:
  - promtool accepts the alert rules and the generated Prometheus config;
  - Prometheus loads the alert rules and evaluates each of them without error;
  - every expression parses (the API answers "success");
  - every dashboard panel query, every template-variable query and the adapter query return data,
    with the variables at "All" and at values picked from what the variables offer;
  - every alert expression without its threshold selects data (except cAdvisor's container_*
    series, absent outside Kubernetes), and OctetModelLoadFailed fires for the broken model;
  - health is NOT_SERVING while a model of the repository cannot load, and SIGTERM exits 0.

Everything binds 127.0.0.1 on free ports; the run is bounded (load --load-seconds per model) and
cleans up after itself. The server's model repository is a copy of deploy/models plus one broken
model, so load failures are counted too.

Usage:
  prometheus_e2e.py --server build/release/server/octet-server
                    --bench build/release/deploy/bench/octet-bench
                    [--prometheus /usr/bin/prometheus] [--promtool /usr/bin/promtool]
                    [--models deploy/models] [--load-seconds 8] [--keep]
octet-bench's command line is --bench-args (a template; {target} {model} {seconds} are filled in).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "deploy"))
import grpc_health  # noqa: E402  deploy/grpc_health.py
import promql_exprs as px  # noqa: E402

MODELS = ("fashion_mlp", "fashion_cnn")
DEFAULT_BENCH_ARGS = ("--target={target} --model={model} --concurrency=2 --warmup_seconds=0 "
                      "--seconds={seconds}")
SCRAPE_SECONDS = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}; log:\n{tail(log)}")
        try:
            if predicate():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}; log:\n{tail(log)}")


def tail(path, lines=40):
    if not path or not Path(path).exists():
        return ""
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def http_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def prom_query(base, expr, at):
    """(status, result list or error text) of an instant query."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    try:
        body = http_json(url)
    except urllib.error.HTTPError as e:  # 400 = bad expression, with a JSON error body
        body = json.loads(e.read() or b"{}")
    if body.get("status") != "success":
        return "error", f'{body.get("errorType")}: {body.get("error")}'
    return "success", body["data"]["result"]


def make_repository(src, dst):
    shutil.copytree(src, dst)
    # A model that cannot load: its config is a real one renamed, its ONNX file is garbage.
    broken = Path(dst) / "broken_model"
    (broken / "1").mkdir(parents=True)
    config = (Path(src) / "fashion_mlp" / "config.pbtxt").read_text()
    (broken / "config.pbtxt").write_text(config.replace("fashion_mlp", "broken_model"))
    (broken / "1" / "model.onnx").write_bytes(b"this is not an ONNX model\n")


def encode_bad_predict(model):
    """tensorflow.serving.PredictRequest{model_spec{name}} with no inputs: INVALID_ARGUMENT."""
    name = model.encode()
    spec = b"\x0a" + bytes([len(name)]) + name
    return b"\x0a" + bytes([len(spec)]) + spec


def send_bad_requests(target, model, count):
    import grpc
    with grpc.insecure_channel(target) as ch:
        call = ch.unary_unary("/tensorflow.serving.PredictionService/Predict",
                              request_serializer=lambda x: x, response_deserializer=lambda x: x)
        codes = {}
        for _ in range(count):
            try:
                call(encode_bad_predict(model), timeout=5)
                codes["OK"] = codes.get("OK", 0) + 1
            except grpc.RpcError as e:
                codes[e.code().name] = codes.get(e.code().name, 0) + 1
        return codes


class Results:
    def __init__(self):
        self.passed, self.failed = 0, []

    def ok(self, msg):
        self.passed += 1
        print(f"  ok    {msg}")

    def fail(self, msg):
        self.failed.append(msg)
        print(f"  FAIL  {msg}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--promtool", default="/usr/bin/promtool")
    ap.add_argument("--models", default=str(px.REPO / "deploy/models"))
    ap.add_argument("--load-seconds", type=int, default=8)
    ap.add_argument("--bench-args", default=DEFAULT_BENCH_ARGS)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, TSDB)")
    args = ap.parse_args()

    res = Results()
    tmp = Path(tempfile.mkdtemp(prefix="octet-prom-e2e-"))
    procs = []
    try:
        grpc_port, metrics_port, prom_port = free_port(), free_port(), free_port()
        target = f"127.0.0.1:{grpc_port}"
        repo = tmp / "models"
        make_repository(args.models, repo)

        # --- octet-server --------------------------------------------------------------------
        server_log = tmp / "server.log"
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
        server = subprocess.Popen(
            [args.server, f"--model_repository={repo}", "--host=127.0.0.1",
             f"--grpc_port={grpc_port}", f"--metrics_port={metrics_port}",
             "--poll_interval_seconds=1", "--drain_grace_seconds=2",
             "--cost_per_core_hour=0.05", "--cost_per_gib_hour=0.01"],
            stdout=open(server_log, "w"), stderr=subprocess.STDOUT, env=env)
        procs.append(server)
        # Health is SERVING only when every model of the repository serves, so with the broken
        # model it stays NOT_SERVING; readiness of the demo models is read from /metrics.
        def demo_models_loaded():
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                          timeout=2).read().decode()
            return all(f'octet_model_loaded{{model="{m}",version="1"}} 1' in text for m in MODELS)
        wait_for("the demo models loaded", demo_models_loaded, 60, server, server_log)
        res.ok(f"octet-server serves {', '.join(MODELS)} on {target}, "
               f"metrics on 127.0.0.1:{metrics_port}")
        status = grpc_health.check(target)[0]
        (res.ok if status == "NOT_SERVING" else res.fail)(
            f"health {status} while broken_model cannot load (NOT_SERVING expected)")

        # --- Prometheus ----------------------------------------------------------------------
        rules = tmp / "alerts.yml"
        shutil.copy(px.ALERTS, rules)
        config = tmp / "prometheus.yml"
        # namespace/pod labels as the ServiceMonitor adds them, so the adapter query has data.
        config.write_text(f"""global:
  scrape_interval: {SCRAPE_SECONDS}s
  evaluation_interval: {SCRAPE_SECONDS}s
rule_files: [{rules}]
scrape_configs:
  - job_name: octet
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]
        labels: {{namespace: e2e, pod: octet-e2e-0}}
""")
        for cmd in ([args.promtool, "check", "rules", str(rules)],
                    [args.promtool, "check", "config", str(config)]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            (res.ok if r.returncode == 0 else res.fail)(" ".join(cmd[1:3]) + (
                "" if r.returncode == 0 else ":\n" + r.stdout + r.stderr))
        prom_log = tmp / "prometheus.log"
        prom = subprocess.Popen(
            [args.prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--web.enable-lifecycle",
             "--log.level=warn"],
            stdout=open(prom_log, "w"), stderr=subprocess.STDOUT)
        procs.append(prom)
        base = f"http://127.0.0.1:{prom_port}"
        wait_for("Prometheus ready", lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200,
                 60, prom, prom_log)
        wait_for("first scrape of octet-server",
                 lambda: prom_query(base, 'up{job="octet"} == 1', time.time())[1], 30, prom, prom_log)
        res.ok(f"Prometheus on {base} scrapes octet-server")

        # --- load ----------------------------------------------------------------------------
        load_start = time.time()
        for model in MODELS:
            bench_cmd = [args.bench] + args.bench_args.format(
                target=target, model=model, seconds=args.load_seconds).split()
            bench_log = tmp / f"bench-{model}.log"
            bench = subprocess.Popen(bench_cmd, stdout=open(bench_log, "w"), stderr=subprocess.STDOUT)
            procs.append(bench)
            # Malformed requests during the load, so the error panels have data.
            codes = send_bad_requests(target, model, 20)
            try:
                rc = bench.wait(timeout=args.load_seconds + 60)
            except subprocess.TimeoutExpired:
                bench.kill()
                rc = "timeout"
            if rc != 0:
                res.fail(f"octet-bench on {model} exited {rc}: {' '.join(bench_cmd)}\n{tail(bench_log)}")
            else:
                res.ok(f"octet-bench drove {model} for {args.load_seconds} s")
            if codes.get("INVALID_ARGUMENT") == 20:
                res.ok(f"20 malformed Predict requests to {model} answered INVALID_ARGUMENT")
            else:
                res.fail(f"malformed Predict requests to {model} answered {codes}")
        # Requests for the model that failed to load: UNAVAILABLE, a server-side error the
        # error-ratio alert counts, so its expression has data to select.
        codes = send_bad_requests(target, "broken_model", 5)
        (res.ok if codes.get("UNAVAILABLE") == 5 else res.fail)(
            f"5 Predict requests to broken_model answered {codes} (UNAVAILABLE expected)")
        load_end = time.time()
        # Let Prometheus scrape the final counters and evaluate the rules a few times.
        time.sleep(4 * SCRAPE_SECONDS)
        at = time.time()
        # The rate window covers the whole load; $__range covers the server's whole life.
        window = f"{int(at - load_start) + 2}s"
        subst = dict(rate_interval=window, interval=f"{SCRAPE_SECONDS}s", range_=window)

        # --- every expression ---------------------------------------------------------------
        print(f"== evaluating expressions at {at:.0f} (load {load_end - load_start:.0f} s, window {window})")
        for where, raw, kind in px.dashboard_queries():
            expr = px.grafana_substitute(raw, **subst)
            status, result = prom_query(base, expr, at)
            if status != "success":
                res.fail(f"dashboard {where}: does not evaluate: {result}\n        {expr}")
            elif not result:
                res.fail(f"dashboard {where}: returns no data\n        {expr}")
            else:
                res.ok(f"dashboard {where}: {len(result)} series")
        # The variables as a user picks them: job and version single values, model a
        # multi-select (Grafana formats it as a regex alternation). Each value must be one the
        # variable's own query offers.
        offered = {}
        for where, raw, kind in px.dashboard_queries():
            if kind == "variable":
                name = where.split('"')[1]
                expr = px.grafana_substitute(raw, **subst)
                label = {"job": "job", "model": "model", "version": "version"}[name]
                offered[name] = {r["metric"].get(label) for r in prom_query(base, expr, at)[1]}
        picked = {"job": "octet", "model": "(" + "|".join(sorted(MODELS)) + ")", "version": "1"}
        for name, value in (("job", "octet"), ("version", "1")) + tuple(("model", m) for m in MODELS):
            (res.ok if value in offered.get(name, set()) else res.fail)(
                f'variable "{name}" offers {value!r} (offers {sorted(offered.get(name, set()))})')
        for where, raw, kind in px.dashboard_queries():
            if kind != "panel":
                continue
            expr = raw
            for name, value in picked.items():
                expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
            expr = px.grafana_substitute(expr, **subst)
            status, result = prom_query(base, expr, at)
            # Load failures exist only for broken_model, which is not picked: no data is right.
            may_be_empty = "load_failures" in expr
            if status != "success":
                res.fail(f"dashboard {where} with {picked}: does not evaluate: {result}")
            elif not result and not may_be_empty:
                res.fail(f"dashboard {where} with {picked}: returns no data\n        {expr}")
            else:
                res.ok(f"dashboard {where} with picked variables: {len(result)} series")
        for where, expr in px.adapter_queries(matchers='namespace="e2e",pod=~"octet-e2e-.*"'):
            status, result = prom_query(base, expr, at)
            if status != "success" or not result:
                res.fail(f"{where}: {result if status != 'success' else 'no data'}\n        {expr}")
            else:
                res.ok(f"{where}: {len(result)} series")
        for name, expr in px.alert_rules():
            status, result = prom_query(base, expr, at)
            if status != "success":
                res.fail(f"alert {name}: does not evaluate: {result}")
            else:
                res.ok(f"alert {name}: evaluates ({len(result)} series would be pending/firing)")
            # Without its threshold the expression must select data, or a misspelt metric or
            # label would leave the alert silently unable to fire. cAdvisor's container_* series
            # do not exist outside Kubernetes.
            inner = re.sub(r"\s*(>|<|==|!=|>=|<=)\s*[0-9.]+\s*$", "", expr.strip())
            if "container_" in inner:
                res.ok(f"alert {name}: data check skipped (cAdvisor metrics)")
                continue
            status, result = prom_query(base, inner, at)
            if status != "success" or not result:
                res.fail(f"alert {name} without its threshold selects no data: "
                         f"{result if status != 'success' else 'empty'}\n        {inner}")
            else:
                res.ok(f"alert {name} without its threshold: {len(result)} series")

        # --- the rules as Prometheus loaded them --------------------------------------------
        loaded = {}
        for group in http_json(f"{base}/api/v1/rules")["data"]["groups"]:
            for rule in group["rules"]:
                loaded[rule["name"]] = rule
        for name, _ in px.alert_rules():
            rule = loaded.get(name)
            if rule is None:
                res.fail(f"alert {name} is not loaded by Prometheus")
            elif rule.get("health") == "err":
                res.fail(f"alert {name} fails in Prometheus: {rule.get('lastError')}")
            else:
                res.ok(f"alert {name} loaded, health {rule.get('health')}")

        # broken_model failed at start-up (its counter series appeared at 1): the load-failure
        # alert must fire for it.
        status, result = prom_query(
            base, 'ALERTS{alertname="OctetModelLoadFailed",alertstate="firing",'
                  'model="broken_model"}', time.time())
        (res.ok if status == "success" and result else res.fail)(
            f"OctetModelLoadFailed firing for broken_model ({status}, {result})")

        # --- drain ---------------------------------------------------------------------------
        server.send_signal(signal.SIGTERM)
        try:
            rc = server.wait(timeout=30)
            (res.ok if rc == 0 else res.fail)(f"octet-server exited {rc} after SIGTERM")
        except subprocess.TimeoutExpired:
            res.fail("octet-server still running 30 s after SIGTERM")
    except Exception as e:  # setup failures are failures, with the logs that explain them
        res.fail(f"{type(e).__name__}: {e}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if res.failed:
            for log in ("server.log", "prometheus.log"):
                if (tmp / log).exists():
                    print(f"--- last lines of {log}:\n{tail(tmp / log)}")
        if args.keep:
            print(f"logs and data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"{res.passed} passed, {len(res.failed)} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
