"""Docstrings that stay true: every module's examples run, and every public callable with
arguments documents them in a numpydoc ``Parameters`` section."""
import doctest
import importlib
import inspect
import pkgutil

import pytest

import inceptionzoo

MODULES = sorted(m.name for m in pkgutil.walk_packages(inceptionzoo.__path__, "inceptionzoo.")
                 if not m.name.startswith("inceptionzoo.peers"))


@pytest.mark.parametrize("module", ["inceptionzoo"] + MODULES)
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {module} failed"


def _documented_arguments(obj):
    """Names of ``obj``'s arguments that need documenting (not self/cls/*args/**kwargs)."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _public_callables():
    """What users reach: the ``__all__`` of public modules and the package's own ``__all__``
    (whose names live in private modules such as ``_registry``)."""
    for module in MODULES:
        mod = importlib.import_module(module)
        private = any(part.startswith("_") for part in module.split("."))
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if private and name not in inceptionzoo.__all__:
                continue
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module:
                yield module, name, obj


def _section_names(doc, section):
    """Names listed in a numpydoc section: its unindented lines, ``a, b : type`` or ``a``."""
    lines = doc.splitlines()
    header = [i for i in range(len(lines) - 1)
              if lines[i].strip() == section and set(lines[i + 1].strip()) == {"-"}]
    if not header:
        return None
    names = set()
    for line in lines[header[0] + 2:]:
        if line and not line.startswith(" "):
            if line.strip() and set(lines[lines.index(line) + 1].strip() if
                                    lines.index(line) + 1 < len(lines) else "") == {"-"}:
                break  # the next section
            names.update(n.strip().lstrip("*") for n in line.split(" : ")[0].split(","))
    return names


def test_public_callables_document_their_parameters():
    missing = []
    for module, name, obj in _public_callables():
        if inspect.isclass(obj) and issubclass(obj, Exception):
            continue
        args = _documented_arguments(obj)
        if not args:
            continue
        doc = inspect.getdoc(obj) or ""
        section = "Parameters"
        listed = _section_names(doc, section)
        if listed is None and inspect.isclass(obj):  # a record: its fields are its arguments
            section = "Attributes"
            listed = _section_names(doc, section)
        if listed is None:
            missing.append(f"{module}.{name}({', '.join(args)}): no {section} section")
        elif set(args) - listed:
            missing.append(f"{module}.{name}: {', '.join(a for a in args if a not in listed)} "
                           f"not in {section}")
    assert not missing, "public callables without numpydoc Parameters:\n" + "\n".join(missing)
