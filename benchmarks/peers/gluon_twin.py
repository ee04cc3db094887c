"""The MXNet side of the PyTorch twin (benchmarks/peers/torch_inception.py): a zoo network's
layers as a JSON-ready description and its weights as arrays, written to files for the PyTorch
worker, which never imports MXNet (or inceptionzoo)."""
import numpy as np


def _conv(conv, arrays):
    key = f"w{len(arrays)}"
    arrays[key + "_weight"] = conv.weight.data().asnumpy()
    arrays[key + "_bias"] = conv.bias.data().asnumpy()
    k = conv._kwargs
    return {"conv": key, "stride": list(k["stride"]), "pad": list(k["pad"]),
            "relu": conv.act is not None}


def _pool(pool):
    k = pool._kwargs
    return {"pool": list(k["kernel"]), "stride": list(k["stride"]), "pad": list(k["pad"]),
            "ceil": k["pooling_convention"] == "full"}


def _block(block, arrays):
    from inceptionzoo.blocks import NaiveInception

    naive = isinstance(block, NaiveInception)
    names = ("b1", "b3", "b5") if naive else ("b1", "b3red", "b3", "b5red", "b5", "proj")
    out = {"block": {n: _conv(getattr(block, n), arrays) for n in names}}
    out["block"].update(naive=naive, pool=_pool(block.pool))
    return out


def describe(net):
    """``(layers, arrays)`` of an initialised zoo network with a PyTorch twin.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        ``inception_mnist``, ``inception_naive_mnist`` or ``googlenet`` (no batch norm, no
        auxiliary heads).

    Returns
    -------
    tuple of (dict, dict of str to numpy.ndarray)

    Raises
    ------
    TypeError
        For other networks.
    """
    from inceptionzoo.models.googlenet import GoogLeNet
    from inceptionzoo.models.inception_mnist import InceptionMNIST

    arrays = {}
    if isinstance(net, InceptionMNIST):
        stages = [_conv(net.stem, arrays), _block(net.block1, arrays), _pool(net.pool1),
                  _block(net.block2, arrays), _pool(net.pool2), _block(net.block3, arrays)]
    elif isinstance(net, GoogLeNet) and not net.aux_logits and \
            not any("gamma" in k for k in net.collect_params()):
        stages = [_conv(net.conv1, arrays), _pool(net.pool1), _conv(net.conv2red, arrays),
                  _conv(net.conv2, arrays), _pool(net.pool2), _block(net.inception3a, arrays),
                  _block(net.inception3b, arrays), _pool(net.pool3)]
        stages += [_block(getattr(net, f"inception4{c}"), arrays) for c in "abcde"]
        stages += [_pool(net.pool4), _block(net.inception5a, arrays),
                   _block(net.inception5b, arrays), {"gap": True}]
    else:
        raise TypeError(f"no PyTorch twin for {type(net).__name__}")
    arrays["head_weight"] = net.output.weight.data().asnumpy()
    arrays["head_bias"] = net.output.bias.data().asnumpy()
    return {"stages": stages}, {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def randomise_bn_statistics(net, seed=0):
    """Draw an initialised network's batch-norm running statistics away from 0 / 1 (means in
    -0.2..0.2, variances in 0.5..2), so that a dropped or misread statistic shows in a parity
    check.

    Parameters
    ----------
    net : mxnet.gluon.Block
    seed : int
    """
    import mxnet as mx

    rng = np.random.RandomState(seed)
    for p in net.collect_params().values():
        if p.name.endswith("running_var"):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, p.shape)))
        elif p.name.endswith("running_mean"):
            p.set_data(mx.nd.array(rng.uniform(-0.2, 0.2, p.shape)))
