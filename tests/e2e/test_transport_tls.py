#!/usr/bin/env python3
"""A pipeline whose Kafka and Redis speak only TLS (issue #16), wired by the operator.

The FormPipeline names the brokers' TLS listeners (spec.kafka.bootstrapServers, a
configSecret with security.protocol=ssl and spec.kafka.caSecret) and the TLS-only Redis
set (spec.redis.sentinels and spec.redis.tls.caSecret), both with certificates from the
test environment's private CA. The operator mounts the CA into the ingest, consumer and
flush pods and passes it (ssl.ca.location, --redis-tls-ca-file); submissions posted
through the ingress must reach the sheet exactly once, so every hop (ingest -> Kafka,
Kafka -> consumer -> Redis, Redis -> flush) went over TLS."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (check, finish, flush_until, kubectl, pipeline_yaml, post_all, ready, sanitizer_reports, stack, status,
                 submission, until, verify_sheet)

NS = "e2e-transport-%d" % os.getpid()   # its own topic and buffer keys each run
NAME, SHEET, N = "sealed", "e2e-transport-sheet-%d" % os.getpid(), 60
COLUMNS = ["name", "roll", "university", "cgpa", "gender", "age", "email", "mobile"]


def env(name):
    v = os.environ.get(name)
    if not v:
        raise SystemExit("e2e.transport_tls: %s is not set: run under scripts/testenv exec" % name)
    return v


def main():
    ca, kafka_tls, redis_tls = env("FORMPIPE_TESTENV_CA_FILE"), env("FORMPIPE_KAFKA_SSL_BOOTSTRAP"), \
        env("FORMPIPE_REDIS_TLS_SENTINELS")
    stack("namespace", NS)
    stack("sheet", SHEET)
    kubectl("create", "secret", "generic", "testenv-ca", "-n", NS, "--from-file=ca.crt=" + ca)
    kubectl("create", "secret", "generic", "kafka-tls", "-n", NS, "--from-file=client.properties=/dev/stdin",
            input="security.protocol=ssl\n")
    spec = pipeline_yaml(NS, NAME, SHEET, 1, spec=(
        "  redis: {sentinels: \"%s\", masterName: formpipe, minReplicasAck: 1, passwordSecret: {name: redis-auth},\n"
        "          tls: {caSecret: {name: testenv-ca}}}\n" % redis_tls)).replace(
        "  kafka: {partitions: 1}",
        "  kafka: {partitions: 1, bootstrapServers: \"%s\", configSecret: {name: kafka-tls}, caSecret: {name: testenv-ca}}"
        % kafka_tls)
    kubectl("apply", "-f", "-", input=spec)
    until("the pipeline is Ready", lambda: ready(NS, NAME), 180)

    args = {c: kubectl("get", "deploy" if c != "flush" else "cronjob", "%s-%s" % (NAME, c), "-n", NS, "-o",
                       "jsonpath={.spec%s.template.spec.containers[0].args}" % (".jobTemplate.spec" if c == "flush" else ""))
            for c in ("ingest", "consumer", "flush")}
    for c in ("ingest", "consumer"):
        check("the %s gets the brokers' CA as ssl.ca.location" % c,
              "--kafka-property=ssl.ca.location=/etc/formpipe/kafka-ca/ca.crt" in args[c], args[c])
    for c in ("consumer", "flush"):
        check("the %s gets Redis's CA (--redis-tls-ca-file)" % c,
              "--redis-tls-ca-file=/etc/formpipe/redis-ca/ca.crt" in args[c], args[c])

    ids = post_all("/forms/" + NAME, [submission(i, i % 7, i) for i in range(N)])
    check("every submission answered 202 (Kafka took it over TLS)", all(ids), str(ids[:3]))
    until("the consumers drained the topic into the TLS Redis", lambda: status(NS, NAME, "{.status.consumer.lag}") == "0",
          120)
    flush_until(NS, NAME, SHEET, N)
    verify_sheet(SHEET, [i for i in ids if i], COLUMNS, "TLS-only pipeline")
    bad = sanitizer_reports(NS)
    check("no sanitizer reports in the pods' logs", not bad, " ".join(bad))
    kubectl("delete", "fp", NAME, "-n", NS, "--wait=false")
    kubectl("delete", "namespace", NS, "--wait=false")
    finish()


if __name__ == "__main__":
    main()
