#!/usr/bin/env python3
"""octet-bench against a real octet-server serving the demo models on 127.0.0.1 (free ports).

Checks, with the server's /metrics scraped independently by this script:
  - a closed-loop concurrency sweep (two runs, no warm-up) completes with zero errors, writes one
    CSV row per run whose columns are exactly those documented in deploy/bench/run_report.h,
    and the server's octet_requests_total delta over the whole invocation equals the requests in
    the CSV plus the one check request octet-bench sends first; octet-bench's own server_* columns
    agree (requests, inferences = OK x batch);
  - an open-loop (Poisson) run with inputs from a .npy file: zero errors, batch from the file,
    appended to the same CSV;
  - bad flags and bad targets: a one-line error naming the problem and a non-zero exit.
"""
import argparse
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        got = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def documented_columns(run_report_h):
    """Column names of the CSV comment block in run_report.h (lines '//   name ...')."""
    text = Path(run_report_h).read_text()
    block = text.split("CSV columns", 1)[1].split("#ifndef", 1)[0]
    names = []
    for line in block.splitlines():
        m = re.match(r"//   (\S.*?)(?:\s{2,}|$)", line)
        if not m:
            continue
        for name in m.group(1).split(","):
            name = name.strip()
            if re.fullmatch(r"[a-z0-9_]+", name):
                names.append(name)
    return names


class Checks:
    def __init__(self):
        self.failed = []

    def check(self, cond, msg):
        print(("  ok    " if cond else "  FAIL  ") + msg)
        if not cond:
            self.failed.append(msg)


def run(cmd, timeout=120):
    print("$ " + " ".join(cmd))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--run_report_h", required=True)
    args = ap.parse_args()

    c = Checks()
    tmp = Path(tempfile.mkdtemp(prefix="octet-bench-e2e-"))
    grpc_port, metrics_port = free_port(), free_port()
    target = f"127.0.0.1:{grpc_port}"
    murl = f"http://127.0.0.1:{metrics_port}/metrics"
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen(
        [args.server, f"--model_repository={args.models}", "--host=127.0.0.1",
         f"--grpc_port={grpc_port}", f"--metrics_port={metrics_port}", "--cpu_budget=2",
         "--drain_grace_seconds=2"],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"octet-server exited {server.returncode}")
            try:
                text = scrape(metrics_port)
                if (metric_sum(text, "octet_model_loaded", model="fashion_mlp") == 1 and
                        metric_sum(text, "octet_model_loaded", model="fashion_cnn") == 1):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("demo models not loaded within 60 s")
            time.sleep(0.2)
        print(f"octet-server up on {target}, metrics {murl}")

        # --- closed-loop sweep -------------------------------------------------------------
        columns = documented_columns(args.run_report_h)
        c.check(len(columns) >= 20, f"run_report.h documents {len(columns)} CSV columns")
        csv_path = tmp / "runs.csv"
        before = scrape(metrics_port)
        r = run([args.bench, "--target", target, "--model", "fashion_mlp", "--batch", "4",
                 "--concurrency", "1,4", "--warmup_seconds", "0", "--seconds", "2",
                 "--metrics_url", murl, "--csv", str(csv_path)])
        after = scrape(metrics_port)
        print(r.stdout + r.stderr)
        c.check(r.returncode == 0, f"sweep exits 0 (got {r.returncode})")
        with open(csv_path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            rows = list(reader)
        c.check(header == columns, f"CSV header is the documented column list\n  {header}")
        c.check(len(rows) == 2, f"one CSV row per sweep point ({len(rows)})")
        total = 0
        for row, conc in zip(rows, ("1", "4")):
            ok, req = int(row["ok"]), int(row["requests"])
            total += req
            c.check(row["mode"] == "concurrency" and row["concurrency"] == conc,
                    f"row concurrency {row['concurrency']}")
            c.check(row["errors"] == "0" and row["error_codes"] == "" and ok == req and ok > 0,
                    f"c={conc}: {ok} OK, {row['errors']} errors")
            c.check(row["batch"] == "4", f"c={conc}: batch {row['batch']}")
            c.check(int(row["server_requests"]) == req,
                    f"c={conc}: server_requests {row['server_requests']} == requests {req}")
            c.check(int(row["server_inferences"]) == 4 * ok,
                    f"c={conc}: server_inferences {row['server_inferences']} == 4 x {ok}")
            lat = [float(row[k]) for k in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
                                            "latency_max_ms")]
            c.check(0 < lat[0] <= lat[1] <= lat[2] <= lat[3], f"c={conc}: percentiles {lat}")
            rps, elapsed = float(row["throughput_rps"]), float(row["elapsed_s"])
            c.check(2.0 <= elapsed < 10 and abs(rps - ok / elapsed) <= 0.01 * rps + 0.01,
                    f"c={conc}: {rps} req/s = {ok} / {elapsed} s")
            c.check(float(row["inferences_per_s"]) == round(4 * rps, 2) or
                    abs(float(row["inferences_per_s"]) - 4 * rps) < 0.05,
                    f"c={conc}: inferences/s = 4 x req/s")
            q, comp = float(row["server_queue_mean_ms"]), float(row["server_compute_mean_ms"])
            c.check(q >= 0 and comp > 0 and float(row["server_mean_batch_rows"]) >= 4,
                    f"c={conc}: queue {q} ms, compute {comp} ms/batch, "
                    f"{row['server_mean_batch_rows']} rows/batch")
        delta = (metric_sum(after, "octet_requests_total", model="fashion_mlp") -
                 metric_sum(before, "octet_requests_total", model="fashion_mlp"))
        c.check(delta == total + 1,
                f"server's octet_requests_total delta {delta:.0f} == CSV requests {total} + 1 check")
        ok_delta = (metric_sum(after, "octet_requests_total", model="fashion_mlp", code="OK") -
                    metric_sum(before, "octet_requests_total", model="fashion_mlp", code="OK"))
        c.check(ok_delta == delta, f"every one of them OK ({ok_delta:.0f})")

        # --- open loop with .npy inputs, appended to the same CSV ----------------------------
        npy = tmp / "images.npy"
        np.save(npy, np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
        r = run([args.bench, f"--target={target}", "--model=fashion_cnn", f"--input=input={npy}",
                 "--request_rate=40", "--warmup_seconds=0.5", "--seconds=2",
                 f"--metrics_url={murl}", f"--csv={csv_path}"])
        print(r.stdout + r.stderr)
        c.check(r.returncode == 0, f"open-loop run exits 0 (got {r.returncode})")
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
        c.check(len(rows) == 3, f"appended: {len(rows)} rows")
        row = rows[-1]
        ok = int(row["ok"])
        c.check(row["mode"] == "rate" and row["request_rate"] == "40" and row["concurrency"] == "",
                f"row mode {row['mode']} rate {row['request_rate']}")
        c.check(row["batch"] == "3" and row["errors"] == "0" and ok > 0,
                f"batch {row['batch']}, {ok} OK, {row['errors']} errors")
        # 80 arrivals expected in 2 s; Poisson with a fixed seed, so this is wide on purpose.
        c.check(30 <= ok <= 150, f"{ok} arrivals for 40/s over 2 s")
        c.check(int(row["server_requests"]) == ok and int(row["server_inferences"]) == 3 * ok,
                f"server counted {row['server_requests']} requests, "
                f"{row['server_inferences']} inferences")

        # --- bad flags and bad targets ------------------------------------------------------
        dead = f"127.0.0.1:{free_port()}"
        base = ["--target", target, "--model", "fashion_mlp", "--seconds", "1"]
        bad = [
            ([], 2, "--target: required"),
            (["--target", target, "--concurrency", "1"], 2, "--model: required"),
            (base, 2, "exactly one of --concurrency"),
            (base + ["--concurrency", "2", "--request_rate", "5"], 2, "exactly one of"),
            (base + ["--concurrency", "two"], 2, "--concurrency: expected integers"),
            (base + ["--concurrency", "0"], 2, "--concurrency: expected integers"),
            (base + ["--request_rate", "-4"], 2, "--request_rate: expected numbers > 0"),
            (base + ["--concurrency", "1", "--seconds", "0"], 2, "--seconds: must be > 0"),
            (base + ["--concurrency", "1", "--bogus", "1"], 1, "Unknown command line flag 'bogus'"),
            (base + ["--concurrency", "1", "extra"], 2, "unexpected argument 'extra'"),
            (base + ["--concurrency", "1", "--input", "input"], 2, "expected NAME=FILE.npy"),
            (base + ["--concurrency", "1", "--metrics_url", "localhost:1/metrics"], 2,
             "--metrics_url: expected http://"),
            (["--target", target, "--model", "nosuch", "--concurrency", "1"], 1,
             "GetModelMetadata(nosuch) failed: NOT_FOUND"),
            (base + ["--concurrency", "1", "--input", f"nosuch={npy}"], 1,
             "the model has no input 'nosuch' (inputs: input)"),
            (base + ["--concurrency", "1", "--input", f"input={tmp / 'missing.npy'}"], 1,
             "missing.npy"),
            # A .npy of CNN images is the wrong shape for the MLP: the server's INVALID_ARGUMENT.
            (base + ["--concurrency", "1", "--input", f"input={npy}"], 1,
             "the first Predict failed: INVALID_ARGUMENT"),
            (["--target", dead, "--model", "fashion_mlp", "--concurrency", "1",
              "--timeout_ms", "1000"], 1, f"cannot connect to {dead}"),
            (base + ["--concurrency", "1", "--metrics_url", f"http://{dead}/metrics"], 1,
             f"GET http://{dead}/metrics"),
            (base + ["--concurrency", "1", "--csv", str(tmp / "no" / "dir.csv"),
                     "--warmup_seconds", "0", "--seconds", "0.2"], 1, "cannot write --csv"),
        ]
        for argv, want_rc, want in bad:
            r = run([args.bench] + argv, timeout=60)
            good = r.returncode == want_rc and want in r.stderr
            c.check(good, f"exit {r.returncode}, stderr names '{want}'" +
                    ("" if good else f"\n{r.stdout}{r.stderr}"))
        c.check(server.poll() is None, "octet-server still running after the bad requests")
    except Exception as e:
        c.check(False, f"{type(e).__name__}: {e}")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        if c.failed:
            print("--- server log:\n" + (tmp / "server.log").read_text()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(c.failed)} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
