#!/usr/bin/env bash
# Offline checks of the Helm chart helm/octet, with the tools tests/deploy/install_tools.sh put in
# TOOLS_DIR (helm v4 from the kubectl layer, Kubernetes JSON schemas from kubernetes-models):
#   - every value in values.yaml is documented;
#   - `helm lint --strict` passes with the default values and with each tests/deploy/helm-values/
#     file (together they switch on every optional feature);
#   - every object `helm template` renders validates strictly against the Kubernetes schemas, and
#     the chart keeps its promises (gRPC probes on the health port, non-root read-only security
#     context, grace period above the drain time, OMP_WAIT_POLICY=PASSIVE, ...);
#   - the validator rejects deliberately broken variants (so it can fail);
#   - invalid values are refused with a message;
#   - deploy/k8s/octet.yaml is exactly the default render (run with --update to regenerate it).
# Usage: tests/deploy/helm_check.sh TOOLS_DIR [--update]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tools="$(cd "${1:?usage: helm_check.sh TOOLS_DIR [--update]}" && pwd)"
update="${2:-}"
helm="$tools/bin/helm"
chart="$repo/helm/octet"
values="$here/helm-values"
validate=(node "$here/validate_k8s.mjs" --tools "$tools")
[ -x "$helm" ] || { echo "helm_check: no $helm; run tests/deploy/install_tools.sh $tools" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Hermetic helm: no user config, repositories, plugins or cache.
export HELM_CACHE_HOME="$tmp/helm/cache" HELM_CONFIG_HOME="$tmp/helm/config" \
  HELM_DATA_HOME="$tmp/helm/data" HELM_PLUGINS="$tmp/helm/plugins"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

echo "== values.yaml documentation"
"${validate[@]}" --values-doc "$chart/values.yaml" || failures=$((failures + 1))

# name | values file ("" = defaults) | kinds it must render | extra validator arguments
profiles=(
  "default||PodDisruptionBudget,ServiceAccount,Service,Deployment,HorizontalPodAutoscaler|--assert Deployment:spec.template.spec.terminationGracePeriodSeconds=35"
  "all-features|all-features.yaml|PodDisruptionBudget,ServiceAccount,ConfigMap,Service,Deployment,HorizontalPodAutoscaler,ServiceMonitor|--assert Deployment:spec.template.spec.terminationGracePeriodSeconds=70 --assert HorizontalPodAutoscaler:spec.metrics.1.pods.metric.name=\"octet_queue_latency_p95_seconds\" --assert HorizontalPodAutoscaler:spec.metrics.1.pods.target.averageValue=\"15m\" --assert Deployment:spec.template.spec.initContainers.0.name=\"apply-model-configs\" --assert Service:spec.clusterIP=\"None\" --assert PodDisruptionBudget:spec.minAvailable=2 --assert ServiceMonitor:spec.endpoints.0.port=\"metrics\""
  "pvc|pvc.yaml|PodDisruptionBudget,ServiceAccount,PersistentVolumeClaim,Service,Deployment,HorizontalPodAutoscaler|--assert PersistentVolumeClaim:spec.resources.requests.storage=\"20Gi\" --assert Deployment:spec.template.spec.containers.0.volumeMounts.1.subPath=\"repository\""
  "pvc-existing|pvc-existing.yaml|Service,Deployment|--external shared-models --assert Deployment:spec.replicas=3 --assert Deployment:spec.template.spec.serviceAccountName=\"default\""
  "tls|tls.yaml|PodDisruptionBudget,ServiceAccount,Service,Deployment,HorizontalPodAutoscaler|--assert Deployment:spec.template.spec.containers.0.readinessProbe.grpc.port=8503 --assert Deployment:spec.template.spec.volumes.1.secret.secretName=\"octet-tls\""
  "init-container|init-container.yaml|PodDisruptionBudget,ServiceAccount,ConfigMap,Service,Deployment,HorizontalPodAutoscaler|--assert Deployment:spec.template.spec.initContainers.0.name=\"fetch-models\" --assert Deployment:spec.template.spec.initContainers.1.name=\"apply-model-configs\""
)
for entry in "${profiles[@]}"; do
  IFS='|' read -r name file kinds extra <<<"$entry"
  set_args=()
  [ -n "$file" ] && set_args=(-f "$values/$file")
  echo "== $name: helm lint --strict, helm template, schema and chart checks"
  if ! "$helm" lint --strict "$chart" "${set_args[@]}" >"$tmp/lint.txt" 2>&1; then
    fail "helm lint --strict ($name):"; cat "$tmp/lint.txt"; continue
  fi
  if ! "$helm" template octet "$chart" "${set_args[@]}" >"$tmp/$name.yaml" 2>"$tmp/err.txt"; then
    fail "helm template ($name): $(cat "$tmp/err.txt")"; continue
  fi
  # shellcheck disable=SC2086  # $extra holds several arguments, none with spaces
  "${validate[@]}" --render "$tmp/$name.yaml" --expect "$kinds" $extra || failures=$((failures + 1))
done

echo "== the validator rejects broken manifests"
"${validate[@]}" --self-test "$tmp/default.yaml" || failures=$((failures + 1))

echo "== invalid values are refused"
refuse() {  # refuse "expected message part" helm-args...
  local want="$1"; shift
  if "$helm" template octet "$chart" "$@" >/dev/null 2>"$tmp/err.txt"; then
    fail "helm template $* rendered, but should be refused"
  elif ! grep -q -- "$want" "$tmp/err.txt"; then
    fail "helm template $* failed without saying '$want': $(cat "$tmp/err.txt")"
  else
    echo "  refused $*"
  fi
}
refuse "models.source must be image, pvc or initContainer" --set models.source=s3
refuse "not supported with models.source=pvc" --set models.source=pvc --set models.configs.m=x
refuse "terminationGraceMarginSeconds must be at least 1" --set lifecycle.terminationGraceMarginSeconds=0
refuse "maxReplicas must be at least" --set autoscaling.minReplicas=5 --set autoscaling.maxReplicas=2
refuse "not a usable model directory name" --set-string 'models.configs.\.\./etc=x'
refuse "server.healthPort must differ" --set server.tls.secretName=octet-tls --set server.healthPort=8500

echo "== deploy/k8s/octet.yaml is the default render"
manifest="$repo/deploy/k8s/octet.yaml"
{
  echo "# Plain Kubernetes manifests for clusters without Helm: kubectl apply -n NAMESPACE -f deploy/k8s/octet.yaml"
  echo "# GENERATED from helm/octet with its default values; do not edit. Regenerate with:"
  echo "#   tests/deploy/helm_check.sh TOOLS_DIR --update"
  cat "$tmp/default.yaml"
} >"$tmp/octet.yaml"
if [ "$update" = "--update" ]; then
  cp "$tmp/octet.yaml" "$manifest"
  echo "  wrote $manifest"
elif ! diff -u "$manifest" "$tmp/octet.yaml" >"$tmp/diff.txt"; then
  fail "deploy/k8s/octet.yaml differs from the chart's default render (run with --update):"
  head -40 "$tmp/diff.txt"
fi

if [ "$failures" -ne 0 ]; then
  echo "helm_check: $failures check(s) failed"
  exit 1
fi
echo "helm_check: all chart checks passed"
