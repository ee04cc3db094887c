"""An export served in the fastest runtime: :func:`load_graph` builds an :class:`ExportRunner`
(MXNet's static graphs per batch size, :class:`~inceptionzoo.graph_tuning.TunedGraph`; ONNX
Runtime where it is faster and computes the same logits; a saved tuning reused), with one input
check and one error family whichever runtime serves. Part of the serving core (numpy, PIL,
MXNet and, when installed, onnxruntime only; the ``.mar`` carries it). (Over 500 lines: one
class, the runner, whose runtime race, parity check and saved tuning share its state; each
method is short.)
"""
import math
import os
import threading
import time
import warnings

import mxnet as mx
import numpy as np

from . import runtimes
from .runtimes import sample_input
from ._checks import check_counts
from ._errors import mxnet_message
from ._io import read_json, write_json
from .ndarray_file import load_ndarray_bytes
from .errors import InceptionZooError, PredictionError
from .export_files import check_outputs, check_params, read_export
from .export_meta import META_SUFFIX, TUNING_SUFFIX, export_name, onnx_parity_tolerance
from .graph_tuning import TunedGraph

__all__ = ["load_graph", "ExportRunner", "machine_name"]

_FLOAT32 = np.dtype(np.float32)


def machine_name():
    """The CPU's model name (``/proc/cpuinfo``; empty where there is none): a saved tuning is
    reused on the machine it was made on only.

    Returns
    -------
    str
    """
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
    shape = meta["batch_shape"]
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
            missing = f" ({files.onnx_missing!r} is missing)" if files.onnx_missing else ""
            raise PredictionError(f"{files.folder!r} has no ONNX file of this export{missing}: "
                                  "export with onnx=True (inceptionzoo export --onnx)")
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
    before dispatch (an array of the export's ``batch_shape`` without the batch axis; a
    ``uint8`` export takes uint8 only, a ``float32`` export any real numbers, cast, finite
    only), every failure is a :class:`PredictionError`, and an empty batch gives
    ``(0, classes)``. Threads may call it and :meth:`warmup` at the same time.

    The choice made at load (or loaded from a saved tuning) for a warmed-up batch size is
    re-checked while serving (:class:`inceptionzoo.runtimes.SteadyRace`): once per
    :attr:`RECHECK_SECONDS` of serving that size (less often while the probes lose), at least two
    calls go to another way of running it (the other runtime under ``'auto'``, ONNX Runtime's other
    thread setting), and when its
    times beat the chosen one's recent calls by 5%, it serves that size from then on
    (:attr:`choice` and the thread setting change; :meth:`save_tuning` writes them).

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
        Batch size -> ``'mxnet'`` or ``'onnxruntime'``, for the warmed-up (or loaded) sizes
        (re-checked while serving). Replaced by a new dict on every change, never changed
        in place (the route of each size is remembered until it is replaced); to set a
        choice by hand, assign a new dict.
    seconds : dict
        Batch size -> {runtime: median seconds per call}, for the sizes timed here; with
        ONNX Runtime also ``'threads=0'`` / ``'threads=1'``, its default and single-threaded
        sessions (:meth:`inceptionzoo.runtimes.OrtRunner.tune`).
    refused : str or None
        Why ONNX Runtime was refused (its logits differ from MXNet's), else None.
    """

    #: seconds of alternating timing per batch size with ``'auto'``
    TIME_BUDGET = 2.0
    #: least seconds of serving a batch size between two probes of another way of running it
    #: (the other runtime, ONNX Runtime's other thread setting: :class:`runtimes.SteadyRace`)
    RECHECK_SECONDS = 0.25

    def __init__(self, meta, meta_file, net, ort, runtime, ctx, onnx_sha1=None):
        self.meta, self.meta_file, self.net, self.ort = meta, meta_file, net, ort
        self.runtime, self.ctx, self.onnx_sha1 = runtime, ctx, onnx_sha1
        self.dtype = meta["input_dtype"]
        self._np_dtype = np.dtype(self.dtype)
        self.classes = meta["classes"]
        self.sample_shape = tuple(meta["batch_shape"][1:])
        self.tuning_file = meta_file[:-len(META_SUFFIX)] + TUNING_SUFFIX
        self.choice, self.seconds, self.refused, self._checked = {}, {}, None, False
        self.tuning_loaded, self._routed = {}, {}
        self._race = runtimes.SteadyRace(every=self.RECHECK_SECONDS)
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
        run, threads = self._route(batch)
        if run == "onnxruntime":
            return run, f"threads={threads}"
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
        # the usual batch (a numpy array of the export's dtype and shape) skips to the values'
        # check: at batch 1 of a small network each microsecond of Python is most of a percent
        # (benchmarks/serving_overhead.py)
        usual = type(x) is np.ndarray and x.dtype is self._np_dtype \
            and x.shape[1:] == self.sample_shape
        if not usual:
            self._check_kind(x)
        if (x.dtype if usual else np.dtype(x.dtype)).kind == "f" and x.size:
            finite = (mx.nd.contrib.isfinite(x).min().asscalar() if isinstance(x, mx.nd.NDArray)
                      else all_finite(x))
            if not finite:
                raise PredictionError(f"the batch of shape {tuple(x.shape)} holds NaN or "
                                      "infinite values")
        return x

    def _check_kind(self, x):
        """:meth:`check_input`'s checks of the type, shape and dtype of ``x``."""
        if not isinstance(x, (np.ndarray, mx.nd.NDArray)):
            raise PredictionError(f"expected a batch as a numpy array or an mx.nd.NDArray; got "
                                  f"{type(x).__name__}")
        want = ("N",) + self.sample_shape
        if x.ndim != len(want) or tuple(x.shape[1:]) != self.sample_shape:
            raise PredictionError(f"expected a batch of shape {want} (the export's batch_shape)"
                                  f"; got {tuple(x.shape)}")
        dtype = np.dtype(x.dtype)
        if self.dtype == "uint8" and dtype != np.uint8:
            raise PredictionError(f"this export takes uint8 pixels; got an array of dtype "
                                  f"{dtype} (inceptionzoo.transforms.to_pixels converts)")
        if dtype.kind not in "iuf":
            raise PredictionError(f"expected real numbers ({self.dtype}); got an array of "
                                  f"dtype {dtype}")

    def __call__(self, x):
        """Logits of a batch.

        Parameters
        ----------
        x : numpy.ndarray or mxnet.nd.NDArray
            A batch of the export's input (``batch_shape`` without the batch axis,
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
        chosen, others = self._plan(n)
        if others:  # the choice made at load, re-checked while serving
            route, timed = self._race.route(n, chosen, others)
            t0 = time.perf_counter()
            try:
                logits = self._compute(route, x)
            finally:  # a probe's failing call still counts: the probe must end
                seconds = time.perf_counter() - t0
                if not timed:
                    self._race.untimed(n, route, seconds)
            if timed:
                now = self._race.record(n, route, seconds, chosen)
                if now != chosen:
                    self._switch(n, now)
        else:
            logits = self._compute(chosen, x)
        if logits.shape != (n, self.classes):
            raise PredictionError(f"the export's graph gave logits of shape {logits.shape}; "
                                  f"its metadata names {self.classes} classes")
        # attribute checks before numpy calls: at batch 1 of a small network each numpy call
        # on the way costs microseconds (benchmarks/serving_overhead.py)
        return logits if logits.dtype is _FLOAT32 else logits.astype(np.float32)

    def _routes(self):
        """What can run a batch: ``('mxnet', None)``, and ``('onnxruntime', N)`` per open
        session of ONNX Runtime (``N``: its thread setting)."""
        ort = self.ort
        return ([("mxnet", None)] if self.net is not None else []) + \
            ([("onnxruntime", t) for t in sorted(ort.sessions)] if ort is not None else [])

    def _route(self, batch):
        """The route (see :meth:`_routes`) that serves a batch of this size now."""
        return self._plan(batch)[0]

    def _plan(self, batch):
        """``(route, others)``: the route that serves a batch of this size now, and the other
        routes the re-check probes (none for a size without a choice of its own). Remembered
        per size for as long as :attr:`choice` and ONNX Runtime's sessions and thread settings
        stay the same objects (all are replaced, never changed in place): at batch 1 of a small
        network each microsecond of Python counts (benchmarks/serving_overhead.py)."""
        ort = self.ort
        threads, sessions = (ort.threads, ort.sessions) if ort is not None else (None, None)
        hit = self._routed.get(batch)
        if hit is not None and hit[0] is self.choice and hit[1] is threads \
                and hit[2] is sessions:
            return hit[3]
        choice = self.choice
        if self.runtime_for(batch) == "onnxruntime":
            route = "onnxruntime", runtimes.nearest(threads, batch, 0)
        else:
            route = "mxnet", None
        others = tuple(r for r in self._routes() if r != route) if batch in choice else ()
        if len(self._routed) >= 64:  # sizes come from requests: keep it bounded
            self._routed = {}
        self._routed[batch] = (choice, threads, sessions, (route, others))
        return route, others

    def _switch(self, batch, route):
        """Serve ``batch`` by ``route`` from now on (:class:`inceptionzoo.runtimes.SteadyRace`
        found it faster)."""
        run, threads = route
        if run == "onnxruntime" and self.ort is not None:
            self.ort.use(batch, threads)
        self.choice = {**self.choice, batch: run}  # replaced, not changed: see _route

    def _compute(self, route, x):
        run, threads = route
        try:
            if run == "onnxruntime":
                if type(x) is not np.ndarray or x.dtype is not self._np_dtype \
                        or not x.flags.c_contiguous:
                    if isinstance(x, mx.nd.NDArray):
                        x = x.asnumpy()
                    x = np.ascontiguousarray(x, dtype=self.dtype)
                return self.ort.run_with(threads, x)
            if not isinstance(x, mx.nd.NDArray):
                x = mx.nd.array(x, ctx=self.ctx, dtype=self.dtype)
            elif x.dtype != np.dtype(self.dtype):
                x = x.astype(self.dtype)
            return self.net(x).asnumpy()
        except mx.base.MXNetError as err:
            raise PredictionError(f"the export's graph (mxnet) failed on a batch of shape "
                                  f"{tuple(x.shape)}: {mxnet_message(err)}") from None
        except InceptionZooError:
            raise
        except Exception as err:  # ONNX Runtime raises its own (pybind11) exception types
            where = run if threads is None else f"{run}, threads={threads}"
            raise PredictionError(f"the export's graph ({where}) failed on a batch of shape "
                                  f"{tuple(x.shape)}: {type(err).__name__}: {err}") from None

    def _mxnet(self, x):
        return self.net(mx.nd.array(x, ctx=self.ctx, dtype=self.dtype)).asnumpy()

    def _sample(self, batch):
        return sample_input(batch, self.sample_shape, self.dtype)

    def _check_parity(self, batch):
        """Both runtimes on the same random batch: refuse ONNX Runtime (with a warning) when
        its logits are not MXNet's."""
        self._checked = True
        x = self._sample(batch)
        why = parity_problem(self._mxnet(x), self.ort, x, onnx_parity_tolerance(self.meta))
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
                                     budget=self.TIME_BUDGET / 2, keep_all=True).items():
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
                self.choice = {**self.choice, b: min(times, key=times.get)}
            elif b not in self.choice:
                self.choice = {**self.choice, b: self.runtimes[0]}
            run, variant = self.graph_for(b)
            out[b] = run if run == "onnxruntime" else f"mxnet {variant}"
        if self.ort is not None:  # every thread setting open: serving may move a size
            self.ort.open_all()
        return out

    def tuning(self):
        """The choices made so far, as the JSON record :meth:`save_tuning` writes.

        Returns
        -------
        dict
        """
        record = dict(self.net.tuning() if self.net is not None else {},
                      symbol_sha1=self.meta["symbol_sha1"], machine=machine_name())
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
        if record.get("machine") != machine_name():
            return self._ignore(f"it was made on another machine ({record.get('machine')!r}; "
                                f"here {machine_name()!r})")
        runs = record.get("runtimes", {})
        try:
            choice, seconds, threads = _saved_runtimes(runs)
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
        self.choice = {**self.choice, **choice}
        self.seconds.update(seconds)
        if runs.get("refused"):
            self.refused, self.ort = runs["refused"], None
            return
        self.ort.set_threads(threads)  # after the refusal: no session made only to be dropped
        if "onnxruntime" in choice.values():  # checked here too, whatever the file says
            self._check_parity(1)


def _saved_runtimes(runs):
    """``(choice, seconds, threads)`` of a saved tuning's ``runtimes`` record, checked; a record
    of the wrong shape is an ``InceptionZooError`` or ``ValueError`` naming the field."""
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
    return choice, seconds, threads


#: Arrays up to this many values are checked for NaN and infinities by their dot product with
#: themselves (one BLAS call, below the size where OpenBLAS starts threads of its own).
_DOT_CHECK = 8192


def all_finite(x):
    """Whether a float array holds no NaN and no infinity. Its sum of squares (small arrays) or
    its sum is finite only then, so a finite one answers in one call; a non-finite one (or an
    overflow of large finite values) is settled value by value.

    Parameters
    ----------
    x : numpy.ndarray
        Floating-point.

    Returns
    -------
    bool
    """
    total = np.vdot(x, x) if x.size <= _DOT_CHECK else np.add.reduce(x, axis=None)
    return math.isfinite(total) or bool(np.isfinite(x).all())


def parity_problem(ref, ort, x, tol=runtimes.PARITY):
    """Why ONNX Runtime (``ort``) does not compute MXNet's logits ``ref`` on ``x`` (up to
    ``tol`` of the largest |logit|), or None."""
    try:
        got = ort(x)
    except Exception as err:  # noqa: BLE001 -- onnxruntime's error types
        return f"it fails on a batch of shape {x.shape}: {type(err).__name__}: {err}"
    same, diff, scale = runtimes.parity(ref, got, tol)
    if same:
        return None
    return (f"max |logit difference| {diff:.3g} against MXNet, above {tol:g} x "
            f"the largest |logit| {scale:.3g}")
