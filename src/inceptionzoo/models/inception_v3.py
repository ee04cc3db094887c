"""Inception-v3, from Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer
Vision" (https://arxiv.org/abs/1512.00567), in the layout of torchvision's ``inception_v3``
(which timm's ``inception_v3`` and gluoncv's ``inceptionv3`` share): BN (eps 1e-3) after every
convolution, the A/B/C/D/E blocks of torchvision's ``InceptionA`` ... ``InceptionE``, global
average pooling, one dense layer; the auxiliary head after ``Mixed_6e`` on request.

Layer names are torchvision's module names in lower case (``mixed_5b_branch5x5_1_conv_weight``
is ``Mixed_5b.branch5x5_1.conv.weight``).
"""
from mxnet.gluon import nn

from .._builder import FACTORY_DOC, build
from .._registry import register_model
from ..blocks import conv, conv_unit, pool, split
from ..checkpoint_filter import Source
from ..weights_spec import IMAGENET_1K, IMAGENET_MEAN, IMAGENET_STD, WeightsSpec
from ._base import FLAG
from ._layout import LayoutNet, block

__all__ = ["InceptionV3", "inception_v3", "INCEPTION_V3", "v3_a", "v3_b", "v3_c", "v3_d",
           "v3_e"]


def _1x7(name, c):
    return conv(name, c, (1, 7), 1, (0, 3))


def _7x1(name, c):
    return conv(name, c, (7, 1), 1, (3, 0))


def v3_a(pool_features):
    """Block A (torchvision ``InceptionA``), 35x35: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg-1x1.

    Parameters
    ----------
    pool_features : int
        Output channels of the pool branch's 1x1 projection (32, 64, 64).

    Returns
    -------
    list
        The branches, for :class:`~inceptionzoo.blocks.Branches`.
    """
    return [[conv("branch1x1", 64)],
            [conv("branch5x5_1", 48), conv("branch5x5_2", 64, 5, 1, 2)],
            [conv("branch3x3dbl_1", 64), conv("branch3x3dbl_2", 96, 3, 1, 1),
             conv("branch3x3dbl_3", 96, 3, 1, 1)],
            [pool("avg", 3, 1, 1), conv("branch_pool", pool_features)]]


def v3_b():
    """Block B (``InceptionB``), 35 -> 17: 3x3/2 | 1x1-3x3-3x3/2 | max-pool 3/2."""
    return [[conv("branch3x3", 384, 3, 2)],
            [conv("branch3x3dbl_1", 64), conv("branch3x3dbl_2", 96, 3, 1, 1),
             conv("branch3x3dbl_3", 96, 3, 2)],
            [pool("max", 3, 2)]]


def v3_c(c7):
    """Block C (``InceptionC``), 17x17, with factorised 7x7 convolutions.

    Parameters
    ----------
    c7 : int
        Width of the 1x7 / 7x1 convolutions inside the branches (128, 160, 160, 192).

    Returns
    -------
    list
        The branches, for :class:`~inceptionzoo.blocks.Branches`.
    """
    return [[conv("branch1x1", 192)],
            [conv("branch7x7_1", c7), _1x7("branch7x7_2", c7), _7x1("branch7x7_3", 192)],
            [conv("branch7x7dbl_1", c7), _7x1("branch7x7dbl_2", c7), _1x7("branch7x7dbl_3", c7),
             _7x1("branch7x7dbl_4", c7), _1x7("branch7x7dbl_5", 192)],
            [pool("avg", 3, 1, 1), conv("branch_pool", 192)]]


def v3_d():
    """Block D (``InceptionD``), 17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max-pool 3/2."""
    return [[conv("branch3x3_1", 192), conv("branch3x3_2", 320, 3, 2)],
            [conv("branch7x7x3_1", 192), _1x7("branch7x7x3_2", 192), _7x1("branch7x7x3_3", 192),
             conv("branch7x7x3_4", 192, 3, 2)],
            [pool("max", 3, 2)]]


def v3_e():
    """Block E (``InceptionE``), 8x8, with the 1x3 / 3x1 splits."""
    def pair(a, b):
        return split(conv(a, 384, (1, 3), 1, (0, 1)), conv(b, 384, (3, 1), 1, (1, 0)))

    return [[conv("branch1x1", 320)],
            [conv("branch3x3_1", 384), pair("branch3x3_2a", "branch3x3_2b")],
            [conv("branch3x3dbl_1", 448), conv("branch3x3dbl_2", 384, 3, 1, 1),
             pair("branch3x3dbl_3a", "branch3x3dbl_3b")],
            [pool("avg", 3, 1, 1), conv("branch_pool", 192)]]


# the whole network; shapes for a 299x299 input
INCEPTION_V3 = [
    conv("conv2d_1a_3x3", 32, 3, 2),       # N x 32 x 149 x 149
    conv("conv2d_2a_3x3", 32, 3),          # N x 32 x 147 x 147
    conv("conv2d_2b_3x3", 64, 3, 1, 1),    # N x 64 x 147 x 147
    pool("max", 3, 2),                     # N x 64 x 73 x 73
    conv("conv2d_3b_1x1", 80, 1),          # N x 80 x 73 x 73
    conv("conv2d_4a_3x3", 192, 3),         # N x 192 x 71 x 71
    pool("max", 3, 2),                     # N x 192 x 35 x 35
    block("mixed_5b", v3_a(32)),           # N x 256 x 35 x 35
    block("mixed_5c", v3_a(64)),           # N x 288 x 35 x 35
    block("mixed_5d", v3_a(64)),           # N x 288 x 35 x 35
    block("mixed_6a", v3_b()),             # N x 768 x 17 x 17
    block("mixed_6b", v3_c(128)),          # N x 768 x 17 x 17
    block("mixed_6c", v3_c(160)),
    block("mixed_6d", v3_c(160)),
    block("mixed_6e", v3_c(192)),          # N x 768 x 17 x 17 (the aux head reads this)
    block("mixed_7a", v3_d()),             # N x 1280 x 8 x 8
    block("mixed_7b", v3_e()),             # N x 2048 x 8 x 8
    block("mixed_7c", v3_e()),             # N x 2048 x 8 x 8
]


class _AuxHead(nn.HybridBlock):
    """torchvision's ``InceptionAux``: avg-pool 5/3, 1x1 conv 128, 5x5 conv 768, global
    average pool, dense."""

    def __init__(self, in_channels, classes, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.pool = nn.AvgPool2D(5, 3, prefix="pool_")                 # N x 768 x 5 x 5
            self.conv0 = conv_unit(128, 1, in_channels, batch_norm=True, prefix="conv0_")
            self.conv1 = conv_unit(768, 5, 128, batch_norm=True, prefix="conv1_")  # 1 x 1
            self.gap = nn.GlobalAvgPool2D(prefix="gap_")
            self.fc = nn.Dense(classes, in_units=768, prefix="fc_")

    def hybrid_forward(self, F, x):
        return self.fc(self.gap(self.conv1(self.conv0(self.pool(x)))))


class InceptionV3(LayoutNet):
    """Inception-v3 (torchvision / timm / gluoncv layout).

    Parameters
    ----------
    classes : int, default 1000
    aux_logits : bool, default False
        Add the auxiliary classifier after ``mixed_6e`` (training); the network then returns
        ``(logits, aux)`` in every mode (a hybridized graph has one set of outputs) and needs
        inputs of at least 299x299 (the head's 5x5 convolution must fit). The trunk's names
        do not change, so weights move between the two builds with ``ignore_extra=True``.
    dropout : float, default 0.5
        Before the final dense layer (training only).
    in_channels : int, default 3
        Input channels (timm's ``in_chans``).

    The network has no ``transform_input`` step: it takes the normalisation its weights were
    trained with, recorded as ``net.info.mean`` / ``std`` (torchvision's Google weights:
    ``(x - 0.5) / 0.5``, which is what torchvision's ``transform_input=True`` computes from
    ImageNet-normalised input).
    """

    classifier_paths = ("fc", "auxlogits.fc")
    option_checks = {"aux_logits": FLAG}

    def __init__(self, classes=1000, aux_logits=False, dropout=0.5, **kwargs):
        super().__init__(INCEPTION_V3, classes, "fc", dropout, (299, 299), **kwargs)
        self.aux_logits = aux_logits
        if aux_logits:  # its avg-pool 5/3 and 5x5 conv need the 17x17 map of mixed_6e
            with self.name_scope():
                self.auxlogits = _AuxHead(768, classes, prefix="auxlogits_")

    def hybrid_forward(self, F, x):
        aux = None
        for name, layer in self._layers:
            x = layer(x)
            if self.aux_logits and name == "mixed_6e":
                aux = self.auxlogits(x)
        x = self.head(x)
        return (x, aux) if self.aux_logits else x


def _spec(tag, source, resize, crop_pct, interpolation, mean=(0.5,) * 3, std=(0.5,) * 3):
    return WeightsSpec("inception_v3", 1000, (3, 299, 299), resize, mean, std, source,
                       crop_pct=crop_pct, interpolation=interpolation, class_names=IMAGENET_1K,
                       tag=tag)


#: torchvision's ``Inception_V3_Weights.IMAGENET1K_V1`` (resize 342, crop 299, bilinear; its
#: ``transform_input`` folds ImageNet normalisation into (x - 0.5) / 0.5), timm's default
#: ``pretrained_cfg`` (crop_pct 0.875 -> floor(299 / 0.875) = 341, bicubic) and gluoncv's
#: ``inceptionv3`` (ImageNet mean / std, resize ceil(299 / 0.875) = 342, bilinear)
#: by tag (``get_model('inception_v3', pretrained='timm_in1k')``); the first is the default
_WEIGHTS = [_spec("tv_in1k", "torchvision:inception_v3", 342, 299 / 342, "bilinear"),
            _spec("timm_in1k", "timm:inception_v3", 341, 0.875, "bicubic"),
            _spec("gluon_in1k", "gluoncv:inceptionv3", 342, 0.875, "bilinear", IMAGENET_MEAN,
                  IMAGENET_STD)]

#: checkpoint filters: torchvision's and timm's names are ours in lower case (their aux head
#: converts with ``aux_logits=True`` only); gluoncv's file maps by position
_SOURCES = {"torchvision:inception_v3": Source(aux_prefix="AuxLogits."),
            "timm:inception_v3": Source(aux_prefix="AuxLogits."),
            "gluoncv:inceptionv3": Source(classifier="output.weight")}


@register_model(description="Inception-v3, torchvision/timm/gluoncv layout (BN, aux head "
                            "optional)",
                input_shape=(3, 299, 299), paper="Szegedy et al. 2015, arXiv:1512.00567",
                classes=1000,
                variant="factorised", weights=_WEIGHTS, sources=_SOURCES,
                example_options=[{"aux_logits": True}, {"classes": 10}, {"in_channels": 1}],
                published_gmacs=5.713)  # torchvision's Inception_V3_Weights metadata (_ops)
def inception_v3(classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    return build("inception_v3", InceptionV3, classes, pretrained, root, ctx, **kwargs)


inception_v3.__doc__ = FACTORY_DOC.format(
    title="Inception-v3", cls="InceptionV3", classes=1000,
    where="its default tag, tv_in1k: inception_v3.tv_in1k.params in the weights folder",
    note=" No weights ship: convert a checkpoint (docs/weights.md).")
