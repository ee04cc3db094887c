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
from inceptionzoo.mar import CORE_MODULES, write_mar
from inceptionzoo.serving import Predictor, load_graph

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
        meta = json.loads(z.read("inception_mnist-meta.json"))
    core = {f"inceptionzoo_serving/{m}.py" for m in CORE_MODULES} | {"inceptionzoo_serving/__init__.py"}
    assert names == {"inception_mnist-symbol.json", "inception_mnist-0000.params",
                     "inception_mnist-meta.json", "inception_mnist-synset.txt",
                     "inceptionzoo_handler.py", "MAR-INF/MANIFEST.json"} | core
    assert manifest["runtime"] == "python" and manifest["model"]["modelName"] == "inception_mnist"
    assert manifest["model"]["handler"] == "inceptionzoo_handler:handle"
    # the handler reads nothing itself: the serving core (carried) does
    assert _imports(handler) == {"json", "numpy", "inceptionzoo_serving", "."}
    # export --mar recorded the batching MMS should be registered with
    assert set(meta["batching"]) == {"batch_size", "max_batch_delay_ms"}
    assert meta["batching"]["batch_size"] in (1, 2, 4, 8, 16, 32)
    assert 5 <= meta["batching"]["max_batch_delay_ms"] <= 100


def test_the_carried_core_needs_only_numpy_pil_mxnet_and_onnxruntime(archives):
    """Every module of the archive's serving core imports, at its top, the standard library,
    numpy, PIL, MXNet, onnxruntime and modules carried beside it: nothing else."""
    import sys

    allowed = set(sys.stdlib_module_names) | {"numpy", "PIL", "mxnet", "onnxruntime"}
    carried = {"." + m for m in CORE_MODULES} | {"."}
    with zipfile.ZipFile(archives["inception_mnist"]) as z:
        for m in CORE_MODULES:
            top = _imports(z.read(f"inceptionzoo_serving/{m}.py").decode(), top_level=True)
            assert top <= allowed | carried, (m, top - allowed - carried)


def test_the_handler_runs_without_inceptionzoo(archives, tmp_path):
    """The unpacked archive's handler in a Python where inceptionzoo cannot be imported."""
    import subprocess
    import sys

    folder = _unpacked(archives["inception_mnist_uint8"], tmp_path)
    digit = example_images()[7]
    script = f"""
import json, sys
sys.modules["inceptionzoo"] = None  # not importable
sys.path.insert(0, {folder!r})
import inceptionzoo_handler

class Context:
    system_properties = {{"model_dir": {folder!r}, "batch_size": 2}}
    status = {{}}
    def set_response_status(self, code, phrase, idx): self.status[idx] = code
    def set_response_content_type(self, idx, value): pass

ctx = Context()
inceptionzoo_handler.handle(None, ctx)
out = inceptionzoo_handler.handle([{{"body": open({digit!r}, "rb").read()}}, {{"body": b"x"}}], ctx)
print(json.dumps([json.loads(a) for a in out] + [ctx.status]))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    good, bad, status = json.loads(proc.stdout.strip().splitlines()[-1])
    assert good["label"] == _truth(digit) and "not an image" in bad["error"]
    assert status == {"1": 400}


def _imports(source, top_level=False):
    """Top modules a Python source imports (``.name`` for relative imports); with
    ``top_level``, only the imports run when the module loads (not those inside functions)."""
    import ast

    found = set()
    tree = ast.parse(source)
    nodes = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))] \
        if top_level else [tree]
    for node in (n for top in nodes for n in ast.walk(top)):
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
    assert ctx.content_type == {}  # the header breaks MMS 1.1.11's batched answers (test_serve)


def test_predictor_and_handler_serve_the_same_graph_and_probabilities(tmp_path):
    """One serving core: with the export's tuning (carried by the archive), the Predictor and
    the handler run the same runtime and graph at batch 1, 8 and 32, and answer the same
    probabilities, bit for bit."""
    import inceptionzoo.mms_handler as mms_handler

    folder = tmp_path / "export"
    paths = export("inception_mnist", str(folder / "inception_mnist"), onnx=True)
    load_graph(str(folder), warmup=(1, 8, 32)).save_tuning()
    mar = write_mar(paths, "inception_mnist", str(tmp_path / "inception_mnist.mar"))
    predictor = Predictor(str(folder))
    service = mms_handler.InceptionZooService()
    ctx = FakeContext(_unpacked(mar, tmp_path / "mar"), batch_size=32)
    service.initialize(ctx)
    labels = predictor.labels
    bodies = [open(p, "rb").read() for p in example_images()] * 4
    for b in (1, 8, 32):
        assert predictor.graph.graph_for(b) == service.graph.graph_for(b), b
        assert predictor.graph.graph_for(b)[1] is not None  # a graph picked, not defaulted
        answers = [json.loads(a) for a in service.handle([{"body": x} for x in bodies[:b]], ctx)]
        got = np.array([[a["probabilities"][lab] for lab in labels] for a in answers], np.float32)
        np.testing.assert_array_equal(got, predictor.probabilities(bodies[:b]))


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
        # register and load the second archive through the management API, with the
        # batching its export recorded (MMS's batch_size / max_batch_delay)
        with zipfile.ZipFile(archives["inception_mnist_uint8"]) as z:
            batching = json.loads(z.read("inception_mnist_uint8-meta.json"))["batching"]
        code, body = request(f"{server.mgmt}/models?url=inception_mnist_uint8.mar"
                             f"&batch_size={max(4, batching['batch_size'])}&max_batch_delay=500"
                             "&initial_workers=1&synchronous=true", data=b"", method="POST",
                             timeout=180)
        assert code == 200, body
        # concurrent requests, batched by MMS: the non-image answers 400, the others 200
        from concurrent.futures import ThreadPoolExecutor

        bodies = [open(p, "rb").read() for p in example_images()[:5]] + [b"hello"]
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(
                lambda b: server.predict("inception_mnist_uint8", b, content_type="image/png"),
                bodies))
        assert [code for code, _ in answers] == [200] * 5 + [400], answers
        assert [json.loads(body)["label"] for _, body in answers[:5]] == \
            [_truth(p) for p in example_images()[:5]]
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


class _TimedGraph:
    """A stand-in for a ExportRunner whose batch of ``b`` takes ``seconds(b)`` on a fake
    clock."""

    def __init__(self, seconds, clock):
        self.seconds, self.clock, self.warmed = seconds, clock, []

    def warmup(self, sizes):
        self.warmed += list(sizes)

    def _sample(self, b):
        return np.zeros((b, 1))

    def run(self, x):
        self.clock[0] += self.seconds(len(x))


@pytest.mark.parametrize("seconds, batch_size, timed", [
    # a small network: each doubling still gains >= 10% images/s up to 32
    (lambda b: 0.001 + 0.0005 * b, 32, [1, 2, 4, 8, 16, 32]),
    # a big one: batch 2 gains less than 10% over batch 1: 1, and nothing larger is timed
    (lambda b: 0.01 * b, 1, [1, 2]),
    # the gain stops between 4 and 8 (batch 8 is slower per image)
    (lambda b: 0.004 if b <= 4 else 0.002 * b, 4, [1, 2, 4, 8]),
])
def test_recommended_batching_is_where_images_per_second_stop_rising(monkeypatch, seconds,
                                                                    batch_size, timed):
    from inceptionzoo import serving_core

    clock = [0.0]
    monkeypatch.setattr(serving_core.time, "perf_counter", lambda: clock[0])
    graph = _TimedGraph(seconds, clock)
    got = serving_core.recommend_batching(graph)
    assert got["batch_size"] == batch_size and graph.warmed == timed
    assert list(got["images_per_s"]) == [str(b) for b in timed]
    run = seconds(batch_size) + serving_core.SERVER_OVERHEAD_S
    assert abs(got["max_batch_delay_ms"] - min(100, max(5, 1000 * run))) <= 1  # clock rounding
    assert serving_core.recommend_batching(graph, sizes=()) == serving_core.DEFAULT_BATCHING
