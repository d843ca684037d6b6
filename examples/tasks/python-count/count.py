#!/usr/bin/env python3
"""A formpipe container task: counts submissions per value of one form field (COUNT_FIELD,
e.g. gender), one JSON line per submission on stdout. Follows docs/events.md: FORMPIPE_*
environment, offsets committed only once done, dead letters, clean stop on SIGTERM."""
import datetime, json, os, signal, sys, time
from confluent_kafka import Consumer, KafkaException, Producer

EVENT_TYPE = "io.formpipe.submission.v1"


class Reject(Exception):
    """Can never be handled: dead-letter it with reason code args[0], message args[1]."""

class Transient(Exception):
    """Worth another attempt (this task has none; one that calls a service would)."""


def kafka_config():
    conf = {"bootstrap.servers": os.environ["FORMPIPE_KAFKA_BOOTSTRAP"]}
    path = os.environ.get("FORMPIPE_KAFKA_CONFIG")
    if path:   # key=value lines; '#' and '!' start comments (values may be secrets: never log them)
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            if line and line[0] not in "#!":
                key, _, value = line.partition("=")
                conf[key.strip()] = value.strip()
    return conf


def parse(value):
    """The CloudEvent in a message value, or Reject(not_json / not_cloudevent)."""
    try:
        ev = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, AttributeError) as e:
        raise Reject("not_json", "not JSON: %s" % e)
    if not isinstance(ev, dict):
        raise Reject("not_json", "not a JSON object")
    ok = (ev.get("specversion") == "1.0" and ev.get("type") == EVENT_TYPE
          and all(isinstance(ev.get(k), str) and ev[k] for k in ("id", "source", "time"))
          and isinstance(ev.get("data"), dict))
    if not ok:
        raise Reject("not_cloudevent", "not a %s CloudEvent" % EVENT_TYPE)
    return ev


def main():
    field, max_attempts = os.environ["COUNT_FIELD"], int(os.environ.get("FORMPIPE_MAX_ATTEMPTS", "10"))
    topic, dlq = os.environ["FORMPIPE_TOPIC"], os.environ["FORMPIPE_DLQ_TOPIC"]
    conf = kafka_config()
    consumer = Consumer(dict(conf, **{"group.id": os.environ["FORMPIPE_GROUP"], "enable.auto.commit": False,
                                      "auto.offset.reset": "earliest"}))
    producer = Producer(dict(conf, **{"enable.idempotence": True, "acks": "all"}))
    counts, seen, stopping = {}, {}, []   # seen: ids handled, oldest first
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))

    def handle(msg):
        ev = parse(msg.value())
        if ev["id"] in seen:   # at least once: the same id again is no new submission
            return
        value = ev["data"].get(field)   # any field may be absent (older or newer form generations)
        key = json.dumps(value)
        counts[key] = counts.get(key, 0) + 1
        seen[ev["id"]] = True
        if len(seen) > 100000:   # bounded: a real task keeps the ids in its own store
            del seen[next(iter(seen))]
        print(json.dumps({"id": ev["id"], "field": field, "value": value, "count": counts[key],
                          "formgeneration": ev.get("formgeneration", 0)}), flush=True)

    def dead_letter(msg, reason, message):
        try:
            generation = int(json.loads(msg.value()).get("formgeneration", 0))
        except Exception:
            generation = 0
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")[:23] + "Z"
        headers = [("formpipe-dlq-reason", reason), ("formpipe-dlq-message", message.encode()[:255].decode(errors="ignore")),
                   ("formpipe-dlq-time", now), ("formpipe-dlq-form-generation", str(generation)),
                   ("formpipe-source-topic", msg.topic()), ("formpipe-source-partition", str(msg.partition())),
                   ("formpipe-source-offset", str(msg.offset()))]
        failed = []
        producer.produce(dlq, value=msg.value(), key=msg.key(), headers=headers,
                         on_delivery=lambda err, _m: err and failed.append(err))
        if producer.flush(30) or failed:   # not acknowledged: never commit past it
            raise KafkaException(failed[0] if failed else "dead letter not acknowledged in 30 s")
        log("event dead-lettered", reason=reason, message=message, partition=msg.partition(), offset=msg.offset())

    consumer.subscribe([topic])
    log("consuming", topic=topic, group=os.environ["FORMPIPE_GROUP"], field=field)
    while not stopping:
        msgs = consumer.consume(100, 1.0)
        for msg in msgs:
            if msg.error():
                raise KafkaException(msg.error())
            for attempt in range(1, max_attempts + 1):
                try:
                    handle(msg)
                    break
                except Reject as e:
                    dead_letter(msg, *e.args)
                    break
                except Transient as e:
                    if attempt == max_attempts:
                        dead_letter(msg, "attempts_exhausted", "%d attempts: %s" % (attempt, e))
                    else:
                        time.sleep(min(2 ** attempt, 60) * (0.5 + 0.5 * os.urandom(1)[0] / 255))
        if msgs:   # every message consume() returned is done: commit their positions
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as e:   # e.g. a rebalance: the new owner reads them again
                log("commit failed", error=str(e))
    consumer.close()   # leaves the group; everything done was committed above
    log("stopped", counts=counts)


def log(msg, **kv):   # JSON lines on stderr, like formpipe's binaries
    print(json.dumps(dict(msg=msg, **kv)), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
