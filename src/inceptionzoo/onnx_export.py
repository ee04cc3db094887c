"""MXNet graph -> ONNX model file (the ``onnx`` extra), through MXNet's own converters."""
import numpy as np

from . import __version__

__all__ = ["write_onnx", "ONNX_OPSET"]

#: MXNet 1.9.1's ONNX converters stop at opset 13; newer onnx packages default to newer opsets.
ONNX_OPSET = 13


def write_onnx(sym, params, input_shape, input_dtype, path, output_name="logits"):
    """Convert a graph and its parameters to an ONNX file with a named dynamic batch axis.

    The weights are initializers only, not graph inputs (so ONNX Runtime can fold constants and
    does not warn once per initializer); the input's first axis and the output's are named
    ``batch``, and the output is ``(batch, <outputs>)`` named ``output_name``.

    Parameters
    ----------
    sym : mxnet.Symbol
        The graph, with one input that is not in ``params`` and one output.
    params : dict of str to mxnet.nd.NDArray
        Every other graph input (arguments and auxiliary states), by name without ``arg:`` /
        ``aux:`` prefixes.
    input_shape : tuple of int
        Shape of the input with batch size 1.
    input_dtype : str
        ``'float32'`` or ``'uint8'``.
    path : str
        The file to write (the caller renames it into place).
    output_name : str
        Name of the graph output.
    """
    import onnx
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    from onnx import helper

    data = [n for n in sym.list_inputs() if n not in params]
    _, (out_shape,), _ = sym.infer_shape(**{data[0]: tuple(input_shape)})
    graph = MXNetGraph().create_onnx_graph_proto(
        sym, dict(params), [tuple(input_shape)],
        [helper.np_dtype_to_tensor_dtype(np.dtype(input_dtype))], opset_version=ONNX_OPSET,
        dynamic=True, dynamic_input_shapes=[(None,) + tuple(input_shape[1:])])
    constants = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    del graph.input[:]
    graph.input.extend(inputs)
    for value in graph.input:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    (out,) = graph.output
    for node in graph.node:
        node.output[:] = [output_name if o == out.name else o for o in node.output]
    graph.output[0].CopyFrom(helper.make_tensor_value_info(
        output_name, out.type.tensor_type.elem_type, ["batch"] + list(out_shape[1:])))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="inceptionzoo", producer_version=__version__)
    onnx.checker.check_model(model, full_check=True)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
