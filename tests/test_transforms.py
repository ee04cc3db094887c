"""The one input transform, pixel conversion, input dtype checks and MXNet error messages."""
import mxnet as mx
import numpy as np
import pytest

from conftest import built
from inceptionzoo.transforms import InputTransform, normalisation, to_pixels


def test_normalisation_per_channel():
    assert normalisation(0.5, 0.25, 3) == ((0.5,) * 3, (0.25,) * 3)
    assert normalisation([0.1, 0.2, 0.3], (1, 2, 3), 3) == ((0.1, 0.2, 0.3), (1.0, 2.0, 3.0))
    for mean, std, words in [(0, 0, "std must be > 0"), (0, float("nan"), "std must be finite"),
                             (float("nan"), 1, "mean must be finite"),
                             ((0, 0), 1, "one value or one per input channel \\(3\\)"),
                             (None, 1, "mean must be numbers")]:
        with pytest.raises(ValueError, match=words):
            normalisation(mean, std, 3)


def test_to_pixels_rounds_clips_and_refuses_non_finite():
    np.testing.assert_array_equal(to_pixels(np.array([-1.0, 0.4, 0.6, 254.5, 1e9])),
                                  [0, 0, 1, 254, 255])
    np.testing.assert_array_equal(to_pixels(np.array([-5, 300], np.int64)), [0, 255])
    u8 = np.arange(3, dtype=np.uint8)
    assert to_pixels(u8) is u8
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        to_pixels(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="must be numbers"):
        to_pixels(np.array(["x"]))


@pytest.mark.parametrize("hybridize", [False, True])
def test_transform_layouts_and_size_check(hybridize):
    t = InputTransform((1, 4, 4), mean=0.5, std=0.5)
    if hybridize:
        t.hybridize()
    raw = np.arange(32, dtype=np.uint8).reshape(2, 4, 4)
    want = (raw[:, None] / 255.0 - 0.5) / 0.5
    for x in (raw, raw[..., None]):
        np.testing.assert_allclose(t(mx.nd.array(x, dtype="uint8")).asnumpy(), want, rtol=1e-6)
    with pytest.raises(mx.base.MXNetError):  # another H x W is an error, not a silent reshape
        t(mx.nd.zeros((2, 5, 5), dtype="uint8")).wait_to_read()


@pytest.mark.parametrize("dtype", ["float64", "float16", "uint8", "int32"])
@pytest.mark.parametrize("hybridize", [False, True])
def test_network_names_expected_and_given_dtype(dtype, hybridize):
    net, x = built("inception_mnist")
    if hybridize:
        net.hybridize()
    with pytest.raises(ValueError, match=f"expects float32 input .*got {dtype}"):
        net(x.astype(dtype))
    assert net(x).shape == (2, 10)  # still usable


def test_mxnet_message_extracts_the_meaningful_line():
    from inceptionzoo._errors import mxnet_message

    try:
        mx.nd.load(__file__)
    except mx.base.MXNetError as err:
        msg = mxnet_message(err)
    assert msg.startswith("Check failed: ") and msg.endswith("Invalid NDArray file format")
    assert mxnet_message(RuntimeError("[04:16:22] ../src/x.cc:12: bad thing")) == "bad thing"


def test_mean_and_std_are_checked_once_by_the_one_normaliser(monkeypatch):
    """Issue 30: the graph op, `normalisation` and a weights spec check mean/std through
    `transforms.Normalisation`, the one check (its refusal, changed here, is what they raise)."""
    from inceptionzoo import imaging, transforms
    from inceptionzoo.errors import InceptionZooError
    from inceptionzoo.weights_spec import WeightsSpec

    def refuse(self):
        raise imaging.ImageError("mean refused by the one check")

    monkeypatch.setattr(transforms.Normalisation, "__post_init__", refuse)
    for make in (lambda: InputTransform((3, 2, 2), 0.5, 0.25),
                 lambda: normalisation(0.5, 0.25, 3),
                 lambda: WeightsSpec(model="inception_mnist", classes=10, class_names=None,
                                     input_size=(1, 28, 28), resize_size=28, crop_pct=1.0,
                                     interpolation="bilinear", mean=(0.0,), std=(1.0,),
                                     source="shipped")):
        with pytest.raises(InceptionZooError, match="refused by the one check"):
            make()
