"""One model API on every registered network, under the zoo's names and timm's:
``features`` / ``forward_features``, ``head`` / ``forward_head(x, pre_logits)``,
``get_classifier``, ``classifier_names``, ``reset_classifier``, ``num_features``,
``feature_info`` (``channels()`` / ``reduction()``, ``num_chs``), ``num_classes`` (0: pooled
features), ``in_chans`` (pretrained weights adapted as timm does) and
``get_model(NAME, features_only=True, out_indices=...)``, which hybridizes and exports; the
networks' options are checked. Registry-driven; the ImageNet networks run at their smallest
input and are marked slow."""
import re

import mxnet as mx
import numpy as np
import pytest

from conftest import built, model_params, test_shape
from inceptionzoo import InceptionZooError, get_model, list_models, model_info
from inceptionzoo._registry import model_examples
from inceptionzoo.cost import num_params
from inceptionzoo.models._base import adapt_input_conv

#: options with extra classifiers (auxiliary heads): those the model files declare among their
#: example_options
AUX = {n: {"aux_logits": True} for n in list_models()
       if any(o.get("aux_logits") for o in model_examples(n).options)}


@pytest.mark.parametrize("name", model_params())
def test_features_then_head_is_the_network(name):
    net, x = built(name)
    feats = net.features(x)
    last = net.feature_info[-1]
    assert feats.shape[:2] == (x.shape[0], last["channels"])
    np.testing.assert_allclose(net.head(feats).asnumpy(), net(x).asnumpy(), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("name", list_models())
def test_classifier_names_are_the_dense_layers_that_output_the_classes(name):
    for options in [{}] + ([AUX[name]] if name in AUX else []):
        net = get_model(name, classes=7, **options)
        names = net.classifier_names()
        params = net._collect_params_with_prefix()
        assert names and set(names) <= set(params)
        assert {n for n in names if n.endswith(".weight")} == {
            k for k, p in params.items() if k.endswith(".weight") and p.shape[0] == 7}
        out = net(mx.sym.var("data"))  # the logits, and the aux heads' with aux_logits
        heads = len(out) if isinstance(out, tuple) else len(out.list_outputs())
        assert len(names) == 2 * heads and (heads >= 2 if options else heads == 1)


@pytest.mark.parametrize("name", model_params())
def test_reset_classifier(name):
    net, x = built(name)
    net.hybridize()
    net(x)  # a cached graph exists: the reset must replace it
    before = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}
    names = net.classifier_names()
    net.reset_classifier(3)
    assert net.classifier_names() == names  # the same structural (and file) names
    out = net(x)
    assert out.shape == (x.shape[0], 3) and np.isfinite(out.asnumpy()).all()
    after = net._collect_params_with_prefix()
    assert set(after) == set(before)
    for k, v in before.items():
        if k in names:
            assert after[k].shape[0] == 3
        else:
            np.testing.assert_array_equal(after[k].data().asnumpy(), v, err_msg=k)
    assert net.classes == 3 and net.info.classes == 3 and net.info.num_params == num_params(net)
    assert net.info.class_names is None
    with pytest.raises(ValueError, match="classes must be an integer >= 0; got -1"):
        net.reset_classifier(-1)


@pytest.mark.parametrize("name", [n if model_info(n).input_shape[1] <= 224 else
                                  pytest.param(n, marks=pytest.mark.slow) for n in sorted(AUX)])
def test_reset_classifier_resets_the_auxiliary_heads_too(name):
    net = get_model(name, **AUX[name])
    net.reset_classifier(4)
    net.initialize()
    side = next(s for s in range(1, 400) if net._fits(s, 0))  # the aux heads' smallest input
    outs = net(mx.nd.zeros((1, 3, side, side)))
    assert [o.shape for o in outs] == [(1, 4)] * len(outs) and len(outs) >= 2


def test_an_uninitialised_network_gets_an_uninitialised_classifier():
    net = get_model("inception_mnist")
    net.reset_classifier(2)
    assert net.output.weight._data is None
    net.initialize()
    assert net(mx.nd.zeros((1, 1, 28, 28))).shape == (1, 2)


@pytest.mark.parametrize("name", model_params())
def test_feature_info_matches_the_maps_of_features_only(name):
    net, x = built(name)
    info = net.feature_info
    assert len(info) >= 3
    reductions = [s["reduction"] for s in info]
    assert reductions == sorted(set(reductions))
    assert all(r & (r - 1) == 0 for r in reductions)  # powers of 2
    feats = get_model(name, features_only=True)
    feats.initialize(mx.init.Xavier())
    maps = feats(x)
    assert isinstance(maps, tuple) and len(maps) == len(info)
    h = x.shape[2]
    for m, stage in zip(maps, info):
        assert m.shape[1] == stage["channels"], (stage, m.shape)
        assert abs(m.shape[2] - h / stage["reduction"]) <= max(3, h / stage["reduction"] / 2), \
            (stage, m.shape, h)
    assert maps[-1].shape[1:] == net.features(x).shape[1:]


@pytest.mark.parametrize("name", model_params())
def test_features_only_hybridizes_and_exports(name, tmp_path):
    mx.random.seed(0)
    feats = get_model(name, features_only=True, out_indices=(1, -1))
    feats.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2,) + test_shape(name))
    want = [m.asnumpy() for m in feats(x)]
    stages = get_model(name).feature_info
    assert feats.feature_info == [stages[1], stages[-1]]
    assert [w.shape[1] for w in want] == [stages[1]["channels"], stages[-1]["channels"]]
    feats.hybridize(static_alloc=True, static_shape=True)
    for got, ref in zip(feats(x), want):
        np.testing.assert_allclose(got.asnumpy(), ref, rtol=1e-4, atol=1e-5)
    feats.export(str(tmp_path / name))
    loaded = mx.gluon.SymbolBlock.imports(str(tmp_path / f"{name}-symbol.json"), ["data"],
                                          str(tmp_path / f"{name}-0000.params"))
    outs = loaded(x)
    assert len(outs) == 2
    for got, ref in zip(outs, want):
        np.testing.assert_allclose(got.asnumpy(), ref, rtol=1e-4, atol=1e-5)
    # neither the classifier nor the layers after the last stage are part of the export
    assert len(feats.collect_params().keys()) < len(get_model(name).collect_params().keys())
    saved = mx.nd.load(str(tmp_path / f"{name}-0000.params"))
    assert {k.split(":", 1)[1] for k in saved} == set(feats.collect_params().keys())


def test_features_only_checks_its_arguments():
    for bad in [(5,), "a", "12", [1.7], [True], [], 1]:
        with pytest.raises(InceptionZooError, match=r"out_indices must be a list or tuple of "
                           r"integers in \[-3, 2\] \(3 stages of inception_mnist: \['block1', "
                           r"'block2', 'block3'\]\); got " + re.escape(repr(bad))):
            get_model("inception_mnist", features_only=True, out_indices=bad)
    assert get_model("inception_mnist", features_only=True,
                     out_indices=[np.int64(-1)]).out_indices == (2,)
    with pytest.raises(ValueError, match="needs features_only=True"):
        get_model("inception_mnist", out_indices=(0,))
    feats = get_model("inception_mnist", features_only=True, pretrained=True)
    with pytest.raises(ValueError, match="expects 1 input channel"):
        feats(mx.nd.zeros((1, 3, 28, 28)))
    maps = feats(mx.nd.zeros((1, 1, 28, 28)))  # the shipped weights, shared
    assert [m.shape for m in maps] == [(1, 32, 28, 28), (1, 64, 13, 13), (1, 64, 6, 6)]


def test_the_stage_table_of_the_docs_is_the_registry():
    import os

    from conftest import ROOT

    text = open(os.path.join(ROOT, "docs", "models.md")).read()
    table = text.split("<!-- feature-info:begin -->")[1].split("<!-- feature-info:end -->")[0]
    rows = [m.group(0) for m in re.finditer(r"^\| `\w+` \| .+ \|$", table, re.M)]
    want = ["| `{}` | {} |".format(name, ", ".join(
        f"`{s['module']}` {s['channels']}/{s['reduction']}" for s in get_model(name).feature_info))
        for name in list_models()]
    assert rows == want, "the rows docs/models.md needs:\n" + "\n".join(want)


# --- timm's names ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", model_params())
def test_timm_names_are_the_zoos(name):
    net, x = built(name)
    feats = net.forward_features(x)
    want = net(x).asnumpy()
    np.testing.assert_allclose(net.forward_head(feats).asnumpy(), want, rtol=1e-5, atol=1e-6)
    pooled = net.forward_head(feats, pre_logits=True)
    assert pooled.shape == (x.shape[0], net.num_features)
    classifier = net.get_classifier()
    assert isinstance(classifier, mx.gluon.nn.Dense) and classifier.weight.shape == (
        net.classes, net.num_features)
    np.testing.assert_allclose(classifier(pooled).asnumpy(), want, rtol=1e-5, atol=1e-6)
    info = net.feature_info
    assert info.channels() == [s["num_chs"] for s in info] == [s["channels"] for s in info]
    assert info.reduction() == [s["reduction"] for s in info]
    assert info.channels(-1) == feats.shape[1] and info.module_name(0) == info[0]["module"]
    assert get_model(name, features_only=True).feature_info.channels() == info.channels()
    # the aliases build the same network as the zoo's names
    for timm, zoo in [({"num_classes": 5}, {"classes": 5}), ({"in_chans": 2}, {"in_channels": 2})]:
        a, b = get_model(name, **timm), get_model(name, **zoo)
        assert a.info == b.info and (a.classes, a.in_channels) == (b.classes, b.in_channels)


@pytest.mark.parametrize("name", model_params())
def test_num_classes_0_gives_the_pooled_features(name):
    net, x = built(name)
    pooled = net.forward_head(net.forward_features(x), pre_logits=True).asnumpy()
    net.hybridize()
    net(x)
    net.reset_classifier(0)  # the cached graph is replaced
    assert isinstance(net.get_classifier(), mx.gluon.nn.Flatten) and net.classifier_names() == []
    np.testing.assert_allclose(net(x).asnumpy(), pooled, rtol=1e-5, atol=1e-6)
    assert net.info.classes == 0 and net.info.num_params == num_params(net)
    net.reset_classifier(4)  # and back: a new dense layer on the pooled features
    assert net(x).shape == (x.shape[0], 4)
    fresh = get_model(name, num_classes=0)
    fresh.initialize()
    assert fresh(x).shape == (x.shape[0], fresh.num_features) and fresh.info.classes == 0
    assert fresh.info.num_params == num_params(fresh)


@pytest.mark.parametrize("name", model_params())
def test_in_chans_on_every_network(name):
    c, h, w = test_shape(name)
    net = get_model(name, in_chans=2)
    net.initialize()
    assert net.in_channels == 2 and net.info.input_shape[0] == 2
    assert len(net.info.mean) == len(net.info.std) == 2
    assert net(mx.nd.ones((1, 2, h, w))).shape == (1, net.classes)
    with pytest.raises(InceptionZooError, match="expects 2 input channel"):
        net(mx.nd.ones((1, c + 3, h, w)))


@pytest.mark.parametrize("weights_channels, in_channels", [(3, 1), (3, 2), (3, 5), (1, 3),
                                                           (3, 3)])
def test_adapt_input_conv_is_timms_rule(weights_channels, in_channels):
    """timm's rule restated (``timm.models._manipulate.adapt_input_conv``): 1 channel sums the
    weights' channels; more repeats them and scales by base / new."""
    w = np.random.RandomState(0).randn(4, weights_channels, 3, 3).astype(np.float32)
    got = adapt_input_conv(w, in_channels)
    if in_channels == weights_channels:
        want = w
    elif in_channels == 1:
        want = w.sum(axis=1, keepdims=True)
    else:
        reps = int(np.ceil(in_channels / weights_channels))
        want = np.concatenate([w] * reps, axis=1)[:, :in_channels] * (
            weights_channels / in_channels)
    assert got.shape == (4, in_channels, 3, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_in_chans_adapts_the_pretrained_weights():
    """The shipped 1-channel weights on a 3-channel network: the first convolution's weights
    repeated and scaled by 1/3, so that a grey image given on three channels gives the
    1-channel network's logits; every other parameter is the weights'."""
    grey = get_model("inception_mnist", pretrained=True)
    rgb = get_model("inception_mnist", pretrained=True, in_chans=3)
    assert rgb.in_channels == 3 and rgb.info.input_shape == (3, 28, 28)
    assert rgb.info.pretrained == grey.info.pretrained and rgb.weights == grey.weights
    assert rgb.info.mean == (0.0,) * 3 and rgb.info.num_params == num_params(rgb)
    np.testing.assert_allclose(rgb.stem.weight.data().asnumpy(),
                               np.repeat(grey.stem.weight.data().asnumpy(), 3, axis=1) / 3,
                               rtol=1e-6)
    x = mx.nd.random.uniform(shape=(2, 1, 28, 28))
    np.testing.assert_allclose(rgb(mx.nd.concat(x, x, x, dim=1)).asnumpy(), grey(x).asnumpy(),
                               rtol=1e-4, atol=1e-5)
    # in_channels given twice the same way is taken; two different values are refused
    assert get_model("inception_mnist", in_chans=3, in_channels=3).in_channels == 3
    with pytest.raises(InceptionZooError, match="in_chans=2 and in_channels=3: in_chans is "
                                                "timm's name of in_channels; give one"):
        get_model("inception_mnist", in_chans=2, in_channels=3)


@pytest.mark.slow
def test_in_chans_1_on_a_converted_network_is_timms_adaptation(tmp_path):
    """torchvision's GoogLeNet (random weights) converted, then built with in_chans=1 and 5:
    the first convolution's weights are what timm's own ``adapt_input_conv`` makes of the
    source's, within float32 rounding (timm runs in the side environment)."""
    from conftest import torch_references
    from inceptionzoo.convert import convert

    ref = torch_references("make_adapt_references.py", tmp_path / "ref")
    out = tmp_path / "g.params"
    convert("torchvision:googlenet", str(ref / "model.pth"), str(out))
    base = get_model("googlenet_bn", pretrained=str(out))
    for c in (1, 5):
        net = get_model("googlenet_bn", pretrained=str(out), in_chans=c)
        want = np.load(ref / f"conv1_in{c}.npy")
        got = net.conv1[0].weight.data().asnumpy()
        assert got.shape == want.shape == (64, c, 7, 7)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
        assert net.info.input_shape == (c, 224, 224) and net.info.pretrained is not None
        params = net._collect_params_with_prefix()
        for k, p in base._collect_params_with_prefix().items():
            if k != "conv1.0.weight":
                np.testing.assert_array_equal(params[k].data().asnumpy(), p.data().asnumpy())


def test_reset_classifier_inside_a_hybridized_parent():
    """The parent's cached graph held the old head: it is dropped with the network's."""
    net = get_model("inception_mnist", pretrained=True)

    class Wrapper(mx.gluon.HybridBlock):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def hybrid_forward(self, F, x):
            return self.inner(x)

    seq = mx.gluon.nn.HybridSequential()
    seq.add(net)
    outer = Wrapper(seq)
    outer.hybridize()
    x = mx.nd.random.uniform(shape=(2, 1, 28, 28))
    assert outer(x).shape == (2, 10)
    net.reset_classifier(3)
    assert outer(x).shape == seq(x).shape == net(x).shape == (2, 3)
    np.testing.assert_allclose(outer(x).asnumpy(), net(x).asnumpy(), rtol=1e-5, atol=1e-6)
    net.adapt_input_channels(2)
    assert outer(mx.nd.ones((2, 2, 28, 28))).shape == (2, 3)


def test_a_feature_extractor_has_no_classifier():
    feats = get_model("inception_mnist", features_only=True)
    for call in (lambda: feats.reset_classifier(3), feats.get_classifier,
                 lambda: feats.forward_head(mx.nd.zeros((1, 64, 6, 6)))):
        with pytest.raises(InceptionZooError, match="a feature extractor .features_only=True. "
                                                    "has no classifier"):
            call()
    assert feats.info.classes == 10


# --- options: unknown ones listed, wrong types named ----------------------------------------

@pytest.mark.parametrize("name", list_models())
def test_an_unknown_option_lists_the_options(name):
    from inceptionzoo._builder import _network_options
    from inceptionzoo._registry import _entry

    with pytest.raises(InceptionZooError) as err:
        get_model(name, bogus=1)
    msg = str(err.value)
    assert msg.startswith(f"{name} takes no option 'bogus': its options are ")
    for option in ["classes", "num_classes", "in_chans", "in_channels", "pretrained", "root",
                   "ctx", "features_only", "out_indices"]:
        assert option in msg
    cls = type(_entry(name).factory())
    assert all(o in msg for o in _network_options(cls))


@pytest.mark.parametrize("name, options, words", [
    ("googlenet", {"in_channels": "3"}, "in_channels must be an integer >= 1; got '3' (str)"),
    ("inception_v3", {"in_chans": 0}, "in_channels must be an integer >= 1; got 0"),
    ("googlenet", {"dropout": 2.0}, "dropout must be a number in [0, 1); got 2.0"),
    ("inception_v4", {"dropout": "0.1"}, "dropout must be a number in [0, 1); got '0.1'"),
    ("googlenet", {"aux_logits": 1}, "aux_logits must be True or False; got 1 (int)"),
    ("googlenet", {"batch_norm": "yes"}, "batch_norm must be True or False; got 'yes'"),
    ("googlenet_bn", {"b5_kernel": 4}, "b5_kernel must be an odd integer >= 1; got 4"),
    ("googlenet", {"pool4_size": 2.0}, "pool4_size must be an integer >= 1; got 2.0"),
    ("inception_mnist", {"classes": "10"}, "classes (num_classes) must be an integer >= 0; "
                                           "got '10'"),
    ("inception_mnist", {"num_classes": True}, "classes (num_classes) must be an integer >= 0; "
                                               "got True"),
    ("inception_mnist", {"num_classes": 3, "classes": 4}, "num_classes=3 and classes=4"),
    ("inception_mnist", {"block": "naive"}, "it takes no option 'block'"),
    ("inception_v3", {"aux_logits": True, "num_classes": 0}, "classes=0 (pooled features, no "
                                                             "classifier) cannot have auxiliary"),
])
def test_wrong_options_are_one_error_naming_expected_and_given(name, options, words):
    with pytest.raises(InceptionZooError, match=re.escape(words)):
        get_model(name, **options)


def test_numpy_values_are_taken_as_python_ones():
    net = get_model("googlenet", classes=np.int64(3), in_chans=np.int64(1),
                    dropout=np.float32(0.25), aux_logits=np.bool_(False))
    assert (net.classes, net.in_channels) == (3, 1) and type(net.classes) is int
    assert net.info.classes == 3 and net.info.input_shape == (1, 224, 224)
    assert model_info("googlenet").classes == 1000


def test_every_name_of_the_docs_exists():
    """Each ``net.NAME`` and ``get_model(NAME, OPTION=...)`` docs/models.md's "timm's model
    API" section lists exists on every network (a feature extractor's only where it has it)."""
    import os

    from conftest import ROOT

    text = open(os.path.join(ROOT, "docs", "models.md")).read()
    section = text.split("## timm's model API")[1].split("\n## ")[0]
    names = set(re.findall(r"`net\.(\w+)", section))
    options = set(re.findall(r"`get_model\(NAME, (\w+)=", section))
    assert {"forward_features", "forward_head", "get_classifier", "num_features",
            "reset_classifier", "feature_info", "adapt_input_channels"} <= names
    assert options == {"num_classes", "in_chans", "features_only"}
    for name in list_models():
        net = get_model(name)
        assert all(getattr(net, n, None) is not None for n in names), name
    for method in ("channels", "reduction"):
        assert f"feature_info.{method}()" in section
