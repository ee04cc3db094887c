"""Images in: the one image-acceptance policy and the one decoder.

Every image path goes through here (the Predictor, ``inceptionzoo predict``, ``train`` /
``evaluate`` on image folders, packing RecordIO, the MMS handler): :func:`check_image` is the
policy on an opened image (formats, size, the decompression-bomb limit, modes; training data
passes ``formats=("PNG", "JPEG")``), :func:`verify_image` the same without decoding, and
:func:`decode` reads a path, bytes or PIL image, refuses what :func:`check_image` refuses and
what PIL cannot decode with one :class:`ImageError` naming the input, and converts to grey or
RGB; 16-bit grey samples are scaled to 8 bits (``round(v * 255 / 65535)``), not clipped as
PIL's ``I;16 -> L`` does. :func:`image_from_array` takes a uint8 pixel array the same way.

It imports only numpy and PIL, so that the ``.mar`` carries this same file for its handler (in
the serving core's package ``inceptionzoo_serving/``), which must not import inceptionzoo. What
is done to a decoded image (resize, crop, normalise) is :mod:`inceptionzoo.transforms`.
"""
import io
import os

import numpy as np
from PIL import Image, ImageFile

from ._deprecation import moved_names

__all__ = ["ImageError", "decode", "check_image", "verify_image", "image_from_array", "FORMATS"]

#: Image formats that are decoded (PIL's names). Others (EPS, which runs Ghostscript, and
#: rarely used decoders such as SGI, IM, PCX) are refused: an input file is untrusted.
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageError(ValueError):
    """An input that is not a decodable image, or a transform spec that is not valid."""


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


def image_from_array(a, i):
    """A uint8 pixel array as a PIL image.

    Parameters
    ----------
    a : numpy.ndarray
        uint8 ``(H, W)`` or ``(H, W, C)``, C = 1, 3 or 4.
    i : int
        The array's position in its batch (named by the error).

    Returns
    -------
    PIL.Image.Image

    Raises
    ------
    ImageError
        Not uint8, or not one of those shapes.
    """
    label = f"image {i} (a numpy array of shape {a.shape}, dtype {a.dtype})"
    if a.dtype != np.uint8:
        raise ImageError(f"{label}: expected uint8 pixels 0..255")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape) < 1:
        raise ImageError(f"{label}: expected (H, W) or (H, W, C) with C = 1, 3 or 4")
    return Image.fromarray(np.ascontiguousarray(a))


#: the transforms' names, which lived here until 0.1.0 (:mod:`inceptionzoo.transforms` now)
__getattr__ = moved_names(__name__, {name: ".transforms" for name in (
    "EvalTransform", "Normalisation", "resize_size_for", "INTERPOLATIONS",
    "OPENCV_INTERPOLATIONS")})
