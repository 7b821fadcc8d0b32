#!/usr/bin/env bash
# Sets up a fresh Debian bookworm machine, builds Octet and serves the bundled demo model
# repository (deploy/models) on 0.0.0.0:8500 (gRPC) and :8502 (/metrics). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
if [ -x build/release/server/octet-server ]; then
  exec build/release/server/octet-server --model_repository=deploy/models "$@"
fi
# Until the server is built: run the demo CNN once through the engine.
model=deploy/models/fashion_cnn/1/model.onnx
build/release/core/octet inspect "$model"
/usr/bin/python3 -c "import numpy as np; np.save('/tmp/octet_demo_input.npy', np.random.default_rng(0).random((1,1,28,28), dtype=np.float32))"
build/release/core/octet run --model "$model" --input input=/tmp/octet_demo_input.npy --output-dir /tmp/octet_demo_out
