"""End to end: a real photo through each converter source's own evaluation pipeline and model
(PyTorch side environment, ``tests/reference/make_photo_references.py``) against the
Predictor on the converted export: the same top-5 classes and probabilities within 1e-3.

The networks have random weights, random BN statistics and a classifier rescaled so that the
logits on the photo have a standard deviation of 3: their softmax is then spread over many
classes, and a wrong resize, crop, interpolation or normalisation shows (the Predictor of
commit 66a7a46, which squashed the photo to the input size, fails for all five pairs)."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

from conftest import ROOT
from test_convert import TORCH_PYTHON

from inceptionzoo import get_model
from inceptionzoo.convert import convert
from inceptionzoo.export import export
from inceptionzoo.serving import Predictor

CASES = {
    "tv_inception_v3": "torchvision:inception_v3",
    "tv_googlenet": "torchvision:googlenet",
    "timm_inception_v3": "timm:inception_v3",
    "timm_inception_v4": "timm:inception_v4",
    "timm_inception_resnet_v2": "timm:inception_resnet_v2",
}


def photo():
    """matplotlib's sample photo (a JPEG of 512x600)."""
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


@pytest.fixture(scope="module")
def photo_references(tmp_path_factory):
    """Checkpoints and the source pipeline's probabilities on the photo, per case (generated
    once per module, or, while developing, an existing folder named by
    $INCEPTIONZOO_PHOTO_REFERENCES)."""
    if os.environ.get("INCEPTIONZOO_PHOTO_REFERENCES"):
        return pathlib.Path(os.environ["INCEPTIONZOO_PHOTO_REFERENCES"])
    if not os.path.isfile(TORCH_PYTHON):
        pytest.fail(f"the PyTorch side environment is missing ({TORCH_PYTHON}): create it with "
                    "`make torch-env` (CI does), or set INCEPTIONZOO_TORCH_PYTHON")
    out = tmp_path_factory.mktemp("photo-references")
    proc = subprocess.run([TORCH_PYTHON, os.path.join(ROOT, "tests", "reference",
                                                      "make_photo_references.py"),
                           str(out), photo()], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


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
