"""docs/weights.md's walk-through, run as written: a torchvision checkpoint -> convert -> predict
a photo -> fine-tune on an image folder -> export a .mar -> a real MXNet Model Server answers.

The commands are read from the page (between its ``walkthrough`` markers), so the page and this
test cannot drift apart. ``inceptionzoo`` lines run verbatim in an empty folder; the MMS lines
run a real server on free ports of the test's own (the page's ``printf`` writes the fixed
ports 8080/8081 a reader would use); the ``curl`` line's body is sent to that server."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, torch_references
from test_convert import torch_cases
from mms_server import running_mms

BIN = os.path.dirname(sys.executable)
CHECKPOINT = "googlenet-1378be20.pth"


def _commands():
    text = open(os.path.join(ROOT, "docs", "weights.md")).read()
    m = re.search(r"<!-- walkthrough:begin -->\n```\n(.*?)```\n<!-- walkthrough:end -->", text,
                  re.S)
    assert m, "docs/weights.md lost its walkthrough markers"
    return [line for line in m.group(1).splitlines() if line.strip()]


def _photo():
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


def _photos(folder):
    """Three classes of real-photo crops: a (top-left quarters), b (mirrored), c (grey)."""
    from PIL import Image, ImageOps

    img = Image.open(_photo()).convert("RGB")
    w, h = img.size
    for split, count in (("train", 4), ("val", 2)):
        for i in range(count):
            box = (8 * i, 6 * i, w // 2 + 8 * i + 40, h // 2 + 6 * i + 40)
            crop = img.crop(box)
            for cls, out in (("a", crop), ("b", ImageOps.mirror(crop)),
                             ("c", ImageOps.grayscale(crop).convert("RGB"))):
                d = folder / split / cls
                d.mkdir(parents=True, exist_ok=True)
                out.save(d / f"{split}{i}.jpg", quality=90)


def _run(args, cwd):
    proc = subprocess.run([os.path.join(BIN, "inceptionzoo")] + args, cwd=cwd,
                          capture_output=True, text=True)
    assert proc.returncode == 0, (args, proc.stderr[-3000:])
    return proc.stdout


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(tmp_path_factory, tmp_path):
    from inceptionzoo.serving import Predictor
    from inceptionzoo.weights_spec import imagenet_classes

    refs = torch_references("make_photo_references.py", tmp_path_factory.mktemp("walk-ref"),
                            _photo(), torch_cases(["tv_googlenet"]))
    want_top1 = imagenet_classes()[int(np.argmax(np.load(refs / "tv_googlenet" / "probs.npy")))]
    shutil.copy(refs / "tv_googlenet" / "model.pth", tmp_path / CHECKPOINT)
    shutil.copy(_photo(), tmp_path / "grace_hopper.jpg")
    _photos(tmp_path / "photos")

    lines = _commands()
    assert [shlex.split(line)[0] for line in lines] == [
        "inceptionzoo"] * 5 + ["printf", "multi-model-server", "curl", "multi-model-server"]
    out = {}
    for line in lines[:5]:
        args = shlex.split(line)[1:]
        out[args[0], len(out)] = _run(args, tmp_path)

    # 1. convert: the torchvision GoogLeNet weights' spec beside the params
    side = json.loads((tmp_path / "weights" / "googlenet_bn.tv_in1k.json").read_text())
    assert (side["model"], side["source"], side["resize_size"], side["input_size"],
            side["interpolation"], side["mean"], side["class_names"]) == (
        "googlenet_bn", "torchvision:googlenet", 256, [3, 224, 224], "bilinear", [0.5] * 3,
        "imagenet-1k")
    # 2. export: the evaluation transform in meta.json
    pre = json.loads((tmp_path / "deploy" / "googlenet_bn-meta.json").read_text())["preprocess"]
    assert (pre["resize_size"], pre["crop_size"], pre["interpolation"]) == (256, [224, 224],
                                                                            "bilinear")
    # 3. predict: the class torchvision's own pipeline ranks first, by its ImageNet name
    printed = out["predict", 2].strip()
    assert printed.startswith(f"grace_hopper.jpg: {want_top1} ("), (printed, want_top1)
    # 4. train: a 3-class checkpoint whose sidecar names the folder's classes
    ckpt_side = json.loads((tmp_path / "runs" / "photos" / "googlenet_bn-0001.json").read_text())
    assert ckpt_side["classes"] == 3 and ckpt_side["class_names"] == ["a", "b", "c"]
    # 5. export --mar
    assert (tmp_path / "model-store" / "googlenet_bn.mar").is_file()

    # 6. the server, as the page starts it; the curl body sent to it
    start = shlex.split(lines[6])
    store = start[start.index("--model-store") + 1]
    models = start[start.index("--models") + 1:]
    assert models == ["googlenet_bn=googlenet_bn.mar"]
    curl = shlex.split(lines[7])
    url, body_file = curl[curl.index("-X") + 2], curl[curl.index("-T") + 1]
    name = url.rsplit("/predictions/", 1)[1]
    with running_mms(tmp_path, tmp_path / store, models, ready=[name]) as server:
        code, body = server.predict(name, (tmp_path / body_file).read_bytes())
    assert code == 200, body
    answer = json.loads(body)
    assert set(answer["probabilities"]) == {"a", "b", "c"}
    assert answer["probability"] == max(answer["probabilities"].values())
    assert answer["label"] == max(answer["probabilities"], key=answer["probabilities"].get)
    local = Predictor(str(tmp_path / "model-store"))
    probs = local.probabilities([str(tmp_path / body_file)])[0]
    labels = local.predict([str(tmp_path / body_file)], top_k=3)[0]
    assert {lab for lab, _ in labels} == {"a", "b", "c"}
    served = np.array([answer["probabilities"][c] for c in ("a", "b", "c")])
    np.testing.assert_allclose(served, probs, atol=1e-5, rtol=0)
