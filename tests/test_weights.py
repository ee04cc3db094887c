import os

import mxnet as mx
import pytest

from conftest import address_space_limit
from inceptionzoo import get_model, list_models, model_info, model_weights
from inceptionzoo.train import evaluate
from inceptionzoo.weights import (WeightsError, find_weights, install_weights, shipped_dir,
                                  weights_file_name, weights_home)
from inceptionzoo._io import sha1_file

def shipped(name):
    """The spec of the weights that ship with model ``name``, as a dict, or None."""
    found = [s for s in model_weights(name) if s.source == "shipped"]
    return found[0].to_dict() if found else None


PRETRAINED = [n for n in list_models() if shipped(n)]


def test_mnist_models_ship_weights():
    assert {"inception_mnist", "inception_naive_mnist"} <= set(PRETRAINED)


@pytest.mark.parametrize("name", PRETRAINED)
def test_shipped_file_matches_record(name):
    rec = shipped(name)
    path = os.path.join(shipped_dir(), weights_file_name(name))
    assert os.path.basename(path) == f"{name}-{rec['sha1'][:8]}.params"
    assert sha1_file(path) == rec["sha1"]
    for key in ("accuracy", "recipe", "command", "sha1"):
        assert rec[key], key


@pytest.mark.slow  # evaluates the 10,000 test digits with each network
@pytest.mark.parametrize("name", PRETRAINED)
def test_shipped_weights_reach_recorded_accuracy(name, mnist_dir, tmp_path):
    r = evaluate(name, pretrained=True, data_dir=mnist_dir, root=str(tmp_path))
    assert r["num_samples"] == 10000
    # Same code path as the recording (scripts/pretrain.py -> evaluate); on a CPU whose oneDNN
    # picks other kernels, float rounding may flip a borderline digit: allow 2 of 10,000.
    assert abs(r["accuracy"] - shipped(name)["accuracy"]) <= 2e-4
    if name == "inception_mnist":
        assert r["accuracy"] >= 0.992


def test_pretrained_loads_offline_and_predicts(tmp_path, mnist_dir):
    from inceptionzoo.mnist import load_mnist, to_input

    net = get_model("inception_mnist", pretrained=True, root=str(tmp_path))
    x, y = load_mnist(mnist_dir, train=False)
    pred = net(mx.nd.array(to_input(x[:200]))).argmax(axis=1).asnumpy()
    assert (pred == y[:200]).mean() > 0.97


def test_corrupt_cached_file_is_refused(tmp_path):
    name = "inception_mnist"
    bad = tmp_path / weights_file_name(name)
    bad.write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="corrupt or not the recorded one"):
        get_model(name, pretrained=True, root=str(tmp_path))


def test_cache_is_searched_first_and_resolved_at_call_time(tmp_path, monkeypatch):
    name = "inception_mnist"
    shipped = os.path.join(shipped_dir(), weights_file_name(name))
    monkeypatch.setenv("INCEPTIONZOO_HOME", str(tmp_path / "home"))
    assert weights_home() == str(tmp_path / "home")
    assert weights_home(str(tmp_path / "arg")) == str(tmp_path / "arg")  # argument wins
    assert find_weights(name) == shipped
    installed = install_weights(shipped, name)
    assert installed == str(tmp_path / "home" / weights_file_name(name))
    assert find_weights(name) == installed
    with pytest.raises(WeightsError, match="expects"):
        install_weights(__file__, name)


def test_missing_everywhere(tmp_path, monkeypatch):
    import inceptionzoo.weights as w

    monkeypatch.setattr(w, "shipped_dir", lambda: str(tmp_path / "empty"))
    with pytest.raises(WeightsError, match="no weight file for 'inception_mnist'"):
        find_weights("inception_mnist", root=str(tmp_path))


def test_params_file_of_another_model_is_a_clear_error(tmp_path):
    from inceptionzoo.weights import load_params_file

    other = get_model("inception_naive_mnist")
    other.initialize()
    other.save_parameters(str(tmp_path / "naive.params"))
    with pytest.raises(WeightsError, match="does not fit model"):
        load_params_file(get_model("inception_mnist"), str(tmp_path / "naive.params"))
    (tmp_path / "junk.params").write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="corrupt or not an MXNet params file"):
        load_params_file(get_model("inception_mnist"), str(tmp_path / "junk.params"))


@pytest.mark.skipif(mx.context.num_gpus() > 0, reason="needs a machine without GPUs")
def test_gpu_context_without_gpu_is_named_not_called_corrupt():
    with pytest.raises(ValueError) as exc:
        get_model("inception_mnist", pretrained=True, ctx=mx.gpu(0))
    assert "gpu0 requested" in str(exc.value) and "corrupt" not in str(exc.value)


def test_mxnet_errors_give_their_message_not_traceback(tmp_path):
    from inceptionzoo.weights import load_params_file

    (tmp_path / "junk.params").write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError) as exc:
        load_params_file(get_model("inception_mnist"), str(tmp_path / "junk.params"))
    assert "Traceback" not in str(exc.value)
    assert "(no NDArray list magic at the start)" in str(exc.value)  # checked before MXNet


def test_a_params_header_claiming_gigabytes_is_refused_before_mxnet_allocates(tmp_path):
    """MXNet allocates what a corrupt header claims (a rank of 0x7f93fac9: tens of GB, killed
    by the OOM killer); the file is checked against its size first."""
    from inceptionzoo.weights import load_params_file

    net = get_model("inception_mnist")
    net.initialize()
    net.save_parameters(str(tmp_path / "w.params"))
    data = bytearray((tmp_path / "w.params").read_bytes())
    data[27] = 0x7F  # the first array's magic becomes a legacy rank of 2140404425
    (tmp_path / "w.params").write_bytes(bytes(data))
    with address_space_limit(), pytest.raises(WeightsError, match="array 0 has magic 0x7f93fac9"):
        load_params_file(get_model("inception_mnist"), str(tmp_path / "w.params"))


# --- one resolve-and-load path, each file read once --------------------------------------------

def test_a_weights_file_is_read_once(tmp_path, monkeypatch):
    """The bytes are read once: their structure, SHA-1 and arrays all come from them (MXNet
    does not read the path a second time, nor does a separate SHA-1 pass)."""
    import builtins

    net = get_model("inception_mnist", classes=3)
    net.initialize()
    path = str(tmp_path / "w.params")
    net.save_parameters(path)
    opened = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        if os.fspath(file) == path:
            opened.append(args[:1] or kwargs.get("mode"))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(mx.nd, "load", lambda *a, **k: pytest.fail("MXNet read the path"))
    loaded = get_model("inception_mnist", pretrained=path)
    assert opened == [("rb",)]
    assert loaded.weights.classes == 3


def _code_only(path):
    """The file's Python with every string literal emptied and comments dropped (a line of
    code for another library, such as convert_back's gluoncv load line, is not a call)."""
    import tokenize

    out = []
    with open(path) as f:
        for tok in tokenize.generate_tokens(f.readline):
            if tok.type == tokenize.COMMENT:
                continue
            out.append((tok.type, '""' if tok.type == tokenize.STRING else tok.string))
    return tokenize.untokenize(out)


def test_one_function_decides_how_weights_are_loaded():
    """``_builder.resolve_weights`` is the only code that tells a tag, a converted file, a
    checkpoint and a plain file apart: no other module reads a sidecar, asks MXNet to load a
    parameter file by path, or decides by whether a sidecar exists."""
    import re

    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src",
                       "inceptionzoo")
    found = []
    for folder, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".py") or f in ("_builder.py", "weights_spec.py"):
                continue
            path = os.path.join(folder, f)
            text = _code_only(path)
            for pattern in (r"read_sidecar\(", r"\.load_parameters\(", r"plain_ok",
                            r"isfile\(sidecar_path", r"resolve_weights\("):
                for m in re.finditer(pattern, text):
                    line = text[:m.start()].count("\n") + 1
                    found.append(f"{os.path.relpath(path, src)}:{line}: {pattern}")
    # train.py hands what it resolved to get_model (the file is read once per run)
    assert [x for x in found if "resolve_weights" not in x] == [], found
    assert all(x.startswith("train.py:") for x in found), found


def test_a_plain_gluon_file_loads_with_the_default_transform(tmp_path):
    from inceptionzoo.weights_spec import PLAIN

    net = get_model("inception_mnist", classes=4)
    net.initialize()
    path = str(tmp_path / "plain.params")
    net.save_parameters(path)
    loaded = get_model("inception_mnist", pretrained=path)
    info = model_info("inception_mnist")
    assert loaded.weights.source == PLAIN and loaded.weights.classes == 4
    assert loaded.weights.sha1 == sha1_file(path) and loaded.info.pretrained["source"] == PLAIN
    assert (loaded.info.mean, loaded.info.std, loaded.info.resize_size) == \
        (info.mean, info.std, info.resize_size)
    x = mx.nd.random.uniform(shape=(2, 1, 28, 28))
    assert (loaded(x) - net(x)).abs().max().asscalar() == 0


# --- the weights' transform as one callable ----------------------------------------------------

def test_the_transform_takes_paths_images_arrays_and_lists(tmp_path):
    import numpy as np
    from PIL import Image

    from inceptionzoo import transforms_for
    from inceptionzoo.imaging import ImageError
    from inceptionzoo.transforms import EvalTransform

    spec = model_weights("inception_mnist")[0]
    t = spec.transforms()
    net = get_model("inception_mnist", pretrained=True)
    assert transforms_for(net) == t == EvalTransform.from_info(net.info)
    rs = np.random.RandomState(0)
    pixels = (rs.rand(40, 30) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    want = t.normalise(t.pixels(str(tmp_path / "a.png"))[None])
    for given in (str(tmp_path / "a.png"), Image.fromarray(pixels), pixels, [pixels],
                  pixels[None, :, :, None]):
        got = t(given)
        assert isinstance(got, mx.nd.NDArray) and got.shape == (1, 1, 28, 28), type(given)
        np.testing.assert_array_equal(got.asnumpy(), want)
    assert t([pixels, str(tmp_path / "a.png"), Image.fromarray(pixels)]).shape == (3, 1, 28, 28)
    with pytest.raises(ImageError, match="expected uint8 pixels"):
        t(pixels.astype(np.float32))
    with pytest.raises(ImageError, match="non-empty list"):
        t([])
