"""The recommended inference path: static graphs, rewritten and specialised by batch size.

Why: on MXNet 1.9.1's oneDNN build, a channel concatenation of 8-channel-blocked branches at
batch size 1 or 2 produces the layout ``Bacd8b`` (the channel block outermost, which for N=1 is
the same bytes as ``aBcd8b``). oneDNN's max-pooling has no JIT kernel for that layout and falls
back to its scalar reference kernel: 1.4 to 1.8 ms per pooling call on a 32x28x28 map instead
of 10 to 20 us (``python benchmarks/onednn_profile.py``). ``DNNL_VERBOSE=1`` shows it as
``pooling_v2,ref:any`` with ``src ... Bacd8b``. The concatenation itself runs oneDNN's generic
``simple:any`` kernel (about 60 us at batch 1; at batch 32, 0.6 ms of the 3.3 ms per call).
Larger batches get ``aBcd8b`` and JIT pooling kernels, which is why hybridize barely helped at
batch 1 while disabling oneDNN (``MXNET_MKLDNN_ENABLED=0``) sped batch 1 up and slowed batch 32
down.

The graph rewrites, all of which keep the values (:func:`graph_variants`):

* ``pool-first`` (:func:`pool_first_symbol`): a pool that reads a concat pools each branch
  instead, and the pooled maps are concatenated; pooling works channel by channel, and the
  concat then copies a quarter of the bytes after a 3x3/2 pool. It is the default graph.
* ``+native`` (:func:`native_concat_symbol`): the concats that pools still read run in MXNet's own
  kernel on ``(N, C, H*W)`` views, which skips oneDNN's concat and hands the pool a plain
  ``NCHW`` array;
* ``+plain`` (:func:`plain_layout_symbol`): a no-op ``Reshape(0, -1, 0, 0)`` between such a
  ``Concat`` and its ``Pooling``, which makes MXNet hand the pool a plain array.

The last two come for all such edges and, for up to ``max_single_edges`` edges, for one edge at
a time. At larger batch sizes their reorders cost more than they save, so :class:`InferenceGraph`
times the candidates (and the ``unmodified`` graph) once for each new batch size up to
``tune_max_batch`` and keeps the fastest; larger batches use the default. On MXNet's oneDNN (CPU)
build every graph is also passed through ``Symbol.optimize_for('MKLDNN')``, which fuses each
convolution with its ReLU. All graphs run as static ``CachedOp`` s (:class:`StaticGraph`) and
share one set of parameters. Inputs on other devices (GPU) run the unmodified, unfused graph.
"""
import json
import time
import warnings

import mxnet as mx
import numpy as np

__all__ = ["concat_pool_edges", "pool_first_symbol", "plain_layout_symbol", "native_concat_symbol",
           "graph_variants", "onednn_fusion_available", "StaticGraph", "InferenceGraph",
           "quantize"]


def _channel_concat(node):
    """Whether a graph node (JSON) concatenates along the channel axis 1."""
    return node["op"] == "Concat" and node.get("attrs", {}).get("dim", "1") == "1"


def concat_pool_edges(sym):
    """Names of the channel ``Concat`` nodes of ``sym`` that a 2-D ``Pooling`` node (NCHW)
    reads, in graph order."""
    nodes = json.loads(sym.tojson())["nodes"]
    found = []
    for n in nodes:
        attrs = n.get("attrs", {})
        kernel = [d for d in attrs.get("kernel", "()").strip("()[] ").split(",") if d.strip()]
        two_d = len(kernel) == 2 and attrs.get("layout", "NCHW") in ("NCHW", "None")
        if n["op"] == "Pooling" and two_d and _channel_concat(nodes[n["inputs"][0][0]]):
            name = nodes[n["inputs"][0][0]]["name"]
            if name not in found:
                found.append(name)
    return found


def _rebuild(sym, edit):
    """Copy of ``sym`` in which ``edit(old_nodes, i, node, add, renumber)`` rebuilds node ``i``.

    ``node`` is node ``i`` with its inputs already renumbered; ``add(node)`` appends a node to
    the new graph and returns its index; ``renumber(entries)`` maps input entries of earlier
    old nodes to the new graph; ``edit`` returns the index of the new node that stands for node
    ``i`` (one output) for the nodes that read it."""
    graph = json.loads(sym.tojson())
    old, nodes, remap = graph["nodes"], [], {}

    def add(node):
        nodes.append(node)
        return len(nodes) - 1

    def renumber(entries):
        return [[remap[a], b, c] for a, b, c in entries]

    for i, node in enumerate(old):
        remap[i] = edit(old, i, dict(node, inputs=renumber(node["inputs"])), add, renumber)
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

    def edit(old, i, node, add, renumber):
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

    def edit(old, i, node, add, renumber):
        if not _channel_concat(node) or node["name"] not in names:
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


def pool_first_symbol(sym, concats=None):
    """Copy of ``sym`` in which each ``Pooling`` that reads a channel ``Concat`` named in
    ``concats`` (default: all of :func:`concat_pool_edges`) pools every input of the concat
    instead, and a new ``Concat`` joins the pooled maps. Pooling works channel by channel, so
    the values are the same; the concat then copies maps that are smaller by the pool's stride
    squared (4x for the 3x3/2 pools after Inception blocks). Only concats that the pool alone
    reads are moved: with other readers the full concat would stay and the pooled one would be
    extra work. Returns ``(symbol, number_of_pools_moved)``."""
    names = set(concat_pool_edges(sym) if concats is None else concats)
    graph = json.loads(sym.tojson())
    readers = {}  # node index -> number of entries that read it
    for entry in [e for n in graph["nodes"] for e in n["inputs"]] + graph["heads"]:
        readers[entry[0]] = readers.get(entry[0], 0) + 1
    moved = []

    def edit(old, i, node, add, renumber):
        src = old[i]["inputs"][0][0] if node["inputs"] else None
        if node["op"] != "Pooling" or not _channel_concat(old[src]) or readers[src] != 1 or \
                old[src]["name"] not in names:
            return add(node)
        cat = old[src]
        parts = [[add(dict(node, name=f"{node['name']}_part{k}", inputs=[entry])), 0, 0]
                 for k, entry in enumerate(renumber(cat["inputs"]))]
        moved.append(node["name"])
        return add(dict(cat, name=node["name"] + "_concat", inputs=parts))

    return _rebuild(sym, edit), len(moved)


def graph_variants(sym, max_single_edges=4):
    """The candidate graphs of :class:`InferenceGraph`, in the order they are tried:
    ``{"pool-first": ..., "unmodified": sym, "pool-first+native": ..., "pool-first+plain": ...,
    "pool-first+native:<concat>": ..., ...}`` (only ``unmodified`` when no pool reads a concat).
    The first is the default."""
    if not concat_pool_edges(sym):
        return {"unmodified": sym}
    first = pool_first_symbol(sym)[0]
    variants = {"pool-first": first, "unmodified": sym}
    edges = concat_pool_edges(first)  # the concats of pooled maps that other pools read
    if edges:
        variants["pool-first+native"] = native_concat_symbol(first)[0]
        variants["pool-first+plain"] = plain_layout_symbol(first)[0]
    if 1 < len(edges) <= max_single_edges:
        for name in edges:
            variants[f"pool-first+native:{name}"] = native_concat_symbol(first, [name])[0]
            variants[f"pool-first+plain:{name}"] = plain_layout_symbol(first, [name])[0]
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
        Largest batch size for which the variants are tried; larger batches run the default
        variant (the first of :func:`graph_variants`: ``pool-first``, or ``unmodified``).
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
        A large network's slow calls leave room for fewer variants, or only the default.

    Attributes
    ----------
    symbols : dict
        Variant name -> the graph it runs on CPU (after fusion, if any).
    graphs : dict
        Variant name -> :class:`StaticGraph` of that graph.
    default : str
        The variant for batches above ``tune_max_batch``.
    choice : dict
        Batch size -> the variant name picked for CPU inputs of that size.
    """

    #: fraction by which a variant must beat the default (median of 9 calls) to be picked
    TUNE_MARGIN = 0.05

    def __init__(self, sym, params, input_name="data", tune_max_batch=16, check=None,
                 max_single_edges=4, fuse=None, tune_budget=2.0):
        self.fuse = onednn_fusion_available() if fuse is None else bool(fuse)
        self._sym, self._params, self._input = sym, params, input_name
        self.graphs = {key: StaticGraph(s.optimize_for("MKLDNN") if self.fuse else s, params,
                                        input_name)
                       for key, s in graph_variants(sym, max_single_edges).items()}
        self.default = next(iter(self.graphs))
        self._device_graph = None  # unfused static graph for inputs on other devices
        self.tune_max_batch = tune_max_batch
        self.tune_budget = tune_budget
        self.check = check
        self.choice = {}

    @property
    def symbols(self):
        """Variant name -> the graph it runs on CPU (after fusion, if any)."""
        return {key: graph.symbol for key, graph in self.graphs.items()}

    @classmethod
    def from_block(cls, net, **kwargs):
        """For an initialised HybridBlock (a zoo network or any other)."""
        sym = net(mx.sym.var("data"))
        kwargs.setdefault("check", getattr(net, "check_input_shape", None))
        return cls(sym, net.collect_params(), **kwargs)

    def _pick(self, x):
        if len(self.graphs) == 1 or x.shape[0] > self.tune_max_batch:
            return self.default
        tried, start = [], time.perf_counter()
        for name, graph in self.graphs.items():
            if tried and time.perf_counter() - start > self.tune_budget / 3:
                break
            for _ in range(3):  # graph build, oneDNN primitive creation
                graph(x).wait_to_read()
            tried.append(name)
        if len(tried) == 1:  # the budget went on warming up the default
            return self.default
        calls = {name: [] for name in tried}
        for _ in range(3):  # interleaved rounds, so a slow spell of the machine hits all
            for name in tried:
                for _ in range(3):
                    t0 = time.perf_counter()
                    self.graphs[name](x).wait_to_read()
                    calls[name].append(time.perf_counter() - t0)
        times = {name: float(np.median(c)) for name, c in calls.items()}
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
