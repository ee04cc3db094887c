"""The one serving core: an export's files in, a classifier of image batches out.

Both servers of an export run this module: :func:`inceptionzoo.serving.load_graph` and the
:class:`~inceptionzoo.serving.Predictor` in the library, and the ``.mar`` archive's handler
(:mod:`inceptionzoo.mms_handler`) in MXNet Model Server, which gets it inside the archive as the
package ``inceptionzoo_serving/`` (this module and the modules it imports, by relative imports
only: numpy, PIL, MXNet and, when installed, onnxruntime are all they need; no inceptionzoo).
It holds:

- the export's file layout (:func:`find_meta`, :func:`export_name`: ``NAME-meta.json``,
  ``NAME-tuning.json``) and its metadata schema (:func:`read_meta`, the one reader);
- reading one generation of an export as a whole (:func:`read_export`: every file from the
  folder the metadata resolves to, each checked against its recorded SHA-1, the parameters'
  structure checked before MXNet parses them, the graph's outputs against the classes);
- the runtime choice and the graph tuning (:func:`load_graph`, :class:`ExportRunner`: MXNet's
  static graphs per batch size, ONNX Runtime where it is faster and computes the same logits,
  a saved tuning reused), with one input check and one error family whichever runtime serves;
- the classifier around the graph (:class:`Classifier`: the input geometry, the weights'
  evaluation transform, softmax, top-k and labels);
- the batching a model server should use (:func:`recommend_batching`).
"""
import glob
import hashlib
import math
import os
import threading
import time
import warnings

import mxnet as mx
import numpy as np

from . import runtimes
from ._checks import check_count, check_counts, is_integer
from ._errors import mxnet_message
from ._io import JSON_MAX_BYTES, parse_json, read_json, write_json
from .checkpoints import load_ndarray_bytes
from .errors import InceptionZooError, PredictionError
from .imaging import ImageError
from .graph_tuning import TunedGraph
from .transforms import EvalTransform, InputTransform, normalisation

__all__ = ["META_SUFFIX", "TUNING_SUFFIX", "META_KEYS", "export_name", "find_meta", "read_meta",
           "read_export", "load_graph", "ExportRunner", "Classifier", "recommend_batching",
           "softmax", "top_k"]

#: ``NAME-meta.json``: an export's metadata; ``NAME-tuning.json``: its saved tuning.
META_SUFFIX = "-meta.json"
TUNING_SUFFIX = "-tuning.json"

#: keys of NAME-meta.json a server reads
META_KEYS = ("input_name", "input_shape", "input_dtype", "classes", "preprocess", "params_file",
             "symbol_file", "params_sha1", "symbol_sha1")

#: ``meta["outputs"]``: what the graph gives (absent: logits, one per class)
OUTPUTS = ("logits", "features")


def export_name(meta_file):
    """The export's name from its metadata file: ``DIR/NAME-meta.json`` -> ``NAME``.

    Parameters
    ----------
    meta_file : str

    Returns
    -------
    str
    """
    base = os.path.basename(os.fspath(meta_file))
    if not base.endswith(META_SUFFIX):
        raise PredictionError(f"{meta_file!r} is not an export's metadata (NAME{META_SUFFIX})")
    return base[:-len(META_SUFFIX)]


def find_meta(model_dir, name=None):
    """``NAME-meta.json`` of the export in ``model_dir`` (the one named ``name``, or the only one).

    Parameters
    ----------
    model_dir : str
    name : str, optional

    Returns
    -------
    str

    Raises
    ------
    PredictionError
        None or several found.
    """
    found = sorted(glob.glob(os.path.join(glob.escape(os.fspath(model_dir)), "*" + META_SUFFIX)))
    metas = [m for m in found if name is None or export_name(m) == name]
    if len(metas) != 1:
        raise PredictionError(
            f"{model_dir!r}: expected one export{f' named {name!r}' if name else ''}, "
            f"found {[export_name(m) for m in found] or 'none'} (an export writes "
            f"NAME{META_SUFFIX})"
            + ("; choose one with --name NAME (name= in Python)" if len(found) > 1 else ""))
    return metas[0]


def _brief(value, most=80):
    text = repr(value)
    return text if len(text) <= most else text[:most] + "..."


def _plain_name(name):
    return isinstance(name, str) and name and os.path.basename(name) == name and \
        name not in (".", "..")


def _int(value, least):
    return is_integer(value) and value >= least


def check_meta(meta, path):
    """The checks of :func:`read_meta` on a parsed ``NAME-meta.json`` (``path`` names it)."""
    if not isinstance(meta, dict):
        raise PredictionError(f"{path}: expected a JSON object; got {type(meta).__name__}")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise PredictionError(f"{path}: missing key(s) {', '.join(missing)}: not written by "
                              "inceptionzoo export, or edited; export again")
    outputs = meta.get("outputs", "logits")
    if outputs not in OUTPUTS:
        raise PredictionError(f"{path}: 'outputs' must be one of {', '.join(OUTPUTS)}; got "
                              f"{_brief(outputs)}")
    if outputs == "features":
        raise PredictionError(f"{path}: this export gives features (a feature extractor's "
                              "graph), not one logit per class: it cannot be served as a "
                              "classifier; export the network with its classifier")
    for key in ("params_file", "symbol_file") + (("onnx_file",) if "onnx_file" in meta else ()):
        if not _plain_name(meta[key]):
            raise PredictionError(f"{path}: {key!r} must be a plain file name inside the export "
                                  f"folder; got {_brief(meta[key])}")
    for key in ("input_name", "input_dtype", "params_sha1", "symbol_sha1") + (
            ("onnx_sha1",) if "onnx_file" in meta else ()):
        if not isinstance(meta.get(key), str):
            raise PredictionError(f"{path}: {key!r} must be a string; got {_brief(meta.get(key))}")
    if meta["input_dtype"] not in ("float32", "uint8"):
        raise PredictionError(f"{path}: 'input_dtype' must be float32 or uint8; got "
                              f"{_brief(meta['input_dtype'])}")
    classes, labels = meta["classes"], meta.get("labels")
    check_count(f"{path}: 'classes'", classes, error=PredictionError)
    if labels is not None and not (isinstance(labels, list) and len(labels) == classes
                                   and all(isinstance(x, str) for x in labels)):
        raise PredictionError(f"{path}: 'labels' must be a list of {classes} strings (one per "
                              f"class); got {_brief(labels)}")
    pre, shape = meta["preprocess"], meta["input_shape"]
    if not isinstance(pre, dict) or not isinstance(pre.get("baked_in"), bool):
        raise PredictionError(f"{path}: 'preprocess' must be an object with a boolean "
                              f"'baked_in'; got {_brief(pre)}")
    ranks = (3, 4) if pre["baked_in"] else (4,)
    if not (isinstance(shape, list) and len(shape) in ranks and all(_int(d, 0) for d in shape)):
        raise PredictionError(f"{path}: 'input_shape' must be a list of {' or '.join(map(str, ranks))}"
                              f" non-negative integers (batch first); got {_brief(shape)}")
    batching = meta.get("batching")
    if batching is not None and not (
            isinstance(batching, dict) and _int(batching.get("batch_size"), 1)
            and _int(batching.get("max_batch_delay_ms"), 0)):
        raise PredictionError(f"{path}: 'batching' must be {{'batch_size': integer >= 1, "
                              f"'max_batch_delay_ms': integer >= 0}}; got {_brief(batching)}")
    return meta


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
        Naming the file: not JSON, a key missing, a value of the wrong kind, or the export of
        a feature extractor (``"outputs": "features"``).
    """
    try:
        with open(path, "rb") as f:
            data = f.read(JSON_MAX_BYTES + 1)
    except OSError as err:
        raise PredictionError(f"{path}: cannot read the export's metadata ({err})") from None
    return _parse_meta(data, path)


def _parse_meta(data, path):
    what = f"{path}: cannot read the export's metadata"
    if len(data) > JSON_MAX_BYTES:
        raise PredictionError(f"{what}: larger than {JSON_MAX_BYTES} bytes")
    return check_meta(parse_json(data, what, PredictionError), path)


def input_geometry(meta):
    """``(baked_in, channels, (H, W))`` of an export's input (``meta`` read by
    :func:`read_meta`): a baked-in export takes ``(N, H, W[, C])`` uint8 images, a plain one
    ``(N, C, H, W)`` float32."""
    shape, baked = meta["input_shape"], meta["preprocess"]["baked_in"]
    if baked:
        return True, (1 if len(shape) == 3 else shape[3]), tuple(shape[1:3])
    return False, shape[1], tuple(shape[2:4])


def labels_of(meta):
    """The class labels: ``meta["labels"]``, else ``'0'``, ``'1'``, ..."""
    return meta.get("labels") or [str(i) for i in range(meta["classes"])]


# -- one generation of an export, read as a whole -----------------------------------------------

class ExportFiles:
    """An export's files as read by :func:`read_export`, all from one generation folder.

    Attributes
    ----------
    meta : dict
    meta_file : str
        ``NAME-meta.json`` as named in the export folder (the tuning file goes beside it).
    folder : str
        The export folder.
    generation : str
        The folder every file was read from (the export's generation folder, or ``folder``
        for an export of plain files such as an unpacked ``.mar``).
    symbol_json : str
    params : bytes
    onnx : bytes or None
        ``NAME.onnx`` when asked for and present.
    onnx_sha1 : str or None
    onnx_missing : str or None
        The ONNX file the metadata records, when it is missing.
    """

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def _sha1(data):
    return hashlib.sha1(data).hexdigest()


class _Changed(Exception):
    """A file of the generation vanished while it was read (the export was replaced)."""


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise _Changed(path) from None
    except OSError as err:
        raise PredictionError(f"cannot read {path!r}: {err.strerror}") from None


#: how many times :func:`read_export` reads again an export replaced while it read it
READ_ATTEMPTS = 3


def read_export(model_dir, name=None, onnx=False):
    """Read one generation of an export, every file checked against the SHA-1 recorded.

    The final names of an export are links into its generation folder, switched as a whole by
    an overwrite. The metadata is resolved once; every file is read through its final name,
    and if the export switched to another generation meanwhile (a file vanished, or the
    metadata now resolves elsewhere), all of it is read again from the new generation
    (:data:`READ_ATTEMPTS` times): the result is one whole generation, old or new.

    Parameters
    ----------
    model_dir : str
    name : str, optional
        Which export, when the folder holds several.
    onnx : bool
        Also read the export's ONNX file (``onnx`` is None when the export has none; a file
        the metadata records that is missing is None too, with ``onnx_missing`` naming it).

    Returns
    -------
    ExportFiles

    Raises
    ------
    PredictionError
        A missing, unreadable or corrupt file, or an export still being replaced after
        :data:`READ_ATTEMPTS` reads ("the export changed while it was read").
    """
    meta_file = find_meta(model_dir, name)
    for _ in range(READ_ATTEMPTS):
        real = os.path.realpath(meta_file)
        try:
            return _read_generation(meta_file, real, onnx)
        except _Changed as gone:
            if os.path.realpath(meta_file) == real and os.path.isfile(real) and \
                    os.path.isdir(os.path.dirname(str(gone))):  # not replaced: missing
                raise PredictionError(f"export file {str(gone)!r} is missing") from None
        time.sleep(0.05)
    raise PredictionError(f"{meta_file}: the export changed while it was read (replaced "
                          f"{READ_ATTEMPTS} times over, or its links dangle); load it again")


def _read_generation(meta_file, real, onnx):
    folder = os.path.dirname(meta_file)

    def switched():
        return os.path.realpath(meta_file) != real

    def checked(file_key, sha_key):
        path = os.path.realpath(os.path.join(folder, meta[file_key]))
        data = _read(path)
        got = _sha1(data)
        if got != meta[sha_key]:
            if switched():  # a file of the next generation: read that one as a whole
                raise _Changed(path)
            raise PredictionError(f"{path!r} is corrupt or not the exported one: SHA-1 {got}, "
                                  f"the export recorded {meta[sha_key]} ({meta_file})")
        return data

    meta = _parse_meta(_read(real), meta_file)
    symbol = checked("symbol_file", "symbol_sha1")
    params = checked("params_file", "params_sha1")
    onnx_data, onnx_sha1, onnx_missing = None, None, None
    if onnx and "onnx_file" in meta:
        try:
            onnx_data = checked("onnx_file", "onnx_sha1")
            onnx_sha1 = meta["onnx_sha1"]
        except _Changed as gone:
            if switched():
                raise
            onnx_missing = str(gone)
    elif onnx:  # exports before onnx_sha1: NAME.onnx, checked against MXNet (load_graph)
        path = os.path.realpath(os.path.join(folder, export_name(meta_file) + ".onnx"))
        if os.path.isfile(path):
            onnx_data = _read(path)
            onnx_sha1 = _sha1(onnx_data)
    if switched():
        raise _Changed(real)
    return ExportFiles(meta=meta, meta_file=meta_file, folder=folder,
                       generation=os.path.dirname(real),
                       symbol_json=symbol.decode("utf-8", "replace"), params=params,
                       onnx=onnx_data, onnx_sha1=onnx_sha1, onnx_missing=onnx_missing)


def check_params(sym, arrays, input_name, input_shape, where, meta_file):
    """The loaded arrays by graph input name, after the checks ``SymbolBlock.imports`` makes:
    every graph input but the data has an array of the shape the graph infers, and there are no
    others. Otherwise :class:`PredictionError` lists what is missing, extra or mis-shaped."""
    if input_name not in sym.list_inputs():
        raise PredictionError(f"the graph in {where!r} has no input {input_name!r} "
                              f"(meta.json); its inputs are {sym.list_inputs()}")
    params = {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v
              for k, v in arrays.items()}  # without the arg:/aux: prefixes export writes
    try:
        arg_shapes, _, aux_shapes = sym.infer_shape(**{input_name: tuple(input_shape)})
    except mx.base.MXNetError as err:
        raise PredictionError(f"{meta_file}: input_shape {list(input_shape)} does not fit the "
                              f"graph in {where!r} ({mxnet_message(err)})") from None
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
        raise PredictionError(f"the params file in {where!r} does not fit its graph: "
                              + "; ".join(problems))
    return params


def check_outputs(meta, meta_file, sym, params):
    """The graph gives one output per class and label of ``meta.json``."""
    shape = tuple([1] + meta["input_shape"][1:])
    known = {name: array.shape for name, array in params.items()}
    try:
        _, out, _ = sym.infer_shape(**{meta["input_name"]: shape}, **known)
    except mx.base.MXNetError as err:
        raise PredictionError(f"{meta_file}: input_shape {meta['input_shape']} does not fit "
                              f"the graph ({mxnet_message(err)})") from None
    labels = meta.get("labels") or []
    if len(out) != 1 or len(out[0]) != 2:
        raise PredictionError(f"{meta_file}: the graph gives outputs of shape "
                              f"{[tuple(o) for o in out]} for one image; a classifier gives "
                              f"one (1, classes) output")
    width = out[0][-1]
    if width != meta["classes"] or (labels and len(labels) != width):
        raise PredictionError(f"{meta_file}: the graph gives {width} outputs per image; the "
                              f"metadata says {meta['classes']} classes and "
                              f"{len(labels)} labels")


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f
                         if ln.startswith("model name")), "")
    except OSError:
        return ""


def _mxnet_graph(files, ctx):
    meta, meta_file = files.meta, files.meta_file
    arrays = load_ndarray_bytes(files.params, os.path.join(files.generation, meta["params_file"]),
                                error=PredictionError)  # structure checked first
    if not isinstance(arrays, dict):
        raise PredictionError(f"{meta['params_file']!r} holds unnamed arrays; an export's "
                              "params file names each parameter")
    try:
        sym = mx.sym.load_json(files.symbol_json)
    except mx.base.MXNetError as err:
        raise PredictionError(f"cannot load the export in {files.folder!r}: "
                              f"{mxnet_message(err)}") from None
    shape = meta["input_shape"]
    arrays = check_params(sym, arrays, meta["input_name"], (1,) + tuple(shape[1:]),
                          files.folder, meta_file)
    check_outputs(meta, meta_file, sym, arrays)
    # static graphs specialised by batch size (inceptionzoo.graph_tuning), fixed weights
    return TunedGraph(sym, {k: v.as_in_context(ctx) for k, v in arrays.items()},
                          input_name=meta["input_name"], sample_shape=shape[1:],
                          dtype=meta["input_dtype"], merge=True)


def load_graph(export_dir, runtime="auto", warmup=(1, 32), name=None, ctx=None):
    """The export's graph as a callable in the fastest runtime: a batch in, logits out.

    Parameters
    ----------
    export_dir : str
        Folder written by :func:`inceptionzoo.export.export` (or an unpacked ``.mar``).
    runtime : str
        ``'mxnet'``: MXNet's static graphs, tuned per batch size
        (:class:`~inceptionzoo.graph_tuning.TunedGraph`); ``'onnxruntime'``: the export's
        ``NAME.onnx`` in an ONNX Runtime session (needs ``export(..., onnx=True)`` and the
        ``onnxruntime`` extra; an ONNX file the export did not record a SHA-1 for is checked
        against MXNet's logits at load); ``'auto'``: both when the export has an ONNX file and
        onnxruntime is installed (else MXNet; a recorded ONNX file that is missing: MXNet, with
        a warning): at load, both must give the same logits (:data:`inceptionzoo.runtimes.PARITY`,
        else ONNX Runtime is refused with a warning), then each warmed-up batch size runs the
        faster of them (timed alternately, medians).
    warmup : iterable of int
        Batch sizes to prepare (and, with ``'auto'``, time) now. A saved tuning
        (``NAME-tuning.json``, :meth:`ExportRunner.save_tuning`) is used instead of timing.
    name : str, optional
        Which export, when the folder holds several.
    ctx : mxnet.Context, optional
        Device of the MXNet graphs (ONNX Runtime runs on CPU; on another device ``'auto'``
        is MXNet).

    Returns
    -------
    ExportRunner

    Raises
    ------
    PredictionError
        A bad export or runtime, naming what was expected.
    """
    if runtime not in runtimes.RUNTIMES:
        raise PredictionError(f"runtime must be one of {', '.join(runtimes.RUNTIMES)}; "
                              f"got {runtime!r}")
    ctx = ctx or mx.cpu()
    want_onnx = runtime == "onnxruntime" or (
        runtime == "auto" and ctx.device_type == "cpu" and runtimes.import_onnxruntime())
    files = read_export(export_dir, name, onnx=bool(want_onnx))
    meta, meta_file = files.meta, files.meta_file
    if runtime == "onnxruntime":
        if files.onnx is None:
            raise PredictionError(f"{files.folder!r} has no ONNX file of this export"
                                  f"{f' ({files.onnx_missing!r} is missing)' if files.onnx_missing else ''}"
                                  ": export with onnx=True (inceptionzoo export --onnx)")
        if runtimes.import_onnxruntime() is None:
            raise PredictionError(f"runtime 'onnxruntime' needs onnxruntime: "
                                  f"{runtimes.ORT_EXTRA}")
    elif files.onnx_missing:
        warnings.warn(f"{files.onnx_missing!r} (recorded by {meta_file}) is missing: MXNet "
                      "serves this export")
    # MXNet: what 'mxnet' and 'auto' serve, and the reference an unrecorded ONNX file is
    # checked against under 'onnxruntime'
    unrecorded = runtime == "onnxruntime" and "onnx_file" not in meta
    net = _mxnet_graph(files, ctx) if runtime != "onnxruntime" or unrecorded else None
    ort = None
    if files.onnx is not None:
        try:
            ort = runtimes.OrtRunner(files.onnx)
        except Exception as err:  # onnxruntime's own error types: a file it cannot load
            where = os.path.join(files.generation, meta.get("onnx_file", export_name(meta_file)
                                                         + ".onnx"))
            if runtime == "onnxruntime":
                raise PredictionError(f"ONNX Runtime cannot load {where!r}: {err}") from None
            warnings.warn(f"ONNX Runtime cannot load {where!r}, MXNet serves: {err}")
    graph = ExportRunner(meta, meta_file, net, ort, runtime, ctx, onnx_sha1=files.onnx_sha1)
    if unrecorded:  # no SHA-1 to check NAME.onnx against: its logits must be MXNet's
        graph._check_parity(1)
        if graph.ort is None:
            raise PredictionError(f"{graph.refused} (the export recorded no onnx_sha1 for its "
                                  "ONNX file: export again with --onnx)")
        graph.net = None
    if warmup:
        graph.warmup(warmup)
    return graph


class ExportRunner:
    """An export's graph in one or two runtimes (built by :func:`load_graph`): a batch in,
    logits out, each batch size in the runtime picked for it.

    Whichever runtime serves a batch, the graph is one function: the input is checked
    before dispatch (an array of the export's ``input_shape`` without the batch axis; a
    ``uint8`` export takes uint8 only, a ``float32`` export any real numbers, cast, finite
    only), every failure is a :class:`PredictionError`, and an empty batch gives
    ``(0, classes)``. Threads may call it and :meth:`warmup` at the same time.

    Parameters
    ----------
    meta : dict
        The export's ``NAME-meta.json``.
    meta_file : str
        Its path (the tuning file goes beside it).
    net : TunedGraph or None
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
        self.classes = meta["classes"]
        self.sample_shape = tuple(meta["input_shape"][1:])
        self.tuning_file = meta_file[:-len(META_SUFFIX)] + TUNING_SUFFIX
        self.choice, self.seconds, self.refused, self._checked = {}, {}, None, False
        self.tuning_loaded = {}
        self._lock = threading.Lock()  # one warm-up at a time; calls never wait for it
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
        have = self.runtimes
        if len(have) == 1:
            return have[0]
        return runtimes.nearest(self.choice, max(1, int(batch)), "mxnet")

    def graph_for(self, batch):
        """``(runtime, graph)`` that serves a batch of this size: ``'onnxruntime'`` with its
        thread setting (``'threads=N'``), or ``'mxnet'`` with the graph variant (None until
        that size has run or been warmed up)."""
        run = self.runtime_for(batch)
        if run == "onnxruntime":
            return run, f"threads={runtimes.nearest(self.ort.threads, batch, 0)}"
        return run, self.net.choice.get(batch)

    # -- the one function ---------------------------------------------------------------------
    def check_input(self, x):
        """``x`` checked as :meth:`__call__` takes it (see the class), as a numpy array or an
        NDArray of the export's input dtype.

        Raises
        ------
        PredictionError
            Naming what was expected and what was given.
        """
        if not isinstance(x, (np.ndarray, mx.nd.NDArray)):
            raise PredictionError(f"expected a batch as a numpy array or an mx.nd.NDArray; got "
                                  f"{type(x).__name__}")
        want = ("N",) + self.sample_shape
        if x.ndim != len(want) or tuple(x.shape[1:]) != self.sample_shape:
            raise PredictionError(f"expected a batch of shape {want} (the export's input_shape)"
                                  f"; got {tuple(x.shape)}")
        dtype = np.dtype(x.dtype)
        if self.dtype == "uint8" and dtype != np.uint8:
            raise PredictionError(f"this export takes uint8 pixels; got an array of dtype "
                                  f"{dtype} (inceptionzoo.transforms.to_pixels converts)")
        if dtype.kind not in "iuf":
            raise PredictionError(f"expected real numbers ({self.dtype}); got an array of "
                                  f"dtype {dtype}")
        if dtype.kind == "f" and x.size:
            finite = (mx.nd.contrib.isfinite(x).min().asscalar() if isinstance(x, mx.nd.NDArray)
                      else np.isfinite(x).all())
            if not finite:
                raise PredictionError(f"the batch of shape {tuple(x.shape)} holds NaN or "
                                      "infinite values")
        return x

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
            ``(N, classes)`` float32 (``(0, classes)`` for an empty batch).

        Raises
        ------
        PredictionError
            The input is not what the export takes (:meth:`check_input`), or the runtime
            failed on it.
        """
        return self.run(self.check_input(x))

    def run(self, x):
        """:meth:`__call__` on an input already checked (or made by the caller, such as the
        :class:`Classifier`'s transform, which gives only checked inputs)."""
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, self.classes), np.float32)
        run = self.runtime_for(n)
        try:
            if run == "onnxruntime":
                if isinstance(x, mx.nd.NDArray):
                    x = x.asnumpy()
                logits = self.ort(np.ascontiguousarray(x, dtype=self.dtype))
            else:
                if not isinstance(x, mx.nd.NDArray):
                    x = mx.nd.array(x, ctx=self.ctx, dtype=self.dtype)
                elif x.dtype != np.dtype(self.dtype):
                    x = x.astype(self.dtype)
                logits = self.net(x).asnumpy()
        except mx.base.MXNetError as err:
            raise PredictionError(f"the export's graph (mxnet) failed on a batch of shape "
                                  f"{tuple(x.shape)}: {mxnet_message(err)}") from None
        except InceptionZooError:
            raise
        except Exception as err:  # ONNX Runtime raises its own (pybind11) exception types
            raise PredictionError(f"the export's graph ({run}) failed on a batch of shape "
                                  f"{tuple(x.shape)}: {type(err).__name__}: {err}") from None
        if logits.shape != (n, self.classes):
            raise PredictionError(f"the export's graph gave logits of shape {logits.shape}; "
                                  f"its metadata names {self.classes} classes")
        return logits.astype(np.float32, copy=False)

    def _mxnet(self, x):
        return self.net(mx.nd.array(x, ctx=self.ctx, dtype=self.dtype)).asnumpy()

    def _sample(self, batch):
        return sample_input(batch, self.sample_shape, self.dtype)

    def _check_parity(self, batch):
        """Both runtimes on the same random batch: refuse ONNX Runtime (with a warning) when
        its logits are not MXNet's."""
        self._checked = True
        x = self._sample(batch)
        why = parity_problem(self._mxnet(x), self.ort, x)
        if why:
            self.refused = f"ONNX Runtime refused for {self.meta_file}: {why}"
            warnings.warn(self.refused)
            self.ort = None
            self.choice = {b: "mxnet" for b in self.choice}

    def warmup(self, batch_sizes):
        """Pick the runtime (and MXNet graph variant) for each batch size and prepare it now,
        unless a saved tuning covers it. Safe while other threads call the graph.

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
        sizes = check_counts("batch sizes", batch_sizes, error=PredictionError)
        with self._lock:
            return self._warmup(sizes)

    def _warmup(self, sizes):
        if self.net is not None and self.ort is not None and not self._checked and sizes:
            self._check_parity(sizes[0])
        out = {}
        ort = self.ort
        if ort is not None:  # ONNX Runtime's thread setting per size, before the race
            untuned = [b for b in sizes if b not in ort.threads]
            for b, times in ort.tune([self._sample(b) for b in untuned],
                                     budget=self.TIME_BUDGET / 2).items():
                self.seconds.setdefault(b, {}).update(times)
        for b in sizes:
            x = self._sample(b)
            if self.net is not None:
                self.net.warmup([b])  # picks (or loads) the variant, builds its primitives
            if ort is not None:
                for _ in range(3):
                    ort(x)
            if self.net is not None and ort is not None and b not in self.choice:
                times = runtimes.time_alternating({"mxnet": self._mxnet, "onnxruntime": ort}, x,
                                                  budget=self.TIME_BUDGET)
                self.seconds.setdefault(b, {}).update(times)
                self.choice[b] = min(times, key=times.get)
            elif b not in self.choice:
                self.choice[b] = self.runtimes[0]
            run, variant = self.graph_for(b)
            out[b] = run if run == "onnxruntime" else f"mxnet {variant}"
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
            record = read_json(self.tuning_file)
        except ValueError as err:
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
                raise InceptionZooError("runtimes.seconds must map batch sizes to {runtime: "
                                        f"seconds}}; got {runs.get('seconds')!r}") from None
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
                    raise InceptionZooError(f"'choice' must be an object; got "
                                            f"{record.get('choice')!r}")
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


def sample_input(batch, sample_shape, dtype):
    """The random batch runtimes are checked and timed on (fixed seed): uniform 0..255 for a
    uint8 input, 0..1 otherwise."""
    x = np.random.RandomState(0).uniform(0, 255 if dtype == "uint8" else 1,
                                         (batch,) + tuple(sample_shape))
    return x.astype(dtype)


def parity_problem(ref, ort, x):
    """Why ONNX Runtime (``ort``) does not compute MXNet's logits ``ref`` on ``x``, or None."""
    try:
        got = ort(x)
    except Exception as err:  # noqa: BLE001 -- onnxruntime's error types
        return f"it fails on a batch of shape {x.shape}: {type(err).__name__}: {err}"
    same, diff, scale = runtimes.parity(ref, got)
    if same:
        return None
    return (f"max |logit difference| {diff:.3g} against MXNet, above {runtimes.PARITY:g} x "
            f"the largest |logit| {scale:.3g}")


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
    hw : tuple of int
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
        self.baked_in, self.channels, self.hw = input_geometry(self.meta)
        pre = self.meta["preprocess"]
        try:  # exports before per-channel values wrote one number
            mean, std = normalisation(pre.get("mean", 0.0), pre.get("std", 1.0), self.channels)
            self.image_transform = (EvalTransform.from_meta(pre, self.channels, self.hw)
                                    if self.channels in (1, 3) else None)
        except ValueError as err:
            raise PredictionError(f"{graph.meta_file}: preprocess: {err}") from None
        self.transform = None if self.baked_in else \
            InputTransform((self.channels,) + self.hw, mean, std)
        self._local = threading.local()  # .buffers: batch shape -> uint8 input, refilled

    @property
    def pixel_shape(self):
        """``(H, W)`` or ``(H, W, C)``: one image as :meth:`probabilities` takes it."""
        return self.hw if self.channels == 1 else self.hw + (self.channels,)

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
        calls, start = [], time.perf_counter()
        while len(calls) < 3 or (time.perf_counter() - start < budget and len(calls) < 50):
            t0 = time.perf_counter()
            graph.run(x)
            calls.append(time.perf_counter() - t0)
        seconds[b] = float(np.median(calls)) + overhead_s
        rate[b] = b / seconds[b]
        before = [c for c in rate if c < b]
        if before and rate[b] < (1 + BATCH_GAIN) * rate[before[-1]]:
            best = before[-1]
            break
    delay = int(min(100, max(5, math.ceil(1000 * seconds[best]))))
    return {"batch_size": best, "max_batch_delay_ms": delay,
            "images_per_s": {str(b): round(r, 1) for b, r in rate.items()}}
