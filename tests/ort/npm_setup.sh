#!/usr/bin/env bash
# Test fixture: ONNX Runtime for Node (onnxruntime-node, CPU) in deploy/bench/node_modules, from
# the npm registry when missing. Fails (never skips) when npm or the package is unavailable:
# the ORT agreement tests need it.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
if [ ! -d "$REPO/deploy/bench/node_modules/onnxruntime-node" ]; then
  command -v npm >/dev/null || { echo "FAIL: npm not found (deploy/setup.sh installs it)" >&2; exit 1; }
  npm install --ignore-scripts --no-audit --no-fund --prefix "$REPO/deploy/bench"
fi
node -e "require('$REPO/deploy/bench/node_modules/onnxruntime-node'); console.log('onnxruntime-node ok')"
