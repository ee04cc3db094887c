"""The input transform as an MXNet graph op: raw images -> the float32 ``NCHW`` tensor a network
takes.

``x = (clip(float32(image), 0, 255) / 255 - mean) / std``, channels first, with one ``mean``
and ``std`` per channel (:class:`~inceptionzoo.ModelInfo` ``mean``/``std``). The block runs in
the predictor of an export without baked-in preprocessing, and hybridized inside the graph of an
``export(..., preprocess=True)``. Its constants come from the one normaliser,
:class:`inceptionzoo.imaging.Normalisation` (validated there, see :func:`normalisation`), which
normalises on numpy everywhere else (:func:`inceptionzoo.mnist.to_input`, image folders, the
evaluation transform), so the paths cannot drift apart.

Out-of-range pixels: the transform clips to 0..255. Arrays handed to the predictor or to
``to_input`` are first made uint8 by :func:`to_pixels` (rounded to the nearest integer, clipped
to 0..255; NaN or infinite values are refused), so both kinds of export see the same bytes.
"""
import numpy as np
from mxnet.gluon import HybridBlock

from .errors import InceptionZooError
from .imaging import ImageError, Normalisation

__all__ = ["InputTransform", "normalisation", "normaliser", "channel_normalisation", "to_pixels"]


def normalisation(mean, std, channels):
    """Validated per-channel ``mean`` and ``std``: :class:`inceptionzoo.imaging.Normalisation`'s
    check, refusing with the library's error family.

    Parameters
    ----------
    mean, std : float or sequence of float
        One value (used for every channel) or one per channel; on pixels scaled to [0, 1].
    channels : int
        Number of input channels.

    Returns
    -------
    tuple of (tuple of float, tuple of float)
        ``mean`` and ``std`` with ``channels`` values each.

    Raises
    ------
    InceptionZooError
        A value is not a finite number, a ``std`` is not > 0, or the number of values is
        neither 1 nor ``channels``.
    """
    norm = normaliser(mean, std, channels)
    return norm.mean, norm.std


def normaliser(mean, std, channels):
    """The one normaliser (:class:`inceptionzoo.imaging.Normalisation`), refusing bad
    ``mean``/``std`` with the library's error family (:class:`InceptionZooError`).

    Parameters
    ----------
    mean, std : float or sequence of float
        See :func:`normalisation`.
    channels : int
        Number of input channels.

    Returns
    -------
    inceptionzoo.imaging.Normalisation
    """
    try:  # the one check, where the one normaliser lives
        return Normalisation(mean, std, channels)
    except ImageError as err:
        raise InceptionZooError(str(err)) from None


def channel_normalisation(mean, std, channels):
    """``mean`` / ``std`` of the weights for a network with another number of input channels
    (``in_chans``): their average for 1 channel, else repeated as timm repeats the first
    convolution's weights (cyclically).

    Parameters
    ----------
    mean, std : tuple of float
    channels : int

    Returns
    -------
    (tuple of float, tuple of float)
    """
    def fit(values):
        if len(values) == channels:
            return tuple(values)
        if channels == 1:
            return (float(sum(values)) / len(values),)
        return tuple(values[i % len(values)] for i in range(channels))

    return fit(tuple(mean)), fit(tuple(std))


def to_pixels(images):
    """A numeric array of pixel values -> uint8, as every inceptionzoo input path reads it.

    Parameters
    ----------
    images : array_like
        Pixel values meant as 0..255, any integer or float dtype.

    Returns
    -------
    numpy.ndarray
        uint8, same shape: values rounded to the nearest integer and clipped to 0..255
        (uint8 input is returned as is).

    Raises
    ------
    InceptionZooError
        The values are not numbers, or some are NaN or infinite.
    """
    x = np.asarray(images)
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "biuf":
        raise InceptionZooError(f"pixel values must be numbers (0..255); got an array of dtype "
                                f"{x.dtype}")
    if x.dtype.kind == "f":
        bad = np.count_nonzero(~np.isfinite(x))
        if bad:
            raise InceptionZooError(
                f"pixel values must be finite numbers (0..255); got {bad} NaN or "
                f"infinite value(s) in an array of shape {x.shape}")
        x = np.rint(x)
    return np.clip(x, 0, 255).astype(np.uint8)


class InputTransform(HybridBlock):
    """Raw images -> normalised float32 ``(N, C, H, W)``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one sample as the network takes it.
    mean, std : float or sequence of float
        Per-channel normalisation on pixels scaled to [0, 1] (see :func:`normalisation`).

    Input ``(N, H, W)`` or ``(N, H, W, 1)`` for one channel, ``(N, H, W, C)`` otherwise, of any
    dtype (uint8 normally). Values are cast to float32 and clipped to 0..255. Mean and std are
    constants of the graph, not parameters.
    """

    def __init__(self, input_shape, mean=0.0, std=1.0, **kwargs):
        super().__init__(**kwargs)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.mean, self.std = normalisation(mean, std, self.input_shape[0])

    def hybrid_forward(self, F, x):
        c, h, w = self.input_shape
        x = F.clip(F.cast(x, dtype="float32"), 0, 255)
        if c == 1:  # (N, H, W) and (N, H, W, 1) hold the same bytes as (N, 1, H, W).
            # Not reshape(0, 1, h, w): MXNet 1.9's reshape does not check the size, so another
            # H x W would run on garbage; reshape_like does check it.
            like = F.broadcast_like(F.zeros((1, 1, h, w)), x, lhs_axes=(0,), rhs_axes=(0,))
            x = F.reshape_like(x, like)
        else:
            x = F.transpose(x, axes=(0, 3, 1, 2))
        x = x / 255.0
        if len(set(self.mean)) == 1 and len(set(self.std)) == 1:
            return self._normalise(x, self.mean[0], self.std[0])
        parts = F.split(x, num_outputs=c, axis=1)
        return F.concat(*[self._normalise(parts[i], m, s)
                          for i, (m, s) in enumerate(zip(self.mean, self.std))], dim=1)

    @staticmethod
    def _normalise(x, mean, std):
        if mean != 0.0:
            x = x - mean
        if std != 1.0:
            x = x / std
        return x
