"""MXNet Model Server: `export(..., mar=True)` / `inceptionzoo export --mar` writes an archive
that a real multi-model-server serves, with the handler inside (plain MXNet + PIL)."""
import io
import json
import os
import shutil
import zipfile

import numpy as np
import pytest

from conftest import FakeContext
from mms_server import request, running_mms
from inceptionzoo.cli import main
from inceptionzoo.mnist import example_images
from inceptionzoo.export import export

def _truth(path):
    return os.path.basename(path).split("-")[1]


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """One archive of the plain export and one of the --preprocess export (raw uint8 graph,
    with its ONNX file: the handler serves with ONNX Runtime where that is faster)."""
    root = tmp_path_factory.mktemp("mar")
    plain = export("inception_mnist", str(root / "plain" / "inception_mnist"), mar=True)["mar"]
    raw = export("inception_mnist", str(root / "raw" / "inception_mnist_uint8"),
                 preprocess=True, mar=True, onnx=True)["mar"]  # the server may use ONNX Runtime
    return {"inception_mnist": plain, "inception_mnist_uint8": raw}


def _unpacked(mar, folder):
    with zipfile.ZipFile(mar) as z:
        z.extractall(folder)
    return str(folder)


def test_archive_holds_the_export_the_handler_and_a_manifest(archives):
    with zipfile.ZipFile(archives["inception_mnist"]) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("MAR-INF/MANIFEST.json"))
        handler = z.read("inceptionzoo_handler.py").decode()
        serving = json.loads(z.read("serving.json"))
    assert names == {"inception_mnist-symbol.json", "inception_mnist-0000.params",
                     "inception_mnist-meta.json", "inception_mnist-synset.txt", "inceptionzoo_handler.py",
                     "inceptionzoo_imaging.py",
                     "serving.json", "serving-graph0-symbol.json", "serving-graph1-symbol.json",
                     "MAR-INF/MANIFEST.json"}
    assert serving["graphs"] == [
        {"up_to_batch": 2, "symbol_file": "serving-graph0-symbol.json"},
        {"up_to_batch": None, "symbol_file": "serving-graph1-symbol.json"}]
    assert manifest["runtime"] == "python" and manifest["model"]["modelName"] == "inception_mnist"
    assert manifest["model"]["handler"] == "inceptionzoo_handler:handle"
    assert _imports(handler) == {"glob", "importlib", "json", "os", "warnings", "mxnet",
                                 "numpy", "inceptionzoo_imaging", ".imaging"}  # .imaging: in-package
    with zipfile.ZipFile(archives["inception_mnist"]) as z:
        imaging = z.read("inceptionzoo_imaging.py").decode()
    assert _imports(imaging) == {"dataclasses", "io", "math", "os", "numpy", "PIL"}


def _imports(source):
    """Top modules a Python source imports (``.name`` for relative imports)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or "").split(".")[0])
    return found


@pytest.mark.parametrize("name", ["inception_mnist", "inception_mnist_uint8"])
def test_handler_answers_digits_and_refuses_bad_bodies_with_400(archives, tmp_path, name):
    """The handler in-process (no server): a batch of the 10 shipped digits, a non-image, an
    image of another size (resized and cropped like the Predictor's) and a corrupt header."""
    from PIL import Image

    import inceptionzoo.mms_handler as mms_handler

    service = mms_handler.InceptionZooService()
    ctx = FakeContext(_unpacked(archives[name], tmp_path))
    service.initialize(ctx)
    big = io.BytesIO()
    Image.new("L", (32, 30)).save(big, format="PNG")
    bodies = [open(p, "rb").read() for p in example_images()] + [
        b"not an image", big.getvalue(), b"P5\n28 28\n0\n" + bytes(784)]
    answers = [json.loads(a) for a in service.handle([{"body": b} for b in bodies], ctx)]
    assert [a.get("label") for a in answers[:10]] == [_truth(p) for p in example_images()]
    for a in answers[:10]:
        assert abs(sum(a["probabilities"].values()) - 1) < 1e-4
        assert a["probability"] == max(a["probabilities"].values())
    assert ctx.status == {10: (400, "Bad Request"), 12: (400, "Bad Request")}
    assert answers[10]["error"] == ("the request body (12 bytes): not an image of a supported "
                                    "format (JPEG, PNG, BMP, GIF, TIFF, WEBP, PPM)")
    assert answers[11]["label"] in [str(i) for i in range(10)]
    assert answers[12]["error"].startswith("the request body (795 bytes): not a readable image")
    assert set(ctx.content_type.values()) == {"application/json"}


def test_handler_runs_the_rewritten_graphs_by_batch_size(archives, tmp_path):
    """Batches of 1 and 2 run pool-first+plain (no reference-kernel pools on oneDNN), larger
    ones pool-first; both compute what the portable graph computes."""
    import mxnet as mx

    import inceptionzoo.mms_handler as mms_handler

    service = mms_handler.InceptionZooService()
    folder = _unpacked(archives["inception_mnist"], tmp_path)
    service.initialize(FakeContext(folder, batch_size=4))

    def names(net):
        return [n["name"] for n in json.loads(net._cached_graph[1].tojson())["nodes"]]

    assert service.net_for(1) is service.net_for(2) is not service.net_for(3)
    assert any(n.endswith("_plain_layout") for n in names(service.net_for(1)))
    small, large = names(service.net_for(1)), names(service.net_for(64))
    assert "inception_mnist_pool1_fwd_concat" in large and not any(
        n.endswith("_plain_layout") for n in large) and small != large
    portable = mx.gluon.SymbolBlock.imports(
        os.path.join(folder, "inception_mnist-symbol.json"), ["data"],
        os.path.join(folder, "inception_mnist-0000.params"))
    for n in (1, 5):
        x = mx.nd.random.uniform(shape=(n, 1, 28, 28))
        np.testing.assert_allclose(service.net_for(n)(x).asnumpy(), portable(x).asnumpy(),
                                   rtol=1e-5, atol=1e-5)


def test_cli_export_mar(tmp_path, capsys):
    assert main(["export", "inception_mnist", "--pretrained", "--out", str(tmp_path),
                 "--mar"]) == 0
    assert f"mar: {tmp_path / 'inception_mnist.mar'}" in capsys.readouterr().out
    assert zipfile.is_zipfile(tmp_path / "inception_mnist.mar")


@pytest.mark.slow
def test_a_real_model_server_serves_both_archives(archives, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    for mar in archives.values():
        shutil.copy(mar, store)
    with running_mms(tmp_path, store, ["inception_mnist=inception_mnist.mar"],
                     ready=["inception_mnist"]) as server:
        # register and load the second archive through the management API
        code, body = request(f"{server.mgmt}/models?url=inception_mnist_uint8.mar"
                             "&initial_workers=1&synchronous=true", data=b"", method="POST",
                             timeout=180)
        assert code == 200, body
        for name in archives:
            got = []
            for path in example_images():
                with open(path, "rb") as f:
                    code, body = server.predict(name, f.read(), content_type="image/png")
                assert code == 200, (name, body)
                got.append(json.loads(body)["label"])
            assert got == [_truth(p) for p in example_images()], name
            code, body = server.predict(name, b"hello",
                                        content_type="application/octet-stream")
            assert code == 400 and "not an image of a supported format" in json.loads(
                body)["error"]
