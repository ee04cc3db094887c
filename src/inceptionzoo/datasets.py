"""Training and validation data for any registered network: MNIST IDX files, image folders and
RecordIO files, transformed as the network's metadata (``net.info``) says. This module holds the
sources and the labelling of a folder; what an image may be, and normalising it, is
:mod:`inceptionzoo.imaging` (:func:`~inceptionzoo.imaging.check_image`,
:class:`~inceptionzoo.transforms.Normalisation`); RecordIO's bytes are :mod:`inceptionzoo.recordio`.
(Over 500 lines: three sources sharing one contract, :class:`Source`/:class:`Batch` and the
per-worker cut, and :func:`open_sources`, which picks one from a path.)

Three kinds of source, found by :func:`open_sources`:

- **MNIST IDX** (the four files of :mod:`inceptionzoo.mnist`), held in memory;
- **an image folder**: one subfolder per class with PNG/JPEG files (classes in sorted folder
  order, see :func:`list_folder`), decoded by PIL and transformed in a thread pool;
- **RecordIO**: ``NAME.rec`` + ``NAME.idx`` packed by MXNet's ``tools/im2rec.py`` from the same
  listing (see :func:`inceptionzoo.packing.write_recordio`), read by ``mx.io.ImageRecordIter``,
  MXNet's C++ pipeline with its own decoding threads and augmentation. Every record is checked
  when the file is opened (:func:`inceptionzoo.recordio.scan_recordio`): the C++ decoder
  crashes the process on bytes it cannot decode.

A file that is not a readable PNG/JPEG image stops the run with a :class:`DataError` naming it
(nothing is skipped silently).

The transform is the weights' evaluation transform of ``net.info``
(:meth:`inceptionzoo.transforms.EvalTransform.from_info`: input size and channels, per-channel
``mean``/``std`` on pixels scaled to [0, 1], ``resize_size`` or ``crop_pct``, ``interpolation``),
the one the Predictor and the MMS handler apply: validation images of a folder are resized with
PIL so that the shorter side is ``resize_size`` and centre-cropped. Training images of a
3-channel network get the augmentation derived from the same spec
(:meth:`~inceptionzoo.transforms.EvalTransform.augment`: random resized crop with scale 0.08..1
and aspect ratio 3/4..4/3 to the input size with the spec's interpolation, random horizontal
flip); 1-channel (MNIST-like) networks get no augmentation. RecordIO is decoded by MXNet's C++
``ImageRecordIter`` (OpenCV) with the same spec: ``resize`` = ``resize_size``, centre crop to
the input size, ``inter_method`` from the interpolation table
(:data:`~inceptionzoo.transforms.OPENCV_INTERPOLATIONS`), mean/std from the one normaliser (the
same geometry; OpenCV's resampling differs from PIL's by a few grey levels).

Every source yields the *local part of each global batch* for one of ``num_workers`` workers
(:meth:`Source.epoch`): MNIST and image folders cut the same shuffled global batch on every
worker and hand worker ``rank`` its slice, so the sum of the gradients over the workers is the
gradient of the global batch whatever the number of workers. RecordIO is read as
``ImageRecordIter`` shards (``part_index``/``num_parts``), each worker with its part of the
file, as MXNet and gluoncv do.
"""
import os

import numpy as np

from . import _openmp
from ._checks import check_count
from ._deprecation import moved_names
from ._errors import mxnet_message
from .errors import InceptionZooError
from .imaging import ImageError, decode
from .transforms import OPENCV_INTERPOLATIONS, EvalTransform
from .mnist import DataError, MNIST_FILES, load_mnist, resolve_data_dir, to_input
from .recordio import IMAGE_FORMATS, MAX_CLASSES, check_image, listed_classes, scan_recordio

__all__ = ["IMAGE_EXTENSIONS", "IMAGE_FORMATS", "MAX_CLASSES", "Batch", "Source",
           "ArraySource", "FolderSource", "RecordSource", "open_sources", "list_folder",
           "check_image", "scan_recordio"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class Batch:
    """One worker's part of a global batch.

    Attributes
    ----------
    data : mxnet.nd.NDArray
        ``(n, C, H, W)`` float32, transformed; ``n`` may be 0.
    label : mxnet.nd.NDArray
        ``(n,)`` float32 class indices.
    global_size : int
        Number of images in the global batch (all workers together): the gradient scale.
    """

    __slots__ = ("data", "label", "global_size")

    def __init__(self, data, label, global_size):
        self.data, self.label, self.global_size = data, label, global_size


class Source:
    """Base class: a split of a data set, for one network.

    Attributes
    ----------
    path : str
        Where the data comes from (for messages).
    classes : list of str
        Class names, index = label.
    """

    path = ""
    classes = ()

    def __len__(self):
        raise NotImplementedError

    @property
    def num_classes(self):
        """Number of classes of the data."""
        return len(self.classes)

    def steps(self, batch_size):
        """Global batches in one epoch."""
        return -(-len(self) // batch_size)

    def epoch(self, batch_size, rng=None, rank=0, num_workers=1):
        """Iterate over this worker's part of each global batch of one epoch.

        Parameters
        ----------
        batch_size : int
            Global batch size (all workers together).
        rng : numpy.random.RandomState, optional
            Shuffles the order (the same on every worker); None reads in order.
        rank, num_workers : int
            This worker and how many share each batch.

        Returns
        -------
        iterator of Batch
        """
        raise NotImplementedError


def _check_labels(labels, path):
    if len(labels) == 0:
        raise DataError(f"{path}: no images (expected at least one)")


class _IndexedSource(Source):
    """A source whose samples can be read by index: the global order is cut identically on
    every worker."""

    def _load(self, index):
        """``(data, label)`` NDArrays of the samples ``index`` (a non-empty int array)."""
        raise NotImplementedError

    def _parts(self, batch_size, rng, rank, num_workers):
        n = len(self)
        order = rng.permutation(n) if rng is not None else np.arange(n)
        for start in range(0, n, batch_size):
            g = order[start:start + batch_size]
            yield np.array_split(g, num_workers)[rank], len(g)

    def epoch(self, batch_size, rng=None, rank=0, num_workers=1):
        import mxnet as mx

        for part, size in self._parts(batch_size, rng, rank, num_workers):
            if len(part):
                x, y = self._load(part)
            else:
                x = mx.nd.zeros((0,) + self.shape)
                y = mx.nd.zeros((0,))
            yield Batch(x, y, size)


class ArraySource(_IndexedSource):
    """Images held in memory as uint8 ``(N, H, W)``, e.g. MNIST IDX files.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 ``(N, H, W)``.
    labels : numpy.ndarray
        ``(N,)`` integer labels.
    info : ModelInfo
        The network's metadata: must take 1 channel of ``H x W``.
    path : str
        For messages.
    classes : list of str, optional
        Default: ``'0'`` ... ``'9'``.
    """

    def __init__(self, images, labels, info, path="", classes=None):
        self.images, self.labels, self.path = images, labels, path
        _check_labels(labels, path)
        self.classes = list(classes or [str(i) for i in range(10)])
        self.shape = tuple(info.input_shape)
        if self.shape != (1,) + tuple(images.shape[1:]):
            raise DataError(f"{path}: {images.shape[1]}x{images.shape[2]} grey-scale images; "
                            f"model {info.name!r} expects input (C, H, W) = {self.shape}. Use "
                            "an MNIST network, or write the images as a folder or RecordIO")
        self.mean, self.std = info.mean, info.std

    def __len__(self):
        return len(self.images)

    def _load(self, index):
        import mxnet as mx

        x = to_input(self.images[index], self.mean, self.std)
        return mx.nd.array(x), mx.nd.array(self.labels[index], dtype=np.float32)


def _hidden(name):
    return name.startswith(".")


def _kinds():
    return "/".join(e[1:].upper() for e in IMAGE_EXTENSIONS)


def list_folder(root):
    """The one labeling of an image folder, used by :class:`FolderSource` and by
    :func:`~inceptionzoo.packing.write_recordio` alike.

    Classes are the sorted names of the subfolders of ``root``; a class holds every file with
    an image extension (``IMAGE_EXTENSIONS``, any case) anywhere below its subfolder, nested
    subfolders included, in sorted path order. Hidden files and folders (names starting with
    ``.``) and files at the top level are not data; symbolic links are followed (each real
    folder once, so a link loop ends).

    Parameters
    ----------
    root : str
        The folder.

    Returns
    -------
    (list of str, list of (str, int))
        Class names (index = label) and ``(path, label)`` of every image.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder (expected one subfolder of images per class)")
    classes = sorted(d for d in os.listdir(root)
                     if not _hidden(d) and os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise DataError(f"{root}: no class subfolders (expected one subfolder of "
                        f"{_kinds()} images per class)")
    items = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        seen, files = set(), []
        for path, dirs, names in os.walk(folder, followlinks=True):
            real = os.path.realpath(path)
            if real in seen:  # a link back up the tree
                dirs[:] = []
                continue
            seen.add(real)
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            files += [os.path.join(path, f) for f in sorted(names)
                      if not _hidden(f) and f.lower().endswith(IMAGE_EXTENSIONS)
                      and os.path.isfile(os.path.join(path, f))]
        if not files:
            raise DataError(f"{folder}: empty class folder (expected at least one "
                            f"{_kinds()} image)")
        items += [(f, label) for f in files]
    return classes, items


class _Decoded:
    """A Gluon dataset of (transformed image, label), decoded by PIL, that names the file it
    cannot decode."""

    def __init__(self, items, transform):
        self.items, self.transform = items, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        return self.transform(path), np.float32(label)


class _Transform:
    """Image file -> normalised CHW float32: the weights' evaluation transform
    (:class:`~inceptionzoo.transforms.EvalTransform`), or for training 3-channel networks the
    augmentation derived from it. PIL and numpy only, safe in several decoding threads."""

    def __init__(self, info, train):
        try:
            self.spec = EvalTransform.from_info(info)
        except ImageError as err:
            raise DataError(f"model {info.name!r}: {err}") from None
        self.augment = train and self.spec.channels == 3

    def __call__(self, path):
        try:  # PNG / JPEG below the bomb limit, as RecordIO packs them
            img = decode(path, self.spec.channels, label=path, formats=IMAGE_FORMATS)
        except ImageError as err:  # PIL fails here, on the file, not later elsewhere
            raise DataError(str(err)) from None
        img = self.spec.augment(img) if self.augment else self.spec.crop(img)
        return self.spec.normalise(np.asarray(img)[None])[0]


class FolderSource(_IndexedSource):
    """An image folder: one subfolder per class (sorted names = labels), PNG/JPEG files.

    Parameters
    ----------
    root : str
        The folder.
    info : ModelInfo
        The network's metadata (input size and channels, mean/std, crop_pct, interpolation).
    train : bool
        Augment (3-channel networks only) or centre-crop.
    workers : int, optional
        Decoding threads (default: up to 4).
    """

    def __init__(self, root, info, train=True, workers=None):
        self.path = os.path.abspath(root)
        self.classes, self.items = list_folder(self.path)
        self.shape = tuple(info.input_shape)
        if self.shape[0] not in (1, 3):
            raise DataError(f"model {info.name!r} takes {self.shape[0]} channels: image "
                            "folders give 1 (grey) or 3 (RGB)")
        self.dataset = _Decoded(self.items, _Transform(info, train))
        self.workers = workers if workers is not None else min(4, _openmp.physical_cores())

    def __len__(self):
        return len(self.items)

    def _load(self, index):
        import mxnet as mx

        samples = [self.dataset[int(i)] for i in index]
        return mx.nd.stack(*[s[0] for s in samples]), mx.nd.array([s[1] for s in samples])

    def epoch(self, batch_size, rng=None, rank=0, num_workers=1):
        import mxnet as mx

        parts = list(self._parts(batch_size, rng, rank, num_workers))
        sampler = [p.tolist() if len(p) else [0] for p, _ in parts]  # [0]: dropped below
        loader = mx.gluon.data.DataLoader(self.dataset, batch_sampler=sampler,
                                          num_workers=self.workers, thread_pool=True)
        for (part, size), (x, y) in zip(parts, loader):
            if not len(part):
                x, y = x[:0], y[:0]
            yield Batch(x, y, size)


class RecordSource(Source):
    """A RecordIO file (``.rec`` with its ``.idx``) read by ``mx.io.ImageRecordIter``.

    Parameters
    ----------
    rec : str
        The ``.rec`` file; ``.idx`` beside it (same stem) is required.
    info : ModelInfo
        The network's metadata.
    train : bool
        Shuffle and augment (3-channel networks) or read in order, centre-cropped.
    workers : int, optional
        ``preprocess_threads`` of the iterator (default: up to 4).
    seed : int
        Seed of the iterator's shuffling and augmentation.
    """

    def __init__(self, rec, info, train=True, workers=None, seed=0):
        self.path = os.path.abspath(rec)
        self.idx = os.path.splitext(self.path)[0] + ".idx"
        if not os.path.isfile(self.path):
            raise DataError(f"{self.path}: RecordIO file not found")
        if not os.path.isfile(self.idx):
            raise DataError(f"{self.path}: its index {self.idx} is missing (write both with "
                            "MXNet's tools/im2rec.py; see inceptionzoo.packing.write_recordio)")
        self.labels = scan_recordio(self.path, self.idx)
        _check_labels(self.labels, self.path)
        n = int(self.labels.max()) + 1
        self.classes = listed_classes(self.path, n) or [str(i) for i in range(n)]
        self.info, self.train, self.seed = info, train, seed
        self.shape = tuple(info.input_shape)
        self.workers = workers if workers is not None else min(4, _openmp.physical_cores())
        self._iters = {}

    def __len__(self):
        return len(self.labels)

    def _iter(self, local_batch, rank, num_workers):
        import mxnet as mx

        key = (local_batch, rank, num_workers)
        if key in self._iters:
            it = self._iters[key]
            it.reset()
            return it
        c = self.shape[0]
        spec = EvalTransform.from_info(self.info)  # the weights' transform, in MXNet's terms
        mean, std = spec.normaliser.on_pixels()  # the one normaliser's constants
        args = dict(path_imgrec=self.path, path_imgidx=self.idx, data_shape=self.shape,
                    batch_size=local_batch, label_width=1, part_index=rank,
                    num_parts=num_workers, preprocess_threads=self.workers,
                    inter_method=OPENCV_INTERPOLATIONS[spec.interpolation], seed=self.seed,
                    shuffle=self.train, round_batch=True,
                    mean_r=mean[0], std_r=std[0])
        if c == 3:
            args.update(mean_g=mean[1], mean_b=mean[2], std_g=std[1], std_b=std[2])
        if self.train and c == 3:
            args.update(random_resized_crop=True, min_random_area=0.08, max_random_area=1.0,
                        min_aspect_ratio=3 / 4, max_aspect_ratio=4 / 3, rand_mirror=True,
                        resize=-1)
        else:  # the evaluation transform: resize the shorter side, centre crop
            args.update(resize=spec.resize_size)
        try:
            it = mx.io.ImageRecordIter(**args)
        except mx.base.MXNetError as err:
            raise DataError(f"{self.path}: ImageRecordIter cannot read it "
                            f"({mxnet_message(err)})") from None
        self._iters[key] = it
        return it

    def epoch(self, batch_size, rng=None, rank=0, num_workers=1):
        """This worker's batches: ``ceil(len / batch_size)`` of them on every worker, each
        of ``batch_size / num_workers`` images from this worker's shard (the shard is read
        again from its start when it runs out, so that every worker takes as many steps)."""
        local = np.array_split(np.arange(batch_size), num_workers)[rank].size
        if local == 0:
            raise InceptionZooError(f"batch size {batch_size} is smaller than the {num_workers} "
                                    "workers: expected a batch size >= the number of workers")
        local = min(local, max(len(self) // num_workers, 1))  # the iterator's limit
        it = self._iter(local, rank, num_workers)
        if rng is None and num_workers == 1:  # in order, exactly once (evaluation)
            for b in it:
                n = local - b.pad
                yield Batch(b.data[0][:n], b.label[0][:n], n)
            return
        for _ in range(self.steps(batch_size)):
            try:
                b = it.next()
            except StopIteration:
                it.reset()
                b = it.next()
            yield Batch(b.data[0], b.label[0], min(batch_size, len(self)))


def _mnist_dir(path):
    return all(any(os.path.isfile(os.path.join(path, s + e)) for e in ("", ".gz"))
               for s in MNIST_FILES[True])


def _open_one(path, info, train, workers, seed):
    """A source from a path: a ``.rec`` file, or a folder (MNIST IDX or class subfolders)."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if path.endswith(".rec") or os.path.isfile(path):
        return RecordSource(path, info, train=train, workers=workers, seed=seed)
    if os.path.isdir(path) and _mnist_dir(path) or os.path.isdir(path) and \
            any(os.path.isfile(os.path.join(path, s + e))
                for s in MNIST_FILES[False] for e in ("", ".gz")):
        x, y = load_mnist(path, train=train, download=False)
        return ArraySource(x, y, info, path=path)
    return FolderSource(path, info, train=train, workers=workers)


def open_sources(info, data_dir=None, train_data=None, val_data=None, workers=None, seed=0,
                 train=True):
    """The training and validation sources for a network.

    Parameters
    ----------
    info : ModelInfo
        The network's metadata (``net.info``).
    data_dir : str, optional
        A folder holding MNIST IDX files, or ``train.rec``/``train.idx`` +
        ``val.rec``/``val.idx``, or ``train/`` + ``val/`` image folders. None: MNIST from
        :func:`inceptionzoo.mnist.resolve_data_dir` (``$INCEPTIONZOO_DATA``, MXNet's folder).
    train_data, val_data : str, optional
        Explicit training / validation data (a ``.rec`` file, an image folder, or an MNIST
        folder, whose train split resp. test split is read); they override ``data_dir``.
    workers : int, optional
        Decoding threads.
    seed : int
        Seed of RecordIO shuffling and augmentation.
    train : bool
        Open the training data too (False: only validation, e.g. for evaluation).

    Returns
    -------
    (Source, Source)
        Training (None if ``train=False``) and validation data.
    """
    if workers is not None:
        workers = check_count("data workers (decoding threads)", workers)
    splits = (True, False) if train else (False,)
    given = {True: train_data, False: val_data}
    if data_dir is None and any(given[t] is None for t in splits):
        if any(given[t] is not None for t in splits):
            raise InceptionZooError("give both --train-data and --val-data, or --data-dir")
        folder = resolve_data_dir(None)
        got = {t: ArraySource(*load_mnist(folder, train=t), info, path=folder) for t in splits}
        return got.get(True), got[False]
    paths = {}
    if data_dir is not None:
        d = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
        if not os.path.isdir(d):
            raise DataError(f"--data-dir {d}: not a folder")
        if _mnist_dir(d):
            paths = {True: d, False: d}
        elif os.path.isfile(os.path.join(d, "train.rec")):
            paths = {True: os.path.join(d, "train.rec"), False: os.path.join(d, "val.rec")}
        elif os.path.isdir(os.path.join(d, "train")):
            paths = {True: os.path.join(d, "train"), False: os.path.join(d, "val")}
        else:
            raise DataError(f"--data-dir {d}: found neither MNIST IDX files "
                            f"({MNIST_FILES[True][0]}[.gz] ...), nor train.rec + val.rec, "
                            "nor train/ + val/ image folders")
    for t in splits:
        if given[t] is not None:
            paths[t] = given[t]
        elif not os.path.exists(paths[t]):
            raise DataError(f"--data-dir {d}: {'train' if t else 'val'} data {paths[t]} is "
                            "missing")
    got = {t: _open_one(paths[t], info, t, workers, seed) for t in splits}
    tr, val = got.get(True), got[False]
    if isinstance(tr, FolderSource) and isinstance(val, FolderSource) and \
            val.classes != tr.classes:
        raise DataError(f"{val.path} has classes {val.classes}, but {tr.path} has "
                        f"{tr.classes}: expected the same class subfolders")
    return tr, val


#: names that moved to :mod:`inceptionzoo.packing` (importable from here, with a deprecation
#: warning, for one more release)
_MOVED = {name: "inceptionzoo.packing" for name in ("write_recordio", "im2rec_path",
                                                    "RECORDIO_EXTRA")}
__getattr__ = moved_names(__name__, _MOVED)
