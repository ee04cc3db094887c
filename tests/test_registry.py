import pytest

import inceptionzoo
from inceptionzoo import (ModelInfo, UnknownModelError, get_model, list_models, model_info,
                          register_model)
from inceptionzoo._registry import _natural_key, _unregister


@pytest.fixture
def scratch_models():
    """Register throw-away models for the duration of one test."""
    names = []

    def add(name):
        register_model(name, description="t", input_shape=(1, 4, 4), classes=2,
                       variant="reduced", num_params=0)(lambda **kw: None)
        names.append(name)

    yield add
    for n in names:
        _unregister(n)


def test_registered_names_are_lower_case_and_sorted():
    names = list_models()
    assert names == sorted(names, key=_natural_key)
    assert all(n == n.lower() for n in names)
    assert {"inception_mnist", "inception_naive_mnist"} <= set(names)


def test_list_models_returns_a_new_list():
    a = list_models()
    a.append("junk")
    assert "junk" not in list_models()


def test_natural_order(scratch_models):
    for n in ["zz_net10", "zz_net2", "zz_net1"]:
        scratch_models(n)
    assert list_models("zz_*") == ["zz_net1", "zz_net2", "zz_net10"]


@pytest.mark.parametrize("include,exclude,expected", [
    (None, None, ["inception_mnist", "inception_naive_mnist"]),
    ("*", None, ["inception_mnist", "inception_naive_mnist"]),
    ("", None, ["inception_mnist", "inception_naive_mnist"]),      # empty include: no filter
    ([], None, ["inception_mnist", "inception_naive_mnist"]),
    ("*naive*", None, ["inception_naive_mnist"]),
    ("INCEPTION_NAIVE*", None, ["inception_naive_mnist"]),           # patterns ignore case
    (["inception_mnist", "*naive*"], None, ["inception_mnist", "inception_naive_mnist"]),
    ("*mnist", "*naive*", ["inception_mnist"]),
    ("*mnist", ["*naive*", "inception_mnist"], []),
    ("*mnist", "", ["inception_mnist", "inception_naive_mnist"]),    # empty exclude: none
    ("*mnist", [], ["inception_mnist", "inception_naive_mnist"]),
    ("nothing*", None, []),
    (None, "*", []),
])
def test_include_exclude(include, exclude, expected):
    got = list_models(include, exclude)
    assert [n for n in got if n.endswith("mnist")] == expected


def test_duplicate_name_refused(scratch_models):
    scratch_models("zz_dup")
    with pytest.raises(ValueError, match="already registered"):
        register_model("zz_dup", description="t", input_shape=(1, 4, 4), classes=2,
                       variant="reduced", num_params=0)(lambda **kw: None)
    with pytest.raises(ValueError, match="already registered"):  # case-insensitive
        register_model("ZZ_Dup", description="t", input_shape=(1, 4, 4), classes=2,
                       variant="reduced", num_params=0)(lambda **kw: None)


def test_decorator_returns_the_function_unchanged(scratch_models):
    def zz_fn(**kw):
        return 42

    out = register_model(description="t", input_shape=(1, 4, 4), classes=2, variant="naive",
                         num_params=0)(zz_fn)
    try:
        assert out is zz_fn
        assert "zz_fn" in list_models()
    finally:
        _unregister("zz_fn")


@pytest.mark.parametrize("name,suggestion", [
    ("inception_mnst", "inception_mnist"),
    ("inception_naive", "inception_naive_mnist"),
    ("incepton_naive_mnist", "inception_naive_mnist"),
])
def test_unknown_name_suggests_close_names(name, suggestion):
    for fn in (get_model, model_info):
        with pytest.raises(UnknownModelError) as exc:
            fn(name)
        msg = str(exc.value)
        assert repr(name) in msg and f"Did you mean '{suggestion}'" in msg
        assert "Registered models: " in msg and "inception_mnist" in msg


def test_unknown_name_without_close_match_lists_models():
    with pytest.raises(UnknownModelError) as exc:
        get_model("resnet50")
    assert "Did you mean" not in str(exc.value)
    assert "inception_mnist" in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_names_are_case_insensitive():
    net = get_model("Inception_MNIST")
    assert net.info.name == "inception_mnist"
    assert model_info("INCEPTION_MNIST") == model_info("inception_mnist")


def test_model_info_is_a_copy():
    a = model_info("inception_mnist")
    assert isinstance(a, ModelInfo)
    if a.pretrained is not None:
        a.pretrained["sha1"] = "x"
    b = model_info("inception_mnist")
    assert b.pretrained is None or b.pretrained["sha1"] != "x"
    with pytest.raises(Exception):
        a.classes = 3  # frozen


def test_built_model_carries_its_info():
    net = get_model("inception_mnist")
    assert net.info == model_info("inception_mnist")
    net5 = get_model("inception_mnist", classes=5)
    assert net5.info.classes == 5
    assert net5.info.num_params == model_info("inception_mnist").num_params - (2304 + 1) * 5


def test_public_names():
    for n in inceptionzoo.__all__:
        assert hasattr(inceptionzoo, n)
