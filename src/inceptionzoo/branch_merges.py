"""Graph rewrites that change weights but not values: two branches of an Inception block whose
reductions are too narrow for oneDNN's blocked kernels run as one wider branch
(:func:`merge_branches_symbol`, with the new weights made by :func:`merged_params`), and the
scaled residuals of Inception-ResNet folded into their convolutions
(:func:`fold_scaled_convolutions_symbol`). The layout rewrites and the variants a
:class:`~inceptionzoo.graph_tuning.TunedGraph` tries are :mod:`inceptionzoo.graph_rewrites`.
"""
import copy

import mxnet as mx
import numpy as np

from .errors import InceptionZooError
from .symbol_graphs import (channel_concat, count_readers, ints, rebuild, symbol_graph,
                            to_symbol)

__all__ = ["merge_branches_symbol", "fold_scaled_convolutions_symbol", "merged_params",
           "MAX_GROWTH"]


def _conv_attrs(node):
    """The attributes of a 2-D, ungrouped, stride-1-or-any NCHW ``Convolution`` node (JSON) as
    a dict, or None for any other node."""
    attrs = node.get("attrs", {})
    if node["op"] != "Convolution" or len(ints(attrs.get("kernel", "()"))) != 2 or \
            attrs.get("num_group", "1") != "1" or attrs.get("layout", "None") not in ("None",
                                                                                   "NCHW"):
        return None
    kernel = ints(attrs["kernel"])
    return {"kernel": kernel, "stride": ints(attrs.get("stride", "()")) or (1, 1),
            "dilate": ints(attrs.get("dilate", "()")) or (1, 1),
            "pad": ints(attrs.get("pad", "()")) or (0, 0),
            "no_bias": attrs.get("no_bias", "False") in ("True", "true", "1"),
            "filters": int(attrs["num_filter"])}


def _branch(nodes, entry):
    """``(conv index, activation index or None)`` for an entry that is a convolution, or a
    ReLU-like ``Activation`` of one; None otherwise."""
    node = nodes[entry[0]]
    if node["op"] == "Activation":
        inner = node["inputs"][0][0]
        return (inner, entry[0]) if _conv_attrs(nodes[inner]) else None
    return (entry[0], None) if _conv_attrs(node) else None


#: A merge is skipped when the merged convolution of ``A`` and ``B`` would do more than this many
#: times their multiply-adds (a 3x3 with a 5x5 of equal widths: 2.9x; a 1x7 with a 7x1: 14x).
MAX_GROWTH = 3.0


def _growth(reds, convs):
    """Multiply-adds per pixel of the merged ``A``+``B`` convolution over those of ``A`` and
    ``B`` (their inputs are the reductions' outputs)."""
    kernel = [max(a, b) for a, b in zip(convs[0]["kernel"], convs[1]["kernel"])]
    apart = sum(r["filters"] * c["filters"] * c["kernel"][0] * c["kernel"][1]
                for r, c in zip(reds, convs))
    merged = sum(r["filters"] for r in reds) * sum(c["filters"] for c in convs) * \
        kernel[0] * kernel[1]
    return merged / apart


def _merge_pairs(graph, max_channels):
    """Adjacent channel-concat entries that :func:`merge_branches_symbol` merges: a list of
    ``(concat index, position, (convA, actA), (convB, actB), (redA, actRA), (redB, actRB))``."""
    nodes = graph["nodes"]
    readers = count_readers(graph)
    act = lambda i: None if i is None else nodes[i]["attrs"].get("act_type")  # noqa: E731
    pairs, used = [], set()
    for k, cat in enumerate(nodes):
        if not channel_concat(cat):
            continue
        for pos in range(len(cat["inputs"]) - 1):
            ends = [_branch(nodes, e) for e in cat["inputs"][pos:pos + 2]]
            if None in ends:
                continue
            convs = [_conv_attrs(nodes[c]) for c, _ in ends]
            reds = [_branch(nodes, nodes[c]["inputs"][0]) for c, _ in ends]
            if None in reds:
                continue
            red_attrs = [_conv_attrs(nodes[r]) for r, _ in reds]
            chain = [i for pair in ends + reds for i in pair if i is not None]
            same_red = {key: v for key, v in red_attrs[0].items() if key != "filters"} == \
                {key: v for key, v in red_attrs[1].items() if key != "filters"}
            ok = (
                len(set(chain)) == len(chain) and not used & set(chain)
                and all(readers[i] == 1 for i in chain)
                and nodes[reds[0][0]]["inputs"][0] == nodes[reds[1][0]]["inputs"][0]
                and same_red and act(reds[0][1]) == act(reds[1][1])
                and act(ends[0][1]) == act(ends[1][1])
                and all(c["stride"] == (1, 1) and c["dilate"] == (1, 1)
                        and all(kk % 2 == 1 and p == kk // 2 for kk, p in zip(c["kernel"],
                                                                              c["pad"]))
                        and c["no_bias"] == convs[0]["no_bias"] for c in convs)
                and red_attrs[0]["no_bias"] == convs[0]["no_bias"]
                and all(nodes[e[0]]["op"] == "null" for c in chain
                        if nodes[c]["op"] == "Convolution" for e in nodes[c]["inputs"][1:])
                and min(r["filters"] for r in red_attrs) < max_channels
                and _growth(red_attrs, convs) <= MAX_GROWTH)
            if ok:
                pairs.append((k, pos) + tuple(ends) + tuple(reds))
                used.update(chain)
    return pairs


def _merge_plan(nodes, pairs):
    """``(recipes of the new parameters, nodes dropped, merged branch by the old index of its
    branch B's end, concat index -> positions edited)``: what the rebuild does where."""
    recipes = {}
    drop, redo, cat_edit = set(), {}, {}
    for k, pos, (ca, aa), (cb, ab), (ra, ara), (rb, arb) in pairs:
        name = lambda i, kind: nodes[nodes[i]["inputs"][kind][0]]["name"]  # noqa: E731
        bias = not _conv_attrs(nodes[ca])["no_bias"]
        red, conv = nodes[ra]["name"] + "_merged", nodes[ca]["name"] + "_merged"
        kernel = tuple(max(a, b) for a, b in zip(_conv_attrs(nodes[ca])["kernel"],
                                                 _conv_attrs(nodes[cb])["kernel"]))
        recipes[red + "_weight"] = ("stack", [name(ra, 1), name(rb, 1)], None)
        recipes[conv + "_weight"] = ("blockdiag", [name(ca, 1), name(cb, 1)], kernel)
        if bias:
            recipes[red + "_bias"] = ("stack", [name(ra, 2), name(rb, 2)], None)
            recipes[conv + "_bias"] = ("stack", [name(ca, 2), name(cb, 2)], None)
        drop.update(i for i in (ca, aa, cb, ab, ra, ara, rb, arb) if i is not None)
        redo[ab if ab is not None else cb] = (ra, ara, ca, aa, rb, cb, red, conv, kernel, bias)
        cat_edit.setdefault(k, []).append(pos)
    return recipes, drop, redo, cat_edit


def _merge(graph, max_channels):
    pairs = _merge_pairs(graph, max_channels)
    if not pairs:
        return graph, {}
    recipes, drop, redo, cat_edit = _merge_plan(graph["nodes"], pairs)
    merged_entry = {}  # index of branch B's end -> new entry of the merged branch

    def edit(old, i, node, add, renumber):
        if i in redo:
            ra, ara, ca, aa, rb, cb, red, conv, kernel, bias = redo[i]

            def conv_node(src, template, name, filters, kern):
                ins = [src, [add({"op": "null", "name": name + "_weight", "inputs": []}), 0, 0]]
                if bias:
                    ins.append([add({"op": "null", "name": name + "_bias", "inputs": []}), 0, 0])
                attrs = dict(old[template]["attrs"], num_filter=str(filters))
                if kern is not None:
                    attrs.update(kernel=str(kern), pad=str(tuple(d // 2 for d in kern)))
                return [add({"op": "Convolution", "name": name, "attrs": attrs,
                             "inputs": ins}), 0, 0]

            def act_node(src, template, suffix):
                if template is None:
                    return src
                return [add(dict(copy.deepcopy(old[template]), name=old[template]["name"] +
                                 suffix, inputs=[src])), 0, 0]

            width = lambda c: int(old[c]["attrs"]["num_filter"])  # noqa: E731
            x = renumber([old[ra]["inputs"][0]])[0]
            r = act_node(conv_node(x, ra, red, width(ra) + width(rb), None), ara, "_merged")
            out = act_node(conv_node(r, ca, conv, width(ca) + width(cb), kernel), aa, "_merged")
            merged_entry[i] = out
            return out[0]
        if i in drop:
            return None
        if i in cat_edit:
            entries = []
            for pos, entry in enumerate(old[i]["inputs"]):
                if pos - 1 in cat_edit[i]:
                    continue  # branch B: its output is in the merged entry
                if pos in cat_edit[i]:
                    entries.append(merged_entry[old[i]["inputs"][pos + 1][0]])
                else:
                    entries.append(renumber([entry])[0])
            return add(dict(node, inputs=entries,
                            attrs=dict(node.get("attrs", {}), num_args=str(len(entries)))))
        return add(node)

    return rebuild(graph, edit), recipes


def merge_branches_symbol(sym, max_channels=8):
    """Merge pairs of Inception branches whose reductions are narrower than ``max_channels``.

    The pattern: two adjacent inputs of a channel ``Concat`` are convolutions ``A`` and ``B``
    (each maybe followed by the same ``Activation``), with stride 1 and "same" padding
    (odd kernels, pad = kernel // 2), and each reads a reduction convolution (``RA``, ``RB``:
    same kernel, stride and padding, same activation or none) of one shared input, at least one
    of them with fewer than ``max_channels`` filters; nothing else reads any of them; their
    weights and biases are plain variables; and the merged convolution does at most
    :data:`MAX_GROWTH` times the multiply-adds of ``A`` and ``B``. Then
    ``RA`` and ``RB`` become one convolution with their filters stacked, and ``A`` and ``B``
    one convolution over its output whose kernel is the larger of the two, with block-diagonal
    weights (each kernel centred, zeros elsewhere), whose output replaces both concat inputs.
    The values are the same (the zeros add exact zeros, for finite inputs); the merged
    convolutions do more
    multiply-adds, but oneDNN runs convolutions with fewer than 8 input channels from a plain
    layout with a slow kernel, and the merged one with its blocked kernels (docs/benchmarks.md,
    "Merged branches").

    Parameters
    ----------
    sym : mxnet.Symbol
    max_channels : int
        Merge only where a reduction has fewer filters than this.

    Returns
    -------
    (mxnet.Symbol, dict)
        The new graph and the recipes of its new parameters, for :func:`merged_params`
        (empty, with ``sym`` unchanged, when nothing matched).
    """
    graph, recipes = _merge(symbol_graph(sym), max_channels)
    return (to_symbol(graph) if recipes else sym), recipes


def fold_scaled_convolutions_symbol(sym):
    """Fold ``_mul_scalar(Convolution(x, w, b), scalar=s)`` into ``Convolution(x, s*w, s*b)``
    and write every ``relu`` as ``Activation(act_type='relu')``.

    The convolution must be read by the multiplication only and its weight and bias must be
    plain variables; the folded ones are new parameters (``<conv>_scaled_weight`` /
    ``_bias``, made by :func:`merged_params`). The values are those of the graph up to float32
    rounding of the products. Inception-ResNet's ``relu(x + s * conv(y))`` then becomes one
    oneDNN convolution with a sum and a ReLU post-op after ``optimize_for('MKLDNN')`` (which
    does not fuse the multiplication, nor the ``relu`` operator, only ``Activation``).

    Parameters
    ----------
    sym : mxnet.Symbol

    Returns
    -------
    (mxnet.Symbol, dict)
        The new graph and the recipes of its new parameters, for :func:`merged_params`
        (empty, with ``sym`` unchanged, when no multiplication was folded).
    """
    graph = symbol_graph(sym)
    nodes, readers = graph["nodes"], count_readers(graph)
    folds = {}  # index of the _mul_scalar -> its convolution's index
    for i, n in enumerate(nodes):
        if n["op"] != "_mul_scalar":
            continue
        c = n["inputs"][0][0]
        conv = nodes[c]
        if conv["op"] == "Convolution" and readers.get(c) == 1 and \
                all(nodes[e[0]]["op"] == "null" for e in conv["inputs"][1:]):
            folds[i] = c
    if not folds:
        return sym, {}
    recipes, convs = {}, set(folds.values())

    def edit(old, i, node, add, renumber):
        if i in convs:
            return None
        if i in folds:
            conv = copy.deepcopy(old[folds[i]])
            name = conv["name"] + "_scaled"
            scalar = float(old[i]["attrs"]["scalar"])
            ins = renumber([conv["inputs"][0]])
            for suffix, entry in zip(("_weight", "_bias"), conv["inputs"][1:]):
                recipes[name + suffix] = ("scale", [old[entry[0]]["name"]], scalar)
                ins.append([add({"op": "null", "name": name + suffix, "inputs": []}), 0, 0])
            return add(dict(conv, name=name, inputs=ins))
        if node["op"] == "relu":
            return add(dict(node, op="Activation", attrs={"act_type": "relu"}))
        return add(node)

    return to_symbol(rebuild(graph, edit)), recipes


def merged_params(recipes, params):
    """The arrays of the parameters that :func:`merge_branches_symbol` introduced.

    Parameters
    ----------
    recipes : dict
        As returned by :func:`merge_branches_symbol` or
        :func:`fold_scaled_convolutions_symbol`.
    params : mapping
        Parameter name -> ``gluon.Parameter`` or ``NDArray`` (the source parameters).

    Returns
    -------
    dict of str to mxnet.nd.NDArray
        New parameter name -> its array (in the sources' dtype, computed from them now, on the
        first source's context: later changes to the sources are not seen).
    """
    by_name = {getattr(p, "name", key): p for key, p in params.items()}

    def array(name):
        p = by_name[name]
        if not isinstance(p, mx.gluon.Parameter):
            return p
        try:
            return p.list_data()[0]
        except RuntimeError:
            raise InceptionZooError(
                f"parameter {name!r} is not initialised: the merged weights are "
                "computed from it (initialise the network first)") from None

    out = {}
    for name, (kind, sources, kernel) in recipes.items():
        arrays = [array(s) for s in sources]
        if kind == "scale":  # kernel holds the scalar
            value = arrays[0].asnumpy() * np.asarray(kernel, dtype=arrays[0].dtype)
            out[name] = mx.nd.array(value, ctx=arrays[0].context, dtype=value.dtype)
            continue
        a, b = (x.asnumpy() for x in arrays)
        if kind == "stack":
            value = np.concatenate([a, b], axis=0)
        else:  # block-diagonal: A's filters read A's inputs, B's read B's
            value = np.zeros((a.shape[0] + b.shape[0], a.shape[1] + b.shape[1]) + kernel,
                             dtype=a.dtype)
            for (o, i), w in (((0, 0), a), ((a.shape[0], a.shape[1]), b)):
                top, left = (kernel[0] - w.shape[2]) // 2, (kernel[1] - w.shape[3]) // 2
                value[o:o + w.shape[0], i:i + w.shape[1],
                      top:top + w.shape[2], left:left + w.shape[3]] = w
        out[name] = mx.nd.array(value, ctx=arrays[0].context, dtype=value.dtype)
    return out
