#!/usr/bin/env bash
# Smoke test of the command-line tools against the real control plane: kubectl apply
# and read back, helm install/upgrade/uninstall of a tiny chart. Fails loudly when the
# environment is missing. Prints a plain "N passed, N failed" closing line.
set -uo pipefail

: "${KUBECONFIG:?KUBECONFIG is not set: run under scripts/testenv exec}"
: "${HELM:?HELM is not set: run under scripts/testenv exec}"

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ns=fp-tools-smoke-$$
work=$(mktemp -d)
trap 'kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1; rm -rf "$work"' EXIT

check "kubectl reaches the apiserver" kubectl get --raw /readyz
check "kubectl create namespace" kubectl create namespace "$ns"
cat >"$work/cm.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: smoke, namespace: $ns}
data: {greeting: "hello from kubectl apply"}
YAML
check "kubectl apply a ConfigMap" kubectl apply -f "$work/cm.yaml"
check "kubectl reads it back" equals \
  "$(kubectl get configmap smoke -n "$ns" -o jsonpath='{.data.greeting}')" "hello from kubectl apply"
check "kubectl apply --dry-run=server" kubectl apply --dry-run=server -f "$work/cm.yaml"

check "helm version" bash -c '"$HELM" version --short | grep -q "^v3\."'
mkdir -p "$work/chart/templates"
cat >"$work/chart/Chart.yaml" <<YAML
apiVersion: v2
name: smoke
version: 0.1.0
YAML
cat >"$work/chart/values.yaml" <<YAML
greeting: first
YAML
cat >"$work/chart/templates/cm.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata: {name: helm-smoke}
data: {greeting: {{ .Values.greeting | quote }}}
YAML
check "helm install" "$HELM" install smoke "$work/chart" -n "$ns" --wait --timeout 60s
check "helm's object exists" equals \
  "$(kubectl get configmap helm-smoke -n "$ns" -o jsonpath='{.data.greeting}')" "first"
check "helm upgrade" "$HELM" upgrade smoke "$work/chart" -n "$ns" --set greeting=second
check "upgrade took effect" equals \
  "$(kubectl get configmap helm-smoke -n "$ns" -o jsonpath='{.data.greeting}')" "second"
check "helm list shows revision 2" bash -c '"$HELM" list -n "'"$ns"'" -o json | grep -q "\"revision\":\"2\""'
check "helm uninstall" "$HELM" uninstall smoke -n "$ns"
check "uninstall removed the object" bash -c \
  "! kubectl get configmap helm-smoke -n '$ns' >/dev/null 2>&1"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
