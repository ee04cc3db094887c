"""Image folders and RecordIO as training data: detection, transforms, clear errors, and
fine-tuning the shipped MNIST network on a 5-digit image folder."""

import os

import numpy as np
import pytest

from inceptionzoo import get_model, model_info
from inceptionzoo.mnist import DataError, load_mnist
from inceptionzoo.datasets import ArraySource, FolderSource, RecordSource, open_sources
from inceptionzoo.packing import write_recordio
from _sample_data import write_image_folder
from inceptionzoo.train import evaluate, train


def write_folder(root, images, labels, per_class):
    """Real MNIST digits 0..4 as PNG files, one subfolder per digit."""
    return write_image_folder(root, images, labels, per_class, classes=range(5))


@pytest.fixture(scope="module")
def digits(tmp_path_factory, mnist_dir):
    """``DIR/train`` (20 per digit 0..4) and ``DIR/val`` (10 per digit) image folders and
    their RecordIO twins ``DIR/rec/train.rec`` + ``.idx``, ``DIR/rec/val.rec`` + ``.idx``."""
    root = tmp_path_factory.mktemp("digits")
    x, y = load_mnist(mnist_dir, train=True)
    write_folder(str(root / "train"), x, y, 20)
    x, y = load_mnist(mnist_dir, train=False)
    write_folder(str(root / "val"), x, y, 10)
    (root / "rec").mkdir()
    for split in ("train", "val"):
        write_recordio(str(root / split), str(root / "rec" / split))
    return root


MNIST_INFO = model_info("inception_mnist")


def _all(source, batch_size=7):
    xs, ys = [], []
    for b in source.epoch(batch_size):
        xs.append(b.data.asnumpy())
        ys.append(b.label.asnumpy())
    return np.concatenate(xs), np.concatenate(ys)


def test_data_dir_detection(digits, mnist_dir):
    tr, va = open_sources(MNIST_INFO, data_dir=str(digits))
    assert isinstance(tr, FolderSource) and isinstance(va, FolderSource)
    assert (len(tr), len(va), tr.classes) == (100, 50, ["0", "1", "2", "3", "4"])
    tr, va = open_sources(MNIST_INFO, data_dir=str(digits / "rec"))
    assert isinstance(tr, RecordSource) and (len(tr), len(va), tr.num_classes) == (100, 50, 5)
    tr, va = open_sources(MNIST_INFO, data_dir=mnist_dir)
    assert isinstance(tr, ArraySource) and (len(tr), len(va)) == (60000, 10000)
    tr, va = open_sources(MNIST_INFO, train_data=str(digits / "rec" / "train.rec"),
                          val_data=str(digits / "val"))
    assert isinstance(tr, RecordSource) and isinstance(va, FolderSource)
    with pytest.raises(DataError, match="found neither MNIST IDX files .* nor train.rec"):
        open_sources(MNIST_INFO, data_dir=str(digits / "train"))


def test_folder_and_recordio_decode_the_same_digits(digits, mnist_dir):
    """For an MNIST network both pipelines give the seed's transform of the same digits."""
    fx, fy = _all(open_sources(MNIST_INFO, data_dir=str(digits), train=False)[1])
    rx, ry = _all(open_sources(MNIST_INFO, data_dir=str(digits / "rec"), train=False)[1])
    assert fx.shape == rx.shape == (50, 1, 28, 28) and fx.dtype == np.float32
    key = lambda x, y: sorted((int(lab), (img * 255).round().astype(np.uint8).tobytes())  # noqa
                              for img, lab in zip(x, y))
    assert key(fx, fy) == key(rx, ry)
    x, y = load_mnist(mnist_dir, train=False)
    want = sorted((int(y[i]), x[i].tobytes()) for d in range(5)
                  for i in np.flatnonzero(y == d)[:10])
    assert key(fx, fy) == want


def test_rgb_network_gets_augmented_normalised_batches(digits):
    info = get_model("googlenet", classes=5).info
    tr, va = open_sources(info, data_dir=str(digits))
    b = next(tr.epoch(4, np.random.RandomState(0)))
    assert b.data.shape == (4, 3, 224, 224) and b.global_size == 4
    v = next(va.epoch(4))
    assert v.data.shape == (4, 3, 224, 224)
    # the same image through the train transform twice differs (random crop / flip)
    a1 = tr.dataset[0][0]
    a2 = [tr.dataset[0][0] for _ in range(5)]
    assert any(not np.array_equal(a1, a) for a in a2)
    # validation is deterministic and normalised with the metadata's mean/std
    raw = va.dataset[0][0]
    np.testing.assert_array_equal(raw, va.dataset[0][0])
    mean = np.asarray(info.mean).reshape(3, 1, 1)
    std = np.asarray(info.std).reshape(3, 1, 1)
    assert ((raw * std + mean) >= -1e-5).all() and ((raw * std + mean) <= 1 + 1e-5).all()
    rb = next(open_sources(info, data_dir=str(digits / "rec"))[0].epoch(4,
                                                                       np.random.RandomState(0)))
    assert rb.data.shape == (4, 3, 224, 224)


def test_unreadable_image_names_the_file(digits, tmp_path):
    import shutil

    root = tmp_path / "d"
    shutil.copytree(digits / "train", root / "train")
    shutil.copytree(digits / "val", root / "val")
    bad = root / "train" / "3" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"no image here" * 10)
    tr, _ = open_sources(MNIST_INFO, data_dir=str(root))
    with pytest.raises(DataError, match=f"{bad}: not a readable image"):
        _all(tr)


def test_empty_class_folder_and_missing_index(digits, tmp_path):
    import shutil

    root = tmp_path / "d"
    shutil.copytree(digits / "train", root / "train")
    shutil.copytree(digits / "val", root / "val")
    (root / "train" / "9").mkdir()
    with pytest.raises(DataError, match=f"{root / 'train' / '9'}: empty class folder"):
        open_sources(MNIST_INFO, data_dir=str(root))
    shutil.copy(digits / "rec" / "train.rec", tmp_path / "lonely.rec")
    with pytest.raises(DataError, match=f"its index {tmp_path / 'lonely.idx'} is missing"):
        open_sources(MNIST_INFO, train_data=str(tmp_path / "lonely.rec"),
                     val_data=str(digits / "val"))
    (root / "train" / "9").rmdir()
    shutil.rmtree(root / "val" / "4")
    with pytest.raises(DataError, match="has classes .* expected the same class subfolders"):
        open_sources(MNIST_INFO, data_dir=str(root))


def test_more_classes_than_the_network_outputs(digits, tmp_path, capsys):
    from inceptionzoo.cli import main

    code = main(["train", "inception_mnist", "--data-dir", str(digits), "--classes", "3",
                 "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{digits / 'train'}: the data has 5 classes (0, 1, 2, 3, 4) but the network " \
           "would output 3 (--classes 3): expected --classes >= 5" in err
    assert not (tmp_path / "run").exists()


def test_train_on_recordio_and_evaluate_a_folder(digits, tmp_path):
    m = train(data_dir=str(digits / "rec"), recipe="seed", lr=0.01, batch_size=20, epochs=1,
              pretrained=True, out=str(tmp_path), progress=False, log=lambda *a: None)
    assert m["classes"] == 5 and m["data"]["kind"] == "RecordSource"
    r = evaluate(params=m["params"], data_dir=str(digits))
    assert r["num_samples"] == 50
    assert abs(r["accuracy"] - m["accuracy"]) <= 1 / 50  # same digits, other pipeline


# Fine-tuning: the shipped inception_mnist (10 digits) with a new 5-class classifier, one
# epoch of 1,000 real digits 0..4 as PNG files (200 per class), SGD lr 0.01, batch 20
# (50 steps). Measured here: 0.970 pretrained, 0.304 from scratch on 500 validation digits.
FINETUNE = dict(recipe="seed", lr=0.01, batch_size=20, epochs=1)
FINETUNE_MIN_ACCURACY = 0.93


@pytest.mark.slow
def test_fine_tuning_the_shipped_network_on_an_image_folder(tmp_path, mnist_dir):
    x, y = load_mnist(mnist_dir, train=True)
    write_folder(str(tmp_path / "train"), x, y, 200)
    x, y = load_mnist(mnist_dir, train=False)
    write_folder(str(tmp_path / "val"), x, y, 100)
    quiet = dict(data_dir=str(tmp_path), progress=False, log=lambda *a: None, **FINETUNE)
    tuned = train(pretrained=True, **quiet)
    scratch = train(**quiet)
    assert tuned["classes"] == 5 and tuned["num_train"] == 1000 and tuned["num_test"] == 500
    assert tuned["accuracy"] >= FINETUNE_MIN_ACCURACY
    assert scratch["accuracy"] < tuned["accuracy"] - 0.3
    # --freeze-features: only the classifier moves
    before = get_model("inception_mnist", pretrained=True)
    frozen = train(pretrained=True, freeze_features=True, **quiet)
    net = frozen["net"]
    for name, p in before._collect_params_with_prefix().items():
        got = net._collect_params_with_prefix()[name].data().asnumpy()
        if name.startswith("output."):
            assert got.shape[0] == 5
        else:
            np.testing.assert_array_equal(got, p.data().asnumpy(), err_msg=name)
    assert frozen["accuracy"] >= 0.85


def test_folder_validation_is_the_weights_evaluation_transform(tmp_path):
    """Validation images of a folder go through the Predictor's transform (PIL, shorter side
    to resize_size, centre crop), and 16-bit PNGs are scaled, not clipped."""
    from PIL import Image

    rng = np.random.RandomState(0)
    photo = rng.randint(0, 256, (80, 56), np.uint8)  # H 80, W 56
    for split in ("train", "val"):
        (tmp_path / split / "a").mkdir(parents=True)
        Image.fromarray(photo).save(tmp_path / split / "a" / "photo.png")
        Image.fromarray(photo.astype(np.uint16) * 257).save(tmp_path / split / "a" / "p16.png")
    _, val = open_sources(MNIST_INFO, data_dir=str(tmp_path))
    x, _ = _all(val)
    want = np.asarray(Image.fromarray(photo).resize((28, 40), Image.BILINEAR))[6:34]
    for got in x:  # p16.png, photo.png
        np.testing.assert_allclose(got[0], want / np.float32(255), atol=1e-7)


# -- bad files, one labeling, RecordIO as a security boundary (issue 19) ------------------------

def _png_header_only(path, width, height):
    """A PNG whose header claims ``width x height`` pixels (a decompression bomb: a few bytes
    that would decode to gigabytes)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1) * 4))
                     + chunk(b"IEND", b""))


def _bad_image(kind, path, good):
    """Write one kind of bad image file at ``path`` (``good``: a valid PNG's bytes)."""
    from PIL import Image

    if kind == "bomb":
        _png_header_only(path, 20000, 20000)
    elif kind == "bomb-below-2x":  # PIL only warns between its limit and twice the limit
        _png_header_only(path, 14000, 14000)
    elif kind == "truncated":
        path.write_bytes(good[:len(good) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_bytes(b"just some notes, not an image\n")
    elif kind == "gif":
        Image.new("L", (28, 28)).save(path, format="GIF")
    else:
        raise AssertionError(kind)


BAD_IMAGES = {"bomb": "image too large to decode safely",
              "bomb-below-2x": "image too large to decode safely",
              "truncated": "not a readable image",
              "empty": "not an image of a supported format \\(PNG, JPEG\\)",
              "text": "not an image of a supported format \\(PNG, JPEG\\)",
              "gif": "a GIF image; expected PNG or JPEG"}


@pytest.mark.parametrize("kind", sorted(BAD_IMAGES))
def test_bad_image_in_a_folder_stops_with_the_file_named(kind, digits, tmp_path):
    """Decoded in the loader's thread pool or packed into RecordIO: one DataError naming the
    file, whatever PIL raises (a bomb raised DecompressionBombError, a traceback)."""
    import re
    import shutil

    root = tmp_path / "d"
    shutil.copytree(digits / "train", root / "train")
    bad = root / "train" / "3" / "bad.png"
    _bad_image(kind, bad, next((root / "train" / "3").glob("*.png")).read_bytes())
    tr = FolderSource(str(root / "train"), MNIST_INFO, threads=2)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ": " + BAD_IMAGES[kind]):
        _all(tr)
    with pytest.raises(DataError, match=re.escape(str(bad)) + ": " + BAD_IMAGES[kind]):
        write_recordio(str(root / "train"), str(tmp_path / "packed"))
    assert not list(tmp_path.glob("packed*")) and not list(tmp_path.glob(".packed*"))


def test_bomb_in_training_data_is_one_line_from_the_cli(digits, tmp_path, capsys):
    import shutil

    from inceptionzoo.cli import main

    root = tmp_path / "d"
    shutil.copytree(digits / "train", root / "train")
    shutil.copytree(digits / "val", root / "val")
    bad = root / "train" / "0" / "bomb.png"
    _png_header_only(bad, 20000, 20000)
    code = main(["train", "inception_mnist", "--data-dir", str(root), "--epochs", "1",
                 "--batch-size", "100", "--no-progress", "--data-threads", "2",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{bad}: image too large to decode safely" in err


@pytest.fixture()
def odd_folder(digits, tmp_path):
    """Classes a, b, c of real digits with a nested sub-folder, a stray image and a text file
    at the top level, a hidden class folder, hidden and non-image files, an upper-case
    extension, a symlinked image and a symlink loop."""
    import os
    import shutil

    root = tmp_path / "odd"
    src = sorted((digits / "train" / "1").glob("*.png"))
    for i, cls in enumerate("abc"):
        (root / cls).mkdir(parents=True)
        for j in range(2):
            shutil.copy(src[3 * i + j], root / cls / f"{j}.png")
    (root / "a" / "nested" / "deeper").mkdir(parents=True)
    shutil.copy(src[10], root / "a" / "nested" / "n.png")
    shutil.copy(src[11], root / "a" / "nested" / "deeper" / "d.PNG")
    shutil.copy(src[12], root / "stray.png")
    (root / "README.txt").write_text("not data")
    (root / ".hidden").mkdir()
    shutil.copy(src[13], root / ".hidden" / "h.png")
    (root / "b" / ".ipynb_checkpoints").mkdir()
    shutil.copy(src[14], root / "b" / ".ipynb_checkpoints" / "c.png")
    (root / "b" / "._0.png").write_bytes(b"AppleDouble metadata, not an image")
    (root / "b" / "notes.txt").write_text("not an image")
    os.symlink(root / "a" / "0.png", root / "c" / "link.png")
    os.symlink(root / "c", root / "c" / "loop")
    return root


def _labelled(source):
    x, y = _all(source)
    return sorted((int(lab), (img * 255).round().astype(np.uint8).tobytes())
                  for img, lab in zip(x, y))


def test_folder_and_recordio_label_an_odd_folder_the_same(odd_folder, tmp_path):
    folder = FolderSource(str(odd_folder), MNIST_INFO, train=False)
    assert folder.classes == ["a", "b", "c"]
    got = [(os.path.relpath(p, odd_folder), lab) for p, lab in folder.items]
    assert got == [("a/0.png", 0), ("a/1.png", 0), ("a/nested/n.png", 0),
                   ("a/nested/deeper/d.PNG", 0), ("b/0.png", 1), ("b/1.png", 1),
                   ("c/0.png", 2), ("c/1.png", 2), ("c/link.png", 2)]
    rec = RecordSource(write_recordio(str(odd_folder), str(tmp_path / "packed")), MNIST_INFO,
                       train=False)
    assert rec.num_classes == 3 and len(rec) == len(folder) == 9
    assert _labelled(rec) == _labelled(folder)
    assert rec.classes == ["a", "b", "c"]  # the folders' names, from packed.lst (were numbers)
    os.remove(tmp_path / "packed.lst")  # a .rec without its list: the labels' numbers
    assert RecordSource(str(tmp_path / "packed.rec"), MNIST_INFO).classes == ["0", "1", "2"]


def test_packing_recordio_without_opencv_names_the_extra(digits, tmp_path, monkeypatch):
    """im2rec.py imports cv2, which a `[cpu]` install lacks: refused before im2rec runs."""
    import os

    from inceptionzoo.packing import RECORDIO_EXTRA

    fake = tmp_path / "site" / "cv2"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'cv2'\")\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(fake.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                              if p]))
    with pytest.raises(ModuleNotFoundError, match=rf"pip install -c constraints.txt -e "
                       rf"'\.\[cpu,{RECORDIO_EXTRA}\]'"
                       r" \(opencv-python\)") as info:
        write_recordio(str(digits / "val"), str(tmp_path / "val"))
    assert "needs OpenCV (cv2)" in str(info.value) and "Traceback" not in str(info.value)
    assert not list(tmp_path.glob("val*"))


def _valid_rec(digits, tmp_path):
    import shutil

    for ext in (".rec", ".idx"):
        shutil.copy(digits / "rec" / ("val" + ext), tmp_path / ("t" + ext))
    return tmp_path / "t.rec", tmp_path / "t.idx"


def _record(label, image, flag=0):
    import mxnet as mx

    return mx.recordio.pack(mx.recordio.IRHeader(flag, label, 0, 0), image)


def _damage(kind, rec, idx, png):
    """One kind of broken RecordIO pair, from a valid one."""
    import struct

    import mxnet as mx

    data, index = rec.read_bytes(), idx.read_text()
    offsets = sorted(int(line.split("\t")[1]) for line in index.splitlines())
    if kind == "truncated rec":
        rec.write_bytes(data[:len(data) * 2 // 3])
    elif kind == "truncated in padding":
        rec.write_bytes(data[:-1])
    elif kind == "garbage rec":
        rec.write_bytes(np.random.RandomState(0).bytes(len(data)))
    elif kind == "empty rec":
        rec.write_bytes(b"")
    elif kind == "idx past the end":
        idx.write_text(index + f"999\t{len(data) + 1000}\n")
    elif kind == "idx between records":
        idx.write_text(index + f"999\t{offsets[1] + 4}\n")
    elif kind == "garbage idx":
        idx.write_text("abc\tdef\n")
    elif kind == "negative offset":
        idx.write_text("0\t-5\n")
    elif kind == "binary idx":
        idx.write_bytes(b"\xff\xfe\x00garbage")
    elif kind == "idx of fewer records":
        idx.write_text("".join(index.splitlines(True)[:-1]))
    elif kind == "header flag 2**31":  # the label vector it claims is not there
        b = bytearray(data)
        b[offsets[1] + 8:offsets[1] + 12] = struct.pack("<I", 2 ** 31 - 1)
        rec.write_bytes(bytes(b))
    elif kind == "bad continuation flag":
        b = bytearray(data)
        length = struct.unpack_from("<I", b, offsets[1] + 4)[0] & ((1 << 29) - 1)
        b[offsets[1] + 4:offsets[1] + 8] = struct.pack("<I", (3 << 29) | length)
        rec.write_bytes(bytes(b))
    else:  # rewrite the file with one bad record
        w = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "w")
        records = {"text image": _record(1.0, b"hello, not an image"),
                   "empty image": _record(1.0, b""),
                   "truncated png": _record(1.0, png[:len(png) // 2]),
                   "label -1": _record(-1.0, png), "label 0.5": _record(0.5, png),
                   "label 1e9": _record(1e9, png), "label nan": _record(float("nan"), png),
                   "short record": b"abc"}
        w.write_idx(0, _record(0.0, png))
        w.write_idx(1, records[kind])
        w.close()


RECORDIO_DAMAGE = ["truncated rec", "truncated in padding", "garbage rec", "empty rec",
                   "idx past the end", "idx between records", "garbage idx", "negative offset",
                   "binary idx", "idx of fewer records", "header flag 2**31",
                   "bad continuation flag", "text image", "empty image", "truncated png",
                   "label -1", "label 0.5", "label 1e9", "label nan", "short record"]


@pytest.mark.parametrize("kind", RECORDIO_DAMAGE)
def test_broken_recordio_is_a_data_error_naming_the_file(kind, digits, tmp_path):
    """Checked when opened: on main these were TypeErrors, ValueErrors, MXNet tracebacks, a
    class list of a billion names, or (bad image bytes) MXNet's decoder killing the process
    with SIGFPE on the first batch."""
    import re

    rec, idx = _valid_rec(digits, tmp_path)
    png = next((digits / "val" / "1").glob("*.png")).read_bytes()
    _damage(kind, rec, idx, png)
    with pytest.raises(DataError, match=f"^({re.escape(str(rec))}|{re.escape(str(idx))}): "):
        RecordSource(str(rec), MNIST_INFO, train=False)


def test_multi_part_records_are_read(tmp_path):
    """An image whose bytes hold RecordIO's magic number is split into parts by the writer;
    the checking reader joins them as dmlc's reader does."""
    import io
    import struct

    import mxnet as mx
    from PIL import Image

    from inceptionzoo.datasets import scan_recordio

    buf = io.BytesIO()
    Image.new("L", (28, 28)).save(buf, format="PNG", pnginfo=None)
    magic = struct.pack("<I", 0xCED7230A)
    png = buf.getvalue()
    # a tEXt chunk holding the magic number at a 4-byte aligned offset of the record
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("k", "x" * 3 + magic.decode("latin-1") * 4)
    buf = io.BytesIO()
    Image.new("L", (28, 28)).save(buf, format="PNG", pnginfo=info)
    png = buf.getvalue()
    w = mx.recordio.MXIndexedRecordIO(str(tmp_path / "m.idx"), str(tmp_path / "m.rec"), "w")
    w.write_idx(7, _record(2.0, png))
    w.close()
    assert (tmp_path / "m.rec").read_bytes().count(magic) > 1  # split into parts
    labels, keys = scan_recordio(str(tmp_path / "m.rec"), str(tmp_path / "m.idx"), keys=True)
    assert labels.tolist() == [2] and keys.tolist() == [7]


@pytest.mark.parametrize("name", ["2/tab\there.png", "2/line\nbreak.png", " 5/lead.png"])
def test_names_im2rec_cannot_list_are_refused(name, digits, tmp_path):
    """im2rec's list is tab-separated and its reader strips every field: such a name would
    pack another file, or none."""
    import shutil

    root = tmp_path / "d"
    shutil.copytree(digits / "val", root)
    odd = root / name
    odd.parent.mkdir(exist_ok=True)
    shutil.copy(next((root / "2").glob("*.png")), odd)
    with pytest.raises(DataError, match="a file name with a tab, a line break or white space"):
        write_recordio(str(root), str(tmp_path / "packed"))
    assert not list(tmp_path.glob("packed*"))
    assert str(odd) in [p for p, _ in FolderSource(str(root), MNIST_INFO).items]


def test_packing_names_moved_but_still_import_from_datasets_with_a_warning():
    """write_recordio, im2rec_path and RECORDIO_EXTRA live in inceptionzoo.packing; the old
    place still gives them for one release, with a DeprecationWarning naming the new one, and
    the test-only writers are gone from the package."""
    import inceptionzoo.datasets as datasets
    import inceptionzoo.packing as packing

    for name in ("write_recordio", "im2rec_path", "RECORDIO_EXTRA"):
        with pytest.warns(DeprecationWarning, match=r"inceptionzoo\.datasets\.\w+ is deprecated "
                          r"and goes in the next release: import it from inceptionzoo\.packing"):
            assert getattr(datasets, name) is getattr(packing, name)
        assert name not in datasets.__all__
    for name in ("write_image_folder", "write_mnist_subset", "no_such_name"):
        with pytest.raises(AttributeError):
            getattr(datasets, name)


def test_old_names_of_the_data_source_and_its_threads_still_work_with_a_warning(digits):
    """``datasets.Source`` is ``DataSource`` now, and the decoding threads are ``threads=``
    (``workers=`` named processes elsewhere); the old spellings work for one release, each
    with the one deprecation sentence, and giving both names is an error."""
    import inceptionzoo.datasets as datasets
    from inceptionzoo.data_source import DataSource
    from inceptionzoo.errors import InceptionZooError

    with pytest.warns(DeprecationWarning, match=r"inceptionzoo\.datasets\.Source is deprecated "
                      r"and goes in the next release: use inceptionzoo\.data_source\.DataSource"):
        assert datasets.Source is DataSource
    with pytest.warns(DeprecationWarning, match=r"FolderSource\(workers=\.\.\.\) is deprecated "
                                                r"and goes in the next release: use threads="):
        assert FolderSource(str(digits / "val"), MNIST_INFO, workers=2).threads == 2
    with pytest.raises(InceptionZooError, match="give threads= only"):
        FolderSource(str(digits / "val"), MNIST_INFO, threads=1, workers=2)


def test_every_normalisation_of_an_image_goes_through_the_one_normaliser(digits, mnist_dir,
                                                                          monkeypatch):
    """Issue 30: `transforms.Normalisation` is the one home of normalising an image. The
    evaluation transform (what the Predictor and the MMS handler run), an image folder, MNIST's `to_input`
    (and so MNIST arrays) normalise through its `__call__`; MXNet's RecordIO iterator takes its
    constants from its `on_pixels`. The spies change what they return, so a path that normalised
    on its own would show the plain values."""
    import mxnet as mx

    from inceptionzoo import transforms
    from inceptionzoo.mnist import to_input

    call, on_pixels = transforms.Normalisation.__call__, transforms.Normalisation.on_pixels
    seen = []

    def spy_call(self, batch):
        seen.append("call")
        return call(self, batch) + np.float32(1000)

    def spy_on_pixels(self):
        seen.append("on_pixels")
        return [12.5] * self.channels, [3.0] * self.channels

    monkeypatch.setattr(transforms.Normalisation, "__call__", spy_call)
    monkeypatch.setattr(transforms.Normalisation, "on_pixels", spy_on_pixels)

    png = next((digits / "val" / "3").glob("*.png"))
    spec = transforms.EvalTransform.from_info(MNIST_INFO)
    assert spec.normalise(spec.pixels(png)[None]).min() >= 1000

    folder = FolderSource(str(digits / "val"), MNIST_INFO, train=False, threads=1)
    assert next(folder.epoch(4)).data.asnumpy().min() >= 1000

    x, y = load_mnist(mnist_dir, train=False)
    assert to_input(x[:4]).min() >= 1000
    assert next(ArraySource(x[:8], y[:8], MNIST_INFO).epoch(4)).data.asnumpy().min() >= 1000

    made = {}
    real_iter = mx.io.ImageRecordIter

    def spy_iter(**kwargs):
        made.update(kwargs)
        return real_iter(**kwargs)

    monkeypatch.setattr(mx.io, "ImageRecordIter", spy_iter)
    rec = RecordSource(str(digits / "rec" / "val.rec"), MNIST_INFO, train=False, threads=1)
    got = next(rec.epoch(4)).data.asnumpy()
    assert (made["mean_r"], made["std_r"]) == (12.5, 3.0) and "on_pixels" in seen
    assert got.min() == pytest.approx((0 - 12.5) / 3.0)
    assert seen.count("call") >= 4


def test_every_image_is_accepted_by_the_one_policy(digits, tmp_path, monkeypatch):
    """Issue 30: `imaging.check_image` alone decides what an image file may be (formats, size,
    bomb limit, mode): the evaluation transform with every decodable format, image folders,
    packing and RecordIO records with the training formats (PNG, JPEG) as its parameter."""
    import shutil

    from inceptionzoo import imaging, recordio, transforms
    from inceptionzoo.datasets import scan_recordio

    policy, seen = imaging.check_image, []

    def spy(img, label, formats=imaging.FORMATS):
        seen.append((str(label), formats))
        return policy(img, label, formats)

    monkeypatch.setattr(imaging, "check_image", spy)
    png = next((digits / "val" / "3").glob("*.png"))
    transforms.EvalTransform.from_info(MNIST_INFO).pixels(png)
    assert seen == [(str(png), imaging.FORMATS)]

    seen.clear()
    folder = FolderSource(str(digits / "val"), MNIST_INFO, train=False, threads=1)
    for _ in folder.epoch(2):  # the whole epoch: no decoding thread is left running when the
        pass                   # RecordIO count below starts
    assert len(seen) == len(folder) and all(f == ("PNG", "JPEG") for _, f in seen)

    seen.clear()
    labels = scan_recordio(str(digits / "rec" / "val.rec"), str(digits / "rec" / "val.idx"))
    assert len(seen) == len(labels) and all("record" in w and f == ("PNG", "JPEG")
                                            for w, f in seen)

    seen.clear()
    (tmp_path / "f" / "a").mkdir(parents=True)
    shutil.copy(png, tmp_path / "f" / "a" / "x.png")

    class Stop(Exception):
        pass

    def stop():
        raise Stop

    monkeypatch.setattr(recordio, "im2rec_path", stop)  # after the images are checked
    with pytest.raises(Stop):
        write_recordio(str(tmp_path / "f"), str(tmp_path / "packed"))
    assert seen == [(str(tmp_path / "f" / "a" / "x.png"), ("PNG", "JPEG"))]
