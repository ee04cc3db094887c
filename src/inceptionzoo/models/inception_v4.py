"""Inception-v4 and Inception-ResNet-v2, from Szegedy et al. 2016, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning"
(https://arxiv.org/abs/1602.07261), in the layout of timm's ``inception_v4`` and
``inception_resnet_v2`` (ports of the TF-slim networks): BN (eps 1e-3) after every convolution
of the branches, average pools that do not count padding, global average pooling, one dense
layer.

Layer names: Inception-ResNet-v2 keeps timm's module names (``repeat_1_3_branch1_0_conv_weight``
is ``repeat_1.3.branch1.0.conv.weight``); Inception-v4 names timm's ``features.<i>`` by what
they are (``INCEPTION_V4_NAMES``) and keeps the names inside the blocks.
"""
from .._builder import FACTORY_DOC, build
from .._registry import register_model
from ..blocks import conv, pool, split
from ..checkpoint_filter import Source
from ..transforms import resize_size_for
from ..weights_spec import IMAGENET_1K, WeightsSpec
from ._layout import LayoutNet, block, residual

__all__ = ["InceptionV4", "InceptionResNetV2", "inception_v4", "inception_resnet_v2",
           "INCEPTION_V4", "INCEPTION_V4_NAMES", "INCEPTION_RESNET_V2"]


def _1xk(name, c, k):
    return conv(name, c, (1, k), 1, (0, k // 2))


def _kx1(name, c, k):
    return conv(name, c, (k, 1), 1, (k // 2, 0))


def _avg():
    return pool("avg", 3, 1, 1, count_include_pad=False)


# --- Inception-v4: stem (figure 3 of the paper), A/B/C blocks and the two reductions ---------

V4_MIXED_3A = [[pool("max", 3, 2)], [conv("conv", 96, 3, 2)]]
V4_MIXED_4A = [[conv("branch0_0", 64), conv("branch0_1", 96, 3)],
               [conv("branch1_0", 64), _1xk("branch1_1", 64, 7), _kx1("branch1_2", 64, 7),
                conv("branch1_3", 96, 3)]]
V4_MIXED_5A = [[conv("conv", 192, 3, 2)], [pool("max", 3, 2)]]
V4_A = [[conv("branch0", 96)],
        [conv("branch1_0", 64), conv("branch1_1", 96, 3, 1, 1)],
        [conv("branch2_0", 64), conv("branch2_1", 96, 3, 1, 1), conv("branch2_2", 96, 3, 1, 1)],
        [_avg(), conv("branch3_1", 96)]]
V4_REDUCTION_A = [[conv("branch0", 384, 3, 2)],
                  [conv("branch1_0", 192), conv("branch1_1", 224, 3, 1, 1),
                   conv("branch1_2", 256, 3, 2)],
                  [pool("max", 3, 2)]]
V4_B = [[conv("branch0", 384)],
        [conv("branch1_0", 192), _1xk("branch1_1", 224, 7), _kx1("branch1_2", 256, 7)],
        [conv("branch2_0", 192), _kx1("branch2_1", 192, 7), _1xk("branch2_2", 224, 7),
         _kx1("branch2_3", 224, 7), _1xk("branch2_4", 256, 7)],
        [_avg(), conv("branch3_1", 128)]]
V4_REDUCTION_B = [[conv("branch0_0", 192), conv("branch0_1", 192, 3, 2)],
                  [conv("branch1_0", 256), _1xk("branch1_1", 256, 7), _kx1("branch1_2", 320, 7),
                   conv("branch1_3", 320, 3, 2)],
                  [pool("max", 3, 2)]]
V4_C = [[conv("branch0", 256)],
        [conv("branch1_0", 384), split(_1xk("branch1_1a", 256, 3), _kx1("branch1_1b", 256, 3))],
        [conv("branch2_0", 384), _kx1("branch2_1", 448, 3), _1xk("branch2_2", 512, 3),
         split(_1xk("branch2_3a", 256, 3), _kx1("branch2_3b", 256, 3))],
        [_avg(), conv("branch3_1", 256)]]

#: zoo name of each of timm's ``features.<i>``
INCEPTION_V4_NAMES = (["conv1a", "conv2a", "conv2b", "mixed_3a", "mixed_4a", "mixed_5a"]
                      + [f"a_{i}" for i in range(4)] + ["reduction_a"]
                      + [f"b_{i}" for i in range(7)] + ["reduction_b"]
                      + [f"c_{i}" for i in range(3)])

# shapes for a 299x299 input
INCEPTION_V4 = ([conv("conv1a", 32, 3, 2),                     # N x 32 x 149 x 149
                 conv("conv2a", 32, 3),                        # N x 32 x 147 x 147
                 conv("conv2b", 64, 3, 1, 1),                  # N x 64 x 147 x 147
                 block("mixed_3a", V4_MIXED_3A),               # N x 160 x 73 x 73
                 block("mixed_4a", V4_MIXED_4A),               # N x 192 x 71 x 71
                 block("mixed_5a", V4_MIXED_5A)]               # N x 384 x 35 x 35
                + [block(f"a_{i}", V4_A) for i in range(4)]    # N x 384 x 35 x 35
                + [block("reduction_a", V4_REDUCTION_A)]       # N x 1024 x 17 x 17
                + [block(f"b_{i}", V4_B) for i in range(7)]    # N x 1024 x 17 x 17
                + [block("reduction_b", V4_REDUCTION_B)]       # N x 1536 x 8 x 8
                + [block(f"c_{i}", V4_C) for i in range(3)])   # N x 1536 x 8 x 8


# --- Inception-ResNet-v2 ----------------------------------------------------------------------

IRV2_MIXED_5B = [[conv("branch0", 96)],
                 [conv("branch1_0", 48), conv("branch1_1", 64, 5, 1, 2)],
                 [conv("branch2_0", 64), conv("branch2_1", 96, 3, 1, 1),
                  conv("branch2_2", 96, 3, 1, 1)],
                 [_avg(), conv("branch3_1", 64)]]
IRV2_BLOCK35 = [[conv("branch0", 32)],
                [conv("branch1_0", 32), conv("branch1_1", 32, 3, 1, 1)],
                [conv("branch2_0", 32), conv("branch2_1", 48, 3, 1, 1),
                 conv("branch2_2", 64, 3, 1, 1)]]
IRV2_MIXED_6A = [[conv("branch0", 384, 3, 2)],
                 [conv("branch1_0", 256), conv("branch1_1", 256, 3, 1, 1),
                  conv("branch1_2", 384, 3, 2)],
                 [pool("max", 3, 2)]]
IRV2_BLOCK17 = [[conv("branch0", 192)],
                [conv("branch1_0", 128), _1xk("branch1_1", 160, 7), _kx1("branch1_2", 192, 7)]]
IRV2_MIXED_7A = [[conv("branch0_0", 256), conv("branch0_1", 384, 3, 2)],
                 [conv("branch1_0", 256), conv("branch1_1", 288, 3, 2)],
                 [conv("branch2_0", 256), conv("branch2_1", 288, 3, 1, 1),
                  conv("branch2_2", 320, 3, 2)],
                 [pool("max", 3, 2)]]
IRV2_BLOCK8 = [[conv("branch0", 192)],
               [conv("branch1_0", 192), _1xk("branch1_1", 224, 3), _kx1("branch1_2", 256, 3)]]

# shapes for a 299x299 input
INCEPTION_RESNET_V2 = (
    [conv("conv2d_1a", 32, 3, 2),                                        # N x 32 x 149 x 149
     conv("conv2d_2a", 32, 3),                                           # N x 32 x 147 x 147
     conv("conv2d_2b", 64, 3, 1, 1),                                     # N x 64 x 147 x 147
     pool("max", 3, 2),                                                  # N x 64 x 73 x 73
     conv("conv2d_3b", 80),                                              # N x 80 x 73 x 73
     conv("conv2d_4a", 192, 3),                                          # N x 192 x 71 x 71
     pool("max", 3, 2),                                                  # N x 192 x 35 x 35
     block("mixed_5b", IRV2_MIXED_5B)]                                   # N x 320 x 35 x 35
    + [residual(f"repeat_{i}", IRV2_BLOCK35, 0.17) for i in range(10)]   # N x 320 x 35 x 35
    + [block("mixed_6a", IRV2_MIXED_6A)]                                 # N x 1088 x 17 x 17
    + [residual(f"repeat_1_{i}", IRV2_BLOCK17, 0.10) for i in range(20)]
    + [block("mixed_7a", IRV2_MIXED_7A)]                                 # N x 2080 x 8 x 8
    + [residual(f"repeat_2_{i}", IRV2_BLOCK8, 0.20) for i in range(9)]
    + [residual("block8", IRV2_BLOCK8, 1.0, relu=False),
       conv("conv2d_7b", 1536)])                                         # N x 1536 x 8 x 8


class _TimmNet(LayoutNet):
    """A timm network at 299x299 from its table (``layout``) and classifier name.

    Parameters
    ----------
    classes : int, default 1000
    dropout : float, default 0.0
        Before the final dense layer (timm's ``drop_rate``; training only).
    in_channels : int, default 3
        Input channels (timm's ``in_chans``).
    """

    layout = ()
    fc_name = ""

    def __init__(self, classes=1000, dropout=0.0, **kwargs):
        super().__init__(self.layout, classes, self.fc_name, dropout, (299, 299), **kwargs)


class InceptionV4(_TimmNet):
    __doc__ = "Inception-v4 (timm layout)." + _TimmNet.__doc__.split(".", 1)[1]
    layout, fc_name = INCEPTION_V4, "last_linear"


class InceptionResNetV2(_TimmNet):
    __doc__ = "Inception-ResNet-v2 (timm layout)." + _TimmNet.__doc__.split(".", 1)[1]
    layout, fc_name = INCEPTION_RESNET_V2, "classif"


def _timm_spec(name, crop_pct):
    """timm's default ``pretrained_cfg`` of ``name``: 299x299, (x - 0.5) / 0.5, bicubic, resize
    floor(299 / crop_pct)."""
    return WeightsSpec(name, 1000, (3, 299, 299), resize_size_for(299, crop_pct), (0.5,) * 3,
                       (0.5,) * 3, f"timm:{name}", crop_pct=crop_pct, interpolation="bicubic",
                       class_names=IMAGENET_1K, tag="timm_in1k")


_V4 = dict(input_shape=(3, 299, 299), classes=1000,
           paper="Szegedy et al. 2016, arXiv:1602.07261")
_DOC = dict(classes=1000, note=" No weights ship: convert a checkpoint (docs/weights.md).")

#: checkpoint filters: timm's ``features.<i>.`` -> our block names; Inception-ResNet-v2's names
#: are ours in lower case
_V4_SOURCES = {"timm:inception_v4": Source(
    renames=tuple((rf"^features\.{i}\.", name + ".") for i, name in enumerate(INCEPTION_V4_NAMES)),
    classifier="last_linear.weight")}
_IRV2_SOURCES = {"timm:inception_resnet_v2": Source(classifier="classif.weight")}


@register_model(description="Inception-v4, timm layout", variant="v4",
                weights=[_timm_spec("inception_v4", 0.875)], sources=_V4_SOURCES,
                example_options=[{"classes": 10}, {"in_channels": 4}],
                published_gmacs=12.254, **_V4)  # timm 1.0.31: FlopCounterMode / 2 at 299x299
def inception_v4(classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    return build("inception_v4", InceptionV4, classes, pretrained, root, ctx, **kwargs)


inception_v4.__doc__ = FACTORY_DOC.format(
    title="Inception-v4", cls="InceptionV4",
    where="its tag timm_in1k: inception_v4.timm_in1k.params in the weights folder", **_DOC)


@register_model(description="Inception-ResNet-v2, timm layout", variant="resnet",
                weights=[_timm_spec("inception_resnet_v2", 0.8975)], sources=_IRV2_SOURCES,
                example_options=[{"classes": 10}, {"classes": 0}],
                published_gmacs=13.156, **_V4)  # timm 1.0.31: FlopCounterMode / 2 at 299x299
def inception_resnet_v2(classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    return build("inception_resnet_v2", InceptionResNetV2, classes, pretrained, root, ctx,
                 **kwargs)


inception_resnet_v2.__doc__ = FACTORY_DOC.format(
    title="Inception-ResNet-v2", cls="InceptionResNetV2",
    where="its tag timm_in1k: inception_resnet_v2.timm_in1k.params in the weights folder",
    **_DOC)
