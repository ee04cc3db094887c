"""Image folders as training data: the one labelling of a folder (:func:`list_folder`, which
:func:`inceptionzoo.packing.write_recordio` packs too) and :class:`FolderSource`, its images
decoded by PIL (the one acceptance policy, training formats PNG/JPEG) and transformed in a
thread pool by the weights' evaluation transform (or, for 3-channel networks in training, the
augmentation derived from it).
"""
import os

import numpy as np

from ._deprecation import renamed_keyword
from .data_source import Batch, IndexedSource, decoding_threads
from .imaging import ImageError, decode
from .mnist import DataError
from .recordio import IMAGE_FORMATS
from .transforms import EvalTransform

__all__ = ["IMAGE_EXTENSIONS", "list_folder", "FolderSource"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


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
            self.eval_transform = EvalTransform.from_info(info)
        except ImageError as err:
            raise DataError(f"model {info.name!r}: {err}") from None
        self.augment = train and self.eval_transform.channels == 3

    def __call__(self, path):
        try:  # PNG / JPEG below the bomb limit, as RecordIO packs them
            img = decode(path, self.eval_transform.channels, label=path, formats=IMAGE_FORMATS)
        except ImageError as err:  # PIL fails here, on the file, not later elsewhere
            raise DataError(str(err)) from None
        img = self.eval_transform.augment(img) if self.augment else self.eval_transform.crop(img)
        return self.eval_transform.normalise(np.asarray(img)[None])[0]


class FolderSource(IndexedSource):
    """An image folder: one subfolder per class (sorted names = labels), PNG/JPEG files.

    Parameters
    ----------
    root : str
        The folder.
    info : ModelInfo
        The network's metadata (input size and channels, mean/std, crop_pct, interpolation).
    train : bool
        Augment (3-channel networks only) or centre-crop.
    threads : int, optional
        Decoding threads (default: :func:`~inceptionzoo.data_source.decoding_threads`).
    workers : int, optional
        The old name of ``threads`` (deprecated, gone in the next release).
    """

    def __init__(self, root, info, train=True, threads=None, workers=None):
        self.path = os.path.abspath(root)
        self.classes, self.items = list_folder(self.path)
        self.shape = tuple(info.input_shape)
        if self.shape[0] not in (1, 3):
            raise DataError(f"model {info.name!r} takes {self.shape[0]} channels: image "
                            "folders give 1 (grey) or 3 (RGB)")
        self.dataset = _Decoded(self.items, _Transform(info, train))
        self.threads = decoding_threads(renamed_keyword("FolderSource", "workers", "threads",
                                                        workers, threads))

    def __len__(self):
        return len(self.items)

    def _load(self, index):
        import mxnet as mx

        samples = [self.dataset[int(i)] for i in index]  # numpy images (the decoding threads')
        return (mx.nd.array(np.stack([s[0] for s in samples])),
                mx.nd.array([s[1] for s in samples]))

    def epoch(self, batch_size, rng=None, rank=0, num_workers=1):
        import mxnet as mx

        parts = list(self._parts(batch_size, rng, rank, num_workers))
        sampler = [p.tolist() if len(p) else [0] for p, _ in parts]  # [0]: dropped below
        loader = mx.gluon.data.DataLoader(self.dataset, batch_sampler=sampler,
                                          num_workers=self.threads, thread_pool=True)
        for (part, size), (x, y) in zip(parts, loader):
            if not len(part):
                x, y = x[:0], y[:0]
            yield Batch(x, y, size)
