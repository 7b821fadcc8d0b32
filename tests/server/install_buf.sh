#!/usr/bin/env bash
# Installs buf (the npm package @bufbuild/buf-linux-x64, pinned with its integrity hash by
# tests/server/buf/package-lock.json) into DIR in the build tree, for the reflection test. Needs the
# npm registry only when the lock file changed since the last install into DIR. Fails (never
# skips) when buf cannot be installed: the reflection test then fails too.
# Usage: tests/server/install_buf.sh DIR   -> DIR/node_modules/@bufbuild/buf-linux-x64/bin/buf
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)/buf"
dir="${1:?usage: install_buf.sh DIR}"
buf="$dir/node_modules/@bufbuild/buf-linux-x64/bin/buf"
stamp="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"

if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ] && [ -x "$buf" ]; then
  echo "install_buf: $dir is up to date (buf $("$buf" --version))"
  exit 0
fi
command -v npm >/dev/null || { echo "install_buf: npm is missing (deploy/setup.sh installs it)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
# --ignore-scripts: nothing from the registry runs at install time (the package is the binary).
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
"$buf" --version >/dev/null
echo "$stamp" >"$dir/.stamp"
echo "install_buf: installed buf $("$buf" --version) into $dir"
