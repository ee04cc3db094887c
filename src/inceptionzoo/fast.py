"""The recommended inference path: static graphs, specialised by batch size.

Why: on MXNet 1.9.1's oneDNN build, a channel concatenation of 8-channel-blocked branches at
batch size 1 or 2 produces the layout ``Bacd8b`` (the channel block outermost, which for N=1 is
the same bytes as ``aBcd8b``). oneDNN's max-pooling has no JIT kernel for that layout and falls
back to its scalar reference kernel: 1.4 to 1.8 ms per pooling call on a 32x28x28 map instead
of 10 to 20 us (``python benchmarks/onednn_profile.py``). ``DNNL_VERBOSE=1`` shows it as
``pooling_v2,ref:any`` with ``src ... Bacd8b``. The concatenation itself runs oneDNN's generic
``simple:any`` kernel there (about 60 us for 25,000 floats). Larger batches get ``aBcd8b`` and
JIT kernels, which is why hybridize barely helped at batch 1 while disabling oneDNN
(``MXNET_MKLDNN_ENABLED=0``) sped batch 1 up and slowed batch 32 down.

The fix: graph variants that compute the same values with other layouts at the concat-to-pool
edges (:func:`concat_pool_edges`):

* ``plain``: a no-op ``Reshape(0, -1, 0, 0)`` between the ``Concat`` and the ``Pooling`` that
  reads it (:func:`plain_layout_symbol`), which makes MXNet hand the pool a plain ``NCHW`` array;
* ``native``: the ``Concat`` done by MXNet's own kernel on ``(N, C, H*W)`` views
  (:func:`native_concat_symbol`), which skips oneDNN's concat as well and also hands the pool a
  plain array.

Each is built for all such edges and, for up to ``max_single_edges`` edges, for one edge at a
time. At large batch sizes the extra reorders cost more than they save, and where a concat
already has a good layout a variant only adds work; so :class:`InferenceGraph` times the
unmodified graph (``blocked``) and the variants once for each new batch size up to
``tune_max_batch`` and keeps the fastest; larger batches use the unmodified graph. On MXNet's
oneDNN (CPU) build every graph is also passed through ``Symbol.optimize_for('MKLDNN')``, which
fuses each convolution with its ReLU (fewer operators per call, same values). All graphs are
hybridized with ``static_alloc=True, static_shape=True`` and share one set of parameters.
Inputs on other devices (GPU) run the unmodified, unfused static graph.
"""
import json
import time
import warnings

import mxnet as mx
import numpy as np

__all__ = ["concat_pool_edges", "plain_layout_symbol", "native_concat_symbol", "graph_variants",
           "onednn_fusion_available", "StaticGraph", "InferenceGraph", "quantize"]


def concat_pool_edges(sym):
    """Names of the ``Concat`` nodes of ``sym`` that a 2-D ``Pooling`` node (NCHW) reads, in
    graph order."""
    nodes = json.loads(sym.tojson())["nodes"]
    found = []
    for n in nodes:
        attrs = n.get("attrs", {})
        kernel = [d for d in attrs.get("kernel", "()").strip("()[] ").split(",") if d.strip()]
        two_d = len(kernel) == 2 and attrs.get("layout", "NCHW") in ("NCHW", "None")
        if n["op"] == "Pooling" and two_d and nodes[n["inputs"][0][0]]["op"] == "Concat":
            name = nodes[n["inputs"][0][0]]["name"]
            if name not in found:
                found.append(name)
    return found


def _rebuild(sym, edit):
    """Copy of ``sym`` in which ``edit(old_nodes, i, node, add)`` rebuilds node ``i``.

    ``node`` is node ``i`` with its inputs already renumbered; ``add(node)`` appends a node to
    the new graph and returns its index; ``edit`` returns the index of the new node that stands
    for node ``i`` (one output) for the nodes that read it."""
    graph = json.loads(sym.tojson())
    old, nodes, remap = graph["nodes"], [], {}

    def add(node):
        nodes.append(node)
        return len(nodes) - 1

    for i, node in enumerate(old):
        node = dict(node, inputs=[[remap[a], b, c] for a, b, c in node["inputs"]])
        remap[i] = edit(old, i, node, add)
    out = {"nodes": nodes, "arg_nodes": [k for k, n in enumerate(nodes) if n["op"] == "null"],
           "heads": [[remap[a], b, c] for a, b, c in graph["heads"]],
           "attrs": graph.get("attrs", {})}
    return mx.sym.load_json(json.dumps(out))


def plain_layout_symbol(sym, concats=None):
    """Copy of ``sym`` with ``Reshape(shape=(0, -1, 0, 0))`` (a no-op on values) inserted
    between a ``Concat`` and the ``Pooling`` nodes that read it, for the concat nodes named in
    ``concats`` (default: all of them). Returns ``(symbol, number_of_concats_wrapped)``."""
    names = set(concat_pool_edges(sym) if concats is None else concats)
    reshaped = {}  # old concat index -> new reshape index

    def edit(old, i, node, add):
        if node["op"] == "Pooling" and old[i]["inputs"][0][0] in reshaped:
            node["inputs"][0] = [reshaped[old[i]["inputs"][0][0]], 0, 0]
        new = add(node)
        if node["op"] == "Concat" and node["name"] in names:
            reshaped[i] = add({"op": "Reshape", "name": node["name"] + "_plain_layout",
                               "attrs": {"shape": "(0, -1, 0, 0)"}, "inputs": [[new, 0, 0]]})
        return new

    return _rebuild(sym, edit), len(reshaped)


def native_concat_symbol(sym, concats=None):
    """Copy of ``sym`` in which each channel ``Concat`` named in ``concats`` (default: those a
    ``Pooling`` reads) runs on ``(N, C, H*W)`` views: ``Reshape(0, 0, -3)`` of every input, the
    concat along axis 1, and ``reshape_like`` back to ``(N, C, H, W)``. oneDNN takes only 2-D and
    4-D concats, so MXNet's own kernel runs it and its readers get a plain ``NCHW`` array. The
    values are unchanged. Returns ``(symbol, number_of_concats_replaced)``."""
    names = set(concat_pool_edges(sym) if concats is None else concats)
    done = []

    def edit(old, i, node, add):
        if node["op"] != "Concat" or node["name"] not in names or \
                node.get("attrs", {}).get("dim", "1") != "1":
            return add(node)
        flat = [[add({"op": "Reshape", "name": f"{node['name']}_flat{k}",
                      "attrs": {"shape": "(0, 0, -3)"}, "inputs": [entry]}), 0, 0]
                for k, entry in enumerate(node["inputs"])]
        cat = add(dict(node, inputs=flat))
        done.append(node["name"])
        return add({"op": "reshape_like", "name": node["name"] + "_nchw",
                    "attrs": {"lhs_begin": "2", "lhs_end": "3", "rhs_begin": "2",
                              "rhs_end": "4"},
                    "inputs": [[cat, 0, 0], node["inputs"][0]]})

    return _rebuild(sym, edit), len(done)


def graph_variants(sym, max_single_edges=4):
    """The candidate graphs of :class:`InferenceGraph`, in the order they are tried:
    ``{"blocked": sym, "native": ..., "plain": ..., "native:<concat>": ..., ...}``."""
    edges = concat_pool_edges(sym)
    variants = {"blocked": sym}
    if edges:
        variants["native"] = native_concat_symbol(sym)[0]
        variants["plain"] = plain_layout_symbol(sym)[0]
    if 1 < len(edges) <= max_single_edges:
        for name in edges:
            variants[f"native:{name}"] = native_concat_symbol(sym, [name])[0]
            variants[f"plain:{name}"] = plain_layout_symbol(sym, [name])[0]
    return variants


def onednn_fusion_available():
    """True on MXNet builds with the oneDNN (``MKLDNN``) backend for ``optimize_for``."""
    return mx.runtime.Features().is_enabled("MKLDNN")


class StaticGraph:
    """One graph as a static ``CachedOp`` (what ``hybridize(static_alloc=True,
    static_shape=True)`` builds), called without Gluon's per-call parameter lookup.

    The parameter arrays are looked up once per context, at the first call on it; in-place
    changes to them (``load_parameters``, ``set_data``, training steps) are seen, but after
    ``initialize(force_reinit=True)`` or ``reset_ctx`` build a new graph.
    """

    def __init__(self, sym, params, input_name="data"):
        self.symbol = sym
        names = sym.list_inputs()
        if input_name not in names:
            raise ValueError(f"the graph has no input {input_name!r}; its inputs are {names}")
        by_name = {p.name: p for p in params.values()}
        missing = [n for n in names if n != input_name and n not in by_name]
        if missing:
            raise ValueError(f"no parameter for graph input(s) {missing}")
        self._pos = names.index(input_name)
        self._params = [by_name[n] for n in names if n != input_name]
        rest = [i for i in range(len(names)) if i != self._pos]
        self._op = mx.nd.CachedOp(sym, flags=[("static_alloc", True), ("static_shape", True),
                                              ("data_indices", [self._pos]),
                                              ("param_indices", rest)])
        self._args = {}  # context -> (arrays before the input, arrays after it)

    def __call__(self, x, ctx=None):
        ctx = x.context if ctx is None else ctx
        args = self._args.get(ctx)
        if args is None:
            arrays = [p.data(ctx) for p in self._params]
            args = self._args[ctx] = (arrays[:self._pos], arrays[self._pos:])
        return self._op(*args[0], x, *args[1])


class InferenceGraph:
    """Callable that runs a network through the recommended static graphs.

    Parameters
    ----------
    sym : mxnet.Symbol
        The network's graph (one input).
    params : mxnet.gluon.ParameterDict
        Its parameters, shared by all graphs.
    input_name : str
        Name of the graph input.
    tune_max_batch : int
        Largest batch size for which the variants are tried; larger batches run ``blocked``.
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
        A large network's slow calls leave room for fewer variants, or only ``blocked``.

    Attributes
    ----------
    symbols : dict
        Variant name -> the graph it runs on CPU (after fusion, if any).
    graphs : dict
        Variant name -> :class:`StaticGraph` of that graph.
    choice : dict
        Batch size -> the variant name picked for CPU inputs of that size.
    """

    #: fraction by which a variant must beat ``blocked`` (median of 9 calls) to be picked
    TUNE_MARGIN = 0.05

    def __init__(self, sym, params, input_name="data", tune_max_batch=16, check=None,
                 max_single_edges=4, fuse=None, tune_budget=2.0):
        self.fuse = onednn_fusion_available() if fuse is None else bool(fuse)
        self._sym, self._params, self._input = sym, params, input_name
        self.symbols = {key: s.optimize_for("MKLDNN") if self.fuse else s
                        for key, s in graph_variants(sym, max_single_edges).items()}
        self.graphs = {key: StaticGraph(s, params, input_name) for key, s in self.symbols.items()}
        self._device_graph = None  # unfused static graph for inputs on other devices
        self.tune_max_batch = tune_max_batch
        self.tune_budget = tune_budget
        self.check = check
        self.choice = {}

    @classmethod
    def from_block(cls, net, **kwargs):
        """For an initialised HybridBlock (a zoo network or any other)."""
        sym = net(mx.sym.var("data"))
        kwargs.setdefault("check", getattr(net, "check_input_shape", None))
        return cls(sym, net.collect_params(), **kwargs)

    def _pick(self, x):
        if len(self.graphs) == 1 or x.shape[0] > self.tune_max_batch:
            return "blocked"
        tried, start = [], time.perf_counter()
        for name, graph in self.graphs.items():
            if tried and time.perf_counter() - start > self.tune_budget / 3:
                break
            for _ in range(3):  # graph build, oneDNN primitive creation
                graph(x).wait_to_read()
            tried.append(name)
        calls = {name: [] for name in tried}
        for _ in range(3):  # interleaved rounds, so a slow spell of the machine hits all
            for name in tried:
                for _ in range(3):
                    t0 = time.perf_counter()
                    self.graphs[name](x).wait_to_read()
                    calls[name].append(time.perf_counter() - t0)
        times = {name: float(np.median(c)) for name, c in calls.items()}
        best = min(times, key=times.get)
        # a variant must clearly beat the unmodified graph: timing noise alone picks at random
        return best if times[best] < (1 - self.TUNE_MARGIN) * times["blocked"] else "blocked"

    def __call__(self, x):
        shape, ctx = x.shape, x.context
        if self.check is not None:
            self.check(shape)
        if ctx.device_type != "cpu":
            if self._device_graph is None:
                self._device_graph = StaticGraph(self._sym, self._params, self._input)
            return self._device_graph(x, ctx)
        key = self.choice.get(shape[0])
        if key is None:
            key = self.choice[shape[0]] = self._pick(x)
        return self.graphs[key](x, ctx)


def quantize(net, calib_images, batch_size=100):
    """INT8 copy of ``net`` for MXNet's CPU (oneDNN) build, calibrated on ``calib_images``.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        An initialised network (it is hybridized as a side effect).
    calib_images : array, shape (N, C, H, W)
        Inputs, already transformed as for the network (e.g. ``data.to_input``); activation
        ranges are their min/max ("naive" calibration). Use real data: ``tests/test_fast.py``
        checks that 1,000 MNIST training digits keep the shipped ``inception_mnist`` within 0.3
        points of its float32 test accuracy.

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized with ``static_alloc`` and ``static_shape``. It runs only on MXNet's CPU build;
        export the float32 network for anything else.
    """
    from mxnet.contrib.quantization import quantize_net

    x = np.asarray(calib_images, dtype=np.float32)
    bs = min(batch_size, len(x))
    if x.ndim != 4 or bs < 1:
        raise ValueError(f"calib_images must be a non-empty (N, C, H, W) array; got shape "
                         f"{x.shape}")
    calib = [[mx.nd.array(x[i:i + bs])] for i in range(0, len(x) - bs + 1, bs)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        qnet = quantize_net(net, quantized_dtype="auto", calib_mode="naive", calib_data=calib,
                            num_calib_examples=len(calib) * bs, ctx=mx.cpu(),
                            data_shapes=[mx.io.DataDesc("data", (bs,) + x.shape[1:])])
    qnet.hybridize(static_alloc=True, static_shape=True)
    return qnet
