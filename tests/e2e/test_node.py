#!/usr/bin/env python3
"""e2e.node - the chart on the real node (issue #20): containerd + runc + kubelet run the
images that buildah built from the Dockerfile (`scripts/testenv up node`).

helm installs the chart into a fresh namespace with kafka.adminConfigSecret (the
operator's) and kafka.configSecret (the pipelines') set, tolerating
the real node's taint and selecting it. Both operator replicas must start from the
image, read the mounted Kafka admin config (a Secret, mode 0440, group fsGroup) and
stay Ready. Then, from inside a running container (kubectl exec through the apiserver,
the kubelet and containerd's streaming server): uid/gid 65532, no capabilities,
no_new_privs, seccomp, a read-only root file system, the config readable, and the
apiserver reachable through the kubernetes Service address, cluster DNS answering.
Then the operator's process is killed from the host (SIGKILL, as the chaos test does to
servers): the kubelet must restart the container and it must be Ready again. Last, every
other image's binary (ingest, consumer, dlq, flush, task) must start in a restricted
container on the node (`--help` exits 0: its shared libraries resolve).

The apiserver is shared with other tests, so the operators must not reconcile their
FormPipelines: the test holds the operators' leader-election Lease itself, and both
replicas wait as standbys (ready, as a standby is). They read the config and talk to the
apiserver before and while they wait, which is what this test is about.
"""
import datetime, json, os, signal, subprocess, sys, tarfile, time, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import ROOT, check, finish, kubectl, sh, until  # noqa: E402

NODE = os.environ["FORMPIPE_NODE_NAME"]
HELM = os.environ["HELM"]
RELEASE = "formpipe-proof"
CONFIG = "# the operator's admin client reads this file\nclient.id=formpipe-node-proof\nsocket.keepalive.enable=true\n"
# the pipelines' credentials: named to the operator for pipeline pods, never mounted into it
PIPELINES_CONFIG = "client.id=formpipe-node-proof-pipelines\n"


def now_micro():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pods(ns):
    return json.loads(kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=operator", "-o", "json"))["items"]


def all_ready(ns, want):
    ps = pods(ns)
    if len(ps) != want:
        return None
    for p in ps:
        for st in p["status"].get("containerStatuses", []):
            if st["restartCount"] >= 2:   # crash-looping: no point in waiting longer
                raise RuntimeError("%s restarted %d times" % (p["metadata"]["name"], st["restartCount"]))
        conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
        if conds.get("Ready") != "True":
            return None
    return ps


def built_image_id(target):
    """The config digest of TARGET's image as buildah built it for the running node."""
    images = open(os.path.join(os.environ["FORMPIPE_TESTENV_DIR"], "realnode", "images")).read().strip()
    with tarfile.open(os.path.join(images, target + ".tar")) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    return "sha256:" + os.path.basename(manifest[0]["Config"]).removesuffix(".json")


def start_pod(ns, image, binary):
    """A pod on the real node that runs BINARY --help from image formpipe-IMAGE, restricted."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "start-" + binary, "namespace": ns},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "nodeSelector": {"formpipe.io/real-node": "true"},
                     "tolerations": [{"key": "formpipe.io/real-node", "operator": "Equal", "value": "true",
                                      "effect": "NoSchedule"}],
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "main", "image": "formpipe/formpipe-%s:0.1.0" % image,
                                     "imagePullPolicy": "Never",   # only what was imported here
                                     "command": ["/usr/local/bin/" + binary], "args": ["--help"],
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "readOnlyRootFilesystem": True,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}


def status_field(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].split()
    return None


def main():
    t0 = time.time()
    node = json.loads(kubectl("get", "node", NODE, "-o", "json"))
    ready = [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"]
    check("the real node %s is Ready" % NODE, ready == ["True"], str(ready))
    taints = [(t["key"], t.get("value"), t["effect"]) for t in node["spec"].get("taints", [])]
    check("the real node carries the taint formpipe.io/real-node=true:NoSchedule",
          ("formpipe.io/real-node", "true", "NoSchedule") in taints, str(taints))
    runtime = node["status"]["nodeInfo"]["containerRuntimeVersion"]
    check("the node's runtime is containerd 2.x", runtime.startswith("containerd://2."), runtime)

    ns = "node-proof-" + uuid.uuid4().hex[:6]
    kubectl("create", "namespace", ns)
    try:
        # Pod Security "restricted" is enforced: the chart's pods must pass admission.
        kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
        kubectl("create", "secret", "generic", "kafka-admin", "-n", ns, "--from-file=admin.properties=/dev/stdin",
                input=CONFIG)
        kubectl("create", "secret", "generic", "kafka-client", "-n", ns, "--from-file=client.properties=/dev/stdin",
                input=PIPELINES_CONFIG)
        # Held by the test: the chart's operators stay standbys (see the docstring).
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": RELEASE + "-operator", "namespace": ns},
                 "spec": {"holderIdentity": "e2e.node", "leaseDurationSeconds": 3600,
                          "acquireTime": now_micro(), "renewTime": now_micro()}}
        kubectl("apply", "-f", "-", input=json.dumps(lease))
        values = {
            "operator": {"replicas": 2, "nodeSelector": {"formpipe.io/real-node": "true"},
                         "tolerations": [{"key": "formpipe.io/real-node", "operator": "Equal", "value": "true",
                                          "effect": "NoSchedule"}]},
            "kafka": {"bootstrapServers": "127.0.0.1:29091", "replicationFactor": 1,
                      "configSecret": {"name": "kafka-client", "key": "client.properties"},
                      "adminConfigSecret": {"name": "kafka-admin", "key": "admin.properties"}},
            "redis": {"sentinels": "127.0.0.1:29479"},
        }
        t_install = time.time()
        sh(HELM, "install", RELEASE, os.path.join(ROOT, "charts", "formpipe"), "-n", ns,
           "--values", "/dev/stdin", input=json.dumps(values))
        try:
            ps = until("both operator pods Ready", lambda: all_ready(ns, 2), 120)
        except RuntimeError as e:
            check("both operator pods Ready on the real node", False, str(e))
            print(kubectl("describe", "pods", "-n", ns, check=False))
            for p in pods(ns):
                print(kubectl("logs", "-n", ns, p["metadata"]["name"], "--tail=30", check=False))
            return
        print("operator pods Ready %.1f s after helm install" % (time.time() - t_install))
        check("both operator pods Ready on the real node", all(p["spec"]["nodeName"] == NODE for p in ps),
              str([p["spec"]["nodeName"] for p in ps]))
        built = built_image_id("formpipe-operator")
        for p in ps:
            st = p["status"]["containerStatuses"][0]
            check("%s runs the image buildah built from the Dockerfile (%s)" % (p["metadata"]["name"], built[:19]),
                  st["image"].endswith("formpipe/formpipe-operator:0.1.0") and st["imageID"] == built,
                  "%s %s" % (st["image"], st["imageID"]))
            check("%s did not restart" % p["metadata"]["name"], st["restartCount"] == 0, str(st["restartCount"]))
        pod = ps[0]["metadata"]["name"]
        logs = kubectl("logs", "-n", ns, pod)
        check("the operator started (log 'started')", '"msg":"started"' in logs.replace(" ", ""), logs[-600:])
        check("the operator could read its Lease through the API (no 'lease: cannot read')",
              "cannot read" not in logs, logs[-600:])

        def inside(*cmd, check_rc=True):
            return kubectl("exec", "-n", ns, pod, "-c", "operator", "--", *cmd, check=check_rc)

        status = inside("cat", "/proc/1/status")
        check("uid 65532 (real, effective, saved, fs)", status_field(status, "Uid") == ["65532"] * 4, str(status_field(status, "Uid")))
        check("gid 65532", status_field(status, "Gid") == ["65532"] * 4, str(status_field(status, "Gid")))
        check("fsGroup 65532 among the groups", "65532" in (status_field(status, "Groups") or []), str(status_field(status, "Groups")))
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            check("no capabilities: %s = 0" % cap, status_field(status, cap) == ["0000000000000000"], str(status_field(status, cap)))
        check("no_new_privs set", status_field(status, "NoNewPrivs") == ["1"], str(status_field(status, "NoNewPrivs")))
        check("seccomp filter on (RuntimeDefault)", status_field(status, "Seccomp") == ["2"], str(status_field(status, "Seccomp")))
        root = [line.split() for line in inside("cat", "/proc/1/mounts").splitlines() if line.split()[1] == "/"]
        check("root file system mounted read-only", bool(root) and "ro" in root[-1][3].split(","), str(root))
        r = subprocess.run(["kubectl", "exec", "-n", ns, pod, "-c", "operator", "--", "touch", "/probe"],
                           capture_output=True, text=True)
        check("writing to / fails: Read-only file system", r.returncode != 0 and "Read-only file system" in r.stderr,
              r.stdout + r.stderr)
        conf = inside("cat", "/etc/formpipe/kafka/client.properties")
        check("the operator's admin Kafka Secret is readable by uid 65532 and intact", conf + "\n" == CONFIG or conf == CONFIG.strip(),
              conf)
        mode = inside("stat", "-L", "-c", "%a %g", "/etc/formpipe/kafka/client.properties")
        check("the Secret file is mode 0440, group 65532", mode == "440 65532", mode)
        cmdline = inside("cat", "/proc/1/cmdline").replace("\0", " ")
        check("the operator runs with --kafka-config of that file", "--kafka-config=/etc/formpipe/kafka/client.properties" in cmdline,
              cmdline)
        check("pipeline pods get the pipelines' Secret (--kafka-config-secret=kafka-client)",
              "--kafka-config-secret=kafka-client:client.properties" in cmdline, cmdline)
        # The apiserver through the kubernetes Service (what the in-cluster client uses).
        reach = inside("bash", "-c", 'exec 3<>/dev/tcp/$KUBERNETES_SERVICE_HOST/$KUBERNETES_SERVICE_PORT && echo open',
                       check_rc=False)
        check("the apiserver answers at the kubernetes Service address from the pod", reach == "open", reach)
        # Cluster DNS (CoreDNS of the node) through the pod's resolv.conf search path.
        dns = inside("getent", "hosts", "kubernetes.default", check_rc=False)
        check("cluster DNS: kubernetes.default resolves to 10.96.0.1 in the pod", dns.split()[:1] == ["10.96.0.1"], dns)

        # A real container process killed from the host: the kubelet restarts the container.
        crictl = [os.environ["FORMPIPE_NODE_CRICTL"], "--runtime-endpoint", os.environ["FORMPIPE_NODE_CRI"]]
        cid = ps[0]["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
        pid = json.loads(sh(*crictl, "inspect", cid))["info"]["pid"]
        os.kill(pid, signal.SIGKILL)
        t_kill = time.time()

        def restarted():
            st = json.loads(kubectl("get", "pod", "-n", ns, pod, "-o", "json"))["status"]
            c = st["containerStatuses"][0]
            return c if c["restartCount"] == 1 and c.get("ready") else None
        try:
            c = until("the killed container restarted and Ready", restarted, 60)
            check("container process %d killed with SIGKILL: restarted by the kubelet (exit %s) and Ready again in %.1f s"
                  % (pid, c["lastState"]["terminated"]["exitCode"], time.time() - t_kill),
                  c["lastState"]["terminated"]["exitCode"] == 137, json.dumps(c["lastState"]))
        except RuntimeError as e:
            check("the killed container restarted and Ready", False, str(e))

        # Every other image's binary starts (its shared libraries resolve) in a restricted
        # container on the node: `--help` exits 0 with the usage text.
        starts = [("ingest", "formpipe-ingest"), ("consumer", "formpipe-consumer"), ("consumer", "formpipe-dlq"),
                  ("flush", "formpipe-flush"), ("task", "formpipe-task")]
        for image, binary in starts:
            kubectl("apply", "-f", "-", input=json.dumps(start_pod(ns, image, binary)))
        for image, binary in starts:
            name = "start-" + binary

            def done():
                st = json.loads(kubectl("get", "pod", "-n", ns, name, "-o", "json"))["status"]
                return st if st.get("phase") in ("Succeeded", "Failed") else None
            try:
                st = until(name + " to finish", done, 60)
            except RuntimeError as e:
                check("%s starts from image formpipe-%s" % (binary, image), False, str(e))
                continue
            term = st["containerStatuses"][0]["state"].get("terminated", {})
            out = kubectl("logs", "-n", ns, name, check=False)
            check("%s starts from image formpipe-%s (--help exits 0 with its usage)" % (binary, image),
                  st["phase"] == "Succeeded" and term.get("exitCode") == 0 and out.startswith("Usage: " + binary),
                  "%s %s %s" % (st["phase"], term, out[:300]))
    finally:
        sh(HELM, "uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "60s", check=False)
        # Waits: the pods must be gone before `down node` stops their kubelet.
        kubectl("delete", "namespace", ns, "--timeout=120s", check=False)
        print("e2e.node took %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
    finish()
