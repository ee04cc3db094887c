"""Lower-precision graphs for serving: INT8 (oneDNN quantisation, and ONNX Runtime's static
quantisation of an ONNX model) and bfloat16. :mod:`inceptionzoo.accuracy_guard` measures each
against its float32 twin before an export writes it.

- ``int8``: MXNet's oneDNN quantisation (:func:`quantize`, ``quantize_net``), its activation
  ranges calibrated on calibration images (``naive``: min/max, ``entropy``: KL-optimal
  thresholds).
- ``int8`` in ONNX Runtime (:func:`quantize_onnx`): QDQ, per-channel int8 weights, uint8
  activations, min/max ranges from the same calibration images.
- ``bf16``: every convolution and fully-connected layer in bfloat16 (its inputs and weights
  cast by ``amp_cast``), the dtype-neutral operators between them (ReLU, pooling, concat,
  batch norm ... MXNet's AMP list) kept in bfloat16, everything else and the output in float32.
  (``mxnet.contrib.amp.convert_symbol`` of MXNet 1.9.1 inserts no casts on these graphs: the
  graph it returns computes in float32.)
"""
import json
import os
import sys
import tempfile
import warnings

import mxnet as mx
import numpy as np

from . import runtimes
from ._checks import check_count
from ._errors import install_hint
from .errors import InceptionZooError
from .symbol_graphs import symbol_graph

__all__ = ["quantize", "quantize_onnx", "calibration_batch", "CALIB_BATCH_BYTES", "bfloat16_symbol", "to_bfloat16", "PRECISIONS",
           "CALIB_MODES", "ONNX_INT8"]

#: What ``export(..., precision=)`` and ``--precision`` take.
PRECISIONS = ("fp32", "int8", "bf16")
#: INT8 calibration modes (:func:`inceptionzoo.accuracy_guard.lower_precision` compares them).
CALIB_MODES = ("naive", "entropy")
#: How :func:`quantize_onnx` quantises (recorded in ``NAME-meta.json``).
ONNX_INT8 = {"format": "QDQ", "weights": "int8 per channel", "activations": "uint8",
             "calibration": "minmax"}


#: Input bytes of one calibration batch at most. Both calibrations keep every activation of a
#: batch alive at once (MXNet's monitor reads each layer's output; ONNX Runtime's calibration
#: graph adds a reduction to every tensor): Inception-ResNet-v2 at 299x299 took ~375 MB per
#: image, and a batch of 51 ran out of 24 GB. 8 MB: 7 images at 299x299, any MNIST batch.
CALIB_BATCH_BYTES = 8 << 20


def calibration_batch(images, batch_size):
    """The calibration batch size for ``images``: ``batch_size``, fewer for big inputs
    (:data:`CALIB_BATCH_BYTES`), at most ``len(images)``, at least 1.

    Parameters
    ----------
    images : numpy.ndarray
        The calibration inputs, ``(N, C, H, W)``.
    batch_size : int

    Returns
    -------
    int
    """
    per_image = max(1, images[0].nbytes) if len(images) else 1
    return max(1, min(batch_size, len(images), CALIB_BATCH_BYTES // per_image))


def quantize(net, calib_images, batch_size=100, calib_mode="naive"):
    """INT8 copy of ``net`` for MXNet's CPU (oneDNN) build, calibrated on ``calib_images``.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        An initialised network (it is hybridized as a side effect).
    calib_images : array, shape (N, C, H, W)
        Inputs, already transformed as for the network (e.g. ``data.to_input``). Use real
        data: ``tests/test_quantization.py`` checks that 1,000 MNIST training digits keep the
        shipped ``inception_mnist`` within 0.3 points of its float32 test accuracy.
    batch_size : int
        Calibration batch size (fewer images for big inputs: :func:`calibration_batch`).
    calib_mode : str
        ``'naive'`` (activation ranges are the min/max seen) or ``'entropy'`` (thresholds that
        minimise the KL divergence of the quantised distribution).

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized with ``static_alloc`` and ``static_shape``. It runs only on MXNet's CPU build;
        export the float32 network for anything else.
    """
    from mxnet.contrib.quantization import quantize_net

    if calib_mode not in CALIB_MODES:
        raise InceptionZooError(f"calib_mode must be one of {', '.join(CALIB_MODES)}; got "
                                f"{calib_mode!r}")
    x = np.asarray(calib_images, dtype=np.float32)
    if x.ndim != 4 or not len(x):
        raise InceptionZooError(f"calib_images must be a non-empty (N, C, H, W) array; got shape "
                                f"{x.shape}")
    bs = calibration_batch(x, batch_size)
    calib = [[mx.nd.array(x[i:i + bs])] for i in range(0, len(x) - bs + 1, bs)]
    # MXNet reads each layer's output in a ctypes callback, whose exceptions Python only
    # prints ("Exception ignored on calling ctypes callback function"): a layer it could not
    # read would be left uncalibrated without a word
    failed, hook = [], sys.unraisablehook
    sys.unraisablehook = lambda unraisable: failed.append(unraisable.exc_value)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot decide type")
            warnings.filterwarnings("ignore", message=".*quantize_net_v2")
            qnet = quantize_net(net, quantized_dtype="auto", calib_mode=calib_mode,
                                calib_data=calib, num_calib_examples=len(calib) * bs,
                                ctx=mx.cpu(),
                                data_shapes=[mx.io.DataDesc("data", (bs,) + x.shape[1:])])
    finally:
        sys.unraisablehook = hook
    if failed:
        text = str(failed[0]).strip()
        why = text.splitlines()[-1] if text else type(failed[0]).__name__
        raise InceptionZooError(
            f"MXNet's INT8 calibration ({calib_mode}) could not read {len(failed)} layer "
            f"output(s) ({why}), which would be left uncalibrated; seen after training in the "
            "same process: save the weights and export them from a fresh process "
            "(inceptionzoo export --params)")
    qnet.hybridize(static_alloc=True, static_shape=True)
    return qnet


def quantize_onnx(model, calib_images, batch_size=50):
    """ONNX Runtime's static INT8 quantisation of a float32 ONNX model (:data:`ONNX_INT8`).

    Parameters
    ----------
    model : bytes
        The float32 ONNX model (one input: network inputs ``(N, C, H, W)``).
    calib_images : array, shape (N, C, H, W)
        Calibration inputs, transformed as for the network.
    batch_size : int
        Calibration batch size (fewer images for big inputs: :func:`calibration_batch`).

    Returns
    -------
    bytes
        The quantised model (QuantizeLinear / DequantizeLinear pairs around int8 operators).

    Raises
    ------
    InceptionZooError
        ``onnxruntime.quantization`` cannot be imported (it needs onnx >= 1.16 and ml_dtypes:
        the ``onnx`` and ``onnxruntime`` extras), or the images are not a non-empty 4-d array.
    """
    try:  # optional extras: onnx and onnxruntime
        from onnxruntime import quantization as ortq
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except (ImportError, AttributeError) as err:  # AttributeError: an onnx older than 1.16
        raise InceptionZooError(f"ONNX Runtime's quantisation cannot be imported ({err}): "
                                f"{install_hint('onnx,onnxruntime')}") from None
    x = np.ascontiguousarray(calib_images, dtype=np.float32)
    if x.ndim != 4 or not len(x):
        raise InceptionZooError(f"calib_images must be a non-empty (N, C, H, W) array; got shape "
                                f"{x.shape}")
    bs = calibration_batch(x, check_count("batch_size", batch_size))
    name = runtimes.OrtRunner(model).input_name

    class Reader(ortq.CalibrationDataReader):
        def __init__(self):
            self.batches = iter(range(0, len(x), bs))

        def get_next(self):
            i = next(self.batches, None)
            return None if i is None else {name: x[i:i + bs]}

    with tempfile.TemporaryDirectory(prefix="inceptionzoo-onnx-int8-") as tmp:
        src, pre, out = (os.path.join(tmp, f) for f in ("f32.onnx", "pre.onnx", "int8.onnx"))
        with open(src, "wb") as f:
            f.write(model)
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        ortq.quantize_static(
            pre, out, Reader(), quant_format=ortq.QuantFormat.QDQ, per_channel=True,
            activation_type=ortq.QuantType.QUInt8, weight_type=ortq.QuantType.QInt8,
            calibrate_method=ortq.CalibrationMethod.MinMax)
        with open(out, "rb") as f:
            return f.read()


# -- bfloat16 -----------------------------------------------------------------------------------

#: Operators computed in bfloat16 (their inputs cast to it).
_BF16_OPS = ("Convolution", "FullyConnected")


def _bf16_neutral(node):
    """Whether an operator runs in bfloat16 when its data is bfloat16 (MXNet's AMP list of
    dtype-neutral operators, plus ``Activation`` ReLU, which oneDNN runs in bfloat16)."""
    from mxnet.contrib.amp.lists.symbol_bf16 import BF16_FP32_FUNCS

    if node["op"] == "Activation":
        return node.get("attrs", {}).get("act_type") == "relu"
    return node["op"] in BF16_FP32_FUNCS


def bfloat16_symbol(sym):
    """The graph with convolutions and fully-connected layers in bfloat16 (see the module
    text): ``amp_cast`` nodes inserted where the dtype changes; the outputs are float32.

    Parameters
    ----------
    sym : mxnet.Symbol
        A float32 graph.

    Returns
    -------
    mxnet.Symbol
        Same inputs and outputs.
    """
    graph = symbol_graph(sym)
    old, nodes, where, bf16, casts = graph["nodes"], [], {}, set(), {}

    def cast(entry, dtype):  # entry: [node, output, version] in the new graph
        key = (entry[0], entry[1], dtype)
        if key not in casts:
            nodes.append({"op": "amp_cast", "name": f"{nodes[entry[0]]['name']}_{entry[1]}"
                                                    f"_amp_cast_{dtype}",
                          "attrs": {"dtype": dtype}, "inputs": [list(entry)]})
            casts[key] = len(nodes) - 1
            if dtype == "bfloat16":
                bf16.add(casts[key])
        return [casts[key], 0, 0]

    for i, node in enumerate(old):
        inputs = [[where[a], b, c] for a, b, c in node["inputs"]]
        node = dict(node, inputs=inputs)
        data = inputs[:1] if node["op"].startswith("BatchNorm") else inputs
        if node["op"] in _BF16_OPS:
            node["inputs"] = [e if e[0] in bf16 else cast(e, "bfloat16") for e in inputs]
            out_bf16 = True
        elif node["op"] != "null" and _bf16_neutral(node) and any(e[0] in bf16 for e in data):
            node["inputs"] = [e if e[0] in bf16 or e not in data else cast(e, "bfloat16")
                              for e in inputs]
            out_bf16 = True
        else:
            node["inputs"] = [cast(e, "float32") if e[0] in bf16 else e for e in inputs]
            out_bf16 = False
        nodes.append(node)
        where[i] = len(nodes) - 1
        if out_bf16:
            bf16.add(where[i])
    heads = [[where[a], b, c] for a, b, c in graph["heads"]]
    heads = [cast(h, "float32") if h[0] in bf16 else h for h in heads]
    out = {"nodes": nodes, "arg_nodes": [i for i, n in enumerate(nodes) if n["op"] == "null"],
           "heads": heads, "attrs": graph.get("attrs", {})}
    out["node_row_ptr"] = list(range(len(nodes) + 1))  # recomputed by MXNet on load
    return mx.sym.load_json(json.dumps(out))


def to_bfloat16(net, input_shape):
    """A bfloat16 copy of ``net`` (:func:`bfloat16_symbol` of its graph, its parameters
    shared, stored in float32 and cast in the graph).

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        An initialised network.
    input_shape : tuple of int
        ``(C, H, W)``.

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized with ``static_alloc`` and ``static_shape``.
    """
    data = mx.sym.var("data")
    out = net(data)
    if isinstance(out, (list, tuple)):
        out = mx.sym.Group(list(out))
    sym = bfloat16_symbol(out)
    with warnings.catch_warnings():  # the input's dtype is given at the first call
        warnings.filterwarnings("ignore", message="Cannot decide type")
        block = mx.gluon.SymbolBlock(sym, [mx.sym.var("data")], params=net.collect_params())
    block.hybridize(static_alloc=True, static_shape=True)
    block(mx.nd.zeros((1,) + tuple(input_shape)))  # builds the graph now: errors here
    return block
