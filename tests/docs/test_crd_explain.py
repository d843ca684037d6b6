"""integration.crd_explain - `kubectl explain` against the real apiserver agrees with
docs/guide/reference.md for every field path: the same set of paths, and per path the
type, required or not, the enum values and the description. Applies crds/ (server-side,
idempotent) so the apiserver serves this tree's schemas."""
import html, importlib.machinery, importlib.util, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFERENCE = os.path.join(ROOT, "docs", "guide", "reference.md")
_loader = importlib.machinery.SourceFileLoader("crd_reference", os.path.join(ROOT, "scripts", "crd-reference"))
crdref = importlib.util.module_from_spec(importlib.util.spec_from_loader("crd_reference", _loader))
_loader.exec_module(crdref)   # the reference's own type names, as explain prints them
FAILURES = []


def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: %s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return r.stdout


def check(what, ok, detail=""):
    if not ok:
        print("FAIL - %s: %s" % (what, detail), flush=True)
        FAILURES.append(what)


def words(text):
    return " ".join(text.split())


def unescape(cell):
    return html.unescape(cell.replace("\\|", "|"))


def reference_rows():
    """{kind: {path without []: (type, required, enum values, description)}} from the page."""
    rows, kind = {}, None
    for line in open(REFERENCE):
        m = re.match(r"^## (\w+)$", line)
        if m:
            kind = m.group(1)
            rows[kind] = {}
            continue
        if kind and line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            path, typ, _default, validation, desc = cells
            enum = re.search(r"one of ((?:`[^`]*`(?:, )?)+)", validation)
            rows[kind][path.strip("`").replace("[]", "")] = (
                typ, validation.startswith("required"),
                re.findall(r"`([^`]*)`", enum.group(1)) if enum else [], words(unescape(desc)))
    return rows


def explain_tree(kind):
    """{path: explain type} from `kubectl explain KIND --recursive` (apiVersion, kind and
    metadata left out: they are Kubernetes' own)."""
    out, stack, inside = {}, [], False
    for line in sh("kubectl", "explain", kind.lower(), "--recursive").splitlines():
        if line.startswith("FIELDS:"):
            inside = True
            continue
        m = re.match(r"^( +)(\S+)\t<(.*?)>", line)
        if not inside or not m:
            continue
        depth = len(m.group(1)) // 2 - 1
        stack[depth:] = [m.group(2)]
        path = ".".join(stack)
        if stack[0] not in ("apiVersion", "kind", "metadata"):
            out[path] = m.group(3)
    return out


def explain(kind, path):
    """(type, enum values, description, {child: (type, required, description, has enum)}) of one
    field (path "" - the resource) from `kubectl explain`."""
    text = sh("kubectl", "explain", ".".join([kind.lower()] + ([path] if path else [])))
    typ = re.search(r"^FIELD: \S+ <(.*?)>", text, re.M)
    enum = re.search(r"^ENUM:\n((?:    .*\n)+)", text, re.M)
    desc = re.search(r"^DESCRIPTION:\n(.*?)(?:^FIELDS:|\Z)", text, re.M | re.S)
    children, fields = {}, text.split("\nFIELDS:\n", 1)
    if len(fields) == 2:
        for block in re.split(r"\n\s*\n", fields[1]):
            m = re.match(r"^  (\S+)\t<(.*?)>( -required-)?\n?((?:.*\n?)*)", block)
            if m:
                body = [l for l in m.group(4).splitlines() if l.startswith("    ")]
                has_enum = any(l.startswith("  enum:") for l in m.group(4).splitlines())
                children[m.group(1)] = (m.group(2), bool(m.group(3)), words(" ".join(body)), has_enum)
    return (typ.group(1) if typ else "", [v.strip() for v in enum.group(1).splitlines()] if enum else [],
            words(desc.group(1)) if desc else "", children)


def main():
    sh("kubectl", "apply", "--server-side", "--force-conflicts", "-f", os.path.join(ROOT, "crds"))
    sh("kubectl", "wait", "--for", "condition=Established", "crd/formpipelines.formpipe.io",
       "crd/formtasks.formpipe.io", "--timeout", "30s")
    ref, checked = reference_rows(), 0
    check("the reference documents FormPipeline and FormTask", set(ref) >= {"FormPipeline", "FormTask"}, sorted(ref))
    for kind, rows in sorted(ref.items()):
        # The apiserver publishes a changed CRD's schema a few seconds after the apply
        # (another test may have applied another version just before): wait for it.
        deadline = time.time() + 60
        tree = explain_tree(kind)
        while set(tree) != set(rows) and time.time() < deadline:
            time.sleep(2)
            tree = explain_tree(kind)
        check("%s: paths" % kind, set(tree) == set(rows),
              "only in kubectl explain: %s; only in the reference: %s" % (sorted(set(tree) - set(rows)),
                                                                           sorted(set(rows) - set(tree))))
        # One explain per object: its children's type, required and description; one
        # more per enum field (a parent lists only the first values).
        listed = {}
        for parent in [""] + sorted(p for p in rows if rows[p][0] in ("object", "[]object")):
            for name, child in explain(kind, parent)[3].items():
                listed[(parent + "." if parent else "") + name] = child
        for path in sorted(set(tree) & set(rows)):
            typ, required, enum, desc = rows[path]
            want_type = crdref.explain_name(typ)
            e_type, e_required, e_desc, e_has_enum = listed.get(path, ("?", None, "?", False))
            check("%s %s: type" % (kind, path), e_type == want_type, "explain %r, reference %r" % (e_type, want_type))
            check("%s %s: required" % (kind, path), e_required == required, "explain %r, reference %r" % (e_required, required))
            check("%s %s: description" % (kind, path), e_desc == desc, "explain %r, reference %r" % (e_desc, desc))
            if enum or e_has_enum:
                e_enum = explain(kind, path)[1]
                check("%s %s: enum" % (kind, path), e_enum == enum, "explain %r, reference %r" % (e_enum, enum))
            checked += 1
        print("ok   - %s: %d field paths compared with kubectl explain" % (kind, len(set(tree) & set(rows))), flush=True)
    if checked < 100:
        check("enough field paths compared", False, "only %d" % checked)
    print("%d failures" % len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
