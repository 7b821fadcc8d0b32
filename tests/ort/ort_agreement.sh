#!/usr/bin/env bash
# Acceptance: Octet running a QDQ model agrees with ONNX Runtime running the same file.
#   tests/ort/ort_agreement.sh OCTET_BIN FP32_MODEL.onnx DATA_DIR WORK_DIR
# DATA_DIR holds calib_500.npy, test_images.npy, test_labels.npy (tests/fixtures/fashion_mnist.py
# --write-npy). `octet quantize` writes the QDQ model (calibrated on the 500 training images);
# `octet run` and ONNX Runtime (tests/ort/ort_run.mjs) run it on the 10k test images; the
# outputs must agree (tests/ort/compare_outputs.py): top-1 >= 99%, max |diff| <= 2 steps.
# ONNX Runtime comes from deploy/bench/node_modules (tests/ort/npm_setup.sh installs it).
set -euo pipefail
OCTET="$1"; MODEL="$2"; DATA="$3"; WORK="$4"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
if [ ! -d "$REPO/deploy/bench/node_modules/onnxruntime-node" ]; then
  echo "FAIL: onnxruntime-node is not installed in deploy/bench (run tests/ort/npm_setup.sh)" >&2
  exit 1
fi
command -v node >/dev/null || { echo "FAIL: node not found" >&2; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK/octet"
"$OCTET" quantize --model "$MODEL" --calibration "input=$DATA/calib_500.npy" \
  --output "$WORK/model_int8.onnx"
"$OCTET" run --model "$WORK/model_int8.onnx" --input "input=$DATA/test_images.npy" \
  --output-dir "$WORK/octet" --threads 2
node "$REPO/tests/ort/ort_run.mjs" "$WORK/model_int8.onnx" input "$DATA/test_images.npy" \
  "$WORK/ort_logits.npy" 1000
/usr/bin/python3 "$REPO/tests/ort/compare_outputs.py" "$WORK/model_int8.onnx" \
  "$WORK/octet/logits.npy" "$WORK/ort_logits.npy" "$DATA/test_labels.npy"
