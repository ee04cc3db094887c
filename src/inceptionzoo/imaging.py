"""The evaluation transform of the weights, on images: decode, resize, centre-crop, normalise.

One implementation serves the Predictor, ``inceptionzoo predict``, the validation pass of
``train``, ``evaluate``, the image-folder pipeline and the MMS handler. It imports only numpy
and PIL, so that the ``.mar`` carries this same file for its handler (in the serving core's
package ``inceptionzoo_serving/``), which must not import inceptionzoo. (Over 500 lines: it is
the one home of the concepts below and of the transform that uses them; each piece is short.)

It is the one home of three concepts every image path shares: the image-acceptance policy
(:func:`check_image`: formats, size, the decompression-bomb limit, modes; training data passes
``formats=("PNG", "JPEG")``), the normaliser (:class:`Normalisation`: mean/std validated once,
applied on numpy, its constants handed to MXNet's ``ImageRecordIter`` and to the graph op
:class:`inceptionzoo.transforms.InputTransform`), and the interpolation table
(:data:`INTERPOLATIONS`, :data:`OPENCV_INTERPOLATIONS`).

:class:`EvalTransform` is torchvision's ``ImageClassification`` preset and timm's
``transforms_imagenet_eval`` (``crop_mode='center'``): resize the shorter side to
``resize_size`` with the weights' interpolation (PIL, antialiased, as both do on PIL images;
the longer side becomes ``int(resize_size * long / short)``), centre-crop to the input size
(padding with zeros where the image is smaller, as torchvision's ``CenterCrop``), scale to
[0, 1] and normalise per channel. ``resize_size`` is explicit (torchvision: 342 for Inception-v3,
256 for GoogLeNet; timm: ``floor(size / crop_pct)``, see :func:`resize_size_for`). The training
augmentation (:meth:`EvalTransform.augment`) derives from the same spec: a random-resized crop
to the input size with the same interpolation, then a random horizontal flip.

:func:`decode` reads a path, bytes or PIL image, refuses what :func:`check_image` refuses and
what PIL cannot decode with one :class:`ImageError` naming the input, and converts to grey or
RGB; 16-bit grey samples are
scaled to 8 bits (``round(v * 255 / 65535)``), not clipped as PIL's ``I;16 -> L`` does.
"""
import dataclasses
import io
import math
import os

import numpy as np
from PIL import Image, ImageFile

__all__ = ["ImageError", "EvalTransform", "Normalisation", "decode", "check_image",
           "verify_image", "resize_size_for", "FORMATS", "INTERPOLATIONS",
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


def check_image(img, label, formats=FORMATS):
    """The one image-acceptance policy: may this opened (not yet decoded) image be decoded?

    Every path that reads an image uses it: :func:`decode` (the Predictor, the MMS handler,
    the image-folder pipeline), :func:`verify_image` (packing and checking RecordIO).

    Parameters
    ----------
    img : PIL.Image.Image
        As ``Image.open`` returns it (only its header read).
    label : str
        How messages name the image.
    formats : tuple of str or None
        The formats accepted, a subset of :data:`FORMATS` (training data takes PNG and JPEG
        only); None: any (an image built in memory has no format).

    Raises
    ------
    ImageError
        Another format, an empty size, more pixels than PIL's decompression-bomb limit
        (``Image.MAX_IMAGE_PIXELS``: PIL itself refuses only twice that, and below it just
        warns), or floating-point samples.
    """
    if formats is not None and img.format not in formats:
        raise ImageError(f"{label}: a {img.format or 'unknown'} image; expected "
                         f"{' or '.join(formats)}")
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{label}: an empty image ({w}x{h} pixels)")
    limit = Image.MAX_IMAGE_PIXELS
    if limit and w * h > limit:
        raise ImageError(f"{label}: image too large to decode safely ({w}x{h} = {w * h} "
                         f"pixels, above PIL's decompression-bomb limit of {limit})")
    if img.mode == "F":
        raise ImageError(f"{label}: floating-point samples: expected an 8- or 16-bit image")


def _opened(source, label, formats, use):
    """``use(img)`` of ``source`` (a path, bytes or a file object) opened by PIL, its header
    accepted by :func:`check_image`; any failure of PIL (on opening, or in ``use``, on decoding)
    is one :class:`ImageError` naming ``label``."""
    if formats is not None and not set(formats) <= set(FORMATS):
        raise ImageError(f"formats must be among {', '.join(FORMATS)}; got {formats!r}")
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = io.BytesIO(bytes(source))
        elif not isinstance(source, (str, os.PathLike)) and not hasattr(source, "read"):
            raise ImageError(f"{label}: expected a path, encoded bytes or a PIL image")
        with Image.open(source, formats=FORMATS) as img:
            check_image(img, label, formats)
            return use(img)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except Image.DecompressionBombError as err:
        raise ImageError(f"{label}: image too large to decode safely ({err})") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{label}: not an image of a supported format "
                         f"({', '.join(formats or FORMATS)})") from None
    except MemoryError:
        raise ImageError(f"{label}: not enough memory to decode the image") from None
    except Exception as err:  # PIL's decoders raise many types on corrupt headers and data
        raise ImageError(f"{label}: not a readable image ({type(err).__name__}: "
                         f"{err})") from None


def decode(source, channels, label=None, formats=FORMATS):
    """An image from a file, encoded bytes or a PIL image, decoded and in grey or RGB.

    Parameters
    ----------
    source : str, os.PathLike, bytes or PIL.Image.Image
        The image. Files and bytes must be one of ``formats``.
    channels : int
        1 (grey, mode ``L``) or 3 (RGB).
    label : str, optional
        How messages name the image (default: the path, or the byte count).
    formats : tuple of str
        The formats accepted (see :func:`check_image`); default :data:`FORMATS`.

    Returns
    -------
    PIL.Image.Image
        Mode ``L`` or ``RGB``.

    Raises
    ------
    ImageError
        Naming the image: missing or unreadable file, refused by :func:`check_image` (not an
        image of an accepted format, empty, too large to decode safely, read from the header),
        corrupt or truncated, or of samples that cannot be made 8-bit.
    """
    label = _label(source) if label is None else label
    if isinstance(source, Image.Image):
        check_image(source, label, None)
        return _converted(source, channels, label)
    return _opened(source, label, formats, lambda img: _converted(img, channels, label))


def verify_image(source, label=None, formats=FORMATS):
    """Accept or refuse an encoded image without decoding its pixels: :func:`check_image` on
    its header, and a PNG's chunks verified to their end (a truncated PNG fails here).

    Parameters
    ----------
    source : str, os.PathLike, bytes or a binary file object
    label : str, optional
        How messages name the image.
    formats : tuple of str
        The formats accepted (see :func:`check_image`).

    Raises
    ------
    ImageError
        Naming the image.
    """
    label = _label(source) if label is None else label
    _opened(source, label, formats, lambda img: img.verify() if img.format == "PNG" else None)


def _converted(img, channels, label):
    """``img`` decoded, as a new image of mode ``L`` or ``RGB``."""
    try:
        if ImageFile.LOAD_TRUNCATED_IMAGES:  # set process-wide by another library (gluoncv
            ImageFile.LOAD_TRUNCATED_IMAGES = False  # does, on import): a truncated file must
        img.load()                                   # fail here
    except MemoryError:
        raise ImageError(f"{label}: not enough memory to decode the image") from None
    except Exception as err:  # PIL's decoders raise many types on corrupt data
        raise ImageError(f"{label}: not a readable image ({type(err).__name__}: "
                         f"{err})") from None
    if min(img.size) < 1:
        raise ImageError(f"{label}: an empty image ({img.size[0]}x{img.size[1]} pixels)")
    if img.mode in _SIXTEEN_BIT:
        img = _eight_bit(img, label)
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
        Per-channel normalisation on pixels scaled to [0, 1] (validated by
        :class:`Normalisation`).
    """

    size: tuple
    channels: int
    resize_size: object = None
    interpolation: str = "bilinear"
    mean: tuple = (0.0,)
    std: tuple = (1.0,)
    #: the :class:`Normalisation` of ``mean``/``std`` (derived, not a parameter)
    normaliser: Normalisation = dataclasses.field(init=False, repr=False, compare=False)

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
        """uint8 pixels ``(N, H, W)`` or ``(N, H, W, C)`` -> the network's input, float32
        ``(N, C, H, W)``: the one normaliser (:class:`Normalisation`) of this spec."""
        return self.normaliser(batch)
