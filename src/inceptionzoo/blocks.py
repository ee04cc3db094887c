"""The Inception block in its two forms, from Szegedy et al. 2014, "Going Deeper with
Convolutions" (https://arxiv.org/abs/1409.4842), figure 2.

Both blocks take an explicit ``in_channels`` so that every parameter shape is known at
construction (no deferred initialisation) and both concatenate their branches with
``F.concat(..., dim=1)`` inside ``hybrid_forward``: ``hybridize()`` turns a network of them into
one static graph with one ``Concat`` node per block.
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from .errors import InceptionZooError

__all__ = ["conv_unit", "NaiveInception", "Inception", "conv", "pool", "split", "chain",
           "Branches", "ScaledResidual"]


def conv_unit(channels, kernel_size, in_channels, strides=1, padding=0, relu=True,
              batch_norm=False, prefix=None):
    """A convolution, optionally followed by batch norm, then ReLU when ``relu``.

    Without batch norm this is one ``Conv2D`` (with its fused ``activation``), so parameter
    names stay ``<prefix>weight`` / ``<prefix>bias``. With batch norm the convolution has no
    bias (the norm's beta replaces it) and the unit is a ``HybridSequential`` of
    ``conv_``, ``bn_`` and ``relu_``.

    Parameters
    ----------
    channels : int
        Output channels.
    kernel_size : int or tuple of int
        Kernel size, ``k`` or ``(kh, kw)``.
    in_channels : int
        Input channels (explicit, so no deferred initialisation).
    strides, padding : int or tuple of int
        As for ``mxnet.gluon.nn.Conv2D``.
    relu : bool, default True
        End with a ReLU.
    batch_norm : bool, default False
        Batch norm (epsilon 1e-3) between the convolution and the ReLU.
    prefix : str, optional
        Name prefix of the unit's parameters.

    Returns
    -------
    mxnet.gluon.HybridBlock
    """
    if not batch_norm:
        return nn.Conv2D(channels, kernel_size, strides, padding, in_channels=in_channels,
                         activation="relu" if relu else None, prefix=prefix)
    unit = nn.HybridSequential(prefix=prefix)
    with unit.name_scope():
        unit.add(nn.Conv2D(channels, kernel_size, strides, padding, in_channels=in_channels,
                           use_bias=False, prefix="conv_"))
        unit.add(nn.BatchNorm(in_channels=channels, epsilon=1e-3, prefix="bn_"))
        if relu:
            unit.add(nn.Activation("relu", prefix="relu_"))
    return unit


class NaiveInception(HybridBlock):
    """The naive Inception block (figure 2a): 1x1, 3x3 and 5x5 convolutions with ReLU and a 3x3
    stride-1 max-pool, side by side.

    The pool branch passes its input channels through, so the block outputs
    ``3 * branch_channels + in_channels`` channels (``out_channels``) at the input's spatial
    size.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    branch_channels : int
        Channels of each convolution branch.
    batch_norm : bool, default False
        Batch norm after each convolution.

    Attributes
    ----------
    out_channels : int
        Channels of the output: ``3 * branch_channels + in_channels``.
    branch_widths : tuple of int
        Output channels of the four branches, in concatenation order.

    Examples
    --------
    >>> NaiveInception(8, 16).out_channels
    56
    """

    def __init__(self, in_channels, branch_channels, batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        width = branch_channels
        self.in_channels = in_channels
        self.out_channels = 3 * width + in_channels
        self.branch_widths = (width, width, width, in_channels)
        with self.name_scope():
            self.b1 = conv_unit(width, 1, in_channels, batch_norm=batch_norm, prefix="b1_")
            self.b3 = conv_unit(width, 3, in_channels, padding=1, batch_norm=batch_norm,
                                prefix="b3_")
            self.b5 = conv_unit(width, 5, in_channels, padding=2, batch_norm=batch_norm,
                                prefix="b5_")
            self.pool = nn.MaxPool2D(3, 1, 1, prefix="pool_")

    def hybrid_forward(self, F, x):
        return F.concat(self.b1(x), self.b3(x), self.b5(x), self.pool(x), dim=1)


class Inception(HybridBlock):
    """The Inception block with dimension reductions (figure 2b).

    Branches: 1x1; 1x1 reduction -> 3x3; 1x1 reduction -> 5x5; 3x3 stride-1 max-pool -> 1x1
    projection. The output has ``ch1x1 + ch3x3 + ch5x5 + pool_proj`` channels at the input's
    spatial size. The signature follows torchvision's ``Inception``.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj : int
        Branch widths, named as in Table 1 of the paper ("#1x1", "#3x3 reduce", ...).
    relu_after_reduce : bool, default True
        ReLU after the two 1x1 reductions, as in the paper. The MNIST network has none there:
        see :meth:`uniform`.
    batch_norm : bool, default False
        Batch norm after each convolution.
    b5_kernel : int, default 5
        Kernel of the "5x5" branch: 3 in torchvision's and gluoncv's GoogLeNet (a known
        deviation from the paper kept for their weights), with "same" padding either way.
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 relu_after_reduce=True, batch_norm=False, b5_kernel=5, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.branch_widths = (ch1x1, ch3x3, ch5x5, pool_proj)
        bn = batch_norm
        with self.name_scope():
            self.b1 = conv_unit(ch1x1, 1, in_channels, batch_norm=bn, prefix="b1_")
            self.b3red = conv_unit(ch3x3red, 1, in_channels, relu=relu_after_reduce,
                                   batch_norm=bn, prefix="b3red_")
            self.b3 = conv_unit(ch3x3, 3, ch3x3red, padding=1, batch_norm=bn, prefix="b3_")
            self.b5red = conv_unit(ch5x5red, 1, in_channels, relu=relu_after_reduce,
                                   batch_norm=bn, prefix="b5red_")
            self.b5 = conv_unit(ch5x5, b5_kernel, ch5x5red, padding=b5_kernel // 2,
                                batch_norm=bn, prefix="b5_")
            self.pool = nn.MaxPool2D(3, 1, 1, prefix="pool_")
            self.proj = conv_unit(pool_proj, 1, in_channels, batch_norm=bn, prefix="proj_")

    @classmethod
    def uniform(cls, in_channels, width, **kwargs):
        """The block of the MNIST network (the seed blog's): every branch ``width`` wide,
        reductions to ``width // 2`` without ReLU; ``4 * width`` output channels.

        Examples
        --------
        >>> Inception.uniform(5, 10).branch_widths
        (10, 10, 10, 10)
        """
        half = width // 2
        kwargs.setdefault("relu_after_reduce", False)
        return cls(in_channels, width, half, width, half, width, width, **kwargs)

    def hybrid_forward(self, F, x):
        return F.concat(self.b1(x), self.b3(self.b3red(x)), self.b5(self.b5red(x)),
                        self.proj(self.pool(x)), dim=1)


# ---------------------------------------------------------------------------------------------
# The later Inception blocks (v3, v4, Inception-ResNet) as data: a block is a list of branches,
# a branch a list of steps, each step one of the three below. One class builds them all.

def conv(name, channels, kernel=1, stride=1, padding=0):
    """A conv-BN-ReLU step of a :class:`Branches` block or a :func:`chain`.

    Parameters
    ----------
    name : str
        Its prefix: ``<name>_conv_weight``, ``<name>_bn_gamma`` ...
    channels : int
        Output channels.
    kernel, stride, padding : int or (int, int)
        As in ``Conv2D``; ``(1, 7)`` / ``(0, 3)`` for the factorised convolutions.

    Returns
    -------
    tuple
        The step.
    """
    return ("conv", name, channels, kernel, stride, padding)


def pool(kind, kernel=3, stride=1, padding=0, count_include_pad=True):
    """A pooling step.

    Parameters
    ----------
    kind : {'max', 'avg'}
    kernel, stride, padding : int
    count_include_pad : bool, default True
        Average pools: divide by the whole window (True, torchvision's default) or by its
        pixels inside the input only (False, timm's Inception-v4 / Inception-ResNet-v2).

    Returns
    -------
    tuple
        The step.
    """
    if kind not in ("max", "avg"):
        raise InceptionZooError(f"pool kind must be 'max' or 'avg'; got {kind!r}")
    return (kind, kernel, stride, padding, count_include_pad)


def split(*convs):
    """A step that applies several ``conv`` steps to the same input and concatenates them
    (Inception-v3's 1x3 / 3x1 pairs in its E block)."""
    return ("split",) + tuple([c] for c in convs)


def _make_step(step, c, pool_prefix):
    """One step as a layer, and the channels it outputs."""
    kind = step[0]
    if kind == "conv":
        _, name, channels, kernel, stride, padding = step
        return conv_unit(channels, kernel, c, strides=stride, padding=padding,
                         batch_norm=True, prefix=name + "_"), channels
    if kind == "split":
        inner = Branches(c, step[1:], prefix="")
        return inner, inner.out_channels
    _, kernel, stride, padding, include = step
    if kind == "max":
        return nn.MaxPool2D(kernel, stride, padding, prefix=pool_prefix), c
    return nn.AvgPool2D(kernel, stride, padding, count_include_pad=include,
                        prefix=pool_prefix), c


def chain(in_channels, steps, pool_prefix="pool"):
    """Steps run one after the other, as a ``HybridSequential`` without a prefix of its own.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    steps : sequence
        :func:`conv`, :func:`pool` and :func:`split` steps.
    pool_prefix : str
        Prefix of the pooling layers (numbered by their position: ``<pool_prefix><j>_``).

    Returns
    -------
    (mxnet.gluon.nn.HybridSequential, int)
        The layers and the channels of their output.
    """
    seq = nn.HybridSequential(prefix="")
    c = in_channels
    for j, step in enumerate(steps):
        layer, c = _make_step(step, c, f"{pool_prefix}{j}_")
        seq.add(layer)
    return seq, c


class Branches(HybridBlock):
    """Parallel branches whose outputs are concatenated on the channel axis.

    Parameters
    ----------
    in_channels : int
        Channels of the input.
    branches : sequence of sequence of steps
        Each branch is a sequence of :func:`conv`, :func:`pool` and :func:`split` steps, run
        in order. A conv step's ``name`` becomes its prefix (``<name>_conv_weight``,
        ``<name>_bn_gamma`` ...), so the names of a checkpoint's layers can be kept.

    Every conv step is :func:`conv_unit` with batch norm (epsilon 1e-3, as torchvision's,
    timm's and gluoncv's Inception networks).

    Attributes
    ----------
    out_channels : int
        Channels of the output: the sum of the branches' output channels.
    branch_widths : tuple of int
        Output channels of each branch, in concatenation order.

    Examples
    --------
    >>> b = Branches(8, [[conv("b0", 4)], [conv("b1_0", 2), conv("b1_1", 6, 3, padding=1)],
    ...                  [pool("max", 3, 1, 1)]])
    >>> b.branch_widths, b.out_channels
    ((4, 6, 8), 18)
    """

    def __init__(self, in_channels, branches, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self._branches = []
        widths = []
        with self.name_scope():
            for k, steps in enumerate(branches):
                seq, c = chain(in_channels, steps, pool_prefix=f"p{k}_")
                self.register_child(seq, f"branch{k}")
                self._branches.append(seq)
                widths.append(c)
        self.branch_widths = tuple(widths)
        self.out_channels = sum(widths)

    def hybrid_forward(self, F, x):
        return F.concat(*[branch(x) for branch in self._branches], dim=1)


class ScaledResidual(HybridBlock):
    """Inception-ResNet block: ``relu(x + scale * conv1x1(Branches(x)))``.

    Parameters
    ----------
    in_channels : int
        Channels of the input and of the output.
    branches : sequence of sequence of steps
        As for :class:`Branches`.
    scale : float
        Factor of the residual (0.17, 0.10, 0.20 in Inception-ResNet-v2).
    relu : bool, default True
        ReLU after the sum (the last block of Inception-ResNet-v2 has none).

    The 1x1 convolution back to ``in_channels`` has a bias and no batch norm; its prefix is
    ``conv2d_`` (timm's name).
    """

    def __init__(self, in_channels, branches, scale, relu=True, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.relu = relu
        self.in_channels = self.out_channels = in_channels
        with self.name_scope():
            self.branches = Branches(in_channels, branches, prefix="")
            self.conv2d = nn.Conv2D(in_channels, 1, in_channels=self.branches.out_channels,
                                    prefix="conv2d_")

    def hybrid_forward(self, F, x):
        out = x + self.scale * self.conv2d(self.branches(x))
        return F.relu(out) if self.relu else out
