"""MNIST as files: reading (and writing) the four IDX files, raw or gzipped, validated, and the
real MNIST test digits shipped with the package (:func:`example_images`).

Where the files live, in order: the ``data_dir`` argument, ``$INCEPTIONZOO_DATA``, then MXNet's
own dataset folder (``~/.mxnet/datasets/mnist`` unless ``$MXNET_HOME`` says otherwise). When the
files are not in that last folder and ``download=True``, MXNet's ``gluon.data.vision.MNIST``
downloads them there (this needs a network).
"""
import gzip
import os
import struct
import zlib

import numpy as np

from ._io import atomic_path, ensure_writable_dir
from .errors import DataError, InceptionZooError  # DataError: this import path stays
from .transforms import normaliser, to_pixels

__all__ = ["MNIST_FILES", "DataError", "read_idx", "resolve_data_dir", "load_mnist",
           "to_input", "write_idx", "example_images", "write_examples"]

MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_UBYTE = 0x08


def _find(folder, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def read_idx(path, ndim=None):
    """Read one IDX file of unsigned bytes (raw or ``.gz``) into a uint8 array.

    Parameters
    ----------
    path : str
        The file.
    ndim : int, optional
        The number of dimensions the file must have (3 for images, 1 for labels).

    Raises
    ------
    DataError
        Naming the file and what is wrong: bad gzip stream, bad magic number, wrong number of
        dimensions, fewer or more bytes than the header announces.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        if opener is open or getattr(err, "errno", None) is not None:  # not a gzip problem
            raise DataError(f"{path}: cannot read the file "
                            f"({err.strerror or err})") from None
        raise DataError(f"{path}: not a readable gzip file ({err})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    zero, dtype, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _UBYTE or not 1 <= dims <= 4:
        raise DataError(f"{path}: bad IDX magic number 0x{raw[:4].hex()} "
                        f"(expected 0x0000080{ndim or 'N'} for unsigned bytes)")
    if ndim is not None and dims != ndim:
        raise DataError(f"{path}: {dims}-d IDX data, expected {ndim}-d "
                        f"(magic 0x0000080{ndim})")
    header = 4 + 4 * dims
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    need = int(np.prod(shape))
    have = len(raw) - header
    if have != need:
        what = "truncated" if have < need else "has trailing bytes"
        raise DataError(f"{path}: {what}: the header announces shape {shape} = {need} bytes "
                        f"of data, the file holds {have}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path, array):
    """Write a uint8 array as an IDX file (gzipped if ``path`` ends in ``.gz``).

    Parameters
    ----------
    path : str
        The file to write.
    array : array_like
        Values 0..255, any number of dimensions from 1 to 4 (stored as uint8).
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    head = struct.pack(">HBB", 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                     *array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(head + array.tobytes())


def _mxnet_mnist_dir():
    from mxnet import base

    return os.path.join(base.data_dir(), "datasets", "mnist")


def resolve_data_dir(data_dir=None, download=True):
    """The folder MNIST is read from (see the module docstring for the order).

    Parameters
    ----------
    data_dir : str, optional
        An explicit folder; wins over everything else.
    download : bool, default True
        When falling back to MXNet's dataset folder, download the files there if missing.

    Returns
    -------
    str
        Absolute path of the folder.
    """
    if data_dir is not None:
        return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    env = os.environ.get("INCEPTIONZOO_DATA")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    folder = _mxnet_mnist_dir()
    if download and not all(_find(folder, s) for t in (True, False) for s in MNIST_FILES[t]):
        import mxnet as mx

        try:
            for train in (True, False):  # MXNet downloads and checks the .gz files
                mx.gluon.data.vision.MNIST(root=folder, train=train)
        except OSError as err:  # offline: requests' ConnectionError, after MXNet's retries
            reason = (str(err).strip().splitlines() or [type(err).__name__])[-1]
            raise DataError(f"MNIST is not in {folder} and downloading it failed ({reason}): "
                            "give the folder holding the MNIST files (train-images-idx3-ubyte"
                            "[.gz] ...) with --data-dir DIR (data_dir=DIR), or set "
                            "$INCEPTIONZOO_DATA") from None
    return folder


def load_mnist(data_dir=None, train=True, download=True):
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8 of one MNIST split, validated.

    Parameters
    ----------
    data_dir : str, optional
        Folder of the four IDX files (raw or ``.gz``); see :func:`resolve_data_dir`.
    train : bool, default True
        The training split, else the test split.
    download : bool, default True
        See :func:`resolve_data_dir`.

    Returns
    -------
    tuple of numpy.ndarray
        ``(images, labels)``.

    Raises
    ------
    DataError
        A file is missing, corrupt or truncated, image and label counts differ, an image is not
        28x28, or a label is outside 0..9.
    """
    folder = resolve_data_dir(data_dir, download=download)
    split = "train" if train else "test"
    paths = []
    for stem in MNIST_FILES[train]:
        path = _find(folder, stem)
        if path is None:
            raise DataError(f"MNIST {split} file {stem}[.gz] not found in {folder}")
        paths.append(path)
    images = read_idx(paths[0], ndim=3)
    labels = read_idx(paths[1], ndim=1)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{paths[0]}: images of {images.shape[1]}x{images.shape[2]} "
                        "pixels, expected 28x28")
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds "
                        f"{len(labels)} labels")
    if len(labels) and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(f"{paths[1]}: label {labels[bad]} at index {bad}, expected 0..9")
    return images, labels


def to_input(images, mean=0.0, std=1.0):
    """A batch of one-channel images -> the network's input, normalised by the one normaliser
    (:class:`inceptionzoo.transforms.Normalisation`; the same values as the graph op
    :class:`~inceptionzoo.transforms.InputTransform`).

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` pixel values 0..255 (uint8 normally; other numbers are rounded and
        clipped by :func:`~inceptionzoo.transforms.to_pixels`).
    mean, std : float
        Normalisation on pixels scaled to [0, 1]; the MNIST networks use 0 and 1 (the seed's
        transform: pixels / 255).

    Returns
    -------
    numpy.ndarray
        float32 ``(N, 1, H, W)``.

    Raises
    ------
    InceptionZooError
        Not a 3-d batch, NaN or infinite values, or invalid ``mean``/``std``.
    """
    norm = normaliser(mean, std, 1)
    x = to_pixels(images)
    if x.ndim != 3:
        raise InceptionZooError(f"to_input expects a batch of one-channel images (N, H, W); got "
                                f"shape {x.shape}")
    return norm(x)


def example_images():
    """The real MNIST test digits that ship with the package, for demos and tests.

    Returns
    -------
    list of str
        PNG paths ``.../examples/digit-LABEL-testINDEX.png``, sorted; LABEL is the true digit
        and INDEX its position in the MNIST test set.
    """
    import glob

    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples")
    return sorted(glob.glob(os.path.join(glob.escape(folder), "digit-*.png")))


def write_examples(out, overwrite=False):
    """Copy the shipped example digits (:func:`example_images`) into ``out``
    (``inceptionzoo examples``): the images the docs predict.

    Parameters
    ----------
    out : str
        Folder (created).
    overwrite : bool, default False
        Replace files of the same names; without it an existing one is a ``FileExistsError``
        and nothing is written.

    Returns
    -------
    list of str
        The files written, sorted.
    """
    import shutil

    out = ensure_writable_dir(out)
    sources = example_images()
    targets = [os.path.join(out, os.path.basename(s)) for s in sources]
    clash = [t for t in targets if os.path.exists(t)]
    if clash and not overwrite:
        raise FileExistsError(f"{clash[0]} exists ({len(clash)} of the {len(targets)} example "
                              "files): pass --overwrite to replace them, or give another --out")
    for source, target in zip(sources, targets):
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    return targets
