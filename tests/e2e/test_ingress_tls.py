#!/usr/bin/env python3
"""A form served over HTTPS (spec.ingest.tls, issue #16): a certificate for a host from a
private CA in a kubernetes.io/tls Secret, the pipeline's Ingress carrying it, and the
ingress (nginx, configured from the Ingress objects like ingress-nginx) answering https
for that host with it and redirecting http there. A submission over https is accepted
and reaches Kafka; the certificate the client sees is the Secret's."""
import http.client, json, os, socket, ssl, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import check, finish, kafka_count, kubectl, pipeline_yaml, ready, stack, status, submission, until

NS, NAME, HOST = "e2e-tls", "secure", "forms.tls.test"
TLS_PORT = 29883
HTTP_PORT = 29880


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(work):
    """A CA and a certificate for HOST signed by it; returns (ca.crt, tls.crt, tls.key)."""
    ca_key, ca_crt = os.path.join(work, "ca.key"), os.path.join(work, "ca.crt")
    key, csr, crt = os.path.join(work, "tls.key"), os.path.join(work, "tls.csr"), os.path.join(work, "tls.crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "2",
            "-subj", "/CN=formpipe e2e CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + HOST)
    ext = os.path.join(work, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\n" % HOST)
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", crt, "-days", "2",
            "-extfile", ext)
    return ca_crt, crt, key


def https_post(ca, body):
    """POSTs body to the form over https with SNI HOST (to 127.0.0.1); (status, answer)."""
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPConnection("127.0.0.1", TLS_PORT, timeout=10)   # its socket: TLS with SNI HOST
    conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", TLS_PORT), 10), server_hostname=HOST)
    conn.request("POST", "/forms/" + NAME, body=json.dumps(body), headers={"Host": HOST, "Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read().decode()


def main():
    work = tempfile.mkdtemp(prefix="e2e-tls-")
    ca, crt, key = make_certs(work)
    stack("namespace", NS)
    stack("sheet", "e2e-tls-sheet")
    kubectl("create", "secret", "tls", "forms-tls", "-n", NS, "--cert=" + crt, "--key=" + key)
    spec = pipeline_yaml(NS, NAME, "e2e-tls-sheet", 1).replace(
        '  ingest: {replicas: 2, rateLimit: 0, trustedProxies: ["127.0.0.1"]}',
        '  ingest: {replicas: 1, rateLimit: 0, trustedProxies: ["127.0.0.1"], host: %s, tls: {secretName: forms-tls}}' % HOST)
    kubectl("apply", "-f", "-", input=spec)
    until("the pipeline is Ready", lambda: ready(NS, NAME), 120)
    check("status.ingest.url is https", status(NS, NAME, "{.status.ingest.url}") == "https://%s/forms/%s" % (HOST, NAME),
          status(NS, NAME, "{.status.ingest.url}"))
    tls = json.loads(kubectl("get", "ingress", NAME + "-ingest", "-n", NS, "-o", "jsonpath={.spec.tls}") or "[]")
    check("the Ingress carries the tls entry", tls == [{"hosts": [HOST], "secretName": "forms-tls"}], str(tls))

    before = kafka_count("forms.%s.%s" % (NS, NAME))
    code, answer = until("a submission over https is accepted",
                         lambda: (lambda r: r if r[0] == 202 else None)(try_post(ca)), 60)
    check("https POST answers 202", code == 202, answer)
    until("the event is on the topic", lambda: kafka_count("forms.%s.%s" % (NS, NAME)) > before, 30)

    # the certificate the client saw is the Secret's: another CA does not verify it
    other_ca, _, _ = make_certs(tempfile.mkdtemp(prefix="e2e-tls-other-"))
    try:
        https_post(other_ca, submission(2, 2, 0))
        check("a client trusting another CA refuses the server", False)
    except ssl.SSLError:
        check("a client trusting another CA refuses the server", True)

    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
    conn.request("GET", "/forms/" + NAME, headers={"Host": HOST})
    r = conn.getresponse()
    r.read()
    check("http to the host redirects to https (308)", r.status == 308 and
          (r.getheader("Location") or "").startswith("https://%s:%d/forms/%s" % (HOST, TLS_PORT, NAME)),
          "%d %s" % (r.status, r.getheader("Location")))
    kubectl("delete", "namespace", NS, "--wait=false")
    finish()


def try_post(ca):
    try:
        return https_post(ca, submission(1, 1, 0))
    except (OSError, ssl.SSLError) as e:
        return (0, str(e))


if __name__ == "__main__":
    main()
