"""The ONNX export in ONNX Runtime. onnxruntime needs numpy >= 1.24.2 and cannot sit beside
MXNet 1.9.1, so it runs in the side venv of `make ort-venv` (.venv-ort), in a subprocess that
reads and writes .npy files. Without that venv the parity tests skip (fail under `make test`)."""
import os
import subprocess

import mxnet as mx
import numpy as np
import pytest

from conftest import side_env_python
from inceptionzoo import get_model
from inceptionzoo.export import export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORT_PYTHON = os.environ.get("INCEPTIONZOO_ORT_PYTHON",
                            os.path.join(ROOT, ".venv-ort", "bin", "python"))
#: ONNX Runtime against MXNet: max |difference| relative to the largest |logit| of the set
RELATIVE_BAR = 1e-5

ORT_RUN = r"""
import sys, numpy as np, onnxruntime as ort
model, inp, out = sys.argv[1:4]
opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
opts.log_severity_level = 2  # warnings and up go to stderr, which the test reads
sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
x = np.load(inp)
name = sess.get_inputs()[0].name
np.save(out, np.concatenate([sess.run(None, {name: x[i:i + 1000]})[0]
                             for i in range(0, len(x), 1000)]))
"""


def ort_python():
    return side_env_python(ORT_PYTHON, "the ONNX Runtime side venv (`make ort-venv`, or set "
                           "INCEPTIONZOO_ORT_PYTHON to a python that has onnxruntime)")


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
                                                              preprocess):
    from inceptionzoo.mnist import load_mnist, to_input

    python = ort_python()
    images, labels = load_mnist(mnist_dir, train=False)
    assert len(images) == 10000
    x = images if preprocess else to_input(images)
    paths = export(model, str(tmp_path / model), onnx=True, preprocess=preprocess)
    net = mx.gluon.SymbolBlock.imports(paths["symbol"], ["data"], paths["params"])
    ref = np.concatenate([net(mx.nd.array(x[i:i + 1000], dtype=x.dtype)).asnumpy()
                          for i in range(0, len(x), 1000)])
    np.save(tmp_path / "x.npy", x)
    p = subprocess.run([python, "-c", ORT_RUN, paths["onnx"], str(tmp_path / "x.npy"),
                        str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "appears in graph inputs" not in p.stderr, p.stderr[-2000:]  # no per-weight warning
    got = np.load(tmp_path / "y.npy")
    assert got.shape == ref.shape == (10000, 10)
    assert (got.argmax(1) == ref.argmax(1)).all()
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() <= RELATIVE_BAR * scale, (np.abs(got - ref).max(), scale)
    assert (ref.argmax(1) == labels).mean() > 0.98


@pytest.mark.slow
@pytest.mark.parametrize("model", ["googlenet", "googlenet_bn", "inception_v3", "inception_v4",
                                   "inception_resnet_v2"])
def test_onnxruntime_runs_the_imagenet_networks_export(tmp_path, model):
    """The big networks at their full input size (299 or 224), random weights with batch-norm
    statistics away from 0/1 (so a dropped or misread statistic shows), two random images."""
    python = ort_python()
    mx.random.seed(0)
    net = get_model(model)
    net.initialize(mx.init.Xavier(magnitude=2))
    x = mx.nd.random.uniform(shape=(2,) + tuple(net.info.input_shape))
    net(x)  # deferred shapes
    rng = np.random.RandomState(0)
    for p in net.collect_params().values():
        if p.name.endswith("running_var"):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, p.shape)))
        elif p.name.endswith("running_mean"):
            p.set_data(mx.nd.array(rng.uniform(-0.2, 0.2, p.shape)))
    ref = net(x).asnumpy()
    paths = export(net, str(tmp_path / model / model), onnx=True)
    np.save(tmp_path / "x.npy", x.asnumpy())
    p = subprocess.run([python, "-c", ORT_RUN, paths["onnx"], str(tmp_path / "x.npy"),
                        str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    got = np.load(tmp_path / "y.npy")
    assert got.shape == ref.shape == (2, 1000)
    assert np.abs(got - ref).max() <= RELATIVE_BAR * np.abs(ref).max(), \
        np.abs(got - ref).max() / np.abs(ref).max()
