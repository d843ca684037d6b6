# Builds or downloads the servers into $FP_CACHE (sourced by scripts/testenv).
# Each step writes into a temporary directory and renames it when complete, so an
# interrupted build never leaves a half-filled cache entry that looks finished.

# fp_recipe_key FUNC : a short hash of a build function's own text, so the cache entry
# of a step changes whenever its recipe (versions, flags) changes.
fp_recipe_key() { declare -f "$1" | sha256sum | cut -c1-10; }

# Go's module and build caches live in our cache too, so "cold" means really cold
# and one `rm -rf ~/.cache/formpipe` resets everything.
export GOMODCACHE=$FP_CACHE/go/mod GOCACHE=$FP_CACHE/go/build GOTOOLCHAIN=local GOFLAGS=-mod=mod

# Where each built thing lives in the cache.
k8s_dir() { echo "$FP_CACHE/k8s-$K8S_VERSION-$(fp_recipe_key build_k8s)"; }
etcd_dir() { echo "$FP_CACHE/etcd-$ETCD_VERSION-$(fp_recipe_key build_etcd)"; }
helm_dir() { echo "$FP_CACHE/helm-$HELM_VERSION-$(fp_recipe_key build_helm)"; }

fp_progress() { printf '[testenv %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Runs a long command, printing a heartbeat every 30 s so a person sees it is working.
fp_with_heartbeat() {
  local label=$1; shift
  "$@" &
  local pid=$! start=$SECONDS next=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)) && kill -0 "$pid" 2>/dev/null; then
      fp_progress "$label: still working ($((SECONDS - start)) s)"
      next=$((SECONDS + 30))
    fi
  done
  wait "$pid"
}

build_k8s() {
  local dest; dest=$(k8s_dir)
  [ -x "$dest/bin/kube-apiserver" ] && [ -x "$dest/bin/kube-controller-manager" ] && return 0
  fp_progress "building kube-apiserver and kube-controller-manager $K8S_VERSION from Go modules (cold: about 5 min on 2 cores)"
  local work=$FP_CACHE/.build-k8s-$K8S_VERSION
  rm -rf "$work"; mkdir -p "$work"
  (
    set -euo pipefail
    cd "$work"
    # k8s.io/kubernetes points its staging modules at ./staging; replace each with the
    # published v0.X.Y of the same release.
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    {
      echo "module formpipe.local/testenv/k8s"
      echo "go 1.25"
      echo "require k8s.io/kubernetes $K8S_VERSION"
      grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$gomod" |
        awk -v v="$K8S_STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
    } > go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
GO
    fp_with_heartbeat "k8s modules" go mod tidy >/dev/null 2>&1 || go mod tidy
    mkdir -p out/bin
    # Stamp the version the way the release build does; kubectl and helm read it.
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local ldflags="-s" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    local cmd
    for cmd in kube-apiserver kube-controller-manager; do
      fp_with_heartbeat "$cmd" go build -trimpath -ldflags="$ldflags" -o "out/bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
  ) || { fp_progress "k8s build failed (work dir $work)"; return 1; }
  rm -rf "$dest"; mv "$work/out" "$dest"; rm -rf "$work"
}

build_etcd() {
  local dest; dest=$(etcd_dir)
  [ -x "$dest/bin/etcd" ] && return 0
  fp_progress "building etcd $ETCD_VERSION from Go modules"
  local work=$FP_CACHE/.build-etcd-$ETCD_VERSION
  rm -rf "$work"; mkdir -p "$work"
  (
    set -euo pipefail
    cd "$work"
    printf 'module formpipe.local/testenv/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
    cat > main.go <<'GO'
// Command etcd runs etcd's own entry point; built here because Debian's etcd is too old.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    fp_with_heartbeat "etcd modules" go mod tidy
    mkdir -p out/bin
    fp_with_heartbeat "etcd" go build -trimpath -ldflags=-s -o out/bin/etcd .
  ) || { fp_progress "etcd build failed (work dir $work)"; return 1; }
  rm -rf "$dest"; mv "$work/out" "$dest"; rm -rf "$work"
}

build_helm() {
  local dest; dest=$(helm_dir)
  [ -x "$dest/bin/helm" ] && return 0
  fp_progress "building helm $HELM_VERSION with go install"
  local work=$FP_CACHE/.build-helm-$HELM_VERSION
  rm -rf "$work"; mkdir -p "$work/bin"
  # Like helm's Makefile: stamp the Kubernetes version its client-go speaks, or
  # `helm template` assumes v1.20 and refuses charts that need a newer cluster.
  local kv="-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR"
  kv="$kv -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR"
  GOFLAGS= GOBIN="$work/bin" fp_with_heartbeat "helm" \
    go install -trimpath -ldflags="-s -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $kv" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ||
    { fp_progress "helm build failed"; return 1; }
  rm -rf "$dest"; mv "$work" "$dest"
}

build_kafka() {
  local dest=$FP_CACHE/kafka-$KAFKA_VERSION pom
  # Kafka 4.1 logs through slf4j 1.7, so the binding is log4j-slf4j-impl (not slf4j2).
  pom=$(cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>formpipe.testenv</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
)
  local key
  key=$(sha256sum <<<"$pom" | cut -c1-16)
  [ "$(cat "$dest/libs/.complete" 2>/dev/null)" = "$key" ] && return 0
  fp_progress "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central"
  local work=$FP_CACHE/.build-kafka-$KAFKA_VERSION
  rm -rf "$work"; mkdir -p "$work"
  printf '%s\n' "$pom" >"$work/pom.xml"
  fp_with_heartbeat "kafka jars" mvn -q -B -Dstyle.color=never -f "$work/pom.xml" \
    -Dmaven.repo.local="$FP_CACHE/m2" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$work/libs" ||
    { fp_progress "kafka fetch failed"; return 1; }
  echo "$key" >"$work/libs/.complete"
  rm -rf "$dest"; mkdir -p "$dest"; mv "$work/libs" "$dest/libs"; rm -rf "$work"
}
