import importlib.util
import itertools
import os

import numpy as np
import pytest

from conftest import ROOT
from inceptionzoo import get_model, list_models, model_info
from inceptionzoo._registry import model_examples
from inceptionzoo.blocks import Inception, NaiveInception
from inceptionzoo.cost import count, naive_block_cost, num_params, reduced_block_cost
from inceptionzoo.models.googlenet import PAPER_TABLE1


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks",
                                                                     name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", list_models())
def test_metadata_counts_are_recomputed(name):
    info = model_info(name)
    report = count(get_model(name), info.input_shape)
    assert report.params == info.num_params
    assert report.macs == info.macs


def _weights_only(block):
    return sum(int(np.prod(p.shape)) for k, p in block.collect_params().items()
               if k.endswith("weight"))


@pytest.mark.parametrize("ni,no,hw", list(itertools.product([1, 3, 8], [1, 4, 16],
                                                            [(5, 5), (7, 9)])))
def test_naive_closed_form(ni, no, hw):
    block = NaiveInception(ni, no)
    report = count(block, (ni,) + hw)
    assert naive_block_cost(ni, no, *hw) == (report.params, report.macs)
    assert naive_block_cost(ni, no, *hw, bias=False)[0] == _weights_only(block)


WIDTHS = [(1, 1, 1, 1, 1, 1), (64, 96, 128, 16, 32, 32), (3, 2, 5, 4, 7, 6),
          (8, 4, 8, 4, 8, 8), (0 + 5, 3, 1, 2, 9, 1)]


@pytest.mark.parametrize("ni,widths,hw", list(itertools.product([2, 8, 13], WIDTHS,
                                                                [(6, 6), (11, 4)])))
def test_reduced_closed_form(ni, widths, hw):
    block = Inception(ni, *widths)
    report = count(block, (ni,) + hw)
    assert reduced_block_cost(ni, *widths, *hw) == (report.params, report.macs)
    assert reduced_block_cost(ni, *widths, *hw, bias=False)[0] == _weights_only(block)


@pytest.mark.parametrize("n", [2, 8, 16, 64])
def test_seed_layout_is_20_n_squared_not_19(n):
    weights = reduced_block_cost(n, n, n // 2, n, n // 2, n, n, 1, 1, bias=False)[0]
    assert weights == 20 * n * n != 19 * n * n
    assert naive_block_cost(n, n, 1, 1, bias=False)[0] == 35 * n * n


def test_count_lists_zero_cost_layers():
    report = count(get_model("inception_mnist"), (1, 28, 28))
    ops = {layer.op for layer in report.layers if layer.macs == 0 and layer.params == 0}
    assert {"Pooling", "Concat", "Activation"} <= ops
    conv = [layer for layer in report.layers if layer.name.endswith("block1_b5_fwd")][0]
    assert conv.output_shape == (1, 8, 28, 28)
    assert conv.params == 4 * 8 * 25 + 8 and conv.macs == 4 * 8 * 25 * 28 * 28
    assert "total" in report.table() and "37,922" in report.table()


def test_batch_norm_counts_gamma_beta_not_running_stats():
    plain, bn = Inception(4, 2, 3, 4, 1, 2, 2), Inception(4, 2, 3, 4, 1, 2, 2, batch_norm=True)
    channels = 2 + 3 + 4 + 1 + 2 + 2
    assert num_params(bn) == num_params(plain) - channels + 2 * channels
    assert count(bn, (4, 5, 5)).params == num_params(bn)


# Rows where our count and Table 1 differ by more than 2%, each explained in docs/cost.md.
DOCUMENTED = {"conv1": "both", "inception4c": "params", "inception5a": "both"}


def test_googlenet_against_table1():
    rows = _load_script("cost_tables").googlenet_rows()
    assert [r[0] for r in rows] == list(PAPER_TABLE1)
    for key, params, macs in rows:
        pp, po = PAPER_TABLE1[key]
        dp, do = abs(params / 1024 / pp - 1), abs(macs / 1e6 / po - 1)
        odd = DOCUMENTED.get(key)
        assert (dp > 0.02) == (odd in ("both", "params")), (key, dp)
        assert (do > 0.03) == (odd == "both"), (key, do)  # ops are printed to 1M
    conv1 = rows[0]
    assert conv1[1] == 7 * 7 * 3 * 64 + 64 and conv1[2] == 7 * 7 * 3 * 64 * 112 * 112


def test_googlenet_options():
    import mxnet as mx

    net = get_model("googlenet", classes=10, aux_logits=True, batch_norm=True)
    net.initialize(mx.init.Xavier())
    out = net(mx.nd.random.uniform(shape=(2, 3, 224, 224)))
    assert [o.shape for o in out] == [(2, 10)] * 3
    with pytest.raises(ValueError, match="cannot take a 100x100"):
        net(mx.nd.zeros((1, 3, 100, 100)))  # the aux heads need 224-ish inputs
    plain = get_model("googlenet")
    plain.initialize()
    assert plain(mx.nd.zeros((1, 3, 160, 160))).shape == (1, 1000)  # global pool: any size
    from inceptionzoo.weights import WeightsError
    with pytest.raises(WeightsError, match="model 'googlenet' declares no weights"):
        get_model("googlenet", pretrained=True)


# GMACs the model files declare as published (``register_model(published_gmacs=...)``):
# torchvision's weight metadata (``_ops``, multiply-accumulates) and, for timm's networks,
# torch's FlopCounterMode / 2 on timm 1.0.31 at 299x299 (tests/reference/make_references.py;
# checked exactly in tests/test_convert.py)
PUBLISHED = [(n, model_examples(n).published_gmacs) for n in list_models()
             if model_examples(n).published_gmacs is not None]


@pytest.mark.parametrize("name,gmacs", PUBLISHED)
def test_imagenet_macs_match_the_published_figures(name, gmacs):
    macs = count(get_model(name), model_info(name).input_shape).macs
    assert abs(macs / 1e9 - gmacs) <= 0.01 * gmacs, (name, macs)
