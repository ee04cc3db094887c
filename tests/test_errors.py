"""One errors module: every exception class of the library derives from one base class, lives in
``inceptionzoo.errors`` and is exported from ``inceptionzoo``, so that one ``except`` clause
catches anything the library refuses."""
import importlib
import inspect
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
    from inceptionzoo.inference import InferenceGraph
    from inceptionzoo.serving import Predictor

    garbage = tmp_path / "garbage-idx"
    garbage.write_bytes(b"\x00\x01")
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
         lambda: InferenceGraph(__import__("mxnet").sym.var("x") * 2, {}, input_name="data"),
         InceptionZooError),
    ]


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
