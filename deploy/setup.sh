#!/usr/bin/env bash
# Installs every Debian package Octet needs to build, test and serve.
# Idempotent: when everything is already installed it only runs dpkg queries (well under a second).
set -euo pipefail
# --build-only: just the toolchain and the -dev libraries the binaries compile against (the
# Dockerfile's build stage); no test data, Python, peers or Node.js.
BUILD_ONLY=0
if [ "${1:-}" = "--build-only" ]; then BUILD_ONLY=1; fi

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # engine and server libraries
  libdnnl-dev libonnx-dev libprotobuf-dev protobuf-compiler
  libgrpc++-dev protobuf-compiler-grpc libabsl-dev prometheus-cpp-dev
)
if [ "$BUILD_ONLY" -eq 0 ]; then PACKAGES+=(
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libonnx-testdata dataset-fashion-mnist
  zlib1g-dev  # tests/util/idx_reader (gzip'd Fashion-MNIST)
  # fixtures (model training / export) and peers
  python3 python3-numpy python3-torch python3-torchvision python3-onnx
  prometheus curl ca-certificates unzip
  # deploy checks: PromQL/alert tooling, gRPC health client, runtime-image root
  python3-yaml python3-grpcio debootstrap
  openssl  # server TLS tests make their CA and certificates at test time
); fi
# Node.js (for the ONNX Runtime peer and the chart validation tools) only when absent:
# the machine image may already carry a newer one that Debian's package would conflict with.
if [ "$BUILD_ONLY" -eq 0 ] && ! command -v npm >/dev/null 2>&1; then PACKAGES+=(nodejs npm); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#PACKAGES[@]} packages present"
fi
