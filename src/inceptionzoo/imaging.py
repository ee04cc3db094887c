"""The evaluation transform of the weights, on images: decode, resize, centre-crop, normalise.

One implementation serves the Predictor, ``inceptionzoo predict``, the validation pass of
``train``, ``evaluate``, the image-folder pipeline and the MMS handler. It imports only numpy
and PIL, so that the ``.mar`` carries this same file beside its handler (as
``inceptionzoo_imaging.py``), which must not import inceptionzoo.

:class:`EvalTransform` is torchvision's ``ImageClassification`` preset and timm's
``transforms_imagenet_eval`` (``crop_mode='center'``): resize the shorter side to
``resize_size`` with the weights' interpolation (PIL, antialiased, as both do on PIL images;
the longer side becomes ``int(resize_size * long / short)``), centre-crop to the input size
(padding with zeros where the image is smaller, as torchvision's ``CenterCrop``), scale to
[0, 1] and normalise per channel. ``resize_size`` is explicit (torchvision: 342 for Inception-v3,
256 for GoogLeNet; timm: ``floor(size / crop_pct)``, see :func:`resize_size_for`). The training
augmentation (:meth:`EvalTransform.augment`) derives from the same spec: a random-resized crop
to the input size with the same interpolation, then a random horizontal flip.

:func:`decode` reads a path, bytes or PIL image, refuses what PIL cannot decode with one
:class:`ImageError` naming the input, and converts to grey or RGB; 16-bit grey samples are
scaled to 8 bits (``round(v * 255 / 65535)``), not clipped as PIL's ``I;16 -> L`` does.
"""
import dataclasses
import io
import math
import os

import numpy as np
from PIL import Image, ImageFile

__all__ = ["ImageError", "EvalTransform", "decode", "resize_size_for", "FORMATS",
           "INTERPOLATIONS"]

#: PIL resampling filters by the names weights' configs use (timm's and torchvision's)
INTERPOLATIONS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                  "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
                  "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}

#: Image formats that are decoded (PIL's names). Others (EPS, which runs Ghostscript, and
#: rarely used decoders such as SGI, IM, PCX) are refused: an input file is untrusted.
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageError(ValueError):
    """An input that is not a decodable image, or a transform spec that is not valid."""


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


def _label(source):
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"{len(source)} bytes"
    return f"a {type(source).__name__}"


def _eight_bit(img, label):
    """A 16-bit (or 32-bit integer) grey image as mode ``L``, scaled, not clipped."""
    a = np.asarray(img)
    if img.mode == "I" and a.size and (a.min() < 0 or a.max() > 65535):
        raise ImageError(f"{label}: 32-bit integer samples out of the 16-bit range "
                         f"({a.min()}..{a.max()}): expected an 8- or 16-bit image")
    return Image.fromarray(np.rint(a.astype(np.float64) * (255 / 65535)).astype(np.uint8), "L")


def decode(source, channels, label=None):
    """An image from a file, encoded bytes or a PIL image, decoded and in grey or RGB.

    Parameters
    ----------
    source : str, os.PathLike, bytes or PIL.Image.Image
        The image. Files and bytes must be one of :data:`FORMATS`.
    channels : int
        1 (grey, mode ``L``) or 3 (RGB).
    label : str, optional
        How messages name the image (default: the path, or the byte count).

    Returns
    -------
    PIL.Image.Image
        Mode ``L`` or ``RGB``.

    Raises
    ------
    ImageError
        Naming the image: missing or unreadable file, not an image of a supported format,
        corrupt or truncated, too large to decode safely (PIL's decompression-bomb limit),
        or of samples that cannot be made 8-bit.
    """
    label = _label(source) if label is None else label
    try:
        if isinstance(source, Image.Image):
            return _converted(source, channels, label)
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = io.BytesIO(bytes(source))
        elif not isinstance(source, (str, os.PathLike)):
            raise ImageError(f"{label}: expected a path, encoded bytes or a PIL image")
        with Image.open(source, formats=FORMATS) as img:
            return _converted(img, channels, label)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except Image.DecompressionBombError as err:
        raise ImageError(f"{label}: image too large to decode safely ({err})") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{label}: not an image of a supported format "
                         f"({', '.join(FORMATS)})") from None
    except MemoryError:
        raise ImageError(f"{label}: not enough memory to decode the image") from None
    except Exception as err:  # PIL's decoders raise many types on corrupt headers and data
        raise ImageError(f"{label}: not a readable image ({type(err).__name__}: "
                         f"{err})") from None


def _converted(img, channels, label):
    """``img`` decoded, as a new image of mode ``L`` or ``RGB``."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # set process-wide by another library (gluoncv does,
        ImageFile.LOAD_TRUNCATED_IMAGES = False  # on import): a truncated file must fail here
    img.load()
    if min(img.size) < 1:
        raise ImageError(f"{label}: an empty image ({img.size[0]}x{img.size[1]} pixels)")
    if img.mode in _SIXTEEN_BIT:
        img = _eight_bit(img, label)
    elif img.mode == "F":
        raise ImageError(f"{label}: floating-point samples: expected an 8- or 16-bit image")
    return img.convert("L" if channels == 1 else "RGB")


def _from_array(a, i):
    """A uint8 pixel array (``(H, W)`` or ``(H, W, C)``, C = 1, 3 or 4) as a PIL image."""
    label = f"image {i} (a numpy array of shape {a.shape}, dtype {a.dtype})"
    if a.dtype != np.uint8:
        raise ImageError(f"{label}: expected uint8 pixels 0..255")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape) < 1:
        raise ImageError(f"{label}: expected (H, W) or (H, W, C) with C = 1, 3 or 4")
    return Image.fromarray(np.ascontiguousarray(a))


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """The evaluation transform of a network's weights.

    Parameters
    ----------
    size : tuple of int
        ``(H, W)`` the network takes: the centre crop.
    channels : int
        1 (grey) or 3 (RGB).
    resize_size : int or None
        The shorter side is resized to this before the crop. None: resized straight to
        ``size`` (exports written before the transform was recorded).
    interpolation : str
        A key of :data:`INTERPOLATIONS`.
    mean, std : tuple of float
        Per-channel normalisation on pixels scaled to [0, 1].
    """

    size: tuple
    channels: int
    resize_size: object = None
    interpolation: str = "bilinear"
    mean: tuple = (0.0,)
    std: tuple = (1.0,)

    def __post_init__(self):
        size = tuple(self.size)
        if len(size) != 2 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in size):
            raise ImageError(f"size must be two integers > 0 (H, W); got {self.size!r}")
        object.__setattr__(self, "size", tuple(int(d) for d in size))
        if self.channels not in (1, 3):
            raise ImageError(f"images give 1 (grey) or 3 (RGB) channels; got {self.channels!r}")
        r = self.resize_size
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, np.integer))
                              or r < 1):
            raise ImageError(f"resize_size must be an integer >= 1 or None; got {r!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ImageError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got "
                             f"{self.interpolation!r}")
        for field in ("mean", "std"):
            values = getattr(self, field)
            values = (values,) if np.ndim(values) == 0 else tuple(values)
            try:
                values = tuple(float(v) for v in values)
            except (TypeError, ValueError):
                raise ImageError(f"{field} must be numbers; got {values!r}") from None
            if not all(math.isfinite(v) and (field == "mean" or v > 0) for v in values):
                raise ImageError(f"{field} must be finite{' and > 0' if field == 'std' else ''}"
                                 f"; got {values!r}")
            if len(values) == 1:
                values *= self.channels
            if len(values) != self.channels:
                raise ImageError(f"{field} needs one value or one per channel "
                                 f"({self.channels}); got {values!r}")
            object.__setattr__(self, field, values)

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
    def from_meta(cls, preprocess, channels, size):
        """The transform an export recorded (``preprocess`` of ``NAME-meta.json``).

        Parameters
        ----------
        preprocess : dict
            ``resize_size``, ``interpolation``, ``mean``, ``std``; an export without
            ``resize_size`` (older inceptionzoo) resizes straight to ``size`` with bilinear
            filtering, as it always did.
        channels : int
            Input channels of the export.
        size : tuple of int
            ``(H, W)`` of the export's input.

        Returns
        -------
        EvalTransform
        """
        if not isinstance(preprocess, dict):
            raise ImageError(f"preprocess must be an object; got {preprocess!r}")
        try:
            return cls(size, channels, preprocess.get("resize_size"),
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
        return {"resize_size": self.resize_size, "crop_size": list(self.size),
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
            Of ``size``.
        """
        h, w = self.size
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
        the image, aspect ratio 3/4..4/3, resized to ``size`` with the spec's interpolation),
        then a horizontal flip half of the time.

        Parameters
        ----------
        img : PIL.Image.Image
        rng : numpy.random.RandomState or the numpy.random module

        Returns
        -------
        PIL.Image.Image
            Of ``size``.
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
        h, w = self.size
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
        pixels = np.stack([self.pixels(_from_array(img, i) if isinstance(img, np.ndarray)
                                       else img, label=None) for i, img in enumerate(images)])
        return mx.nd.array(self.normalise(pixels), ctx=ctx or mx.cpu())

    def normalise(self, batch):
        """uint8 pixels -> the network's input: scaled to [0, 1], normalised, channels first.

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
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return np.ascontiguousarray((x - mean) / std)
