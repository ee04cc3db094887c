"""The predictor's input handling and its checks of an export (issue #10)."""
import json
import os
import re
import shutil
import struct
import zlib

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from inceptionzoo import get_model
from inceptionzoo.cli import main
from inceptionzoo.mnist import example_images
from inceptionzoo.export import export
from inceptionzoo.serving import PredictionError, Predictor
from inceptionzoo.serving_core import Classifier

NAME = "inception_mnist"


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The shipped weights exported twice: plain (float32 input) and --preprocess (uint8)."""
    root = tmp_path_factory.mktemp("exports")
    net = get_model(NAME, pretrained=True)
    for kind, pre in (("plain", False), ("baked", True)):
        export(net, str(root / kind / NAME), preprocess=pre)
    return {kind: str(root / kind) for kind in ("plain", "baked")}


@pytest.fixture(scope="module")
def predictors(exports):
    return {kind: Predictor(folder) for kind, folder in exports.items()}


@pytest.fixture
def copy_of(exports, tmp_path):
    def make(kind):
        dst = tmp_path / kind
        shutil.copytree(exports[kind], dst, symlinks=True)
        return dst
    return make


def _seven():
    path = [p for p in example_images() if os.path.basename(p).startswith("digit-7")][0]
    return path, np.asarray(Image.open(path))


def _meta_path(folder):
    return os.path.join(folder, f"{NAME}-meta.json")


def _edit_meta(folder, edit):
    path = _meta_path(folder)
    meta = json.load(open(path))
    edit(meta)
    os.remove(path)  # a link into the export's folder: write a plain file in its place
    with open(path, "w") as f:
        json.dump(meta, f)
    return path


# -- silent wrong results ---------------------------------------------------------------------

def test_symbol_of_another_export_is_refused(exports, copy_of, capsys):
    """The --preprocess graph copied over a plain export's symbol file called a 7 a '1'."""
    plain = copy_of("plain")
    sym = plain / f"{NAME}-symbol.json"
    sym.unlink()
    shutil.copyfile(os.path.join(exports["baked"], f"{NAME}-symbol.json"), sym)
    with pytest.raises(PredictionError, match="symbol.json' is corrupt or not the exported one"):
        Predictor(str(plain))
    assert main(["predict", str(plain), _seven()[0]]) == 2
    assert "symbol.json' is corrupt" in capsys.readouterr().err


def test_edited_graph_is_refused(copy_of):
    plain = copy_of("plain")
    sym = plain / f"{NAME}-symbol.json"
    text = sym.read_text()
    assert '"pool_type": "max"' in text
    sym.unlink()
    sym.write_text(text.replace('"pool_type": "max"', '"pool_type": "avg"', 1))
    with pytest.raises(PredictionError, match="corrupt or not the exported one"):
        Predictor(str(plain))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_refused(predictors, value):
    x = np.zeros((2, 28, 28), np.float32)
    x[1, 3, 4] = value
    for p in predictors.values():
        with pytest.raises(PredictionError, match="finite"):
            p.predict(x)
        with pytest.raises(PredictionError, match="image 0"):
            p.predict([x[1]])


def test_out_of_range_pixels_agree_in_both_exports(predictors):
    """Pixels are rounded and clipped to 0..255 by the one transform, in both kinds of export."""
    _, seven = _seven()
    x = seven.astype(np.float32)
    x[:5] = -80.0          # negative: black
    x[10:12] = 900.0       # above 255: white
    x[20:] += 0.4          # not integers: rounded
    clipped = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    for p in predictors.values():
        np.testing.assert_allclose(p.probabilities(x), p.probabilities(clipped), rtol=1e-6,
                                   atol=1e-7)
    np.testing.assert_allclose(predictors["plain"].probabilities(x),
                               predictors["baked"].probabilities(x), rtol=1e-4, atol=1e-6)
    for dtype in (np.int64, np.int16, np.float64):
        got = [p.probabilities(x.astype(dtype)) for p in predictors.values()]
        np.testing.assert_allclose(got[0], got[1], rtol=1e-4, atol=1e-6)


# -- tracebacks where a clear error belongs ---------------------------------------------------

def _png_header(width, height):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_is_a_prediction_error(predictors, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(20000, 20000))
    p = predictors["baked"]
    with pytest.raises(PredictionError, match="bomb.png: image too large"):
        p.predict_files([bomb])
    with pytest.raises(PredictionError, match="too large"):
        p.predict(bomb.read_bytes())
    assert p.predict_files(example_images()[:1], top_k=1)[0][0][0] == "0"  # still usable


def test_meta_without_params_sha1_names_the_file(copy_of):
    folder = copy_of("baked")
    path = _edit_meta(folder, lambda m: m.pop("params_sha1"))
    with pytest.raises(PredictionError, match=f"{path}: missing key.*params_sha1"):
        Predictor(str(folder))


def test_meta_not_json_names_the_file(copy_of):
    folder = copy_of("plain")
    path = _meta_path(folder)
    os.remove(path)
    open(path, "w").write("{not json")
    with pytest.raises(PredictionError, match=f"{path}: cannot read the export's metadata"):
        Predictor(str(folder))


@pytest.mark.parametrize("kind,shape", [("plain", [0, 1, 32, 32]), ("baked", [0, 32, 32]),
                                        ("plain", [0, 3, 28, 28]), ("plain", "28x28")])
def test_meta_batch_shape_that_the_graph_cannot_take(copy_of, kind, shape):
    folder = copy_of(kind)
    path = _edit_meta(folder, lambda m: m.update(batch_shape=shape))
    with pytest.raises(PredictionError, match=f"{path}: 'batch_shape'|{path}: batch_shape"):
        Predictor(str(folder))


def test_an_older_export_naming_the_batch_shape_input_shape_still_loads(copy_of):
    """Exports of inceptionzoo <= 0.1.0 wrote ``meta["input_shape"]`` for what is
    ``meta["batch_shape"]`` now (``input_shape`` is ``(C, H, W)`` everywhere else): the one
    reader takes either, and the Predictor gives the same probabilities."""
    folder = copy_of("plain")
    want = Predictor(str(folder)).probabilities(example_images()[3])
    path = _edit_meta(folder, lambda m: m.update(input_shape=m.pop("batch_shape")))
    assert "batch_shape" not in json.load(open(path))
    got = Predictor(str(folder)).probabilities(example_images()[3])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_meta_classes_that_disagree_with_the_graph(copy_of):
    folder = copy_of("plain")
    _edit_meta(folder, lambda m: m.update(classes=12, labels=[str(i) for i in range(12)]))
    with pytest.raises(PredictionError, match="graph gives 10 outputs per image"):
        Predictor(str(folder))


def test_a_feature_extractor_export_is_refused_as_a_classifier(copy_of):
    folder = copy_of("plain")
    path = _edit_meta(folder, lambda m: m.update(outputs="features"))
    with pytest.raises(PredictionError, match=f"{path}: this export gives features \\(a feature "
                       "extractor's graph\\), not one logit per class: it cannot be served as a "
                       "classifier"):
        Predictor(str(folder))


@pytest.mark.parametrize("key,value,words", [
    ("outputs", "embeddings", "'outputs' must be one of logits, features; got 'embeddings'"),
    ("batching", {"batch_size": 0, "max_batch_delay_ms": 5}, "'batching' must be"),
    ("batching", {"batch_size": 8}, "'batching' must be"),
    ("input_dtype", "float64", "'input_dtype' must be float32 or uint8; got 'float64'"),
])
def test_meta_fields_of_the_serving_core_are_checked(copy_of, key, value, words):
    folder = copy_of("plain")
    _edit_meta(folder, lambda m: m.update({key: value}))
    with pytest.raises(PredictionError, match=re.escape(words)):
        Predictor(str(folder))


def test_meta_without_outputs_is_logits_and_batching_is_read(copy_of):
    folder = copy_of("plain")
    _edit_meta(folder, lambda m: (m.pop("outputs", None),  # an export of before "outputs"
                                  m.update(batching={"batch_size": 8, "max_batch_delay_ms": 20})))
    p = Predictor(str(folder))
    assert "outputs" not in p.meta and p.meta["batching"]["batch_size"] == 8
    assert p.probabilities(np.zeros((1, 28, 28), np.uint8)).shape == (1, 10)


# -- predictor input types --------------------------------------------------------------------

def test_accepted_inputs_singly_and_in_lists(predictors):
    path, seven = _seven()
    raw = open(path, "rb").read()
    pil = Image.open(path)
    for p in predictors.values():
        want = p.probabilities(seven[None])
        assert p.predict(seven[None], top_k=1)[0][0][0] == "7"
        for single in (path, raw, bytearray(raw), pil, seven, mx.nd.array(seven),
                       mx.nd.array(seven[None], dtype="uint8")):
            np.testing.assert_allclose(p.probabilities(single), want, rtol=1e-5, atol=1e-7)
        mixed = [path, raw, pil, seven, mx.nd.array(seven), seven[..., None]]
        got = p.probabilities(mixed)
        assert got.shape == (6, 10)
        np.testing.assert_allclose(got, np.repeat(want, 6, axis=0), rtol=1e-5, atol=1e-7)
        assert p.predict_files(path, top_k=1) == p.predict_files([path], top_k=1)
        # PIL images of other sizes are resized, as files are
        big = pil.resize((56, 40))
        assert p.predict([big, pil.resize((20, 20))], top_k=1)[0][0][0] == "7"


@pytest.mark.parametrize("bad,words", [
    (None, "got None"),
    (3.5, "got a float"),
    ({"a": 1}, "got a dict"),
    ([[0, 1], [2, 3]], r"image 0 \(a list\): expected a path"),
    ([np.zeros((28, 28)), None], r"image 1 \(None\)"),
    ([np.zeros((28, 28)), np.zeros((20, 20))],
     r"image 1 \(ndarray of shape \(20, 20\)\): expected an image of shape \(28, 28\)"),
    (np.array(["a", "b"]), "pixel values must be numbers"),
    ("no/such/file.png", "no/such/file.png: no such file"),
    (b"not an image", "12 bytes: not an image of a supported format"),
    (0, r"^expected a path, encoded bytes, a PIL image, a numpy array or an mx\.nd\.NDArray, "
        r"or a list of them; got a int$"),
])
def test_refused_inputs_name_what_was_given(predictors, bad, words):
    p = predictors["baked"]
    with pytest.raises(PredictionError, match=words):
        p.predict(bad)


def test_bad_top_k(predictors):
    with pytest.raises(PredictionError, match="top_k must be an integer >= 1; got 0"):
        predictors["plain"].predict(_seven()[1], top_k=0)
    assert len(predictors["plain"].predict(_seven()[1], top_k=np.int64(2))[0]) == 2


def test_predictor_shared_by_threads_matches_serial(predictors):
    from concurrent.futures import ThreadPoolExecutor

    p = predictors["baked"]
    files = example_images()
    serial = [p.predict_files([f], top_k=3) for f in files]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda f: p.predict_files([f], top_k=3), files * 3))
    assert threaded == serial * 3


def test_export_files_are_loaded_as_one_set(exports, tmp_path):
    """The predictor reads the files of one generation folder, whatever the links say later."""
    folder = tmp_path / "d"
    shutil.copytree(exports["plain"], folder, symlinks=True)
    p = Predictor(str(folder))
    assert os.path.dirname(os.path.realpath(folder / f"{NAME}-meta.json")) != str(folder)
    assert p.predict_files(example_images()[:1], top_k=1)[0][0][0] == "0"


def test_kept_input_buffers_never_mix_batches(predictors):
    """The predictor refills one input buffer per batch shape: every answer is still the one
    for its own images, across shapes, repeats and more shapes than it keeps buffers for (the
    least recent are dropped)."""
    rng = np.random.RandomState(3)
    images = (rng.rand(40, 28, 28) * 255).astype(np.uint8)
    sizes = (2, 3, 2, 1, 4, 5, 6, 7, 8, 9, 10, 11, 2, 3)  # 14 batches, 11 shapes
    for kind, pred in predictors.items():
        alone = np.concatenate([pred.probabilities(images[i:i + 1]) for i in range(40)])
        start = 0
        for size in sizes:
            if start + size > 40:
                start = 0
            got = pred.probabilities(images[start:start + size])
            np.testing.assert_allclose(got, alone[start:start + size], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{kind}, batch of {size} from {start}")
            start += size
        kept = [shape[0] for shape in pred.classifier._local.buffers]
        assert kept == [6, 7, 8, 9, 10, 11, 2, 3], kind  # the 8 most recent, oldest first


def test_a_batch_over_the_buffer_budget_is_not_kept(predictors, monkeypatch):
    pred = predictors["baked"]
    monkeypatch.setattr(Classifier, "INPUT_BUFFER_BYTES", 3 * 28 * 28)
    images = (np.random.RandomState(4).rand(5, 28, 28) * 255).astype(np.uint8)
    big = pred.probabilities(images)
    assert all(shape[0] <= 3 for shape in pred.classifier._local.buffers)
    np.testing.assert_allclose(big[:1], pred.probabilities(images[:1]), rtol=1e-5, atol=1e-6)


# -- images: the weights' evaluation transform, 16-bit samples, corrupt files -----------------


def _squashed(img, size=(28, 28)):
    """What the Predictor of inceptionzoo 66a7a46 did to an image: grey, resized straight to
    the model's size (bilinear)."""
    return np.asarray(img.convert("L").resize(size, Image.BILINEAR))


def test_mnist_predictions_are_unchanged(predictors):
    """crop_pct 1.0 at 28x28: the shipped digits, and a square digit of another size, give
    exactly what the old squash-to-28x28 path gave."""
    p = predictors["plain"]
    arrays = [np.asarray(Image.open(f)) for f in example_images()]
    np.testing.assert_array_equal(p.probabilities(example_images()), p.probabilities(arrays))
    big = Image.fromarray(_seven()[1]).resize((56, 56), Image.NEAREST)
    np.testing.assert_array_equal(p.probabilities([big]), p.probabilities([_squashed(big)]))
    assert p.meta["preprocess"]["resize_size"] == 28
    assert p.meta["preprocess"]["crop_size"] == [28, 28]


def test_export_records_and_predictor_applies_the_weights_transform(tmp_path):
    """An export of weights evaluated with crop_pct 0.5 and bicubic filtering: meta.json
    records resize 56 / crop 28 / bicubic, and a photo is resized and centre-cropped so."""
    import dataclasses

    net = get_model(NAME, pretrained=True)
    net.info = dataclasses.replace(net.info, crop_pct=0.5, resize_size=56,
                                   interpolation="bicubic")
    export(net, str(tmp_path / NAME))
    pre = json.load(open(tmp_path / f"{NAME}-meta.json"))["preprocess"]
    assert {k: pre[k] for k in ("resize_size", "crop_size", "interpolation")} == {
        "resize_size": 56, "crop_size": [28, 28], "interpolation": "bicubic"}
    p = Predictor(str(tmp_path))
    img = Image.fromarray(_seven()[1]).resize((112, 84), Image.BILINEAR)
    want = np.asarray(img.resize((74, 56), Image.BICUBIC).crop((23, 14, 51, 42)))
    np.testing.assert_array_equal(p.probabilities([img]), p.probabilities([want]))
    assert not np.array_equal(p.probabilities([img]), p.probabilities([_squashed(img)]))


def test_export_without_the_transform_keeps_working(copy_of):
    """meta.json of an older export (no resize_size / crop_size / interpolation): images are
    squashed to the model's size as before."""
    def drop(meta):
        for key in ("resize_size", "crop_size", "interpolation"):
            del meta["preprocess"][key]
    folder = copy_of("plain")
    _edit_meta(folder, drop)
    p = Predictor(str(folder))
    img = Image.fromarray(_seven()[1]).resize((56, 40), Image.BILINEAR)
    np.testing.assert_array_equal(p.probabilities([img]), p.probabilities([_squashed(img)]))


def test_meta_with_a_bad_transform_names_the_file(copy_of):
    path = _edit_meta(copy_of("plain"), lambda m: m["preprocess"].update(interpolation="cubic"))
    with pytest.raises(PredictionError, match=f"{path}: preprocess: interpolation must be"):
        Predictor(os.path.dirname(path))


def _png16_file(path, array8):
    Image.fromarray(array8.astype(np.uint16) * 257).save(path)
    return str(path)


@pytest.mark.parametrize("kind", ["plain", "baked"])
def test_sixteen_bit_png_predicts_like_the_same_image_in_8_bits(predictors, tmp_path, kind):
    path, seven = _seven()
    sixteen = _png16_file(tmp_path / "seven16.png", seven)
    assert Image.open(sixteen).mode.startswith("I;16")
    p = predictors[kind]
    np.testing.assert_array_equal(p.probabilities([sixteen]), p.probabilities([path]))
    assert p.predict_files([sixteen], top_k=1)[0][0][0] == "7"


#: corrupt headers that PIL answers with ValueError (not OSError), and a refused format
CORRUPT = {"maxval.ppm": b"P5\n28 28\n0\n" + bytes(784),
           "plain.pgm": b"P2\n2 2\n255\n1 2 x 4\n",
           "sgi.png": b"\x01\xda\x00\x05" + bytes(508),
           "eps.png": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_image_files_are_a_prediction_error_naming_the_file(predictors, tmp_path,
                                                                   name, capsys):
    path = tmp_path / name
    path.write_bytes(CORRUPT[name])
    p = predictors["baked"]
    with pytest.raises(PredictionError, match=f"^{path}: not"):
        p.predict_files([path])
    with pytest.raises(PredictionError, match=r"^\d+ bytes: not"):
        p.predict(CORRUPT[name])
    assert main(["predict", os.path.dirname(p.tuning_file), str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"inceptionzoo predict: error: {path}: not")


def test_handler_takes_any_size_16_bit_and_refuses_corrupt_headers(exports, predictors,
                                                                   tmp_path):
    """The MMS handler, in-process, on the files of the plain export: a digit of another size
    gets the Predictor's probabilities; a 16-bit PNG the 8-bit one's; corrupt headers 400."""
    import inceptionzoo.mms_handler as mms_handler
    from test_mms import FakeContext

    service = mms_handler.InceptionZooService()
    ctx = FakeContext(exports["plain"])
    service.initialize(ctx)
    path, seven = _seven()
    wide = io_bytes(Image.fromarray(seven).resize((45, 30), Image.BILINEAR))
    bodies = [wide, open(_png16_file(tmp_path / "s16.png", seven), "rb").read(),
              open(path, "rb").read()] + [CORRUPT[k] for k in sorted(CORRUPT)]
    answers = [json.loads(a) for a in service.handle([{"body": b} for b in bodies], ctx)]
    want = predictors["plain"].probabilities([wide, path])
    for got, ref in zip((answers[0], answers[2]), want):
        np.testing.assert_allclose([got["probabilities"][str(i)] for i in range(10)], ref,
                                   atol=1e-6)
    assert answers[1]["probabilities"] == answers[2]["probabilities"]
    assert ctx.status == {i: (400, "Bad Request") for i in range(3, 3 + len(CORRUPT))}
    assert all(answers[i]["error"].startswith("the request body (")
               for i in range(3, 3 + len(CORRUPT)))


def io_bytes(img, fmt="PNG"):
    """A PIL image encoded."""
    import io

    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()
