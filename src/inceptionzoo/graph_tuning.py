"""The recommended inference path: static graphs, rewritten and specialised by batch size.

:class:`TunedGraph` runs every candidate of :func:`~inceptionzoo.graph_rewrites.graph_variants`
as a :class:`CachedGraph` (on MXNet's oneDNN build after ``optimize_for('MKLDNN')``, which fuses
each convolution with its ReLU), picks the fastest per batch size up to ``tune_max_batch``
(timing them once), and shares one set of parameters between them (``merge=True`` adds graphs
with merged weights computed once). A serving process tunes at load time with
:meth:`TunedGraph.warmup` and can save the choice (:meth:`~TunedGraph.tuning`) so that
another process reuses it (:meth:`~TunedGraph.load_tuning`) without timing anything.
Why the variants exist, with profiles and measurements: docs/benchmarks.md.
"""
import collections
import threading
import time

import mxnet as mx

from ._checks import check_counts
from .branch_merges import fold_scaled_convolutions_symbol, merge_branches_symbol, merged_params
from .errors import InceptionZooError
from .graph_rewrites import graph_variants
from .runtimes import time_alternating

__all__ = ["onednn_fusion_available", "CachedGraph", "TunedGraph"]


def onednn_fusion_available():
    """Whether this MXNet build has the oneDNN (``MKLDNN``) backend for ``optimize_for``.

    Returns
    -------
    bool
    """
    return mx.runtime.Features().is_enabled("MKLDNN")


class CachedGraph:
    """One graph as a static ``CachedOp`` (what ``hybridize(static_alloc=True,
    static_shape=True)`` builds), called without Gluon's per-call parameter lookup.

    Parameters
    ----------
    sym : mxnet.Symbol
        The graph.
    params : mapping
        Graph input name -> ``gluon.Parameter`` or ``NDArray``, for every input but
        ``input_name`` (a ``ParameterDict`` from ``collect_params()`` or the arrays of
        ``mx.nd.load`` without their ``arg:``/``aux:`` prefixes).
    input_name : str
        The data input.
    flags : sequence of (str, value)
        More ``CachedOp`` flags (e.g. ``("forward_bulk_size", 0)``), after the static ones.

    Notes
    -----
    The arrays are looked up once per context, at the first call on it; in-place changes to them
    (``load_parameters``, ``set_data``, training steps) are seen, but after
    ``initialize(force_reinit=True)`` or ``reset_ctx`` build a new graph.

    Each input shape gets its own ``CachedOp`` (the :attr:`MAX_SHAPES` most recently used are
    kept): one static ``CachedOp`` for all shapes re-plans its memory and re-creates its
    operators' state at every change of shape, which a server taking requests of mixed batch
    sizes pays call after call.
    """

    #: input shapes whose ``CachedOp`` (with its static memory) is kept
    MAX_SHAPES = 4

    def __init__(self, sym, params, input_name="data", flags=()):
        self.symbol = sym
        names = sym.list_inputs()
        if input_name not in names:
            raise InceptionZooError(
                f"the graph has no input {input_name!r}; its inputs are {names}")
        by_name = {getattr(p, "name", key): p for key, p in params.items()}
        missing = [n for n in names if n != input_name and n not in by_name]
        if missing:
            raise InceptionZooError(f"no parameter for graph input(s) {missing}")
        self._pos = names.index(input_name)
        self._params = [by_name[n] for n in names if n != input_name]
        rest = [i for i in range(len(names)) if i != self._pos]
        self._flags = [("static_alloc", True), ("static_shape", True),
                       ("data_indices", [self._pos]), ("param_indices", rest)] + list(flags)
        self._ops = collections.OrderedDict()  # (context, shape, dtype) -> CachedOp, oldest first
        self._ops_lock = threading.Lock()
        self._args = {}  # context -> (arrays before the input, arrays after it)

    def _op(self, key):
        with self._ops_lock:
            op = self._ops.get(key)
            if op is None:
                op = self._ops[key] = mx.nd.CachedOp(self.symbol, flags=self._flags)
                while len(self._ops) > self.MAX_SHAPES:
                    self._ops.popitem(last=False)
            else:
                self._ops.move_to_end(key)
            return op

    def __call__(self, x, ctx=None):
        ctx = x.context if ctx is None else ctx
        args = self._args.get(ctx)
        if args is None:
            arrays = [p.data(ctx) if isinstance(p, mx.gluon.Parameter) else
                      p.as_in_context(ctx) for p in self._params]
            args = self._args[ctx] = (arrays[:self._pos], arrays[self._pos:])
        return self._op((ctx, x.shape, x.dtype))(*args[0], x, *args[1])


class TunedGraph:
    """Callable that runs a network through the recommended static graphs.

    Parameters
    ----------
    sym : mxnet.Symbol
        The network's graph (one input).
    params : mapping
        Its parameters (see :class:`CachedGraph`), shared by all graphs.
    input_name : str
        Name of the graph input.
    tune_max_batch : int
        Largest batch size for which the variants are tried; larger batches run the default
        variant (the first of :func:`~inceptionzoo.graph_rewrites.graph_variants`:
        ``merge+pool-first``, ``pool-first``, or ``unmodified``).
    check : callable, optional
        Called with each input shape before running (e.g. ``net.check_input_shape``).
    max_single_edges : int
        Graphs with at most this many concat-to-pool edges also get one variant per edge.
    fuse : bool, optional
        Fuse convolutions with their activations (``optimize_for('MKLDNN')``) in the CPU
        graphs. Default: when MXNet has the oneDNN backend.
    tune_budget : float
        Rough seconds of tuning per new batch size: variants are warmed up in order until a
        third of it is spent, then timed in three interleaved rounds of three calls (median).
    sample_shape : tuple of int, optional
        Shape of one input without the batch axis, for :meth:`warmup`.
    dtype : str
        Input dtype, for :meth:`warmup`.
    merge : bool
        Also build the rewrites on the graph with narrow Inception branches merged
        (:func:`~inceptionzoo.branch_merges.merge_branches_symbol`), when it has any: their
        names start with ``merge+``, and the first of them is the default; the scaled residuals
        of Inception-ResNet are folded in them too
        (:func:`~inceptionzoo.branch_merges.fold_scaled_convolutions_symbol`). Like inductor's
        freezing in PyTorch, this treats the merged convolutions' weights as constants: they are
        computed here, so in-place changes to those parameters afterwards are not seen by the
        ``merge+`` graphs. For weights that no longer change (the
        :class:`~inceptionzoo.serving.Predictor` sets it); off by default, so that a graph of a
        network still being trained always computes with its current weights.

    Attributes
    ----------
    symbols : dict
        Variant name -> the graph it runs on CPU (after fusion, if any).
    graphs : dict
        Variant name -> :class:`CachedGraph` of that graph.
    default : str
        The variant for batches above ``tune_max_batch``.
    merged : list of str
        Names of the parameters the ``merge+`` graphs computed (empty when none).
    choice : dict
        Batch size -> the variant name picked for CPU inputs of that size.
    tuned : list of int
        Batch sizes for which this object timed the variants (not those loaded or defaulted).
    """

    #: fraction by which a variant must beat the default (median of 9 calls) to be picked
    TUNE_MARGIN = 0.05

    def __init__(self, sym, params, input_name="data", tune_max_batch=16, check=None,
                 max_single_edges=4, fuse=None, tune_budget=2.0, sample_shape=None,
                 dtype="float32", merge=False):
        self.fuse = onednn_fusion_available() if fuse is None else bool(fuse)
        self._sym, self._params, self._input = sym, params, input_name
        variants = graph_variants(sym, max_single_edges)
        merged, recipes = merge_branches_symbol(sym) if merge else (sym, {})
        if merge:  # Inception-ResNet's scaled residuals -> conv + sum + ReLU in oneDNN
            merged, folded = fold_scaled_convolutions_symbol(merged)
            recipes = dict(recipes, **folded)
        if recipes:
            params = dict(params, **merged_params(recipes, params))
            variants = dict({"merge+" + key: s for key, s in graph_variants(
                merged, max_single_edges).items()}, **variants)
        self.merged = sorted(recipes)
        self._graph_params = params  # what the graphs read: the given ones and the merged ones
        self.graphs = {key: CachedGraph(s.optimize_for("MKLDNN") if self.fuse else s, params,
                                        input_name)
                       for key, s in variants.items()}
        self.default = next(iter(self.graphs))
        self._device_graph = None  # unfused static graph for inputs on other devices
        self.tune_max_batch = tune_max_batch
        self.tune_budget = tune_budget
        self.check = check
        self.sample_shape = None if sample_shape is None else tuple(sample_shape)
        self.dtype = dtype
        self.choice = {}
        self.tuned = []

    @property
    def symbols(self):
        """Variant name -> the graph it runs on CPU (after fusion, if any)."""
        return {key: graph.symbol for key, graph in self.graphs.items()}

    @classmethod
    def from_block(cls, net, **kwargs):
        """For an initialised HybridBlock (a zoo network or any other).

        Parameters
        ----------
        net : mxnet.gluon.HybridBlock
        **kwargs
            Passed on to :class:`TunedGraph`; ``check`` and ``sample_shape`` default to the
            zoo network's ``check_input_shape`` and ``info.input_shape``.

        Returns
        -------
        TunedGraph
        """
        sym = net(mx.sym.var("data"))
        kwargs.setdefault("check", getattr(net, "check_input_shape", None))
        info = getattr(net, "info", None)
        if info is not None:
            kwargs.setdefault("sample_shape", info.input_shape)
        return cls(sym, net.collect_params(), **kwargs)

    def _pick(self, x):
        if len(self.graphs) == 1 or x.shape[0] > self.tune_max_batch:
            return self.default
        self.tuned.append(x.shape[0])
        tried, start = [], time.perf_counter()
        for name, graph in self.graphs.items():
            if tried and time.perf_counter() - start > self.tune_budget / 3:
                break
            for _ in range(3):  # graph build, oneDNN primitive creation
                graph(x).wait_to_read()
            tried.append(name)
        if len(tried) == 1:  # the budget went on warming up the default
            return self.default
        # the package's one timing loop: interleaved rounds, so a slow spell hits every variant
        times = time_alternating(
            {name: (lambda v, g=self.graphs[name]: g(v).wait_to_read()) for name in tried}, x,
            budget=float("inf"), min_rounds=9, max_rounds=9, settle=0)
        best = min(times, key=times.get)
        # a variant must clearly beat the default: timing noise alone picks at random
        return best if times[best] < (1 - self.TUNE_MARGIN) * times[self.default] \
            else self.default

    def __call__(self, x):
        shape, ctx = x.shape, x.context
        if self.check is not None:
            self.check(shape)
        if ctx.device_type != "cpu":
            if self._device_graph is None:
                self._device_graph = CachedGraph(self._sym, self._params, self._input)
            return self._device_graph(x, ctx)
        key = self.choice.get(shape[0])
        if key is None:
            key = self.choice[shape[0]] = self._pick(x)
        return self.graphs[key](x, ctx)

    def warmup(self, batch_sizes, calls=3):
        """Pick the graph for each batch size now (timing the variants unless a choice is
        loaded) and build its oneDNN primitives, so that no live request pays for either.

        Parameters
        ----------
        batch_sizes : iterable of int
            The batch sizes that will be served.
        calls : int
            Untimed calls per batch size after the pick (primitive creation, memory pools).

        Returns
        -------
        dict
            Batch size -> the variant it runs (:attr:`choice` for those sizes).
        """
        if self.sample_shape is None:
            raise InceptionZooError("warmup needs the input shape: build the TunedGraph with "
                                    "sample_shape=(C, H, W) (from_block does it for zoo networks)")
        sizes = check_counts("batch sizes", batch_sizes)
        for b in sizes:
            x = mx.nd.zeros((b,) + self.sample_shape, dtype=self.dtype)
            for _ in range(max(1, calls)):
                self(x).wait_to_read()
        return {b: self.choice[b] for b in sizes}

    def tuning(self):
        """The choice, as a JSON-ready record for :meth:`load_tuning` in another process.

        Returns
        -------
        dict
            ``{"choice": {"<batch>": variant}, "fuse": bool, "variants": [...], "mxnet": ...}``.
        """
        return {"choice": {str(b): v for b, v in sorted(self.choice.items())},
                "fuse": self.fuse, "variants": list(self.graphs), "mxnet": mx.__version__}

    def load_tuning(self, record):
        """Use a saved choice (from :meth:`tuning`) instead of timing those batch sizes.

        Parameters
        ----------
        record : dict
            As returned by :meth:`tuning`.

        Returns
        -------
        dict
            Batch size -> variant, as loaded.

        Raises
        ------
        ValueError
            When the record was made for other graphs (another MXNet, fusion setting or
            variant list) or names a variant this graph does not have.
        """
        mine = {"fuse": self.fuse, "variants": list(self.graphs), "mxnet": mx.__version__}
        differ = {k: (record.get(k), v) for k, v in mine.items() if record.get(k) != v}
        if differ:
            raise InceptionZooError("the tuning record was made for other graphs: " + "; ".join(
                f"{k} {got!r} (here {want!r})" for k, (got, want) in differ.items()))
        choice = {int(b): v for b, v in record.get("choice", {}).items()}
        unknown = sorted(set(choice.values()) - set(self.graphs))
        if unknown:
            raise InceptionZooError(f"the tuning record names unknown variants {unknown}; "
                                    f"this graph has {list(self.graphs)}")
        self.choice.update(choice)
        return choice
