"""Unit tests (ctest unit.node_volumes) for node.py's ConfigMap/Secret volumes: the
kubelet's layout (atomic_write) and the periodic refresh of a running pod's volumes
(Pod.sync_volumes), without an apiserver: the pod's source data is a dict the test
changes."""
import importlib.util, os, shutil, tempfile, threading, time, unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("node", os.path.join(HERE, "node.py"))
node = importlib.util.module_from_spec(spec)
spec.loader.exec_module(node)


def listing(d):
    """The visible names of d (what a reader of the mount lists, hidden names aside)."""
    return sorted(n for n in os.listdir(d) if not n.startswith("."))


def read(d, name):
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


class AtomicWrite(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.d)

    def test_layout_like_the_kubelet(self):
        node.atomic_write(self.d, {"a.json": b"1", "b.json": b"2"})
        self.assertEqual(listing(self.d), ["a.json", "b.json"])
        self.assertEqual(os.readlink(os.path.join(self.d, "a.json")), "..data/a.json")
        target = os.readlink(os.path.join(self.d, "..data"))
        self.assertTrue(target.startswith("..") and os.path.isdir(os.path.join(self.d, target)), target)
        self.assertEqual(read(self.d, "b.json"), b"2")

    def test_change_add_remove(self):
        node.atomic_write(self.d, {"a.json": b"1", "b.json": b"2"})
        ino = os.stat(os.path.join(self.d, "b.json")).st_ino
        old = os.readlink(os.path.join(self.d, "..data"))
        node.atomic_write(self.d, {"b.json": b"3", "c.json": b"4"})
        self.assertEqual(listing(self.d), ["b.json", "c.json"], "a.json's link is gone, c.json's is new")
        self.assertEqual(read(self.d, "b.json"), b"3")
        self.assertNotEqual(os.stat(os.path.join(self.d, "b.json")).st_ino, ino, "a new version is a new inode")
        self.assertFalse(os.path.exists(os.path.join(self.d, old)), "the old version is removed")
        hidden = [n for n in os.listdir(self.d) if n.startswith("..")]
        self.assertEqual(sorted(hidden), sorted(["..data", os.readlink(os.path.join(self.d, "..data"))]))

    def test_nested_paths_and_empty_payload(self):
        node.atomic_write(self.d, {"sa/key.json": b"k"})
        self.assertEqual(read(self.d, "sa/key.json"), b"k")
        self.assertEqual(os.readlink(os.path.join(self.d, "sa")), "..data/sa")
        node.atomic_write(self.d, {})
        self.assertEqual(listing(self.d), [])


class Refresh(unittest.TestCase):
    """A Pod whose source is self.data instead of the apiserver."""

    def setUp(self):
        self.d = tempfile.mkdtemp()
        self.data = {"a.json": b"1"}
        self.fail_read = False
        pod = object.__new__(node.Pod)
        pod.ns, pod.name, pod.dir = "ns", "p", self.d
        pod.stopping = threading.Event()
        pod.obj = {"spec": {"volumes": [{"name": "forms", "configMap": {"name": "cm"}}],
                            "containers": [{"name": "c", "volumeMounts": [{"name": "forms", "mountPath": "/etc/f"}]}]}}

        def key_data(kind, name, optional=False, api=None):
            if self.fail_read:
                raise RuntimeError("configmap ns/cm not found")
            return dict(self.data)
        pod.key_data = key_data
        self.pod = pod
        self.saved_api, node.Api = node.Api, lambda: None   # no apiserver here
        self.vol = self.pod.write_volumes()["/etc/f"]
        self.thread = threading.Thread(target=pod.sync_volumes, daemon=True)
        self.thread.start()

    def tearDown(self):
        self.pod.stopping.set()
        self.thread.join(5)
        node.Api = self.saved_api
        shutil.rmtree(self.d)

    def wait_for(self, cond, timeout=6.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return True
            time.sleep(0.1)
        return False

    def test_changes_reach_the_running_pod(self):
        self.assertEqual(listing(self.vol), ["a.json"])
        self.data = {"a.json": b"2", "b.json": b"3"}
        self.assertTrue(self.wait_for(lambda: listing(self.vol) == ["a.json", "b.json"]), listing(self.vol))
        self.assertEqual(read(self.vol, "a.json"), b"2")
        self.data = {"b.json": b"3"}
        self.assertTrue(self.wait_for(lambda: listing(self.vol) == ["b.json"]), listing(self.vol))

    def test_unchanged_data_is_not_rewritten(self):
        version = os.readlink(os.path.join(self.vol, "..data"))
        time.sleep(4.5)   # two sync periods
        self.assertEqual(os.readlink(os.path.join(self.vol, "..data")), version)

    def test_unreadable_source_keeps_the_files(self):
        self.fail_read = True
        time.sleep(4.5)
        self.assertEqual(read(self.vol, "a.json"), b"1")
        self.fail_read = False
        self.data = {"a.json": b"9"}
        self.assertTrue(self.wait_for(lambda: read(self.vol, "a.json") == b"9"))


if __name__ == "__main__":
    unittest.main()
