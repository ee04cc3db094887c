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

from ._io import sha1_file
from .fast import InferenceGraph

__all__ = ["Predictor", "PredictionError"]


class PredictionError(ValueError):
    """Bad input to the predictor, or an export it cannot load."""


class Predictor:
    """Loads an export once and predicts top-k labels.

    Parameters
    ----------
    model_dir : str
        Folder written by :func:`inceptionzoo.export.export`.
    name : str, optional
        Which export, when the folder holds several ``*-meta.json``.
    ctx : mxnet.Context, optional
    """

    def __init__(self, model_dir, name=None, ctx=None):
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
        try:
            with warnings.catch_warnings():  # MXNet cannot know the input dtype until a call
                warnings.filterwarnings("ignore", message="Cannot decide type")
                loaded = mx.gluon.SymbolBlock.imports(symbol, [meta["input_name"]], params,
                                                      ctx=self.ctx)
            # the recommended path: static graphs specialised by batch size (see fast.py)
            self.net = InferenceGraph(mx.sym.load(symbol), loaded.collect_params(),
                                      input_name=meta["input_name"])
        except mx.base.MXNetError as err:
            raise PredictionError(f"cannot load the export in {folder!r}: "
                                  f"{str(err).strip().splitlines()[0]}") from None
        self.labels = meta.get("labels") or [str(i) for i in range(meta["classes"])]
        self.baked_in = meta["preprocess"]["baked_in"]
        shape = meta["input_shape"]
        if self.baked_in:
            self.hw = tuple(shape[1:3])
            self.channels = 1 if len(shape) == 3 else shape[3]
        else:
            self.channels, self.hw = shape[1], tuple(shape[2:4])

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
