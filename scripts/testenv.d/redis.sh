# Redis with Sentinel: a master, two replicas and three sentinels on loopback, with
# fresh config files every start (sentinel rewrites its own). Beside it a TLS-only set
# (a master, a replica, two sentinels; certificates from pki.sh) with the same password:
# its sentinels monitor the master over TLS, so they name TLS ports to clients.
# Sourced by scripts/testenv.

# redis-cli for the data nodes: the password goes through REDISCLI_AUTH, never argv.
redis_cli() { REDISCLI_AUTH=$(cat "$STATE/redis/password") redis-cli -h 127.0.0.1 "$@"; }

redis_sentinels() {
  local p out=""
  for p in "${SENTINEL_PORTS[@]}"; do out+="${out:+,}127.0.0.1:$p"; done
  echo "$out"
}

# Every sentinel (ports: the array named $1, default SENTINEL_PORTS) sees the master with
# 2 replicas and 2 other sentinels.
redis_sentinels_agree() {
  local -n ports=${1:-SENTINEL_PORTS}
  local p kv
  for p in "${ports[@]}"; do
    kv=$(redis-cli -h 127.0.0.1 -p "$p" sentinel master "$REDIS_MASTER_NAME" 2>/dev/null | paste -d' ' - -)
    grep -qx 'num-slaves 2' <<<"$kv" && grep -qx 'num-other-sentinels 2' <<<"$kv" || return 1
  done
}

# redis_node_conf I DIR MASTER_PORT [ADDR]: what every data node's config says besides its
# port (node 0 starts as the master, the others replicate MASTER_PORT). ADDR (default
# 127.0.0.1) is the address the set names to each other and to clients.
redis_node_conf() {
  local pw addr=${4:-127.0.0.1}; pw=$(cat "$STATE/redis/password")
  echo "bind 127.0.0.1"
  echo "dir $2"
  echo "save \"\""
  echo "appendonly no"
  echo "protected-mode no"
  echo "daemonize no"
  echo "replica-announce-ip $addr"
  echo "requirepass $pw"
  echo "masterauth $pw"
  if (($1 > 0)); then echo "replicaof $addr $3"; fi
}

# redis_sentinel_conf DIR MASTER_PORT QUORUM [ADDR]: what every sentinel's config says
# besides its port (parallel-syncs 1 is Redis's default, written for the reader).
redis_sentinel_conf() {
  local pw addr=${4:-127.0.0.1}; pw=$(cat "$STATE/redis/password")
  echo "bind 127.0.0.1"
  echo "dir $1"
  echo "daemonize no"
  echo "protected-mode no"
  echo "sentinel announce-ip $addr"
  echo "sentinel monitor $REDIS_MASTER_NAME $addr $2 $3"
  echo "sentinel auth-pass $REDIS_MASTER_NAME $pw"
  echo "sentinel down-after-milliseconds $REDIS_MASTER_NAME 2000"
  echo "sentinel failover-timeout $REDIS_MASTER_NAME 10000"
  echo "sentinel parallel-syncs $REDIS_MASTER_NAME 1"
}

redis_running() {
  local i
  for i in 0 1 2; do
    proc_pid "redis-$i" >/dev/null && proc_pid "sentinel-$i" >/dev/null || return 1
  done
}

# redis_up: starts each set that is not running; a restarted plain set has a new
# password, so the TLS set restarts with it.
redis_up() {
  if ! redis_running; then
    redis_plain_up || return 1
    redis_tls_up
  elif ! redis_tls_running; then
    redis_tls_up
  fi
}

redis_plain_up() {
  redis_down
  rm -rf "$STATE/redis"
  mkdir -p "$STATE/redis"
  # Data nodes require a password, as in production; clients read it from this file.
  (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$STATE/redis/password")
  fp_progress "starting Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') with Sentinel (1 master, 2 replicas, 3 sentinels)"
  redis_set_start "" 127.0.0.1 REDIS_PORTS SENTINEL_PORTS || return 1
  fp_progress "Redis Sentinel ready at $(redis_sentinels) (master name $REDIS_MASTER_NAME)"
}

# redis_set_start PREFIX ADDR PORTS SENTINELS: a master, two replicas and three sentinels
# (PORTS, SENTINELS: names of arrays of 3 ports), processes and directories
# PREFIXredis-I and PREFIXsentinel-I, bound to 127.0.0.1 and naming ADDR to each other and
# to clients. The password is the plain set's.
redis_set_start() {
  local prefix=$1 addr=$2 i p dir
  local -n data=$3 sentinels=$4
  for i in 0 1 2; do
    p=${data[$i]}
    dir=$STATE/redis/${prefix}redis-$i
    mkdir -p "$dir"
    require_free_port "${prefix}redis-$i" "$p" || return 1
    {
      echo "port $p"
      redis_node_conf "$i" "$dir" "${data[0]}" "$addr"
    } >"$dir/redis.conf"
    chmod 600 "$dir/redis.conf"
    start_proc "${prefix}redis-$i" redis-server "$dir/redis.conf"
  done
  for p in "${data[@]}"; do
    wait_until 20 "redis on $p" redis_cli -p "$p" ping || return 1
  done
  wait_until 30 "replicas in sync" bash -c \
    "REDISCLI_AUTH='$(cat "$STATE/redis/password")' redis-cli -h 127.0.0.1 -p ${data[0]} info replication | grep -q '^connected_slaves:2'" ||
    { fail_with_log "${prefix}redis-1"; return 1; }
  for i in 0 1 2; do
    p=${sentinels[$i]}
    dir=$STATE/redis/${prefix}sentinel-$i
    mkdir -p "$dir"
    require_free_port "${prefix}sentinel-$i" "$p" || return 1
    {
      echo "port $p"
      redis_sentinel_conf "$dir" "${data[0]}" 2 "$addr"
    } >"$dir/sentinel.conf"
    chmod 600 "$dir/sentinel.conf"
    start_proc "${prefix}sentinel-$i" redis-sentinel "$dir/sentinel.conf"
  done
  wait_until 60 "sentinels to see 2 replicas and 2 other sentinels" redis_sentinels_agree "$4" ||
    { fail_with_log "${prefix}sentinel-0"; return 1; }
}

# The master all three sentinels name, "host port"; fails when one does not answer,
# they disagree, or one still has a failover in progress (during a failover a sentinel
# already names the promoted replica, and an old master that comes back before the
# failover ends can leave that sentinel on the old master for good).
# PREFIX (all below): "" the plain set, node- the pods' set.
redis_agreed_master() {
  local -n sports=$([ "${1:-}" = node- ] && echo NODE_SENTINEL_PORTS || echo SENTINEL_PORTS)
  local p m first=""
  for p in "${sports[@]}"; do
    redis-cli -h 127.0.0.1 -p "$p" sentinel master "$REDIS_MASTER_NAME" 2>/dev/null | paste -d' ' - - |
      grep -qx 'flags master' || return 1
    m=$(redis-cli -h 127.0.0.1 -p "$p" SENTINEL get-master-addr-by-name "$REDIS_MASTER_NAME" 2>/dev/null | tr '\n' ' ')
    [ -n "$m" ] || return 1
    [ -n "$first" ] || first=$m
    [ "$m" = "$first" ] || return 1
  done
  echo "$first"
}

# redis_live_master_besides I [PREFIX]: the sentinels agree on a master that is not node
# I and that answers ROLE as master.
redis_live_master_besides() {
  local -n dports=$([ "${2:-}" = node- ] && echo NODE_REDIS_PORTS || echo REDIS_PORTS)
  local m port
  m=$(redis_agreed_master "${2:-}") || return 1
  port=${m#* }
  port=${port% }
  [ "$port" != "${dports[$1]}" ] || return 1
  redis_cli -p "$port" role 2>/dev/null | head -1 | grep -qx master
}

# redis_synced I [PREFIX]: node I replicates its master with the link up.
redis_synced() {
  local -n dports=$([ "${2:-}" = node- ] && echo NODE_REDIS_PORTS || echo REDIS_PORTS)
  redis_cli -p "${dports[$1]}" info replication 2>/dev/null | grep -q '^master_link_status:up'
}

# redis_restart I [PREFIX]: starts a stopped data node the way a Sentinel-aware deployment must.
# The nodes keep no data on disk, so a node must never come back as master: a master
# restarted empty before the sentinels fail over would wipe the replicas. So wait until
# all sentinels name another master and that master is live, start this node as its
# replica, and wait until the node has synced (so the next failover has it as a
# candidate).
redis_restart() {
  local i=$1 pre=${2:-} conf=$STATE/redis/${2:-}redis-$1/redis.conf master
  wait_until 60 "the sentinels to agree on a live master other than ${pre}redis-$i" redis_live_master_besides "$i" "$pre" ||
    { redis_sentinel_views "$pre" >&2; return 1; }
  master=$(redis_agreed_master "$pre")
  sed -i '/^replicaof /d' "$conf"
  echo "replicaof $master" >>"$conf"
  restart_proc "${pre}redis-$i" || return 1
  wait_until 60 "${pre}redis-$i to sync with its master" redis_synced "$i" "$pre"
}

# What each sentinel names as master (for a failure message).
redis_sentinel_views() {
  local -n sports=$([ "${1:-}" = node- ] && echo NODE_SENTINEL_PORTS || echo SENTINEL_PORTS)
  local p
  for p in "${sports[@]}"; do
    echo "sentinel :$p names master $(redis-cli -h 127.0.0.1 -p "$p" SENTINEL get-master-addr-by-name "$REDIS_MASTER_NAME" 2>/dev/null | tr '\n' ' ')"
  done
}

# redis-cli for the TLS set, with the client certificate (sentinel-tls-1 requires one).
redis_tls_cli() {
  redis-cli --tls --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/redis-client.crt" \
    --key "$STATE/pki/redis-client.key" -h 127.0.0.1 "$@"
}

redis_tls_data_cli() { REDISCLI_AUTH=$(cat "$STATE/redis/password") redis_tls_cli "$@"; }

redis_tls_replica_synced() {
  redis_tls_data_cli -p "${REDIS_TLS_PORTS[0]}" info replication | grep -q '^connected_slaves:1'
}

redis_tls_sentinel() { echo "127.0.0.1:${SENTINEL_TLS_PORTS[$1]}"; }

redis_tls_running() {
  local i
  for i in 0 1; do
    proc_pid "redis-tls-$i" >/dev/null && proc_pid "sentinel-tls-$i" >/dev/null || return 1
  done
}

# Both TLS sentinels see the master with its replica and the other sentinel.
redis_tls_sentinels_agree() {
  local p kv
  for p in "${SENTINEL_TLS_PORTS[@]}"; do
    kv=$(redis_tls_cli -p "$p" sentinel master "$REDIS_MASTER_NAME" 2>/dev/null | paste -d' ' - -)
    grep -qx 'num-slaves 1' <<<"$kv" && grep -qx 'num-other-sentinels 1' <<<"$kv" || return 1
  done
}

# The TLS listener settings of every node of the TLS set; $1: tls-auth-clients.
redis_tls_conf() {
  local pki=$STATE/pki
  printf '%s\n' "port 0" "tls-cert-file $pki/redis.crt" "tls-key-file $pki/redis.key" \
    "tls-ca-cert-file $pki/ca.crt" "tls-auth-clients $1" "tls-replication yes"
}

redis_tls_up() {
  local i p dir pw
  redis_tls_down
  rm -rf "$STATE/redis/tls"
  mkdir -p "$STATE/redis/tls"
  pki_cert redis && pki_cert redis-client || return 1
  pw=$(cat "$STATE/redis/password")
  fp_progress "starting the TLS-only Redis set (1 master, 1 replica, 2 sentinels)"
  for i in 0 1; do
    p=${REDIS_TLS_PORTS[$i]}
    dir=$STATE/redis/tls/redis-$i
    mkdir -p "$dir"
    require_free_port "redis-tls-$i" "$p" || return 1
    {
      echo "tls-port $p"
      redis_tls_conf optional
      redis_node_conf "$i" "$dir" "${REDIS_TLS_PORTS[0]}"
    } >"$dir/redis.conf"
    chmod 600 "$dir/redis.conf"
    start_proc "redis-tls-$i" redis-server "$dir/redis.conf"
  done
  for p in "${REDIS_TLS_PORTS[@]}"; do
    wait_until 20 "redis (TLS) on $p" redis_tls_data_cli -p "$p" ping || return 1
  done
  wait_until 30 "the TLS replica in sync" redis_tls_replica_synced || { fail_with_log redis-tls-1; return 1; }
  for i in 0 1; do
    p=${SENTINEL_TLS_PORTS[$i]}
    dir=$STATE/redis/tls/sentinel-$i
    mkdir -p "$dir"
    require_free_port "sentinel-tls-$i" "$p" || return 1
    {
      echo "tls-port $p"
      redis_tls_conf "$( ((i == 0)) && echo optional || echo yes)"
      redis_sentinel_conf "$dir" "${REDIS_TLS_PORTS[0]}" 1
    } >"$dir/sentinel.conf"
    chmod 600 "$dir/sentinel.conf"
    start_proc "sentinel-tls-$i" redis-sentinel "$dir/sentinel.conf"
  done
  wait_until 60 "TLS sentinels to see 1 replica and 1 other sentinel" redis_tls_sentinels_agree ||
    { fail_with_log sentinel-tls-0; return 1; }
  fp_progress "Redis TLS set ready at $(redis_tls_sentinel 0) (client certificate required at $(redis_tls_sentinel 1))"
}

redis_tls_down() {
  local i
  for i in 0 1; do stop_proc "sentinel-tls-$i" 5; done
  for i in 0 1; do stop_proc "redis-tls-$i" 5; done
}

# The pods' set of the real node (node.sh): it names the bridge gateway, which node.sh
# DNATs to 127.0.0.1 for pods and for the host alike.
redis_pods_up() {
  redis_pods_down
  rm -rf "$STATE/redis/node-"*
  redis_set_start node- "$NODE_GATEWAY" NODE_REDIS_PORTS NODE_SENTINEL_PORTS || return 1
}

redis_pods_down() {
  local i
  for i in 0 1 2; do stop_proc "node-sentinel-$i" 5; done
  for i in 0 1 2; do stop_proc "node-redis-$i" 5; done
}

redis_pod_sentinels() {
  local p out=""
  for p in "${NODE_SENTINEL_PORTS[@]}"; do out+="${out:+,}$NODE_GATEWAY:$p"; done
  echo "$out"
}

redis_down() {
  local i
  redis_tls_down
  for i in 0 1 2; do stop_proc "sentinel-$i" 5; done
  for i in 0 1 2; do stop_proc "redis-$i" 5; done
}
