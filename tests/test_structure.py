"""The shape of the package, read from its source with ``ast``: no function longer than
``MAX_LINES`` (argument tables and the functions listed below aside); no import cycle between
inceptionzoo modules, counting the imports inside functions; and an import of a package module
inside a function only for an optional extra or the command line's start-up time, with a
comment saying which."""
import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "inceptionzoo"

#: the longest a function may be, in lines of code (its docstring not counted: a long
#: Parameters section documents, it does not add steps)
MAX_LINES = 60

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


#: the comment an import inside a function must carry (on its line, its last line or the line
#: above): why it is not at the top of the module. Only two reasons count: the module it
#: imports needs an optional extra (``# optional extra: onnx``), or the command line starts
#: faster without it (``# CLI start-up: ...``); any other import of a package module belongs
#: at module level, where the import graph shows it.
LAZY_REASON = re.compile(r"#.*\b(optional extra: [\w.-]+|CLI start-up\b)")


def _imports(tree):
    """``(import node, inside a function)`` of every import statement of a module: at module
    level, under ``if``/``try``/``with``, in class bodies and inside functions alike."""
    def walk(node, inside):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, inside
            else:
                yield from walk(child, inside or isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    yield from walk(tree, False)


def _targets(node, name, path, modules):
    """The package modules an import statement of module ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
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
    return {t for t in targets if t in modules and t != name}


def import_graph(modules=None):
    """``{module: set of inceptionzoo modules it imports}``, counting every import: at module
    level, in class bodies and inside functions."""
    modules = modules or _modules()
    graph = {}
    for name, path in modules.items():
        graph[name] = set()
        for node, _ in _imports(ast.parse(path.read_text(), str(path))):
            graph[name] |= _targets(node, name, path, modules)
    return graph


def lazy_imports(modules=None):
    """``[(module, line, imported modules, reason or None)]`` of the imports of package modules
    made inside functions; the reason is the :data:`LAZY_REASON` comment, None without one."""
    modules = modules or _modules()
    found = []
    for name, path in modules.items():
        text = path.read_text()
        lines = text.splitlines()
        for node, inside in _imports(ast.parse(text, str(path))):
            targets = _targets(node, name, path, modules)
            if not (inside and targets):
                continue
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            near = [lines[node.lineno - 1], lines[node.end_lineno - 1]] + (
                [above] if above.startswith("#") else [])
            reason = next((m.group(1) for m in map(LAZY_REASON.search, near) if m), None)
            found.append((name, node.lineno, sorted(targets), reason))
    return found


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
    assert "inceptionzoo.train" in graph["inceptionzoo.cli._commands_training"]  # inside a function


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


#: the creation stack, bottom up (timm's layering): the registry is data, the builder loads
#: weights into networks, the families declare networks, then the feature wrapper and the
#: factory (``get_model``); a layer imports only those below it
CREATION_STACK = ["_registry", "_builder", "models", "_features", "_factory"]


def _reach(graph, start):
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), list(start)
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_creation_stack_imports_one_way():
    graph = import_graph()

    def layer(short):
        return {m for m in graph if m == f"inceptionzoo.{short}"
                or m.startswith(f"inceptionzoo.{short}.")}

    for i, short in enumerate(CREATION_STACK):
        above = set().union(*(layer(s) for s in CREATION_STACK[i + 1:]))
        wrong = sorted(_reach(graph, layer(short)) & above)
        assert not wrong, f"{short} reaches a layer above it: {wrong}"


def test_imports_inside_functions_say_why():
    """The layers import one way at module level; what a function imports late is an optional
    extra's module or a command the CLI loads only when it runs (the comment names which)."""
    silent = [f"{m}:{line} imports {', '.join(t)}" for m, line, t, why in lazy_imports()
              if why is None]
    assert not silent, ("imports of package modules inside functions without '# optional "
                        "extra: NAME' or '# CLI start-up: ...' (move them to the top of the "
                        "module, or say why they wait): " + "; ".join(silent))


@pytest.mark.parametrize("source, expected", [
    ("def f():\n" + "    x = 1\n" * (MAX_LINES + 1), {"m.f": MAX_LINES + 2}),
    ("class C:\n    def g(self):\n        '''doc\n''' \n" + "        x = 1\n" * (MAX_LINES - 1),
     {}),
    ("def f():\n    def inner():\n" + "        x = 1\n" * (MAX_LINES + 1),
     {"m.f": MAX_LINES + 3, "m.f.inner": MAX_LINES + 2}),
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
    # b's f imports a (inside a function), and b imports c under a ``try``
    assert import_cycles(import_graph(modules)) == [["pkg.a", "pkg.b"], ["pkg.a", "pkg.b", "pkg.c"]]
    (pkg / "c.py").write_text("import os\n")
    assert import_cycles(import_graph(modules)) == [["pkg.a", "pkg.b"]]
    (pkg / "b.py").write_text("class B:\n    from . import c\n")
    (pkg / "c.py").write_text("def g():\n    return lambda: __import__('x')\n"
                              "def h():\n    import pkg.b\n")
    assert import_cycles(import_graph(modules)) == [["pkg.b", "pkg.c"]]  # a class body, too
    (pkg / "c.py").write_text("import os\n")
    assert import_cycles(import_graph(modules)) == []


def test_the_lazy_import_check_wants_a_reason(tmp_path):
    (tmp_path / "a.py").write_text(
        "import os\n"
        "from . import b\n"                                # module level: no reason needed
        "def f():\n"
        "    from . import b\n"                            # 4: no reason
        "    from . import c  # optional extra: onnx\n"    # 5
        "    # CLI start-up: the training loop\n"
        "    from .b import (x,\n"                         # 7: the reason above
        "                    y)\n"
        "    from . import (b,\n"                          # 9: the reason on its last line
        "                   c)  # CLI start-up\n"
        "    import json\n"                                # not a package module
        "    from . import c  # c is slow\n"               # 12: not a reason
        "    from . import c  # optional extra:\n")        # 13: names no extra
    (tmp_path / "b.py").write_text("")
    (tmp_path / "c.py").write_text("")
    modules = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py",
               "pkg.c": tmp_path / "c.py"}
    assert lazy_imports(modules) == [
        ("pkg.a", 4, ["pkg.b"], None), ("pkg.a", 5, ["pkg.c"], "optional extra: onnx"),
        ("pkg.a", 7, ["pkg.b"], "CLI start-up"), ("pkg.a", 9, ["pkg.b", "pkg.c"], "CLI start-up"),
        ("pkg.a", 12, ["pkg.c"], None), ("pkg.a", 13, ["pkg.c"], None)]


#: the most lines a module has without a reason in its opening docstring
MAX_MODULE_LINES = 500


def long_modules(modules=None):
    """``{module: lines}`` of the modules over :data:`MAX_MODULE_LINES` lines whose docstring
    does not say why (a sentence starting ``Over 500 lines:``)."""
    found = {}
    for name, path in (modules or _modules()).items():
        text = path.read_text()
        lines = text.count("\n")
        doc = ast.get_docstring(ast.parse(text, str(path))) or ""
        if lines > MAX_MODULE_LINES and "Over 500 lines:" not in " ".join(doc.split()):
            found[name] = lines
    return found


def test_no_module_is_long_without_a_reason():
    assert not long_modules(), (f"modules over {MAX_MODULE_LINES} lines: split them by job, or "
                                f"say why in the docstring ('Over 500 lines: ...'): "
                                f"{long_modules()}")


def test_the_module_length_check_wants_a_reason(tmp_path):
    (tmp_path / "long.py").write_text('"""A module."""\n' + "x = 1\n" * 501)
    (tmp_path / "why.py").write_text('"""A module. (Over 500\nlines: one table.)"""\n'
                                     + "x = 1\n" * 501)
    (tmp_path / "short.py").write_text("x = 1\n")
    mods = {f"pkg.{n}": tmp_path / f"{n}.py" for n in ("long", "why", "short")}
    assert long_modules(mods) == {"pkg.long": 502}
