"""MXNet Model Server: `export(..., mar=True)` / `inceptionzoo export --mar` writes an archive
that a real multi-model-server serves, with the handler inside (plain MXNet + PIL)."""
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest

from conftest import FakeContext
from inceptionzoo.cli import main
from inceptionzoo.mnist import example_images
from inceptionzoo.export import export

BIN = os.path.dirname(sys.executable)


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


def _free_port(avoid=()):
    """A free TCP port below 32767 (MMS refuses larger ones)."""
    rng = np.random.default_rng()
    for port in rng.permutation(np.arange(20000, 32000)):
        port = int(port)
        if port in avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000..32000")


def _request(url, data=None, method=None, timeout=60, content_type="image/png"):
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.mark.slow
def test_a_real_model_server_serves_both_archives(archives, tmp_path):
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail("MXNet Model Server needs Java (java 8+ on PATH or JAVA_HOME); .ci/run "
                    "installs openjdk-17-jre-headless")
    server = os.path.join(BIN, "multi-model-server")
    assert os.path.isfile(server), "multi-model-server missing: pip install '.[serve]'"
    store = tmp_path / "store"
    store.mkdir()
    for mar in archives.values():
        shutil.copy(mar, store)
    api = _free_port()
    mgmt = _free_port(avoid={api})
    (tmp_path / "config.properties").write_text(
        f"inference_address=http://127.0.0.1:{api}\n"
        f"management_address=http://127.0.0.1:{mgmt}\ndefault_workers_per_model=1\n")
    # TMPDIR/TEMP: MMS's pid file and worker sockets stay in this test's folder
    env = dict(os.environ, TMPDIR=str(tmp_path), TEMP=str(tmp_path),
               LOG_LOCATION=str(tmp_path / "logs"), METRICS_LOCATION=str(tmp_path / "logs"),
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    log = open(tmp_path / "server.out", "w")
    proc = subprocess.Popen([server, "--start", "--foreground", "--mms-config",
                             str(tmp_path / "config.properties"), "--model-store", str(store),
                             "--models", "inception_mnist=inception_mnist.mar"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{api}"
    try:
        deadline = time.monotonic() + 180
        while True:  # up, and the startup model has a READY worker
            assert proc.poll() is None, (tmp_path / "server.out").read_text()[-3000:]
            try:
                code, body = _request(f"http://127.0.0.1:{mgmt}/models/inception_mnist",
                                      timeout=5)
                if code == 200 and json.loads(body)["workers"] and all(
                        w["status"] == "READY" for w in json.loads(body)["workers"]):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "MMS did not come up in 180 s"
            time.sleep(1)
        # register and load the second archive through the management API
        code, body = _request(f"http://127.0.0.1:{mgmt}/models?url=inception_mnist_uint8.mar"
                              "&initial_workers=1&synchronous=true", data=b"", method="POST",
                              timeout=180)
        assert code == 200, body
        for name in archives:
            got = []
            for path in example_images():
                with open(path, "rb") as f:
                    code, body = _request(f"{base}/predictions/{name}", data=f.read(),
                                          method="POST")
                assert code == 200, (name, body)
                got.append(json.loads(body)["label"])
            assert got == [_truth(p) for p in example_images()], name
            code, body = _request(f"{base}/predictions/{name}", data=b"hello", method="POST",
                                  content_type="application/octet-stream")
            assert code == 400 and "not an image of a supported format" in json.loads(
                body)["error"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server, its Java frontend and its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
