#!/usr/bin/env python3
"""A webhook receiver for formpipe's tests: a real HTTP/1.1 server (keep-alive) that
checks and records what formpipe-task's webhook kind sends. Python 3 stdlib only.

    hook_receiver.py [--bind 127.0.0.1] [--port 0] [--secret-file F] [--tolerance 300] [--seed N]

Prints "hook receiver listening on HOST:PORT" once it listens (--port 0: a free port).

Deliveries: a POST to any path outside /_control. With --secret-file, the
Formpipe-Signature header ("t=<unix s>,v1=<hex HMAC-SHA256(key, '<t>.<body>')>") must
verify and t be at most --tolerance seconds away; otherwise the answer is 401 and
the request counts in bad_signatures. Every delivery is recorded (also the refused
ones): seq (arrival order), time (arrival, unix seconds), id (Idempotency-Key), path, headers, body, connection
(which TCP connection carried it), signature ("ok", "none" without a secret, or why
it failed) and the status answered (null when the connection was closed instead).

What to answer (first that applies; the default is 200):
  1. a script for the request's id       POST /_control/script {"id": ID, "action": A, "times": N}
  2. the next of a queue of actions      POST /_control/script {"next": [A, ...]}   (appended)
  3. a rate                              POST /_control/script {"fail_percent": P, "action": A}
An action A: {"status": 500} | {"status": 429, "retry_after": "3"} (any Retry-After text)
  | {"stall": 2.5} (wait, then answer its "status", default 200) | {"close": true}
  (read the request, then close the connection without answering); any answer may add
  "headers": {"Location": "/elsewhere"}.

Control (JSON):
  GET  /_control/requests   {"requests": [record, ...]} in arrival order
  GET  /_control/stats      {"requests", "connections" (distinct connections that carried
                             deliveries), "bad_signatures", "answered": {"200": n, ...}}
  POST /_control/reset      forgets requests, counters and scripts
"""
import argparse
import hashlib
import hmac
import json
import random
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sign(key, t, body):
    """The Formpipe-Signature value for body (bytes) at unix time t."""
    mac = hmac.new(key, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


def verify(key, header, body, tolerance, now=None):
    """'ok', or why the signature header does not verify."""
    if not header:
        return "missing"
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return "malformed"
    if abs((time.time() if now is None else now) - t) > tolerance:
        return "stale"
    want = hmac.new(key, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return "ok" if hmac.compare_digest(want, given) else "mismatch"


class State:
    def __init__(self, key=None, tolerance=300, seed=None):
        self.key, self.tolerance = key, tolerance
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.reset()

    def reset(self):
        with self.lock:
            self.requests, self.by_id, self.queue = [], {}, deque()
            self.rate, self.bad_signatures, self.answered = None, 0, {}
            self.conns = set()

    def script(self, s):
        with self.lock:
            if "next" in s:
                self.queue.extend(s["next"])
            elif "id" in s:
                self.by_id[s["id"]] = {"action": s["action"], "times": s.get("times", 1)}
            elif "fail_percent" in s:
                self.rate = (s["fail_percent"], s.get("action", {"status": 500})) if s["fail_percent"] else None
            else:
                raise ValueError("a script needs next, id or fail_percent")

    def action_for(self, rid):
        """The action for a delivery with this id (caller holds the lock)."""
        s = self.by_id.get(rid)
        if s and s["times"] > 0:
            s["times"] -= 1
            return s["action"]
        if self.queue:
            return self.queue.popleft()
        if self.rate and self.rng.random() * 100 < self.rate[0]:
            return self.rate[1]
        return {}

    def stats(self):
        with self.lock:
            return {"requests": len(self.requests), "connections": len(self.conns),
                    "bad_signatures": self.bad_signatures, "answered": dict(self.answered)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive
    disable_nagle_algorithm = True  # an answer is two writes: no 40 ms delayed-ACK stall
    state = None                    # set by serve()
    next_conn = 0
    conn_lock = threading.Lock()

    def setup(self):
        super().setup()
        with Handler.conn_lock:
            Handler.next_conn += 1
            self.conn = Handler.next_conn

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path == "/_control/requests":
            with self.state.lock:
                return self.send_json(200, {"requests": list(self.state.requests)})
        if self.path == "/_control/stats":
            return self.send_json(200, self.state.stats())
        self.send_json(404, {"error": "not found"})

    def do_POST(self):
        body = self.read_body()
        if self.path == "/_control/reset":
            self.state.reset()
            return self.send_json(200, {})
        if self.path == "/_control/script":
            try:
                self.state.script(json.loads(body))
            except (ValueError, KeyError, TypeError) as e:
                return self.send_json(400, {"error": str(e)})
            return self.send_json(200, {})
        if self.path.startswith("/_control/"):
            return self.send_json(404, {"error": "not found"})
        self.deliver(body)

    def deliver(self, body):
        st = self.state
        rid = self.headers.get("Idempotency-Key")
        sig = verify(st.key, self.headers.get("Formpipe-Signature"), body, st.tolerance) if st.key else "none"
        with st.lock:
            rec = {"seq": len(st.requests) + 1, "time": time.time(), "id": rid, "path": self.path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace"), "connection": self.conn,
                   "signature": sig, "status": None}
            st.requests.append(rec)
            st.conns.add(self.conn)
            if sig not in ("ok", "none"):
                st.bad_signatures += 1
                action = {"status": 401}
            else:
                action = st.action_for(rid)
        if action.get("stall"):
            time.sleep(float(action["stall"]))
        if action.get("close"):
            self.close_connection = True
            return
        code = int(action.get("status", 200))
        extra = dict(action.get("headers", {}))
        if "retry_after" in action:
            extra["Retry-After"] = str(action["retry_after"])
        with st.lock:
            rec["status"] = code
            st.answered[str(code)] = st.answered.get(str(code), 0) + 1
        try:
            self.send_json(code, {"status": code}, extra)
        except OSError:   # the client gave up (a stall past its timeout)
            self.close_connection = True


class Server(ThreadingHTTPServer):
    request_queue_size = 128   # a sender opening many connections at once is not refused
    daemon_threads = True


def serve(bind="127.0.0.1", port=0, key=None, tolerance=300, seed=None):
    """A started server (in a daemon thread) and its State; server.server_port is the port."""
    handler = type("BoundHandler", (Handler,), {"state": State(key, tolerance, seed)})
    server = Server((bind, port), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, handler.state


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret-file")
    ap.add_argument("--tolerance", type=int, default=300, help="seconds a signature's t may be off")
    ap.add_argument("--seed", type=int)
    args = ap.parse_args()
    key = None
    if args.secret_file:   # read as formpipe-task reads it: trailing CR/LF dropped
        key = open(args.secret_file, "rb").read().rstrip(b"\r\n")
    server, _ = serve(args.bind, args.port, key, args.tolerance, args.seed)
    print("hook receiver listening on %s:%d" % (args.bind, server.server_port), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
