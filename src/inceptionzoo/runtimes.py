"""Pick, per batch size, the faster of two runtimes that compute the same graph.

Standalone on purpose (numpy, and onnxruntime when installed): part of the serving core
(:mod:`inceptionzoo.serving_core`) that the ``.mar`` archive carries for its handler.
"""
import math
import statistics
import time

import numpy as np

from . import _openmp  # the package's one core count (the archive carries it beside this)
from ._errors import install_hint
from .steady_race import SteadyRace  # the serving graph's re-check, with its own module

__all__ = ["RUNTIMES", "ORT_EXTRA", "PARITY", "import_onnxruntime", "OrtRunner", "parity", "time_alternating",
           "nearest", "sample_input", "SteadyRace"]

#: What :func:`inceptionzoo.serving.load_graph` takes as ``runtime``.
RUNTIMES = ("auto", "mxnet", "onnxruntime")

#: How to get ONNX Runtime beside MXNet.
ORT_EXTRA = install_hint("onnxruntime")

#: Two runtimes compute the same function when their logits differ by at most this fraction of
#: the largest |logit| (float32 rounding of the same graph stays below 1e-5 on the zoo's
#: networks: docs/deploy.md).
PARITY = 1e-4


def import_onnxruntime():
    """The ``onnxruntime`` module, or None when it is not installed.

    Returns
    -------
    module or None
    """
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


class OrtRunner:
    """An ONNX file in ONNX Runtime on CPU (every graph optimisation): numpy batch in, first
    output (logits) out, each batch size in the thread setting found faster for it.

    ONNX Runtime's default is one intra-op thread per core, and a pool of that default size
    pins its threads to cores (seen here: its worker thread on CPU 1 only, beside MXNet's
    unpinned threads). Sessions here name the count (the package's core count,
    :func:`inceptionzoo._openmp.physical_cores`), which leaves the threads to the scheduler.
    On a small network at batch 1 the
    hand-over between threads can cost more than it saves (docs/deploy.md), so :meth:`tune`
    times a single-threaded session against the default one per batch size and keeps the
    faster; the other session is then dropped unless some batch size uses it.

    Safe to call from several threads while :meth:`tune` or :meth:`set_threads` runs: a
    thread setting is published only with its session.

    Parameters
    ----------
    path : str or bytes
        The ONNX file, or its bytes.
    threads : int, optional
        ``intra_op_num_threads`` of the default session (default: one per physical core).

    Attributes
    ----------
    threads : dict
        Batch size -> intra-op threads of the session that runs it (``0``: ONNX Runtime's
        default), for the batch sizes tuned or set; other sizes take the nearest, else 0.
    """

    #: The thread settings :meth:`tune` compares (``0``: ONNX Runtime's default).
    CANDIDATES = (0, 1)

    #: A setting this many times slower on its second (warm) call is out without a race:
    #: a race of big batches costs seconds.
    CLEAR_WIN = 1.5

    def __init__(self, path, threads=None):
        self.ort = import_onnxruntime()
        if self.ort is None:
            raise ImportError(f"onnxruntime is not installed: {ORT_EXTRA}")
        self.path, self.version = path, self.ort.__version__  # path: a file name or bytes
        self.sessions = {0: self._session(threads or 0)}
        self.session = self.sessions[0]
        self.input_name = self.session.get_inputs()[0].name
        self.threads = {}
        self._by_batch = {}

    def _session(self, threads):
        opts = self.ort.SessionOptions()
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # always a count: ONNX Runtime pins the threads of a pool it sizes itself
        opts.intra_op_num_threads = int(threads) or _openmp.physical_cores()
        # its pool stops spinning when a run returns: a serving process runs MXNet or another
        # session next, whose threads the spinning ones would slow (docs/benchmarks.md)
        opts.add_session_config_entry("session.force_spinning_stop", "1")
        return self.ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])

    def set_threads(self, threads):
        """Use the given thread setting per batch size (a saved tuning).

        Parameters
        ----------
        threads : dict
            Batch size -> one of :attr:`CANDIDATES`.
        """
        threads = dict(threads)
        sessions = dict(self.sessions)
        for t in set(threads.values()) - set(sessions):
            sessions[t] = self._session(t)
        self._publish(sessions, threads)

    def open_all(self):
        """Open a session for every thread setting (on two cores or more), so that a batch
        size can move to another one while serving without opening it then
        (:class:`SteadyRace`).

        Returns
        -------
        list of int
            The thread settings that have a session.
        """
        if _openmp.physical_cores() >= 2:
            missing = [t for t in self.CANDIDATES if t not in self.sessions]
            if missing:
                sessions = dict(self.sessions)
                sessions.update({t: self._session(t) for t in missing})
                self._publish(sessions, self.threads)
        return sorted(self.sessions)

    def run_with(self, threads, x):
        """Logits of ``x`` from the session of one thread setting (which must be open)."""
        return self.sessions[threads].run(None, {self.input_name: x})[0]

    def use(self, batch, threads):
        """Run batches of this size in the session of ``threads`` from now on."""
        chosen = dict(self.threads)
        chosen[batch] = threads
        self._publish(self.sessions, chosen)

    def _publish(self, sessions, threads):
        # sessions first: a reader that sees a thread setting finds its session
        self.sessions = sessions
        self.threads = threads
        self._by_batch = {}

    def tune(self, batches, budget=1.0, keep_all=False):
        """Time every thread setting on each batch (alternating, medians; a setting
        :attr:`CLEAR_WIN` times slower on its warm call is out at once) and keep the faster per
        batch size; on a single core there is nothing to compare.

        Parameters
        ----------
        batches : list of numpy.ndarray
            One batch per batch size to tune.
        budget : float
            Rough seconds of timing per batch size.
        keep_all : bool
            Keep every setting's session open (as :meth:`open_all`), not only those some
            batch size uses: for a caller that re-checks the choice while serving.

        Returns
        -------
        dict
            Batch size -> {``'threads=N'``: median seconds per call} (empty on one core).
        """
        threads = dict(self.threads)
        if _openmp.physical_cores() < 2 or not batches:
            threads.update({len(x): 0 for x in batches})
            self._publish(self.sessions, threads)
            return {}
        candidates = {t: self.sessions.get(t) or self._session(t) for t in self.CANDIDATES}
        seconds = {}
        for x in batches:
            runners = {f"threads={t}": self._runner(s) for t, s in candidates.items()}
            warm = {}
            for name, run in runners.items():
                run(x)  # warm-up: memory patterns, thread pools
                t0 = time.perf_counter()
                run(x)
                warm[name] = time.perf_counter() - t0
            if max(warm.values()) >= self.CLEAR_WIN * min(warm.values()):
                times = warm  # a clear loser (one thread on a big batch): no race needed
            else:
                times = time_alternating(runners, x, budget=budget)
            seconds[len(x)] = times
            threads[len(x)] = int(min(times, key=times.get).split("=")[1])
        self._publish({t: s for t, s in candidates.items()
                       if keep_all or t == 0 or t in threads.values()}, threads)
        return seconds

    def _runner(self, session):
        name = self.input_name
        return lambda x: session.run(None, {name: x})[0]

    def session_for(self, batch):
        """The session that runs a batch of this size.

        Parameters
        ----------
        batch : int

        Returns
        -------
        onnxruntime.InferenceSession
        """
        by_batch = self._by_batch
        session = by_batch.get(batch)
        if session is None:
            sessions = self.sessions
            session = sessions.get(nearest(self.threads, batch, 0), sessions[0])
            by_batch[batch] = session
        return session

    def __call__(self, x):
        return self.session_for(len(x)).run(None, {self.input_name: x})[0]


def parity(ref, got, tol=PARITY):
    """Whether ``got`` is ``ref`` up to float32 rounding.

    Parameters
    ----------
    ref, got : numpy.ndarray
        Logits of the same inputs from two runtimes.
    tol : float
        Largest allowed max |difference|, as a fraction of the largest |ref|.

    Returns
    -------
    tuple of (bool, float, float)
        ``(same, max |difference|, scale)``; ``same`` is False for different shapes or
        non-finite values.
    """
    ref, got = np.asarray(ref, dtype=np.float64), np.asarray(got, dtype=np.float64)
    if ref.shape != got.shape:
        return False, float("inf"), float(np.abs(ref).max()) if ref.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    diff = float(np.abs(ref - got).max()) if ref.size else 0.0
    same = bool(np.isfinite(ref).all() and np.isfinite(got).all()) and \
        diff <= tol * max(scale, 1e-12)
    return same, diff, scale


def sample_input(batch, sample_shape, dtype, seed=0):
    """The random batch runtimes are checked and timed on (fixed seed): uniform 0..255 for a
    uint8 input, 0..1 otherwise; the benchmarks' random batches too.

    Parameters
    ----------
    batch : int
        Rows.
    sample_shape : sequence of int
        The shape of one input, without the batch axis.
    dtype : str or numpy.dtype
        The input's type (``'uint8'``, ``'float32'``, ``numpy.uint8`` ...).
    seed : int
        The seed of ``numpy.random.RandomState``.

    Returns
    -------
    numpy.ndarray
        Shape ``(batch, *sample_shape)``, of ``dtype``.
    """
    uint8 = np.dtype(dtype) == np.uint8
    x = np.random.RandomState(seed).uniform(0, 255 if uint8 else 1,
                                            (batch,) + tuple(sample_shape))
    return x.astype(dtype)


def time_alternating(runners, x, budget=2.0, min_rounds=3, max_rounds=9, settle=1):
    """Median seconds per call of each runner on ``x``, timed in alternating rounds.

    Each round runs every runner in turn (the order reversed every other round, so that neither
    always runs first): ``settle`` untimed calls, then one timed call. The first call after
    another runtime ran pays for that runtime: its threads still spin for a while after their
    call (OpenMP's and ONNX Runtime's alike) and hold cores, and its data filled the caches; a
    server runs one of them per batch size, so that cost is not the runtime's. Rounds continue
    until ``budget`` seconds are spent, at least ``min_rounds`` and at most ``max_rounds``.
    Warm the runners up before.

    Parameters
    ----------
    runners : dict
        Name -> callable taking ``x``.
    x : numpy.ndarray
        The batch.
    budget : float
        Rough seconds to spend.
    min_rounds, max_rounds : int
        Bounds on the number of rounds.
    settle : int
        Untimed calls of a runner before its timed call in each round.

    Returns
    -------
    dict
        Name -> median seconds per call.
    """
    names = list(runners)
    calls = {n: [] for n in names}
    start = time.perf_counter()
    for r in range(max_rounds):
        if r >= min_rounds and time.perf_counter() - start > budget:
            break
        for n in (names if r % 2 == 0 else names[::-1]):
            for _ in range(settle):
                runners[n](x)
            t0 = time.perf_counter()
            runners[n](x)
            calls[n].append(time.perf_counter() - t0)
    return {n: statistics.median(c) for n, c in calls.items()}


def nearest(choice, batch, default):
    """The entry of ``choice`` (batch size -> value) for the batch size nearest ``batch`` (by
    ratio; the smaller on a tie), or ``default`` when ``choice`` is empty.

    Parameters
    ----------
    choice : dict
        Batch size -> value.
    batch : int
        The batch size asked for.
    default
        Returned for an empty ``choice``.

    Returns
    -------
    object
    """
    batch = max(1, batch)
    items = tuple(choice.items())  # one snapshot: other threads may add sizes meanwhile
    if not items:
        return default
    return min(items, key=lambda kv: (abs(math.log(kv[0] / batch)), kv[0]))[1]
