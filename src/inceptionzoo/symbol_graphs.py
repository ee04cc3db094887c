"""MXNet symbols as parsed JSON graphs, and the pieces every rewrite of them shares: parsing
(:func:`symbol_graph`, the one place the package parses a symbol) and back (:func:`to_symbol`),
reading nodes (:func:`ints`, :func:`count_readers`, :func:`channel_concat`,
:func:`pool_read_concats`) and rebuilding a graph node by node (:func:`rebuild`). Used by
:mod:`inceptionzoo.graph_rewrites` and :mod:`inceptionzoo.branch_merges`.
"""
import copy
import json

import mxnet as mx

from ._io import parse_json

__all__ = ["symbol_graph", "to_symbol", "ints", "count_readers", "channel_concat",
           "pool_read_concats", "rebuild"]


def symbol_graph(sym):
    """An MXNet symbol's graph as a dict (``nodes``, ``arg_nodes``, ``heads``): its own
    ``tojson()`` output, the one place the package parses it.

    Parameters
    ----------
    sym : mxnet.Symbol

    Returns
    -------
    dict
    """
    return parse_json(sym.tojson(), "the network's symbol")


def to_symbol(graph):
    """The MXNet symbol of a parsed graph (the inverse of :func:`symbol_graph`).

    Parameters
    ----------
    graph : dict

    Returns
    -------
    mxnet.Symbol
    """
    return mx.sym.load_json(json.dumps(graph))


def ints(text):
    """The integers of a tuple attribute as MXNet writes it (``"(3, 3)"``).

    Parameters
    ----------
    text : str

    Returns
    -------
    tuple of int
    """
    return tuple(int(d) for d in str(text).strip("()[] ").split(",") if d.strip())


def count_readers(graph):
    """Node index -> number of entries (node inputs and graph heads) that read it.

    Parameters
    ----------
    graph : dict

    Returns
    -------
    dict of int to int
    """
    readers = {}
    for entry in [e for n in graph["nodes"] for e in n["inputs"]] + graph["heads"]:
        readers[entry[0]] = readers.get(entry[0], 0) + 1
    return readers


def channel_concat(node):
    """Whether a graph node (JSON) concatenates along the channel axis 1.

    Parameters
    ----------
    node : dict

    Returns
    -------
    bool
    """
    return node["op"] == "Concat" and node.get("attrs", {}).get("dim", "1") == "1"


def pool_read_concats(graph):
    """Names of the channel concats that a 2-D (NCHW) ``Pooling`` reads, in graph order.

    Parameters
    ----------
    graph : dict

    Returns
    -------
    list of str
    """
    nodes = graph["nodes"]
    found = []
    for n in nodes:
        attrs = n.get("attrs", {})
        two_d = len(ints(attrs.get("kernel", "()"))) == 2 and \
            attrs.get("layout", "NCHW") in ("NCHW", "None")
        if n["op"] == "Pooling" and two_d and channel_concat(nodes[n["inputs"][0][0]]):
            name = nodes[n["inputs"][0][0]]["name"]
            if name not in found:
                found.append(name)
    return found


def rebuild(graph, edit):
    """Copy of the parsed ``graph`` in which ``edit(old_nodes, i, node, add, renumber)``
    rebuilds node ``i``.

    ``node`` is a copy of node ``i`` with its inputs already renumbered; ``add(node)`` appends a
    node to the new graph and returns its index; ``renumber(entries)`` maps input entries of
    earlier old nodes to the new graph; ``edit`` returns the index of the new node that stands
    for node ``i`` (one output) for the nodes that read it.

    Parameters
    ----------
    graph : dict
    edit : callable

    Returns
    -------
    dict
    """
    old, nodes, remap = graph["nodes"], [], {}

    def add(node):
        nodes.append(node)
        return len(nodes) - 1

    def renumber(entries):
        return [[remap[a], b, c] for a, b, c in entries]

    for i, node in enumerate(old):
        node = copy.deepcopy(node)
        remap[i] = edit(old, i, dict(node, inputs=renumber(node["inputs"])), add, renumber)
    return {"nodes": nodes, "arg_nodes": [k for k, n in enumerate(nodes) if n["op"] == "null"],
            "heads": [[remap[a], b, c] for a, b, c in graph["heads"]],
            "attrs": copy.deepcopy(graph.get("attrs", {}))}
