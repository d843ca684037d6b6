"""unit.crd_reference - docs/guide/reference.md is what scripts/crd-reference makes of
crds/ today (a changed CRD without a regenerated page fails here), and the generator
renders each kind of schema detail (a table of small schemas and the row expected)."""
import importlib.machinery, importlib.util, os, unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_loader = importlib.machinery.SourceFileLoader("crd_reference", os.path.join(ROOT, "scripts", "crd-reference"))
_spec = importlib.util.spec_from_loader("crd_reference", _loader)
ref = importlib.util.module_from_spec(_spec)
_loader.exec_module(ref)


def crd(props, required=(), rules=()):
    spec = {"type": "object", "properties": props, "required": list(required)}
    if rules:
        spec["x-kubernetes-validations"] = list(rules)
    return ("crds/x.yaml", {"kind": "CustomResourceDefinition", "spec": {
        "group": "example.io", "names": {"kind": "Thing", "plural": "things", "shortNames": ["th"]},
        "versions": [{"name": "v1", "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": spec}}}}]}})


# (what, properties of spec, required, the table row expected in the page)
CASES = [
    ("default and bounds", {"n": {"type": "integer", "minimum": 1, "maximum": 9, "default": 3, "description": "N."}}, (),
     "| `spec.n` | integer | `3` | min 1; max 9 | N. |"),
    ("required, pattern", {"s": {"type": "string", "pattern": "^a|b$", "description": "S."}}, ("s",),
     "| `spec.s` | string |  | required; pattern `^a\\|b$` | S. |"),
    ("enum", {"e": {"type": "string", "enum": ["x", "y"], "default": "x"}}, (),
     "| `spec.e` | string | `x` | one of `x`, `y` |  |"),
    ("CEL message on a field", {"p": {"type": "string", "x-kubernetes-validations": [
        {"rule": "self == oldSelf", "message": "p cannot be changed"}]}}, (),
     "| `spec.p` | string |  | CEL: p cannot be changed |  |"),
    ("list of objects", {"l": {"type": "array", "maxItems": 2, "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["k"],
                               "items": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}}}}, (),
     "| `spec.l[].k` | string |  | required |  |"),
    ("list of strings", {"v": {"type": "array", "items": {"type": "string", "maxLength": 5}}}, (),
     "| `spec.v` | []string |  | each item: max length 5 |  |"),
    ("int-or-string", {"c": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}}, (),
     "| `spec.c` | int-or-string |  |  |  |"),
    ("object default", {"o": {"type": "object", "default": {"a": 1}, "properties": {"a": {"type": "integer"}}}}, (),
     "| `spec.o` | object | `{\"a\": 1}` |  |  |"),
    ("angle brackets in a description", {"t": {"type": "string", "description": "forms.<ns>.<name>"}}, (),
     "| `spec.t` | string |  |  | forms.&lt;ns&gt;.&lt;name&gt; |"),
]


class Generator(unittest.TestCase):
    def test_rows(self):
        for what, props, required, row in CASES:
            with self.subTest(what):
                page = ref.render([crd(props, required)])
                self.assertIn(row, page.splitlines(), "%s: expected row %r in\n%s" % (what, row, page))

    def test_cel_rules_listed_with_message_and_rule(self):
        page = ref.render([crd({"a": {"type": "integer"}}, rules=[{"rule": "self.a > 0", "message": "a must be positive"}])])
        self.assertIn("- `spec`: a must be positive  ", page)
        self.assertIn("  rule: `self.a > 0`", page)

    def test_explain_types(self):
        for schema, want in (({"type": "object"}, "Object"), ({"type": "array", "items": {"type": "object"}}, "[]Object"),
                             ({"type": "array", "items": {"type": "string"}}, "[]string"),
                             ({"x-kubernetes-int-or-string": True}, "Object"), ({"type": "boolean"}, "boolean")):
            self.assertEqual(ref.explain_type(schema), want, schema)


class Committed(unittest.TestCase):
    def test_reference_is_current(self):
        with open(ref.OUT) as f:
            page = f.read()
        self.assertTrue(page == ref.render(ref.load_crds()),
                        "docs/guide/reference.md is out of date: run scripts/crd-reference --write")

    def test_every_schema_field_is_in_the_page(self):
        with open(ref.OUT) as f:
            rows = set(line.split(" | ")[0] for line in f if line.startswith("| `"))
        for src, c in ref.load_crds():
            for path, schema, required in ref.fields(c)[2]:
                if not path.startswith("metadata"):
                    self.assertIn("| `%s`" % path, rows, "%s: %s missing from docs/guide/reference.md" % (src, path))

if __name__ == "__main__":
    unittest.main()
