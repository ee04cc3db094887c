"""Predict with an export, using only the files the export wrote (no registry, no model code).

>>> from inceptionzoo.serving import Predictor            # doctest: +SKIP
>>> p = Predictor('deploy/')                             # doctest: +SKIP
>>> p.predict_files(['digit.png'], top_k=3)              # doctest: +SKIP
[[('7', 0.9998), ('3', 0.0001), ('9', 0.0)]]

Images: paths of image files (PNG, JPEG and the other :data:`inceptionzoo.imaging.FORMATS`),
raw encoded bytes, PIL images, numpy arrays or MXNet NDArrays, one or a list of them (or one
array holding a batch). Files, bytes and PIL images go through the weights' evaluation transform
that the export recorded (:class:`inceptionzoo.transforms.EvalTransform`: decoded to grey or RGB,
16-bit samples scaled to 8 bits, the shorter side resized to ``resize_size`` with the weights'
interpolation, centre-cropped to the model's size; an export written before the transform was
recorded resizes straight to the model's size, bilinear). Arrays must already have the model's
size; their values are made uint8 by :func:`inceptionzoo.transforms.to_pixels` (rounded, clipped
to 0..255; NaN or infinite values are refused). Then the export's input transform, baked into
the graph or not (:class:`inceptionzoo.transforms.InputTransform`, with the ``mean``/``std`` of
``NAME-meta.json``), scales and normalises. MNIST digits are white on black: a dark digit on a
light background is not inverted for you.

The graph itself: :func:`load_graph` (a batch in, logits out) runs the export in MXNet
(:class:`~inceptionzoo.graph_tuning.TunedGraph`) or, when the export has ``NAME.onnx`` and
onnxruntime is installed (the ``onnxruntime`` extra), in ONNX Runtime, each batch size in the
runtime found faster at load time and checked to compute the same logits
(:mod:`inceptionzoo.runtimes`). It, the Predictor and the ``.mar`` handler are adapters over one
serving core, :mod:`inceptionzoo.serving_core`, which reads and checks the export, picks the
graphs and classifies.
"""
import os

import mxnet as mx
import numpy as np

from ._deprecation import moved_names
from .serving_core import Classifier, ExportRunner, load_graph, read_meta  # noqa: F401
from .serving_core import top_k as best
from .transforms import to_pixels

__all__ = ["Predictor", "PredictionError", "read_meta", "load_graph", "ExportRunner"]


from .errors import InceptionZooError, PredictionError  # noqa: E402,F401  (this import path stays)


class Predictor:
    """Loads an export once and predicts top-k labels.

    Parameters
    ----------
    model_dir : str
        Folder written by :func:`inceptionzoo.export.export`.
    name : str, optional
        Which export, when the folder holds several ``*-meta.json``.
    ctx : mxnet.Context, optional
    warmup : iterable of int
        Batch sizes to prepare at load time (see :meth:`warmup`), so that no request pays for
        tuning or oneDNN primitive creation. A saved tuning (``NAME-tuning.json``, written by
        :meth:`save_tuning` or ``inceptionzoo tune``) is used instead of timing.
    runtime : str
        ``'auto'``, ``'mxnet'`` or ``'onnxruntime'``: see :func:`load_graph`.

    Attributes
    ----------
    graph : ExportRunner
        The export's graph (:func:`load_graph`); ``graph.runtime_for(batch)`` names the runtime
        a batch size runs in.
    net : TunedGraph or None
        Its MXNet graphs (None with ``runtime='onnxruntime'``).
    tuning_file : str
        Where :meth:`save_tuning` writes and the constructor reads the graph choice.
    tuning_loaded : dict
        Batch size -> graph variant loaded from ``tuning_file`` (empty when none was used).
    """

    def __init__(self, model_dir, name=None, ctx=None, warmup=(), runtime="auto"):
        self.ctx = ctx or mx.cpu()
        self.graph = load_graph(model_dir, runtime=runtime, warmup=(), name=name, ctx=self.ctx)
        #: the serving core's classifier (geometry, transforms, softmax, labels), which the
        #: ``.mar`` handler answers through too
        self.classifier = c = Classifier(self.graph)
        self.meta, self.labels, self.baked_in = c.meta, c.labels, c.baked_in
        self.channels, self.crop_size = c.channels, c.crop_size
        self.image_transform, self.transform = c.image_transform, c.transform
        self.net = self.graph.net  # the MXNet TunedGraph (None with runtime='onnxruntime')
        self.tuning_file = self.graph.tuning_file
        self.tuning_loaded = self.graph.tuning_loaded
        if warmup:
            self.warmup(warmup)

    def warmup(self, batch_sizes):
        """:meth:`ExportRunner.warmup` of :attr:`graph`: no live request pays for the choice
        of runtime and graph, or for building its oneDNN primitives.

        Parameters
        ----------
        batch_sizes : iterable of int
            The sizes of the batches :meth:`predict` will be given.

        Returns
        -------
        dict
            Batch size -> what serves it (``'onnxruntime'``, ``'mxnet VARIANT'``).
        """
        return self.graph.warmup(batch_sizes)

    def save_tuning(self):
        """:meth:`ExportRunner.save_tuning` of :attr:`graph` (``NAME-tuning.json``).

        Returns
        -------
        str
            The file written.
        """
        return self.graph.save_tuning()

    # -- input --------------------------------------------------------------------------------
    def _image(self, item, label):
        """One PIL image / path / bytes -> uint8 array (H, W) or (H, W, C) at the model size,
        through the weights' evaluation transform."""
        # bytes: named by their length
        return self.classifier.image(item, label if isinstance(item, (str, os.PathLike)) else None)

    def _pixels(self, array, label):
        try:
            return to_pixels(array)
        except ValueError as err:
            raise PredictionError(f"{label}: {err}") from None

    def _as_batch(self, images):
        """uint8 array (N, H, W[, C]) at the model size, from what :meth:`predict` takes."""
        from PIL import Image

        want = self.classifier.pixel_shape
        single = (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)
        expected = ("a path, encoded bytes, a PIL image, a numpy array or an mx.nd.NDArray, "
                    "or a list of them")
        if isinstance(images, mx.nd.NDArray):
            images = images.asnumpy()
        if isinstance(images, np.ndarray):
            batch = self._pixels(images, "images")
            if batch.ndim == len(want):
                batch = batch[None]
        elif isinstance(images, single):
            batch = self._image(images, self._label(images))[None]
        elif isinstance(images, (list, tuple)):
            if not images:
                raise PredictionError("empty batch: give at least one image")
            items = []
            for i, item in enumerate(images):
                label = f"image {i} ({self._label(item)})"
                if isinstance(item, mx.nd.NDArray):
                    item = item.asnumpy()
                if isinstance(item, single):
                    items.append(self._image(item, self._label(item)))
                elif isinstance(item, np.ndarray):
                    item = self._pixels(item, label)
                    if self.channels == 1 and item.ndim == 3 and item.shape[-1] == 1:
                        item = item[..., 0]
                    if item.shape != want:
                        raise PredictionError(f"{label}: expected an image of shape {want}; "
                                              f"got shape {item.shape}")
                    items.append(item)
                else:
                    raise PredictionError(f"{label}: expected {expected}")
            batch = np.stack(items)
        else:
            raise PredictionError(f"expected {expected}; got {self._label(images)}")
        if batch.size == 0 or batch.shape[0] == 0:
            raise PredictionError("empty batch: give at least one image")
        if batch.ndim == 4 and self.channels == 1 and batch.shape[-1] == 1:
            batch = batch[..., 0]
        if tuple(batch.shape[1:]) != want:
            raise PredictionError(f"expected images of shape {want} (batch {('N',) + want}); "
                                  f"got {tuple(batch.shape)}")
        return batch

    @staticmethod
    def _label(item):
        if isinstance(item, (str, os.PathLike)):
            return os.fspath(item)
        if isinstance(item, (np.ndarray, mx.nd.NDArray)):
            return f"{type(item).__name__} of shape {tuple(item.shape)}"
        return "None" if item is None else f"a {type(item).__name__}"

    # -- output -------------------------------------------------------------------------------
    def probabilities(self, images):
        """Softmax probabilities, shape (N, classes).

        Parameters
        ----------
        images
            As for :meth:`predict`.

        Returns
        -------
        numpy.ndarray
            float32 ``(N, classes)``.
        """
        return self.classifier.probabilities(self._as_batch(images))

    def predict(self, images, top_k=3):
        """Top-``k`` ``(label, probability)`` pairs per image, best first.

        Parameters
        ----------
        images
            One image or a list of them: a file path, encoded image bytes, a PIL image (of
            any size: resized and centre-cropped as the weights' evaluation transform says),
            or an array (numpy or ``mx.nd.NDArray``) ``(H, W)`` / ``(H, W, C)`` of 0..255
            values; or one array ``(N, H, W[, C])`` holding a batch. Arrays must have the
            model's size; other numbers than uint8 are rounded and clipped to 0..255.
        top_k : int
            How many labels per image.

        Returns
        -------
        list of list of (str, float)

        Raises
        ------
        PredictionError
            Anything else, naming what was expected and what was given.
        """
        best(np.zeros((0, 1)), self.labels, top_k)  # checks top_k before any work
        return best(self.probabilities(images), self.labels, top_k)

    def predict_files(self, paths, top_k=3):
        """:meth:`predict` on image files.

        Parameters
        ----------
        paths : str, os.PathLike or list of them
        top_k : int

        Returns
        -------
        list of list of (str, float)
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        return self.predict([os.fspath(p) for p in paths], top_k=top_k)


#: ``ServingGraph``: :class:`ExportRunner`'s name until 0.1.0
__getattr__ = moved_names(__name__, {"ServingGraph": ".export_runner:ExportRunner"})
