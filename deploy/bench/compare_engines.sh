#!/usr/bin/env bash
# Octet vs ONNX Runtime, engine only, FP32 and INT8, in one run (same machine state).
#   deploy/bench/compare_engines.sh [SECONDS] FP32.onnx[:QDQ.onnx]...
# For each model and batch (1 and 8; BATCHES to change) it runs, back to back: Octet INT8 and ORT
# INT8 on the QDQ file (when given), Octet FP32 and ORT FP32 on the FP32 file, 2 threads (THREADS).
# Prints a Markdown table with the ratios and Octet INT8's fraction of the machine's VNNI peak
# (MACs/image x images/s / peak; peak from tests/bench/vnni_peak, or PEAK_GMACS=... to skip it).
# "by CPU" compares process CPU time per run (all threads), steadier than wall time on a shared
# machine.
# ORT_SPIN=0 turns off ONNX Runtime's spinning intra-op threads (its default is on); Octet spins
# only if GOMP_SPINCOUNT is set (it runs with OMP_WAIT_POLICY=PASSIVE).
# Needs: the release build (build/release/core/octet) and `npm install --ignore-scripts` in
# deploy/bench (ONNX Runtime's CPU library from the npm registry).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN="${1:-10}"; shift
THREADS="${THREADS:-2}"
BATCHES="${BATCHES:-1 8}"
OCTET=build/release/core/octet
export OMP_WAIT_POLICY=PASSIVE
[ -d deploy/bench/node_modules/onnxruntime-node ] || npm install --ignore-scripts --prefix deploy/bench >/dev/null
if [ -z "${PEAK_GMACS:-}" ] && [ -x build/release/tests/bench/vnni_peak ]; then
  PEAK_GMACS=$(build/release/tests/bench/vnni_peak 2 | sed -n -E 's/^total: ([0-9.]+) GMAC.*/\1/p')
fi
PEAK_GMACS="${PEAK_GMACS:-}"

octet() {  # model batch -> "img/s cpu_ms GMAC/sample"
  local o
  o=$("$OCTET" bench --model "$1" --batch "$2" --threads "$THREADS" \
        --seconds "$SECONDS_PER_RUN" --shape "input=${2}x3x224x224" 2>&1)
  echo "$(echo "$o" | grep -o -E '[0-9.]+ samples/s' | head -1 | cut -d' ' -f1)" \
       "$(echo "$o" | grep -o -E 'cpu ms per run: [0-9.]+' | head -1 | cut -d' ' -f5)" \
       "$(echo "$o" | sed -n -E 's/^compute: ([0-9.e+-]+) GMAC per sample.*/\1/p')"
}
ort() {  # model batch -> "img/s cpu_ms"
  local r
  r=$(node deploy/bench/ort_bench.mjs --model "$1" --batch "$2" --threads "$THREADS" \
        --seconds "$SECONDS_PER_RUN" --shape "input=${2}x3x224x224" --spin "${ORT_SPIN:-1}")
  echo "$(echo "$r" | sed -E 's/.*"images_per_s":([0-9.]+).*/\1/')" \
       "$(echo "$r" | sed -E 's/.*"cpu_ms_per_run":([0-9.]+).*/\1/')"
}
num() { awk -v a="$1" 'BEGIN { if (a == "") print "-"; else printf "%.1f", a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2fx", a / b }'; }

echo "VNNI peak: ${PEAK_GMACS:-unknown} GMAC/s; $THREADS threads; $SECONDS_PER_RUN s per run;" \
  "Octet GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset}, ORT allow_spinning=${ORT_SPIN:-1}"
echo
echo "| model | batch | Octet INT8 img/s | Octet FP32 img/s | ORT INT8 img/s | ORT FP32 img/s | Octet INT8/FP32 | Octet/ORT INT8 | Octet/ORT FP32 | Octet/ORT INT8 by CPU | Octet/ORT FP32 by CPU | INT8 % of peak |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for spec in "$@"; do
  fp32="${spec%%:*}"
  qdq=""; [ "$spec" != "$fp32" ] && qdq="${spec#*:}"
  for b in $BATCHES; do
    oi=("" "" ""); ri=("" "")
    if [ -n "$qdq" ]; then
      read -r -a oi <<< "$(octet "$qdq" "$b")"
      read -r -a ri <<< "$(ort "$qdq" "$b")"
    fi
    read -r -a of <<< "$(octet "$fp32" "$b")"
    read -r -a rf <<< "$(ort "$fp32" "$b")"
    peak="-"
    if [ -n "${oi[0]:-}" ] && [ -n "$PEAK_GMACS" ] && [ -n "${oi[2]:-}" ]; then
      peak=$(awk -v ips="${oi[0]}" -v g="${oi[2]}" -v p="$PEAK_GMACS" 'BEGIN { printf "%.0f%%", 100 * ips * g / p }')
    fi
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$(basename "$fp32" .onnx)" "$b" \
      "$(num "${oi[0]:-}")" "$(num "${of[0]}")" "$(num "${ri[0]:-}")" "$(num "${rf[0]}")" "$(ratio "${oi[0]:-}" "${of[0]}")" \
      "$(ratio "${oi[0]:-}" "${ri[0]:-}")" "$(ratio "${of[0]}" "${rf[0]}")" \
      "$(ratio "${ri[1]:-}" "${oi[1]:-}")" "$(ratio "${rf[1]:-}" "${of[1]:-}")" "$peak"
  done
done
