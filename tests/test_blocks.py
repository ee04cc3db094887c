import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from inceptionzoo.blocks import Inception, NaiveInception, conv_unit
from inceptionzoo.cost import num_params


def _run(block, shape):
    block.initialize(mx.init.Xavier())
    return block(mx.nd.random.uniform(shape=shape))


@pytest.mark.parametrize("cin,out", [(1, 1), (5, 10), (8, 8), (32, 16)])
def test_naive_block_shape(cin, out):
    b = NaiveInception(cin, out)
    y = _run(b, (2, cin, 9, 7))
    assert y.shape == (2, 3 * out + cin, 9, 7) and b.out_channels == 3 * out + cin


def test_naive_pool_branch_passes_input_through():
    b = NaiveInception(3, 2)
    x = mx.nd.random.uniform(shape=(1, 3, 6, 6))
    b.initialize()
    y = b(x).asnumpy()
    pooled = mx.nd.Pooling(x, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="max")
    np.testing.assert_array_equal(y[:, 6:], pooled.asnumpy())


@pytest.mark.parametrize("widths", [(64, 96, 128, 16, 32, 32), (1, 1, 1, 1, 1, 1),
                                    (3, 2, 5, 4, 7, 6)])
def test_reduced_block_shape(widths):
    b = Inception(10, *widths)
    y = _run(b, (2, 10, 8, 8))
    c1, _, c3, _, c5, cp = widths
    assert y.shape == (2, c1 + c3 + c5 + cp, 8, 8) == (2, b.out_channels, 8, 8)


def test_seed_layout_matches_the_blog():
    b = Inception.uniform(5, 10)  # the blog's test: inception(10) on a (1, 5, 10, 10) input
    assert _run(b, (1, 5, 10, 10)).shape == (1, 40, 10, 10)
    shapes = {k.split("_", 1)[1]: v.shape for k, v in b.collect_params().items()}
    assert shapes["b3red_weight"] == (5, 5, 1, 1)      # reduction to out // 2
    assert shapes["b3_weight"] == (10, 5, 3, 3)
    assert shapes["b5_weight"] == (10, 5, 5, 5)
    assert shapes["proj_weight"] == (10, 5, 1, 1)
    # ReLU exactly where the seed has it: not after the reductions
    assert b.b3red.act is None and b.b5red.act is None
    for conv in (b.b1, b.b3, b.b5, b.proj):
        assert conv.act is not None and conv.act._act_type == "relu"


def test_paper_layout_has_relu_after_reductions():
    b = Inception(4, 2, 3, 4, 1, 2, 2)
    assert b.b3red.act is not None and b.b5red.act is not None


def test_reduction_without_relu_is_linear_path():
    # With no ReLU after the reduction, 3x3-branch output equals relu(conv3(conv3red(x))).
    b = Inception.uniform(2, 4)
    x = mx.nd.random.normal(shape=(1, 2, 5, 5))
    b.initialize(mx.init.Normal(1.0))
    red = mx.nd.Convolution(x, b.b3red.weight.data(), b.b3red.bias.data(), kernel=(1, 1),
                            num_filter=2)
    assert (red.asnumpy() < 0).any()  # negatives survive: no ReLU there
    ref = mx.nd.relu(mx.nd.Convolution(red, b.b3.weight.data(), b.b3.bias.data(),
                                       kernel=(3, 3), pad=(1, 1), num_filter=4))
    np.testing.assert_allclose(b(x).asnumpy()[:, 4:8], ref.asnumpy(), rtol=1e-5, atol=1e-6)


def test_batch_norm_option():
    b = Inception(4, 2, 3, 4, 1, 2, 2, batch_norm=True)
    names = list(b.collect_params())
    assert any(n.endswith("b3_conv_weight") for n in names)
    assert any(n.endswith("b3_bn_gamma") for n in names)
    assert not any(n.endswith("_bias") for n in names)
    assert _run(b, (2, 4, 6, 6)).shape == (2, 10, 6, 6)


def test_shapes_known_without_forward():
    b = NaiveInception(8, 8)
    assert num_params(b) == 8 * 8 * 35 + 24
    unit = conv_unit(4, 3, 0)  # deferred shape: refused by the counter
    with pytest.raises(ValueError, match="unknown shape"):
        num_params(unit)


@pytest.mark.parametrize("block", [NaiveInception(3, 4), Inception.uniform(3, 4)])
def test_block_hybridizes_to_same_output(block):
    x = mx.nd.random.uniform(shape=(2, 3, 7, 7))
    block.initialize(mx.init.Xavier())
    ref = block(x).asnumpy()
    block.hybridize()
    np.testing.assert_allclose(block(x).asnumpy(), ref, rtol=1e-5, atol=1e-6)
    assert isinstance(block, nn.HybridBlock)
