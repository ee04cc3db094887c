"""One errors module: every exception class of the library derives from one base class, lives in
``inceptionzoo.errors`` and is exported from ``inceptionzoo``, so that one ``except`` clause
catches anything the library refuses."""
import ast
import importlib
import inspect
import pathlib
import pkgutil

import numpy as np
import pytest

import inceptionzoo
from inceptionzoo import errors
from inceptionzoo.errors import InceptionZooError

#: the exception classes kept outside ``errors``: the MMS handler and the image module it
#: imports are copied into a ``.mar`` and run without inceptionzoo installed (the library turns
#: an ``ImageError`` into a ``PredictionError`` / ``DataError`` naming the input)
STANDALONE = {("inceptionzoo.mms_handler", "BadRequest"), ("inceptionzoo.imaging", "ImageError")}


def _library_exceptions():
    """(module, class) of every exception class defined in an inceptionzoo module."""
    found = set()
    for mod in pkgutil.walk_packages(inceptionzoo.__path__, "inceptionzoo."):
        module = importlib.import_module(mod.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            # private classes (``checkpoints._Bad``) are signals inside one module, caught
            # there and re-raised as a library error (the reader's fuzz tests check that
            # nothing else escapes)
            if (issubclass(obj, BaseException) and obj.__module__.startswith("inceptionzoo")
                    and not obj.__name__.startswith("_")):
                found.add((obj.__module__, obj.__name__))
    return found


def test_every_library_error_lives_in_errors_derives_from_the_base_and_is_exported():
    found = _library_exceptions()
    assert STANDALONE <= found  # the walk does see modules' own classes
    for module, name in sorted(found - STANDALONE):
        assert module == "inceptionzoo.errors", f"{module}.{name} is not defined in errors.py"
    public = {name for name, obj in vars(errors).items()
              if inspect.isclass(obj) and issubclass(obj, BaseException)}
    assert public == set(errors.__all__) == {name for _, name in found - STANDALONE}
    for name in public:
        cls = getattr(errors, name)
        assert issubclass(cls, InceptionZooError) and issubclass(cls, ValueError), name
        assert name in inceptionzoo.__all__ and getattr(inceptionzoo, name) is cls, name


def test_old_import_paths_give_the_same_classes():
    from inceptionzoo._registry import UnknownModelError
    from inceptionzoo.convert import ConversionError
    from inceptionzoo.mnist import DataError
    from inceptionzoo.serving import PredictionError
    from inceptionzoo.train import DivergedError
    from inceptionzoo.weights import WeightsError

    assert (UnknownModelError, ConversionError, DataError, PredictionError, DivergedError,
            WeightsError) == (errors.UnknownModelError, errors.ConversionError,
                              errors.DataError, errors.PredictionError, errors.DivergedError,
                              errors.WeightsError)


def _refusals(tmp_path):
    """Real refusals of several modules: (what, call, the class it must raise)."""
    from inceptionzoo._context import parse_ctx
    from inceptionzoo.convert import convert
    from inceptionzoo.mnist import read_idx
    from inceptionzoo.export import export
    from inceptionzoo.datasets import open_sources
    from inceptionzoo.export import export_prefix
    from inceptionzoo.graph_tuning import TunedGraph
    from inceptionzoo.launch import launch, read_hostfile
    from inceptionzoo.serving import Predictor
    from inceptionzoo.train import evaluate, train
    from inceptionzoo.transforms import normalisation

    garbage = tmp_path / "garbage-idx"
    garbage.write_bytes(b"\x00\x01")
    (tmp_path / "hosts").write_text("# no host\n")
    return [
        ("unknown model", lambda: inceptionzoo.get_model("no_such_net"),
         errors.UnknownModelError),
        ("model name of another type", lambda: inceptionzoo.get_model(3), errors.WrongTypeError),
        ("export of a non-block", lambda: export(object(), str(tmp_path / "x")),
         errors.WrongTypeError),
        ("weights file that is missing",
         lambda: inceptionzoo.get_model("inception_mnist", pretrained=str(tmp_path / "no.params")),
         errors.WeightsError),
        ("truncated IDX file", lambda: read_idx(str(garbage)), errors.DataError),
        ("unknown converter source",
         lambda: convert("nosuch:inception_v3", str(garbage), str(tmp_path / "o.params")),
         errors.ConversionError),
        ("export folder that is missing", lambda: Predictor(str(tmp_path / "none")),
         errors.PredictionError),
        ("bad context", lambda: parse_ctx("tpu0"), InceptionZooError),
        ("graph without that input",
         lambda: TunedGraph(__import__("mxnet").sym.var("x") * 2, {}, input_name="data"),
         InceptionZooError),
        # the checks of train, evaluate, datasets, export, launch and the networks (each
        # refuses before any data is read or process started)
        ("unknown recipe", lambda: train(recipe="no_such_recipe"), InceptionZooError),
        ("bad seed", lambda: train(seed=-1, out=str(tmp_path / "run")), InceptionZooError),
        ("resume without a folder", lambda: train(resume=True), InceptionZooError),
        ("evaluate without weights", lambda: evaluate(), InceptionZooError),
        ("zero decoding threads", lambda: open_sources(None, None, threads=0),
         InceptionZooError),
        ("export name with a folder part", lambda: export_prefix(str(tmp_path), "a/b"),
         InceptionZooError),
        ("launch without a command", lambda: launch([]), InceptionZooError),
        ("empty hostfile", lambda: read_hostfile(str(garbage.with_name("hosts"))),
         InceptionZooError),
        ("std of zero", lambda: normalisation(0.5, 0.0, 1), InceptionZooError),
        ("features without features_only",
         lambda: inceptionzoo.get_model("inception_mnist", out_indices=(0,)), InceptionZooError),
        ("input of the wrong shape",
         lambda: _initialised("inception_mnist")(__import__("mxnet").nd.zeros((1, 3, 28, 28))),
         InceptionZooError),
        ("negative classes", lambda: inceptionzoo.get_model("inception_mnist", classes=-1),
         InceptionZooError),
        ("an option the network does not take",
         lambda: inceptionzoo.get_model("googlenet", bogus=1), InceptionZooError),
    ]


def _initialised(name):
    net = inceptionzoo.get_model(name)
    net.initialize()
    return net


def test_one_clause_catches_every_refusal(tmp_path):
    for what, call, cls in _refusals(tmp_path):
        with pytest.raises(InceptionZooError) as info:
            call()
        assert type(info.value) is cls, (what, type(info.value))
        assert str(info.value), what


def test_type_refusals_are_also_type_errors():
    with pytest.raises(TypeError, match="a model name must be a str, got int"):
        inceptionzoo.get_model(3)
    with pytest.raises(TypeError, match="export needs a HybridBlock or a model name; got ndarray"):
        from inceptionzoo.export import export

        export(np.zeros(3), "unused")


#: modules that may still raise a plain ``ValueError`` / ``TypeError``, with the reason
PLAIN_OK = {
    # copied into a .mar and run in MMS without inceptionzoo: no import of errors possible
    "mms_handler.py": "standalone",
    "imaging.py": "standalone",
}


def _plain_raises(source):
    """Line numbers of ``raise ValueError(...)`` / ``raise TypeError(...)`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                isinstance(node.exc.func, ast.Name) and \
                node.exc.func.id in ("ValueError", "TypeError"):
            found.append(node.lineno)
    return sorted(found)


def test_no_plain_value_or_type_error_is_raised_in_the_package():
    package = pathlib.Path(inceptionzoo.__file__).parent
    found = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        lines = _plain_raises(path.read_text())
        if lines and rel not in PLAIN_OK:
            found[rel] = lines
    assert not found, ("raise an inceptionzoo.errors class (InceptionZooError or a subclass), "
                       f"not a plain ValueError/TypeError: {found}")


def test_the_raise_check_sees_a_plain_raise():
    assert _plain_raises("def f(x):\n    if x:\n        raise ValueError('x')\n"
                         "    raise TypeError(f'{x}')\n") == [3, 4]
    assert _plain_raises("from .errors import DataError\nraise DataError('x')\n"
                         "try:\n    pass\nexcept ValueError:\n    raise\n") == []
