"""MXNet graph -> ONNX model file (the ``onnx`` extra), through MXNet's own converters."""
import mxnet as mx
import numpy as np

from . import __version__

__all__ = ["write_onnx", "ONNX_OPSET"]

#: MXNet 1.9.1's ONNX converters stop at opset 13; newer onnx packages default to newer opsets.
ONNX_OPSET = 13


def write_onnx(sym, params, input_shape, input_dtype, path):
    """Convert a graph and its parameters to an ONNX file with a dynamic batch axis.

    Parameters
    ----------
    sym : mxnet.Symbol
        The graph, with one input that is not in ``params``.
    params : dict of str to mxnet.nd.NDArray
        Every other graph input (arguments and auxiliary states), by name without ``arg:`` /
        ``aux:`` prefixes.
    input_shape : tuple of int
        Shape of the input with batch size 1.
    input_dtype : str
        ``'float32'`` or ``'uint8'``.
    path : str
        The file to write (the caller renames it into place).
    """
    import onnx
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    from onnx import helper

    graph = MXNetGraph().create_onnx_graph_proto(
        sym, dict(params), [tuple(input_shape)],
        [helper.np_dtype_to_tensor_dtype(np.dtype(input_dtype))], opset_version=ONNX_OPSET,
        dynamic=True, dynamic_input_shapes=[(None,) + tuple(input_shape[1:])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="inceptionzoo", producer_version=__version__)
    onnx.checker.check_model(model)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
