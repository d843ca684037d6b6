#!/usr/bin/env bash
# Packaging against the real control plane and helm: the CRD (schema descriptions,
# kubectl explain, CEL rules with readable messages), the chart (lint, values schema,
# install into a Pod Security "restricted" namespace, upgrade, uninstall), the plain
# manifests (no drift from helm template), the examples, and the Dockerfile (each
# image's runtime libraries are exactly what its binary links).
#   test_packaging.sh BIN_DIR
set -uo pipefail
: "${KUBECONFIG:?KUBECONFIG is not set: run under scripts/testenv exec}"
: "${HELM:?HELM is not set: run under scripts/testenv exec}"
bin=${1:?usage: test_packaging.sh BIN_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../.."

. "$here/lib.sh"
# refused MESSAGE YAML: server-side dry run must fail and say MESSAGE
refused() { local msg; msg=$(kubectl apply --dry-run=server -f - <<<"$2" 2>&1) && { echo "accepted: $2"; return 1; }; contains "$msg" "$1"; }

work=$(mktemp -d) ns=fp-pkg-$$ rel=pkg$$
trap 'kubectl delete namespace "$ns" "$ns-forms" "$ns-redis" "$ns-dry" --wait=false >/dev/null 2>&1; "$HELM" uninstall "$rel" -n "$ns" >/dev/null 2>&1; rm -rf "$work"' EXIT

# --- CRD -------------------------------------------------------------------
crd=crds/formpipelines.formpipe.io.yaml
check "the chart's CRD is the one in crds/" cmp "$crd" charts/formpipe/crds/formpipelines.formpipe.io.yaml
check "kubectl apply --server-side of the CRD" kubectl apply --server-side --force-conflicts -f "$crd"
check "the CRD is established" kubectl wait --for condition=Established crd/formpipelines.formpipe.io --timeout 30s
undocumented() {
  kubectl apply --dry-run=client -o json -f "$crd" | python3 -c '
import json, sys
crd = json.load(sys.stdin)
missing = []
def walk(node, path):
    for name, prop in node.get("properties", {}).items():
        p = path + "." + name
        if name not in ("apiVersion", "kind", "metadata") and not prop.get("description"):
            missing.append(p)
        walk(prop, p)
    if "items" in node:
        walk(node["items"], path + "[]")
walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
print("\n".join(missing))
sys.exit(1 if missing else 0)'
}
check "every field of the schema has a description" undocumented
explained() {   # the apiserver publishes a new CRD's OpenAPI a few seconds after it is established
  for _ in $(seq 60); do kubectl explain formpipeline.spec.form.fields 2>/dev/null | grep -q "PCRE2" && return 0; sleep 0.5; done
  kubectl explain formpipeline.spec.form.fields; return 1
}
check "kubectl explain teaches the fields" explained
check "printer columns" bash -c 'kubectl get crd formpipelines.formpipe.io -o jsonpath="{.spec.versions[0].additionalPrinterColumns[*].name}" | grep -qx "Partitions Ingest Consumers Lag Dead Ready Reason Mode Message Age"'
check "short name fp and category formpipe" equals \
  "$(kubectl get crd formpipelines.formpipe.io -o jsonpath='{.spec.names.shortNames[0]} {.spec.names.categories[0]}')" "fp formpipe"

# FormTask: the same checks, and its CEL rules
tcrd=crds/formtasks.formpipe.io.yaml
check "the chart's FormTask CRD is the one in crds/" cmp "$tcrd" charts/formpipe/crds/formtasks.formpipe.io.yaml
check "kubectl apply --server-side of the FormTask CRD" kubectl apply --server-side --force-conflicts -f "$tcrd"
check "the FormTask CRD is established" kubectl wait --for condition=Established crd/formtasks.formpipe.io --timeout 30s
check "every field of the FormTask schema has a description" bash -c "crd=$tcrd; $(declare -f undocumented); undocumented"
check "FormTask printer columns" bash -c 'kubectl get crd formtasks.formpipe.io -o jsonpath="{.spec.versions[0].additionalPrinterColumns[*].name}" | grep -qx "Pipeline Kind Lag Delivered Ready Reason Message Age"'
check "FormTask short name ft and category formpipe" equals \
  "$(kubectl get crd formtasks.formpipe.io -o jsonpath='{.spec.names.shortNames[0]} {.spec.names.categories[0]}')" "ft formpipe"

kubectl create namespace "$ns-forms" >/dev/null
ft() {   # ft NAME SPEC-YAML (indented by two)
  printf 'apiVersion: formpipe.io/v1alpha1\nkind: FormTask\nmetadata: {name: %s, namespace: %s}\nspec:\n  pipeline: p\n%b\n' "$1" "$ns-forms" "$2"
}
check "a good FormTask is accepted, with defaults" equals \
  "$(ft hook '  webhook: {url: https://hooks.example.com/x}' | kubectl apply --dry-run=server -o jsonpath='{.spec.maxAttempts} {.spec.webhook.timeoutSeconds} {.spec.webhook.contentMode} {.spec.webhook.concurrency} {.spec.scaling.minReplicas} {.spec.scaling.lagPerReplica} {.spec.backoff.initialMilliseconds} {.spec.backoff.maxSeconds}' -f -)" \
  "10 10 structured 32 1 1000 1000 300"
check "CEL: a FormTask has one kind, not two" refused "exactly one kind must be set" "$(ft two '  webhook: {url: https://h.example.com/}\n  container: {image: x}')"
check "CEL: a FormTask has one kind, not none" refused "exactly one kind must be set" "$(ft none '')"
check "CEL: a webhook URL is http(s)" refused "url must be an absolute http:// or https:// URL" "$(ft bad '  webhook: {url: ftp://h.example.com/x}')"
check "CEL: a task is not named dlq" refused "cannot be named dlq" "$(ft dlq '  webhook: {url: https://h.example.com/}')"
check "CEL: FORMPIPE_ variables are the operator's" refused "set by the operator" "$(ft env '  container: {image: x, env: [{name: FORMPIPE_TOPIC, value: topic}]}')"
check "CEL: backoff.maxSeconds covers initialMilliseconds" refused "backoff.maxSeconds must not be below backoff.initialMilliseconds" "$(ft bo '  webhook: {url: https://h.example.com/}\n  backoff: {initialMilliseconds: 5000, maxSeconds: 2}')"
fp() {   # fp NAME FIELDS-YAML [EXTRA-SPEC-YAML]
  printf 'apiVersion: formpipe.io/v1alpha1\nkind: FormPipeline\nmetadata: {name: %s, namespace: %s}\nspec:\n  form:\n    fields: %s\n%s\n  sheets: {spreadsheetId: s1}\n' \
    "$1" "$ns-forms" "$2" "${3:-}"
}
check "a good FormPipeline is accepted" bash -c "kubectl apply --dry-run=server -f - <<'Y'
$(fp good '[{name: a, type: string}]' '    partitionKey: a')
Y"
check "CEL: field names are unique" refused "Duplicate value" "$(fp dup '[{name: a, type: string}, {name: a, type: integer}]')"
check "CEL: an enum has values" refused "an enum field needs a non-empty values list" "$(fp en '[{name: g, type: enum}]')"
check "CEL: values only on enums" refused "values belongs to enum fields only" "$(fp ev '[{name: g, type: string, values: [x]}]')"
check "CEL: minLength <= maxLength" refused "minLength must not be greater than maxLength" "$(fp ml '[{name: a, type: string, minLength: 5, maxLength: 2}]')"
check "CEL: minimum <= maximum" refused "minimum must not be greater than maximum" "$(fp mm '[{name: a, type: number, minimum: 5, maximum: 2}]')"
check "CEL: partitionKey names a field" refused "form.partitionKey must name one of form.fields" "$(fp pk '[{name: a, type: string}]' '    partitionKey: b')"
check "schema: unknown field type" refused "Unsupported value: \"colour\"" "$(fp ty '[{name: a, type: colour}]')"
check "schema: partitions at least 1" refused "spec.kafka.partitions" "$(fp p0 '[{name: a, type: string}]' '  kafka: {partitions: 0}')"
check "create one to change" bash -c "kubectl apply -f - <<'Y'
$(fp grow '[{name: a, type: string}]' '  kafka: {partitions: 4}')
Y"
check "CEL: partitions can only grow" refused "partitions can only grow" "$(fp grow '[{name: a, type: string}]' '  kafka: {partitions: 3}')"
check "CEL: partitions may grow" bash -c "kubectl apply --dry-run=server -f - <<'Y'
$(fp grow '[{name: a, type: string}]' '  kafka: {partitions: 8}')
Y"
# #24: pod settings, autoscaling, topic configs
check "pod settings, autoscaling and topic configs are accepted" bash -c "kubectl apply --dry-run=server -f - <<'Y'
$(fp pods '[{name: a, type: string}]' '  kafka: {config: {retention.ms: 86400000, compression.type: zstd, min.insync.replicas: 2}, deadLetterConfig: {retention.ms: -1}}
  ingest:
    autoscaling: {minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 70, requestsPerSecond: 200}
    pod:
      resources: {requests: {cpu: 250m, memory: 128Mi}, limits: {memory: 1Gi}}
      imagePullSecrets: [{name: regcred}]
      nodeSelector: {pool: web}
      tolerations: [{key: web, operator: Exists, effect: NoSchedule}]
      affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, podAffinityTerm: {topologyKey: kubernetes.io/hostname}}]}}
      topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}]
      priorityClassName: forms
      labels: {team: forms}
      annotations: {sidecar.istio.io/inject: enabled}
  consumer: {pod: {priorityClassName: bulk}}')
Y"
check "CEL: unknown topic config keys are refused" refused "not a topic config formpipe sets" "$(fp tc '[{name: a, type: string}]' '  kafka: {config: {cleanup.policy: compact}}')"
check "CEL: unknown dead-letter topic config keys are refused" refused "not a topic config formpipe sets" "$(fp tcd '[{name: a, type: string}]' '  kafka: {deadLetterConfig: {unclean.leader.election.enable: \"true\"}}')"
check "CEL: compression.type is one Kafka knows" refused "compression.type must be" "$(fp tcc '[{name: a, type: string}]' '  kafka: {config: {compression.type: brotli}}')"
check "CEL: retention.ms is an integer" refused "are integers" "$(fp tci '[{name: a, type: string}]' '  kafka: {config: {retention.ms: forever}}')"
check "CEL: autoscaling min <= max" refused "autoscaling.minReplicas must not be above maxReplicas" "$(fp as1 '[{name: a, type: string}]' '  ingest: {autoscaling: {minReplicas: 5, maxReplicas: 2, requestsPerSecond: 10}}')"
check "CEL: autoscaling needs a target" refused "autoscaling needs targetCPUUtilizationPercentage and/or requestsPerSecond" "$(fp as2 '[{name: a, type: string}]' '  ingest: {autoscaling: {maxReplicas: 4}}')"
check "CEL: pod labels are not the operator's" refused "labels are set by the operator" "$(fp pl '[{name: a, type: string}]' '  consumer: {pod: {labels: {app.kubernetes.io/name: x}}}')"
check "CEL: resource quantities" refused "must be a quantity" "$(fp pq '[{name: a, type: string}]' '  ingest: {pod: {resources: {limits: {memory: lots}}}}')"
check "CEL: resource names" refused "resources are cpu, memory and ephemeral-storage" "$(fp pr '[{name: a, type: string}]' '  ingest: {pod: {resources: {limits: {nvidia.com/gpu: 1}}}}')"
check "a FormTask takes the same pod settings" bash -c "kubectl apply --dry-run=server -f - <<'Y'
$(ft podhook '  webhook: {url: https://h.example.com/}\n  pod: {imagePullSecrets: [{name: regcred}], priorityClassName: tasks, resources: {limits: {memory: 1Gi}}}')
Y"
check "CEL: FormTask pod annotations are not the operator's" refused "formpipe.io/ annotations are set by the operator" "$(ft podbad '  webhook: {url: https://h.example.com/}\n  pod: {annotations: {formpipe.io/form-hash: x}}')"
same_pod_schema() {
  python3 - "$crd" "$tcrd" <<'PY'
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
t = yaml.safe_load(open(sys.argv[2]))["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
pods = [p["ingest"]["properties"]["pod"], p["consumer"]["properties"]["pod"], p["sheets"]["properties"]["pod"], t["pod"]]
sys.exit(0 if all(x == pods[0] for x in pods) else 1)
PY
}
check "one pod settings schema for ingest, consumer, flush and tasks" same_pod_schema
check "kubectl get fp prints the columns" bash -c \
  'kubectl get fp -n "'"$ns"'-forms" | head -1 | grep -Eq "^NAME +PARTITIONS +INGEST +CONSUMERS +LAG +DEAD +READY +REASON +AGE"'
check "defaults are filled in" equals \
  "$(kubectl get fp grow -n "$ns-forms" -o jsonpath='{.spec.form.unknownFields} {.spec.ingest.replicas} {.spec.sheets.sheet} {.spec.sheets.batchRows}')" \
  "reject 2 Responses 5000"

# --- chart -------------------------------------------------------------------
check "helm lint --strict" "$HELM" lint --strict charts/formpipe
custom=tests/integration/packaging/custom-values.yaml
check "helm lint --strict with every value customised" "$HELM" lint --strict charts/formpipe -f "$custom"
custom_rendered() {
  local out; out=$("$HELM" template x charts/formpipe -f "$custom") || return 1
  for want in "image: registry.example.com/team/formpipe-operator:9.9.9" "replicas: 3" "--workers=16" \
              "--kafka-config-secret=kafka-client:client.properties" "--redis-password-secret=redis-auth:password" \
              "--google-credentials-secret=sheets-writer:sa.json" "--sheets-api-url=https://sheets.example.com" \
              "--consumer-image=registry.example.com/team/formpipe-consumer:9.9.9" \
              "--task-image=registry.example.com/team/formpipe-task:9.9.9" "kind: ServiceMonitor" "kind: PrometheusRule" \
              "kind: PodMonitor" "interval: 20s" "targetLabel: pipeline" \
              "runbook_url: https://docs.example.com/formpipe/runbooks#pipeline-not-progressing" \
              "release: prometheus" "secretName: kafka-admin" "items: [{key: admin.properties, path: client.properties}]" \
              "--kafka-ca-secret=kafka-cluster-ca:ca.pem" "--kafka-property=ssl.ca.location=/etc/formpipe/kafka-ca/ca.crt" \
              "items: [{key: ca.pem, path: ca.crt}]" "--redis-tls-ca-secret=redis-ca:ca.pem" \
              "--redis-tls-client-secret=redis-client" "--redis-tls-key-file=/etc/formpipe/redis-client/tls.key" \
              "items: [{key: tls.crt, path: tls.crt}, {key: tls.key, path: tls.key}]" "dedicated" "podAntiAffinity" "regcred" \
              "--ingest-trusted-proxy=10.42.0.0/16" "--ingest-trusted-proxy=fd00:42::/56" \
              "--ingest-token-key-secret=form-tokens:k" \
              '"default":{"annotations":{"sidecar.istio.io/inject":"true"},"imagePullSecrets":[{"name":"regcred"}]' \
              '"task":{"imagePullSecrets":[{"name":"task-regcred"}]}' "--pod-defaults=/etc/formpipe/pod-defaults/pod-defaults.json"; do
    grep -qF -- "$want" <<<"$out" || { echo "missing: $want"; return 1; }
  done
  ! grep -q "formpipe-dashboard" <<<"$out" || { echo "the dashboard was disabled"; return 1; }
  # the pipelines' client Secret is named to the operator, never mounted into it
  ! grep -q "secretName: kafka-client" <<<"$out" || { echo "the operator mounts the pipelines' Kafka Secret"; return 1; }
}
check "helm template with every value customised renders them" custom_rendered
# A Secret volume's files are root-owned; with defaultMode 0440 only the pod's fsGroup
# can read them, so every pod mounting one must run with the group it reads as.
secrets_readable() {
  "$HELM" template x charts/formpipe -f "$custom" | python3 -c '
import sys, yaml
bad = []
for doc in yaml.safe_load_all(sys.stdin):
    spec = ((doc or {}).get("spec", {}).get("template") or {}).get("spec")
    if not spec:
        continue
    sc = spec.get("securityContext", {})
    for v in spec.get("volumes", []):
        mode = v.get("secret", {}).get("defaultMode")
        if mode is not None and mode & 0o004 == 0 and sc.get("fsGroup") != sc.get("runAsGroup", sc.get("runAsUser")):
            bad.append("%s %s: volume %s mode %o, fsGroup %s" % (doc["kind"], doc["metadata"]["name"], v["name"], mode, sc.get("fsGroup")))
print("\n".join(bad))
sys.exit(1 if bad else 0)'
}
check "every pod can read the Secrets it mounts (fsGroup for mode 0440)" secrets_readable
check "values schema refuses replicas 0" bash -c '! "$HELM" template x charts/formpipe --set operator.replicas=0 2>&1 | tee /dev/stderr | grep -q "^apiVersion" && "$HELM" template x charts/formpipe --set operator.replicas=0 2>&1 | grep -q "replicas"'
check "values schema refuses unknown values" bash -c '"$HELM" template x charts/formpipe --set bogus=1 2>&1 | grep -q "additional properties"'
check "values schema refuses a bad pull policy" bash -c '"$HELM" template x charts/formpipe --set image.pullPolicy=Sometimes 2>&1 | grep -q "pullPolicy"'
check "manifests/install.yaml is helm template with default values" bash -c \
  'scripts/render-manifests "'"$work"'/install.yaml" && diff -u manifests/install.yaml "'"$work"'/install.yaml"'
kubectl create namespace "$ns-dry" >/dev/null
check "manifests/install.yaml passes a server dry run" bash -c \
  'sed "s/formpipe-system/'"$ns"'-dry/g" manifests/install.yaml | kubectl apply --server-side --dry-run=server -f - >/dev/null'
labels_ok() {
  "$HELM" template "$rel" charts/formpipe -n "$ns" | kubectl apply --dry-run=client -o json -f - | python3 -c '
import json, sys
doc = json.load(sys.stdin)
items = doc["items"] if doc.get("kind") == "List" else [doc]
need = ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
        "app.kubernetes.io/component", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "helm.sh/chart"]
bad = [(o["kind"], k) for o in items for k in need if k not in o["metadata"].get("labels", {})]
print(bad); sys.exit(1 if bad else 0)'
}
check "every chart object has the recommended labels" labels_ok

kubectl create namespace "$ns" >/dev/null
kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest >/dev/null
# --set-json: a bootstrap list has commas, which --set would split on
# a private registry: its pull secret in the values reaches the operator and, through
# the pod defaults, every pipeline and task pod (tests/integration/test_operator.c
# pod_settings_from_the_chart_reach_pipeline_pods follows them into the pods)
kubectl create secret docker-registry regcred -n "$ns" --docker-server=registry.example.com --docker-username=u --docker-password=p >/dev/null
check "helm install into a restricted namespace" bash -c '"$HELM" install "'"$rel"'" charts/formpipe -n "'"$ns"'" \
  --set-json "kafka.bootstrapServers=\"$FORMPIPE_KAFKA_BOOTSTRAP\"" --set image.registry=registry.example.com \
  --set-json "imagePullSecrets=[{\"name\":\"regcred\"}]" > "'"$work"'/notes" 2>&1 || { cat "'"$work"'/notes"; false; }'
check "the operator pulls with the private registry's secret" equals \
  "$(kubectl get deploy -n "$ns" "$rel-formpipe-operator" -o jsonpath='{.spec.template.spec.imagePullSecrets[0].name} {.spec.template.spec.containers[0].image}')" \
  "regcred registry.example.com/formpipe/formpipe-operator:0.1.0"
check "the pipeline pods' defaults carry the pull secret" equals \
  "$(kubectl get configmap -n "$ns" "$rel-formpipe-pod-defaults" -o jsonpath='{.data.pod-defaults\.json}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["default"]["imagePullSecrets"][0]["name"])')" \
  "regcred"
check "the operator reads them" bash -c 'kubectl get deploy -n "'"$ns"'" "'"$rel"'-formpipe-operator" -o jsonpath="{.spec.template.spec.containers[0].args} {.spec.template.spec.volumes[0].configMap.name}" | grep -q -- "--pod-defaults=/etc/formpipe/pod-defaults/pod-defaults.json.* '"$rel"'-formpipe-pod-defaults"'
check "NOTES tell the next step" bash -c 'grep -q "kubectl apply -f student-data.yaml" "'"$work"'/notes"'
pods() { kubectl get pods -n "$ns" -l app.kubernetes.io/component=operator --no-headers 2>/dev/null | wc -l; }
wait_pods() { for _ in $(seq 60); do [ "$(pods)" = "$1" ] && return 0; sleep 0.5; done; echo "$(pods) operator pods, want $1"; kubectl get events -n "$ns" | tail -5; return 1; }
check "Pod Security admits both operator pods" wait_pods 2
check "the operator pod runs non-root, read-only, no capabilities" equals \
  "$(kubectl get deploy -n "$ns" "$rel-formpipe-operator" -o jsonpath='{.spec.template.spec.securityContext.runAsNonRoot} {.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem} {.spec.template.spec.containers[0].securityContext.capabilities.drop[0]} {.spec.template.spec.securityContext.seccompProfile.type}')" \
  "true true ALL RuntimeDefault"
check "leader election is on with 2 replicas" bash -c 'kubectl get deploy -n "'"$ns"'" "'"$rel"'-formpipe-operator" -o jsonpath="{.spec.template.spec.containers[0].args}" | grep -q -- "--leader-elect=true"'
check "helm upgrade" "$HELM" upgrade "$rel" charts/formpipe -n "$ns" --reuse-values --set operator.replicas=3
check "the upgrade reached the Deployment" wait_pods 3
check "helm uninstall" "$HELM" uninstall "$rel" -n "$ns"
check "uninstall removed the operator" bash -c '! kubectl get deploy -n "'"$ns"'" "'"$rel"'-formpipe-operator" 2>/dev/null'

# --- examples ----------------------------------------------------------------
check "examples/student-data.yaml passes a server dry run" bash -c \
  'sed "s/namespace: forms/namespace: '"$ns"'-forms/" manifests/examples/student-data.yaml | kubectl apply --dry-run=server -f -'
check "the example is seed 004's form" equals \
  "$(grep -o 'name: [a-z]*, label' manifests/examples/student-data.yaml | cut -d' ' -f2 | tr -d , | tr '\n' ' ')" \
  "name roll university cgpa gender age email mobile "
kubectl create namespace "$ns-redis" >/dev/null
check "examples/redis-sentinel.yaml passes a server dry run" bash -c \
  'sed "s/namespace: redis/namespace: '"$ns"'-redis/" manifests/examples/redis-sentinel.yaml | kubectl apply --dry-run=server -f -'
check "the Kafka and Redis examples are marked as examples" bash -c \
  'head -1 manifests/examples/kafka-strimzi.yaml | grep -q "EXAMPLE ONLY" && head -1 manifests/examples/redis-sentinel.yaml | grep -q "EXAMPLE ONLY"'

# `kubectl apply --dry-run=server -f manifests/` as a user would run it: the namespaces
# the files name exist, and Strimzi's two kinds are registered (stand-in CRDs that accept
# any spec: the Strimzi operator is not part of this environment).
strimzi_standins() {
  local kind plural
  for kind in Kafka:kafkas KafkaNodePool:kafkanodepools; do
    plural=${kind#*:}; kind=${kind%:*}
    printf 'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: %s.kafka.strimzi.io}\nspec:\n  group: kafka.strimzi.io\n  scope: Namespaced\n  names: {kind: %s, plural: %s, singular: %s, listKind: %sList}\n  versions:\n  - name: v1beta2\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n---\n' \
      "$plural" "$kind" "$plural" "$(echo "$kind" | tr 'A-Z' 'a-z')" "$kind"
  done | kubectl apply -f - >/dev/null &&
  kubectl wait --for condition=Established crd/kafkas.kafka.strimzi.io crd/kafkanodepools.kafka.strimzi.io --timeout 30s >/dev/null
}
for n in formpipe-system forms kafka redis; do kubectl get namespace "$n" >/dev/null 2>&1 || kubectl create namespace "$n" >/dev/null; done
check "kubectl apply --dry-run=server -R -f manifests/ passes" bash -c \
  "$(declare -f strimzi_standins); strimzi_standins && kubectl apply --dry-run=server --server-side -R -f manifests/ >/dev/null"

# --- Dockerfile ----------------------------------------------------------------
runtime_libs() {   # the Debian packages of the libraries bin/$1 links directly, libc aside
  objdump -p "$bin/$1" | awk '/NEEDED/ {print $2}' | while read -r so; do
    dpkg -S "*/$(gcc -dumpmachine)/$so" 2>/dev/null | grep -v -- '-dev' | head -1 | cut -d: -f1
  done | grep -vx libc6 | sort -u | tr '\n' ' '
}
check "Dockerfile: the ingest's image has the lws event-loop plugin it loads" equals \
  "$(grep '^# runtime-plugins formpipe-ingest:' Dockerfile | cut -d: -f2 | awk '{print $1}')" \
  "$(dpkg -S '*/libwebsockets-evlib_ev.so' | cut -d: -f1 | head -1)"
images=(formpipe-operator formpipe-ingest formpipe-consumer formpipe-flush formpipe-task)
for b in "${images[@]}"; do
  check "Dockerfile: $b is built and copied" bash -c "[ -x '$bin/$b' ] && grep -q 'COPY --from=build /build/bin/$b ' Dockerfile"
  declared=$(grep "^# runtime-libs $b:" Dockerfile | cut -d: -f2- | tr ' ' '\n' | grep -v -e '^$' -e '^ca-certificates$' | sort -u | tr '\n' ' ')
  check "Dockerfile: $b installs exactly the libraries it links" equals "$declared" "$(runtime_libs "$b")"
  for pkg in $declared $(grep "^# runtime-plugins $b:" Dockerfile | cut -d: -f2 | cut -d'(' -f1); do
    check "Dockerfile: $b's image installs $pkg" bash -c \
      "awk '/^FROM runtime AS $b/,/^ENTRYPOINT/' Dockerfile | grep -A2 '^RUN apt-get' | grep -qw -- '$pkg'"
  done
  check "Dockerfile: $b runs as 65532 without a shell entrypoint" bash -c \
    "awk '/^FROM runtime AS $b/,/^ENTRYPOINT/' Dockerfile | grep -q '^USER 65532:65532' && awk '/^FROM runtime AS $b/,/^ENTRYPOINT/' Dockerfile | grep -q '^ENTRYPOINT \[\"/usr/local/bin/$b\"\]'"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
