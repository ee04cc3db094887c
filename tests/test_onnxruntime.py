"""The ONNX export in ONNX Runtime, in this process (the onnxruntime extra installs beside
MXNet 1.9.1 and numpy 1.23.5). Without onnxruntime these tests fail: they never skip."""
import mxnet as mx
import numpy as np
import pytest

from conftest import is_big, randomise_bn_statistics
from inceptionzoo import get_model, list_models
from inceptionzoo.export import export

#: ONNX Runtime against MXNet: max |difference| relative to the largest |logit| of the set
RELATIVE_BAR = 1e-5


def ort_run(model, x, capfd=None):
    """Logits of ``x`` from the ONNX file in ONNX Runtime (every graph optimisation), in
    chunks of 1,000; with ``capfd``, also what ONNX Runtime wrote to stderr (warnings up)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 2  # warnings and up go to stderr, which the test reads
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = np.concatenate([sess.run(None, {name: x[i:i + 1000]})[0]
                          for i in range(0, len(x), 1000)])
    return out, (capfd.readouterr().err if capfd is not None else "")


@pytest.mark.parametrize("preprocess", [False, True])
def test_weights_are_not_graph_inputs_and_axes_are_named(tmp_path, preprocess):
    import onnx

    net = get_model("inception_mnist")
    net.initialize(mx.init.Xavier())
    path = export(net, str(tmp_path / "m"), onnx=True, preprocess=preprocess)["onnx"]
    graph = onnx.load(path).graph
    constants = {t.name for t in graph.initializer}
    assert set(net.collect_params()) <= constants and [i.name for i in graph.input] == ["data"]

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert dims(graph.input[0]) == (["batch", 28, 28] if preprocess else ["batch", 1, 28, 28])
    assert [o.name for o in graph.output] == ["logits"] and dims(graph.output[0]) == ["batch", 10]
    assert graph.node[-1].output[0] == "logits"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["inception_mnist", "inception_naive_mnist"])
@pytest.mark.parametrize("preprocess", [False, True])
def test_onnxruntime_matches_mxnet_on_the_full_mnist_test_set(tmp_path, mnist_dir, model,
                                                              preprocess, capfd):
    from inceptionzoo.mnist import load_mnist, to_input

    images, labels = load_mnist(mnist_dir, train=False)
    assert len(images) == 10000
    x = images if preprocess else to_input(images)
    paths = export(model, str(tmp_path / model), onnx=True, preprocess=preprocess)
    net = mx.gluon.SymbolBlock.imports(paths["symbol"], ["data"], paths["params"])
    ref = np.concatenate([net(mx.nd.array(x[i:i + 1000], dtype=x.dtype)).asnumpy()
                          for i in range(0, len(x), 1000)])
    capfd.readouterr()
    got, err = ort_run(paths["onnx"], x, capfd)
    assert "appears in graph inputs" not in err, err[-2000:]  # no per-weight warning
    assert got.shape == ref.shape == (10000, 10)
    assert (got.argmax(1) == ref.argmax(1)).all()
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() <= RELATIVE_BAR * scale, (np.abs(got - ref).max(), scale)
    assert (ref.argmax(1) == labels).mean() > 0.98


@pytest.mark.slow
@pytest.mark.parametrize("model", [n for n in list_models() if is_big(n)])
def test_onnxruntime_runs_the_imagenet_networks_export(tmp_path, model):
    """The big networks at their full input size (299 or 224), random weights with batch-norm
    statistics away from 0/1 (so a dropped or misread statistic shows), two random images."""
    mx.random.seed(0)
    net = get_model(model)
    net.initialize(mx.init.Xavier(magnitude=2))
    x = mx.nd.random.uniform(shape=(2,) + tuple(net.info.input_shape))
    net(x)  # deferred shapes
    randomise_bn_statistics(net)
    ref = net(x).asnumpy()
    paths = export(net, str(tmp_path / model / model), onnx=True)
    got, _ = ort_run(paths["onnx"], x.asnumpy())
    assert got.shape == ref.shape == (2, 1000)
    assert np.abs(got - ref).max() <= RELATIVE_BAR * np.abs(ref).max(), \
        np.abs(got - ref).max() / np.abs(ref).max()
