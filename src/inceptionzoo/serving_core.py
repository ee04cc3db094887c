"""The one serving core: an export's files in, a classifier of image batches out.

Both servers of an export run this module: :func:`inceptionzoo.serving.load_graph` and the
:class:`~inceptionzoo.serving.Predictor` in the library, and the ``.mar`` archive's handler
(:mod:`inceptionzoo.mms_handler`) in MXNet Model Server, which gets it inside the archive as the
package ``inceptionzoo_serving/`` (this module and the modules it imports, by relative imports
only: numpy, PIL, MXNet and, when installed, onnxruntime are all they need; no inceptionzoo).
This module is the core's face (the names below are all importable from it) and holds:

- the classifier around the graph (:class:`Classifier`: the input geometry, the weights'
  evaluation transform, softmax, top-k and labels);
- the batching a model server should use (:func:`recommend_batching`).

Its parts, one job each:

- :mod:`inceptionzoo.export_meta`: the export's file layout (:func:`find_meta`,
  :func:`export_name`: ``NAME-meta.json``, ``NAME-tuning.json``) and its metadata schema
  (:func:`read_meta`, the one reader);
- :mod:`inceptionzoo.export_files`: one generation of an export read as a whole
  (:func:`read_export`: every file from the folder the metadata resolves to, each checked
  against its recorded SHA-1, the parameters' structure checked before MXNet parses them, the
  graph's outputs against the classes);
- :mod:`inceptionzoo.export_runner`: the runtime choice and the graph tuning
  (:func:`load_graph`, :class:`ExportRunner`: MXNet's static graphs per batch size, ONNX
  Runtime where it is faster and computes the same logits, a saved tuning reused), with one
  input check and one error family whichever runtime serves.
"""
import math
import threading
import time

import mxnet as mx
import numpy as np

from . import runtimes
from ._checks import check_count
from ._deprecation import moved_names
from .errors import PredictionError
from .export_files import (READ_ATTEMPTS, ExportFiles, check_outputs,  # noqa: F401
                           check_params, read_export)
from .export_meta import (META_KEYS, META_SUFFIX, OLD_META_KEYS, OUTPUTS,  # noqa: F401
                          TUNING_SUFFIX, check_meta, export_name, find_meta, input_geometry,
                          labels_of, parse_meta, read_meta)
from .export_runner import (ExportRunner, load_graph, machine_name,  # noqa: F401
                            parity_problem, sample_input)
from .imaging import ImageError
from .transforms import EvalTransform, InputTransform, normalisation

__all__ = ["META_SUFFIX", "TUNING_SUFFIX", "META_KEYS", "export_name", "find_meta", "read_meta",
           "read_export", "load_graph", "ExportRunner", "Classifier", "recommend_batching",
           "softmax", "top_k"]


# -- the classifier around the graph ------------------------------------------------------------

def softmax(logits):
    """Probabilities of logits, row by row.

    Parameters
    ----------
    logits : numpy.ndarray
        ``(N, classes)``.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, classes)``.
    """
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def top_k(probs, labels, k):
    """The ``k`` best ``(label, probability)`` pairs of each row of ``probs``, best first.

    Parameters
    ----------
    probs : numpy.ndarray
        ``(N, classes)``.
    labels : list of str
        One per class.
    k : int
        How many pairs per row (at most ``classes``); anything but an integer >= 1 is a
        :class:`PredictionError`.

    Returns
    -------
    list of list of (str, float)
    """
    check_count("top_k", k, error=PredictionError)
    order = np.argsort(-probs, axis=1)[:, :min(k, probs.shape[1])]
    return [[(labels[j], float(p[j])) for j in row] for p, row in zip(probs, order)]


class Classifier:
    """An export's graph as an image classifier: uint8 pixels in, probabilities out.

    The :class:`~inceptionzoo.serving.Predictor` (which takes files, bytes, PIL images and
    arrays) and the ``.mar`` handler (which takes request bodies) both answer through it.

    Parameters
    ----------
    graph : ExportRunner

    Attributes
    ----------
    graph, meta, labels : as read
    baked_in : bool
        The input transform is inside the graph (the graph takes uint8 images).
    channels : int
    crop_size : tuple of int
        ``(H, W)`` of the input.
    image_transform : inceptionzoo.transforms.EvalTransform or None
        The weights' evaluation transform for encoded images (None: the export takes arrays
        only, of neither 1 nor 3 channels).
    transform : inceptionzoo.transforms.InputTransform or None
        The input transform, when it is not baked in.
    """

    #: input buffers kept per thread, for at most this many batch shapes and bytes in all
    #: (least recent dropped first; a larger batch gets a new array, which costs little
    #: beside its run)
    INPUT_BUFFERS = 8
    INPUT_BUFFER_BYTES = 4 << 20

    def __init__(self, graph):
        self.graph, self.meta, self.ctx = graph, graph.meta, graph.ctx
        self.labels = labels_of(self.meta)
        self.baked_in, self.channels, self.crop_size = input_geometry(self.meta)
        pre = self.meta["preprocess"]
        try:  # exports before per-channel values wrote one number
            mean, std = normalisation(pre.get("mean", 0.0), pre.get("std", 1.0), self.channels)
            self.image_transform = (EvalTransform.from_meta(pre, self.channels, self.crop_size)
                                    if self.channels in (1, 3) else None)
        except ValueError as err:
            raise PredictionError(f"{graph.meta_file}: preprocess: {err}") from None
        self.transform = None if self.baked_in else \
            InputTransform((self.channels,) + self.crop_size, mean, std)
        self._local = threading.local()  # .buffers: batch shape -> uint8 input, refilled

    @property
    def pixel_shape(self):
        """``(H, W)`` or ``(H, W, C)``: one image as :meth:`probabilities` takes it."""
        return self.crop_size if self.channels == 1 else self.crop_size + (self.channels,)

    def image(self, source, label=None):
        """Encoded image (path, bytes, PIL image) -> uint8 pixels of the model's size, through
        the weights' evaluation transform.

        Raises
        ------
        PredictionError
            Not an image this export takes (the message names ``label``).
        """
        if self.image_transform is None:
            raise PredictionError(f"{label}: this export takes {self.channels}-channel arrays, "
                                  "not images")
        try:
            return self.image_transform.pixels(source, label)
        except ImageError as err:
            raise PredictionError(str(err)) from None

    def graph_input(self, batch):
        """uint8 ``(N, H, W[, C])`` -> the graph's input (an NDArray on the graph's device).

        A fresh NDArray per call costs about as much as the graph at batch 1; a kept buffer
        is refilled in place (the copy waits for the graph's last read of it). Each thread
        has its own buffers: threads sharing a classifier never share an input.
        """
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        x = buffers.pop(batch.shape, None)
        if x is None:
            x = mx.nd.empty(batch.shape, ctx=self.ctx, dtype="uint8")
        buffers[batch.shape] = x
        while buffers and (len(buffers) > self.INPUT_BUFFERS or sum(
                b.size for b in buffers.values()) > self.INPUT_BUFFER_BYTES):
            buffers.pop(next(iter(buffers)))
        x._sync_copyfrom(batch)  # what mx.nd.array does; x[:] = ... adds ~0.2 ms of indexing
        return x if self.baked_in else self.transform(x)

    def probabilities(self, batch):
        """Softmax probabilities of uint8 pixels ``(N,) + pixel_shape``.

        Returns
        -------
        numpy.ndarray
            float32 ``(N, classes)``.
        """
        batch = np.asarray(batch)
        if batch.dtype != np.uint8 or tuple(batch.shape[1:]) != self.pixel_shape:
            raise PredictionError(f"expected uint8 images of shape {self.pixel_shape} (batch "
                                  f"{('N',) + self.pixel_shape}); got {batch.dtype} "
                                  f"{tuple(batch.shape)}")
        if len(batch) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return softmax(self.graph.run(self.graph_input(np.ascontiguousarray(batch))))


# -- batching for a model server ----------------------------------------------------------------

#: the batch sizes :func:`recommend_batching` times
BATCH_CANDIDATES = (1, 2, 4, 8, 16, 32)

#: a larger batch is worth waiting for when it gives at least this much more images/s
BATCH_GAIN = 0.10

#: what :func:`recommend_batching` records when nothing can be timed
DEFAULT_BATCHING = {"batch_size": 8, "max_batch_delay_ms": 50}

#: the server's own cost per batch around the graph (MMS 1.1: the hand-over of a batch from
#: its Java frontend to the Python worker and back, decoding aside), which batching spreads
#: over the batch: an assumed round figure, not measured here (benchmarks/serve_load.py
#: measures the server as a whole)
SERVER_OVERHEAD_S = 0.002


def recommend_batching(graph, sizes=BATCH_CANDIDATES, budget=0.3, overhead_s=SERVER_OVERHEAD_S):
    """The batch size and delay a model server should batch requests with, from the graph's
    own timing: the sizes are warmed up (runtime and graph picked, as served) and timed in
    increasing order; a server does ``b / (seconds(b) + overhead_s)`` images/s at batch
    ``b``. The batch size is the one past which images/s stop rising: the first whose next
    size gains less than :data:`BATCH_GAIN` (larger ones are not timed: a big network stops
    early), else the largest. The delay is the time of one such batch (5 to 100 ms): waiting
    for a batch to fill at most doubles a request's latency.

    Parameters
    ----------
    graph : ExportRunner
    sizes : sequence of int
    budget : float
        Rough seconds of timing per size.
    overhead_s : float
        The server's cost per batch besides the graph (:data:`SERVER_OVERHEAD_S`).

    Returns
    -------
    dict
        ``{"batch_size": int, "max_batch_delay_ms": int, "images_per_s": {size: float}}``
        (the sizes timed); :data:`DEFAULT_BATCHING` when ``sizes`` is empty.
    """
    sizes = sorted(set(int(b) for b in sizes))
    if not sizes:
        return dict(DEFAULT_BATCHING)
    seconds, rate, best = {}, {}, sizes[-1]
    for b in sizes:
        graph.warmup([b])
        x = graph._sample(b)
        median = runtimes.time_alternating({b: graph.run}, x, budget=budget, min_rounds=3,
                                           max_rounds=50, settle=0)[b]
        seconds[b] = median + overhead_s
        rate[b] = b / seconds[b]
        before = [c for c in rate if c < b]
        if before and rate[b] < (1 + BATCH_GAIN) * rate[before[-1]]:
            best = before[-1]
            break
    delay = int(min(100, max(5, math.ceil(1000 * seconds[best]))))
    return {"batch_size": best, "max_batch_delay_ms": delay,
            "images_per_s": {str(b): round(r, 1) for b, r in rate.items()}}


#: ``ServingGraph``: :class:`ExportRunner`'s name until 0.1.0
__getattr__ = moved_names(__name__, {"ServingGraph": ".export_runner:ExportRunner"})
