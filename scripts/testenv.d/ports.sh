# Loopback ports of the test environment (all servers bind 127.0.0.1 only).
KAFKA_BROKER_PORT_BASE=29090      # node i listens on base+i (29091, 29092, 29093)
KAFKA_CONTROLLER_PORT_BASE=29190  # node i's KRaft controller on base+i
KAFKA_SSL_PORT_BASE=29290         # node i's TLS listener (certificate from pki.sh's CA) on base+i
KAFKA_POD_PORT_BASE=29390         # node i's listener for the real node's pods on base+i: it
                                  # advertises the bridge gateway, DNATed to 127.0.0.1 (node.sh)
REDIS_MASTER_NAME=formpipe
REDIS_PORTS=(29379 29380 29381)   # first starts as master, the others replicate it
SENTINEL_PORTS=(29479 29480 29481)
# the TLS-only set (port 0): a master and its replica, two sentinels (the second requires
# a client certificate), all reporting TLS ports
REDIS_TLS_PORTS=(29383 29384)
SENTINEL_TLS_PORTS=(29483 29484)
ETCD_CLIENT_PORT=29401
ETCD_PEER_PORT=29402
KUBE_APISERVER_PORT=29443
KUBE_CONTROLLER_MANAGER_PORT=29444
SHEETS_EMULATOR_PORT=29500
# scripts/stack: the local system on top of the environment
STACK_INGRESS_PORT=29880            # nginx playing the ingress controller
STACK_INGRESS_TLS_PORT=29883        # its https side (Ingresses with tls)
OPERATOR_ADMIN_PORTS=(29881 29882)  # two operator replicas (leader election)
# bench/ingest: the reference nginx (fixed 202) and the ingest under test
BENCH_NGINX_PORT=29890
BENCH_INGEST_PORT=29891
# 29909: the real Prometheus of e2e.observability (tests/e2e/test_observability.py)
# Mailpit (scripts/testenv.d/mailpit.sh): SMTP with STARTTLS + AUTH, and its HTTP API
MAILPIT_SMTP_PORT=29525
MAILPIT_HTTP_PORT=29825
# a second Mailpit speaking implicit TLS (smtps://), with its own API
MAILPIT_TLS_SMTP_PORT=29526
MAILPIT_TLS_HTTP_PORT=29826
# The real node (scripts/testenv.d/node.sh, `scripts/testenv up node`)
NODE_KUBELET_PORT=29610           # kubelet API (exec, logs) on 127.0.0.1
NODE_KUBELET_HEALTHZ_PORT=29611
NODE_SCHEDULER_PORT=29612         # kube-scheduler's secure port
NODE_PROXY_HEALTHZ_PORT=29613
NODE_PROXY_METRICS_PORT=29614
NODE_CRI_STREAM_PORT=29615        # containerd's CRI streaming server (exec, attach)
NODE_POD_SUBNET=10.229.0.0/24     # the CNI bridge fpnode0 (gateway .1), no NAT, no route out
NODE_DNS_HEALTH_PORT=29616        # CoreDNS /health; it serves DNS on the bridge's gateway, port 53
NODE_DNS_READY_PORT=29617
NODE_GATEWAY=${NODE_POD_SUBNET%.*}.1  # the host as the pods see it: testenv's servers are DNATed
                                      # from there to 127.0.0.1 (node.sh node_network_up)
# the pods' Redis Sentinel set (started with the node): it names the gateway to clients,
# where pods and the host alike reach it
NODE_REDIS_PORTS=(29385 29386 29387)
NODE_SENTINEL_PORTS=(29485 29486 29487)
