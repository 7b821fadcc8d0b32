#!/usr/bin/env bash
# Octet vs ONNX Runtime, engine only, on the same .onnx files, in one run (same machine state).
#   deploy/bench/compare_engines.sh [SECONDS] MODEL.onnx...
# Each model runs at batch 1 and 8 with 2 threads (set THREADS to change). Prints a Markdown table;
# "cpu ms" is process CPU time per run (all threads), steadier than wall time on a shared machine.
# Needs: the release build (build/release/core/octet) and `npm install --ignore-scripts` in
# deploy/bench (ONNX Runtime's CPU library from the npm registry).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-10}"; shift
THREADS="${THREADS:-2}"
BATCHES="${BATCHES:-1 8}"
export OMP_WAIT_POLICY=PASSIVE
[ -d deploy/bench/node_modules/onnxruntime-node ] || npm install --ignore-scripts --prefix deploy/bench >/dev/null
echo "| model | batch | threads | Octet img/s | Octet p50 ms | Octet cpu ms | ORT img/s | ORT p50 ms | ORT cpu ms | Octet/ORT |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for model in "$@"; do
  for b in $BATCHES; do
    shape="input=${b}x3x224x224"
    o=$(build/release/core/octet bench --model "$model" --batch "$b" --threads "$THREADS" \
          --seconds "$SECONDS_PER_RUN" --shape "$shape" 2>&1)
    o_ips=$(echo "$o" | grep -o -E '[0-9.]+ samples/s' | head -1 | cut -d' ' -f1)
    o_p50=$(echo "$o" | grep -o -E 'p50 [0-9.]+' | head -1 | cut -d' ' -f2)
    o_cpu=$(echo "$o" | grep -o -E 'cpu ms per run: [0-9.]+' | head -1 | cut -d' ' -f5)
    r=$(node deploy/bench/ort_bench.mjs --model "$model" --batch "$b" --threads "$THREADS" \
          --seconds "$SECONDS_PER_RUN" --shape "$shape")
    r_ips=$(echo "$r" | sed -E 's/.*"images_per_s":([0-9.]+).*/\1/')
    r_p50=$(echo "$r" | sed -E 's/.*"p50_ms":([0-9.]+).*/\1/')
    r_cpu=$(echo "$r" | sed -E 's/.*"cpu_ms_per_run":([0-9.]+).*/\1/')
    ratio=$(awk -v a="$o_ips" -v b="$r_ips" 'BEGIN { printf "%.2f", a / b }')
    printf "| %s | %s | %s | %.1f | %.2f | %.2f | %.1f | %.2f | %.2f | %.2fx |\n" \
      "$(basename "$model" .onnx)" "$b" "$THREADS" "$o_ips" "$o_p50" "$o_cpu" "$r_ips" "$r_p50" \
      "$r_cpu" "$ratio"
  done
done
