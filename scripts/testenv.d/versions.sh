# Versions of everything the test environment downloads or builds. Each one keys its
# own cache directory under $FP_CACHE, so changing a version rebuilds only that part.
K8S_VERSION=v1.35.4          # kube-apiserver + kube-controller-manager (Go modules)
K8S_STAGING_VERSION=v0.35.4  # matching k8s.io/* staging modules
ETCD_VERSION=v3.6.6
HELM_VERSION=v3.19.0
HELM_K8S_MINOR=34   # helm v3.19.0 is built on client-go v0.34
KAFKA_VERSION=4.1.1
LOG4J_VERSION=2.24.3
PLAYWRIGHT_CORE_VERSION=1.65.1   # drives Debian's chromium in the browser test (npm)
FP_CACHE=${FP_CACHE:-$HOME/.cache/formpipe}
MAILPIT_VERSION=v1.33.1          # the SMTP server with an HTTP API the email kind's tests read (Go module)
# The real node (scripts/testenv.d/node.sh, `testenv up node`): kubelet, kube-proxy and
# kube-scheduler come from K8S_VERSION above; containerd and crictl from the Go proxy.
CONTAINERD_VERSION=v2.2.9        # github.com/containerd/containerd/v2 (Kubernetes 1.35 needs 2.x)
CRICTL_VERSION=v1.34.0           # sigs.k8s.io/cri-tools (v1.35.0 is not on the Go proxy)
DEBIAN_SUITE=bookworm            # the debootstrap minbase base image of the pod images
COREDNS_VERSION=v1.14.2          # github.com/coredns/coredns: cluster DNS of the real node
