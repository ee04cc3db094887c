"""What every training data source is: a split of a data set for one network, yielding the
*local part of each global batch* for one of ``num_workers`` workers (:meth:`DataSource.epoch`).

Sources whose samples can be read by index (:class:`IndexedSource`: MNIST in memory,
:class:`ArraySource`; image folders, :class:`~inceptionzoo.image_folders.FolderSource`) cut the
same shuffled global batch on every worker and hand worker ``rank`` its slice, so the sum of the
gradients over the workers is the gradient of the global batch whatever the number of workers.
RecordIO (:class:`~inceptionzoo.datasets.RecordSource`) is read as ``ImageRecordIter`` shards.
"""
import numpy as np

from . import _openmp
from .mnist import DataError, to_input

__all__ = ["Batch", "DataSource", "IndexedSource", "ArraySource", "check_labels",
           "decoding_threads"]


def decoding_threads(threads=None):
    """The decoding threads of a source: ``threads``, or by default up to 4 (the physical
    cores, :func:`inceptionzoo._openmp.physical_cores`).

    Parameters
    ----------
    threads : int, optional
        As given (checked by the caller).

    Returns
    -------
    int
    """
    return threads if threads is not None else min(4, _openmp.physical_cores())


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


class DataSource:
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


def check_labels(labels, path):
    """Refuse a source without images.

    Parameters
    ----------
    labels : sequence
        The source's labels.
    path : str
        The source (named by the error).

    Raises
    ------
    DataError
        No labels.
    """
    if len(labels) == 0:
        raise DataError(f"{path}: no images (expected at least one)")


class IndexedSource(DataSource):
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


class ArraySource(IndexedSource):
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
        check_labels(labels, path)
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
