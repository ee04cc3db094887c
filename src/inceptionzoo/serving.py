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

The graph itself: :func:`load_graph` (a batch in, logits out) runs the export in MXNet
(:class:`~inceptionzoo.inference.InferenceGraph`) or, when the export has ``NAME.onnx`` and
onnxruntime is installed (the ``onnxruntime`` extra), in ONNX Runtime, each batch size in the
runtime found faster at load time and checked to compute the same logits
(:mod:`inceptionzoo.runtimes`). The Predictor runs on it.
"""
import glob
import json
import numbers
import os
import threading
import warnings

import mxnet as mx
import numpy as np

from . import runtimes
from ._errors import mxnet_message
from ._io import sha1_file, write_json
from .imaging import EvalTransform, ImageError
from .inference import InferenceGraph
from .checkpoints import read_ndarray_file
from .transforms import InputTransform, normalisation, to_pixels
from .weights import without_prefixes

__all__ = ["Predictor", "PredictionError", "read_meta", "load_graph", "ServingGraph"]


from .errors import InceptionZooError, PredictionError  # noqa: E402  (defined in errors; this import path stays)


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
    for key in ("params_file", "symbol_file") + (("onnx_file",) if "onnx_file" in meta else ()):
        name = meta[key]
        if not (isinstance(name, str) and name and os.path.basename(name) == name
                and name not in (".", "..")):
            raise PredictionError(f"{path}: {key!r} must be a plain file name inside the export "
                                  f"folder; got {name!r}")
    for key in ("input_name", "input_dtype", "params_sha1", "symbol_sha1"):
        if not isinstance(meta[key], str):
            raise PredictionError(f"{path}: {key!r} must be a string; got {meta[key]!r}")
    classes, labels = meta["classes"], meta.get("labels")
    if not (isinstance(classes, int) and not isinstance(classes, bool) and classes >= 1):
        raise PredictionError(f"{path}: 'classes' must be an integer >= 1; got {classes!r}")
    if labels is not None and not (isinstance(labels, list) and len(labels) == classes
                                   and all(isinstance(x, str) for x in labels)):
        raise PredictionError(f"{path}: 'labels' must be a list of {classes} strings (one per "
                              f"class); got {_brief(labels)}")
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


def _brief(value, most=80):
    text = repr(value)
    return text if len(text) <= most else text[:most] + "..."


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
    params = without_prefixes(arrays)
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


def _find_meta(model_dir, name):
    metas = sorted(glob.glob(os.path.join(glob.escape(os.fspath(model_dir)), "*-meta.json")))
    if name is not None:
        metas = [m for m in metas if os.path.basename(m) == f"{name}-meta.json"]
    if len(metas) != 1:
        found = [os.path.basename(m)[:-10] for m in
                 glob.glob(os.path.join(glob.escape(os.fspath(model_dir)), "*-meta.json"))]
        raise PredictionError(
            f"{model_dir!r}: expected one export{f' named {name!r}' if name else ''}, "
            f"found {found or 'none'} (an export writes NAME-meta.json)"
            + ("; choose one with --name NAME (name= in Python)" if len(found) > 1 else ""))
    return metas[0]


def _checked_file(folder, meta, file_key, sha_key, meta_file):
    # final names are links into the export's generation folder: resolved once, so that an
    # overwrite switching over meanwhile cannot hand us files of two exports
    path = os.path.realpath(os.path.join(folder, meta[file_key]))
    if not os.path.isfile(path):
        raise PredictionError(f"export file {path!r} is missing")
    got = sha1_file(path)
    if got != meta[sha_key]:
        raise PredictionError(f"{path!r} is corrupt or not the exported one: SHA-1 "
                              f"{got}, the export recorded {meta[sha_key]} ({meta_file})")
    return path


def _check_outputs(meta, meta_file, sym, params):
    """The graph gives one output per class and label of ``meta.json``."""
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


def _onnx_path(folder, meta, meta_file):
    """The export's ``NAME.onnx`` (checked against the SHA-1 the export recorded), or None."""
    if "onnx_file" in meta:
        if not isinstance(meta["onnx_file"], str) or not isinstance(meta.get("onnx_sha1"), str):
            raise PredictionError(f"{meta_file}: 'onnx_file' and 'onnx_sha1' must be strings; "
                                  f"got {meta['onnx_file']!r}, {meta.get('onnx_sha1')!r}")
        return _checked_file(folder, meta, "onnx_file", "onnx_sha1", meta_file)
    path = os.path.join(folder, os.path.basename(meta_file)[:-10] + ".onnx")
    return os.path.realpath(path) if os.path.isfile(path) else None  # exports before onnx_sha1


def load_graph(export_dir, runtime="auto", warmup=(1, 32), name=None, ctx=None):
    """The export's graph as a callable in the fastest runtime: a batch in, logits out.

    Parameters
    ----------
    export_dir : str
        Folder written by :func:`inceptionzoo.export.export`.
    runtime : str
        ``'mxnet'``: MXNet's static graphs, tuned per batch size
        (:class:`~inceptionzoo.inference.InferenceGraph`); ``'onnxruntime'``: the export's
        ``NAME.onnx`` in an ONNX Runtime session (needs ``export(..., onnx=True)`` and the
        ``onnxruntime`` extra); ``'auto'``: both when the export has an ONNX file and
        onnxruntime is installed (else MXNet, as before): at load, both must give the same
        logits (:data:`inceptionzoo.runtimes.PARITY`, else ONNX Runtime is refused with a
        warning), then each warmed-up batch size runs the faster of them (timed alternately,
        medians).
    warmup : iterable of int
        Batch sizes to prepare (and, with ``'auto'``, time) now. A saved tuning
        (``NAME-tuning.json``, :meth:`ServingGraph.save_tuning`) is used instead of timing.
    name : str, optional
        Which export, when the folder holds several.
    ctx : mxnet.Context, optional
        Device of the MXNet graphs (ONNX Runtime runs on CPU; on another device ``'auto'``
        is MXNet).

    Returns
    -------
    ServingGraph

    Raises
    ------
    PredictionError
        A bad export or runtime, naming what was expected.
    """
    if runtime not in runtimes.RUNTIMES:
        raise PredictionError(f"runtime must be one of {', '.join(runtimes.RUNTIMES)}; "
                              f"got {runtime!r}")
    ctx = ctx or mx.cpu()
    meta_file = _find_meta(export_dir, name)
    meta = read_meta(meta_file)
    folder = os.path.dirname(meta_file)
    params = _checked_file(folder, meta, "params_file", "params_sha1", meta_file)
    symbol = _checked_file(folder, meta, "symbol_file", "symbol_sha1", meta_file)
    onnx_path = None
    if runtime != "mxnet":
        onnx_path = _onnx_path(folder, meta, meta_file)
        if runtime == "onnxruntime":
            if onnx_path is None:
                raise PredictionError(f"{folder!r} has no ONNX file of this export: export "
                                      "with onnx=True (inceptionzoo export --onnx)")
            if runtimes.import_onnxruntime() is None:
                raise PredictionError(f"runtime 'onnxruntime' needs onnxruntime: "
                                      f"{runtimes.ORT_EXTRA}")
        elif ctx.device_type != "cpu" or runtimes.import_onnxruntime() is None:
            onnx_path = None
    net = None
    if runtime != "onnxruntime":
        shape = meta["input_shape"]
        arrays = read_ndarray_file(params, error=PredictionError)  # structure checked first
        if not isinstance(arrays, dict):
            raise PredictionError(f"{params!r} holds unnamed arrays; an export's params file "
                                  "names each parameter")
        try:
            sym = mx.sym.load(symbol)
        except mx.base.MXNetError as err:
            raise PredictionError(f"cannot load the export in {folder!r}: "
                                  f"{mxnet_message(err)}") from None
        arrays = _check_params(sym, arrays, meta["input_name"], (1,) + tuple(shape[1:]),
                               folder, meta_file)
        _check_outputs(meta, meta_file, sym, arrays)
        # the recommended path: static graphs specialised by batch size (inceptionzoo.inference)
        net = InferenceGraph(sym, {k: v.as_in_context(ctx) for k, v in arrays.items()},
                             input_name=meta["input_name"], sample_shape=shape[1:],
                             dtype=meta["input_dtype"], merge=True)  # fixed weights
    ort = None
    if onnx_path is not None:
        try:
            ort = runtimes.OrtRunner(onnx_path)
        except Exception as err:  # onnxruntime's own error types: a file it cannot load
            if runtime == "onnxruntime":
                raise PredictionError(f"ONNX Runtime cannot load {onnx_path!r}: {err}") from None
            warnings.warn(f"ONNX Runtime cannot load {onnx_path!r}, MXNet serves: {err}")
    graph = ServingGraph(meta, meta_file, net, ort, runtime, ctx,
                         onnx_sha1=None if onnx_path is None else sha1_file(onnx_path))
    if warmup:
        graph.warmup(warmup)
    return graph


class ServingGraph:
    """An export's graph in one or two runtimes (built by :func:`load_graph`): a batch in,
    logits out, each batch size in the runtime picked for it.

    Parameters
    ----------
    meta : dict
        The export's ``NAME-meta.json``.
    meta_file : str
        Its path (the tuning file goes beside it).
    net : InferenceGraph or None
        The MXNet graphs (None: ONNX Runtime only).
    ort : inceptionzoo.runtimes.OrtRunner or None
        The ONNX Runtime session (None: MXNet only).
    runtime : str
        As asked of :func:`load_graph`.
    ctx : mxnet.Context
        Device of the MXNet graphs.
    onnx_sha1 : str, optional
        SHA-1 of the ONNX file ``ort`` runs.

    Attributes
    ----------
    tuning_file : str
        ``NAME-tuning.json`` beside the export.
    tuning_loaded : dict
        Batch size -> MXNet graph variant loaded from ``tuning_file``.
    choice : dict
        Batch size -> ``'mxnet'`` or ``'onnxruntime'``, for the warmed-up (or loaded) sizes.
    seconds : dict
        Batch size -> {runtime: median seconds per call}, for the sizes timed here; with
        ONNX Runtime also ``'threads=0'`` / ``'threads=1'``, its default and single-threaded
        sessions (:meth:`inceptionzoo.runtimes.OrtRunner.tune`).
    refused : str or None
        Why ONNX Runtime was refused (its logits differ from MXNet's), else None.
    """

    #: seconds of alternating timing per batch size with ``'auto'``
    TIME_BUDGET = 2.0

    def __init__(self, meta, meta_file, net, ort, runtime, ctx, onnx_sha1=None):
        self.meta, self.meta_file, self.net, self.ort = meta, meta_file, net, ort
        self.runtime, self.ctx, self.onnx_sha1 = runtime, ctx, onnx_sha1
        self.dtype = meta["input_dtype"]
        self.sample_shape = tuple(meta["input_shape"][1:])
        self.tuning_file = meta_file[:-len("-meta.json")] + "-tuning.json"
        self.choice, self.seconds, self.refused, self._checked = {}, {}, None, False
        self.tuning_loaded = {}
        self._load_tuning()

    @property
    def runtimes(self):
        """The runtimes this graph can run: ``['mxnet']``, ``['onnxruntime']`` or both."""
        return [r for r, g in (("mxnet", self.net), ("onnxruntime", self.ort)) if g is not None]

    def runtime_for(self, batch):
        """The runtime that runs a batch of this size.

        Parameters
        ----------
        batch : int

        Returns
        -------
        str
            ``'mxnet'`` or ``'onnxruntime'``: the choice made for this size, else for the
            nearest warmed-up size, else MXNet when it is loaded.
        """
        if len(self.runtimes) == 1:
            return self.runtimes[0]
        return runtimes.nearest(self.choice, int(batch), "mxnet")

    def __call__(self, x):
        """Logits of a batch.

        Parameters
        ----------
        x : numpy.ndarray or mxnet.nd.NDArray
            A batch of the export's input (``input_shape`` without the batch axis,
            ``input_dtype``: float32 NCHW for a plain export, uint8 images with
            ``--preprocess``).

        Returns
        -------
        numpy.ndarray
            ``(N, classes)`` float32.
        """
        if self.runtime_for(x.shape[0]) == "onnxruntime":
            if isinstance(x, mx.nd.NDArray):
                x = x.asnumpy()
            return self.ort(np.ascontiguousarray(x, dtype=self.dtype))
        if not isinstance(x, mx.nd.NDArray):
            x = mx.nd.array(x, ctx=self.ctx, dtype=self.dtype)
        return self.net(x).asnumpy()

    def _sample(self, batch):
        rng = np.random.RandomState(0)
        x = rng.uniform(0, 255 if self.dtype == "uint8" else 1, (batch,) + self.sample_shape)
        return x.astype(self.dtype)

    def _check_parity(self, batch):
        """Both runtimes on the same random batch: refuse ONNX Runtime (with a warning) when
        its logits are not MXNet's."""
        self._checked = True
        x = self._sample(batch)
        ref = self.net(mx.nd.array(x, ctx=self.ctx, dtype=self.dtype)).asnumpy()
        try:
            got = self.ort(x)
        except Exception as err:  # noqa: BLE001 -- onnxruntime's error types
            same, why = False, f"it fails on a batch of shape {x.shape}: {err}"
        else:
            same, diff, scale = runtimes.parity(ref, got)
            why = (f"max |logit difference| {diff:.3g} against MXNet, above "
                   f"{runtimes.PARITY:g} x the largest |logit| {scale:.3g}")
        if not same:
            self.refused = f"ONNX Runtime refused for {self.meta_file}: {why}"
            warnings.warn(self.refused)
            self.ort = None
            self.choice = {b: "mxnet" for b in self.choice}

    def warmup(self, batch_sizes):
        """Pick the runtime (and MXNet graph variant) for each batch size and prepare it now,
        unless a saved tuning covers it.

        Parameters
        ----------
        batch_sizes : iterable of int
            The batch sizes that will be served.

        Returns
        -------
        dict
            Batch size -> ``'onnxruntime'`` or ``'mxnet <variant>'``.

        Raises
        ------
        PredictionError
            For batch sizes below 1.
        """
        try:
            sizes = [int(b) for b in batch_sizes]
        except (TypeError, ValueError):
            raise PredictionError(f"batch sizes must be integers; got {batch_sizes!r}") from None
        if [b for b in sizes if b < 1]:
            raise PredictionError(f"batch sizes must be >= 1; got {sizes}")
        if self.net is not None and self.ort is not None and not self._checked and sizes:
            self._check_parity(sizes[0])
        out = {}
        if self.ort is not None:  # ONNX Runtime's thread setting per size, before the race
            untuned = [b for b in sizes if b not in self.ort.threads]
            for b, times in self.ort.tune([self._sample(b) for b in untuned]).items():
                self.seconds.setdefault(b, {}).update(times)
        for b in sizes:
            x = self._sample(b)
            if self.net is not None:
                self.net.warmup([b])  # picks (or loads) the variant, builds its primitives
            if self.ort is not None:
                for _ in range(3):
                    self.ort(x)
            if self.net is not None and self.ort is not None and b not in self.choice:
                runners = {"mxnet": self, "onnxruntime": self.ort}
                self.choice[b] = "mxnet"  # self(x) runs MXNet while timing
                times = runtimes.time_alternating(runners, x, budget=self.TIME_BUDGET)
                self.seconds.setdefault(b, {}).update(times)
                self.choice[b] = min(times, key=times.get)
            elif b not in self.choice:
                self.choice[b] = self.runtimes[0]
            run = self.runtime_for(b)
            out[b] = run if run == "onnxruntime" else f"mxnet {self.net.choice[b]}"
        return out

    def tuning(self):
        """The choices made so far, as the JSON record :meth:`save_tuning` writes.

        Returns
        -------
        dict
        """
        record = dict(self.net.tuning() if self.net is not None else {},
                      symbol_sha1=self.meta["symbol_sha1"], machine=_cpu_name())
        record["runtimes"] = {
            "choice": {str(b): r for b, r in sorted(self.choice.items())},
            "onnx_sha1": self.onnx_sha1,
            "onnxruntime": None if self.ort is None else self.ort.version,
            "refused": self.refused,
            "seconds": {str(b): t for b, t in sorted(self.seconds.items())},
            "threads": {} if self.ort is None else
            {str(b): t for b, t in sorted(self.ort.threads.items())}}
        return record

    def save_tuning(self):
        """Write the choices made so far beside the export (``NAME-tuning.json``), so that
        the next process loads them instead of timing.

        Returns
        -------
        str
            The file written.
        """
        write_json(self.tuning_file, dict(self.tuning(), note="written by save_tuning / "
                                          "`inceptionzoo tune`; load_graph and the Predictor "
                                          "of this export load it"))
        return self.tuning_file

    def _ignore(self, why):
        warnings.warn(f"{self.tuning_file} is ignored: {why} (rerun `inceptionzoo tune`)")

    def _load_tuning(self):
        """Use a saved tuning made for this export, MXNet/ONNX Runtime and machine: a file that
        is unreadable or made for something else is ignored with a warning naming it."""
        if not os.path.isfile(self.tuning_file):
            return
        try:
            with open(self.tuning_file) as f:
                record = json.load(f)
        except (OSError, ValueError) as err:
            return self._ignore(f"not a JSON file ({err})")
        if not isinstance(record, dict):
            return self._ignore(f"expected a JSON object; got {type(record).__name__}")
        if record.get("symbol_sha1") != self.meta["symbol_sha1"]:
            return self._ignore("it was made for another graph")
        if record.get("machine") != _cpu_name():
            return self._ignore(f"it was made on another machine ({record.get('machine')!r}; "
                                f"here {_cpu_name()!r})")
        runs = record.get("runtimes", {})
        try:
            choice = {int(b): r for b, r in runs.get("choice", {}).items()}
            if not all(r in ("mxnet", "onnxruntime") and b >= 1 for b, r in choice.items()):
                raise InceptionZooError("runtimes.choice must map batch sizes to 'mxnet' or "
                                 f"'onnxruntime'; got {runs.get('choice')!r}")
            try:
                seconds = {int(b): {str(r): float(s) for r, s in t.items()}
                           for b, t in runs.get("seconds", {}).items()}
            except (AttributeError, TypeError, ValueError):
                raise InceptionZooError("runtimes.seconds must map batch sizes to {runtime: seconds}; "
                                 f"got {runs.get('seconds')!r}") from None
            try:
                threads = {int(b): int(t) for b, t in runs.get("threads", {}).items()}
            except (AttributeError, TypeError, ValueError):
                threads = None
            if threads is None or not all(
                    t in runtimes.OrtRunner.CANDIDATES and b >= 1 for b, t in threads.items()):
                raise InceptionZooError(
                    f"runtimes.threads must map batch sizes to one of "
                    f"{list(runtimes.OrtRunner.CANDIDATES)}; got {runs.get('threads')!r}")
            if not isinstance(runs.get("refused"), (str, type(None))):
                raise InceptionZooError(f"runtimes.refused must be text or null; got "
                                 f"{runs.get('refused')!r}")
            if self.net is not None:
                if not isinstance(record.get("choice"), dict):
                    raise InceptionZooError(f"'choice' must be an object; got {record.get('choice')!r}")
                loaded = self.net.load_tuning(record)
            else:
                loaded = {}
        except (AttributeError, TypeError, ValueError) as err:
            return self._ignore(str(err))
        self.tuning_loaded = loaded
        if self.runtime != "auto" or self.net is None or self.ort is None:
            return
        if runs.get("onnx_sha1") != self.onnx_sha1 or runs.get("onnxruntime") != self.ort.version:
            made = ("without ONNX Runtime" if runs.get("onnxruntime") is None else
                    "for another ONNX file" if runs.get("onnx_sha1") != self.onnx_sha1 else
                    f"with ONNX Runtime {runs.get('onnxruntime')}")
            return self._ignore(f"its runtime choice was made {made}; here ONNX Runtime "
                                f"{self.ort.version} runs this export's ONNX file")
        self.choice.update(choice)
        self.seconds.update(seconds)
        if runs.get("refused"):
            self.refused, self.ort = runs["refused"], None
            return
        self.ort.set_threads(threads)  # after the refusal: no session made only to be dropped
        if "onnxruntime" in choice.values():  # checked here too, whatever the file says
            self._check_parity(1)


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
    graph : ServingGraph
        The export's graph (:func:`load_graph`); ``graph.runtime_for(batch)`` names the runtime
        a batch size runs in.
    net : InferenceGraph or None
        Its MXNet graphs (None with ``runtime='onnxruntime'``).
    tuning_file : str
        Where :meth:`save_tuning` writes and the constructor reads the graph choice.
    tuning_loaded : dict
        Batch size -> graph variant loaded from ``tuning_file`` (empty when none was used).
    """

    def __init__(self, model_dir, name=None, ctx=None, warmup=(), runtime="auto"):
        self.ctx = ctx or mx.cpu()
        self.graph = load_graph(model_dir, runtime=runtime, warmup=(), name=name, ctx=self.ctx)
        self.meta = meta = self.graph.meta
        shape = meta["input_shape"]
        self.net = self.graph.net  # the MXNet InferenceGraph (None with runtime='onnxruntime')
        self.tuning_file = self.graph.tuning_file
        self.tuning_loaded = self.graph.tuning_loaded
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
            raise PredictionError(f"{self.graph.meta_file}: preprocess: {err}") from None
        if not self.baked_in:
            self.transform = InputTransform((self.channels,) + self.hw, mean, std)

        if warmup:
            self.warmup(warmup)

    def warmup(self, batch_sizes):
        """Pick the runtime and graph for each batch size (timing them unless a saved tuning
        covers it) and build its oneDNN primitives, at load time instead of on a live request.

        Parameters
        ----------
        batch_sizes : iterable of int
            The batch sizes the server will run.

        Returns
        -------
        dict
            Batch size -> ``'onnxruntime'`` or ``'mxnet <graph variant>'``.
        """
        return self.graph.warmup(batch_sizes)

    def save_tuning(self):
        """Write the graph choice made so far beside the export (``NAME-tuning.json``), so that
        the next process loads it instead of timing.

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
            logits = self.graph(x)
        except mx.base.MXNetError as err:
            raise PredictionError(f"the export's graph failed on a batch of shape "
                                  f"{x.shape}: {mxnet_message(err)}") from None
        except Exception as err:  # ONNX Runtime raises its own (pybind11) exception types
            raise PredictionError(f"the export's graph ({self.graph.runtime_for(len(x))}) "
                                  f"failed on a batch of shape {x.shape}: "
                                  f"{type(err).__name__}: {err}") from None
        if logits.ndim != 2 or logits.shape[1] != len(self.labels):
            raise PredictionError(f"the export's graph gave logits of shape {logits.shape}; its "
                                  f"metadata names {len(self.labels)} classes")
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

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
