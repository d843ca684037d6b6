# Apache Kafka in KRaft mode: 1 combined broker+controller node, or 3 for fault tests
# (replication factor 3, min.insync.replicas 2). Sourced by scripts/testenv.

kafka_nodes() { cat "$STATE/kafka/nodes" 2>/dev/null || echo 0; }

kafka_bootstrap() {
  local n=${1:-$(kafka_nodes)} i out=""
  for ((i = 1; i <= n; i++)); do out+="${out:+,}127.0.0.1:$((KAFKA_BROKER_PORT_BASE + i))"; done
  echo "$out"
}

# The bootstrap list for the real node's pods (their listener advertises the gateway).
kafka_pod_bootstrap() {
  local n=${1:-$(kafka_nodes)} i out=""
  for ((i = 1; i <= n; i++)); do out+="${out:+,}$NODE_GATEWAY:$((KAFKA_POD_PORT_BASE + i))"; done
  echo "$out"
}

# The TLS listeners' bootstrap list (clients trust $STATE/pki/ca.crt).
kafka_ssl_bootstrap() {
  local n=${1:-$(kafka_nodes)} i out=""
  for ((i = 1; i <= n; i++)); do out+="${out:+,}127.0.0.1:$((KAFKA_SSL_PORT_BASE + i))"; done
  echo "$out"
}

kafka_write_config() {
  local i=$1 n=$2 dir=$STATE/kafka/node$i voters="" j
  for ((j = 1; j <= n; j++)); do
    voters+="${voters:+,}$j@127.0.0.1:$((KAFKA_CONTROLLER_PORT_BASE + j))"
  done
  local rf=$n isr=$((n > 1 ? 2 : 1))
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$((KAFKA_BROKER_PORT_BASE + i)),SSL://127.0.0.1:$((KAFKA_SSL_PORT_BASE + i)),POD://127.0.0.1:$((KAFKA_POD_PORT_BASE + i)),CONTROLLER://127.0.0.1:$((KAFKA_CONTROLLER_PORT_BASE + i))
advertised.listeners=PLAINTEXT://127.0.0.1:$((KAFKA_BROKER_PORT_BASE + i)),SSL://127.0.0.1:$((KAFKA_SSL_PORT_BASE + i)),POD://$NODE_GATEWAY:$((KAFKA_POD_PORT_BASE + i))
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,POD:PLAINTEXT,CONTROLLER:PLAINTEXT
ssl.keystore.type=PEM
ssl.keystore.location=$STATE/kafka/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$STATE/pki/ca.crt
ssl.client.auth=requested
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
PROPS
}

# The java command line shared by the storage tool and the servers.
kafka_java_cmd() {
  KAFKA_JAVA=(java -Xms128m "-Xmx$1" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$STATE/kafka/log4j2.properties"
    -cp "$FP_CACHE/kafka-$KAFKA_VERSION/libs/*")
}

# kafka_start_node I : starts an already formatted node
kafka_start_node() {
  local i=$1
  require_free_port "kafka-$i" $((KAFKA_BROKER_PORT_BASE + i)) || return 1
  require_free_port "kafka-$i" $((KAFKA_SSL_PORT_BASE + i)) || return 1
  require_free_port "kafka-$i" $((KAFKA_POD_PORT_BASE + i)) || return 1
  kafka_java_cmd 768m
  # the log is appended to across restarts: readiness counts only what this start writes
  wc -c <"$STATE/logs/kafka-$i.log" >"$STATE/kafka/log-offset-$i" 2>/dev/null || echo 0 >"$STATE/kafka/log-offset-$i"
  start_proc "kafka-$i" "${KAFKA_JAVA[@]}" kafka.Kafka "$STATE/kafka/node$i/server.properties"
}

kafka_node_ready() {
  local off; off=$(cat "$STATE/kafka/log-offset-$1" 2>/dev/null || echo 0)
  tail -c +$((off + 1)) "$STATE/logs/kafka-$1.log" 2>/dev/null | grep -q "Kafka Server started"
}

kafka_wait_node() {
  local i=$1
  wait_until 120 "kafka node $i" kafka_node_ready "$i" || { fail_with_log "kafka-$i"; return 1; }
}

kafka_up() {
  local n=$1 i running=1
  if [ "$(kafka_nodes)" = "$n" ]; then
    for ((i = 1; i <= n; i++)); do proc_pid "kafka-$i" >/dev/null || running=0; done
    if ((running)); then return 0; fi
  fi
  kafka_down
  rm -rf "$STATE/kafka"
  mkdir -p "$STATE/kafka"
  cat >"$STATE/kafka/log4j2.properties" <<'L4J'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
L4J
  local cluster_id
  # A random 16-byte id, base64url as Kafka writes it. One that begins with '-' (1 in 64)
  # is taken for an option by the storage tool ("--cluster-id: expected one argument"):
  # draw again.
  cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  # The TLS listeners' key and certificate chain, one PEM file as Kafka reads it.
  pki_cert kafka || return 1
  (umask 077; cat "$STATE/pki/kafka.key" "$STATE/pki/kafka.crt" >"$STATE/kafka/keystore.pem")
  fp_progress "starting Kafka $KAFKA_VERSION ($n node(s), KRaft)"
  for ((i = 1; i <= n; i++)); do
    kafka_write_config "$i" "$n"
    kafka_java_cmd 256m
    "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" \
      -c "$STATE/kafka/node$i/server.properties" >"$STATE/logs/kafka-format-$i.log" 2>&1 ||
      { fail_with_log "kafka-format-$i"; return 1; }
  done
  echo "$n" >"$STATE/kafka/nodes"
  for ((i = 1; i <= n; i++)); do kafka_start_node "$i" || return 1; done
  for ((i = 1; i <= n; i++)); do kafka_wait_node "$i" || return 1; done
  fp_progress "Kafka ready at $(kafka_bootstrap "$n")"
}

kafka_down() {
  local i
  for ((i = 1; i <= 3; i++)); do stop_proc "kafka-$i" 15; done
}
