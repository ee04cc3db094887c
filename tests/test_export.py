import json
import os
import subprocess
import sys
import textwrap

import mxnet as mx
import numpy as np
import pytest

from conftest import built, model_params, test_shape
from inceptionzoo import get_model
from inceptionzoo.data import example_images
from inceptionzoo.data import to_input
from inceptionzoo.export import export
from inceptionzoo.onnx_export import ONNX_OPSET
from inceptionzoo.serving import PredictionError, Predictor
from inceptionzoo._io import sha1_file

MODELS = model_params()

# Runs in a fresh interpreter that imports only mxnet and numpy: the export must stand alone.
PLAIN_MXNET = textwrap.dedent("""
    import json, sys
    import mxnet as mx, numpy as np
    prefix, inputs_file = sys.argv[1], sys.argv[2]
    assert 'inceptionzoo' not in sys.modules
    sym = mx.sym.load(prefix + '-symbol.json')
    saved = mx.nd.load(prefix + '-0000.params')
    names = [a for a in sym.list_arguments() if 'arg:' + a not in saved]
    out = {}
    for key, x in np.load(inputs_file).items():
        net = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', names,
                                           prefix + '-0000.params')
        a = net(mx.nd.array(x)).asnumpy()
        s, arg, aux = mx.model.load_checkpoint(prefix, 0)  # the way MMS loads it
        mod = mx.mod.Module(symbol=s, data_names=names, label_names=None, context=mx.cpu())
        mod.bind(for_training=False, data_shapes=[(names[0], x.shape)])
        mod.set_params(arg, aux, allow_missing=True, allow_extra=True)
        mod.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=False)
        b = mod.get_outputs()[0].asnumpy()
        out[key] = [a.tolist(), b.tolist()]
    print(json.dumps({'names': names, 'out': out, 'modules': sorted(
        m for m in sys.modules if m.startswith('inceptionzoo'))}))
""")


@pytest.mark.parametrize("name", MODELS)
def test_export_loads_in_plain_mxnet(name, tmp_path):
    net, _ = built(name)  # fresh: never run, not hybridized
    paths = export(net, str(tmp_path / name))
    assert set(paths) == {"symbol", "params", "meta", "signature", "synset"}
    inputs = {f"b{n}": np.random.RandomState(n).rand(n, *test_shape(name))
              .astype(np.float32) for n in ((1, 3) if net.info.input_shape[1] > 64 else (1, 7))}
    np.savez(tmp_path / "inputs.npz", **inputs)
    proc = subprocess.run([sys.executable, "-c", PLAIN_MXNET, str(tmp_path / name),
                           str(tmp_path / "inputs.npz")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["names"] == ["data"] and res["modules"] == []
    net.hybridize(active=False)
    for key, x in inputs.items():
        ref = net(mx.nd.array(x)).asnumpy()
        for got in res["out"][key]:
            assert np.abs(np.array(got, dtype=np.float32) - ref).max() <= 1e-6 * max(
                1.0, np.abs(ref).max()), key


def test_sidecars(tmp_path):
    net, _ = built("inception_mnist")
    paths = export(net, str(tmp_path / "inception_mnist"))
    meta = json.loads(open(paths["meta"]).read())
    assert meta["model"] == "inception_mnist" and meta["classes"] == 10
    assert meta["input_shape"] == [0, 1, 28, 28] and meta["input_dtype"] == "float32"
    assert meta["params_sha1"] == sha1_file(paths["params"])
    assert meta["symbol_sha1"] == sha1_file(paths["symbol"])
    assert meta["mxnet_version"] == mx.__version__
    sig = json.loads(open(paths["signature"]).read())
    assert sig["inputs"] == [{"data_name": "data", "data_shape": [0, 1, 28, 28]}]
    assert open(paths["synset"]).read().split() == [str(i) for i in range(10)]
    # MMS loads <model_dir>/<model name>-symbol.json at epoch 0
    assert os.path.basename(paths["symbol"]) == "inception_mnist-symbol.json"
    assert os.path.basename(paths["params"]) == "inception_mnist-0000.params"


def test_existing_export_is_kept_unless_overwrite(tmp_path):
    net, _ = built("inception_mnist")
    paths = export(net, str(tmp_path / "m"))
    before = sha1_file(paths["params"])
    net2, _ = built("inception_mnist", seed=5)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export(net2, str(tmp_path / "m"))
    assert sha1_file(paths["params"]) == before
    export(net2, str(tmp_path / "m"), overwrite=True)
    assert sha1_file(paths["params"]) != before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp left over


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    import inceptionzoo.onnx_export as ex

    net, _ = built("inception_mnist")

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ex, "write_onnx", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export(net, str(tmp_path / "m"), onnx=True)
    assert os.listdir(tmp_path) == []


def test_bad_export_arguments(tmp_path):
    with pytest.raises(ValueError, match="not initialised"):
        export(get_model("inception_mnist"), str(tmp_path / "m"))
    with pytest.raises(ValueError, match="pass input_shape"):
        block = mx.gluon.nn.Dense(3, in_units=4)
        block.initialize()
        export(block, str(tmp_path / "d"))
    (tmp_path / "f").write_text("")
    net, _ = built("inception_mnist")
    with pytest.raises(OSError, match="cannot create the output folder"):
        export(net, str(tmp_path / "f" / "sub" / "m"))


def test_export_any_hybridblock(tmp_path):
    block = mx.gluon.nn.HybridSequential()
    block.add(mx.gluon.nn.Dense(3, in_units=4))
    block.initialize()
    paths = export(block, str(tmp_path / "d"), input_shape=(4,))
    x = mx.nd.random.uniform(shape=(2, 4))
    loaded = mx.gluon.SymbolBlock.imports(paths["symbol"], ["data"], paths["params"])
    np.testing.assert_allclose(loaded(x).asnumpy(), block(x).asnumpy(), rtol=1e-6)


def test_preprocess_matches_python_transform(tmp_path):
    net, _ = built("inception_mnist")
    paths = export(net, str(tmp_path / "m"), preprocess=True)
    meta = json.loads(open(paths["meta"]).read())
    assert meta["input_dtype"] == "uint8" and meta["input_shape"] == [0, 28, 28]
    raw = np.random.RandomState(0).randint(0, 256, (7, 28, 28)).astype(np.uint8)
    ref = net(mx.nd.array(to_input(raw))).asnumpy()
    loaded = mx.gluon.SymbolBlock.imports(paths["symbol"], ["data"], paths["params"])
    for x in (raw, raw[..., None]):  # (N, 28, 28) and (N, 28, 28, 1)
        got = loaded(mx.nd.array(x, dtype="uint8")).asnumpy()
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preprocess", [False, True])
def test_onnx_parity(tmp_path, preprocess):
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    net, _ = built("inception_mnist")
    paths = export(net, str(tmp_path / "m"), onnx=True, preprocess=preprocess)
    model = onnx.load(paths["onnx"])
    assert [o.version for o in model.opset_import if o.domain == ""] == [ONNX_OPSET]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value")  # dynamic batch axis
    evaluator = ReferenceEvaluator(model)
    for n in (1, 7):
        raw = np.random.RandomState(n).randint(0, 256, (n, 28, 28)).astype(np.uint8)
        ref = net(mx.nd.array(to_input(raw))).asnumpy()
        feed = raw if preprocess else to_input(raw)
        got = evaluator.run(None, {model.graph.input[0].name: feed})[0]
        assert np.abs(got - ref).max() <= 1e-5


@pytest.fixture(scope="module")
def pretrained_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deploy")
    export(get_model("inception_mnist", pretrained=True), str(folder / "inception_mnist"),
           preprocess=True)
    return str(folder)


def test_predictor_on_shipped_digits(pretrained_export):
    p = Predictor(pretrained_export)
    files = example_images()
    assert len(files) == 10
    results = p.predict_files(files, top_k=3)
    for path, top in zip(files, results):
        assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
        assert top[0][0] == os.path.basename(path).split("-")[1], path
    raw = open(files[0], "rb").read()
    assert p.predict([raw], top_k=1)[0][0][0] == results[0][0][0]   # encoded bytes
    from PIL import Image
    arr = np.asarray(Image.open(files[0]))
    assert p.predict(arr, top_k=1)[0][0][0] == results[0][0][0]     # one (28, 28) array
    np.testing.assert_allclose(p.probabilities(arr[None]).sum(axis=1), 1.0, rtol=1e-5)


def test_predictor_bad_input_then_still_usable(pretrained_export, tmp_path):
    p = Predictor(pretrained_export)
    (tmp_path / "not.png").write_text("hello")
    for bad, words in [([str(tmp_path / "not.png")], "not a readable PNG/JPEG"),
                       ([str(tmp_path / "missing.png")], "no such file"),
                       ([], "empty batch"),
                       (np.zeros((0, 28, 28)), "empty batch"),
                       (np.zeros((2, 20, 20)), "expected images of shape (28, 28)")]:
        with pytest.raises(PredictionError, match=words.replace("(", r"\(").replace(")", r"\)")):
            p.predict(bad)
    from PIL import Image
    Image.fromarray(np.full((56, 40, 3), 200, np.uint8)).save(tmp_path / "big.png")
    assert len(p.predict_files([tmp_path / "big.png"])[0]) == 3  # resized to 28x28, gray
    assert p.predict_files(example_images()[:1], top_k=1)[0][0][0] == "0"


def test_predictor_refuses_corrupt_or_missing_export(pretrained_export, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(pretrained_export, bad)
    params = bad / "inception_mnist-0000.params"
    params.write_bytes(params.read_bytes()[:-10])
    with pytest.raises(PredictionError, match="corrupt or not the exported one"):
        Predictor(str(bad))
    params.unlink()
    with pytest.raises(PredictionError, match="is missing"):
        Predictor(str(bad))
    with pytest.raises(PredictionError, match="found none"):
        Predictor(str(tmp_path))


def test_cli_export_and_predict(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    out = str(tmp_path / "deploy")
    subprocess.run([exe, "export", "inception_mnist", "--pretrained", "--out", out, "--onnx",
                    "--preprocess"], check=True, capture_output=True)
    assert sorted(os.listdir(out)) == sorted([
        "inception_mnist-symbol.json", "inception_mnist-0000.params", "inception_mnist.onnx",
        "inception_mnist-meta.json", "signature.json", "synset.txt"])
    again = subprocess.run([exe, "export", "inception_mnist", "--pretrained", "--out", out],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "overwrite" in again.stderr
    files = example_images()[:3]
    res = subprocess.run([exe, "predict", "--model-dir", out, "--json", "--top-k", "2", *files],
                         capture_output=True, text=True, check=True)
    got = json.loads(res.stdout)
    assert [g["top"][0]["label"] for g in got] == [os.path.basename(f).split("-")[1]
                                                   for f in files]
