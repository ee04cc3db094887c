"""Export a network for serving: MXNet symbol JSON + params, sidecars, and optionally ONNX.

What an export of prefix ``DIR/NAME`` writes (``NAME`` is the model name by default):

- ``NAME-symbol.json`` and ``NAME-0000.params``: the portable graph and its weights, loadable with
  ``gluon.SymbolBlock.imports``, ``mx.model.load_checkpoint`` and ``mx.mod.Module`` without
  inceptionzoo;
- ``NAME-meta.json``: model name, input name/shape/dtype, classes and labels, the preprocessing
  (baked in or to apply), SHA-1 of the params and symbol files (and of ``NAME.onnx``, with its
  name), inceptionzoo/mxnet versions;
- ``NAME-signature.json`` (input and output in the signature format of MXNet Model Server 0.4;
  the ``.mar`` handler does not read it) and ``NAME-synset.txt`` (one label per line), named by
  the export like every other file, so that several exports share a folder;
- ``NAME.onnx`` with ``onnx=True`` (opset 13, batch axis named ``batch``, output ``logits``);
- ``NAME.mar`` with ``mar=True``: a model archive for MXNet Model Server with its handler
  (:mod:`inceptionzoo.mar`).

The files, the ``.mar`` and ``.onnx`` included, are written into a folder of their own,
``.NAME.export-<id>/`` (``<id>``: 8 characters of ``[a-z0-9_]``), and published in one step:
``.NAME.export`` is a symbolic link to that folder and every final name (``NAME-symbol.json``
...) is a symbolic link through it (``.NAME.export/NAME-symbol.json``). Replacing that one link
is a single atomic rename, so an overwritten export switches over as a whole: the final names
show the old set or the new one, never a mix, and a file the new export does not write
(``NAME.mar``, ``NAME.onnx``) no longer shows the old one. A failure before the switch leaves the
folder as it was. Exports into one folder take turns (an exclusive ``flock`` on the folder while
they publish): of two exports racing into the same folder without ``overwrite``, exactly one wins
and the other gets ``FileExistsError``. An export touches only its own names: its generation
folders are matched exactly, so exports of ``x`` and ``x.export-v2`` share a folder (the
folder's names and the publishing: :mod:`inceptionzoo.export_folder`).

A feature extractor (``get_model(..., features_only=True)``) exports its maps: ``NAME-meta.json``
has ``"outputs": "features"`` with ``output_names`` and ``output_shapes`` (no classes or labels;
a classifier's has ``"outputs": "logits"``), its ONNX file one output per map, and ``mar=True`` is
refused (the handler serves classifiers).
"""
import datetime
import os
import shutil
import tempfile

import mxnet as mx
from mxnet.gluon import HybridBlock

from . import __version__
from ._errors import install_hint
from ._io import dump_json, sha1_file
from ._factory import get_model
from ._features import FeatureNet
from .accuracy_guard import lower_precision
from .errors import InceptionZooError, WrongTypeError
from .export_folder import NAME_MAX, export_prefix, export_target, publish  # noqa: F401
from .mar import record_batching, write_mar
from .onnx_export import write_onnx
from .quantization import PRECISIONS
from .transforms import EvalTransform, InputTransform, normalisation, resize_size_for

__all__ = ["export", "Preprocess", "export_prefix", "NAME_MAX", "ONNX_EXTRA"]

#: What installs the ``onnx`` package ``onnx=True`` needs.
ONNX_EXTRA = install_hint("onnx")

class Preprocess(HybridBlock):
    """Wraps a network so that its graph takes raw uint8 images.

    Input ``(N, H, W)`` or ``(N, H, W, 1)`` for one channel, ``(N, H, W, C)`` otherwise, any
    dtype holding 0..255: :class:`~inceptionzoo.transforms.InputTransform` (cast to float32,
    clip to 0..255, scale by 1/255, per-channel ``mean``/``std``, channels first), then ``net``.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
    input_shape : tuple of int
        ``(C, H, W)`` the network takes.
    mean, std : float or sequence of float
        One value or one per channel, on pixels scaled to [0, 1].
    """

    def __init__(self, net, input_shape, mean=0.0, std=1.0, **kwargs):
        super().__init__(prefix="", **kwargs)
        self.net = net
        self.transform = InputTransform(input_shape, mean, std, prefix="preprocess_")
        self.input_shape, self.mean, self.std = (self.transform.input_shape,
                                                 self.transform.mean, self.transform.std)

    def hybrid_forward(self, F, x):
        return self.net(self.transform(x))


def _input_shape(net, input_shape):
    if input_shape is not None:
        return tuple(input_shape)
    info = getattr(net, "info", None)
    if info is None:
        raise InceptionZooError("this block carries no model metadata: pass input_shape=(C, H, W)")
    return tuple(info.input_shape)


def _check_initialized(net):
    for p in net.collect_params().values():
        if p._data is None and p._deferred_init == ():
            raise InceptionZooError(f"parameter {p.name} is not initialised: call net.initialize() "
                                    "or load parameters before exporting")


def _labels(net, info, labels, outputs):
    """Number of classes and their labels: ``net.classes`` may be a count (zoo) or the list of
    names (gluoncv); ``outputs`` is the width of the exported graph's output. Zoo networks'
    labels are their ``info.labels()`` (the weights' class names)."""
    classes = getattr(net, "classes", None)
    if classes is None and info is not None:
        classes = info.classes
    if isinstance(classes, (list, tuple)):
        labels = [str(c) for c in classes] if labels is None else labels
        classes = len(classes)
    classes = outputs if outputs is not None else classes
    if labels is None and classes:  # the weights' class names (ImageNet-1k ...), else indices
        labels = info.labels() if info is not None and info.classes == classes else \
            [str(i) for i in range(classes)]
    if labels is not None:
        labels = [str(lab) for lab in labels]
        if classes is not None and len(labels) != classes:
            raise InceptionZooError(f"labels: the network has {classes} outputs; got {len(labels)} "
                                    "labels")
    return classes, labels


def _image_transform(info, shape):
    """The geometry of the weights' evaluation transform for images, as ``meta.json`` records
    it (:meth:`inceptionzoo.transforms.EvalTransform.to_meta`): ``resize_size``, ``crop_size``,
    ``interpolation``. A block without metadata: the shorter side resized to the input size
    (crop_pct 1), bilinear. Empty for inputs that are not grey or RGB images."""
    if shape[0] not in (1, 3):
        return {}
    if info is None:
        transform = EvalTransform(shape[1:], shape[0], resize_size_for(min(shape[1:]), 1.0))
    else:
        transform = EvalTransform.from_info(info, shape)
    meta = transform.to_meta()
    return {k: meta[k] for k in ("resize_size", "crop_size", "interpolation")}


def _trace(block, shape, preprocess):
    """Run ``block`` once (MXNet exports only a graph that has run) and build its symbol:
    ``(example input, input dtype, the outputs (a list), symbol, parameters by name)``."""
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
    out = block(example)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    sym = block(mx.sym.var("data"))  # the graph block.export writes
    if isinstance(sym, (list, tuple)):  # several outputs (GoogLeNet's auxiliary heads)
        sym = mx.sym.Group(list(sym))
    params = {p.name: p for p in block.collect_params().values()}
    inputs = [a for a in sym.list_inputs() if a not in params]
    if inputs != ["data"]:
        raise InceptionZooError(f"expected one graph input 'data'; found {inputs}")
    return example, in_dtype, outs, sym, params


def _outputs(net, outs, labels):
    """What the graph's outputs are, as ``NAME-meta.json`` records them: a feature extractor's
    maps (``outputs``, ``output_names``, ``output_shapes``, ``feature_info``), else nothing
    here (a classifier's logits are described by :func:`_meta`)."""
    if not isinstance(net, FeatureNet):
        return None
    if labels is not None:
        raise InceptionZooError(f"labels: a feature extractor (features_only=True) has no "
                                f"classes; got {len(labels)} labels")
    info = net.feature_info
    names = [s["module"] for s in info]
    if len(names) != len(outs):
        raise InceptionZooError(f"the feature extractor returned {len(outs)} maps for its "
                                f"{len(names)} stages {names}")
    return {"outputs": "features", "output_names": names,
            "output_shapes": [[0] + list(o.shape[1:]) for o in outs], "feature_info": info}


def _meta(name, info, shape, batch_shape, in_dtype, preprocess, classes, labels, mean, std,
          files, path, onnx=False, features=None):
    """The ``NAME-meta.json`` of an export whose params and symbol are written at ``path``;
    ``features``: the description of a feature extractor's outputs (:func:`_outputs`)."""
    outputs = features or {"outputs": "logits", "classes": classes, "labels": labels}
    return {
        "model": name,
        "input_name": "data",
        "batch_shape": batch_shape,
        "input_dtype": in_dtype,
        "input_layout": ("NHW" if shape[0] == 1 else "NHWC") if preprocess else "NCHW",
        **outputs,
        "preprocess": {"baked_in": bool(preprocess), "scale": 1 / 255, "mean": list(mean),
                       "std": list(std), "clip": [0, 255], **_image_transform(info, shape),
                       "transform": "x = (clip(float32(image), 0, 255) / 255 - mean) / std"
                                    " per channel, NCHW"},
        **({} if features else {"output": "logits (apply softmax for probabilities)"}),
        "params_file": files["params"],
        "symbol_file": files["symbol"],
        "params_sha1": sha1_file(path["params"]),
        "symbol_sha1": sha1_file(path["symbol"]),
        **({"onnx_file": files["onnx"], "onnx_sha1": sha1_file(path["onnx"])} if onnx else {}),
        "inceptionzoo_version": __version__,
        "mxnet_version": mx.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _write_sidecars(path, meta, batch_shape, outputs, labels):
    """Write the meta, signature and synset files; the roles written. ``outputs``: the
    graph's ``(name, shape)`` pairs."""
    dump_json(path["meta"], meta)
    dump_json(path["signature"], {
        "input_type": "image/png",
        "inputs": [{"data_name": "data", "data_shape": batch_shape}],
        "output_type": "application/json",
        "outputs": [{"data_name": n, "data_shape": shape} for n, shape in outputs],
    })
    written = ["meta", "signature"]
    if labels:
        with open(path["synset"], "w") as f:
            f.write("\n".join(labels) + "\n")
        written.append("synset")
    return written


def export(net, prefix, input_shape=None, preprocess=False, onnx=False, overwrite=False,
           mean=None, std=None, labels=None, mar=False, precision="fp32", calibration=None,
           holdout=None, max_accuracy_drop=0.5, calibration_size=500, holdout_size=None):
    """Export ``net`` (a registered name or a HybridBlock) to ``PREFIX-symbol.json`` and
    ``PREFIX-0000.params`` plus sidecars.

    Parameters
    ----------
    net : str or mxnet.gluon.HybridBlock
        A HybridBlock with initialised parameters (it need not be hybridized or have run), or a
        registered model name, which is built with ``pretrained=True``.
    prefix : str
        Path prefix of the files; its folder is created. A prefix ending in a path separator
        (``'deploy/'``) is that folder, and the name is the model's. Keep the base name equal
        to the model name for MXNet Model Server. The name (base name) must not hold control
        characters, and must leave room for the longest file name the export writes within
        :data:`NAME_MAX` bytes (at most 228 bytes); it is checked before anything is written.
    input_shape : tuple, optional
        ``(C, H, W)``; defaults to the model's metadata.
    preprocess : bool
        Bake the input transform into the graph (see :class:`Preprocess`): the graph takes raw
        uint8 images.
    onnx : bool
        Also write ``PREFIX.onnx`` (needs the ``onnx`` extra: without it, an
        :class:`~inceptionzoo.errors.InceptionZooError` naming :data:`ONNX_EXTRA` before
        anything is written). A feature extractor's has one output per map.
    overwrite : bool
        Replace an existing export of the same prefix as a whole: every file, ``PREFIX.mar``
        and ``PREFIX.onnx`` included (an export without them removes the old ones); otherwise
        an existing export is an error.
    mean, std : float or sequence of float, optional
        Override the normalisation of the input transform (one value or one per channel, on
        pixels scaled to [0, 1]; finite, std > 0). Default: the model's ``net.info.mean`` /
        ``std``, else 0 and 1.
    labels : list of str, optional
        One label per output; default: ``net.classes`` if it is a list of names, else the
        class names of the weights (``net.info.labels()``: the ImageNet-1k names for
        1000-class ImageNet weights), else ``'0'``, ``'1'``, ...
    mar : bool
        Also write ``PREFIX.mar``, a model archive for MXNet Model Server with its handler
        (:mod:`inceptionzoo.mar`), as a file of the export. Refused for a feature extractor
        (``get_model(..., features_only=True)``): the handler serves classifiers.
    precision : str
        ``'fp32'`` (default), ``'int8'`` (oneDNN quantisation) or ``'bf16'`` (bfloat16
        convolutions): the symbol and params written are the lower-precision graph, measured
        first against the float32 network by the accuracy guard
        (:func:`inceptionzoo.accuracy_guard.lower_precision`), which refuses it
        (:class:`~inceptionzoo.errors.AccuracyGuardError`, nothing written) when top-1
        accuracy drops more than ``max_accuracy_drop`` points. Zoo classifiers only; not with
        ``mean``/``std`` overrides. With ``onnx``, int8 only (ONNX Runtime has no bfloat16
        convolutions on CPU) and without ``preprocess``: ``PREFIX.onnx`` is then ONNX Runtime's
        INT8 quantisation of the float32 graph (:func:`inceptionzoo.quantization.quantize_onnx`,
        the same calibration images), guarded the same way, and ``load_graph(..., 'auto')``
        races the two INT8 runtimes. ``NAME-meta.json`` records ``precision`` (also
        ``'fp32'``), the ``calibration`` set, ``calib_mode``, the ``guard``'s measures and, with
        ``onnx``, ``onnx`` (quantisation, guard, load-time parity tolerance).
    calibration : str or numpy.ndarray, optional
        INT8's calibration images: ``'mnist:DIR'`` (its training split), a folder of images,
        or network inputs ``(N, C, H, W)``; ``calibration_size`` of them are used.
    holdout : str or tuple, optional
        The guard's labelled images (needed for int8 and bf16): ``'mnist:DIR'`` (its test
        split), a folder of class subfolders named by the labels, or ``(inputs, labels)``;
        ``holdout_size`` of them (default all). Disjoint from ``calibration``.
    max_accuracy_drop : float
        The guard's limit, in points of top-1 accuracy.
    calibration_size, holdout_size : int, optional

    Returns
    -------
    dict
        Paths by role: ``symbol``, ``params``, ``meta``, ``signature``, ``synset`` (not for a
        feature extractor, which has no labels), ``onnx`` and ``mar``.
    """
    if isinstance(net, str):
        net = get_model(net, pretrained=True)
    if not isinstance(net, HybridBlock):
        raise WrongTypeError(
            f"export needs a HybridBlock or a model name; got {type(net).__name__}")
    _check_extras(net, onnx, mar)  # before anything is written
    shape = _input_shape(net, input_shape)
    _check_initialized(net)
    info = getattr(net, "info", None)
    name = info.name if info else net.name
    lowered, precision_meta, onnx_int8 = _lower_precision(
        net, precision, onnx, preprocess, mean, std, labels, input_shape=shape,
        calibration=calibration, holdout=holdout,
        max_accuracy_drop=max_accuracy_drop, calibration_size=calibration_size,
        holdout_size=holdout_size)  # the accuracy guard: before anything is written
    mean, std = normalisation(getattr(info, "mean", 0.0) if mean is None else mean,
                              getattr(info, "std", 1.0) if std is None else std, shape[0])
    folder, base, files = export_target(name, prefix, overwrite)
    block = Preprocess(lowered, shape, mean, std) if preprocess else lowered
    example, in_dtype, outs, sym, params = _trace(block, shape, preprocess)
    features = _outputs(net, outs, labels)
    if features:
        classes = None
        outputs = list(zip(features["output_names"], features["output_shapes"]))
    else:
        out = outs[0]
        classes, labels = _labels(net, info, labels, out.shape[1] if out.ndim == 2 else None)
        outputs = [("logits", [0, classes])]
    batch_shape = [0] + list(example.shape[1:])  # 0: any batch size

    tmpdir = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=folder)
    try:
        path = {role: os.path.join(tmpdir, f) for role, f in files.items()}
        block.export(os.path.join(tmpdir, base), epoch=0, remove_amp_cast=False)  # bf16's casts
        if onnx_int8 is not None:  # before the metadata, which records its SHA-1
            with open(path["onnx"], "wb") as f:
                f.write(onnx_int8)
        elif onnx:
            _write_onnx(sym, params, batch_shape, in_dtype, path["onnx"],
                        [n for n, _ in outputs] if features else ["logits"])
        meta = _meta(name, info, shape, batch_shape, in_dtype, preprocess, classes, labels, mean,
                     std, files, path, onnx, features)
        meta.update(precision_meta)
        written = ["params", "symbol"] + _write_sidecars(path, meta, batch_shape, outputs, labels)
        if onnx:
            written.append("onnx")
        if mar:  # meta["batching"] timed on these files, then the archive from this generation's
            record_batching(path["meta"])  # files: it holds exactly the export
            write_mar({role: path[role] for role in written}, base, path["mar"])
            written.append("mar")
        publish(folder, base, tmpdir, {role: files[role] for role in written},
                 [f for role, f in files.items() if role not in written], overwrite)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return {role: os.path.join(folder, files[role]) for role in written}


# -- lower precision (inceptionzoo.quantization) -------------------------------------------------

def _write_onnx(sym, params, in_shape, in_dtype, path, output_names):
    """The ONNX file of a traced graph (:func:`_trace`'s ``sym`` and ``params``)."""
    used = set(sym.list_inputs())
    write_onnx(sym, {n: p.data(p.list_ctx()[0]) for n, p in params.items() if n in used},
               tuple([1] + list(in_shape[1:])), in_dtype, path, output_names=output_names)


def _float_onnx(net, shape):
    """The float32 ONNX model of ``net`` (network inputs in, logits out), as bytes."""
    _, in_dtype, _, sym, params = _trace(net, shape, False)
    with tempfile.TemporaryDirectory(prefix="inceptionzoo-onnx-") as tmp:
        path = os.path.join(tmp, "f32.onnx")
        _write_onnx(sym, params, (0,) + tuple(shape), in_dtype, path, ["logits"])
        with open(path, "rb") as f:
            return f.read()


def _lower_precision(net, precision, onnx, preprocess, mean, std, labels, **guard):
    """``(block, meta fields, INT8 ONNX bytes or None)``: ``net`` and ``{"precision":
    "fp32"}``, or its lower-precision twin after the accuracy guard, with what
    ``NAME-meta.json`` records of it (and, for int8 with ``onnx``, ONNX Runtime's INT8 model,
    guarded too)."""
    if precision not in PRECISIONS:
        raise InceptionZooError(f"precision must be one of {', '.join(PRECISIONS)}; got "
                                f"{precision!r}")
    if precision == "fp32":
        return net, {"precision": "fp32"}, None
    if isinstance(net, FeatureNet):
        raise InceptionZooError(f"precision={precision!r} for a feature extractor "
                                "(features_only=True): the accuracy guard measures classifiers")
    if onnx and precision == "bf16":
        raise InceptionZooError("precision='bf16' with onnx=True (--onnx): ONNX Runtime has no "
                                "bfloat16 convolution kernels on CPU; export bf16 without --onnx")
    if onnx and preprocess:
        raise InceptionZooError("precision='int8' with onnx=True and preprocess=True "
                                "(--preprocess): ONNX Runtime's INT8 model is calibrated on "
                                "network inputs; export it without --preprocess (the Predictor "
                                "and the .mar handler transform images themselves)")
    if mean is not None or std is not None:
        raise InceptionZooError(f"precision={precision!r} with mean/std overrides: the "
                                "accuracy guard measures with the weights' normalisation")
    onnx_model = (lambda: _float_onnx(net, guard["input_shape"])) if onnx else None
    return lower_precision(net, precision, labels=labels, onnx_model=onnx_model, **guard)


def _check_extras(net, onnx, mar):
    """Refuse what this export cannot write, before it writes anything: ``onnx=True`` without
    the ``onnx`` package, ``mar=True`` for a feature extractor."""
    if mar and isinstance(net, FeatureNet):
        raise InceptionZooError(
            "mar=True (--mar) for a feature extractor (features_only=True): the .mar handler "
            "serves classifiers (logits to labels), not feature maps; export it without mar")
    if onnx:
        try:
            import onnx as _  # noqa: F401
        except ImportError as err:
            raise InceptionZooError(f"onnx=True (--onnx) needs the onnx package, which cannot "
                                    f"be imported ({err}): {ONNX_EXTRA}") from None


