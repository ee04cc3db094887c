import os

import mxnet as mx
import pytest

from inceptionzoo.blocks import Inception, NaiveInception

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_DIR = os.environ.get("INCEPTIONZOO_TEST_MNIST",
                           os.path.join(ROOT, "..", "shared", "data", "mnist"))


def inception_blocks(block):
    """Every Inception block (either variant) inside ``block``."""
    found = [block] if isinstance(block, (Inception, NaiveInception)) else []
    for child in block._children.values():
        found += inception_blocks(child)
    return found


def built(name, batch=2, seed=0, **kwargs):
    """A registered model, initialised, with a random input batch of its design shape."""
    from inceptionzoo import get_model

    mx.random.seed(seed)
    net = get_model(name, **kwargs)
    net.initialize(mx.init.Xavier(magnitude=2))
    x = mx.nd.random.uniform(shape=(batch,) + tuple(net.info.input_shape))
    return net, x


@pytest.fixture(scope="session")
def mnist_dir():
    if not os.path.isfile(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz")):
        pytest.fail(f"real MNIST not found in {MNIST_DIR} (set INCEPTIONZOO_TEST_MNIST)")
    return MNIST_DIR
