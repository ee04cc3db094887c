"""End to end: a real photo through each converter source's own evaluation pipeline and model
(PyTorch side environment, ``tests/reference/make_photo_references.py``) against the
Predictor on the converted export: the same top-5 classes and probabilities within 1e-3.

The networks have random weights, random BN statistics and a classifier rescaled so that the
logits on the photo have a standard deviation of 3: their softmax is then spread over many
classes, and a wrong resize, crop, interpolation or normalisation shows (the Predictor of
commit 66a7a46, which squashed the photo to the input size, fails for all five pairs)."""
import json
import os

import numpy as np
import pytest

from conftest import torch_references
from test_convert import CASES, torch_cases  # reference case -> SOURCE:NAME

from inceptionzoo import get_model
from inceptionzoo.convert import convert
from inceptionzoo.export import export
from inceptionzoo.serving import Predictor


def photo():
    """matplotlib's sample photo (a JPEG of 512x600)."""
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


@pytest.fixture(scope="module")
def photo_references(tmp_path_factory):
    """Checkpoints and the source pipeline's probabilities on the photo, per case (generated
    once per module, or, while developing, an existing folder named by
    $INCEPTIONZOO_PHOTO_REFERENCES)."""
    return torch_references("make_photo_references.py",
                            tmp_path_factory.mktemp("photo-references"), photo(),
                            torch_cases(CASES), reuse_env="INCEPTIONZOO_PHOTO_REFERENCES")


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_predictor_on_a_photo_matches_the_source_pipeline(photo_references, case, tmp_path):
    ref = photo_references / case
    want = np.load(ref / "probs.npy")
    params = str(tmp_path / "weights.params")
    side = convert(CASES[case], str(ref / "model.pth"), params)
    net = get_model(side["model"], pretrained=params)
    folder = tmp_path / "export"
    export(net, str(folder) + os.sep)
    meta = json.loads(next(folder.glob("*-meta.json")).read_text())
    assert meta["preprocess"]["resize_size"] == side["resize_size"]
    got = Predictor(str(folder)).probabilities([photo()])[0]
    top = np.argsort(-want)[:5]
    assert np.argsort(-got)[:5].tolist() == top.tolist(), (got[top], want[top])
    assert want[top[0]] > 0.05 and want[top[4]] > 0.01  # spread: the check can see a change
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=0)


def index_photo_example():
    """The three-line photo example that opens docs/index.md."""
    import re

    text = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "docs", "index.md")).read()
    m = re.search(r"<!-- photo:begin -->\n```python\n(.*?)```\n<!-- photo:end -->", text, re.S)
    assert m, "docs/index.md lost its photo example"
    assert text.index("<!-- photo:begin -->") < text.index("## Install"), "not first"
    return m.group(1)


@pytest.mark.slow
def test_the_index_photo_example_gives_torchvisions_top5(photo_references, tmp_path,
                                                         monkeypatch, capsys):
    """docs/index.md's three lines, run as written (the tag resolved in a weights folder where
    torchvision's Inception-v3 was converted, the photo in the working folder), print the
    names of the top-5 classes torchvision's own pipeline gives the same weights."""
    import ast
    import shutil

    from inceptionzoo.cli import main
    from inceptionzoo.weights_spec import imagenet_classes

    ref = photo_references / "tv_inception_v3"
    home = tmp_path / "home"
    assert main(["convert", "torchvision:inception_v3", str(ref / "model.pth"), "--out",
                 str(home)]) == 0
    shutil.copy(photo(), tmp_path / "grace_hopper.jpg")
    monkeypatch.setenv("INCEPTIONZOO_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    exec(compile(index_photo_example(), "docs/index.md", "exec"), {})
    printed = ast.literal_eval(capsys.readouterr().out.strip())
    want = np.load(ref / "probs.npy")
    assert printed == [imagenet_classes()[i] for i in np.argsort(-want)[:5]]
