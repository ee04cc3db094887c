"""What every network of the zoo shares: input shape and dtype checks that run in Python,
before MXNet's C++ layer sees the array, in imperative and in hybridized mode alike."""
import math

import mxnet as mx
import numpy as np
from mxnet.gluon.block import HybridBlock

__all__ = ["ZooNet", "spatial_out"]


def spatial_out(size, kernel, stride=1, pad=0, ceil_mode=False):
    """Output length of a convolution or pooling window along one axis (MXNet's formula)."""
    span = size + 2 * pad - kernel
    if span < 0:
        return 0
    return (math.ceil(span / stride) if ceil_mode else span // stride) + 1


class ZooNet(HybridBlock):
    """Base class of the registered networks.

    Subclasses set ``in_channels``, ``default_hw`` (the design input size), ``spatial_ops``
    (the ``(kernel, stride, pad, ceil_mode)`` of every layer that changes the spatial size, in
    order) and ``head_hw``: the feature-map size the classifier needs, or ``None`` when it ends
    in a global pool and takes any size.
    """

    in_channels = 1
    default_hw = (28, 28)
    spatial_ops = ()
    head_hw = None

    def feature_hw(self, h, w):
        """Spatial size of the last feature map for an ``h x w`` input, or None if it vanishes."""
        for kernel, stride, pad, ceil_mode in self.spatial_ops:
            h = spatial_out(h, kernel, stride, pad, ceil_mode)
            w = spatial_out(w, kernel, stride, pad, ceil_mode)
            if h < 1 or w < 1:
                return None
        return h, w

    def _fits(self, size, axis):
        hw = [self.default_hw[0], self.default_hw[1]]
        hw[axis] = size
        out = self.feature_hw(*hw)
        return out is not None and (self.head_hw is None or out[axis] == self.head_hw[axis])

    def _accepted(self, axis):
        """Human-readable range of input sizes the network takes along one spatial axis."""
        top = 4 * self.default_hw[axis]
        ok = [s for s in range(1, top + 1) if self._fits(s, axis)]
        if not ok:
            return "none"
        if self.head_hw is None and ok[-1] == top:
            return f">= {ok[0]}"
        return str(ok[0]) if ok[0] == ok[-1] else f"{ok[0]}..{ok[-1]}"

    def check_input_shape(self, shape):
        """Raise ``ValueError`` naming the expected and the given shape if ``shape`` cannot
        go through the network."""
        shape = tuple(shape)
        h0, w0 = self.default_hw
        expected = f"(N, {self.in_channels}, {h0}, {w0})"
        who = self.name
        if len(shape) != 4:
            raise ValueError(f"{who} expects a 4-d input (N, C, H, W) = {expected}; "
                             f"got a {len(shape)}-d input of shape {shape}")
        n, c, h, w = shape
        if n < 1:
            raise ValueError(f"{who} expects a non-empty batch of shape {expected}; "
                             f"got shape {shape}")
        if c != self.in_channels:
            raise ValueError(f"{who} expects {self.in_channels} input channel(s), shape "
                             f"{expected}; got {c} channels in shape {shape}")
        if not (self._fits(h, 0) and self._fits(w, 1)):
            raise ValueError(
                f"{who} cannot take a {h}x{w} input: expected shape {expected} (H in "
                f"{self._accepted(0)}, W in {self._accepted(1)}); got shape {shape}")

    def check_input_dtype(self, dtype):
        """Raise ``ValueError`` naming the expected and the given dtype if ``dtype`` is not
        the dtype of the network's parameters (float32 unless :meth:`cast`)."""
        want = np.dtype(getattr(self, "_input_dtype", "float32"))
        if np.dtype(dtype) != want:
            raise ValueError(f"{self.name} expects {want.name} input (the dtype of its "
                             f"parameters); got {np.dtype(dtype).name}: convert it with "
                             f"x.astype('{want.name}'), and scale raw 0..255 images with "
                             "inceptionzoo.data.to_input")

    def cast(self, dtype):
        """Cast the parameters (see ``HybridBlock.cast``); inputs must then have that dtype."""
        super().cast(dtype)
        self._input_dtype = np.dtype(dtype).name

    def forward(self, x, *args):
        if isinstance(x, mx.nd.NDArray):
            self.check_input_shape(x.shape)
            self.check_input_dtype(x.dtype)
        return super().forward(x, *args)
