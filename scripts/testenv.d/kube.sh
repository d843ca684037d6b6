# etcd + kube-apiserver + kube-controller-manager on loopback, TLS with a generated CA,
# bearer-token users, service-account signing keys and RBAC. Sourced by scripts/testenv.


kube_certs() {
  local d=$STATE/kube
  [ -f "$d/apiserver.crt" ] && return 0
  mkdir -p "$d"
  (
    set -e
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=formpipe-testenv-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >admin.token
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >kcm.token
    # token,user,uid,"group1,group2"
    printf '%s,admin,admin-uid,"system:masters"\n%s,system:kube-controller-manager,kcm-uid,"system:masters"\n' \
      "$(cat admin.token)" "$(cat kcm.token)" >tokens.csv
    chmod 600 ./*.key ./*.token tokens.csv
  )
}

# kube_kubeconfig FILE USER TOKENFILE
kube_kubeconfig() {
  cat >"$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: formpipe-testenv
  cluster:
    server: https://127.0.0.1:$KUBE_APISERVER_PORT
    certificate-authority: $STATE/kube/ca.crt
users:
- name: $2
  user:
    token: $(cat "$3")
contexts:
- name: formpipe-testenv
  context:
    cluster: formpipe-testenv
    user: $2
    namespace: default
current-context: formpipe-testenv
YAML
  chmod 600 "$1"
}

kube_apiserver_ready() {
  curl -fsS --max-time 2 --cacert "$STATE/kube/ca.crt" \
    -H "Authorization: Bearer $(cat "$STATE/kube/admin.token")" \
    "https://127.0.0.1:$KUBE_APISERVER_PORT/readyz" | grep -qx ok
}

kube_running() {
  proc_pid etcd >/dev/null && proc_pid kube-apiserver >/dev/null &&
    proc_pid kube-controller-manager >/dev/null
}

kube_up() {
  local bin; bin=$(k8s_dir)/bin
  if kube_running; then return 0; fi
  kube_down
  rm -rf "$STATE/kube" "$STATE/etcd"
  kube_certs || { echo "testenv: generating certificates failed" >&2; return 1; }
  kube_kubeconfig "$STATE/kube/admin.kubeconfig" admin "$STATE/kube/admin.token"
  kube_kubeconfig "$STATE/kube/kcm.kubeconfig" system:kube-controller-manager "$STATE/kube/kcm.token"

  fp_progress "starting etcd $ETCD_VERSION"
  require_free_port etcd "$ETCD_CLIENT_PORT" && require_free_port etcd-peer "$ETCD_PEER_PORT" || return 1
  start_proc etcd "$(etcd_dir)/bin/etcd" --name formpipe \
    --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "formpipe=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn
  wait_until 30 etcd bash -c "curl -fsS http://127.0.0.1:$ETCD_CLIENT_PORT/health | grep -q '\"health\":\"true\"'" ||
    { fail_with_log etcd; return 1; }

  fp_progress "starting kube-apiserver $K8S_VERSION"
  require_free_port kube-apiserver "$KUBE_APISERVER_PORT" || return 1
  start_proc kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$KUBE_APISERVER_PORT" \
    --tls-cert-file "$STATE/kube/apiserver.crt" --tls-private-key-file "$STATE/kube/apiserver.key" \
    --client-ca-file "$STATE/kube/ca.crt" \
    --token-auth-file "$STATE/kube/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$STATE/kube/sa.pub" \
    --service-account-signing-key-file "$STATE/kube/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true \
    --enable-priority-and-fairness=false \
    --profiling=false \
    --cert-dir "$STATE/kube/apiserver-certs" \
    --v=1
  wait_until 120 kube-apiserver kube_apiserver_ready || { fail_with_log kube-apiserver; return 1; }

  fp_progress "starting kube-controller-manager $K8S_VERSION"
  require_free_port kube-controller-manager "$KUBE_CONTROLLER_MANAGER_PORT" || return 1
  start_proc kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$STATE/kube/kcm.kubeconfig" \
    --authentication-kubeconfig "$STATE/kube/kcm.kubeconfig" \
    --authorization-kubeconfig "$STATE/kube/kcm.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KUBE_CONTROLLER_MANAGER_PORT" \
    --cert-dir "$STATE/kube/kcm-certs" \
    --leader-elect=false \
    --service-account-private-key-file "$STATE/kube/sa.key" \
    --root-ca-file "$STATE/kube/ca.crt" \
    --cluster-signing-cert-file "$STATE/kube/ca.crt" --cluster-signing-key-file "$STATE/kube/ca.key" \
    --profiling=false \
    --kube-api-qps 300 --kube-api-burst 600 \
    --concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10 \
    --v=1
  wait_until 60 kube-controller-manager \
    curl -fsSk "https://127.0.0.1:$KUBE_CONTROLLER_MANAGER_PORT/healthz" ||
    { fail_with_log kube-controller-manager; return 1; }
  # The service-account controller creates "default" in each namespace; pods need it.
  wait_until 60 "the default service account" \
    kubectl --kubeconfig "$STATE/kube/admin.kubeconfig" get serviceaccount default -n default ||
    { fail_with_log kube-controller-manager; return 1; }
  fp_progress "Kubernetes control plane ready at https://127.0.0.1:$KUBE_APISERVER_PORT"
}

kube_down() {
  stop_proc kube-controller-manager 10
  stop_proc kube-apiserver 10
  stop_proc etcd 10
}
