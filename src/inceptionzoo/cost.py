"""What a network costs: parameters and multiply-accumulates (MACs) per layer, counted from the
model's own symbol graph with MXNet's shape inference, for any HybridBlock and input shape.

>>> from inceptionzoo import get_model
>>> from inceptionzoo.cost import count
>>> report = count(get_model('inception_mnist'), (1, 28, 28))
>>> report.params, report.macs
(37922, 2345344)

Conventions: one MAC is one multiplication of a weight with an input value, accumulated
(a convolution output element costs ``k_h * k_w * in_channels / groups`` MACs; bias additions,
activations, pooling, concatenation and batch norm count zero and are still listed). Parameters
are learnable ones (weights, biases, batch-norm gamma/beta), not running statistics.
"""
import dataclasses
from typing import List, Tuple

import mxnet as mx
import numpy as np

from ._text import text_table
from .errors import InceptionZooError
from .symbol_graphs import symbol_graph

__all__ = ["Layer", "CostReport", "count", "num_params", "naive_block_cost",
           "reduced_block_cost"]


@dataclasses.dataclass(frozen=True)
class Layer:
    """One operator of the graph.

    Attributes
    ----------
    name, op : str
        Node name and MXNet operator.
    output_shape : tuple of int
        Shape of its output for one sample (batch 1).
    params : int
        Learnable scalars it reads.
    macs : int
        Multiply-accumulates it costs.
    """

    name: str
    op: str
    output_shape: Tuple[int, ...]
    params: int
    macs: int


@dataclasses.dataclass(frozen=True)
class CostReport:
    """Per-layer costs and totals of one forward pass on one sample.

    Attributes
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of the sample.
    layers : list of Layer
        In graph order; ``params`` and ``macs`` are their totals.
    """

    input_shape: Tuple[int, ...]
    layers: List[Layer]

    @property
    def params(self):
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self):
        return sum(layer.macs for layer in self.layers)

    def table(self):
        """The per-layer table as text."""
        rows = [(layer.name, layer.op, "x".join(map(str, layer.output_shape)),
                 f"{layer.params:,}", f"{layer.macs:,}") for layer in self.layers]
        rows.append(("total", "", "", f"{self.params:,}", f"{self.macs:,}"))
        return text_table(("layer", "op", "output shape", "params", "MACs"), rows,
                          right={3, 4}, rules=(0, len(rows) - 1))


def _macs(op, out_shape, weight_shape):
    if weight_shape is None:
        return 0
    if op in ("Convolution", "Deconvolution"):
        # per output element: every weight of one filter (in_channels / groups * kh * kw)
        return int(np.prod(out_shape[1:])) * int(np.prod(weight_shape[1:]))
    if op == "FullyConnected":
        return int(np.prod(weight_shape))
    return 0


def count(block, input_shape):
    """Count parameters and MACs of ``block`` for one sample of shape ``input_shape``.

    Parameters
    ----------
    block : mxnet.gluon.HybridBlock
        Any hybridizable network; its parameters need not be initialised.
    input_shape : tuple of int
        Shape of one sample, without the batch axis, e.g. ``(1, 28, 28)``.

    Returns
    -------
    CostReport
        Of the path to the first output (the logits); auxiliary heads of a training network
        (``aux_logits=True``) are not part of inference and are not counted.
    """
    data = mx.sym.var("data")
    out = block(data)
    if isinstance(out, (list, tuple)):
        out = out[0]
    internals = out.get_internals()
    arg_shapes, out_shapes, _ = internals.infer_shape(data=(1,) + tuple(input_shape))
    if arg_shapes is None:
        raise InceptionZooError(
            f"MXNet could not infer the shapes of {block.name} for an input of "
            f"shape {tuple(input_shape)}")
    arg_shape = dict(zip(internals.list_arguments(), arg_shapes))
    outputs = dict(zip(internals.list_outputs(), out_shapes))
    nodes = symbol_graph(out)["nodes"]
    layers = []
    for node in nodes:
        if node["op"] == "null":
            continue
        name = node["name"]
        shape = outputs.get(name + "_output") or outputs.get(name + "_output0")
        params, weight = 0, None
        for src, _, _ in node["inputs"]:
            src_name = nodes[src]["name"]
            if nodes[src]["op"] == "null" and src_name in arg_shape and src_name != "data":
                params += int(np.prod(arg_shape[src_name]))
                if src_name.endswith("weight"):
                    weight = arg_shape[src_name]
        layers.append(Layer(name, node["op"], tuple(shape), params,
                            _macs(node["op"], shape, weight)))
    return CostReport(tuple(input_shape), layers)


def num_params(block):
    """Number of learnable scalar parameters of ``block`` (all shapes must be known).

    Batch-norm running statistics (``grad_req='null'``) are state, not parameters, and are not
    counted, as in timm and torchvision.

    Parameters
    ----------
    block : mxnet.gluon.Block

    Returns
    -------
    int
    """
    total = 0
    for p in block.collect_params().values():
        if p.grad_req == "null":
            continue
        if p.shape is None or any(d == 0 for d in p.shape):
            raise InceptionZooError(f"parameter {p.name} has an unknown shape {p.shape}; give the "
                                    "layers explicit in_channels or run one forward pass first")
        total += int(np.prod(p.shape))
    return total


def naive_block_cost(in_channels, out_channels, height, width, bias=True):
    """Exact ``(params, macs)`` of :class:`~inceptionzoo.blocks.NaiveInception` on an
    ``in_channels x height x width`` input.

    Three stride-1 "same" convolutions (1x1, 3x3, 5x5) read all ``Ni`` input channels and write
    ``No`` each; the pool branch has no parameters::

        params = (1 + 9 + 25) * Ni * No  [+ 3 * No biases]
        macs   = (1 + 9 + 25) * Ni * No * H * W

    Parameters
    ----------
    in_channels, out_channels : int
        ``Ni`` and the width ``No`` of each convolution branch.
    height, width : int
        Spatial size of the input (and output).
    bias : bool, default True
        Count the convolutions' biases.

    Returns
    -------
    tuple of int
        ``(params, macs)``.

    Examples
    --------
    >>> naive_block_cost(8, 8, 28, 28)
    (2264, 1756160)
    """
    ni, no = in_channels, out_channels
    weights = 35 * ni * no
    return weights + (3 * no if bias else 0), weights * height * width


def reduced_block_cost(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                       height, width, bias=True):
    """Exact ``(params, macs)`` of :class:`~inceptionzoo.blocks.Inception` (no batch norm).

    Every convolution is stride 1 with "same" padding, so each weight is used once per output
    pixel and ``macs = H * W * weights``::

        weights = Ni * (c1 + r3 + r5 + pp) + 9 * r3 * c3 + 25 * r5 * c5
        biases  = c1 + r3 + c3 + r5 + c5 + pp

    With ``Ni = No = N`` and the seed's layout (every branch N wide, reductions to N/2) the
    weights are ``N^2 * (1 + 1/2 + 1/2 + 1) + 9 N^2 / 2 + 25 N^2 / 2 = 20 N^2``.

    Parameters
    ----------
    in_channels : int
        ``Ni``.
    ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj : int
        Branch widths, as for :class:`~inceptionzoo.blocks.Inception`.
    height, width : int
        Spatial size of the input (and output).
    bias : bool, default True
        Count the convolutions' biases.

    Returns
    -------
    tuple of int
        ``(params, macs)``.
    """
    ni = in_channels
    weights = (ni * (ch1x1 + ch3x3red + ch5x5red + pool_proj) + 9 * ch3x3red * ch3x3
               + 25 * ch5x5red * ch5x5)
    biases = ch1x1 + ch3x3red + ch3x3 + ch5x5red + ch5x5 + pool_proj
    return weights + (biases if bias else 0), weights * height * width
