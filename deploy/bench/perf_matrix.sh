#!/usr/bin/env bash
# The issue-4 performance matrix in one command, for a quiet machine. Results go to
# tests/bench/RESULTS.md by hand (machine, command, date), like every timing.
#
#   1. fashion_mlp INT8 served at concurrency 1, 16, 64 (octet-bench, batch 1), beside the engine
#      alone (`octet bench`, batch 1, same threads): per-request overhead of the server =
#      octet-bench p50 at concurrency 1 - engine p50.
#   2. resnet18 INT8 at concurrency 16 with dynamic batching on vs off, beside the engine's best
#      in-process throughput at the same thread budget (`octet bench` over batch 1, 8, 16, 32).
#
# INT8 models are made here with `octet quantize` (calibration: Fashion-MNIST for the MLP, the
# torchvision fixture's inputs for resnet18); --fp32 runs the same matrix on the FP32 models.
# The server gets --cpu_budget=THREADS; with more cores than THREADS the server and the engine
# runs are pinned to the first THREADS cores and octet-bench to the others.
#
# Usage: deploy/bench/perf_matrix.sh [--build DIR] [--threads T] [--seconds S] [--warmup W]
#                                    [--out DIR] [--fp32] [--octet PATH]
# --octet: the `octet` binary to quantize and run the engine with (default BUILD/core/octet).
# Warm-up (default 10 s) precedes each octet-bench run: every distinct batch size compiles its
# own plan on first use, and those compilations must not land in the measured window.
# Needs: a release build (server, octet, octet-bench) and the fixtures
#   (ctest --preset release -R 'fixture_(fashion_npy|torchvision)').
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD=build/release
THREADS=$(nproc)
SECONDS_PER_RUN=10
WARMUP=10
OUT=""
PRECISION=int8
OCTET=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --fp32) PRECISION=fp32; shift ;;
    --octet) OCTET=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "perf_matrix: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$(mktemp -d /tmp/octet-perf-matrix-XXXXXX)}
mkdir -p "$OUT"
OCTET=${OCTET:-$BUILD/core/octet}
SERVER=$BUILD/server/octet-server
BENCH=$BUILD/deploy/bench/octet-bench
PY=/usr/bin/python3
MLP_FP32=deploy/models/fashion_mlp/1/model.onnx
MLP_CALIB=$BUILD/fixtures/fashion/fashion_mlp/calib_500.npy
R18_FP32=$BUILD/fixtures/torchvision/resnet18.onnx
R18_CALIB=$BUILD/fixtures/torchvision/resnet18_b8_input.npy

die() { echo "perf_matrix: $*" >&2; exit 1; }
for f in "$OCTET" "$SERVER" "$BENCH"; do [ -x "$f" ] || die "$f is missing: build first"; done
for f in "$MLP_CALIB" "$R18_FP32" "$R18_CALIB"; do
  [ -f "$f" ] || die "$f is missing: ctest --preset release -R 'fixture_(fashion_npy|torchvision)'"
done
export OMP_WAIT_POLICY=PASSIVE

# Pinning: server and engine on cores 0..T-1, the load generator on the rest (if any).
NCPU=$(nproc)
if [ "$NCPU" -gt "$THREADS" ]; then
  PIN_SERVER=(taskset -c "0-$((THREADS - 1))")
  PIN_CLIENT=(taskset -c "$THREADS-$((NCPU - 1))")
  PINNING="server/engine on cores 0-$((THREADS - 1)), octet-bench on $THREADS-$((NCPU - 1))"
else
  PIN_SERVER=()
  PIN_CLIENT=()
  PINNING="not pinned: $NCPU cores for $THREADS threads, octet-bench shares them"
fi

# --- models ---------------------------------------------------------------------------------
REPO=$OUT/models
rm -rf "$REPO"
mkdir -p "$REPO/mlp/1" "$REPO/resnet18_batched/1" "$REPO/resnet18_unbatched/1"
input_name() {  # first input of an ONNX model
  $PY -c 'import onnx,sys; m=onnx.load(sys.argv[1], load_external_data=False); init={i.name for i in m.graph.initializer}; print([i.name for i in m.graph.input if i.name not in init][0])' "$1"
}
make_model() {  # make_model FP32.onnx CALIB.npy OUT.onnx
  if [ "$PRECISION" = fp32 ]; then
    cp "$1" "$3"
  else
    "$OCTET" quantize --model "$1" --calibration "$(input_name "$1")=$2" --output "$3" \
      >"$OUT/quantize-$(basename "$(dirname "$(dirname "$3")")").log" 2>&1 ||
      die "octet quantize failed for $1; see $OUT/quantize-*.log"
  fi
}
echo "== $PRECISION models into $REPO"
make_model "$MLP_FP32" "$MLP_CALIB" "$REPO/mlp/1/model.onnx"
make_model "$R18_FP32" "$R18_CALIB" "$REPO/resnet18_batched/1/model.onnx"
cp "$REPO/resnet18_batched/1/model.onnx" "$REPO/resnet18_unbatched/1/model.onnx"
cat >"$REPO/mlp/config.pbtxt" <<CFG
batching { max_batch_size: 64 max_queue_delay_micros: 500 max_queue_size: 4096 }
num_workers: 1
CFG
cat >"$REPO/resnet18_batched/config.pbtxt" <<CFG
batching { max_batch_size: 16 max_queue_delay_micros: 2000 max_queue_size: 1024 }
num_workers: 1
CFG
cat >"$REPO/resnet18_unbatched/config.pbtxt" <<CFG
batching { enabled: false max_queue_size: 1024 }
num_workers: 1
CFG

# --- server ---------------------------------------------------------------------------------
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GRPC_PORT=$(free_port)
METRICS_PORT=$(free_port)
"${PIN_SERVER[@]}" "$SERVER" --model_repository="$REPO" --host=127.0.0.1 --grpc_port="$GRPC_PORT" \
  --metrics_port="$METRICS_PORT" --cpu_budget="$THREADS" --poll_interval_seconds=3600 \
  --drain_grace_seconds=5 >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true' EXIT
# SERVING once every model loaded; a model that fails to load never gets there: stop at once.
for _ in $(seq 1 120); do
  if $PY deploy/grpc_health.py "127.0.0.1:$GRPC_PORT" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || die "octet-server exited; see $OUT/server.log"
  if grep -q "failed to load" "$OUT/server.log"; then
    die "a model failed to load: $(grep -m1 'failed to load' "$OUT/server.log")"
  fi
  sleep 0.5
done
$PY deploy/grpc_health.py "127.0.0.1:$GRPC_PORT" >/dev/null || die "octet-server not SERVING; see $OUT/server.log"

CSV=$OUT/octet-bench.csv
bench() {  # bench MODEL CONCURRENCY_LIST
  "${PIN_CLIENT[@]}" "$BENCH" --target="127.0.0.1:$GRPC_PORT" --model="$1" --concurrency="$2" \
    --warmup_seconds="$WARMUP" --seconds="$SECONDS_PER_RUN" \
    --metrics_url="http://127.0.0.1:$METRICS_PORT/metrics" --csv="$CSV"
}
engine() {  # engine MODEL BATCH  -> octet bench output in $OUT/engine-NAME-bB.txt
  "${PIN_SERVER[@]}" "$OCTET" bench --model "$1" --batch "$2" --threads "$THREADS" \
    --seconds "$SECONDS_PER_RUN" >"$OUT/engine-$3-b$2.txt"
}

echo "== 1. mlp ($PRECISION): octet-bench at concurrency 1,16,64; engine alone at batch 1"
bench mlp 1,16,64
engine "$REPO/mlp/1/model.onnx" 1 mlp
echo "== 2. resnet18 ($PRECISION) at concurrency 16: batching on, off; engine at batch 1,8,16,32"
bench resnet18_batched 16
bench resnet18_unbatched 16
for b in 1 8 16 32; do engine "$REPO/resnet18_batched/1/model.onnx" "$b" resnet18; done

kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
trap - EXIT

# --- summary --------------------------------------------------------------------------------
$PY - "$OUT" "$CSV" "$PRECISION" "$THREADS" "$PINNING" "$SECONDS_PER_RUN" "$WARMUP" <<'PYEOF' | tee "$OUT/summary.md"
import csv, glob, os, platform, re, subprocess, sys, time
out, path, precision, threads, pinning, seconds, warmup = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
def engine(name, batch):
    text = open(os.path.join(out, f"engine-{name}-b{batch}.txt")).read()
    thr = float(re.search(r"throughput: ([\d.]+) samples/s", text).group(1))
    p50 = float(re.search(r"latency ms: p50 ([\d.e+-]+)", text).group(1))
    return thr, p50
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"## Issue-4 matrix ({precision.upper()}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
print(f"- machine: {cpu}, {os.cpu_count()} cores; {threads} threads for the server and the engine; {pinning}")
print(f"- command: deploy/bench/perf_matrix.sh --threads {threads} --seconds {seconds} --warmup {warmup}"
      + (" --fp32" if precision == "fp32" else ""))
print()
print("| model | load | inferences/s | p50 ms | p99 ms | server queue ms | server compute ms/batch | rows/batch | server CPU cores |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    print(f"| {r['model']} | c={r['concurrency']} | {float(r['inferences_per_s']):.0f} | {r['latency_p50_ms']} | "
          f"{r['latency_p99_ms']} | {r['server_queue_mean_ms']} | {r['server_compute_mean_ms']} | "
          f"{r['server_mean_batch_rows']} | {r['server_cpu_cores']} |")
print()
mlp_c1 = next(r for r in rows if r["model"] == "mlp" and r["concurrency"] == "1")
thr, p50 = engine("mlp", 1)
print(f"- mlp engine alone, batch 1: {thr:.0f} inferences/s, p50 {p50:.4g} ms; served at concurrency 1: "
      f"p50 {float(mlp_c1['latency_p50_ms']):.3f} ms -> per-request overhead "
      f"{float(mlp_c1['latency_p50_ms']) - p50:.3f} ms")
best = max((engine("resnet18", b) + (b,) for b in (1, 8, 16, 32)), key=lambda t: t[0])
on = next(r for r in rows if r["model"] == "resnet18_batched")
off = next(r for r in rows if r["model"] == "resnet18_unbatched")
print(f"- resnet18 at concurrency 16: batching on {float(on['inferences_per_s']):.1f} inferences/s, "
      f"off {float(off['inferences_per_s']):.1f} (x{float(on['inferences_per_s']) / max(float(off['inferences_per_s']), 1e-9):.2f}); "
      f"engine best in-process {best[0]:.1f} inferences/s at batch {best[2]} "
      f"(served with batching = {float(on['inferences_per_s']) / best[0]:.0%} of it)")
print(f"- raw: {path}, engine outputs {out}/engine-*.txt")
PYEOF
