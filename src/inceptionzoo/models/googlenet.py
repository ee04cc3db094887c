"""GoogLeNet, from Szegedy et al. 2014, "Going Deeper with Convolutions"
(https://arxiv.org/abs/1409.4842), Table 1, built from :class:`inceptionzoo.blocks.Inception`.

Deliberate deviations from the paper, all documented in docs/cost.md:

- no local response normalisation (the paper has LRN after the first pool and after conv2;
  later work, torchvision and gluoncv all drop it);
- max-pools use ceil mode, as Caffe did, so 224 -> 112 -> 56 -> 28 -> 14 -> 7 as in Table 1;
- ``batch_norm=True`` adds batch norm after every convolution (not in the paper).

Unlike torchvision's and gluoncv's GoogLeNet, the 5x5 branch really is a 5x5 convolution.
"""
from mxnet.gluon import nn

from .._builder import FACTORY_DOC, build
from .._registry import register_model
from ..blocks import Inception, conv_unit
from ..checkpoint_filter import Source
from ..weights_spec import IMAGENET_1K, IMAGENET_MEAN, IMAGENET_STD, WeightsSpec
from ._base import COUNT, FLAG, ODD_COUNT, RATE, ZooNet, classifier_layer

__all__ = ["GoogLeNet", "googlenet", "googlenet_bn", "GOOGLENET_BLOCKS", "PAPER_TABLE1"]

# name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), Table 1 of the paper
GOOGLENET_BLOCKS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

# Table 1's "params" (K = 1024 weights) and "ops" (millions of multiply-adds) per row, as printed
PAPER_TABLE1 = {
    "conv1": (2.7, 34), "conv2": (112, 360),
    "inception3a": (159, 128), "inception3b": (380, 304),
    "inception4a": (364, 73), "inception4b": (437, 88), "inception4c": (463, 100),
    "inception4d": (580, 119), "inception4e": (840, 170),
    "inception5a": (1072, 54), "inception5b": (1388, 71),
    "output": (1000, 1),
}


class _AuxHead(nn.HybridBlock):
    """Auxiliary classifier of the paper: avg-pool 5/3, 1x1 conv 128, FC 1024, dropout 0.7."""

    def __init__(self, in_channels, classes, batch_norm, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.pool = nn.AvgPool2D(5, 3, prefix="pool_")                 # N x C x 4 x 4
            self.conv = conv_unit(128, 1, in_channels, batch_norm=batch_norm, prefix="conv_")
            self.fc1 = nn.Dense(1024, activation="relu", in_units=128 * 4 * 4, prefix="fc1_")
            self.drop = nn.Dropout(0.7, prefix="drop_")
            self.fc2 = nn.Dense(classes, in_units=1024, prefix="fc2_")

    def hybrid_forward(self, F, x):
        return self.fc2(self.drop(self.fc1(self.conv(self.pool(x)))))


class GoogLeNet(ZooNet):
    """GoogLeNet (Inception v1).

    Parameters
    ----------
    classes : int, default 1000
    batch_norm : bool, default False
        Batch norm after every convolution.
    aux_logits : bool, default False
        Add the two auxiliary classifiers (after 4a and 4d) for training; the network then
        returns ``(logits, aux2, aux1)`` (torchvision's and gluoncv's order) in every mode,
        since a hybridized Gluon graph has one set of outputs. Build without them (the
        default) for inference and export: the trunk's parameter names are the same, so
        ``load_parameters(..., ignore_extra=True)`` moves trained weights over.
    dropout : float, default 0.4
    b5_kernel : int, default 5
        Kernel of the Inception blocks' "5x5" branch (torchvision / gluoncv: 3).
    pool4_size : int, default 3
        Kernel (and stride 2) of the max-pool after 4e (torchvision / gluoncv: 2).
    in_channels : int, default 3
        Input channels (timm's ``in_chans``).
    """

    in_channels = 3
    default_hw = (224, 224)
    option_checks = {"batch_norm": FLAG, "aux_logits": FLAG, "dropout": RATE,
                     "b5_kernel": ODD_COUNT, "pool4_size": COUNT}

    def __init__(self, classes=1000, batch_norm=False, aux_logits=False, dropout=0.4,
                 b5_kernel=5, pool4_size=3, in_channels=3, **kwargs):
        super().__init__(**kwargs)
        self.classes = classes
        self.in_channels = in_channels
        self.aux_logits = aux_logits  # their dense layers need a 4x4 map after 4a / 4d
        bn = batch_norm
        with self.name_scope():
            self.conv1 = conv_unit(64, 7, in_channels, strides=2, padding=3, batch_norm=bn,
                                   prefix="conv1_")                          # N x 64 x 112 x 112
            self.pool1 = nn.MaxPool2D(3, 2, ceil_mode=True, prefix="pool1_")  # N x 64 x 56 x 56
            self.conv2red = conv_unit(64, 1, 64, batch_norm=bn, prefix="conv2red_")
            self.conv2 = conv_unit(192, 3, 64, padding=1, batch_norm=bn,
                                   prefix="conv2_")                          # N x 192 x 56 x 56
            self.pool2 = nn.MaxPool2D(3, 2, ceil_mode=True, prefix="pool2_")  # N x 192 x 28 x 28
            c = 192
            for name, widths in GOOGLENET_BLOCKS.items():
                block = Inception(c, *widths, batch_norm=bn, b5_kernel=b5_kernel,
                                  prefix=f"inception{name}_")
                setattr(self, f"inception{name}", block)
                c = block.out_channels
                if name == "3b":
                    self.pool3 = nn.MaxPool2D(3, 2, ceil_mode=True, prefix="pool3_")  # 14x14
                elif name == "4e":
                    self.pool4 = nn.MaxPool2D(pool4_size, 2, ceil_mode=True,
                                              prefix="pool4_")                       # 7x7
            self.gap = nn.GlobalAvgPool2D(prefix="gap_")                      # N x 1024 x 1 x 1
            self.drop = nn.Dropout(dropout, prefix="drop_")
            self.num_features = c
            self.output = classifier_layer(classes, c, "output_")
            if aux_logits:
                self.aux1 = _AuxHead(512, classes, bn, prefix="aux1_")
                self.aux2 = _AuxHead(528, classes, bn, prefix="aux2_")

    classifier_paths = ("output", "aux1.fc2", "aux2.fc2")

    def feature_layers(self):
        """conv1 ... inception5b with the pools between them (see
        :meth:`ZooNet.feature_layers`)."""
        names = (["conv1", "pool1", "conv2red", "conv2", "pool2", "inception3a", "inception3b",
                  "pool3"] + [f"inception4{c}" for c in "abcde"]
                 + ["pool4", "inception5a", "inception5b"])
        return [(n, getattr(self, n)) for n in names]

    def head_pool(self, x):
        """Global average pooling and dropout (see :meth:`ZooNet.head_pool`)."""
        return self.drop(self.gap(x))

    def hybrid_forward(self, F, x):
        aux = []
        for name, layer in self.feature_layers():
            x = layer(x)
            if self.aux_logits and name in ("inception4a", "inception4d"):
                aux.insert(0, (self.aux1 if name == "inception4a" else self.aux2)(x))
        x = self.head(x)
        return (x, *aux) if self.aux_logits else x


#: torchvision's ``GoogLeNet_Weights.IMAGENET1K_V1`` (resize 256, crop 224, bilinear; its
#: ``transform_input`` folds ImageNet normalisation into (x - 0.5) / 0.5) and gluoncv's
#: ``googlenet`` (ImageNet mean / std, resize ceil(224 / 0.875) = 256)
_GOOGLENET_BN_WEIGHTS = [
    WeightsSpec("googlenet_bn", 1000, (3, 224, 224), 256, (0.5,) * 3, (0.5,) * 3,
                "torchvision:googlenet", crop_pct=0.875, interpolation="bilinear",
                class_names=IMAGENET_1K, tag="tv_in1k"),
    WeightsSpec("googlenet_bn", 1000, (3, 224, 224), 256, IMAGENET_MEAN, IMAGENET_STD,
                "gluoncv:googlenet", crop_pct=0.875, interpolation="bilinear",
                class_names=IMAGENET_1K, tag="gluon_in1k"),
]

#: checkpoint filters: torchvision's names -> ours (its aux heads are not converted); gluoncv's
#: file maps by position, without its ``head.*`` aliases
_GOOGLENET_BN_SOURCES = {
    "torchvision:googlenet": Source(renames=(
        (r"^conv2\.", "conv2red."), (r"^conv3\.", "conv2."), (r"^fc\.", "output."),
        (r"\.branch1\.", ".b1."), (r"\.branch2\.0\.", ".b3red."), (r"\.branch2\.1\.", ".b3."),
        (r"\.branch3\.0\.", ".b5red."), (r"\.branch3\.1\.", ".b5."),
        (r"\.branch4\.1\.", ".proj.")), drop=r"^aux[12]\."),
    "gluoncv:googlenet": Source(classifier="output.weight", drop=r"^head\."),
}


@register_model(description="GoogLeNet (Inception v1), Table 1 of the paper, real 5x5 branches",
                input_shape=(3, 224, 224), classes=1000, variant="reduced",
                paper="Szegedy et al. 2014, arXiv:1409.4842",
                example_options=[{"batch_norm": True}, {"aux_logits": True},
                                 {"classes": 10, "dropout": 0.2}, {"in_channels": 1, "classes": 0}])
def googlenet(classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    return build("googlenet", GoogLeNet, classes, pretrained, root, ctx, **kwargs)


googlenet.__doc__ = FACTORY_DOC.format(
    title="GoogLeNet as in the paper", cls="GoogLeNet", classes=1000,
    where="it declares none: pretrained=True is an error",
    note=" No weights ship and no checkpoint converts to this layout (see googlenet_bn).")


@register_model(description="GoogLeNet as torchvision and gluoncv build it: BN, 3x3 in the "
                            "\"5x5\" branch, 2x2 pool after 4e",
                input_shape=(3, 224, 224), classes=1000, variant="reduced",
                paper="Szegedy et al. 2014, arXiv:1409.4842; "
                "torchvision googlenet", weights=_GOOGLENET_BN_WEIGHTS,
                sources=_GOOGLENET_BN_SOURCES,
                example_options=[{"classes": 10}, {"b5_kernel": 5}, {"aux_logits": True}],
                published_gmacs=1.498)  # torchvision's GoogLeNet_Weights metadata (_ops)
def googlenet_bn(classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    # torchvision's googlenet(aux_logits=False), = gluoncv's googlenet at 224x224
    for key, value in dict(batch_norm=True, b5_kernel=3, pool4_size=2, dropout=0.2).items():
        kwargs.setdefault(key, value)
    return build("googlenet_bn", GoogLeNet, classes, pretrained, root, ctx, **kwargs)


googlenet_bn.__doc__ = FACTORY_DOC.format(
    title="torchvision's GoogLeNet", cls="GoogLeNet", classes=1000,
    where="its default tag, tv_in1k: googlenet_bn.tv_in1k.params in the weights folder",
    note=" No weights ship: convert a checkpoint (docs/weights.md).")
