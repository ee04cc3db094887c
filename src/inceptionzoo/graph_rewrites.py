"""Graph rewrites for MXNet's oneDNN build that keep a network's values (see
docs/benchmarks.md, "Why batch 1 was slow", for the profiles behind them).

* ``pool-first`` (:func:`pool_first_symbol`): a pool that reads a channel concat pools each
  branch instead, and the pooled maps are concatenated;
* ``+native`` (:func:`native_concat_symbol`): the concats that pools still read run in MXNet's own
  kernel on ``(N, C, H*W)`` views, which hands the pool a plain ``NCHW`` array;
* ``+plain`` (:func:`plain_layout_symbol`): a no-op ``Reshape(0, -1, 0, 0)`` between such a
  ``Concat`` and its ``Pooling``, which makes MXNet hand the pool a plain array;
* ``merge`` (:func:`merge_branches_symbol`): two branches of an Inception block whose reductions
  are too narrow for oneDNN's blocked kernels run as one wider branch (new weights, made by
  :func:`merged_params`);
* with it, the scaled residuals of Inception-ResNet (:func:`fold_scaled_convolutions_symbol`):
  ``relu(x + s * conv(y))`` becomes ``Activation(x + conv'(y))`` with the scale folded into the
  convolution's weights, which ``optimize_for('MKLDNN')`` fuses into one convolution with a sum
  and a ReLU post-op.

Every public function takes an ``mxnet.Symbol``; the work is done on the parsed JSON graph
(a dict, :mod:`inceptionzoo.symbol_graphs`), which :func:`graph_variants` parses once and passes
from rewrite to rewrite. The weight-changing rewrites (``merge``, the folded residual scales)
live in :mod:`inceptionzoo.branch_merges`; their names are importable from here too.
"""
import copy

from .branch_merges import (fold_scaled_convolutions_symbol, merge_branches_symbol,  # noqa: F401
                            merged_params)
from .symbol_graphs import (channel_concat, count_readers, pool_read_concats,  # noqa: F401
                            rebuild, symbol_graph, to_symbol)

__all__ = ["symbol_graph", "concat_pool_edges", "pool_first_symbol", "plain_layout_symbol",
           "native_concat_symbol", "merge_branches_symbol", "fold_scaled_convolutions_symbol",
           "merged_params", "graph_variants"]


def _plain(graph, concats=None):
    names = set(pool_read_concats(graph) if concats is None else concats)
    reshaped = {}  # old concat index -> new reshape index

    def edit(old, i, node, add, renumber):
        if node["op"] == "Pooling" and old[i]["inputs"][0][0] in reshaped:
            node["inputs"][0] = [reshaped[old[i]["inputs"][0][0]], 0, 0]
        new = add(node)
        if node["op"] == "Concat" and node["name"] in names:
            reshaped[i] = add({"op": "Reshape", "name": node["name"] + "_plain_layout",
                               "attrs": {"shape": "(0, -1, 0, 0)"}, "inputs": [[new, 0, 0]]})
        return new

    return rebuild(graph, edit), len(reshaped)


def _native(graph, concats=None):
    names = set(pool_read_concats(graph) if concats is None else concats)
    done = []

    def edit(old, i, node, add, renumber):
        if not channel_concat(node) or node["name"] not in names:
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

    return rebuild(graph, edit), len(done)


def _pool_first(graph, concats=None):
    names = set(pool_read_concats(graph) if concats is None else concats)
    readers = count_readers(graph)
    moved = []

    def edit(old, i, node, add, renumber):
        src = old[i]["inputs"][0][0] if node["inputs"] else None
        if node["op"] != "Pooling" or not channel_concat(old[src]) or readers[src] != 1 or \
                old[src]["name"] not in names:
            return add(node)
        cat = old[src]
        parts = [[add(dict(node, name=f"{node['name']}_part{k}", inputs=[entry])), 0, 0]
                 for k, entry in enumerate(renumber(cat["inputs"]))]
        moved.append(node["name"])
        return add(dict(copy.deepcopy(cat), name=node["name"] + "_concat", inputs=parts))

    return rebuild(graph, edit), len(moved)


def concat_pool_edges(sym):
    """Names of the channel concats that a 2-D pool reads.

    Parameters
    ----------
    sym : mxnet.Symbol

    Returns
    -------
    list of str
        Names of the channel ``Concat`` nodes of ``sym`` that a 2-D ``Pooling`` node (NCHW)
        reads, in graph order.
    """
    return pool_read_concats(symbol_graph(sym))


def plain_layout_symbol(sym, concats=None):
    """Insert a no-op ``Reshape(shape=(0, -1, 0, 0))`` between a ``Concat`` and the ``Pooling``
    nodes that read it.

    Parameters
    ----------
    sym : mxnet.Symbol
    concats : list of str, optional
        Names of the concat nodes to wrap (default: all of :func:`concat_pool_edges`).

    Returns
    -------
    (mxnet.Symbol, int)
        The new graph and the number of concats wrapped.
    """
    graph, n = _plain(symbol_graph(sym), concats)
    return to_symbol(graph), n


def native_concat_symbol(sym, concats=None):
    """Run each named channel ``Concat`` on ``(N, C, H*W)`` views: ``Reshape(0, 0, -3)`` of every
    input, the concat along axis 1, and ``reshape_like`` back to ``(N, C, H, W)``. oneDNN takes
    only 2-D and 4-D concats, so MXNet's own kernel runs it and its readers get a plain ``NCHW``
    array. The values are unchanged.

    Parameters
    ----------
    sym : mxnet.Symbol
    concats : list of str, optional
        Names of the concat nodes (default: those a ``Pooling`` reads).

    Returns
    -------
    (mxnet.Symbol, int)
        The new graph and the number of concats replaced.
    """
    graph, n = _native(symbol_graph(sym), concats)
    return to_symbol(graph), n


def pool_first_symbol(sym, concats=None):
    """Move each ``Pooling`` that reads a named channel ``Concat`` before it: every input of the
    concat is pooled and a new ``Concat`` joins the pooled maps. Pooling works channel by
    channel, so the values are the same; the concat then copies maps that are smaller by the
    pool's stride squared. Only concats that the pool alone reads are moved.

    Parameters
    ----------
    sym : mxnet.Symbol
    concats : list of str, optional
        Names of the concat nodes (default: all of :func:`concat_pool_edges`).

    Returns
    -------
    (mxnet.Symbol, int)
        The new graph and the number of pools moved.
    """
    graph, n = _pool_first(symbol_graph(sym), concats)
    return to_symbol(graph), n


def graph_variants(sym, max_single_edges=4):
    """The candidate graphs of :class:`inceptionzoo.graph_tuning.TunedGraph`, in the order
    they are tried. The symbol is parsed once; each variant is converted back once.

    Parameters
    ----------
    sym : mxnet.Symbol
    max_single_edges : int
        With at most this many concat-to-pool edges left after ``pool-first``, also one variant
        per edge for ``+native`` and ``+plain``.

    Returns
    -------
    dict of str to mxnet.Symbol
        ``{"pool-first": ..., "unmodified": sym, "pool-first+native": ...,
        "pool-first+plain": ..., "pool-first+native:<concat>": ..., ...}`` (only
        ``unmodified`` when no pool reads a concat). The first is the default.
    """
    graph = symbol_graph(sym)
    if not pool_read_concats(graph):
        return {"unmodified": sym}
    first = _pool_first(graph)[0]
    variants = {"pool-first": first, "unmodified": None}
    edges = pool_read_concats(first)  # the concats of pooled maps that other pools read
    if edges:
        variants["pool-first+native"] = _native(first)[0]
        variants["pool-first+plain"] = _plain(first)[0]
    if 1 < len(edges) <= max_single_edges:
        for name in edges:
            variants[f"pool-first+native:{name}"] = _native(first, [name])[0]
            variants[f"pool-first+plain:{name}"] = _plain(first, [name])[0]
    return {key: sym if g is None else to_symbol(g) for key, g in variants.items()}
