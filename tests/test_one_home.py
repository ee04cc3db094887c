"""Issue 30: each concept has one home in the package. Read from the source with ``ast``: the
operation that *is* the concept (unpickling, parsing JSON, loading an NDArray file, counting
cores, checking "an integer, not a bool", shortening a repr, naming PIL's resampling filters,
RecordIO's magic) appears in its one module only. The spy tests beside the paths that use a
concept are in test_datasets.py (normalisation, image acceptance) and test_runtimes.py
(timing)."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "inceptionzoo"


def _dotted(node):
    """``a.b.c`` of a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id] + parts[::-1])
    return None


def _is_isinstance(node, names):
    return (isinstance(node, ast.Call) and _dotted(node.func) == "isinstance"
            and len(node.args) == 2 and any(n in ast.dump(node.args[1]) for n in names))


def _int_not_bool(node):
    """``isinstance(x, int...) and not isinstance(x, bool)``: the count check's rule."""
    if not (isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And)):
        return False
    ints = any(_is_isinstance(v, ("'int'", "'Integral'", "'integer'")) for v in node.values)
    bools = any(isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.Not)
                and _is_isinstance(v.operand, ("'bool'",)) for v in node.values)
    return ints and bools


#: concept -> (what the source does when it implements it, the one module allowed to)
CONCEPTS = {
    "unpickling": (lambda n: isinstance(n, ast.ClassDef) and any(
        _dotted(b) == "pickle.Unpickler" for b in n.bases) or (
        isinstance(n, ast.Call) and _dotted(n.func) in ("pickle.load", "pickle.loads")),
        "checkpoints.py"),
    "parsing JSON": (lambda n: isinstance(n, ast.Call)
                     and _dotted(n.func) in ("json.load", "json.loads"), "_io.py"),
    "loading an NDArray file": (lambda n: isinstance(n, ast.Call) and (_dotted(n.func) or "")
                                .endswith(("nd.load", "nd.load_frombuffer")), "ndarray_file.py"),
    "counting cores": (lambda n: isinstance(n, ast.Call) and _dotted(n.func) in (
        "os.cpu_count", "os.sched_getaffinity", "multiprocessing.cpu_count"), "_openmp.py"),
    "an integer, not a bool": (_int_not_bool, "_checks.py"),
    "a truncating repr": (lambda n: isinstance(n, (ast.Import, ast.ImportFrom)) and "reprlib" in
                          [a.name for a in n.names] + [getattr(n, "module", None)],
                          "_checks.py"),
    "PIL's resampling filters": (lambda n: isinstance(n, ast.Attribute) and (
        _dotted(n) or "").startswith(("Image.Resampling.", "PIL.Image.Resampling.")),
        "transforms.py"),
    "RecordIO's record magic": (lambda n: isinstance(n, ast.Constant)
                                and n.value == 0xCED7230A, "recordio.py"),
    "the NDArray list magic": (lambda n: isinstance(n, ast.Constant) and type(n.value) is int
                               and n.value == 0x112, "ndarray_file.py"),
}


def homes(concept, root=PACKAGE):
    """The package modules (paths relative to ``root``) whose code does ``concept``."""
    found = set()
    test, _ = CONCEPTS[concept]
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if test(node):
                found.add(str(path.relative_to(root)))
                break
    return found


@pytest.mark.parametrize("concept", sorted(CONCEPTS))
def test_each_concept_has_one_home(concept):
    _, home = CONCEPTS[concept]
    assert homes(concept) == {home}, (
        f"{concept} belongs in {home} only: call it from there instead of doing it again")


def test_the_checks_find_a_second_home(tmp_path):
    """Each check sees the concept done again elsewhere (so the test above can fail)."""
    (tmp_path / "a.py").write_text(
        "import json, os, pickle, reprlib\nfrom PIL import Image\n"
        "class U(pickle.Unpickler):\n    pass\n"
        "def f(x, data):\n"
        "    n = os.cpu_count()\n"
        "    ok = isinstance(x, int) and not isinstance(x, bool)\n"
        "    magic = 0xCED7230A, 0x112\n"
        "    r = Image.Resampling.BILINEAR\n"
        "    return json.loads(data), mx.nd.load_frombuffer(data)\n")
    for concept in CONCEPTS:
        assert homes(concept, tmp_path) == {"a.py"}, concept
