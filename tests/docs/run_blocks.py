#!/usr/bin/env python3
"""run_blocks.py - runs the guide's runnable command blocks against the local stack
(scripts/stack on scripts/testenv), so a renamed flag, field or value breaks a test, not
a user.

A runnable block is a fenced code block whose info string starts with `sh runnable`:

    ```sh runnable
    kubectl get fp -n guide
    ```

Words after it set options: `timeout=SECONDS` (default 300). Each block runs on its own
with `bash -euo pipefail` in the checkout's root, in the order of the file (files in the
order docs/guide/README.md links them); a file's
blocks stop at the first failure (later ones build on it), the other files still run.
Blocks must be safe to run twice and work in their own namespace. Other blocks (plain
```sh, ```yaml, ...) are examples for a real cluster and are not run.

  run_blocks.py [--bin-dir DIR] [FILE.md ...]   run (default: the guide's pages); DIR
                                                (formpipe-dlq; default build/bin) and the
                                                directory of $HELM are put first on PATH
  run_blocks.py --list [FILE.md ...]            print FILE:LINE and the first line of each block

Run it inside the environment: scripts/testenv exec tests/docs/run_blocks.py --bin-dir build/bin
Exit status 0 when every block passed, 1 when one failed (FILE:LINE of each failed
block on stderr), 2 for a bad command line."""
import glob, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = ("sh", "runnable")
FENCE = re.compile(r"^( {0,3}|\s*[-*] |\s*\d+\. |\s+)(`{3,}|~{3,})(.*)$")


class Block:
    def __init__(self, path, line, text, options):
        self.path, self.line, self.text, self.options = path, line, text, options

    def __repr__(self):
        return "Block(%s:%d, %r, %r)" % (self.path, self.line, self.text, self.options)


def extract(text, path="-"):
    """The runnable blocks of one Markdown text, in order: Block(path, line of the
    opening fence (1-based), the block's text with the fence's indentation removed,
    {option: value}). A fence closes with the same character, at least as long; blocks
    inside other fences are not blocks. An unclosed runnable block is an error
    (ValueError naming the line), so a broken fence cannot hide commands."""
    blocks, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        if fence[0] == "`" and "`" in info:   # not a fence (CommonMark): inline code
            i += 1
            continue
        start, body, i = i + 1, [], i + 1
        closer = re.compile(r"^\s*" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence))
        while i < len(lines) and not closer.match(lines[i]):
            line = lines[i]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        words = info.split()
        runnable = tuple(words[:2]) == MARKER
        if i == len(lines) and runnable:
            raise ValueError("%s:%d: runnable block is never closed" % (path, start))
        i += 1
        if runnable:
            options = {}
            for w in words[2:]:
                key, eq, value = w.partition("=")
                if not eq or key not in ("timeout",) or not value.isdigit():
                    raise ValueError("%s:%d: unknown block option %r (known: timeout=SECONDS)" % (path, start, w))
                options[key] = int(value)
            blocks.append(Block(path, start, "\n".join(body) + "\n", options))
    return blocks


def guide_files(args):
    """The files to run: args, else the guide's pages in the order docs/guide/README.md
    links them (install.md makes the pipeline the later pages use), then any page it
    does not link."""
    if args:
        return args
    guide = os.path.join(ROOT, "docs", "guide")
    with open(os.path.join(guide, "README.md")) as f:
        linked = re.findall(r"\]\(([\w-]+\.md)\)", f.read())
    pages = [os.path.join(guide, p) for p in dict.fromkeys(linked) if os.path.exists(os.path.join(guide, p))]
    rest = sorted(p for p in glob.glob(os.path.join(guide, "*.md")) if p not in pages)
    return pages + rest


def run_block(b, env):
    """Runs one block; returns (ok, seconds, output)."""
    t0 = time.time()
    try:
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", b.text], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=b.options.get("timeout", 300))
        return r.returncode == 0, time.time() - t0, "exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        return False, time.time() - t0, "timed out after %d s\n%s" % (b.options.get("timeout", 300), out)


def main(argv):
    args, bin_dir, listing = argv[1:], os.path.join(ROOT, "build", "bin"), False
    if args[:1] == ["--list"]:
        listing, args = True, args[1:]
    if args[:1] == ["--bin-dir"]:
        if len(args) < 2:
            print(__doc__, file=sys.stderr)
            return 2
        bin_dir, args = os.path.abspath(args[1]), args[2:]
    if any(a.startswith("-") for a in args):
        print(__doc__, file=sys.stderr)
        return 2
    files, failed, count = guide_files(args), [], 0
    # formpipe-dlq from the build, helm from the environment (scripts/testenv env: HELM)
    path = [bin_dir] + ([os.path.dirname(os.environ["HELM"])] if os.environ.get("HELM") else [])
    env = dict(os.environ, PATH=os.pathsep.join(path + [os.environ.get("PATH", "")]))
    for path in files:
        rel = os.path.relpath(os.path.abspath(path), ROOT)
        try:
            with open(path) as f:
                blocks = extract(f.read(), rel)
        except (OSError, ValueError) as e:
            print("FAIL %s" % e, file=sys.stderr)
            failed.append(rel)
            continue
        for b in blocks:
            count += 1
            if listing:
                print("%s:%d: %s" % (b.path, b.line, b.text.splitlines()[0] if b.text.strip() else ""))
                continue
            ok, took, out = run_block(b, env)
            print("%s %s:%d (%.1f s)" % ("ok  " if ok else "FAIL", b.path, b.line, took), flush=True)
            if not ok:
                print("%s:%d: runnable block failed: %s" % (b.path, b.line, out.rstrip()[-4000:]), file=sys.stderr)
                failed.append("%s:%d" % (b.path, b.line))
                break
    if not listing:
        print("%d runnable blocks in %d files, %d failed%s" % (count, len(files), len(failed),
                                                             (": " + " ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
