"""One model API on every registered network (timm's forward_features / forward_head /
reset_classifier / feature_info / features_only): ``features``, ``head``,
``classifier_names``, ``reset_classifier``, ``feature_info`` and
``get_model(NAME, features_only=True, out_indices=...)``, which hybridizes and exports.
Registry-driven; the ImageNet networks run at their smallest input and are marked slow."""
import mxnet as mx
import numpy as np
import pytest

from conftest import built, model_params, test_shape
from inceptionzoo import get_model, list_models
from inceptionzoo.cost import num_params

#: options with extra classifiers (auxiliary heads)
AUX = {"googlenet": {"aux_logits": True}, "googlenet_bn": {"aux_logits": True},
       "inception_v3": {"aux_logits": True}}


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
        assert len(names) == 2 * (1 + {"googlenet": 2, "googlenet_bn": 2,
                                       "inception_v3": 1}.get(name, 0) * bool(options))


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
    with pytest.raises(ValueError, match="classes must be an integer >= 1; got 0"):
        net.reset_classifier(0)


@pytest.mark.parametrize("name", [n if n != "inception_v3" else
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
    with pytest.raises(ValueError, match=r"out_indices must be integers in \[-3, 2\]"):
        get_model("inception_mnist", features_only=True, out_indices=(5,))
    with pytest.raises(ValueError, match="out_indices must be integers"):
        get_model("inception_mnist", features_only=True, out_indices="a")
    with pytest.raises(ValueError, match="needs features_only=True"):
        get_model("inception_mnist", out_indices=(0,))
    feats = get_model("inception_mnist", features_only=True, pretrained=True)
    with pytest.raises(ValueError, match="expects 1 input channel"):
        feats(mx.nd.zeros((1, 3, 28, 28)))
    maps = feats(mx.nd.zeros((1, 1, 28, 28)))  # the shipped weights, shared
    assert [m.shape for m in maps] == [(1, 32, 28, 28), (1, 64, 13, 13), (1, 64, 6, 6)]


def test_the_stage_table_of_the_docs_is_the_registry():
    import os
    import re

    from conftest import ROOT

    text = open(os.path.join(ROOT, "docs", "models.md")).read()
    table = text.split("<!-- feature-info:begin -->")[1].split("<!-- feature-info:end -->")[0]
    rows = [m.group(0) for m in re.finditer(r"^\| `\w+` \| .+ \|$", table, re.M)]
    want = ["| `{}` | {} |".format(name, ", ".join(
        f"`{s['module']}` {s['channels']}/{s['reduction']}" for s in get_model(name).feature_info))
        for name in list_models()]
    assert rows == want, "the rows docs/models.md needs:\n" + "\n".join(want)
