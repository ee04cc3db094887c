"""A network written as a table: the later Inception families (v3, v4, Inception-ResNet-v2) are
a stem of conv / pool steps, a list of named multi-branch blocks, global average pooling and
one dense layer. :class:`LayoutNet` builds any such table; each family file holds its table.

Layout items, in order:

- a :func:`~inceptionzoo.blocks.conv` or :func:`~inceptionzoo.blocks.pool` step (the stem);
- ``block(name, branches)``: a :class:`~inceptionzoo.blocks.Branches` block;
- ``residual(name, branches, scale, relu=True)``: a
  :class:`~inceptionzoo.blocks.ScaledResidual` block.

Layer names are the table's names (``<name>_conv_weight``, ``<name>_bn_gamma`` ...), chosen to
be the checkpoints' module names in lower case, so that :mod:`inceptionzoo.convert` maps them
with a few rules.
"""
from mxnet.gluon import nn

from ..blocks import Branches, ScaledResidual, _make_step
from ._base import RATE, ZooNet, classifier_layer

__all__ = ["LayoutNet", "block", "residual"]


def block(name, branches):
    """A multi-branch block named ``name`` (see :class:`~inceptionzoo.blocks.Branches`)."""
    return ("block", name, branches)


def residual(name, branches, scale, relu=True):
    """An Inception-ResNet block named ``name`` (see
    :class:`~inceptionzoo.blocks.ScaledResidual`)."""
    return ("residual", name, branches, scale, relu)


class LayoutNet(ZooNet):
    """A network from a layout table (see the module's docstring).

    Parameters
    ----------
    layout : sequence
        The table.
    classes : int
        Output classes (0: none, the network returns its pooled features).
    fc_name : str
        Prefix (without ``_``) of the final dense layer: ``'fc'``, ``'last_linear'``, ...
    dropout : float
        Dropout before the dense layer (training only).
    default_hw : (int, int)
        The design input size.
    in_channels : int, default 3
        Input channels (timm's ``in_chans``).
    """

    in_channels = 3
    option_checks = {"dropout": RATE}

    def __init__(self, layout, classes, fc_name, dropout, default_hw, in_channels=3, **kwargs):
        super().__init__(**kwargs)
        self.classes = classes
        self.default_hw = tuple(default_hw)
        self.in_channels = in_channels
        self._layers = []
        c = self.in_channels
        with self.name_scope():
            for i, item in enumerate(layout):
                kind = item[0]
                if kind == "block":
                    layer = Branches(c, item[2], prefix=item[1] + "_")
                    c = layer.out_channels
                elif kind == "residual":
                    layer = ScaledResidual(c, item[2], item[3], relu=item[4],
                                           prefix=item[1] + "_")
                else:
                    layer, c = _make_step(item, c, f"pool{i}_")
                self.register_child(layer, f"layer{i}")
                # module names: the table's (blocks, convolutions), else the child's
                self._layers.append((item[1] if kind in ("block", "residual", "conv")
                                     else f"layer{i}", layer))
            self.num_features = c
            self.gap = nn.GlobalAvgPool2D(prefix="gap_")               # N x C x 1 x 1
            self.drop = nn.Dropout(dropout, prefix="drop_")
            self.fc = classifier_layer(classes, c, fc_name + "_")     # N x classes

    classifier_paths = ("fc",)

    def feature_layers(self):
        """The stem steps and blocks of the table, named as in the table (pools: ``layer<i>``;
        see :meth:`ZooNet.feature_layers`)."""
        return list(self._layers)

    def head_pool(self, x):
        """Global average pooling and dropout (see :meth:`ZooNet.head_pool`)."""
        return self.drop(self.gap(x))

    def hybrid_forward(self, F, x):
        return self.head(self.features(x))
