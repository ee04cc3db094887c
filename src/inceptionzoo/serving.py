"""Predict with an export, using only the files the export wrote (no registry, no model code).

>>> from inceptionzoo.serving import Predictor            # doctest: +SKIP
>>> p = Predictor('deploy/')                             # doctest: +SKIP
>>> p.predict_files(['digit.png'], top_k=3)              # doctest: +SKIP
[[('7', 0.9998), ('3', 0.0001), ('9', 0.0)]]

Images: paths of image files (PNG, JPEG and the other :data:`inceptionzoo.imaging.FORMATS`),
raw encoded bytes, PIL images, numpy arrays or MXNet NDArrays, one or a list of them (or one
array holding a batch). Files, bytes and PIL images go through the weights' evaluation transform
that the export recorded (:class:`inceptionzoo.imaging.EvalTransform`: decoded to grey or RGB,
16-bit samples scaled to 8 bits, the shorter side resized to ``resize_size`` with the weights'
interpolation, centre-cropped to the model's size; an export written before the transform was
recorded resizes straight to the model's size, bilinear). Arrays must already have the model's
size; their values are made uint8 by :func:`inceptionzoo.transforms.to_pixels` (rounded, clipped
to 0..255; NaN or infinite values are refused). Then the export's input transform, baked into
the graph or not (:class:`inceptionzoo.transforms.InputTransform`, with the ``mean``/``std`` of
``NAME-meta.json``), scales and normalises. MNIST digits are white on black: a dark digit on a
light background is not inverted for you.
"""
import glob
import json
import numbers
import os
import threading
import warnings

import mxnet as mx
import numpy as np

from ._errors import mxnet_message
from ._io import sha1_file, write_json
from .imaging import EvalTransform, ImageError
from .inference import InferenceGraph
from .transforms import InputTransform, normalisation, to_pixels

__all__ = ["Predictor", "PredictionError", "read_meta"]


from .errors import PredictionError  # noqa: E402  (defined in errors; this import path stays)


#: keys of NAME-meta.json the predictor reads
META_KEYS = ("input_name", "input_shape", "input_dtype", "classes", "preprocess", "params_file", "symbol_file",
             "params_sha1", "symbol_sha1")


def read_meta(path):
    """``NAME-meta.json`` of an export, checked enough to be used.

    Parameters
    ----------
    path : str
        The file.

    Returns
    -------
    dict

    Raises
    ------
    PredictionError
        Naming the file: not JSON, a key missing, or a value of the wrong kind.
    """
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise PredictionError(f"{path}: cannot read the export's metadata ({err})") from None
    if not isinstance(meta, dict):
        raise PredictionError(f"{path}: expected a JSON object; got {type(meta).__name__}")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise PredictionError(f"{path}: missing key(s) {', '.join(missing)}: not written by "
                              "inceptionzoo export, or edited; export again")
    pre, shape = meta["preprocess"], meta["input_shape"]
    baked = isinstance(pre, dict) and pre.get("baked_in")
    if not isinstance(pre, dict) or not isinstance(pre.get("baked_in"), bool):
        raise PredictionError(f"{path}: 'preprocess' must be an object with a boolean "
                              f"'baked_in'; got {pre!r}")
    ranks = (3, 4) if baked else (4,)
    if not (isinstance(shape, list) and len(shape) in ranks
            and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise PredictionError(f"{path}: 'input_shape' must be a list of {' or '.join(map(str, ranks))}"
                              f" non-negative integers (batch first); got {shape!r}")
    return meta


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f
                         if ln.startswith("model name")), "")
    except OSError:
        return ""


def _check_params(sym, arrays, input_name, input_shape, folder, meta_file):
    """The loaded arrays by graph input name, after the checks ``SymbolBlock.imports`` makes:
    every graph input but the data has an array of the shape the graph infers, and there are no
    others. Otherwise :class:`PredictionError` lists what is missing, extra or mis-shaped."""
    if input_name not in sym.list_inputs():
        raise PredictionError(f"the graph in {folder!r} has no input {input_name!r} "
                              f"(meta.json); its inputs are {sym.list_inputs()}")
    params = {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v
              for k, v in arrays.items()}
    try:
        arg_shapes, _, aux_shapes = sym.infer_shape(**{input_name: tuple(input_shape)})
    except mx.base.MXNetError as err:
        raise PredictionError(f"{meta_file}: input_shape {list(input_shape)} does not fit the "
                              f"graph in {folder!r} ({mxnet_message(err)})") from None
    want = dict(zip(sym.list_arguments(), arg_shapes))
    want.update(zip(sym.list_auxiliary_states(), aux_shapes))
    del want[input_name]
    missing = sorted(set(want) - set(params))
    extra = sorted(set(params) - set(want))
    shapes = sorted(f"{k} {tuple(params[k].shape)} (graph: {tuple(want[k])})" for k in want
                    if k in params and tuple(params[k].shape) != tuple(want[k]))
    problems = [f"{what}: {', '.join(names)}" for what, names in
                (("missing", missing), ("not in the graph", extra), ("mis-shaped", shapes))
                if names]
    if problems:
        raise PredictionError(f"the params file in {folder!r} does not fit its graph: "
                              + "; ".join(problems))
    return params


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

    Attributes
    ----------
    tuning_file : str
        Where :meth:`save_tuning` writes and the constructor reads the graph choice.
    tuning_loaded : dict
        Batch size -> graph variant loaded from ``tuning_file`` (empty when none was used).
    """

    def __init__(self, model_dir, name=None, ctx=None, warmup=()):
        self.ctx = ctx or mx.cpu()
        metas = sorted(glob.glob(os.path.join(glob.escape(os.fspath(model_dir)), "*-meta.json")))
        if name is not None:
            metas = [m for m in metas if os.path.basename(m) == f"{name}-meta.json"]
        if len(metas) != 1:
            found = [os.path.basename(m)[:-10] for m in
                     glob.glob(os.path.join(glob.escape(os.fspath(model_dir)), "*-meta.json"))]
            raise PredictionError(
                f"{model_dir!r}: expected one export{f' named {name!r}' if name else ''}, "
                f"found {found or 'none'} (an export writes NAME-meta.json)")
        self.meta = meta = read_meta(metas[0])
        folder = os.path.dirname(metas[0])
        # final names are links into the export's generation folder: resolved once, so that
        # an overwrite switching over meanwhile cannot hand us files of two exports
        params = os.path.realpath(os.path.join(folder, meta["params_file"]))
        symbol = os.path.realpath(os.path.join(folder, meta["symbol_file"]))
        for path in (params, symbol):
            if not os.path.isfile(path):
                raise PredictionError(f"export file {path!r} is missing")
        for path, key in ((params, "params_sha1"), (symbol, "symbol_sha1")):
            got = sha1_file(path)
            if got != meta[key]:
                raise PredictionError(f"{path!r} is corrupt or not the exported one: SHA-1 "
                                      f"{got}, the export recorded {meta[key]} ({metas[0]})")
        shape = meta["input_shape"]
        try:
            sym = mx.sym.load(symbol)
            arrays = mx.nd.load(params)
        except mx.base.MXNetError as err:
            raise PredictionError(f"cannot load the export in {folder!r}: "
                                  f"{mxnet_message(err)}") from None
        arrays = _check_params(sym, arrays, meta["input_name"], (1,) + tuple(shape[1:]), folder,
                               metas[0])
        self._check_outputs(metas[0], sym, arrays)
        # the recommended path: static graphs specialised by batch size (inceptionzoo.inference)
        self.net = InferenceGraph(sym, {k: v.as_in_context(self.ctx) for k, v in arrays.items()},
                                  input_name=meta["input_name"], sample_shape=shape[1:],
                                  dtype=meta["input_dtype"], merge=True)  # fixed weights
        self.tuning_file = os.path.join(folder, os.path.basename(metas[0])[:-10] + "-tuning.json")
        self.tuning_loaded = self._load_tuning()
        self.labels = meta.get("labels") or [str(i) for i in range(meta["classes"])]
        self.baked_in = meta["preprocess"]["baked_in"]
        if self.baked_in:
            self.hw = tuple(shape[1:3])
            self.channels = 1 if len(shape) == 3 else shape[3]
        else:
            self.channels, self.hw = shape[1], tuple(shape[2:4])
        self.transform = None
        self._local = threading.local()  # .buffers: batch shape -> uint8 input, refilled
        pre = meta["preprocess"]
        try:  # exports before per-channel values wrote one number
            mean, std = normalisation(pre.get("mean", 0.0), pre.get("std", 1.0), self.channels)
            #: the weights' evaluation transform for files, bytes and PIL images (None: the
            #: export takes arrays only, of neither 1 nor 3 channels)
            self.image_transform = (EvalTransform.from_meta(pre, self.channels, self.hw)
                                    if self.channels in (1, 3) else None)
        except ValueError as err:
            raise PredictionError(f"{metas[0]}: preprocess: {err}") from None
        if not self.baked_in:
            self.transform = InputTransform((self.channels,) + self.hw, mean, std)

        if warmup:
            self.warmup(warmup)

    def _check_outputs(self, meta_file, sym, params):
        """The graph gives one output per class and label of ``meta.json``."""
        meta = self.meta
        shape = tuple([1] + meta["input_shape"][1:])
        known = {name: array.shape for name, array in params.items()}
        try:
            _, out, _ = sym.infer_shape(**{meta["input_name"]: shape}, **known)
        except mx.base.MXNetError as err:
            raise PredictionError(f"{meta_file}: input_shape {meta['input_shape']} does not fit "
                                  f"the graph ({mxnet_message(err)})") from None
        labels = meta.get("labels") or []
        width = out[0][-1] if out and out[0] else None
        if width != meta["classes"] or (labels and len(labels) != width):
            raise PredictionError(f"{meta_file}: the graph gives {width} outputs per image; the "
                                  f"metadata says {meta['classes']} classes and "
                                  f"{len(labels)} labels")

    # -- load-time tuning ---------------------------------------------------------------------
    def _load_tuning(self):
        if not os.path.isfile(self.tuning_file):
            return {}
        with open(self.tuning_file) as f:
            record = json.load(f)
        if record.get("symbol_sha1") != self.meta["symbol_sha1"]:
            warnings.warn(f"{self.tuning_file} was made for another graph; it is ignored "
                          "(rerun `inceptionzoo tune`)")
            return {}
        try:
            return self.net.load_tuning(record)
        except ValueError as err:  # another MXNet build or version: tune here instead
            warnings.warn(f"{self.tuning_file} is ignored: {err}")
            return {}

    def warmup(self, batch_sizes):
        """Pick the graph for each batch size (timing the variants unless a saved tuning covers
        it) and build its oneDNN primitives, at load time instead of on a live request.

        Parameters
        ----------
        batch_sizes : iterable of int
            The batch sizes the server will run.

        Returns
        -------
        dict
            Batch size -> the graph variant it runs.
        """
        try:
            return self.net.warmup(batch_sizes)
        except ValueError as err:
            raise PredictionError(str(err)) from None

    def save_tuning(self):
        """Write the graph choice made so far beside the export (``NAME-tuning.json``), so that
        the next process loads it instead of timing.

        Returns
        -------
        str
            The file written.
        """
        record = dict(self.net.tuning(), symbol_sha1=self.meta["symbol_sha1"],
                      machine=_cpu_name(), note="written by Predictor.save_tuning / "
                      "`inceptionzoo tune`; a Predictor of this export loads it")
        write_json(self.tuning_file, record)
        return self.tuning_file

    # -- input --------------------------------------------------------------------------------
    def _image(self, item, label):
        """One PIL image / path / bytes -> uint8 array (H, W) or (H, W, C) at the model size,
        through the weights' evaluation transform."""
        if self.image_transform is None:
            raise PredictionError(f"{label}: this export takes {self.channels}-channel arrays, "
                                  "not images")
        try:
            return self.image_transform.pixels(  # bytes: named by their length
                item, label if isinstance(item, (str, os.PathLike)) else None)
        except ImageError as err:
            raise PredictionError(str(err)) from None

    def _pixels(self, array, label):
        try:
            return to_pixels(array)
        except ValueError as err:
            raise PredictionError(f"{label}: {err}") from None

    def _as_batch(self, images):
        """uint8 array (N, H, W[, C]) at the model size, from what :meth:`predict` takes."""
        from PIL import Image

        want = self.hw if self.channels == 1 else self.hw + (self.channels,)
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

    #: input buffers kept per thread, for at most this many batch shapes and bytes in all
    #: (least recent dropped first; a larger batch gets a new array, which costs little
    #: beside its run)
    INPUT_BUFFERS = 8
    INPUT_BUFFER_BYTES = 4 << 20

    def _net_input(self, batch):
        # a fresh NDArray per call (mx.nd.array) costs about as much as the graph at batch 1;
        # a kept buffer is refilled in place (the copy waits for the graph's last read of it).
        # Each thread has its own buffers: threads sharing a predictor never share an input.
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
        x = self._net_input(self._as_batch(images))
        try:
            return mx.nd.softmax(self.net(x)).asnumpy()
        except mx.base.MXNetError as err:
            raise PredictionError(f"the export's graph failed on a batch of shape "
                                  f"{x.shape}: {mxnet_message(err)}") from None

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
        if not isinstance(top_k, numbers.Integral) or top_k < 1:
            raise PredictionError(f"top_k must be an integer >= 1; got {top_k!r}")
        probs = self.probabilities(images)
        k = min(top_k, probs.shape[1])
        order = np.argsort(-probs, axis=1)[:, :k]
        return [[(self.labels[j], float(p[j])) for j in row] for p, row in zip(probs, order)]

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
