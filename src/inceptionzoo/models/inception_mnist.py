"""The seed blog's MNIST network and its naive-block twin.

Stem conv 8@3x3 (pad 1, no activation, as in the seed) -> Inception(8) -> max-pool 3/2 ->
Inception(16) -> max-pool 3/2 -> Inception(16) -> dense. ``inception_mnist`` uses the
dimension-reduced block of the seed; ``inception_naive_mnist`` the naive block in the same
skeleton.
"""
from mxnet.gluon import nn

from .._builder import FACTORY_DOC, build
from .._registry import register_model
from ..errors import InceptionZooError
from ..blocks import Inception, NaiveInception
from ..weights import shipped_spec
from ._base import ZooNet, classifier_layer

__all__ = ["InceptionMNIST", "inception_mnist", "inception_naive_mnist"]


class InceptionMNIST(ZooNet):
    """The seed network.

    Parameters
    ----------
    block : {'reduced', 'naive'}
        Which Inception block to stack.
    classes : int, default 10
        Output classes (0: none, the network returns the flattened 6x6 map of its last block).
    in_channels : int, default 1
        Input channels (timm's ``in_chans``).
    """

    default_hw = (28, 28)
    head_hw = (6, 6)  # the dense layer takes the flattened 6x6 map of a 28x28 input

    def __init__(self, block="reduced", classes=10, in_channels=1, **kwargs):
        super().__init__(**kwargs)
        if block == "reduced":
            make = Inception.uniform
        elif block == "naive":
            make = NaiveInception
        else:
            raise InceptionZooError(f"block must be 'reduced' or 'naive'; got {block!r}")
        self.in_channels = in_channels
        self.classes = classes
        with self.name_scope():
            # N x 8 x 28 x 28; the seed has no activation after the stem
            self.stem = nn.Conv2D(8, 3, padding=1, in_channels=in_channels, prefix="stem_")
            self.block1 = make(8, 8, prefix="block1_")  # N x 32 (naive: 32) x 28 x 28
            self.pool1 = nn.MaxPool2D(3, 2, prefix="pool1_")  # N x C x 13 x 13
            self.block2 = make(self.block1.out_channels, 16, prefix="block2_")  # N x 64 (80)
            self.pool2 = nn.MaxPool2D(3, 2, prefix="pool2_")  # N x C x 6 x 6
            self.block3 = make(self.block2.out_channels, 16, prefix="block3_")  # N x 64 (128)
            h, w = self.head_hw
            self.num_features = self.block3.out_channels * h * w  # the flattened 6x6 map
            self.output = classifier_layer(classes, self.num_features, "output_")

    def feature_layers(self):
        """Stem, the three blocks and the two pools between them (see
        :meth:`ZooNet.feature_layers`)."""
        return [("stem", self.stem), ("block1", self.block1), ("pool1", self.pool1),
                ("block2", self.block2), ("pool2", self.pool2), ("block3", self.block3)]

    def head_pool(self, x):
        """None: the dense layer takes the whole 6x6 map, flattened (see
        :meth:`ZooNet.head_pool`)."""
        return x

    def hybrid_forward(self, F, x):
        return self.head(self.features(x))


_MNIST = dict(input_shape=(1, 28, 28), classes=10,
              paper="seed blog (2018), after Szegedy et al. 2014 fig. 2")


def _block(name, block, kwargs):
    """The options with the model's block; ``block`` is the model's choice, not an option."""
    if "block" in kwargs:
        raise InceptionZooError(f"{name} is the network with {block!r} blocks: it takes no "
                                f"option 'block' (got {kwargs['block']!r}); the other block is "
                                "the other model (inception_mnist, inception_naive_mnist)")
    return dict(kwargs, block=block)


@register_model(description="Seed MNIST network, three dimension-reduced Inception blocks",
                variant="reduced", weights=[shipped_spec("inception_mnist", "mnist")],
                example_options=[{"classes": 5}, {"in_channels": 3},
                                 {"in_channels": 3, "classes": 4}, {"classes": 0}], **_MNIST)
def inception_mnist(classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    return build("inception_mnist", InceptionMNIST, classes, pretrained, root, ctx,
                 **_block("inception_mnist", "reduced", kwargs))


@register_model(description="Seed MNIST skeleton with naive Inception blocks",
                variant="naive", weights=[shipped_spec("inception_naive_mnist", "mnist")],
                example_options=[{"classes": 5}, {"in_channels": 3}], **_MNIST)
def inception_naive_mnist(classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    return build("inception_naive_mnist", InceptionMNIST, classes, pretrained, root, ctx,
                 **_block("inception_naive_mnist", "naive", kwargs))


inception_mnist.__doc__ = FACTORY_DOC.format(
    title="The seed blog's MNIST network (reduced blocks)", cls="InceptionMNIST",
    classes=10, where="its tag mnist: the shipped file", note="")
inception_naive_mnist.__doc__ = FACTORY_DOC.format(
    title="The seed skeleton with naive blocks", cls="InceptionMNIST", classes=10,
    where="its tag mnist: the shipped file", note="")
