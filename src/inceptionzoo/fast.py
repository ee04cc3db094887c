"""The recommended inference path: static graphs, specialised by batch size.

Why: on MXNet 1.9.1's oneDNN build, a channel concatenation of 8-channel-blocked branches at
batch size 1 or 2 produces the layout ``Bacd8b`` (the channel block outermost, which for N=1 is
the same bytes as ``aBcd8b``). oneDNN's max-pooling has no JIT kernel for that layout and falls
back to its scalar reference kernel: 1.4 to 1.8 ms per pooling call on a 32x28x28 map instead
of 10 to 20 us (``python benchmarks/onednn_profile.py``). ``DNNL_VERBOSE=1`` shows it as ``pooling_v2,ref:any`` with ``src ... Bacd8b``. Larger
batches get ``aBcd8b`` and JIT kernels, which is why hybridize barely helped at batch 1 while
disabling oneDNN (``MXNET_MKLDNN_ENABLED=0``) sped batch 1 up and slowed batch 32 down.

The fix: a second graph, identical but for a no-op ``Reshape(0, -1, 0, 0)`` between every
``Concat`` and a ``Pooling`` that reads it, which makes MXNet hand the pool a plain ``NCHW``
array (a cheap reorder at small batch sizes). At large batch sizes that reorder and the reorders
back cost more than they save, and where a concat already has a good layout the reshape is a
wasted reorder. So :class:`InferenceGraph` builds the unmodified graph, the graph with every such
edge reshaped and (for up to ``max_single_edges`` edges) one graph per single edge, times them
once for each new batch size up to ``tune_max_batch`` and keeps the fastest; larger batches use
the unmodified graph. All graphs are hybridized with ``static_alloc=True, static_shape=True``
and share one set of parameters.
"""
import json
import time
import warnings

import mxnet as mx
import numpy as np

__all__ = ["concat_pool_edges", "plain_layout_symbol", "InferenceGraph", "quantize"]


def concat_pool_edges(sym):
    """Names of the ``Concat`` nodes of ``sym`` that a ``Pooling`` node reads, in graph order."""
    nodes = json.loads(sym.tojson())["nodes"]
    found = []
    for n in nodes:
        if n["op"] == "Pooling" and nodes[n["inputs"][0][0]]["op"] == "Concat":
            name = nodes[n["inputs"][0][0]]["name"]
            if name not in found:
                found.append(name)
    return found


def plain_layout_symbol(sym, concats=None):
    """Copy of ``sym`` with ``Reshape(shape=(0, -1, 0, 0))`` (a no-op on values) inserted
    between a ``Concat`` and the ``Pooling`` nodes that read it, for the concat nodes named in
    ``concats`` (default: all of them). Returns ``(symbol, number_of_concats_wrapped)``."""
    graph = json.loads(sym.tojson())
    old = graph["nodes"]
    names = set(concat_pool_edges(sym) if concats is None else concats)
    wrap = {i for i, n in enumerate(old) if n["name"] in names}
    nodes, remap, reshaped = [], {}, {}
    for i, node in enumerate(old):
        node = dict(node, inputs=[[remap[a], b, c] for a, b, c in node["inputs"]])
        if node["op"] == "Pooling" and old[i]["inputs"][0][0] in wrap:
            node["inputs"][0] = [reshaped[old[i]["inputs"][0][0]], 0, 0]
        remap[i] = len(nodes)
        nodes.append(node)
        if i in wrap:
            reshaped[i] = len(nodes)
            nodes.append({"op": "Reshape", "name": node["name"] + "_plain_layout",
                          "attrs": {"shape": "(0, -1, 0, 0)"},
                          "inputs": [[remap[i], 0, 0]]})
    out = {"nodes": nodes, "arg_nodes": [remap[a] for a in graph["arg_nodes"]],
           "heads": [[remap[a], b, c] for a, b, c in graph["heads"]],
           "attrs": graph.get("attrs", {})}
    return mx.sym.load_json(json.dumps(out)), len(wrap)


class InferenceGraph:
    """Callable that runs a network through the recommended static graphs.

    Parameters
    ----------
    sym : mxnet.Symbol
        The network's graph (one input).
    params : mxnet.gluon.ParameterDict
        Its parameters, shared by both graphs.
    input_name : str
        Name of the graph input.
    tune_max_batch : int
        Largest batch size for which the plain-layout graph is tried.
    check : callable, optional
        Called with each input shape before running (e.g. ``net.check_input_shape``).
    """

    def __init__(self, sym, params, input_name="data", tune_max_batch=16, check=None,
                 max_single_edges=4):
        data = mx.sym.var(input_name)
        edges = concat_pool_edges(sym)
        variants = {"blocked": sym}
        if edges:
            variants["plain"] = plain_layout_symbol(sym)[0]
        if 1 < len(edges) <= max_single_edges:
            for name in edges:
                variants[f"plain:{name}"] = plain_layout_symbol(sym, [name])[0]
        self.graphs = {}
        with warnings.catch_warnings():  # MXNet cannot know the input dtype until a call
            warnings.filterwarnings("ignore", message="Cannot decide type")
            for key, s in variants.items():
                self.graphs[key] = mx.gluon.SymbolBlock(s, data, params=params)
                self.graphs[key].hybridize(static_alloc=True, static_shape=True)
        self.tune_max_batch = tune_max_batch
        self.check = check
        self.choice = {}  # batch size -> key of self.graphs

    @classmethod
    def from_block(cls, net, **kwargs):
        """For an initialised HybridBlock (a zoo network or any other)."""
        sym = net(mx.sym.var("data"))
        kwargs.setdefault("check", getattr(net, "check_input_shape", None))
        return cls(sym, net.collect_params(), **kwargs)

    def _pick(self, x):
        if len(self.graphs) == 1 or x.shape[0] > self.tune_max_batch:
            return "blocked"
        times = {}
        for name, block in self.graphs.items():
            for _ in range(3):  # graph build, oneDNN primitive creation
                block(x).wait_to_read()
            t0 = time.perf_counter()
            for _ in range(5):
                block(x).wait_to_read()
            times[name] = time.perf_counter() - t0
        return min(times, key=times.get)

    def __call__(self, x):
        if self.check is not None:
            self.check(x.shape)
        n = x.shape[0]
        if n not in self.choice:
            self.choice[n] = self._pick(x)
        return self.graphs[self.choice[n]](x)


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
