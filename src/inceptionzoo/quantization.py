"""INT8 quantisation for MXNet's CPU (oneDNN) build."""
import warnings

import mxnet as mx
import numpy as np

from .errors import InceptionZooError

__all__ = ["quantize"]


def quantize(net, calib_images, batch_size=100):
    """INT8 copy of ``net`` for MXNet's CPU (oneDNN) build, calibrated on ``calib_images``.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        An initialised network (it is hybridized as a side effect).
    calib_images : array, shape (N, C, H, W)
        Inputs, already transformed as for the network (e.g. ``data.to_input``); activation
        ranges are their min/max ("naive" calibration). Use real data:
        ``tests/test_quantization.py`` checks that 1,000 MNIST training digits keep the shipped
        ``inception_mnist`` within 0.3 points of its float32 test accuracy.
    batch_size : int
        Calibration batch size.

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized with ``static_alloc`` and ``static_shape``. It runs only on MXNet's CPU build;
        export the float32 network for anything else.
    """
    from mxnet.contrib.quantization import quantize_net

    x = np.asarray(calib_images, dtype=np.float32)
    bs = min(batch_size, len(x))
    if x.ndim != 4 or bs < 1:
        raise InceptionZooError(f"calib_images must be a non-empty (N, C, H, W) array; got shape "
                                f"{x.shape}")
    calib = [[mx.nd.array(x[i:i + bs])] for i in range(0, len(x) - bs + 1, bs)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        qnet = quantize_net(net, quantized_dtype="auto", calib_mode="naive", calib_data=calib,
                            num_calib_examples=len(calib) * bs, ctx=mx.cpu(),
                            data_shapes=[mx.io.DataDesc("data", (bs,) + x.shape[1:])])
    qnet.hybridize(static_alloc=True, static_shape=True)
    return qnet
