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


ZZ = ["zz_alpha_net", "zz_beta_net", "zz_beta_net2"]
ALL = "every registered model"


@pytest.mark.parametrize("include,exclude,expected", [
    (None, None, ALL),
    ("*", None, ALL),
    ("", None, ALL),                                    # empty include: no filter
    ([], None, ALL),
    ("zz_*", None, ZZ),
    ("ZZ_BETA*", None, ["zz_beta_net", "zz_beta_net2"]),  # patterns ignore case
    (["zz_alpha_net", "*beta_net2"], None, ["zz_alpha_net", "zz_beta_net2"]),
    ("zz_*", "*beta*", ["zz_alpha_net"]),
    ("zz_*", ["*beta*", "zz_alpha*"], []),
    ("zz_*", "", ZZ),                                   # empty exclude: none
    ("zz_*", [], ZZ),
    ("nothing*", None, []),
    (None, "*", []),
])
def test_include_exclude(scratch_models, include, exclude, expected):
    for name in ZZ:
        scratch_models(name)
    got = list_models(include, exclude)
    if expected is ALL:
        from inceptionzoo._registry import _ENTRIES

        expected = sorted(_ENTRIES, key=_natural_key)
        assert set(ZZ) <= set(got)
    assert got == expected  # the whole list: no other model may leak in


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
    import dataclasses

    a = model_info("inception_mnist")
    assert isinstance(a, ModelInfo) and a.pretrained is None  # no weights loaded
    net = get_model("inception_mnist", pretrained=True)
    sha1 = net.info.pretrained["sha1"]  # inception_mnist ships weights
    net.info.pretrained["sha1"] = "y"
    assert get_model("inception_mnist", pretrained=True).info.pretrained["sha1"] == sha1
    assert model_info("inception_mnist") == a
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.classes = 3


def test_built_model_carries_its_info():
    net = get_model("inception_mnist")
    assert net.info == model_info("inception_mnist")
    net5 = get_model("inception_mnist", classes=5)
    assert net5.info.classes == 5
    assert net5.info.num_params == model_info("inception_mnist").num_params - (2304 + 1) * 5


@pytest.mark.parametrize("name", list_models())
def test_metadata_describes_the_network_built(name):
    """Checked for the networks the model's own ``example_options`` build (every model
    declares some, so that its metadata is checked for a network other than its default)."""
    from inceptionzoo._registry import model_examples
    from inceptionzoo.cost import count, num_params

    examples = model_examples(name).options
    assert examples, f"declare example_options=[...] in {name!r}'s register_model"
    default = model_info(name)
    for options in examples:
        net = get_model(name, **options)
        info = net.info
        assert info.num_params == num_params(net), options
        assert info.input_shape[0] == net.in_channels, options
        assert info.classes == options.get("classes", default.classes), options
        assert info.macs == count(net, info.input_shape).macs, options
        assert len(info.mean) == len(info.std) == info.input_shape[0], options
        assert info.pretrained is None, options  # no shipped weights fit another network
    # the registry's own record is untouched
    assert model_info(name) == default


def test_metadata_of_changed_networks_differs_where_it_must():
    assert get_model("googlenet", batch_norm=True).info.num_params == 7005832
    assert get_model("googlenet", aux_logits=True).info.num_params == 13378280
    assert get_model("inception_mnist", in_channels=3).info.input_shape == (3, 28, 28)
    # timm's spellings: no classifier (1024 x 1000 + 1000 fewer), one input channel (64 x 7 x 7
    # x 2 fewer weights in conv1)
    assert get_model("googlenet", num_classes=0).info.num_params == 6998552 - 1025000
    info = get_model("googlenet", in_chans=1).info
    assert info.input_shape == (1, 224, 224) and info.num_params == 6998552 - 64 * 49 * 2


def test_public_names():
    """``__all__`` is exactly the package's public namespace (submodules aside), without
    repeats, and a star import gives exactly those names."""
    import types

    public = {n for n, v in vars(inceptionzoo).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    exported = inceptionzoo.__all__
    assert len(exported) == len(set(exported)), "a name is listed twice in __all__"
    assert set(exported) - {"__version__"} == public, (
        f"in the namespace but not exported: {sorted(public - set(exported))}; exported but "
        f"not defined: {sorted(set(exported) - public - {'__version__'})}")
    namespace = {}
    exec("from inceptionzoo import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(exported)


def test_a_new_family_file_registers_itself(tmp_path):
    """Dropping a file into models/ is all it takes: no list of modules to edit."""
    import os
    import shutil
    import subprocess
    import sys

    src = os.path.dirname(inceptionzoo.__file__)
    copy = tmp_path / "inceptionzoo"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "models" / "zz_throwaway.py").write_text(
        "from .._registry import register_model\n"
        "from .inception_mnist import InceptionMNIST\n\n\n"
        "@register_model(description='t', input_shape=(1, 28, 28), classes=10,\n"
        "                variant='reduced', num_params=0)\n"
        "def zz_throwaway(**kwargs):\n"
        "    return InceptionMNIST(**kwargs)\n")
    code = ("import inceptionzoo; print(inceptionzoo.__file__); "
            "print('zz_throwaway' in inceptionzoo.list_models())")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(copy / "__init__.py"), "True"]


def test_parameters_and_macs_are_counted_not_written(monkeypatch):
    """register_model needs no hand-counted num_params / macs: the first model_info counts
    them on the default network, once per process."""
    from inceptionzoo.cost import count, num_params
    from inceptionzoo.models.inception_mnist import InceptionMNIST

    builds = []

    def zz_counted(**kwargs):
        builds.append(kwargs)
        return InceptionMNIST(classes=kwargs.get("classes", 7))

    register_model("zz_counted", description="t", input_shape=(1, 28, 28), classes=7,
                   variant="reduced")(zz_counted)
    try:
        first, again = model_info("zz_counted"), model_info("ZZ_COUNTED")
        assert len(builds) == 1
        net = InceptionMNIST(classes=7)
        assert first.num_params == again.num_params == num_params(net) > 0
        assert first.macs == again.macs == count(net, (1, 28, 28)).macs > 0
    finally:
        _unregister("zz_counted")


@pytest.mark.parametrize("keywords, words", [
    ({"example_options": {"classes": 5}}, "example_options of 'zz_bad_examples' must be a list"),
    ({"example_options": "classes=5"}, "must be a list of non-empty dicts"),
    ({"example_options": [{}]}, "must be a list of non-empty dicts"),
    ({"example_options": [{"classes": 5}, "classes=5"]}, "must be a list of non-empty dicts"),
    ({"published_gmacs": 0}, "published_gmacs of 'zz_bad_examples' must be a number > 0"),
    ({"published_gmacs": True}, "must be a number > 0; got True"),
])
def test_declared_examples_are_checked_at_registration(keywords, words):
    import re

    with pytest.raises(ValueError, match=re.escape(words)):
        register_model("zz_bad_examples", description="t", input_shape=(1, 4, 4), classes=2,
                       variant="reduced", num_params=0, **keywords)(lambda **kw: None)
    assert "zz_bad_examples" not in list_models()


def test_model_examples_are_what_the_model_file_declares():
    from inceptionzoo._registry import ModelExamples, model_examples

    register_model("zz_examples", description="t", input_shape=(1, 4, 4), classes=2,
                   variant="reduced", num_params=0, example_options=[{"classes": 3}],
                   published_gmacs=1.5)(lambda **kw: None)
    try:
        got = model_examples("ZZ_Examples")
        assert got == ModelExamples(({"classes": 3},), 1.5)
        got.options[0]["classes"] = 7  # a copy
        assert model_examples("zz_examples").options == ({"classes": 3},)
    finally:
        _unregister("zz_examples")
    assert model_examples("inception_v3").published_gmacs == 5.713
    with pytest.raises(UnknownModelError):
        model_examples("zz_examples")
