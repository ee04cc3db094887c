"""The shape of the package, read from its source with ``ast``: no function longer than
``MAX_LINES`` (argument tables and the functions listed below aside) and no import cycle
between inceptionzoo modules."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "inceptionzoo"

#: the longest a function may be, in lines of code (its docstring not counted: a long
#: Parameters section documents, it does not add steps)
MAX_LINES = 80

#: functions allowed to be longer, with the reason
LONG_OK = {}


def _modules():
    """``{dotted module name: path}`` of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _functions(tree, prefix=""):
    """``(qualified name, node)`` of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def _code_lines(node):
    """Lines of a function without its docstring."""
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
            and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def long_functions(modules=None):
    """``{'module.function': lines}`` of the functions over :data:`MAX_LINES` lines."""
    found = {}
    for name, path in (modules or _modules()).items():
        short = name.split(".", 1)[1] if "." in name else name
        for qual, node in _functions(ast.parse(path.read_text(), str(path))):
            if _code_lines(node) > MAX_LINES:
                found[f"{short}.{qual}"] = _code_lines(node)
    return found


def _module_level_imports(tree):
    """Import statements run when the module is imported (not those inside functions)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)) or \
                (hasattr(ast, "TryStar") and isinstance(node, ast.TryStar)):
            yield from _module_level_imports(node)


def import_graph(modules=None):
    """``{module: set of inceptionzoo modules it imports at module level}``."""
    modules = modules or _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in _module_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # ``from X import y``: y is a submodule of X when one exists, else a name in X
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def import_cycles(graph):
    """Every cycle of ``graph``, each as a list of modules starting at its smallest name."""
    cycles, state, stack = set(), {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):]
                start = cycle.index(min(cycle))
                cycles.add(tuple(cycle[start:] + cycle[:start]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return sorted(list(c) for c in cycles)


def test_the_walk_sees_the_package():
    modules = _modules()
    assert {"inceptionzoo", "inceptionzoo.train", "inceptionzoo.models._base"} <= set(modules)
    graph = import_graph(modules)
    assert "inceptionzoo._registry" in graph["inceptionzoo"]  # a relative ``from . import``
    assert "inceptionzoo.models._base" in graph["inceptionzoo.models.googlenet"]  # ``from ._base``


def test_no_function_is_longer_than_max_lines():
    found = long_functions()
    too_long = {name: n for name, n in found.items() if name not in LONG_OK}
    assert not too_long, (f"functions over {MAX_LINES} lines of code (split them into named "
                          f"steps): {too_long}")
    stale = set(LONG_OK) - set(found)
    assert not stale, f"LONG_OK lists functions that are short now: {sorted(stale)}"


def test_no_import_cycle():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles between inceptionzoo modules: " + "; ".join(
        " -> ".join(c + [c[0]]) for c in cycles)


@pytest.mark.parametrize("source, expected", [
    ("def f():\n" + "    x = 1\n" * 81, {"m.f": 82}),
    ("class C:\n    def g(self):\n        '''doc\n''' \n" + "        x = 1\n" * 79, {}),
    ("def f():\n    def inner():\n" + "        x = 1\n" * 81, {"m.f": 83, "m.f.inner": 82}),
])
def test_the_length_check_catches_a_long_function(tmp_path, source, expected):
    (tmp_path / "m.py").write_text(source)
    assert long_functions({"pkg.m": tmp_path / "m.py"}) == expected


def test_the_cycle_check_catches_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\ntry:\n    from .c import x\n"
                              "except ImportError:\n    pass\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    modules = {"pkg": pkg / "__init__.py", "pkg.a": pkg / "a.py", "pkg.b": pkg / "b.py",
               "pkg.c": pkg / "c.py"}
    assert import_cycles(import_graph(modules)) == [["pkg.a", "pkg.b", "pkg.c"]]
    (pkg / "c.py").write_text("import os\n")
    assert import_cycles(import_graph(modules)) == []
