"""The weights' evaluation transform on images (inceptionzoo.imaging): geometry, the spec from
model metadata, 16-bit samples, and corrupt or hostile image files."""
import io
import struct

import numpy as np
import pytest
from PIL import Image

from inceptionzoo import model_info
from inceptionzoo.imaging import FORMATS, ImageError, decode
from inceptionzoo.transforms import EvalTransform, resize_size_for


def _positions(w, h):
    """A grey image whose pixel (x, y) holds 16 * y + x (so a crop shows where it was cut)."""
    return Image.fromarray((16 * np.arange(h)[:, None] + np.arange(w)[None]).astype(np.uint8))


@pytest.mark.parametrize("w,h,crop,top,left", [
    (7, 10, (4, 4), 3, 2),   # round(1.5) = 2, round(3.0) = 3 (torchvision's CenterCrop)
    (10, 7, (4, 4), 2, 3),
    (9, 9, (4, 6), 2, 2),    # round(2.5) = 2: Python's rounding, as torchvision
])
def test_centre_crop_box_is_torchvisions(w, h, crop, top, left):
    spec = EvalTransform(crop, 1, resize_size=min(w, h), interpolation="nearest")
    got = np.asarray(spec.crop(_positions(w, h)))
    want = np.asarray(_positions(w, h))[top:top + crop[0], left:left + crop[1]]
    np.testing.assert_array_equal(got, want)


def test_shorter_side_is_resized_keeping_the_aspect_ratio():
    rng = np.random.RandomState(0)
    img = Image.fromarray(rng.randint(0, 256, (600, 512, 3), np.uint8))  # W 512, H 600
    spec = EvalTransform((299, 299), 3, resize_size=342, interpolation="bicubic")
    # torchvision Resize(342): short side 342, long side int(342 * 600 / 512) = 400
    resized = img.resize((342, 400), Image.BICUBIC)
    want = np.asarray(resized.crop((22, 50, 321, 349)))  # round(43 / 2) = 22, round(50.5) = 50
    np.testing.assert_array_equal(spec.pixels(img), want)
    # squash (exports that recorded no resize_size) resizes straight to the input size
    old = EvalTransform((299, 299), 3, resize_size=None)
    np.testing.assert_array_equal(old.pixels(img),
                                  np.asarray(img.resize((299, 299), Image.BILINEAR)))


def test_an_extreme_aspect_ratio_is_refused_before_the_resize_allocates():
    """A 1 x 100,000 strip is below PIL's pixel limit, but its shorter side resized to 299
    would make 299 x 29,900,000 pixels (27 GB in RGB): refused, naming the sizes."""
    spec = EvalTransform((299, 299), 3, resize_size=299, interpolation="bilinear")
    with pytest.raises(ImageError, match=r"an image of 1x100000 pixels: .* 299x29900000 "):
        spec.crop(Image.new("RGB", (1, 100000)))
    assert spec.crop(Image.new("RGB", (10, 1000))).size == (299, 299)  # 299 x 29,900: fine


def test_an_image_smaller_than_the_crop_is_padded_with_zeros():
    spec = EvalTransform((6, 6), 1, resize_size=2, interpolation="nearest")
    got = spec.pixels(Image.new("L", (2, 4), 200))  # resized to 2 x 4, padded to 6 x 6
    want = np.zeros((6, 6), np.uint8)
    want[1:5, 2:4] = 200
    np.testing.assert_array_equal(got, want)


def test_spec_from_model_metadata():
    import dataclasses

    mnist = EvalTransform.from_info(model_info("inception_mnist"))
    assert (mnist.crop_size, mnist.channels, mnist.resize_size) == ((28, 28), 1, 28)
    v4 = EvalTransform.from_info(model_info("inception_v4"))
    assert (v4.resize_size, v4.interpolation) == (341, "bicubic")  # floor(299 / 0.875)
    assert resize_size_for(299, 0.8975) == 333 and resize_size_for(224, 0.875) == 256
    explicit = dataclasses.replace(model_info("inception_v3"), resize_size=342)
    assert EvalTransform.from_info(explicit).resize_size == 342
    # another input size than the metadata's: resize_size follows crop_pct
    assert EvalTransform.from_info(explicit, (3, 160, 160)).resize_size == 183
    meta = EvalTransform.from_info(explicit).to_meta()
    assert meta == {"resize_size": 342, "crop_size": [299, 299], "interpolation": "bilinear",
                    "mean": list(explicit.mean), "std": list(explicit.std)}
    assert EvalTransform.from_meta(meta, 3, (299, 299)) == EvalTransform.from_info(explicit)


@pytest.mark.parametrize("kwargs,words", [
    ({"interpolation": "cubic"}, "interpolation must be one of"),
    ({"resize_size": 0}, "resize_size must be an integer >= 1"),
    ({"resize_size": 2.5}, "resize_size must be an integer"),
    ({"channels": 2}, "1 \\(grey\\) or 3 \\(RGB\\)"),
    ({"mean": (0.1, 0.2)}, "mean needs one value or one per input channel"),
])
def test_bad_spec_is_refused(kwargs, words):
    args = dict(crop_size=(8, 8), channels=3, resize_size=8)
    args.update(kwargs)
    with pytest.raises(ImageError, match=words):
        EvalTransform(**args)


def test_the_old_keyword_size_is_crop_size_with_a_warning():
    """``crop_size`` is the one name of the (H, W) the network takes (``size`` until 0.1.0)."""
    with pytest.warns(DeprecationWarning, match=r"EvalTransform\(size=\.\.\.\) is deprecated "
                                                r"and goes in the next release: use crop_size="):
        old = EvalTransform(size=(8, 8), channels=3, resize_size=8)
    assert old == EvalTransform((8, 8), 3, 8)


def test_normalise_is_scale_then_mean_std_channels_first():
    spec = EvalTransform((2, 2), 3, 2, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))
    batch = np.full((1, 2, 2, 3), 255, np.uint8)
    np.testing.assert_allclose(spec.normalise(batch)[0, :, 0, 0], [1.0, 3.0, 0.5])
    assert spec.normalise(batch).shape == (1, 3, 2, 2)


def _png16(array16):
    buf = io.BytesIO()
    Image.fromarray(array16.astype(np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def test_sixteen_bit_grey_is_scaled_not_clipped():
    rng = np.random.RandomState(1)
    eight = rng.randint(0, 256, (9, 11)).astype(np.uint8)
    sixteen = _png16(eight.astype(np.uint32) * 257)  # the same image in 16 bits
    assert Image.open(io.BytesIO(sixteen)).mode.startswith("I;16")
    np.testing.assert_array_equal(np.asarray(decode(sixteen, 1)), eight)
    np.testing.assert_array_equal(np.asarray(decode(sixteen, 3))[..., 0], eight)
    # values that are not multiples of 257: round(v * 255 / 65535)
    values = np.array([[0, 128, 129, 32896, 65535, 65407]])
    np.testing.assert_array_equal(np.asarray(decode(_png16(values), 1)),
                                  np.rint(values * 255 / 65535).astype(np.uint8))


def _encoded(fmt, mode="RGB", size=(6, 5)):
    buf = io.BytesIO()
    Image.new(mode, size, 90).save(buf, fmt)
    return bytearray(buf.getvalue())


def _patched(data, offset, raw):
    data = bytearray(data)
    data[offset:offset + len(raw)] = raw
    return bytes(data)


#: malformed files of every family PIL raises something else than OSError for (ValueError,
#: SyntaxError ...), and of the formats that are refused outright
MALFORMED = {
    "ppm-maxval-0.ppm": b"P5\n28 28\n0\n" + bytes(784),
    "ppm-maxval-70000.ppm": b"P6\n2 2\n70000\n" + bytes(24),
    "ppm-not-a-number.ppm": b"P5\n28 2x8\n255\n" + bytes(784),
    "pgm-plain-bad-sample.pgm": b"P2\n2 2\n255\n1 2 x 4\n",
    "ppm-truncated.ppm": b"P5\n28 28\n255\n" + bytes(10),
    "bmp-depth-7.bmp": _patched(_encoded("BMP"), 28, struct.pack("<H", 7)),
    "bmp-compression-9.bmp": _patched(_encoded("BMP"), 30, struct.pack("<I", 9)),
    "bmp-header-size.bmp": _patched(_encoded("BMP"), 14, struct.pack("<I", 99)),
    "sgi-dimension.sgi": _patched(_encoded("SGI"), 10, b"\x09"),
    "sgi-bytes-per-channel.sgi": _patched(_encoded("SGI"), 3, b"\x05"),
    "im-mode.im": bytes(_encoded("IM")).replace(b"RGB image", b"XYZ image"),
    "tiff-truncated.tif": bytes(_encoded("TIFF")[:60]),
    "gif-truncated.gif": bytes(_encoded("GIF")[:20]),
    "png-bit-depth.png": _patched(_encoded("PNG"), 24, b"\x03"),
    "jpeg-truncated.jpg": bytes(_encoded("JPEG")[:100]),
    "eps.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
    "float.tif": bytes(_encoded("TIFF", "F")),
    "empty.txt": b"",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_image_files_are_one_error_naming_the_file(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(MALFORMED[name])
    with pytest.raises(ImageError, match=f"^{path}: "):
        decode(str(path), 3)
    with pytest.raises(ImageError, match=r"^\d+ bytes: "):
        decode(MALFORMED[name], 1)


def test_empty_pil_image_is_refused():
    with pytest.raises(ImageError, match="an empty image \\(0x4 pixels\\)"):
        decode(Image.new("L", (0, 4)), 1)


def test_mutated_headers_never_escape_as_other_errors():
    """Seeded random mutations of the first bytes of a valid file of each decoded format:
    every one decodes to an image or raises ImageError, nothing else."""
    rng = np.random.RandomState(0)
    spec = EvalTransform((8, 8), 3, resize_size=9)
    seeds = [bytes(_encoded(f, "L" if f == "PPM" else "RGB")) for f in FORMATS]
    outcomes = {"decoded": 0, "refused": 0}
    for case in range(400):
        data = bytearray(seeds[case % len(seeds)])
        for _ in range(rng.randint(1, 4)):
            data[rng.randint(0, min(len(data), 64))] = rng.randint(0, 256)
        if rng.rand() < 0.2:
            data = data[:rng.randint(1, len(data))]
        try:
            assert spec.pixels(bytes(data)).shape == (8, 8, 3)
            outcomes["decoded"] += 1
        except ImageError:
            outcomes["refused"] += 1
    assert min(outcomes.values()) > 20, outcomes  # both paths were exercised


def test_training_augmentation_derives_from_the_spec():
    rng = np.random.RandomState(0)
    img = Image.fromarray(rng.randint(0, 256, (50, 70, 3), np.uint8))
    spec = EvalTransform((16, 12), 3, resize_size=20, interpolation="bicubic")
    crops = [np.asarray(spec.augment(img, np.random.RandomState(s))) for s in range(6)]
    assert all(c.shape == (16, 12, 3) for c in crops)
    assert len({c.tobytes() for c in crops}) == 6  # random crops
    np.testing.assert_array_equal(crops[0],
                                  np.asarray(spec.augment(img, np.random.RandomState(0))))


def test_a_truncated_image_fails_even_after_a_library_allowed_truncated_loads(tmp_path):
    """gluoncv sets PIL's process-wide LOAD_TRUNCATED_IMAGES on import; a truncated PNG must
    still be an error, not a silently grey image."""
    from PIL import ImageFile

    buf = io.BytesIO()
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (64, 64), np.uint8)).save(
        buf, format="PNG")
    (tmp_path / "t.png").write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(ImageError, match="t.png: not a readable image"):
            decode(str(tmp_path / "t.png"), 1)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def test_importing_gluoncv_leaves_pil_strict():
    from PIL import ImageFile

    from inceptionzoo._gluoncv import import_gluoncv

    import_gluoncv()
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("field,value,words", [("std", 0.0, "std must be > 0"),
                                               ("mean", float("nan"), "mean must be finite"),
                                               ("std", "x", "std must be numbers")])
def test_a_transform_refuses_bad_normalisation(field, value, words):
    """meta.json's mean/std reach the .mar handler through EvalTransform: std 0 would divide
    by zero there."""
    with pytest.raises(ImageError, match=words):
        EvalTransform((28, 28), 1, 28, **{field: value})


def test_an_image_above_the_bomb_limit_is_refused_not_decoded_with_a_warning(tmp_path):
    """Issue 27: a 12000x12000 image (above PIL's MAX_IMAGE_PIXELS, below twice it) was
    decoded with only a DecompressionBombWarning."""
    import warnings

    side = 12000
    assert Image.MAX_IMAGE_PIXELS < side * side < 2 * Image.MAX_IMAGE_PIXELS
    path = tmp_path / "huge.png"
    Image.new("1", (side, side)).save(path)  # 1-bit: a small file
    assert path.stat().st_size < 100_000
    for source in (path, path.read_bytes()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with pytest.raises(ImageError, match=f"image too large to decode safely "
                                                 f"\\({side}x{side} = {side * side} pixels"):
                decode(source, 1)


def test_one_interpolation_table():
    """Issue 30: imaging holds the one table; the weights spec and MXNet's RecordIO iterator
    (OpenCV's codes) derive from it."""
    from inceptionzoo import transforms, weights_spec

    assert tuple(transforms.INTERPOLATIONS) == weights_spec.INTERPOLATIONS
    assert set(transforms.OPENCV_INTERPOLATIONS) == set(transforms.INTERPOLATIONS)
