import json

import mxnet as mx
import numpy as np
import pytest

from conftest import built
from inceptionzoo.quantization import quantize


@pytest.mark.slow
def test_int8_keeps_the_shipped_accuracy(mnist_dir):
    """INT8 is offered only because it is correct: calibrated on 1,000 real training digits, the
    quantized shipped network stays within 0.3 points of float32 and agrees on >= 99.5%."""
    from inceptionzoo import get_model
    from inceptionzoo.mnist import load_mnist, to_input
    train_x, _ = load_mnist(mnist_dir, train=True)
    test_x, test_y = load_mnist(mnist_dir, train=False)
    net = get_model("inception_mnist", pretrained=True)
    qnet = quantize(net, to_input(train_x[:1000]))
    p32, p8 = [], []
    for i in range(0, len(test_x), 1000):
        x = mx.nd.array(to_input(test_x[i:i + 1000]))
        p32.append(net(x).argmax(axis=1).asnumpy())
        p8.append(qnet(x).argmax(axis=1).asnumpy())
    p32, p8 = np.concatenate(p32), np.concatenate(p8)
    acc32, acc8 = (p32 == test_y).mean(), (p8 == test_y).mean()
    assert abs(acc8 - acc32) <= 0.003, (acc32, acc8)
    assert (p32 == p8).mean() >= 0.995
    assert any(n["op"].startswith("_sg_mkldnn") or "quantize" in n["op"]
               for n in json.loads(qnet._cached_graph[1].tojson())["nodes"])


def test_quantize_refuses_bad_calibration():
    net, _ = built("inception_mnist")
    with pytest.raises(ValueError, match=r"non-empty \(N, C, H, W\) array; got shape \(28, 28\)"):
        quantize(net, np.zeros((28, 28)))
