"""docs/contributing.md's "Add a network", done as the page says: one family file (a toy
network with a converter source) and its references, written to a temporary folder, and the
registry-driven tests run on it, no other file edited."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from inceptionzoo import list_models

#: the family file: what a contributor writes (in src/inceptionzoo/models/; here in a temporary
#: folder, imported before the tests run, with the package's absolute names)
FAMILY = '''"""A toy family: a convolution, a naive Inception block and a dense classifier."""
from mxnet.gluon import nn

from inceptionzoo import register_model
from inceptionzoo._builder import FACTORY_DOC, build
from inceptionzoo.blocks import NaiveInception, conv_unit
from inceptionzoo.checkpoint_filter import Source
from inceptionzoo.models._base import RATE, ZooNet, classifier_layer
from inceptionzoo.weights_spec import WeightsSpec


class ZzToy(ZooNet):
    """conv 3x3 (8) -> max-pool 3/2 -> naive Inception (4 per branch) -> max-pool 3/2 ->
    global pool -> dense; batch norm after every convolution."""

    in_channels = 3
    default_hw = (32, 32)
    option_checks = {"dropout": RATE}

    def __init__(self, classes=10, in_channels=3, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.classes, self.in_channels = classes, in_channels
        with self.name_scope():
            self.stem = conv_unit(8, 3, in_channels, batch_norm=True, prefix="stem_")
            self.pool1 = nn.MaxPool2D(3, 2, prefix="pool1_")
            self.block = NaiveInception(8, 4, batch_norm=True, prefix="block_")
            self.pool2 = nn.MaxPool2D(3, 2, prefix="pool2_")
            self.gap = nn.GlobalAvgPool2D(prefix="gap_")
            self.drop = nn.Dropout(dropout, prefix="drop_")
            self.num_features = self.block.out_channels
            self.output = classifier_layer(classes, self.num_features, "output_")

    def feature_layers(self):
        return [("stem", self.stem), ("pool1", self.pool1), ("block", self.block),
                ("pool2", self.pool2)]

    def head_pool(self, x):
        return self.drop(self.gap(x))

    def hybrid_forward(self, F, x):
        return self.head(self.features(x))


@register_model(description="a toy network", input_shape=(3, 32, 32), classes=10,
                variant="reduced", paper="none",
                weights=[WeightsSpec("zz_toy", 10, (3, 32, 32), 36, (0.5,) * 3, (0.25,) * 3,
                                     "zztoy:zz_toy", crop_pct=32 / 36, tag="zztoy")],
                sources={"zztoy:zz_toy": Source(renames=((r"^fc\\.", "output."),),
                                                classifier="fc.weight")},
                example_options=[{"classes": 4}, {"in_channels": 1},
                                 {"dropout": 0.5, "classes": 0}])
def zz_toy(classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    return build("zz_toy", ZzToy, classes, pretrained, root, ctx, **kwargs)


zz_toy.__doc__ = FACTORY_DOC.format(title="A toy network", cls="ZzToy", classes=10,
                                    where="its tag zztoy", note="")
'''

#: the registry-driven test files the new network joins
SUITE = ["test_registry.py", "test_builder.py", "test_models.py", "test_model_api.py",
         "test_export.py", "test_graph_tuning.py", "test_cost.py", "test_convert.py"]


# --- the references: what the source's own library gives (here: numpy, by hand) -------------

def _pad(x, pad, value=0.0):
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=value)


def _unit(x, t, name):
    """conv (square kernel, stride 1, "same" padding, no bias) -> batch norm (eps 1e-3,
    inference) -> ReLU."""
    w = t[f"{name}.conv.weight"]
    k = w.shape[2]
    x = _pad(x, k // 2)
    h = x.shape[2] - k + 1
    x = sum(np.einsum("nchw,oc->nohw", x[:, :, i:i + h, j:j + h], w[:, :, i, j])
            for i in range(k) for j in range(k))
    scale = t[f"{name}.bn.weight"] / np.sqrt(t[f"{name}.bn.running_var"] + 1e-3)
    shift = t[f"{name}.bn.bias"] - t[f"{name}.bn.running_mean"] * scale
    return np.maximum(x * scale[:, None, None] + shift[:, None, None], 0)


def _max_pool(x, stride):
    h = (x.shape[2] - 3) // stride + 1
    return np.max([x[:, :, i:i + stride * (h - 1) + 1:stride, j:j + stride * (h - 1) + 1:stride]
                   for i in range(3) for j in range(3)], axis=0)


def _source_logits(t, x):
    x = _unit(x, t, "stem")[:, :, 1:-1, 1:-1]            # the stem is unpadded: 32 -> 30
    x = _max_pool(x, 2)                                    # 14
    x = np.concatenate([_unit(x, t, f"block.{b}") for b in ("b1", "b3", "b5")]
                       + [_max_pool(_pad(x, 1, -np.inf), 1)], axis=1)
    x = _max_pool(x, 2).mean(axis=(2, 3))                  # 6 -> global pool
    return x @ t["fc.weight"].T + t["fc.bias"]


def _write_references(folder, seed=0):
    """The folder tests/reference/make_references.py would write for the source: the
    checkpoint in the source's names (``.pth`` and ``.safetensors``, random weights and
    batch-norm statistics), pixels, the source's logits and ``meta.json``."""
    from safetensors.numpy import save_file

    from inceptionzoo import torch_archive

    rs = np.random.RandomState(seed)
    t = {}
    for name, (o, i, k) in (("stem", (8, 3, 3)), ("block.b1", (4, 8, 1)),
                            ("block.b3", (4, 8, 3)), ("block.b5", (4, 8, 5))):
        t[f"{name}.conv.weight"] = rs.normal(0, (2 / (i * k * k)) ** .5, (o, i, k, k))
        t[f"{name}.bn.weight"] = rs.uniform(.5, 1.5, o)
        t[f"{name}.bn.bias"] = rs.normal(0, .2, o)
        t[f"{name}.bn.running_mean"] = rs.normal(0, .2, o)
        t[f"{name}.bn.running_var"] = rs.uniform(.5, 2, o)
    t["fc.weight"], t["fc.bias"] = rs.normal(0, .5, (10, 20)), rs.normal(0, .1, 10)
    t = {k: v.astype(np.float32) for k, v in t.items()}
    folder.mkdir(parents=True)
    torch_archive.save(torch_archive.state_dict(t), str(folder / "model.pth"))
    save_file(t, str(folder / "model.safetensors"))
    pixels = rs.rand(3, 3, 32, 32).astype(np.float32)
    np.save(folder / "pixels.npy", pixels)
    np.save(folder / "logits.npy",
            _source_logits({k: v.astype(np.float64) for k, v in t.items()},
                           (pixels.astype(np.float64) - .5) / .25).astype(np.float32))
    params = sum(v.size for k, v in t.items() if "running" not in k)
    # the convolutions' and the dense layer's multiply-accumulates, at 32x32
    macs = 30 * 30 * 8 * 3 * 9 + 14 * 14 * 4 * 8 * (1 + 9 + 25) + 20 * 10
    (folder / "meta.json").write_text(json.dumps({
        "mean": [.5] * 3, "std": [.25] * 3, "input_size": 32, "crop_pct": 32 / 36,
        "interpolation": "bilinear", "transform_input": False, "source": "zztoy",
        "name": "zz_toy", "params": int(params), "aux_params": 0, "macs": macs}))


@pytest.mark.slow
def test_adding_a_network_is_one_file_and_its_references(tmp_path):
    """The toy family in a temporary file, imported before collection (``-p``), joins the
    parametrised registry-driven tests and passes them; its converter source is checked against
    its references like torchvision's and timm's."""
    (tmp_path / "zz_toy_family.py").write_text(FAMILY)
    refs = tmp_path / "references"
    _write_references(refs / "zztoy_zz_toy")  # the case test_convert.py derives for the source
    env = dict(os.environ, INCEPTIONZOO_REFERENCES=str(refs),
               PYTHONPATH=os.pathsep.join([str(tmp_path)] + [
                   p for p in [os.environ.get("PYTHONPATH")] if p]))
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "zz_toy_family", "-p", "no:cacheprovider", "-v",
         "-k", "zz_toy or test_every_source_has_a_reference_case",
         *[os.path.join("tests", f) for f in SUITE]],
        cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-3000:]
    ran = set(re.findall(r"::(\w+)\[[^\]]*zz_toy[^\]]*\] PASSED", p.stdout))
    for test in ["test_metadata_describes_the_network_built",        # example_options
                 "test_model_info_takes_the_first_declared_specs_preprocessing",
                 "test_parameter_names_are_stable", "test_features_then_head_is_the_network",
                 "test_converted_network_gives_the_source_logits",   # the references
                 "test_counts_equal_the_reference_implementations"]:
        assert test in ran, (test, sorted(ran))
    assert "test_every_source_has_a_reference_case PASSED" in p.stdout
    assert len(ran) >= 30, sorted(ran)
    assert "zz_toy" not in list_models()  # this process never saw it
