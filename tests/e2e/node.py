#!/usr/bin/env python3
"""node.py - plays the node of the local control plane (test infrastructure, not product).

No container runtime exists here, so this process stands in for a kubelet, a scheduler
and an ingress controller:
  * registers Node NODE with the real apiserver and keeps it Ready (status + Lease);
  * binds every unscheduled Pod to NODE (there is no scheduler);
  * runs each Pod bound to NODE as a local process of our binaries (image
    ".../formpipe-ingest:tag" -> BIN_DIR/formpipe-ingest; a team's task image
    ".../python-count:tag" -> examples/tasks/python-count): args and env (values,
    Secret/ConfigMap/field refs), ConfigMap/Secret/emptyDir volumes written to a
    directory whose path replaces the mount path in args (ConfigMap/Secret ones with the
    kubelet's ..data symlink layout, re-read every ~2 s and swapped atomically when their
    data changed, as a kubelet's sync does), container ports mapped to free local ports
    on 127.0.0.1;
  * reports Pod status (Running, Ready from the readiness probe, Succeeded/Failed with
    the exit code), restarts crashed containers with backoff like a kubelet, and stops
    processes when Pods are deleted;
  * writes an nginx configuration from the Ingress objects and the ready endpoints of
    their Services (its own pods' ports; other nodes' pods, the real node's containers,
    at their pod IPs from the EndpointSlices) and reloads nginx, which listens on 127.0.0.1:INGRESS_PORT (and, for
    Ingresses with tls, https on 127.0.0.1:INGRESS_TLS_PORT with their Secrets);
  * writes STATE/scrape-targets.json, a Prometheus file_sd list of the pods the chart's
    PodMonitor selects, with the labels its relabelings give (namespace, pod, pipeline,
    task, component), so a real Prometheus can scrape the stack (tests/e2e).

Usage: node.py --bin-dir DIR --state DIR --ingress-port PORT [--ingress-tls-port PORT] [--node NAME]
Needs FORMPIPE_TEST_KUBE_SERVER, FORMPIPE_TEST_KUBE_CA_FILE, FORMPIPE_TEST_KUBE_TOKEN_FILE
(scripts/testenv env). Stops on SIGTERM: every pod process gets SIGTERM, nginx stops.
"""
import argparse, base64, datetime, http.client, json, os, re, shutil, signal, socket
import ssl, subprocess, sys, threading, time, urllib.parse

STOP = threading.Event()
# images named like a directory here (".../python-count:1") run that example task
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "examples", "tasks")


def log(msg, **kw):
    print(json.dumps({"time": now(), "msg": msg, **kw}), file=sys.stderr, flush=True)


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Api:
    """One keep-alive HTTPS connection to the apiserver (one per thread)."""

    def __init__(self):
        u = urllib.parse.urlparse(os.environ["FORMPIPE_TEST_KUBE_SERVER"])
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=os.environ["FORMPIPE_TEST_KUBE_CA_FILE"])
        self.token = open(os.environ["FORMPIPE_TEST_KUBE_TOKEN_FILE"]).read().strip()
        self.conn = None

    def _connect(self, timeout):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def call(self, method, path, body=None, ctype="application/json"):
        headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = ctype
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = self._connect(30)
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.5)

    def watch(self, path, on_event):
        """list + watch path (a collection with an optional query) until STOP."""
        rv = None
        while not STOP.is_set():
            try:
                if rv is None:
                    st, lst = self.call("GET", path)
                    if st != 200:
                        raise OSError("list %s: %s" % (path, st))
                    for item in lst["items"]:
                        on_event("ADDED", item)
                    rv = lst["metadata"]["resourceVersion"]
                sep = "&" if "?" in path else "?"
                conn = self._connect(90)
                conn.request("GET", path + sep + "watch=1&allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion=" + rv,
                             headers={"Authorization": "Bearer " + self.token})
                r = conn.getresponse()
                if r.status == 410:
                    rv = None
                    continue
                for line in r:
                    if STOP.is_set():
                        break
                    ev = json.loads(line)
                    if ev["type"] == "ERROR":
                        rv = None
                        break
                    rv = ev["object"]["metadata"].get("resourceVersion", rv)
                    if ev["type"] != "BOOKMARK":
                        on_event(ev["type"], ev["object"])
                conn.close()
            except Exception as e:  # the apiserver restarts in chaos runs: retry
                log("watch error", path=path, error=str(e))
                time.sleep(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def atomic_write(d, payload):
    """Writes payload (relative path -> bytes) into volume directory d the way the kubelet's
    AtomicWriter does, so a reader never sees a half-written set: the files go into a new
    hidden directory ..<timestamp>, the ..data link is swapped to it with one rename, each
    top-level name gets a link <name> -> ..data/<name> (once; it follows ..data from then
    on), links of names no longer in the payload are removed, and so is the old version."""
    old = os.readlink(os.path.join(d, "..data")) if os.path.islink(os.path.join(d, "..data")) else None
    version = "..%s.%d" % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y_%m_%d_%H_%M_%S.%f"), os.getpid())
    for path, content in payload.items():
        f = os.path.join(d, version, path)
        os.makedirs(os.path.dirname(f), exist_ok=True)
        with open(f, "wb") as fh:
            fh.write(content)
    os.makedirs(os.path.join(d, version), exist_ok=True)
    tmp = os.path.join(d, "..data_tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(version, tmp)
    os.rename(tmp, os.path.join(d, "..data"))
    top = {p.split("/", 1)[0] for p in payload}
    for name in top:
        link = os.path.join(d, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..data", name), link)
    for name in os.listdir(d):
        link = os.path.join(d, name)
        if not name.startswith(".") and name not in top and os.path.islink(link):
            os.unlink(link)
    if old and old != version:
        shutil.rmtree(os.path.join(d, old), ignore_errors=True)


class Pod:
    """One pod bound to this node: its process, restarts, readiness and status."""

    def __init__(self, node, obj):
        self.node, self.obj = node, obj
        md = obj["metadata"]
        self.ns, self.name, self.uid = md["namespace"], md["name"], md["uid"]
        self.dir = os.path.join(node.state, "pods", "%s_%s_%s" % (self.ns, self.name, self.uid[:8]))
        self.log = os.path.join(node.state, "logs", "%s_%s.log" % (self.ns, self.name))   # kept after deletion
        self.proc, self.ready, self.restarts, self.ports = None, False, 0, {}
        self.stopping = threading.Event()
        self.api = Api()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def spec(self):
        return self.obj["spec"]

    def container(self):
        return self.spec()["containers"][0]

    # ---- preparing ------------------------------------------------------------
    def key_data(self, kind, name, optional=False, api=None):
        st, o = (api or self.api).call("GET", "/api/v1/namespaces/%s/%ss/%s" % (self.ns, kind, name))
        if st != 200:
            if optional:
                return {}
            raise RuntimeError("%s %s/%s not found" % (kind, self.ns, name))
        if kind == "secret":
            return {k: base64.b64decode(v) for k, v in (o.get("data") or {}).items()}
        return {k: v.encode() for k, v in (o.get("data") or {}).items()}

    def volume_payload(self, v, api=None):
        """The files (path -> bytes) of a ConfigMap, Secret or projected volume v (its
        configMap and secret sources) as they are now."""
        if "projected" in v:
            payload = {}
            for source in v["projected"].get("sources", []):
                payload.update(self.volume_payload(source, api))
            return payload
        src = v.get("configMap") or v.get("secret")
        kind = "configmap" if "configMap" in v else "secret"
        data = self.key_data(kind, src.get("name") or src.get("secretName"), src.get("optional", False), api)
        items = src.get("items") or [{"key": k, "path": k} for k in data]
        return {it["path"]: data[it["key"]] for it in items if it["key"] in data or not src.get("optional")}

    def write_volumes(self):
        paths = {}
        self.synced = []   # (volume, its directory, the payload last written)
        for v in self.spec().get("volumes", []):
            d = os.path.join(self.dir, "vol", v["name"])
            os.makedirs(d, exist_ok=True)
            if (v.get("configMap") or v.get("secret") or v.get("projected")) is not None:
                payload = self.volume_payload(v)
                atomic_write(d, payload)
                self.synced.append((v, d, payload))
            paths[v["name"]] = d
        mounts = {}
        for m in self.container().get("volumeMounts", []):
            mounts[m["mountPath"]] = paths[m["name"]]
        # the kubelet gives each container a writable termination-message file
        mounts[self.container().get("terminationMessagePath", "/dev/termination-log")] = self.termination_log()
        return mounts

    def sync_volumes(self):
        """Like the kubelet's periodic sync: every ~2 s each ConfigMap/Secret volume is read
        again and, when its data changed, rewritten atomically (atomic_write). A source
        that cannot be read keeps the files it had. Its own connection (one per thread)."""
        api, failing = Api(), {}
        while not self.stopping.wait(2.0):
            for i, (v, d, last) in enumerate(self.synced):
                try:
                    payload = self.volume_payload(v, api)
                    failing.pop(d, None)
                except Exception as e:
                    if failing.get(d) != str(e):   # once per error, not every sync
                        log("volume not refreshed", pod="%s/%s" % (self.ns, self.name), volume=v["name"], error=str(e))
                    failing[d] = str(e)
                    continue
                if payload != last:
                    atomic_write(d, payload)
                    self.synced[i] = (v, d, payload)
                    log("volume refreshed", pod="%s/%s" % (self.ns, self.name), volume=v["name"],
                        files=len(payload))

    def termination_log(self):
        return os.path.join(self.dir, "termination-log")

    def termination_message(self, exit_code):
        """What the kubelet reports: the file (at most 4096 bytes), or with
        FallbackToLogsOnError and an empty file after a failure, the log's tail."""
        try:
            with open(self.termination_log(), "rb") as f:
                msg = f.read(4096)
        except OSError:
            msg = b""
        if not msg and exit_code != 0 and self.container().get("terminationMessagePolicy") == "FallbackToLogsOnError":
            with open(self.log, "rb") as f:
                msg = b"\n".join(f.read()[-2048:].splitlines()[-80:])
        return msg.decode("utf-8", "replace")

    def env(self):
        env = {"PATH": "/usr/bin:/bin"}
        for e in self.container().get("env", []):
            if "value" in e:
                env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), ""), e["value"])
                continue
            vf = e.get("valueFrom", {})
            if "secretKeyRef" in vf:
                r = vf["secretKeyRef"]
                env[e["name"]] = self.key_data("secret", r["name"])[r["key"]].decode()
            elif "configMapKeyRef" in vf:
                r = vf["configMapKeyRef"]
                env[e["name"]] = self.key_data("configmap", r["name"])[r["key"]].decode()
            elif "fieldRef" in vf:
                env[e["name"]] = {"metadata.name": self.name, "metadata.namespace": self.ns,
                                  "status.podIP": "127.0.0.1"}.get(vf["fieldRef"]["fieldPath"], "")
        return env

    def command(self, mounts):
        c = self.container()
        image = c["image"].rsplit("/", 1)[-1].split(":")[0].split("@")[0]
        binary = os.path.join(self.node.bin_dir, image)
        example = os.path.join(EXAMPLES, image)
        if os.path.isdir(example):   # a team's own task image: the example's program
            binary = os.path.join(example, sorted(f for f in os.listdir(example) if f.endswith(".py"))[0])
            return ["/usr/bin/python3", binary] + list(c.get("args", []))
        if not os.access(binary, os.X_OK):
            raise RuntimeError("no binary for image %s" % c["image"])
        for p in c.get("ports", []):
            self.ports[p.get("name") or str(p["containerPort"])] = (p["containerPort"], free_port())
        by_number = {str(cp): lp for cp, lp in self.ports.values()}
        args = []
        for a in c.get("args", []):
            for mount_path, local in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
                a = a.replace(mount_path, local)
            m = re.match(r"^(--(?:admin-)?port)=(\d+)$", a)
            if m and m.group(2) in by_number:
                a = "%s=%d" % (m.group(1), by_number[m.group(2)])
            args.append(a)
        # servers listen on 127.0.0.1 only
        if image == "formpipe-ingest":
            args.append("--bind=127.0.0.1")
        if image in ("formpipe-consumer", "formpipe-task", "formpipe-ingest"):
            args.append("--admin-bind=127.0.0.1")
        return [binary] + args

    def probe_port(self, probe):
        port = str(probe["httpGet"]["port"])
        for name, (cp, lp) in self.ports.items():
            if port in (name, str(cp)):
                return lp
        return None

    # ---- running --------------------------------------------------------------
    def status(self, phase, ready, state, exit_code=None, message=None):
        c = self.container()
        cond = lambda t, s: {"type": t, "status": "True" if s else "False", "lastTransitionTime": now()}
        cs = {"name": c["name"], "image": c["image"], "imageID": c["image"], "ready": ready,
              "restartCount": self.restarts, "started": state == "running",
              "state": {state: {"startedAt": now()} if state == "running" else
                        {"exitCode": exit_code or 0, "reason": "Completed" if exit_code == 0 else "Error",
                         "finishedAt": now()} if state == "terminated" else {"reason": "CrashLoopBackOff"}}}
        if state == "terminated" and message:
            cs["state"]["terminated"]["message"] = message
        body = {"status": {"phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                           "podIPs": [{"ip": "127.0.0.1"}], "startTime": now(),
                           "conditions": [cond("PodScheduled", True), cond("Initialized", True),
                                          cond("ContainersReady", ready), cond("Ready", ready)],
                           "containerStatuses": [cs]}}
        try:
            self.api.call("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (self.ns, self.name), body,
                          "application/merge-patch+json")
        except Exception as e:
            log("status update failed", pod=self.name, error=str(e))

    def run(self):
        try:
            os.makedirs(self.dir, exist_ok=True)
            mounts = self.write_volumes()
            cmd, env = self.command(mounts), self.env()
        except Exception as e:
            log("pod cannot start", pod="%s/%s" % (self.ns, self.name), error=str(e))
            self.status("Pending", False, "waiting")
            return
        if self.synced:
            threading.Thread(target=self.sync_volumes, daemon=True).start()
        policy = self.spec().get("restartPolicy", "Always")
        probe = self.container().get("readinessProbe")
        backoff = 1.0
        while not self.stopping.is_set():
            logf = open(self.log, "ab")
            self.proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=self.dir,
                                         start_new_session=True)
            logf.close()
            log("started", pod="%s/%s" % (self.ns, self.name), pid=self.proc.pid, cmd=" ".join(cmd))
            self.node.changed.set()
            self.ready = probe is None
            self.status("Running", self.ready, "running")
            started = time.time()
            while self.proc.poll() is None and not self.stopping.is_set():
                if probe:
                    ok = self.check(probe)
                    if ok != self.ready:
                        self.ready = ok
                        self.status("Running", ok, "running")
                        self.node.changed.set()
                time.sleep(0.5)
            if self.stopping.is_set():
                break
            code = self.proc.returncode
            self.ready = False
            self.node.changed.set()
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                self.status("Succeeded" if code == 0 else "Failed", False, "terminated", code,
                            self.termination_message(code))
                return
            self.restarts += 1
            backoff = 1.0 if time.time() - started > 10 else min(backoff * 2, 10.0)
            log("container exited, restarting", pod="%s/%s" % (self.ns, self.name), code=code, backoff=backoff)
            self.status("Running", False, "waiting")
            self.stopping.wait(backoff)

    def check(self, probe):
        port = self.probe_port(probe)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", probe["httpGet"].get("path", "/"))
            ok = c.getresponse().status < 400
            c.close()
            return ok
        except OSError:
            return False

    def stop(self, grace):
        self.stopping.set()
        p = self.proc
        if p and p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.ready = False
        self.node.changed.set()


class Node:
    def __init__(self, args):
        self.name, self.bin_dir, self.state = args.node, args.bin_dir, args.state
        self.ingress_port = args.ingress_port
        self.ingress_tls_port = args.ingress_tls_port
        self.pods, self.lock, self.changed = {}, threading.Lock(), threading.Event()
        self.api = Api()
        os.makedirs(os.path.join(self.state, "pods"), exist_ok=True)
        os.makedirs(os.path.join(self.state, "logs"), exist_ok=True)

    # ---- node object ------------------------------------------------------------
    def node_status(self):
        return {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "formpipe test node", "lastHeartbeatTime": now(),
                                "lastTransitionTime": now()}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                              {"type": "Hostname", "address": self.name}],
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
                "nodeInfo": {"kubeletVersion": "formpipe-node", "operatingSystem": "linux",
                             "architecture": "amd64", "containerRuntimeVersion": "local-process://1"}}

    def register(self):
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": {"kubernetes.io/hostname": self.name,
                                                           "kubernetes.io/os": "linux"}}}
        st, _ = self.api.call("POST", "/api/v1/nodes", body)
        if st not in (201, 409):
            raise SystemExit("node.py: cannot register node: HTTP %s" % st)

    def heartbeat(self):
        api = Api()
        lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + self.name
        while not STOP.is_set():
            try:
                api.call("PATCH", "/api/v1/nodes/%s/status" % self.name, {"status": self.node_status()},
                         "application/merge-patch+json")
                t = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                st, _ = api.call("PATCH", lease, {"spec": {"renewTime": t}}, "application/merge-patch+json")
                if st == 404:
                    api.call("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                             {"metadata": {"name": self.name}, "spec": {"holderIdentity": self.name,
                                                                        "leaseDurationSeconds": 40, "renewTime": t}})
            except Exception as e:
                log("heartbeat failed", error=str(e))
            STOP.wait(10)

    # ---- scheduler --------------------------------------------------------------
    def schedule(self):
        api = Api()

        def on_pod(kind, pod):
            md = pod["metadata"]
            if kind == "DELETED" or md.get("deletionTimestamp") or pod["spec"].get("nodeName"):
                return
            if (pod["spec"].get("nodeSelector") or {}).get("formpipe.io/real-node") == "true":
                return   # for the real node (scripts/testenv up node): its kube-scheduler binds it
            body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": md["name"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.name}}
            api.call("POST", "/api/v1/namespaces/%s/pods/%s/binding" % (md["namespace"], md["name"]), body)

        Api().watch("/api/v1/pods?fieldSelector=spec.nodeName%3D", on_pod)

    # ---- kubelet ----------------------------------------------------------------
    def kubelet(self):
        api = Api()

        def on_pod(kind, obj):
            uid = obj["metadata"]["uid"]
            md = obj["metadata"]
            with self.lock:
                pod = self.pods.get(uid)
                if kind == "DELETED" or md.get("deletionTimestamp"):
                    if pod:
                        del self.pods[uid]
                if not pod and kind != "DELETED" and not md.get("deletionTimestamp"):
                    phase = obj.get("status", {}).get("phase")
                    if phase in ("Succeeded", "Failed"):
                        return
                    pod = self.pods[uid] = Pod(self, obj)
                    pod.thread.start()
                    return
            if pod and (kind == "DELETED" or md.get("deletionTimestamp")):
                threading.Thread(target=self.finish, args=(api, pod, obj, kind), daemon=True).start()

        Api().watch("/api/v1/pods?fieldSelector=spec.nodeName%3D" + self.name, on_pod)

    def finish(self, api, pod, obj, kind):
        pod.stop(min(obj["spec"].get("terminationGracePeriodSeconds", 30), 30))
        if kind != "DELETED":
            Api().call("DELETE", "/api/v1/namespaces/%s/pods/%s" % (pod.ns, pod.name),
                       {"gracePeriodSeconds": 0, "preconditions": {"uid": pod.uid}})
        shutil.rmtree(pod.dir, ignore_errors=True)

    # ---- ingress controller -------------------------------------------------------
    def endpoints(self, ns, selector, port_name):
        out = []
        with self.lock:
            for p in self.pods.values():
                labels = p.obj["metadata"].get("labels", {})
                if p.ns == ns and p.ready and all(labels.get(k) == v for k, v in selector.items()):
                    for name, (cp, lp) in p.ports.items():
                        if str(port_name) in (name, str(cp)):
                            out.append("127.0.0.1:%d" % lp)
        return sorted(out)

    def service_endpoints(self, ns, svc, port, slices):
        """host:port of the ready pods behind a Service's port (by number or name): this
        harness's own pods, and those of other nodes (the real node's containers, at their
        pod IPs) from the Service's EndpointSlices."""
        want = port.get("number") or port.get("name")
        sp = next((p for p in svc["spec"]["ports"] if p["port"] == want or p.get("name") == want), None)
        if sp is None:
            return []
        out = self.endpoints(ns, svc["spec"].get("selector", {}), sp.get("targetPort", sp["port"]))
        for sl in slices.get((ns, svc["metadata"]["name"]), []):
            num = next((p["port"] for p in sl.get("ports") or [] if p.get("name", "") == sp.get("name", "")), None)
            for ep in sl.get("endpoints") or []:
                if num and ep.get("nodeName") != self.name and (ep.get("conditions") or {}).get("ready"):
                    out += ["%s:%d" % (a, num) for a in ep.get("addresses", [])]
        return sorted(out)

    def nginx_conf(self, api):
        st, ings = api.call("GET", "/apis/networking.k8s.io/v1/ingresses")
        st2, svcs = api.call("GET", "/api/v1/services")
        services = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in svcs.get("items", [])}
        st3, eps = api.call("GET", "/apis/discovery.k8s.io/v1/endpointslices")
        slices = {}
        for sl in eps.get("items", []):
            owner = sl["metadata"].get("labels", {}).get("kubernetes.io/service-name")
            if owner:
                slices.setdefault((sl["metadata"]["namespace"], owner), []).append(sl)
        upstreams, chosen = {}, {}   # upstream name -> block; path -> (has endpoints, created, upstream name or None)
        for ing in ings.get("items", []):
            ns = ing["metadata"]["namespace"]
            created = ing["metadata"].get("creationTimestamp", "")
            for rule in ing["spec"].get("rules", []):
                for path in rule.get("http", {}).get("paths", []):
                    be = path["backend"]["service"]
                    # a Service that is not there has no endpoints: 503, as ingress-nginx answers
                    svc = services.get((ns, be["name"]))
                    eps = self.service_endpoints(ns, svc, be["port"], slices) if svc else []
                    up = "u_%s_%s" % (ns.replace("-", "_"), be["name"].replace("-", "_"))
                    if eps:   # many Ingresses may route to one Service (shared mode): one upstream
                        upstreams[up] = "  upstream %s {\n%s    keepalive 64;\n  }\n" % (
                            up, "".join("    server %s;\n" % p for p in eps))
                    # one host serves every Ingress here: when two claim a path, the one
                    # with endpoints wins, then the newest (a deleted pipeline may linger)
                    cand = (bool(eps), created, up if eps else None)
                    if path["path"] not in chosen or cand[:2] > chosen[path["path"]][:2]:
                        chosen[path["path"]] = cand
        locations = "".join("    location %s {\n      %s\n    }\n" %
                            (p, "proxy_pass http://%s;" % c[2] if c[2] else "return 503;") for p, c in sorted(chosen.items()))
        d = os.path.join(self.state, "nginx")
        user = "user root root;\n" if os.geteuid() == 0 else ""
        proxy = ("    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n"
                 "    proxy_set_header Host $host;\n    proxy_set_header X-Forwarded-For $remote_addr;\n"
                 "    proxy_next_upstream error timeout http_503;\n")
        tls_servers = self.tls_servers(api, ings.get("items", []), d, proxy + locations)
        return ("%sworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
                "events { worker_connections 4096; }\n"
                "http {\n  access_log off;\n  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n"
                "  fastcgi_temp_path %s/fastcgi;\n  uwsgi_temp_path %s/uwsgi;\n  scgi_temp_path %s/scgi;\n"
                "  client_max_body_size 16m;\n%s"
                "  server {\n    listen 127.0.0.1:%d default_server;\n%s%s  }\n%s}\n") % (
                    user, d, d, d, d, d, d, d, "".join(v for _, v in sorted(upstreams.items())), self.ingress_port,
                    proxy, locations, tls_servers)

    def tls_servers(self, api, ingresses, d, body):
        """nginx servers for the Ingresses' tls entries, as ingress-nginx makes them: https
        on 127.0.0.1:TLS_PORT with the entry's kubernetes.io/tls Secret (by SNI for its
        hosts; without hosts, the default certificate), and http requests to those hosts
        redirected (308) to https. A Secret not there yet leaves its entry out."""
        if not self.ingress_tls_port:
            return ""
        out, default_done, seen = [], False, set()
        os.makedirs(os.path.join(d, "tls"), mode=0o700, exist_ok=True)
        for ing in ingresses:
            ns = ing["metadata"]["namespace"]
            for entry in ing["spec"].get("tls", []):
                st, sec = api.call("GET", "/api/v1/namespaces/%s/secrets/%s" % (ns, entry.get("secretName", "")))
                data = sec.get("data", {}) if st == 200 else {}
                if "tls.crt" not in data or "tls.key" not in data:
                    continue
                base = os.path.join(d, "tls", "%s_%s" % (ns, entry["secretName"]))
                for ext, key in (("crt", "tls.crt"), ("key", "tls.key")):
                    blob = base64.b64decode(data[key])
                    fd = os.open("%s.%s" % (base, ext), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(blob)
                # the Secret's version in the text: a renewed certificate reloads nginx
                version = sec["metadata"].get("resourceVersion", "")
                hosts = [h for h in entry.get("hosts", []) if h not in seen]
                seen.update(hosts)
                if not hosts and default_done:
                    continue
                names = " ".join(hosts) if hosts else "_"
                out.append("  server {\n    listen 127.0.0.1:%d ssl%s;\n    server_name %s;\n"
                           "    ssl_certificate %s.crt;\n    ssl_certificate_key %s.key;   # %s\n%s  }\n" %
                           (self.ingress_tls_port, "" if hosts else " default_server", names, base, base, version,
                            body))
                default_done = default_done or not hosts
                if hosts:
                    out.append("  server {\n    listen 127.0.0.1:%d;\n    server_name %s;\n"
                               "    return 308 https://$host:%d$request_uri;\n  }\n" %
                               (self.ingress_port, names, self.ingress_tls_port))
        return "".join(out)

    def stop_stale_nginx(self, d):
        """An nginx left by a node.py that was killed still holds the port: stop it."""
        try:
            pid = int(open(os.path.join(d, "nginx.pid")).read())
            os.kill(pid, signal.SIGQUIT)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    # ---- what the chart's PodMonitor would scrape ----------------------------------
    SCRAPED = {"part-of": "formpipe", "managed-by": "formpipe-operator"}

    def scrape_targets(self):
        """file_sd groups: the ingest, consumer and task pods, port admin."""
        groups = []
        with self.lock:
            for p in self.pods.values():
                labels = p.obj["metadata"].get("labels", {})
                if any(labels.get("app.kubernetes.io/" + k) != v for k, v in self.SCRAPED.items()):
                    continue
                component = labels.get("app.kubernetes.io/component", "")
                if component not in ("ingest", "consumer", "task"):
                    continue
                for name, (cp, lp) in sorted(p.ports.items()):
                    if name == "admin":
                        groups.append({"targets": ["127.0.0.1:%d" % lp],
                                       "labels": {"namespace": p.ns, "pod": p.name, "component": component,
                                                  "pipeline": labels.get("formpipe.io/pipeline", ""),
                                                  "task": labels.get("formpipe.io/task", ""), "endpoint": name}})
        return groups

    def write_scrape_targets(self, current):
        groups = self.scrape_targets()
        if groups == current:
            return current
        path = os.path.join(self.state, "scrape-targets.json")
        with open(path + ".tmp", "w") as f:
            json.dump(groups, f)
        os.replace(path + ".tmp", path)   # Prometheus never reads half a file
        return groups

    def ingress(self):
        api = Api()
        targets = None
        d = os.path.join(self.state, "nginx")
        os.makedirs(d, exist_ok=True)
        self.stop_stale_nginx(d)
        conf_path, current, running = os.path.join(d, "nginx.conf"), None, False
        while not STOP.is_set():
            try:
                conf = self.nginx_conf(api)
                if conf != current:
                    with open(conf_path, "w") as f:
                        f.write(conf)
                    cmd = ["nginx", "-c", conf_path, "-p", d] + (["-s", "reload"] if running else [])
                    r = subprocess.run(cmd, capture_output=True, text=True)
                    if r.returncode != 0:
                        log("nginx failed", error=r.stderr.strip())
                    else:
                        running, current = True, conf
            except Exception as e:
                log("ingress sync failed", error=str(e))
            targets = self.write_scrape_targets(targets)
            self.changed.wait(1.0)
            self.changed.clear()
        if running:
            subprocess.run(["nginx", "-c", conf_path, "-p", d, "-s", "quit"], capture_output=True)

    def shutdown(self):
        with self.lock:
            pods = list(self.pods.values())
        stoppers = [threading.Thread(target=p.stop, args=(10,)) for p in pods]   # in parallel, like a kubelet
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()


def main():
    ap = argparse.ArgumentParser(description="plays the node of the local control plane")
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--ingress-port", type=int, required=True)
    ap.add_argument("--ingress-tls-port", type=int, default=0, help="https for Ingresses with tls (0: none)")
    ap.add_argument("--node", default="formpipe-node")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    node = Node(args)
    node.register()
    threads = [threading.Thread(target=t, daemon=True) for t in (node.heartbeat, node.schedule, node.kubelet)]
    for t in threads:
        t.start()
    ing = threading.Thread(target=node.ingress)
    ing.start()
    log("node ready", node=args.node, ingress="http://127.0.0.1:%d" % args.ingress_port)
    STOP.wait()
    node.changed.set()
    ing.join()
    node.shutdown()
    log("node stopped")


if __name__ == "__main__":
    main()
