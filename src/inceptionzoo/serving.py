"""Predict with an export, using only the files the export wrote (no registry, no model code).

>>> from inceptionzoo.serving import Predictor            # doctest: +SKIP
>>> p = Predictor('deploy/')                             # doctest: +SKIP
>>> p.predict_files(['digit.png'], top_k=3)              # doctest: +SKIP
[[('7', 0.9998), ('3', 0.0001), ('9', 0.0)]]

Images: PNG or JPEG files, raw encoded bytes, PIL images or arrays. They are converted to
grayscale (for one-channel models) and, when their size differs from the model's, resized to it
with bilinear filtering. MNIST digits are white on black: a dark digit on a light background is
not inverted for you.
"""
import glob
import io
import json
import os
import warnings

import mxnet as mx
import numpy as np

from ._io import sha1_file, write_json
from .inference import InferenceGraph

__all__ = ["Predictor", "PredictionError"]


class PredictionError(ValueError):
    """Bad input to the predictor, or an export it cannot load."""


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f
                         if ln.startswith("model name")), "")
    except OSError:
        return ""


def _check_params(sym, arrays, input_name, input_shape, folder):
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
        raise PredictionError(f"the graph in {folder!r} does not take input shape "
                              f"{tuple(input_shape)}: {str(err).strip().splitlines()[0]}") \
            from None
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
        metas = sorted(glob.glob(os.path.join(model_dir, "*-meta.json")))
        if name is not None:
            metas = [m for m in metas if os.path.basename(m) == f"{name}-meta.json"]
        if len(metas) != 1:
            found = [os.path.basename(m)[:-10] for m in
                     glob.glob(os.path.join(model_dir, "*-meta.json"))]
            raise PredictionError(
                f"{model_dir!r}: expected one export{f' named {name!r}' if name else ''}, "
                f"found {found or 'none'} (an export writes NAME-meta.json)")
        with open(metas[0]) as f:
            self.meta = meta = json.load(f)
        folder = os.path.dirname(metas[0])
        params = os.path.join(folder, meta["params_file"])
        symbol = os.path.join(folder, meta["symbol_file"])
        for path in (params, symbol):
            if not os.path.isfile(path):
                raise PredictionError(f"export file {path!r} is missing")
        got = sha1_file(params)
        if got != meta["params_sha1"]:
            raise PredictionError(f"{params!r} is corrupt or not the exported one: SHA-1 {got}, "
                                  f"the export recorded {meta['params_sha1']}")
        shape = meta["input_shape"]
        try:
            sym = mx.sym.load(symbol)
            arrays = mx.nd.load(params)
        except mx.base.MXNetError as err:
            raise PredictionError(f"cannot load the export in {folder!r}: "
                                  f"{str(err).strip().splitlines()[0]}") from None
        arrays = _check_params(sym, arrays, meta["input_name"], (1,) + tuple(shape[1:]), folder)
        # the recommended path: static graphs specialised by batch size (inceptionzoo.inference)
        self.net = InferenceGraph(sym, {k: v.as_in_context(self.ctx) for k, v in arrays.items()},
                                  input_name=meta["input_name"], sample_shape=shape[1:],
                                  dtype=meta["input_dtype"])
        self.tuning_file = os.path.join(folder, os.path.basename(metas[0])[:-10] + "-tuning.json")
        self.tuning_loaded = self._load_tuning()
        self.labels = meta.get("labels") or [str(i) for i in range(meta["classes"])]
        self.baked_in = meta["preprocess"]["baked_in"]
        if self.baked_in:
            self.hw = tuple(shape[1:3])
            self.channels = 1 if len(shape) == 3 else shape[3]
        else:
            self.channels, self.hw = shape[1], tuple(shape[2:4])
        if warmup:
            self.warmup(warmup)

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
    def _image(self, item):
        """One PIL image / path / bytes -> uint8 array (H, W) or (H, W, C) at the model size."""
        from PIL import Image, UnidentifiedImageError

        label = item if isinstance(item, (str, os.PathLike)) else type(item).__name__
        try:
            if isinstance(item, (str, os.PathLike)):
                img = Image.open(item)
            elif isinstance(item, (bytes, bytearray)):
                img = Image.open(io.BytesIO(item))
            else:
                img = item
            img.load()
        except FileNotFoundError:
            raise PredictionError(f"{label}: no such file") from None
        except (UnidentifiedImageError, OSError) as err:
            raise PredictionError(f"{label}: not a readable PNG/JPEG image ({err})") from None
        img = img.convert("L" if self.channels == 1 else "RGB")
        if img.size != (self.hw[1], self.hw[0]):
            img = img.resize((self.hw[1], self.hw[0]), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)

    def _as_batch(self, images):
        """Array (N, H, W[, C]) of raw 0..255 values, from arrays or a list of images."""
        if isinstance(images, np.ndarray):
            batch = images
            if batch.ndim == 2 or (batch.ndim == 3 and self.channels > 1
                                   and batch.shape[-1] == self.channels):
                batch = batch[None]
        else:
            items = list(images)
            if not items:
                raise PredictionError("empty batch: give at least one image")
            batch = np.stack([self._image(i) if not isinstance(i, np.ndarray) else i
                              for i in items])
        if batch.size == 0 or batch.shape[0] == 0:
            raise PredictionError("empty batch: give at least one image")
        if batch.ndim == 4 and self.channels == 1 and batch.shape[-1] == 1:
            batch = batch[..., 0]
        want = self.hw if self.channels == 1 else self.hw + (self.channels,)
        if tuple(batch.shape[1:]) != want:
            raise PredictionError(f"expected images of shape {want} (batch {('N',) + want}); "
                                  f"got {tuple(batch.shape)}")
        return batch

    def _net_input(self, batch):
        if self.baked_in:
            return mx.nd.array(batch, dtype="uint8", ctx=self.ctx)
        p = self.meta["preprocess"]
        x = (batch.astype(np.float32) / 255 - p["mean"]) / p["std"]
        x = x[:, None] if self.channels == 1 else x.transpose(0, 3, 1, 2)
        return mx.nd.array(x, ctx=self.ctx)

    # -- output -------------------------------------------------------------------------------
    def probabilities(self, images):
        """Softmax probabilities, shape (N, classes)."""
        logits = self.net(self._net_input(self._as_batch(images)))
        return mx.nd.softmax(logits).asnumpy()

    def predict(self, images, top_k=3):
        """Top-``k`` ``(label, probability)`` pairs per image, best first.

        ``images``: an array ``(N, H, W)`` / ``(H, W)`` (or with channels last) of 0..255
        values, or a list of file paths, encoded bytes, PIL images or arrays.
        """
        if top_k < 1:
            raise PredictionError(f"top_k must be >= 1; got {top_k}")
        probs = self.probabilities(images)
        k = min(top_k, probs.shape[1])
        order = np.argsort(-probs, axis=1)[:, :k]
        return [[(self.labels[j], float(p[j])) for j in row] for p, row in zip(probs, order)]

    def predict_files(self, paths, top_k=3):
        """:meth:`predict` on image files."""
        return self.predict([os.fspath(p) for p in paths], top_k=top_k)
