"""unit.run_blocks - the guide's block extractor (tests/docs/run_blocks.py): which fenced
blocks are runnable, their lines and text, options, and that a failing block is reported
with its file and line; and every relative link of the guide and README.md leads to a
file. Needs no server: the blocks here run plain shell commands."""
import contextlib, io, os, re, subprocess, sys, tempfile, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_blocks

# (what, markdown, expected [(line, text, options)])
CASES = [
    ("one block", "x\n```sh runnable\necho a\necho b\n```\n", [(2, "echo a\necho b\n", {})]),
    ("plain sh is not run", "```sh\nrm -rf /\n```\n", []),
    ("yaml is not run", "```yaml runnable\na: 1\n```\n", []),
    ("two blocks in order", "```sh runnable\none\n```\ntext\n\n```sh runnable\ntwo\n```\n",
     [(1, "one\n", {}), (6, "two\n", {})]),
    ("timeout option", "```sh runnable timeout=900\nsleep 1\n```\n", [(1, "sleep 1\n", {"timeout": 900})]),
    ("tilde fence", "~~~sh runnable\nls\n~~~\n", [(1, "ls\n", {})]),
    ("longer fence holds a shorter one", "````sh runnable\ncat <<'X'\n```\nX\n````\n", [(1, "cat <<'X'\n```\nX\n", {})]),
    ("a runnable fence inside another block is text", "````md\n```sh runnable\nno\n```\n````\n", []),
    ("indented in a list item", "1. Do it:\n   ```sh runnable\n   kubectl get ns\n   ```\n", [(2, "kubectl get ns\n", {})]),
    ("bullet item", "- ```sh runnable\n  a\n  ```\n", [(1, "a\n", {})]),
    ("backticks in the info string are inline code", "``` `sh runnable` ```\n```sh runnable\nb\n```\n", [(2, "b\n", {})]),
]

ERRORS = [
    ("unclosed runnable block", "text\n```sh runnable\necho\n", "doc.md:2: runnable block is never closed"),
    ("unknown option", "```sh runnable retries=3\nx\n```\n", "doc.md:1: unknown block option 'retries=3'"),
]


class Extract(unittest.TestCase):
    def test_cases(self):
        for what, md, want in CASES:
            with self.subTest(what):
                got = [(b.line, b.text, b.options) for b in run_blocks.extract(md, "doc.md")]
                self.assertEqual(got, want, "%s:\n%s" % (what, md))

    def test_errors(self):
        for what, md, message in ERRORS:
            with self.subTest(what):
                with self.assertRaises(ValueError) as e:
                    run_blocks.extract(md, "doc.md")
                self.assertIn(message, str(e.exception))

    def test_guide_blocks_parse(self):
        # every page of the guide extracts (no unclosed runnable block, no unknown option),
        # has runnable blocks only where meant, and each block is valid bash (bash -n)
        found = 0
        for path in run_blocks.guide_files([]):
            with open(path) as f:
                for b in run_blocks.extract(f.read(), path):
                    found += 1
                    r = subprocess.run(["bash", "-n", "-c", b.text], capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, "%s:%d: %s" % (b.path, b.line, r.stderr))
        self.assertGreater(found, 5, "the guide has runnable blocks")


    def test_guide_order_follows_the_index(self):
        names = [os.path.basename(p) for p in run_blocks.guide_files([])]
        self.assertEqual(names[0], "install.md", names)   # it makes the pipeline the other pages use
        self.assertLess(names.index("forms.md"), names.index("operations.md"), names)
        self.assertEqual(len(names), len(set(names)), names)


class Run(unittest.TestCase):
    def run_file(self, md):
        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
            f.write(md)
        err, out = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                rc = run_blocks.main(["run_blocks.py", f.name])
        finally:
            os.unlink(f.name)
        return rc, out.getvalue(), err.getvalue(), os.path.relpath(f.name, run_blocks.ROOT)

    def test_failing_block_names_file_and_line_and_stops_the_file(self):
        rc, out, err, rel = self.run_file("```sh runnable\ntrue\n```\n\n```sh runnable\necho oops >&2\nfalse\n```\n"
                                          "```sh runnable\necho never\n```\n")
        self.assertEqual(rc, 1)
        self.assertIn("%s:5: runnable block failed: exit 1" % rel, err)
        self.assertIn("oops", err)
        self.assertNotIn("never", out + err)

    def test_pipefail_and_unset_variables_fail(self):
        for body in ("false | true", "echo $NOT_SET_ANYWHERE_X"):
            with self.subTest(body):
                rc, out, err, rel = self.run_file("```sh runnable\n%s\n```\n" % body)
                self.assertEqual(rc, 1, body)

    def test_passing_blocks(self):
        rc, out, err, rel = self.run_file("```sh runnable\ntest -x scripts/stack\n```\n")
        self.assertEqual((rc, err), (0, ""), out)
        self.assertIn("1 runnable blocks in 1 files, 0 failed", out)


class Links(unittest.TestCase):
    def test_relative_links_resolve(self):
        pages = run_blocks.guide_files([]) + [os.path.join(run_blocks.ROOT, "README.md")]
        for page in pages:
            text = re.sub(r"```.*?```", "", open(page).read(), flags=re.S)   # no code blocks
            text = re.sub(r"`[^`]*`", "", text)                              # no code spans
            for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
                if re.match(r"^[a-z]+:", target):
                    continue
                with self.subTest(page=page, link=target):
                    self.assertTrue(os.path.exists(os.path.join(os.path.dirname(page), target)),
                                    "%s links to %s, which does not exist" % (page, target))


if __name__ == "__main__":
    unittest.main()
