"""MXNet graph -> ONNX model file (the ``onnx`` extra), through MXNet's own converters."""
import numpy as np

from . import __version__
from .errors import InceptionZooError

__all__ = ["write_onnx", "ONNX_OPSET"]

#: MXNet 1.9.1's ONNX converters stop at opset 13; newer onnx packages default to newer opsets.
ONNX_OPSET = 13


def write_onnx(sym, params, input_shape, input_dtype, path, output_names=("logits",)):
    """Convert a graph and its parameters to an ONNX file with a named dynamic batch axis.

    The weights are initializers only, not graph inputs (so ONNX Runtime can fold constants and
    does not warn once per initializer); the input's first axis and each output's are named
    ``batch``, and the outputs are ``(batch, ...)`` named ``output_names``, in order.

    Parameters
    ----------
    sym : mxnet.Symbol
        The graph, with one input that is not in ``params``, and one output per name of
        ``output_names``.
    params : dict of str to mxnet.nd.NDArray
        Every other graph input (arguments and auxiliary states), by name without ``arg:`` /
        ``aux:`` prefixes.
    input_shape : tuple of int
        Shape of the input with batch size 1.
    input_dtype : str
        ``'float32'`` or ``'uint8'``.
    path : str
        The file to write (the caller renames it into place).
    output_names : sequence of str
        Names of the graph's outputs (a feature extractor's maps: one per stage).
    """
    import onnx
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    from onnx import helper

    output_names = list(output_names)
    data = [n for n in sym.list_inputs() if n not in params]
    _, out_shapes, _ = sym.infer_shape(**{data[0]: tuple(input_shape)})
    if len(out_shapes) != len(output_names):
        raise InceptionZooError(f"the graph has {len(out_shapes)} outputs; got "
                                f"{len(output_names)} output names {output_names}")
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
    renamed = {out.name: name for out, name in zip(graph.output, output_names)}
    taken = ({o for node in graph.node for o in node.output} | constants) - set(renamed)
    if len(renamed) != len(output_names) or taken & set(output_names):
        raise InceptionZooError(f"ONNX output names must be distinct and not name another "
                                f"tensor of the graph; got {output_names}")
    for node in graph.node:  # a map of an earlier stage also feeds the next stage
        node.input[:] = [renamed.get(i, i) for i in node.input]
        node.output[:] = [renamed.get(o, o) for o in node.output]
    for out, name, shape in zip(graph.output, output_names, out_shapes):
        out.CopyFrom(helper.make_tensor_value_info(
            name, out.type.tensor_type.elem_type, ["batch"] + list(shape[1:])))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="inceptionzoo", producer_version=__version__)
    onnx.checker.check_model(model, full_check=True)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
