#!/usr/bin/env python3
"""The webhook receiver checks signatures, records and answers as scripted: run with
python3 -m unittest tests/fakes/test_hook_receiver.py (or this file directly)."""
import http.client
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hook_receiver as hr  # noqa: E402

KEY = b"k3y-\x00-bytes"


class Receiver(unittest.TestCase):
    def setUp(self):
        self.server, self.state = hr.serve(key=KEY, tolerance=300, seed=7)
        self.port = self.server.server_port
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def tearDown(self):
        self.conn.close()
        self.server.shutdown()
        self.server.server_close()

    def post(self, rid, body=b'{"a":1}', sig=True, conn=None, t=None):
        c = conn or self.conn
        headers = {"Idempotency-Key": rid, "Content-Type": "application/cloudevents+json"}
        if sig:
            headers["Formpipe-Signature"] = hr.sign(KEY, int(time.time()) if t is None else t, body)
        c.request("POST", "/hook", body=body, headers=headers)
        r = c.getresponse()
        r.read()
        return r

    def control(self, method, path, obj=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path, body=json.dumps(obj) if obj is not None else None)
        r = c.getresponse()
        out = json.loads(r.read())
        c.close()
        self.assertEqual(r.status, 200, out)
        return out

    def test_signatures_are_verified_and_bad_ones_counted(self):
        self.assertEqual(self.post("good").status, 200)
        self.assertEqual(self.post("unsigned", sig=False).status, 401)
        self.assertEqual(self.post("stale", t=int(time.time()) - 301).status, 401)
        self.conn.request("POST", "/hook", body=b'{"a":2}',
                          headers={"Idempotency-Key": "tampered", "Formpipe-Signature": hr.sign(KEY, int(time.time()), b'{"a":1}')})
        r = self.conn.getresponse()
        r.read()
        self.assertEqual(r.status, 401)
        reqs = self.control("GET", "/_control/requests")["requests"]
        self.assertEqual([(r["id"], r["signature"], r["status"]) for r in reqs],
                         [("good", "ok", 200), ("unsigned", "missing", 401), ("stale", "stale", 401),
                          ("tampered", "mismatch", 401)])
        self.assertEqual(self.control("GET", "/_control/stats")["bad_signatures"], 3)

    def test_verify_matches_a_known_hmac(self):
        # The same vector as tests/unit/test_hooksig.c computes in C.
        want = "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        self.assertEqual(hr.sign(b"whsec_test", 1700000000, b'{"a":1}'), want)
        self.assertEqual(hr.verify(b"whsec_test", want, b'{"a":1}', 300, now=1700000100), "ok")
        self.assertEqual(hr.verify(b"whsec_test", want, b'{"a":1}', 300, now=1700000301), "stale")
        self.assertEqual(hr.verify(b"whsec_test", "t=x", b"", 300), "malformed")

    def test_requests_are_recorded_in_order_with_headers_and_body(self):
        for i in range(3):
            self.post("id-%d" % i, body=b'{"n":%d}' % i)
        reqs = self.control("GET", "/_control/requests")["requests"]
        self.assertEqual([r["seq"] for r in reqs], [1, 2, 3])
        self.assertTrue(reqs[0]["time"] <= reqs[1]["time"] <= reqs[2]["time"] <= time.time())
        self.assertEqual([r["id"] for r in reqs], ["id-0", "id-1", "id-2"])
        self.assertEqual(reqs[2]["body"], '{"n":2}')
        self.assertEqual(reqs[0]["headers"]["content-type"], "application/cloudevents+json")

    def test_keep_alive_connections_are_counted(self):
        other = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        for i in range(4):
            self.post("a%d" % i)
            self.post("b%d" % i, conn=other)
        other.close()
        stats = self.control("GET", "/_control/stats")
        self.assertEqual((stats["requests"], stats["connections"]), (8, 2))

    def test_a_queue_of_actions_then_200(self):
        self.control("POST", "/_control/script", {"next": [{"status": 500}, {"status": 429, "retry_after": "7"},
                                                           {"status": 408}]})
        r = self.post("1")
        self.assertEqual(r.status, 500)
        r = self.post("2")
        self.assertEqual((r.status, r.getheader("Retry-After")), (429, "7"))
        self.assertEqual(self.post("3").status, 408)
        self.control("POST", "/_control/script", {"next": [{"status": 302, "headers": {"Location": "/x"}}]})
        r = self.post("3b")
        self.assertEqual((r.status, r.getheader("Location")), (302, "/x"))
        self.assertEqual(self.post("4").status, 200)
        self.assertEqual(self.control("GET", "/_control/stats")["answered"], {"500": 1, "429": 1, "408": 1, "302": 1, "200": 1})

    def test_a_script_per_id_wins_for_its_times(self):
        self.control("POST", "/_control/script", {"id": "poison", "action": {"status": 404}, "times": 2})
        self.assertEqual([self.post(i).status for i in ("ok", "poison", "poison", "poison")], [200, 404, 404, 200])

    def test_a_failure_rate(self):
        self.control("POST", "/_control/script", {"fail_percent": 100, "action": {"status": 503}})
        self.assertEqual({self.post(str(i)).status for i in range(5)}, {503})
        self.control("POST", "/_control/script", {"fail_percent": 30})
        codes = [self.post(str(i)).status for i in range(200)]
        self.assertTrue(20 < codes.count(500) < 100, codes.count(500))
        self.control("POST", "/_control/script", {"fail_percent": 0})
        self.assertEqual({self.post(str(i)).status for i in range(5)}, {200})

    def test_stall_then_answer(self):
        self.control("POST", "/_control/script", {"next": [{"stall": 0.5, "status": 202}]})
        t0 = time.monotonic()
        self.assertEqual(self.post("slow").status, 202)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)

    def test_close_without_answering(self):
        self.control("POST", "/_control/script", {"next": [{"close": True}]})
        with self.assertRaises(http.client.RemoteDisconnected):
            self.post("dropped")
        reqs = self.control("GET", "/_control/requests")["requests"]
        self.assertEqual((reqs[0]["id"], reqs[0]["status"]), ("dropped", None))

    def test_reset_forgets_everything(self):
        self.control("POST", "/_control/script", {"next": [{"status": 500}]})
        self.post("x", sig=False)
        self.control("POST", "/_control/reset")
        self.assertEqual(self.control("GET", "/_control/stats"),
                         {"requests": 0, "connections": 0, "bad_signatures": 0, "answered": {}})
        self.assertEqual(self.post("y").status, 200)

    def test_a_bad_script_is_refused(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("POST", "/_control/script", body=b'{"what": 1}')
        self.assertEqual(c.getresponse().status, 400)
        c.close()


class Unsigned(unittest.TestCase):
    def test_without_a_secret_nothing_is_checked(self):
        server, state = hr.serve()
        c = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        c.request("POST", "/x", body=b"{}", headers={"Idempotency-Key": "1"})
        self.assertEqual(c.getresponse().status, 200)
        c.close()
        self.assertEqual(state.requests[0]["signature"], "none")
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    unittest.main()
