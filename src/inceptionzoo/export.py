"""Export a network for serving: MXNet symbol JSON + params, sidecars, and optionally ONNX.

What an export of prefix ``DIR/NAME`` writes (``NAME`` is the model name by default):

- ``NAME-symbol.json`` and ``NAME-0000.params``: the portable graph and its weights, loadable with
  ``gluon.SymbolBlock.imports``, ``mx.model.load_checkpoint`` and ``mx.mod.Module`` without
  inceptionzoo;
- ``NAME-meta.json``: model name, input name/shape/dtype, classes and labels, the preprocessing
  (baked in or to apply), SHA-1 of the params and symbol files, inceptionzoo/mxnet versions;
- ``signature.json`` (input and output in the signature format of MXNet Model Server 0.4; the
  ``.mar`` handler does not read it) and ``synset.txt`` (one label per line);
- ``NAME.onnx`` with ``onnx=True`` (opset 13, batch axis named ``batch``, output ``logits``);
- ``NAME.mar`` with ``mar=True``: a model archive for MXNet Model Server with its handler
  (:mod:`inceptionzoo.mar`).

Every file is written under a temporary name and renamed into place.
"""
import datetime
import json
import os
import shutil
import tempfile

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from . import __version__
from ._io import ensure_writable_dir, sha1_file

__all__ = ["export", "Preprocess"]

class Preprocess(HybridBlock):
    """Wraps a network so that its graph takes raw uint8 images.

    Input ``(N, H, W)`` or ``(N, H, W, 1)`` for one channel, ``(N, H, W, C)`` otherwise, any
    dtype holding 0..255. The graph casts to float32, scales by 1/255, subtracts ``mean``,
    divides by ``std`` and moves channels first, as the training transform does.
    """

    def __init__(self, net, input_shape, mean=0.0, std=1.0, **kwargs):
        super().__init__(prefix="", **kwargs)
        self.net = net
        self.input_shape = tuple(input_shape)
        self.mean, self.std = float(mean), float(std)

    def hybrid_forward(self, F, x):
        c, h, w = self.input_shape
        x = F.cast(x, dtype="float32")
        if c == 1:  # (N, H, W) and (N, H, W, 1) hold the same bytes as (N, 1, H, W)
            x = F.reshape(x, shape=(0, 1, h, w))
        else:
            x = F.transpose(x, axes=(0, 3, 1, 2))
        x = (x / 255.0 - self.mean) / self.std
        return self.net(x)


def _input_shape(net, input_shape):
    if input_shape is not None:
        return tuple(input_shape)
    info = getattr(net, "info", None)
    if info is None:
        raise ValueError("this block carries no model metadata: pass input_shape=(C, H, W)")
    return tuple(info.input_shape)


def _check_initialized(net):
    for p in net.collect_params().values():
        if p._data is None and p._deferred_init == ():
            raise ValueError(f"parameter {p.name} is not initialised: call net.initialize() "
                             "or load parameters before exporting")


def export(net, prefix, input_shape=None, preprocess=False, onnx=False, overwrite=False,
           mean=0.0, std=1.0, labels=None, mar=False):
    """Export ``net`` (a registered name or a HybridBlock) to ``PREFIX-symbol.json`` and
    ``PREFIX-0000.params`` plus sidecars.

    Parameters
    ----------
    net : str or mxnet.gluon.HybridBlock
        A HybridBlock with initialised parameters (it need not be hybridized or have run), or a
        registered model name, which is built with ``pretrained=True``.
    prefix : str
        Path prefix of the files; its folder is created. Keep the base name equal to the model
        name for MXNet Model Server.
    input_shape : tuple, optional
        ``(C, H, W)``; defaults to the model's metadata.
    preprocess : bool
        Bake the input transform into the graph (see :class:`Preprocess`): the graph takes raw
        uint8 images.
    onnx : bool
        Also write ``PREFIX.onnx`` (needs the ``onnx`` extra).
    overwrite : bool
        Replace an existing export of the same prefix; otherwise that is an error.
    mar : bool
        Also write ``PREFIX.mar``, a model archive for MXNet Model Server with its handler
        (:mod:`inceptionzoo.mar`).

    Returns
    -------
    dict
        Paths by role: ``symbol``, ``params``, ``meta``, ``signature``, ``synset``, ``onnx`` and
        ``mar``.
    """
    if isinstance(net, str):
        from ._registry import get_model

        net = get_model(net, pretrained=True)
    if not isinstance(net, HybridBlock):
        raise TypeError(f"export needs a HybridBlock or a model name; got {type(net).__name__}")
    shape = _input_shape(net, input_shape)
    _check_initialized(net)
    info = getattr(net, "info", None)
    name = info.name if info else net.name
    prefix = os.path.abspath(os.fspath(prefix))
    folder = ensure_writable_dir(os.path.dirname(prefix))
    base = os.path.basename(prefix)
    targets = {"symbol": f"{prefix}-symbol.json", "params": f"{prefix}-0000.params",
               "meta": f"{prefix}-meta.json", "signature": os.path.join(folder, "signature.json"),
               "synset": os.path.join(folder, "synset.txt")}
    if onnx:
        targets["onnx"] = f"{prefix}.onnx"
    if not overwrite:
        exists = [p for p in targets.values() if os.path.exists(p)]
        if exists:
            raise FileExistsError(f"an export exists already ({', '.join(exists)}); pass "
                                  "overwrite=True (--overwrite) to replace it")

    block = Preprocess(net, shape, mean, std) if preprocess else net
    if preprocess:
        example = mx.nd.zeros((1,) + shape[1:] + (shape[0],) if shape[0] > 1 else
                              (1,) + shape[1:], dtype="uint8")
        in_dtype = "uint8"
    else:
        example = mx.nd.zeros((1,) + shape)
        in_dtype = "float32"
    # The portable graph: plain hybridize, no optimize_for backend, no quantisation. The network
    # stays hybridized this way afterwards (as after gluoncv's export_block).
    block.hybridize(active=True, backend=None)
    block(example).wait_to_read()  # MXNet exports only a graph that has run once

    tmpdir = tempfile.mkdtemp(prefix=f".{base}.export.", dir=folder)
    try:
        tmp_prefix = os.path.join(tmpdir, base)
        block.export(tmp_prefix, epoch=0)
        os.replace(f"{tmp_prefix}-symbol.json", os.path.join(tmpdir, "symbol"))
        sym = mx.sym.load(os.path.join(tmpdir, "symbol"))
        params = set(mx.nd.load(f"{tmp_prefix}-0000.params"))
        inputs = [a for a in sym.list_arguments() if f"arg:{a}" not in params]
        if len(inputs) != 1:
            raise ValueError(f"expected one graph input, found {inputs}")
        in_shape = [0] + list(example.shape[1:])  # 0: any batch size
        classes = getattr(net, "classes", None) or (info.classes if info else None)
        labels = [str(i) for i in range(classes)] if labels is None and classes else labels
        meta = {
            "model": name,
            "input_name": inputs[0],
            "input_shape": in_shape,
            "input_dtype": in_dtype,
            "input_layout": ("NHW" if shape[0] == 1 else "NHWC") if preprocess else "NCHW",
            "classes": classes,
            "labels": labels,
            "preprocess": {"baked_in": bool(preprocess), "scale": 1 / 255, "mean": mean,
                           "std": std,
                           "transform": "x = (float32(image) / 255 - mean) / std, NCHW"},
            "output": "logits (apply softmax for probabilities)",
            "params_file": os.path.basename(targets["params"]),
            "symbol_file": os.path.basename(targets["symbol"]),
            "params_sha1": sha1_file(f"{tmp_prefix}-0000.params"),
            "symbol_sha1": sha1_file(os.path.join(tmpdir, "symbol")),
            "inceptionzoo_version": __version__,
            "mxnet_version": mx.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        signature = {
            "input_type": "image/png",
            "inputs": [{"data_name": inputs[0], "data_shape": in_shape}],
            "output_type": "application/json",
            "outputs": [{"data_name": "logits", "data_shape": [0, classes]}],
        }
        files = {"params": f"{tmp_prefix}-0000.params", "symbol": os.path.join(tmpdir, "symbol")}
        for role, obj in (("meta", meta), ("signature", signature)):
            files[role] = os.path.join(tmpdir, role)
            with open(files[role], "w") as f:
                json.dump(obj, f, indent=2)
                f.write("\n")
        if labels:
            files["synset"] = os.path.join(tmpdir, "synset")
            with open(files["synset"], "w") as f:
                f.write("\n".join(labels) + "\n")
        if onnx:
            os.replace(files["symbol"], f"{tmp_prefix}-symbol.json")
            files["onnx"] = os.path.join(tmpdir, "onnx")
            from .onnx_export import write_onnx

            sym, arg, aux = mx.model.load_checkpoint(tmp_prefix, 0)
            write_onnx(sym, {**arg, **aux}, tuple([1] + in_shape[1:]), in_dtype,
                       files["onnx"])
            files["symbol"] = f"{tmp_prefix}-symbol.json"
        # params first, then the graph, then the sidecars that describe them
        for role in ("params", "symbol", "meta", "signature", "synset", "onnx"):
            if role in files:
                os.replace(files[role], targets[role])
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    written = {role: path for role, path in targets.items() if os.path.exists(path)}
    if mar:  # from the files just written, so the archive holds exactly the export
        from .mar import write_mar

        written["mar"] = write_mar(written, base, f"{prefix}.mar", overwrite=overwrite)
    return written
