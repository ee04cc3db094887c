"""Fine-tuning from converted weights on an image folder, for every ImageNet network, through
the command line: ``inceptionzoo train NAME --params FILE --classes N
[--freeze-features]``. Each network runs at its smallest accepted input (the converted file's
spec says so) on a tiny folder of random RGB images; the checkpoints carry their own spec, so
that ``evaluate`` reads them with the weights' preprocessing."""
import dataclasses
import json

import mxnet as mx
import numpy as np
import pytest

from conftest import test_shape
from inceptionzoo.cli import main
from _sample_data import write_image_folder
from inceptionzoo.weights_spec import WeightsSpec, sidecar_path
from test_builder import IMAGENET, write_converted


def _folder(root, side, seed=0):
    rs = np.random.RandomState(seed)
    for split, n in (("train", 8), ("val", 4)):
        x = rs.randint(0, 256, size=(n, side, side, 3)).astype(np.uint8)
        write_image_folder(str(root / split), x, np.arange(n) % 2)
    return root


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGENET)
def test_fine_tune_converted_weights_on_an_image_folder(name, tmp_path, capsys):
    side = test_shape(name)[1]
    weights, saved = write_converted(name, tmp_path / f"{name}.params", seed=1, spec_changes=dict(
        input_size=(3, side, side), resize_size=side, mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225)))
    data = _folder(tmp_path / "imgs", side + 8)
    common = ["train", name, "--params", weights, "--classes", "2",
              "--data-dir", str(data), "--epochs", "1", "--batch-size", "4", "--lr", "0.01",
              "--no-progress"]
    assert main(common + ["--freeze-features", "--out", str(tmp_path / "frozen")]) == 0, \
        capsys.readouterr().err
    ckpt = tmp_path / "frozen" / f"{name}-0001.params"
    got = _params(ckpt)
    head = {k for k in saved if k.startswith(("output.", "fc."))}
    assert head and set(got) == set(saved)
    for key, value in saved.items():
        if key in head:
            assert got[key].shape[0] == 2
        else:  # every backbone parameter, batch-norm statistics included, bit-identical
            np.testing.assert_array_equal(got[key], value, err_msg=key)
    # the checkpoint's spec: the weights' preprocessing, the folder's classes
    spec = WeightsSpec.from_dict(json.loads(open(sidecar_path(str(ckpt))).read()))
    assert spec.model == name and spec.classes == 2 and spec.class_names == ("0", "1")
    assert spec.mean == (0.485, 0.456, 0.406) and spec.input_size == (3, side, side)
    assert spec.checkpoint_sha1 is not None and spec.source == "inceptionzoo train"
    capsys.readouterr()
    assert main(["evaluate", name, "--params", str(ckpt), "--data-dir", str(data),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    metrics = json.loads((tmp_path / "frozen" / "metrics.json").read_text())
    assert r["num_samples"] == 4 and r["accuracy"] == metrics["accuracy"]
    if name == "googlenet_bn":  # without --freeze-features the backbone moves (the check bites)
        assert main(common + ["--out", str(tmp_path / "free")]) == 0
        free = _params(tmp_path / "free" / f"{name}-0001.params")
        assert not np.array_equal(free["conv1.0.weight"], saved["conv1.0.weight"])
