# Redis with Sentinel: a master, two replicas and three sentinels on loopback, with
# fresh config files every start (sentinel rewrites its own). Sourced by scripts/testenv.

# redis-cli for the data nodes: the password goes through REDISCLI_AUTH, never argv.
redis_cli() { REDISCLI_AUTH=$(cat "$STATE/redis/password") redis-cli -h 127.0.0.1 "$@"; }

redis_sentinels() {
  local p out=""
  for p in "${SENTINEL_PORTS[@]}"; do out+="${out:+,}127.0.0.1:$p"; done
  echo "$out"
}

# Every sentinel sees the master with 2 replicas and 2 other sentinels.
redis_sentinels_agree() {
  local p kv
  for p in "${SENTINEL_PORTS[@]}"; do
    kv=$(redis-cli -h 127.0.0.1 -p "$p" sentinel master "$REDIS_MASTER_NAME" 2>/dev/null | paste -d' ' - -)
    grep -qx 'num-slaves 2' <<<"$kv" && grep -qx 'num-other-sentinels 2' <<<"$kv" || return 1
  done
}

redis_running() {
  local i
  for i in 0 1 2; do
    proc_pid "redis-$i" >/dev/null && proc_pid "sentinel-$i" >/dev/null || return 1
  done
}

redis_up() {
  local i p dir
  if redis_running; then return 0; fi
  redis_down
  rm -rf "$STATE/redis"
  mkdir -p "$STATE/redis"
  # Data nodes require a password, as in production; clients read it from this file.
  (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$STATE/redis/password")
  local pw; pw=$(cat "$STATE/redis/password")
  fp_progress "starting Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') with Sentinel (1 master, 2 replicas, 3 sentinels)"
  for i in 0 1 2; do
    p=${REDIS_PORTS[$i]}
    dir=$STATE/redis/redis-$i
    mkdir -p "$dir"
    require_free_port "redis-$i" "$p" || return 1
    {
      echo "bind 127.0.0.1"
      echo "port $p"
      echo "dir $dir"
      echo "save \"\""
      echo "appendonly no"
      echo "protected-mode no"
      echo "daemonize no"
      echo "replica-announce-ip 127.0.0.1"
      echo "requirepass $pw"
      echo "masterauth $pw"
      ((i > 0)) && echo "replicaof 127.0.0.1 ${REDIS_PORTS[0]}"
    } >"$dir/redis.conf"
    chmod 600 "$dir/redis.conf"
    start_proc "redis-$i" redis-server "$dir/redis.conf"
  done
  for p in "${REDIS_PORTS[@]}"; do
    wait_until 20 "redis on $p" redis_cli -p "$p" ping || return 1
  done
  wait_until 30 "replicas in sync" bash -c \
    "REDISCLI_AUTH='$pw' redis-cli -h 127.0.0.1 -p ${REDIS_PORTS[0]} info replication | grep -q '^connected_slaves:2'"
  for i in 0 1 2; do
    p=${SENTINEL_PORTS[$i]}
    dir=$STATE/redis/sentinel-$i
    mkdir -p "$dir"
    require_free_port "sentinel-$i" "$p" || return 1
    cat >"$dir/sentinel.conf" <<CONF
bind 127.0.0.1
port $p
dir $dir
daemonize no
protected-mode no
sentinel announce-ip 127.0.0.1
sentinel monitor $REDIS_MASTER_NAME 127.0.0.1 ${REDIS_PORTS[0]} 2
sentinel auth-pass $REDIS_MASTER_NAME $pw
sentinel down-after-milliseconds $REDIS_MASTER_NAME 2000
sentinel failover-timeout $REDIS_MASTER_NAME 10000
sentinel parallel-syncs $REDIS_MASTER_NAME 1
CONF
    chmod 600 "$dir/sentinel.conf"
    start_proc "sentinel-$i" redis-sentinel "$dir/sentinel.conf"
  done
  wait_until 60 "sentinels to see 2 replicas and 2 other sentinels" redis_sentinels_agree ||
    { fail_with_log sentinel-0; return 1; }
  fp_progress "Redis Sentinel ready at $(redis_sentinels) (master name $REDIS_MASTER_NAME)"
}

# The master all three sentinels name, "host port"; fails when one does not answer,
# they disagree, or one still has a failover in progress (during a failover a sentinel
# already names the promoted replica, and an old master that comes back before the
# failover ends can leave that sentinel on the old master for good).
redis_agreed_master() {
  local p m first=""
  for p in "${SENTINEL_PORTS[@]}"; do
    redis-cli -h 127.0.0.1 -p "$p" sentinel master "$REDIS_MASTER_NAME" 2>/dev/null | paste -d' ' - - |
      grep -qx 'flags master' || return 1
    m=$(redis-cli -h 127.0.0.1 -p "$p" SENTINEL get-master-addr-by-name "$REDIS_MASTER_NAME" 2>/dev/null | tr '\n' ' ')
    [ -n "$m" ] || return 1
    [ -n "$first" ] || first=$m
    [ "$m" = "$first" ] || return 1
  done
  echo "$first"
}

# redis_live_master_besides I: the sentinels agree on a master that is not node I and
# that answers ROLE as master.
redis_live_master_besides() {
  local m port
  m=$(redis_agreed_master) || return 1
  port=${m#* }
  port=${port% }
  [ "$port" != "${REDIS_PORTS[$1]}" ] || return 1
  redis_cli -p "$port" role 2>/dev/null | head -1 | grep -qx master
}

# redis_synced I: node I replicates its master with the link up.
redis_synced() {
  redis_cli -p "${REDIS_PORTS[$1]}" info replication 2>/dev/null | grep -q '^master_link_status:up'
}

# redis_restart I: starts a stopped data node the way a Sentinel-aware deployment must.
# The nodes keep no data on disk, so a node must never come back as master: a master
# restarted empty before the sentinels fail over would wipe the replicas. So wait until
# all sentinels name another master and that master is live, start this node as its
# replica, and wait until the node has synced (so the next failover has it as a
# candidate).
redis_restart() {
  local i=$1 conf=$STATE/redis/redis-$1/redis.conf master
  wait_until 60 "the sentinels to agree on a live master other than redis-$i" redis_live_master_besides "$i" ||
    { redis_sentinel_views >&2; return 1; }
  master=$(redis_agreed_master)
  sed -i '/^replicaof /d' "$conf"
  echo "replicaof $master" >>"$conf"
  restart_proc "redis-$i" || return 1
  wait_until 60 "redis-$i to sync with its master" redis_synced "$i"
}

# What each sentinel names as master (for a failure message).
redis_sentinel_views() {
  local p
  for p in "${SENTINEL_PORTS[@]}"; do
    echo "sentinel :$p names master $(redis-cli -h 127.0.0.1 -p "$p" SENTINEL get-master-addr-by-name "$REDIS_MASTER_NAME" 2>/dev/null | tr '\n' ' ')"
  done
}

redis_down() {
  local i
  for i in 0 1 2; do stop_proc "sentinel-$i" 5; done
  for i in 0 1 2; do stop_proc "redis-$i" 5; done
}
