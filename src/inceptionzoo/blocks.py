"""The Inception block in its two forms, from Szegedy et al. 2014, "Going Deeper with
Convolutions" (https://arxiv.org/abs/1409.4842), figure 2.

Both blocks take an explicit ``in_channels`` so that every parameter shape is known at
construction (no deferred initialisation) and both concatenate their branches with
``F.concat(..., dim=1)`` inside ``hybrid_forward``: ``hybridize()`` turns a network of them into
one static graph with one ``Concat`` node per block.
"""
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

__all__ = ["conv_unit", "NaiveInception", "Inception"]


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
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 relu_after_reduce=True, batch_norm=False, **kwargs):
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
            self.b5 = conv_unit(ch5x5, 5, ch5x5red, padding=2, batch_norm=bn, prefix="b5_")
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
