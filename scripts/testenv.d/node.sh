# The real node (issue #20): containerd + runc + CNI bridge, kubelet, kube-proxy and
# kube-scheduler on this machine, registered with the testenv's apiserver, plus the
# formpipe images built from the Dockerfile by buildah and imported into containerd.
# Started only by `scripts/testenv up node` (or FORMPIPE_TESTENV_NODE=1), stopped by
# `down` or `scripts/testenv down node`. Sourced by scripts/testenv.

# Where each built thing lives in the cache (version + hash of its recipe).
node_k8s_dir() { echo "$FP_CACHE/k8s-node-$K8S_VERSION-$(fp_recipe_key build_node_k8s)"; }
containerd_dir() { echo "$FP_CACHE/containerd-$CONTAINERD_VERSION-$(fp_recipe_key build_containerd)"; }
crictl_dir() { echo "$FP_CACHE/crictl-$CRICTL_VERSION-$(fp_recipe_key build_crictl)"; }
coredns_dir() { echo "$FP_CACHE/coredns-$COREDNS_VERSION-$(fp_recipe_key build_coredns)"; }

NODE_TAINT=formpipe.io/real-node=true:NoSchedule
NODE_PROCS=(kube-proxy kubelet kube-scheduler coredns containerd redis-0 redis-1 redis-2 sentinel-0 sentinel-1
            sentinel-2)

# k8s_module_init : in the current directory, a go.mod that requires k8s.io/kubernetes
# $K8S_VERSION with every ./staging module replaced by its published $K8S_STAGING_VERSION.
k8s_module_init() {
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module formpipe.local/testenv/k8s"
    echo "go 1.25"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$gomod" |
      awk -v v="$K8S_STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
  } >go.mod
}

# kubelet, kube-proxy, kube-scheduler: the same module and version stamp as the
# control plane (build_k8s), so most packages come from Go's build cache.
build_node_k8s() {
  local dest; dest=$(node_k8s_dir)
  [ -x "$dest/bin/kubelet" ] && [ -x "$dest/bin/kube-proxy" ] && [ -x "$dest/bin/kube-scheduler" ] && return 0
  fp_progress "building kubelet, kube-proxy and kube-scheduler $K8S_VERSION from Go modules"
  local work=$FP_CACHE/.build-k8s-node-$K8S_VERSION
  rm -rf "$work"; mkdir -p "$work"
  (
    set -euo pipefail
    cd "$work"
    k8s_module_init
    cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
    fp_with_heartbeat "k8s node modules" go mod tidy >/dev/null 2>&1 || go mod tidy
    mkdir -p out/bin
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local ldflags="-s" pkg cmd
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    for cmd in kubelet kube-proxy kube-scheduler; do
      fp_with_heartbeat "$cmd" go build -p 2 -trimpath -ldflags="$ldflags" -o "out/bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
  ) || { fp_progress "k8s node build failed (work dir $work)"; return 1; }
  rm -rf "$dest"; mv "$work/out" "$dest"; rm -rf "$work"
}

# containerd 2.x with its CRI plugin and the runc shim, static (no btrfs/devmapper/zfs:
# the node uses the overlayfs snapshotter).
build_containerd() {
  local dest; dest=$(containerd_dir)
  [ -x "$dest/bin/containerd" ] && [ -x "$dest/bin/containerd-shim-runc-v2" ] && [ -x "$dest/bin/ctr" ] && return 0
  fp_progress "building containerd $CONTAINERD_VERSION from Go modules"
  local work=$FP_CACHE/.build-containerd-$CONTAINERD_VERSION
  rm -rf "$work"; mkdir -p "$work"
  (
    set -euo pipefail
    cd "$work"
    printf 'module formpipe.local/testenv/containerd\n\ngo 1.25\n\nrequire github.com/containerd/containerd/v2 %s\n' \
      "$CONTAINERD_VERSION" >go.mod
    cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
GO
    fp_with_heartbeat "containerd modules" go mod tidy >/dev/null 2>&1 || go mod tidy
    mkdir -p out/bin
    local p=github.com/containerd/containerd/v2 cmd
    local ldflags="-s -X $p/version.Version=$CONTAINERD_VERSION -X $p/version.Package=$p"
    for cmd in containerd containerd-shim-runc-v2 ctr; do
      CGO_ENABLED=0 fp_with_heartbeat "$cmd" go build -p 2 -trimpath -tags "no_btrfs no_devmapper no_zfs" \
        -ldflags="$ldflags" -o "out/bin/$cmd" "$p/cmd/$cmd"
    done
  ) || { fp_progress "containerd build failed (work dir $work)"; return 1; }
  rm -rf "$dest"; mv "$work/out" "$dest"; rm -rf "$work"
}

build_crictl() {
  local dest; dest=$(crictl_dir)
  [ -x "$dest/bin/crictl" ] && return 0
  fp_progress "building crictl $CRICTL_VERSION with go install"
  local work=$FP_CACHE/.build-crictl-$CRICTL_VERSION
  rm -rf "$work"; mkdir -p "$work/bin"
  GOFLAGS= GOBIN="$work/bin" CGO_ENABLED=0 fp_with_heartbeat "crictl" \
    go install -p 2 -trimpath -ldflags="-s -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" ||
    { fp_progress "crictl build failed"; return 1; }
  rm -rf "$dest"; mv "$work" "$dest"
}

# CoreDNS with only the plugins cluster DNS needs (CoreDNS as a library: its own main
# sets the directive list), so the cloud providers' SDKs are not compiled.
build_coredns() {
  local dest; dest=$(coredns_dir)
  [ -x "$dest/bin/coredns" ] && return 0
  fp_progress "building CoreDNS $COREDNS_VERSION (cluster DNS plugins only) from Go modules"
  local work=$FP_CACHE/.build-coredns-$COREDNS_VERSION
  rm -rf "$work"; mkdir -p "$work"
  (
    set -euo pipefail
    cd "$work"
    printf 'module formpipe.local/testenv/coredns\n\ngo 1.25\n\nrequire github.com/coredns/coredns %s\n' "$COREDNS_VERSION" >go.mod
    cat >main.go <<'GO'
// Command coredns is CoreDNS with the plugins of a cluster DNS server only.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// The order of CoreDNS's own plugin.cfg.
	dnsserver.Directives = []string{"bind", "errors", "log", "health", "ready", "cache", "loadbalance", "kubernetes"}
}

func main() { coremain.Run() }
GO
    fp_with_heartbeat "coredns modules" go mod tidy >/dev/null 2>&1 || go mod tidy
    mkdir -p out/bin
    CGO_ENABLED=0 fp_with_heartbeat coredns go build -p 2 -trimpath -ldflags=-s -o out/bin/coredns .
  ) || { fp_progress "coredns build failed (work dir $work)"; return 1; }
  rm -rf "$dest"; mv "$work/out" "$dest"; rm -rf "$work"
}

build_node() {
  build_containerd && build_crictl && build_node_k8s && build_coredns
}

# ---- images ---------------------------------------------------------------------
# buildah with its store in our cache (one `rm -rf ~/.cache/formpipe` resets it too).
node_buildah() {
  buildah --root "$FP_CACHE/buildah/storage" --runroot "$FP_CACHE/buildah/run" --storage-driver overlay "$@"
}
node_base_dir() { echo "$FP_CACHE/node-base-$DEBIAN_SUITE-$(fp_recipe_key build_node_base)"; }
node_pause_dir() { echo "$FP_CACHE/node-pause-$K8S_VERSION-$(fp_recipe_key build_node_pause)"; }
NODE_PAUSE_IMAGE=registry.k8s.io/pause:3.10.1   # containerd 2.2's default sandbox image

# The base of every image: `debootstrap --variant=minbase` of Debian $DEBIAN_SUITE, as a
# tar of its root; tagged debian:12 and debian:12-slim in buildah's store, the two bases
# the Dockerfile names (no registry is reachable here).
build_node_base() {
  local dest; dest=$(node_base_dir)
  [ -s "$dest/rootfs.tar" ] && return 0
  fp_progress "making the $DEBIAN_SUITE minbase image with debootstrap"
  local work=$FP_CACHE/.build-node-base
  rm -rf "$work"; mkdir -p "$work/out"
  (
    set -euo pipefail
    fp_with_heartbeat debootstrap debootstrap --variant=minbase "$DEBIAN_SUITE" "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # Like the official image: no package caches, no apt lists.
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar --numeric-owner -C "$work/rootfs" -cf "$work/out/rootfs.tar" .
  ) || { fp_progress "debootstrap failed (work dir $work)"; return 1; }
  rm -rf "$dest"; mv "$work/out" "$dest"; rm -rf "$work"
}

# The sandbox ("pause") image: Kubernetes' own pause.c from the k8s.io/kubernetes module,
# static, alone in the image as the upstream image has it.
build_node_pause() {
  local dest; dest=$(node_pause_dir)
  [ -s "$dest/pause.tar" ] && return 0
  fp_progress "building the pause image from k8s.io/kubernetes $K8S_VERSION build/pause"
  local work=$FP_CACHE/.build-node-pause src
  rm -rf "$work"; mkdir -p "$work/out"
  (
    set -euo pipefail
    src=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    gcc -Os -static -Wall -Werror -DVERSION=3.10.1-formpipe -o "$work/pause" "$src/build/pause/linux/pause.c"
    strip "$work/pause"
    local c; c=$(node_buildah from scratch)
    node_buildah copy "$c" "$work/pause" /pause >/dev/null
    node_buildah config --entrypoint '["/pause"]' --user 65535:65535 "$c"
    node_buildah commit -q --rm "$c" "$NODE_PAUSE_IMAGE" >/dev/null
    node_buildah push -q "$NODE_PAUSE_IMAGE" "docker-archive:$work/out/pause.tar:$NODE_PAUSE_IMAGE"
  ) || { fp_progress "pause image failed (work dir $work)"; return 1; }
  rm -rf "$dest"; mv "$work/out" "$dest"; rm -rf "$work"
}

# node_base_load : debian:12 and debian:12-slim in buildah's store are the cached base.
node_base_load() {
  local tar key
  tar=$(node_base_dir)/rootfs.tar
  key=$(fp_recipe_key build_node_base)
  [ "$(node_buildah inspect --type image --format '{{index .ImageAnnotations "io.formpipe.base"}}' docker.io/library/debian:12 2>/dev/null)" = "$key" ] &&
    return 0
  local c; c=$(node_buildah from scratch) || return 1
  node_buildah add "$c" "$tar" / >/dev/null &&
    node_buildah config --cmd '["bash"]' --annotation "io.formpipe.base=$key" "$c" &&
    node_buildah commit -q --rm "$c" docker.io/library/debian:12 >/dev/null &&
    node_buildah tag docker.io/library/debian:12 docker.io/library/debian:12-slim
}

# The Dockerfile's targets, as the chart names them.
NODE_IMAGE_TARGETS=(formpipe-operator formpipe-ingest formpipe-consumer formpipe-flush formpipe-task)
node_image_tag() { sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$HERE/../charts/formpipe/Chart.yaml"; }

# node_images_key : a hash of everything the images are built from: the Dockerfile, the
# files it copies (CMakeLists.txt services operator tests bench), the base and this recipe.
node_images_key() {
  (
    cd "$HERE/.."
    {
      echo "$(fp_recipe_key build_node_images) $(fp_recipe_key build_node_base) $DEBIAN_SUITE"
      find Dockerfile CMakeLists.txt services operator tests bench -type f \
        ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16
  )
}
node_images_dir() { echo "$FP_CACHE/node-images-$(node_images_key)"; }

# The formpipe images built from the Dockerfile by buildah (--isolation chroot: runc's
# default isolation is not needed and crun refuses hybrid cgroups), one docker-archive
# per target under node_images_dir, named formpipe/TARGET:<chart appVersion>.
build_node_images() {
  local dest t tag
  dest=$(node_images_dir)
  tag=$(node_image_tag)
  local missing=0
  for t in "${NODE_IMAGE_TARGETS[@]}"; do [ -s "$dest/$t.tar" ] || missing=1; done
  ((missing)) || return 0
  # buildah's layer cache (untagged images) grows by about 1 GB a rebuild: past 6 GB it
  # starts over (the apt steps run again once).
  if [ -d "$FP_CACHE/buildah/storage" ] && (($(du -sm "$FP_CACHE/buildah/storage" | cut -f1) > 6144)); then
    node_buildah rmi --prune >/dev/null 2>&1 || true
  fi
  build_node_base && node_base_load || return 1
  fp_progress "building the formpipe images from the Dockerfile with buildah (cold: several minutes)"
  local work=$FP_CACHE/.build-node-images
  rm -rf "$work"; mkdir -p "$work/out"
  (
    set -euo pipefail
    cd "$HERE/.."
    for t in "${NODE_IMAGE_TARGETS[@]}"; do
      # --layers: the build stage is built once and reused by every target.
      fp_with_heartbeat "image $t" node_buildah bud -q --layers --pull=never --isolation chroot \
        --target "$t" -t "docker.io/formpipe/$t:$tag" -f Dockerfile . >>"$work/build.log" 2>&1 ||
        { tail -30 "$work/build.log" >&2; exit 1; }
      node_buildah push -q "docker.io/formpipe/$t:$tag" "docker-archive:$work/out/$t.tar:docker.io/formpipe/$t:$tag"
    done
  ) || { fp_progress "image build failed (log $work/build.log)"; return 1; }
  rm -rf "$dest"; mv "$work/out" "$dest"; rm -rf "$work"
  # Each set is about 1 GB: keep only the newest.
  local old
  for old in "$FP_CACHE"/node-images-*; do [ "$old" = "$dest" ] || rm -rf "$old"; done
}

# ---- the node -------------------------------------------------------------------
NODE_DIR() { echo "$STATE/realnode"; }          # running state (node.py uses $STATE/node)
node_containerd_root() { echo "$FP_CACHE/node-containerd-root"; }   # images survive down
node_sock() { echo "$(NODE_DIR)/containerd/containerd.sock"; }
NODE_BRIDGE=fpnode0
NODE_NAT_CHAIN=FP-REALNODE

node_crictl() { "$(crictl_dir)/bin/crictl" --config "$(NODE_DIR)/crictl.yaml" --runtime-endpoint "unix://$(node_sock)" --image-endpoint "unix://$(node_sock)" "$@"; }
node_ctr() { "$(containerd_dir)/bin/ctr" --address "$(node_sock)" --namespace k8s.io "$@"; }
node_kubectl() { kubectl --kubeconfig "$STATE/kube/admin.kubeconfig" "$@"; }

# The node's name: the apiserver reaches a kubelet at its Node's Hostname address
# first, so the name must resolve to 127.0.0.1, where the kubelet listens. (Its
# InternalIP is the bridge's gateway: the kubelet refuses a loopback node IP.)
node_name() {
  local h; h=$(hostname)
  if getent ahostsv4 "$h" 2>/dev/null | awk '{print $1}' | grep -qx '127\.0\.0\.1'; then echo "$h"; else echo localhost; fi
}

node_running() {
  local n
  for n in "${NODE_PROCS[@]}"; do proc_pid "node-$n" >/dev/null || return 1; done
}

node_write_configs() {
  local d; d=$(NODE_DIR)
  local gw=${NODE_POD_SUBNET%.*}.1
  mkdir -p "$d/containerd" "$d/cni/net.d" "$d/cni/ipam" "$d/kubelet" "$d/pod-logs" "$(node_containerd_root)"
  printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 10\n' "$(node_sock)" "$(node_sock)" >"$d/crictl.yaml"
  cat >"$d/containerd/config.toml" <<TOML
version = 3
root = '$(node_containerd_root)'
state = '$d/containerd/state'
[grpc]
  address = '$(node_sock)'
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '$NODE_PAUSE_IMAGE'
  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = '$(command -v runc)'
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '$d/cni/net.d'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '$NODE_CRI_STREAM_PORT'
  [plugins.'io.containerd.internal.v1.opt']
    path = '$d/containerd/opt'
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
TOML
  # One bridge, host-local addresses, hostPort via portmap; no ipMasq: nothing leaves
  # the machine.
  cat >"$d/cni/net.d/10-formpipe.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "formpipe-node", "plugins": [
  {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$d/cni/ipam",
            "ranges": [[{"subnet": "$NODE_POD_SUBNET", "gateway": "$gw"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
JSON
  cat >"$d/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false             # this machine kind has cgroup v1 (hybrid)
cgroupDriver: cgroupfs          # no systemd
containerRuntimeEndpoint: unix://$(node_sock)
address: 127.0.0.1
port: $NODE_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $NODE_KUBELET_HEALTHZ_PORT
# The apiserver connects without a client certificate (exec, logs), loopback only.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
registerWithTaints: [{key: formpipe.io/real-node, value: "true", effect: NoSchedule}]
failSwapOn: false
podLogsDir: $d/pod-logs
clusterDomain: cluster.local
clusterDNS: [$gw]                # CoreDNS, a process of the node on the bridge's gateway
resolvConf: ""
# Our images come from no registry: never garbage-collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
serializeImagePulls: false
# ConfigMap volumes follow on a pod's sync: every 5 s here (default 1m), so a Shared form
# reaches the shared ingest within scripts/stack's --shared-switch-delay (10 s)
syncFrequency: 5s
YAML
  mkdir -p "$d/coredns"
  cat >"$d/coredns/Corefile" <<COREFILE
.:53 {
    bind $gw
    errors
    health 127.0.0.1:$NODE_DNS_HEALTH_PORT
    ready 127.0.0.1:$NODE_DNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $STATE/kube/admin.kubeconfig formpipe-testenv
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
    loadbalance
}
COREFILE
  cat >"$d/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube/admin.kubeconfig}
mode: iptables
hostnameOverride: $(node_name)
clusterCIDR: $NODE_POD_SUBNET
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$NODE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$NODE_PROXY_METRICS_PORT
nodePortAddresses: [${NODE_POD_SUBNET%.*}.1/32]   # the bridge only, never eth0
# leave the machine's conntrack settings alone (0: do not set)
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
YAML
}

# The bridge exists before the first pod so route_localnet can be set on it: pods reach
# the apiserver (127.0.0.1 only, and with no kubernetes Endpoints since it advertises a
# loopback address) through 10.96.0.1:443, DNATed here to 127.0.0.1.
# Kernel settings the node changes (the kubelet sets vm.overcommit_memory, kernel.panic,
# kernel.panic_on_oops and kernel.keys.*; the bridge needs ip_forward): saved by up,
# restored by down.
NODE_SYSCTLS=(net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
              kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
node_sysctl_save() {
  local f; f=$(NODE_DIR)/sysctl.saved
  [ -s "$f" ] || sysctl -e "${NODE_SYSCTLS[@]}" 2>/dev/null | sed 's/ = /=/' >"$f"
}
node_sysctl_restore() {
  local f; f=$(NODE_DIR)/sysctl.saved
  [ -s "$f" ] && sysctl -qw $(cat "$f") >/dev/null 2>&1
  return 0
}

node_network_up() {
  local gw=${NODE_POD_SUBNET%.*}.1
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || ip link add "$NODE_BRIDGE" type bridge || return 1
  ip addr replace "$gw/${NODE_POD_SUBNET#*/}" dev "$NODE_BRIDGE" && ip link set "$NODE_BRIDGE" up || return 1
  sysctl -qw "net.ipv4.conf.$NODE_BRIDGE.route_localnet=1" net.ipv4.ip_forward=1 || return 1
  iptables -w -t nat -N "$NODE_NAT_CHAIN" 2>/dev/null || iptables -w -t nat -F "$NODE_NAT_CHAIN"
  iptables -w -t nat -C PREROUTING -j "$NODE_NAT_CHAIN" 2>/dev/null || iptables -w -t nat -I PREROUTING 1 -j "$NODE_NAT_CHAIN"
  iptables -w -t nat -A "$NODE_NAT_CHAIN" -s "$NODE_POD_SUBNET" -d 10.96.0.1/32 -p tcp --dport 443 \
    -j DNAT --to-destination "127.0.0.1:$KUBE_APISERVER_PORT"
  # The servers pods use, at the gateway: Kafka's pod listeners, the Sheets emulator,
  # Mailpit and the pods' Redis set; that set names the gateway to the host too (OUTPUT).
  local ports
  ports=$(node_gateway_ports)
  iptables -w -t nat -A "$NODE_NAT_CHAIN" -s "$NODE_POD_SUBNET" -d "$NODE_GATEWAY/32" -p tcp \
    -m multiport --dports "$ports" -j DNAT --to-destination 127.0.0.1
  iptables -w -t nat -A "$NODE_NAT_CHAIN" -m addrtype --src-type LOCAL -d "$NODE_GATEWAY/32" -p tcp \
    -m multiport --dports "$(IFS=,; echo "${NODE_REDIS_PORTS[*]},${NODE_SENTINEL_PORTS[*]}")" -j DNAT --to-destination 127.0.0.1
  iptables -w -t nat -C OUTPUT -j "$NODE_NAT_CHAIN" 2>/dev/null || iptables -w -t nat -I OUTPUT 1 -j "$NODE_NAT_CHAIN"
  # No route out: pods talk to the node and each other, nothing else.
  iptables -w -N "$NODE_NAT_CHAIN" 2>/dev/null || iptables -w -F "$NODE_NAT_CHAIN"
  iptables -w -C FORWARD -j "$NODE_NAT_CHAIN" 2>/dev/null || iptables -w -I FORWARD 1 -j "$NODE_NAT_CHAIN"
  iptables -w -A "$NODE_NAT_CHAIN" -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j REJECT
}

# The gateway ports DNATed to 127.0.0.1 for pods, comma-separated (at most 15).
node_gateway_ports() {
  local i out="$SHEETS_EMULATOR_PORT,$MAILPIT_SMTP_PORT,$MAILPIT_TLS_SMTP_PORT"
  for i in 1 2 3; do out+=",$((KAFKA_POD_PORT_BASE + i))"; done
  (IFS=,; echo "$out,${NODE_REDIS_PORTS[*]},${NODE_SENTINEL_PORTS[*]}")
}

node_network_down() {
  iptables -w -t nat -D PREROUTING -j "$NODE_NAT_CHAIN" 2>/dev/null || true
  iptables -w -t nat -D OUTPUT -j "$NODE_NAT_CHAIN" 2>/dev/null || true
  iptables -w -t nat -F "$NODE_NAT_CHAIN" 2>/dev/null && iptables -w -t nat -X "$NODE_NAT_CHAIN" 2>/dev/null || true
  iptables -w -D FORWARD -j "$NODE_NAT_CHAIN" 2>/dev/null || true
  iptables -w -F "$NODE_NAT_CHAIN" 2>/dev/null && iptables -w -X "$NODE_NAT_CHAIN" 2>/dev/null || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  # What the kubelet itself adds (kube-proxy --cleanup removes kube-proxy's own).
  local ipt t c
  for ipt in iptables ip6tables; do
    $ipt -w -D INPUT -j KUBE-FIREWALL 2>/dev/null || true
    $ipt -w -D OUTPUT -j KUBE-FIREWALL 2>/dev/null || true
    for t in filter nat mangle; do
      for c in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
        $ipt -w -t "$t" -F "$c" 2>/dev/null && $ipt -w -t "$t" -X "$c" 2>/dev/null || true
      done
    done
  done
  return 0
}

# node_images_import : the pause image and the formpipe images in containerd's k8s.io
# namespace, imported again only when their input hash changed.
node_images_import() {
  local mark; mark=$(node_containerd_root)/formpipe-images
  local want t; want="$(node_images_dir) $(node_pause_dir)"
  [ "$(cat "$mark" 2>/dev/null)" = "$want" ] && return 0
  fp_progress "importing the images into containerd"
  local log=$STATE/logs/node-images.log
  node_ctr images import --local "$(node_pause_dir)/pause.tar" >>"$log" 2>&1 || { tail -5 "$log" >&2; return 1; }
  for t in "${NODE_IMAGE_TARGETS[@]}"; do
    node_ctr images import --local "$(node_images_dir)/$t.tar" >>"$log" 2>&1 || { tail -5 "$log" >&2; return 1; }
  done
  echo "$want" >"$mark"
}

node_up() {
  if node_running; then
    # Running: only bring the images up to date (new pods use them; running ones keep theirs).
    build_node_images && node_images_import && node_images_dir >"$(NODE_DIR)/images"
    return
  fi
  kube_apiserver_ready || { echo "testenv: the node needs the control plane: scripts/testenv up first" >&2; return 1; }
  local n
  for n in runc iptables conntrack debootstrap buildah; do
    command -v "$n" >/dev/null || { echo "testenv: the node needs $n (scripts/install-deps)" >&2; return 1; }
  done
  [ -x /usr/lib/cni/bridge ] || { echo "testenv: the node needs containernetworking-plugins" >&2; return 1; }
  build_node && build_node_pause && build_node_images || return 1
  node_down
  local d name p
  d=$(NODE_DIR)
  name=$(node_name)
  node_write_configs && node_sysctl_save && node_network_up || { echo "testenv: node network setup failed" >&2; return 1; }
  for p in $NODE_KUBELET_PORT $NODE_KUBELET_HEALTHZ_PORT $NODE_SCHEDULER_PORT $NODE_PROXY_HEALTHZ_PORT \
           $NODE_PROXY_METRICS_PORT $NODE_CRI_STREAM_PORT $NODE_DNS_HEALTH_PORT $NODE_DNS_READY_PORT; do require_free_port node "$p" || return 1; done

  fp_progress "starting the pods' Redis Sentinel set at $(redis_pod_sentinels)"
  redis_pods_up || { echo "testenv: the pods' Redis set failed to start" >&2; return 1; }

  fp_progress "starting containerd $CONTAINERD_VERSION"
  start_proc node-containerd env PATH="$(containerd_dir)/bin:$PATH" \
    "$(containerd_dir)/bin/containerd" --config "$d/containerd/config.toml" --log-level warn
  wait_until 30 containerd node_crictl info || { fail_with_log node-containerd; return 1; }
  node_images_import || { echo "testenv: importing images into containerd failed" >&2; return 1; }
  node_images_dir >"$d/images"   # for tests: which build the node runs

  fp_progress "starting CoreDNS $COREDNS_VERSION on ${NODE_POD_SUBNET%.*}.1:53"
  start_proc node-coredns "$(coredns_dir)/bin/coredns" -conf "$d/coredns/Corefile"
  wait_until 30 coredns curl -fsS "http://127.0.0.1:$NODE_DNS_READY_PORT/ready" || { fail_with_log node-coredns; return 1; }

  fp_progress "starting kubelet $K8S_VERSION (node $name, taint $NODE_TAINT)"
  local kbin; kbin=$(node_k8s_dir)/bin
  start_proc node-kubelet "$kbin/kubelet" --config "$d/kubelet/config.yaml" \
    --kubeconfig "$STATE/kube/admin.kubeconfig" --root-dir "$d/kubelet" --cert-dir "$d/kubelet/pki" \
    --hostname-override "$name" --node-ip "${NODE_POD_SUBNET%.*}.1" \
    --node-labels "formpipe.io/real-node=true" --v=1
  wait_until 90 "the kubelet's node to be Ready" bash -c \
    "kubectl --kubeconfig '$STATE/kube/admin.kubeconfig' get node '$name' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True" ||
    { fail_with_log node-kubelet; return 1; }

  fp_progress "starting kube-proxy (iptables) and kube-scheduler"
  start_proc node-kube-proxy "$kbin/kube-proxy" --config "$d/kube-proxy.yaml" --v=1
  start_proc node-kube-scheduler "$kbin/kube-scheduler" \
    --kubeconfig "$STATE/kube/admin.kubeconfig" \
    --authentication-kubeconfig "$STATE/kube/admin.kubeconfig" \
    --authorization-kubeconfig "$STATE/kube/admin.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$NODE_SCHEDULER_PORT" --cert-dir "$d/scheduler-certs" \
    --leader-elect=false --profiling=false --v=1
  wait_until 30 kube-proxy curl -fsS "http://127.0.0.1:$NODE_PROXY_HEALTHZ_PORT/healthz" ||
    { fail_with_log node-kube-proxy; return 1; }
  wait_until 30 kube-scheduler curl -fsSk "https://127.0.0.1:$NODE_SCHEDULER_PORT/healthz" ||
    { fail_with_log node-kube-scheduler; return 1; }
  fp_progress "node $name ready (containerd socket $(node_sock))"
}

# node_down : stops the node part only: pods' containers, kubelet, kube-proxy (its rules
# removed), the scheduler, containerd; unmounts the kubelet's volumes, removes the
# bridge, our iptables chains and the Node object.
node_down() {
  local d; d=$(NODE_DIR)
  stop_proc node-kube-scheduler 5 & stop_proc node-kubelet 10 & wait
  if proc_pid node-containerd >/dev/null; then
    node_crictl stopp $(node_crictl pods -q 2>/dev/null) >/dev/null 2>&1
    node_crictl rmp -f $(node_crictl pods -q 2>/dev/null) >/dev/null 2>&1
  fi
  if proc_pid node-kube-proxy >/dev/null; then
    { stop_proc node-kube-proxy 5; "$(node_k8s_dir)/bin/kube-proxy" --cleanup --config "$d/kube-proxy.yaml" >/dev/null 2>&1; } &
  fi
  stop_proc node-containerd 10 & stop_proc node-coredns 5 & redis_pods_down & wait
  local m
  { findmnt -rn -o TARGET 2>/dev/null | grep -E "^($d|$(node_containerd_root))/" | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done; } || true   # none left: grep fails under pipefail
  node_network_down
  node_sysctl_restore
  if [ -f "$d/kubelet/config.yaml" ] && kube_apiserver_ready 2>/dev/null; then
    node_kubectl delete node "$(node_name)" --ignore-not-found --wait=false >/dev/null 2>&1
  fi
  rm -rf "$d"
  return 0
}
