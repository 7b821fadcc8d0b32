#!/usr/bin/env bash
# Sets up a fresh Debian bookworm machine, builds Octet (release preset) and runs every test
# through ctest. Usage: deploy/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
cmake --preset release
cmake --build --preset release -j "$(nproc)"
ctest --preset release --output-on-failure "$@"
