"""Training and validation data for any registered network: MNIST IDX files, image folders and
RecordIO files, transformed as the network's metadata (``net.info``) says. This module finds the
source a path holds (:func:`open_sources`) and holds the RecordIO one (:class:`RecordSource`);
the sources' contract is :mod:`inceptionzoo.data_source` (:class:`DataSource`, :class:`Batch`,
MNIST's :class:`ArraySource`), image folders are :mod:`inceptionzoo.image_folders`; what an
image may be is :mod:`inceptionzoo.imaging` (:func:`~inceptionzoo.imaging.check_image`),
normalising it :class:`~inceptionzoo.transforms.Normalisation`; RecordIO's bytes are
:mod:`inceptionzoo.recordio`.

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
(:meth:`DataSource.epoch`): MNIST and image folders cut the same shuffled global batch on every
worker and hand worker ``rank`` its slice, so the sum of the gradients over the workers is the
gradient of the global batch whatever the number of workers. RecordIO is read as
``ImageRecordIter`` shards (``part_index``/``num_parts``), each worker with its part of the
file, as MXNet and gluoncv do.
"""
import os

import numpy as np

from ._checks import check_count
from ._deprecation import moved_names, renamed_keyword
from ._errors import mxnet_message
from .data_source import ArraySource, Batch, DataSource, check_labels, decoding_threads
from .errors import InceptionZooError
from .image_folders import IMAGE_EXTENSIONS, FolderSource, list_folder
from .mnist import DataError, MNIST_FILES, load_mnist, resolve_data_dir
from .recordio import IMAGE_FORMATS, MAX_CLASSES, check_image, listed_classes, scan_recordio
from .transforms import OPENCV_INTERPOLATIONS, EvalTransform

__all__ = ["IMAGE_EXTENSIONS", "IMAGE_FORMATS", "MAX_CLASSES", "Batch", "DataSource",
           "ArraySource", "FolderSource", "RecordSource", "open_sources", "list_folder",
           "check_image", "scan_recordio"]


class RecordSource(DataSource):
    """A RecordIO file (``.rec`` with its ``.idx``) read by ``mx.io.ImageRecordIter``.

    Parameters
    ----------
    rec : str
        The ``.rec`` file; ``.idx`` beside it (same stem) is required.
    info : ModelInfo
        The network's metadata.
    train : bool
        Shuffle and augment (3-channel networks) or read in order, centre-cropped.
    threads : int, optional
        ``preprocess_threads`` of the iterator (default:
        :func:`~inceptionzoo.data_source.decoding_threads`).
    seed : int
        Seed of the iterator's shuffling and augmentation.
    workers : int, optional
        The old name of ``threads`` (deprecated, gone in the next release).
    """

    def __init__(self, rec, info, train=True, threads=None, seed=0, workers=None):
        self.path = os.path.abspath(rec)
        self.idx = os.path.splitext(self.path)[0] + ".idx"
        if not os.path.isfile(self.path):
            raise DataError(f"{self.path}: RecordIO file not found")
        if not os.path.isfile(self.idx):
            raise DataError(f"{self.path}: its index {self.idx} is missing (write both with "
                            "MXNet's tools/im2rec.py; see inceptionzoo.packing.write_recordio)")
        self.labels = scan_recordio(self.path, self.idx)
        check_labels(self.labels, self.path)
        n = int(self.labels.max()) + 1
        self.classes = listed_classes(self.path, n) or [str(i) for i in range(n)]
        self.info, self.train, self.seed = info, train, seed
        self.shape = tuple(info.input_shape)
        self.threads = decoding_threads(renamed_keyword("RecordSource", "workers", "threads",
                                                        workers, threads))
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
        transform = EvalTransform.from_info(self.info)  # the weights' transform, in MXNet's terms
        mean, std = transform.normaliser.on_pixels()  # the one normaliser's constants
        args = dict(path_imgrec=self.path, path_imgidx=self.idx, data_shape=self.shape,
                    batch_size=local_batch, label_width=1, part_index=rank,
                    num_parts=num_workers, preprocess_threads=self.threads,
                    inter_method=OPENCV_INTERPOLATIONS[transform.interpolation], seed=self.seed,
                    shuffle=self.train, round_batch=True,
                    mean_r=mean[0], std_r=std[0])
        if c == 3:
            args.update(mean_g=mean[1], mean_b=mean[2], std_g=std[1], std_b=std[2])
        if self.train and c == 3:
            args.update(random_resized_crop=True, min_random_area=0.08, max_random_area=1.0,
                        min_aspect_ratio=3 / 4, max_aspect_ratio=4 / 3, rand_mirror=True,
                        resize=-1)
        else:  # the evaluation transform: resize the shorter side, centre crop
            args.update(resize=transform.resize_size)
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


def _open_one(path, info, train, threads, seed):
    """A source from a path: a ``.rec`` file, or a folder (MNIST IDX or class subfolders)."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if path.endswith(".rec") or os.path.isfile(path):
        return RecordSource(path, info, train=train, threads=threads, seed=seed)
    if os.path.isdir(path) and _mnist_dir(path) or os.path.isdir(path) and \
            any(os.path.isfile(os.path.join(path, s + e))
                for s in MNIST_FILES[False] for e in ("", ".gz")):
        x, y = load_mnist(path, train=train, download=False)
        return ArraySource(x, y, info, path=path)
    return FolderSource(path, info, train=train, threads=threads)


def open_sources(info, data_dir=None, train_data=None, val_data=None, threads=None, seed=0,
                 train=True, workers=None):
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
    threads : int, optional
        Decoding threads (default: :func:`~inceptionzoo.data_source.decoding_threads`).
    seed : int
        Seed of RecordIO shuffling and augmentation.
    train : bool
        Open the training data too (False: only validation, e.g. for evaluation).
    workers : int, optional
        The old name of ``threads`` (deprecated, gone in the next release).

    Returns
    -------
    (DataSource, DataSource)
        Training (None if ``train=False``) and validation data.
    """
    threads = renamed_keyword("open_sources", "workers", "threads", workers, threads)
    if threads is not None:
        threads = check_count("data threads", threads)
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
    got = {t: _open_one(paths[t], info, t, threads, seed) for t in splits}
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
#: ``Source``: :class:`DataSource`'s name until 0.1.0
_MOVED["Source"] = ".data_source:DataSource"
__getattr__ = moved_names(__name__, _MOVED)
