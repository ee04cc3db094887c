"""What is done to a decoded image before a network takes it: the weights' evaluation transform
(:class:`EvalTransform`: resize, centre-crop, normalise; and the training augmentation of the
same spec), the one normaliser (:class:`Normalisation`), the one interpolation table, and the
same input transform as an MXNet graph op (:class:`InputTransform`).

:class:`EvalTransform` is torchvision's ``ImageClassification`` preset and timm's
``transforms_imagenet_eval`` (``crop_mode='center'``): resize the shorter side to
``resize_size`` with the weights' interpolation (PIL, antialiased, as both do on PIL images;
the longer side becomes ``int(resize_size * long / short)``), centre-crop to the input size
(padding with zeros where the image is smaller, as torchvision's ``CenterCrop``), scale to
[0, 1] and normalise per channel. ``resize_size`` is explicit (torchvision: 342 for Inception-v3,
256 for GoogLeNet; timm: ``floor(size / crop_pct)``, see :func:`resize_size_for`). The training
augmentation (:meth:`EvalTransform.augment`) derives from the same spec: a random-resized crop
to the input size with the same interpolation, then a random horizontal flip. Images come in
through :mod:`inceptionzoo.imaging` (the one acceptance policy and decoder).

The normaliser, ``x = (pixels / 255 - mean) / std`` per channel, channels first, with one
``mean`` and ``std`` per channel (:class:`~inceptionzoo.ModelInfo` ``mean``/``std``), is
:class:`Normalisation`, validated there (:func:`normaliser` / :func:`normalisation` refuse with
the library's error family); every path normalises with it (:meth:`EvalTransform.normalise`,
:func:`inceptionzoo.mnist.to_input`, image folders; MXNet's ``ImageRecordIter`` takes its
constants from :meth:`Normalisation.on_pixels`; :class:`InputTransform`, which runs in the
predictor of an export without baked-in preprocessing and hybridized inside the graph of an
``export(..., preprocess=True)``, takes its mean/std from it), so the paths cannot drift apart.

Out-of-range pixels: the graph op clips to 0..255. Arrays handed to the predictor or to
``to_input`` are first made uint8 by :func:`to_pixels` (rounded to the nearest integer, clipped
to 0..255; NaN or infinite values are refused), so both kinds of export see the same bytes.
Imports only numpy, PIL and MXNet: the ``.mar``'s serving core carries this file. (Over 500
lines: the evaluation transform, the normaliser it applies, the interpolation table it resizes
with and the same transform as a graph op are one concept, kept in one place; each piece is
short.)
"""
import dataclasses
import math

import numpy as np
from mxnet.gluon import HybridBlock
from PIL import Image

from ._checks import is_integer
from ._deprecation import renamed_keyword
from .errors import InceptionZooError
from .imaging import ImageError, decode, image_from_array

__all__ = ["EvalTransform", "Normalisation", "InputTransform", "normalisation", "normaliser",
           "channel_normalisation", "to_pixels", "resize_size_for", "INTERPOLATIONS",
           "OPENCV_INTERPOLATIONS"]

#: The one interpolation table: the names weights' configs use (timm's and torchvision's) ->
#: (PIL resampling filter, ``inter_method`` of MXNet's OpenCV ``ImageRecordIter``; PIL's
#: ``box`` and ``hamming`` have no OpenCV twin and map to area and bilinear).
_INTERPOLATION_TABLE = {
    "nearest": (Image.Resampling.NEAREST, 0), "bilinear": (Image.Resampling.BILINEAR, 1),
    "bicubic": (Image.Resampling.BICUBIC, 2), "lanczos": (Image.Resampling.LANCZOS, 4),
    "box": (Image.Resampling.BOX, 3), "hamming": (Image.Resampling.HAMMING, 1)}
#: PIL resampling filters by interpolation name
INTERPOLATIONS = {name: pil for name, (pil, _) in _INTERPOLATION_TABLE.items()}
#: OpenCV ``inter_method`` codes of ``mx.io.ImageRecordIter`` by interpolation name
OPENCV_INTERPOLATIONS = {name: cv for name, (_, cv) in _INTERPOLATION_TABLE.items()}


def resize_size_for(size, crop_pct):
    """timm's evaluation resize: ``floor(size / crop_pct)``.

    Parameters
    ----------
    size : int
        The (square) input size the network takes.
    crop_pct : float
        The fraction of the resized image that the centre crop keeps, in (0, 1].

    Returns
    -------
    int
        The length the shorter side is resized to before the crop.
    """
    return int(math.floor(size / crop_pct))


def normalisation(mean, std, channels):
    """Validated per-channel ``mean`` and ``std``: :class:`Normalisation`'s
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
    """The one normaliser (:class:`Normalisation`), refusing bad
    ``mean``/``std`` with the library's error family (:class:`InceptionZooError`).

    Parameters
    ----------
    mean, std : float or sequence of float
        See :func:`normalisation`.
    channels : int
        Number of input channels.

    Returns
    -------
    inceptionzoo.transforms.Normalisation
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


@dataclasses.dataclass(frozen=True)
class Normalisation:
    """The one normaliser of images, its mean/std validated once, here.

    ``x = (pixels / 255 - mean) / std`` per channel, channels first. Every path normalises
    with it: :meth:`EvalTransform.normalise` (the Predictor, the MMS handler, image folders),
    :func:`inceptionzoo.mnist.to_input` (MNIST arrays), and MXNet's ``ImageRecordIter`` takes
    its constants from :meth:`on_pixels`; the MXNet graph op
    :class:`inceptionzoo.transforms.InputTransform` takes its mean/std from here too.

    Parameters
    ----------
    mean, std : float or sequence of float
        One value (used for every channel) or one per channel, on pixels scaled to [0, 1].
    channels : int
        Number of channels.

    Raises
    ------
    ImageError
        A value is not a finite number, a ``std`` is not > 0, or the number of values is
        neither 1 nor ``channels``.
    """

    mean: tuple
    std: tuple
    channels: int

    def __post_init__(self):
        for field in ("mean", "std"):
            value = getattr(self, field)
            values = [value] if np.ndim(value) == 0 else list(np.ravel(value))
            try:
                values = tuple(float(v) for v in values)
            except (TypeError, ValueError):
                raise ImageError(f"{field} must be numbers; got {value!r}") from None
            if len(values) == 1:
                values = values * self.channels
            if len(values) != self.channels:
                raise ImageError(f"{field} needs one value or one per input channel "
                                 f"({self.channels}); got {len(values)}: {value!r}")
            if not all(math.isfinite(v) for v in values):
                raise ImageError(f"{field} must be finite; got {value!r}")
            if field == "std" and not all(v > 0 for v in values):
                raise ImageError(f"std must be > 0; got {value!r}")
            object.__setattr__(self, field, values)

    def __call__(self, batch):
        """uint8 pixels -> normalised float32 ``(N, C, H, W)``.

        Parameters
        ----------
        batch : numpy.ndarray
            ``(N, H, W)`` or ``(N, H, W, C)`` of 0..255.

        Returns
        -------
        numpy.ndarray
            float32 ``(N, C, H, W)``.
        """
        x = np.asarray(batch).astype(np.float32) / np.float32(255)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        if not any(self.mean) and all(s == 1 for s in self.std):
            return np.ascontiguousarray(x)
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return np.ascontiguousarray((x - mean) / std)

    def on_pixels(self):
        """The same constants on pixels of 0..255 (``mean * 255``, ``std * 255``), as MXNet's
        ``ImageRecordIter`` takes them (``mean_r``/``std_r``...).

        Returns
        -------
        (list of float, list of float)
        """
        return [m * 255 for m in self.mean], [s * 255 for s in self.std]


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """The evaluation transform of a network's weights.

    Parameters
    ----------
    crop_size : tuple of int
        ``(H, W)`` the network takes: the centre crop.
    channels : int
        1 (grey) or 3 (RGB).
    resize_size : int or None
        The shorter side is resized to this before the crop. None: resized straight to
        ``crop_size`` (exports written before the transform was recorded).
    interpolation : str
        A key of :data:`INTERPOLATIONS`.
    mean, std : tuple of float
        Per-channel normalisation on pixels scaled to [0, 1] (validated by
        :class:`Normalisation`).
    size : tuple of int, optional
        The old name of ``crop_size`` (deprecated, gone in the next release).
    """

    crop_size: tuple = None
    channels: int = None
    resize_size: object = None
    interpolation: str = "bilinear"
    mean: tuple = (0.0,)
    std: tuple = (1.0,)
    #: the :class:`Normalisation` of ``mean``/``std`` (derived, not a parameter)
    normaliser: Normalisation = dataclasses.field(init=False, repr=False, compare=False)
    size: dataclasses.InitVar = None

    def __post_init__(self, size=None):
        crop_size = renamed_keyword("EvalTransform", "size", "crop_size", size, self.crop_size)
        object.__setattr__(self, "crop_size", crop_size)
        size = tuple(crop_size) if isinstance(crop_size, (tuple, list)) else ()
        if len(size) != 2 or not all(is_integer(d) and d > 0 for d in size):
            raise ImageError(f"crop_size must be two integers > 0 (H, W); got "
                             f"{self.crop_size!r}")
        object.__setattr__(self, "crop_size", tuple(int(d) for d in size))
        if self.channels not in (1, 3):
            raise ImageError(f"images give 1 (grey) or 3 (RGB) channels; got {self.channels!r}")
        r = self.resize_size
        if r is not None and (not is_integer(r) or r < 1):
            raise ImageError(f"resize_size must be an integer >= 1 or None; got {r!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ImageError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got "
                             f"{self.interpolation!r}")
        norm = Normalisation(self.mean, self.std, self.channels)
        object.__setattr__(self, "mean", norm.mean)
        object.__setattr__(self, "std", norm.std)
        object.__setattr__(self, "normaliser", norm)

    @classmethod
    def from_info(cls, info, input_shape=None):
        """The transform of a network's metadata (``net.info``).

        Parameters
        ----------
        info : object
            With ``input_shape``, ``mean``, ``std``, ``interpolation``, ``crop_pct`` and
            (optionally) ``resize_size`` (a :class:`~inceptionzoo.ModelInfo`).
        input_shape : tuple of int, optional
            ``(C, H, W)`` when it differs from ``info.input_shape``; ``resize_size`` is then
            derived from ``crop_pct``.

        Returns
        -------
        EvalTransform
        """
        shape = tuple(info.input_shape if input_shape is None else input_shape)
        resize = getattr(info, "resize_size", None)
        if resize is None or shape != tuple(info.input_shape):
            resize = resize_size_for(min(shape[1:]), info.crop_pct)
        return cls(shape[1:], shape[0], resize, info.interpolation, info.mean, info.std)

    @classmethod
    def from_meta(cls, preprocess, channels, crop_size):
        """The transform an export recorded (``preprocess`` of ``NAME-meta.json``).

        Parameters
        ----------
        preprocess : dict
            ``resize_size``, ``interpolation``, ``mean``, ``std``; an export without
            ``resize_size`` (older inceptionzoo) resizes straight to ``crop_size`` with
            bilinear filtering, as it always did.
        channels : int
            Input channels of the export.
        crop_size : tuple of int
            ``(H, W)`` of the export's input.

        Returns
        -------
        EvalTransform
        """
        if not isinstance(preprocess, dict):
            raise ImageError(f"preprocess must be an object; got {preprocess!r}")
        try:
            return cls(crop_size, channels, preprocess.get("resize_size"),
                       preprocess.get("interpolation", "bilinear"),
                       preprocess.get("mean", 0.0), preprocess.get("std", 1.0))
        except (TypeError, ValueError) as err:
            raise ImageError(str(err)) from None

    def to_meta(self):
        """What an export records (``preprocess`` of ``NAME-meta.json``).

        Returns
        -------
        dict
            ``resize_size``, ``crop_size`` ``[H, W]``, ``interpolation``, ``mean``, ``std``.
        """
        return {"resize_size": self.resize_size, "crop_size": list(self.crop_size),
                "interpolation": self.interpolation, "mean": list(self.mean),
                "std": list(self.std)}

    # -- geometry -----------------------------------------------------------------------------
    def crop(self, img):
        """Resize the shorter side to ``resize_size``, then centre-crop to ``size``.

        Parameters
        ----------
        img : PIL.Image.Image

        Returns
        -------
        PIL.Image.Image
            Of ``crop_size``.
        """
        h, w = self.crop_size
        filt = INTERPOLATIONS[self.interpolation]
        if self.resize_size is None:
            return img if img.size == (w, h) else img.resize((w, h), filt)
        iw, ih = img.size
        short, long = (iw, ih) if iw <= ih else (ih, iw)
        new_short, new_long = self.resize_size, int(self.resize_size * long / short)
        new = (new_short, new_long) if iw <= ih else (new_long, new_short)
        limit = Image.MAX_IMAGE_PIXELS
        if limit and new_short * new_long > limit:  # a 1 x 100,000 strip would need gigabytes
            raise ImageError(f"an image of {iw}x{ih} pixels: its shorter side resized to "
                             f"{new_short} makes {new[0]}x{new[1]} = {new_short * new_long} "
                             f"pixels, above PIL's decompression-bomb limit ({limit}); crop it "
                             "to a less extreme aspect ratio first")
        if new != img.size:
            img = img.resize(new, filt)
        iw, ih = img.size
        if iw < w or ih < h:  # smaller than the crop: pad with zeros around it
            canvas = Image.new(img.mode, (max(iw, w), max(ih, h)))
            canvas.paste(img, ((max(iw, w) - iw) // 2, (max(ih, h) - ih) // 2))
            img, (iw, ih) = canvas, canvas.size
        top, left = int(round((ih - h) / 2.0)), int(round((iw - w) / 2.0))
        return img.crop((left, top, left + w, top + h))

    def augment(self, img, rng=np.random):
        """The training augmentation of this spec: a random-resized crop (area 8%..100% of
        the image, aspect ratio 3/4..4/3, resized to ``crop_size`` with the spec's interpolation),
        then a horizontal flip half of the time.

        Parameters
        ----------
        img : PIL.Image.Image
        rng : numpy.random.RandomState or the numpy.random module

        Returns
        -------
        PIL.Image.Image
            Of ``crop_size``.
        """
        iw, ih = img.size
        area = iw * ih
        box = None
        for _ in range(10):
            target = area * rng.uniform(0.08, 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
            if 0 < cw <= iw and 0 < ch <= ih:
                top, left = rng.randint(0, ih - ch + 1), rng.randint(0, iw - cw + 1)
                box = (left, top, left + cw, top + ch)
                break
        if box is None:  # a centre crop of the whole image, its ratio clamped to the range
            ratio = iw / ih
            cw, ch = ((iw, int(round(iw / (4 / 3)))) if ratio > 4 / 3 else
                      (int(round(ih * 3 / 4)), ih) if ratio < 3 / 4 else (iw, ih))
            left, top = (iw - cw) // 2, (ih - ch) // 2
            box = (left, top, left + cw, top + ch)
        h, w = self.crop_size
        img = img.resize((w, h), INTERPOLATIONS[self.interpolation], box=box)
        if rng.uniform() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img

    # -- pixels -------------------------------------------------------------------------------
    def pixels(self, source, label=None):
        """Decode and crop: the uint8 pixels the network's input transform takes.

        Parameters
        ----------
        source : str, os.PathLike, bytes or PIL.Image.Image
            See :func:`decode`.
        label : str, optional
            How messages name the image.

        Returns
        -------
        numpy.ndarray
            uint8 ``(H, W)`` (grey) or ``(H, W, 3)``.
        """
        return np.asarray(self.crop(decode(source, self.channels, label)), dtype=np.uint8)

    def __call__(self, images, ctx=None):
        """Images -> the network's input batch (the weights' transform as one callable).

        Parameters
        ----------
        images : path, bytes, PIL.Image.Image, numpy.ndarray or a list of them
            One image or several. An array is uint8 pixels: ``(H, W)`` grey or ``(H, W, C)``
            (C = 1, 3 or 4); ``(N, H, W, C)`` is N images.
        ctx : mxnet.Context, optional
            Where the batch goes (default CPU).

        Returns
        -------
        mxnet.nd.NDArray
            float32 ``(N, C, H, W)``, decoded, resized, cropped and normalised.
        """
        import mxnet as mx

        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        elif not isinstance(images, (list, tuple)):
            images = [images]
        if not images:
            raise ImageError("expected one image or a non-empty list of them; got an empty list")
        pixels = np.stack([self.pixels(image_from_array(img, i) if isinstance(img, np.ndarray)
                                       else img, label=None) for i, img in enumerate(images)])
        return mx.nd.array(self.normalise(pixels), ctx=ctx or mx.cpu())

    def normalise(self, batch):
        """uint8 pixels ``(N, H, W)`` or ``(N, H, W, C)`` -> the network's input, float32
        ``(N, C, H, W)``: the one normaliser (:class:`Normalisation`) of this spec."""
        return self.normaliser(batch)
