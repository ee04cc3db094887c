import gzip
import hashlib
import os

import numpy as np
import pytest

from inceptionzoo import mnist
from inceptionzoo.mnist import DataError, load_mnist, read_idx, resolve_data_dir, to_input, \
    write_idx

# SHA-1 of the decompressed IDX bytes, from ../shared/data/README.md
README_SHA1 = {
    "train-images-idx3-ubyte.gz": "c3557c10f29b266e19b3eeee1553c85e0ef4a8ea",
    "train-labels-idx1-ubyte.gz": "adbf52269f5d842899f287c269e2883e40b4f6e2",
    "t10k-images-idx3-ubyte.gz": "65e11ec1fd220343092a5070b58418b5c2644e26",
    "t10k-labels-idx1-ubyte.gz": "a6d52cc628797e845885543326e9f10abb8a6f89",
}


def test_real_mnist_checksums(mnist_dir):
    for name, sha1 in README_SHA1.items():
        with gzip.open(os.path.join(mnist_dir, name), "rb") as f:
            assert hashlib.sha1(f.read()).hexdigest() == sha1, name


@pytest.mark.parametrize("train,count", [(True, 60000), (False, 10000)])
def test_real_mnist_loads(mnist_dir, train, count):
    x, y = load_mnist(mnist_dir, train=train)
    assert x.shape == (count, 28, 28) and x.dtype == np.uint8
    assert y.shape == (count,) and set(np.unique(y)) == set(range(10))


def _write_split(folder, n=12, gz=True, train=False, images=None, labels=None):
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (n, 28, 28)) if images is None else images
    labels = rng.randint(0, 10, n) if labels is None else labels
    ext = ".gz" if gz else ""
    stems = mnist.MNIST_FILES[train]
    write_idx(os.path.join(folder, stems[0] + ext), images)
    write_idx(os.path.join(folder, stems[1] + ext), labels)
    return [os.path.join(folder, s + ext) for s in stems], images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_small_idx_round_trip(tmp_path, gz):
    _, images, labels = _write_split(str(tmp_path), gz=gz)
    x, y = load_mnist(str(tmp_path), train=False)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_transform_is_the_seeds():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    out = to_input(x)
    assert out.shape == (1, 1, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [[0, 1], [0.2, 0.4]], rtol=1e-7)


def _corrupt(path, how):
    raw = open(path, "rb").read()
    if how == "truncated-gzip":
        open(path, "wb").write(raw[: len(raw) // 2])
    elif how == "not-gzip":
        open(path, "wb").write(b"this is not gzip data at all")
    else:
        body = gzip.decompress(raw)
        if how == "truncated-data":
            body = body[:-100]
        elif how == "trailing":
            body = body + b"\0" * 7
        elif how == "bad-magic":
            body = b"\x00\x00\x0d\x03" + body[4:]
        elif how == "short":
            body = body[:2]
        open(path, "wb").write(gzip.compress(body))


@pytest.mark.parametrize("which,how,words", [
    (0, "truncated-gzip", "not a readable gzip file"),
    (1, "not-gzip", "not a readable gzip file"),
    (0, "truncated-data", "truncated"),
    (1, "trailing", "trailing bytes"),
    (0, "bad-magic", "bad IDX magic number 0x00000d03"),
    (1, "short", "too short"),
])
def test_broken_files_are_named(tmp_path, which, how, words):
    paths, _, _ = _write_split(str(tmp_path))
    _corrupt(paths[which], how)
    with pytest.raises(DataError) as exc:
        load_mnist(str(tmp_path), train=False)
    assert paths[which] in str(exc.value) and words in str(exc.value)


def test_missing_file_is_named(tmp_path):
    paths, _, _ = _write_split(str(tmp_path))
    os.remove(paths[1])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*not found in " + str(tmp_path)):
        load_mnist(str(tmp_path), train=False, download=False)


@pytest.mark.parametrize("images,labels,words", [
    (np.zeros((5, 28, 28)), np.zeros(4), "holds 5 images but"),
    (np.zeros((5, 28, 27)), np.zeros(5), "28x27 pixels, expected 28x28"),
    (np.zeros((5, 28, 28)), np.array([0, 1, 10, 2, 3]), "label 10 at index 2"),
    (np.zeros((5, 28)), np.zeros(5), "2-d IDX data, expected 3-d"),
])
def test_inconsistent_data(tmp_path, images, labels, words):
    _write_split(str(tmp_path), images=images, labels=labels)
    with pytest.raises(DataError, match=words):
        load_mnist(str(tmp_path), train=False)


def test_read_idx_missing(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(str(tmp_path / "nope.gz"))


def test_data_dir_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTIONZOO_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "arg")) == str(tmp_path / "arg")  # argument wins
    assert resolve_data_dir() == str(tmp_path / "env")
    monkeypatch.delenv("INCEPTIONZOO_DATA")
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxhome"))
    assert resolve_data_dir(download=False) == str(tmp_path / "mxhome" / "datasets" / "mnist")


def test_download_goes_through_mxnet(tmp_path, monkeypatch):
    """Offline here: check that the MXNet dataset class is asked for both splits, in MXNet's
    folder, and that its files are then read."""
    import mxnet as mx

    calls = []

    class FakeMNIST:
        def __init__(self, root, train):
            calls.append((root, train))
            os.makedirs(root, exist_ok=True)
            _write_split(root, train=train)

    monkeypatch.delenv("INCEPTIONZOO_DATA", raising=False)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    monkeypatch.setattr(mx.gluon.data.vision, "MNIST", FakeMNIST)
    x, _ = load_mnist(train=True)
    folder = str(tmp_path / "datasets" / "mnist")
    assert calls == [(folder, True), (folder, False)] and x.shape == (12, 28, 28)
    load_mnist(train=False)  # files are there now: no second download
    assert len(calls) == 2


def test_unreadable_raw_file_is_not_called_gzip(tmp_path):
    folder = tmp_path / "t10k-images-idx3-ubyte"  # a raw (non-.gz) name that cannot be read
    folder.mkdir()
    with pytest.raises(DataError) as exc:
        read_idx(str(folder), ndim=3)
    assert "cannot read the file" in str(exc.value) and "gzip" not in str(exc.value)
    assert str(folder) in str(exc.value)


def test_to_input_is_the_one_transform():
    """to_input runs the same block as the --preprocess graph and the predictor."""
    import mxnet as mx

    from inceptionzoo.transforms import InputTransform

    raw = np.random.RandomState(3).randint(0, 256, (4, 28, 28)).astype(np.uint8)
    block = InputTransform((1, 28, 28), 0.1307, 0.3081)
    np.testing.assert_array_equal(to_input(raw, mean=0.1307, std=0.3081),
                                  block(mx.nd.array(raw, dtype="uint8")).asnumpy())
    np.testing.assert_allclose(to_input(raw, mean=0.1307, std=0.3081),
                               ((raw / 255 - 0.1307) / 0.3081)[:, None], rtol=1e-5, atol=1e-6)
    # out-of-range and fractional values: rounded and clipped, as in the predictor
    x = np.array([[[-3.0, 300.0], [12.4, 12.6]]])
    np.testing.assert_allclose(to_input(x)[0, 0], np.array([[0, 255], [12, 13]]) / 255,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="finite"):
        to_input(np.full((1, 28, 28), np.nan))
    with pytest.raises(ValueError, match="std must be > 0"):
        to_input(raw, std=0)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        to_input(raw[0])


def test_old_module_name_is_a_deprecated_alias(monkeypatch):
    """``inceptionzoo.data`` (the module's name until 0.1.0) still imports, warns once with the
    new name, and gives the very objects of ``inceptionzoo.mnist``."""
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, "inceptionzoo.data", raising=False)
    with pytest.warns(DeprecationWarning, match=r"inceptionzoo\.data is deprecated and goes in "
                                                r"the next release: import inceptionzoo\.mnist"):
        old = importlib.import_module("inceptionzoo.data")
    assert sorted(old.__all__) == sorted(mnist.__all__)
    assert all(getattr(old, name) is getattr(mnist, name) for name in mnist.__all__)
