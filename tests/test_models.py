"""Registry-driven: every registered model goes through every test here."""
import json

import mxnet as mx
import numpy as np
import pytest

from conftest import built, inception_blocks, model_params, test_shape
from inceptionzoo import get_model, list_models, model_info
from inceptionzoo.cost import num_params
from inceptionzoo.models._base import ZooNet

MODELS = model_params()


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_with_other_class_count(name):
    net, x = built(name, classes=7)
    out = net(x)
    assert out.shape == (2, 7)
    assert np.isfinite(out.asnumpy()).all()


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_gets_a_gradient(name):
    net, x = built(name, batch=4)
    with mx.autograd.record():
        loss = mx.nd.softmax_cross_entropy(net(x), mx.nd.array([0, 1, 2, 3]))
    loss.backward()
    for p in net.collect_params().values():
        if p.grad_req == "null":
            continue
        g = p.grad().asnumpy()
        assert np.isfinite(g).all(), p.name
        assert np.abs(g).sum() > 0, f"{p.name} got no gradient"


@pytest.mark.parametrize("name", MODELS)
def test_recorded_param_count_is_real(name):
    net = get_model(name)
    assert num_params(net) == model_info(name).num_params == net.info.num_params


def _reduced_seed_block(cin, out):
    half = out // 2
    return (cin * out + out                    # 1x1
            + cin * half + half + half * out * 9 + out   # 1x1 reduce -> 3x3
            + cin * half + half + half * out * 25 + out  # 1x1 reduce -> 5x5
            + cin * out + out), 4 * out               # pool -> 1x1 projection


def _naive_block(cin, out):
    return cin * out * (1 + 9 + 25) + 3 * out, 3 * out + cin


@pytest.mark.parametrize("name,block", [("inception_mnist", _reduced_seed_block),
                                        ("inception_naive_mnist", _naive_block)])
def test_param_count_by_hand(name, block):
    total = 1 * 8 * 9 + 8  # stem conv 8@3x3 on 1 channel
    c = 8
    for out in (8, 16, 16):
        n, c = block(c, out)
        total += n
    total += c * 6 * 6 * 10 + 10  # dense on the 6x6 map
    assert model_info(name).num_params == total


def _hybrid_pairs(name, **hybridize_kwargs):
    net, x = built(name, batch=3)
    ref = net(x).asnumpy()
    net.hybridize(**hybridize_kwargs)
    got = net(x).asnumpy()
    return net, x, ref, got


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("kwargs", [{}, {"static_alloc": True, "static_shape": True}])
def test_hybrid_equals_imperative(name, kwargs):
    net, x, ref, got = _hybrid_pairs(name, **kwargs)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # a new batch size after the graph was built
    net.hybridize(active=False)
    x5 = mx.nd.random.uniform(shape=(5,) + x.shape[1:])
    ref5 = net(x5).asnumpy()
    net.hybridize(**kwargs)
    net(x)  # build with batch 3 first
    got5 = net(x5).asnumpy()
    np.testing.assert_allclose(got5, ref5, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_export_is_one_graph_with_one_concat_per_block(name, tmp_path):
    net, x = built(name, batch=1)
    net.hybridize()
    net(x)
    net.export(str(tmp_path / name))
    graph = json.loads((tmp_path / f"{name}-symbol.json").read_text())
    ops = [n["op"] for n in graph["nodes"]]
    assert ops.count("Concat") == len(inception_blocks(net)) > 0
    assert not any("subgraphs" in n for n in graph["nodes"])
    assert ops.count("null") >= 2  # the input and the parameters are graph inputs


@pytest.mark.parametrize("name", MODELS)
def test_parameter_names_are_stable(name, tmp_path):
    a, b = get_model(name), get_model(name)
    assert sorted(a.collect_params()) == sorted(b.collect_params())
    assert all(k.startswith(name + "_") for k in a.collect_params())
    a.initialize(mx.init.Xavier())
    a.save_parameters(str(tmp_path / "a.params"))
    b.load_parameters(str(tmp_path / "a.params"))
    x = mx.nd.random.uniform(shape=(2,) + test_shape(name))
    np.testing.assert_array_equal(a(x).asnumpy(), b(x).asnumpy())


def _bad_shapes(name):
    c, h, w = model_info(name).input_shape
    return [
        ((c, h, w), "4-d"),                      # no batch axis
        ((2, c + 2, h, w), "input channel"),      # wrong channel count
        ((2, c, 5, 5), "cannot take a 5x5"),      # too small for the network
    ] + ([((2, c, 2 * h, 2 * w), f"cannot take a {2 * h}x{2 * w}")]
         if not get_model(name)._accepted(0).startswith(">=") else [])


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("hybrid", [False, True])
def test_bad_input_shape_is_a_clear_value_error(name, hybrid):
    net, x = built(name, batch=1)
    if hybrid:
        net.hybridize(static_alloc=True, static_shape=True)
        net(x)
    c, h, w = model_info(name).input_shape
    for shape, words in _bad_shapes(name):
        with pytest.raises(ValueError) as exc:
            net(mx.nd.zeros(shape))
        msg = str(exc.value)
        assert words in msg, msg
        assert str(shape) in msg, msg                      # the given shape
        assert f"(N, {c}, {h}, {w})" in msg, msg             # the expected one
    assert net(x).shape == (1, model_info(name).classes)   # still usable


def test_sizes_the_head_can_take():
    net, _ = built("inception_mnist")
    assert net(mx.nd.zeros((1, 1, 30, 27))).shape == (1, 10)  # 27..30 all reach 6x6
    with pytest.raises(ValueError, match=r"H in 27\.\.30"):
        net(mx.nd.zeros((1, 1, 31, 28)))


# What check_input_shape accepted at a4f1adf, from the hand-written spatial_ops tables (each
# size 1..4x the design size compared, both axes: identical); the sizes are now found from the
# layers themselves
_ACCEPTED_BEFORE = {
    ("googlenet", ()): ">= 47", ("googlenet_bn", ()): ">= 31",
    ("inception_mnist", ()): "27..30", ("inception_naive_mnist", ()): "27..30",
    ("inception_resnet_v2", ()): ">= 75", ("inception_v3", ()): ">= 75",
    ("inception_v4", ()): ">= 75", ("googlenet", ("aux_logits",)): "223..270",
    ("googlenet_bn", ("aux_logits",)): "223..270", ("inception_v3", ("aux_logits",)): ">= 299",
}


@pytest.mark.parametrize("name, flags", sorted(set(_ACCEPTED_BEFORE)
                                                | {(n, ()) for n in list_models()}))
def test_accepted_sizes_come_from_the_layers(name, flags):
    """The range in the message is the range the check applies, at both of its ends, and
    the same as the hand-written tables gave."""
    net = get_model(name, **{f: True for f in flags})
    c, h, w = model_info(name).input_shape
    for axis in (0, 1):
        text = net._accepted(axis)
        if (name, flags) in _ACCEPTED_BEFORE:
            assert text == _ACCEPTED_BEFORE[name, flags]
        lo, _, hi = text.lstrip(">= ").partition("..")
        inside = [int(lo)] + ([int(hi)] if hi else [4 * (h, w)[axis]] if ">=" in text else [])
        outside = [int(lo) - 1] + ([int(hi) + 1] if hi else [])
        for size, ok in [(s, True) for s in inside] + [(s, False) for s in outside]:
            shape = [1, c, h, w]
            shape[2 + axis] = size
            assert net._fits(size, axis) == ok, (axis, size)
            if not ok:
                with pytest.raises(ValueError, match=f"cannot take a {shape[2]}x{shape[3]}"):
                    net.check_input_shape(shape)


@pytest.mark.slow
@pytest.mark.parametrize("name, flags", sorted(_ACCEPTED_BEFORE))
def test_every_size_in_the_range_and_no_other_is_taken(name, flags):
    """Every size 1..4x the design size, on both axes: taken exactly when inside the range
    (the interval the binary searches assume; with the recorded ranges, the old tables'
    answer at every size)."""
    net = get_model(name, **{f: True for f in flags})
    for axis in (0, 1):
        top = 4 * net.default_hw[axis]
        first, last = net.taken_sizes(axis)
        assert [s for s in range(1, top + 1) if net._fits(s, axis)] == list(
            range(first, last + 1))


class _NoTable(ZooNet):
    """A network that lists no sizes: conv 5/2 then a dense layer on a fixed 4x4 map."""

    default_hw = (12, 12)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = mx.gluon.nn.Conv2D(2, 5, strides=2, in_channels=1)
            self.output = mx.gluon.nn.Dense(3, in_units=2 * 4 * 4)

    def hybrid_forward(self, F, x):
        return self.output(self.conv(x))


def test_a_new_network_needs_no_table_of_sizes():
    net = _NoTable()
    net.initialize()
    assert net(mx.nd.zeros((1, 1, 11, 12))).shape == (1, 3)  # (11 - 5) // 2 + 1 = 4
    with pytest.raises(ValueError, match=r"cannot take a 14x12 .*H in 11\.\.12, W in 11\.\.12"):
        net(mx.nd.zeros((1, 1, 14, 12)))
    with pytest.raises(ValueError, match="cannot take a 3x12"):
        net.check_input_shape((1, 1, 3, 12))
