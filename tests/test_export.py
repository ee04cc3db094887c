import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import mxnet as mx
import numpy as np
import pytest

from conftest import built, model_params, test_shape
from inceptionzoo import get_model
from inceptionzoo.mnist import example_images
from inceptionzoo.mnist import to_input
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
    assert meta["batch_shape"] == [0, 1, 28, 28] and meta["input_dtype"] == "float32"
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
    hidden = sorted(p for p in os.listdir(tmp_path) if p.startswith("."))
    # no temp left over: the link and the one generation folder it points to
    assert len(hidden) == 2 and hidden[0] == ".m.export" and hidden[1].startswith(".m.export-")
    assert os.readlink(tmp_path / ".m.export") == hidden[1]


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    import inceptionzoo.export as ex  # export calls onnx_export's write_onnx by this name

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
    assert meta["input_dtype"] == "uint8" and meta["batch_shape"] == [0, 28, 28]
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
    for bad, words in [([str(tmp_path / "not.png")],
                        f"{tmp_path / 'not.png'}: not an image of a supported format"),
                       ([str(tmp_path / "missing.png")], "no such file"),
                       ([], "empty batch"),
                       (np.zeros((0, 28, 28)), "empty batch"),
                       (np.zeros((2, 20, 20)), "expected images of shape (28, 28)")]:
        with pytest.raises(PredictionError, match=words.replace("(", r"\(").replace(")", r"\)")):
            p.predict(bad)
    from PIL import Image
    Image.fromarray(np.full((56, 40, 3), 200, np.uint8)).save(tmp_path / "big.png")
    assert len(p.predict_files([tmp_path / "big.png"])[0]) == 3  # resized, cropped, gray
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


@pytest.mark.slow
def test_cli_export_and_predict(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    out = str(tmp_path / "deploy")
    subprocess.run([exe, "export", "inception_mnist", "--pretrained", "--out", out, "--onnx",
                    "--preprocess"], check=True, capture_output=True)
    assert sorted(p for p in os.listdir(out) if not p.startswith(".")) == sorted([
        "inception_mnist-symbol.json", "inception_mnist-0000.params", "inception_mnist.onnx",
        "inception_mnist-meta.json", "inception_mnist-signature.json",
        "inception_mnist-synset.txt"])
    again = subprocess.run([exe, "export", "inception_mnist", "--pretrained", "--out", out],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "overwrite" in again.stderr
    files = example_images()[:3]
    res = subprocess.run([exe, "predict", out, "--json", "--top-k", "2", *files],
                         capture_output=True, text=True, check=True)
    got = json.loads(res.stdout)
    assert [g["top"][0]["label"] for g in got] == [os.path.basename(f).split("-")[1]
                                                   for f in files]


def _final_set(folder, base):
    """SHA-1s of the files under the final names, and whether they agree with the meta there."""
    names = [f"{base}-0000.params", f"{base}-symbol.json", f"{base}-meta.json"]
    present = [n for n in names if os.path.exists(os.path.join(folder, n))]
    if len(present) < 3:
        return None
    meta = json.loads(open(os.path.join(folder, names[2])).read())
    return (meta["params_sha1"] == sha1_file(os.path.join(folder, names[0]))
            and meta["symbol_sha1"] == sha1_file(os.path.join(folder, names[1])),
            meta["symbol_sha1"], meta["params_sha1"])


def _export_failing_at(monkeypatch, fail_at, net, prefix, call="replace", **kwargs):
    """Export ``net`` to ``prefix`` (``kwargs``: export's), raising at the ``fail_at``-th call
    of ``os.<call>`` (``replace``: a rename, ``symlink``); returns the calls' targets and
    whether the export finished."""
    real, calls = getattr(os, call), []

    def failing(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError(f"simulated crash at os.{call}")
        return real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, call, failing)
        try:
            export(net, prefix, **kwargs)
            return calls, True
        except OSError as err:
            assert "simulated crash" in str(err)
    return calls, False


def _overwrite_crashing_at(monkeypatch, fail_at, net, prefix, **kwargs):
    """Overwrite the export at ``prefix`` with ``net`` (``preprocess=True`` unless ``kwargs``
    say otherwise), raising at the ``fail_at``-th ``os.replace``; returns the renames'
    targets."""
    return _export_failing_at(monkeypatch, fail_at, net, prefix,
                              **{"preprocess": True, **kwargs}, overwrite=True)[0]


def test_racing_exports_exactly_one_wins(tmp_path):
    """Two exports into the same empty folder at the same time, without overwrite: one wins,
    the other gets 'already exists'; the files are the winner's."""
    import threading

    nets = [built("inception_mnist", seed=s)[0] for s in (0, 5)]
    for round_ in range(4):
        folder = tmp_path / f"r{round_}"
        barrier = threading.Barrier(2)
        results = [None, None]

        def run(i):
            barrier.wait()
            try:
                results[i] = export(nets[i], str(folder / "m"))
            except FileExistsError as err:
                results[i] = err

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if isinstance(r, FileExistsError)]
        assert len(won) == 1 and len(lost) == 1, (round_, results)
        assert "already" in str(lost[0])
        consistent, _, params_sha1 = _final_set(str(folder), "m")
        assert consistent and params_sha1 == sha1_file(won[0]["params"])


@pytest.mark.parametrize("fail_at", range(1, 9))
def test_overwrite_switches_as_a_whole(tmp_path, monkeypatch, fail_at):
    """A crash between the renames of an overwrite leaves the old set or the new one under the
    final names, never a mix that plain MXNet would load."""
    old_net, _ = built("inception_mnist", seed=0)
    new_net, _ = built("inception_mnist", seed=5)
    folder = str(tmp_path / "deploy")
    export(old_net, os.path.join(folder, "m"))
    old = _final_set(folder, "m")
    assert old[0]
    calls = _overwrite_crashing_at(monkeypatch, fail_at, new_net, os.path.join(folder, "m"))
    now = _final_set(folder, "m")
    assert now is not None and now[0], (fail_at, calls)  # files under final names agree
    assert now == old or (now[1] != old[1] and now[2] != old[2])  # all old or all new
    Predictor(folder)  # and the predictor takes whichever set it is


def test_export_names_stay_in_the_folder(tmp_path):
    from inceptionzoo.cli import main
    from inceptionzoo.export import export_prefix

    for bad in ("../x", "/abs/x", "a/b", "", ".", ".."):
        with pytest.raises(ValueError, match="plain file name"):
            export_prefix(str(tmp_path / "out"), bad)
    assert export_prefix("out", "m") == os.path.join("out", "m")
    out = tmp_path / "sub" / "out"
    for bad in ("../x", str(tmp_path / "abs")):
        assert main(["export", "inception_mnist", "--pretrained", "--out", str(out),
                     "--name", bad]) == 2
    assert not os.path.exists(tmp_path / "sub" / "x-meta.json")
    assert not os.path.exists(tmp_path / "abs-meta.json")
    net, _ = built("inception_mnist")
    paths = export(net, str(tmp_path / "deploy") + os.sep)  # a folder: the model's name inside
    assert paths["meta"] == str(tmp_path / "deploy" / "inception_mnist-meta.json")
    assert not os.path.exists(str(tmp_path / "deploy-meta.json"))


def test_classes_as_a_list_of_names(tmp_path):
    """gluoncv networks set ``classes`` to their label names."""
    net, _ = built("inception_mnist", classes=3)
    net.classes = ["cat", "dog", "bird"]
    paths = export(net, str(tmp_path / "m"))
    meta = json.loads(open(paths["meta"]).read())
    assert meta["classes"] == 3 and meta["labels"] == ["cat", "dog", "bird"]
    assert open(paths["synset"]).read().split() == ["cat", "dog", "bird"]
    with pytest.raises(ValueError, match="3 outputs; got 2 labels"):
        export(net, str(tmp_path / "n" / "m"), labels=["a", "b"])


@pytest.mark.parametrize("mean,std,words", [
    (0.0, 0.0, "std must be > 0"),
    (0.0, float("nan"), "std must be finite"),
    (float("inf"), 1.0, "mean must be finite"),
    (0.0, -1.0, "std must be > 0"),
    ((0.1, 0.2), 1.0, "one value or one per input channel"),
    ("a", 1.0, "mean must be numbers"),
])
def test_invalid_normalisation_refused(tmp_path, mean, std, words):
    net, _ = built("inception_mnist")
    with pytest.raises(ValueError, match=words):
        export(net, str(tmp_path / "m"), mean=mean, std=std)
    assert not os.path.exists(tmp_path / "m-meta.json")


def test_per_channel_normalisation_in_meta_and_graph(tmp_path):
    from inceptionzoo.transforms import InputTransform

    net, _ = built("inception_mnist", in_channels=3)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    paths = export(net, str(tmp_path / "m"), preprocess=True, mean=mean, std=std)
    meta = json.loads(open(paths["meta"]).read())
    assert meta["preprocess"]["mean"] == list(mean) and meta["preprocess"]["std"] == list(std)
    assert meta["batch_shape"] == [0, 28, 28, 3] and meta["input_layout"] == "NHWC"
    raw = np.random.RandomState(1).randint(0, 256, (4, 28, 28, 3)).astype(np.uint8)
    ref = (raw.astype(np.float32) / 255 - np.array(mean, np.float32)) / np.array(std, np.float32)
    x = InputTransform((3, 28, 28), mean, std)(mx.nd.array(raw, dtype="uint8")).asnumpy()
    np.testing.assert_allclose(x, ref.transpose(0, 3, 1, 2), rtol=1e-6, atol=1e-6)
    loaded = mx.gluon.SymbolBlock.imports(paths["symbol"], ["data"], paths["params"])
    got = loaded(mx.nd.array(raw, dtype="uint8")).asnumpy()
    net.hybridize(active=False)
    np.testing.assert_allclose(got, net(mx.nd.array(x)).asnumpy(), rtol=1e-5, atol=1e-5)


def test_mean_std_default_to_the_model_info(tmp_path):
    import dataclasses

    net, _ = built("inception_mnist")
    net.info = dataclasses.replace(net.info, mean=(0.1307,), std=(0.3081,))
    for preprocess in (False, True):
        paths = export(net, str(tmp_path / f"d{preprocess}" / "m"), preprocess=preprocess)
        pre = json.loads(open(paths["meta"]).read())["preprocess"]
        assert pre["mean"] == [0.1307] and pre["std"] == [0.3081]
    raw = np.random.RandomState(2).randint(0, 256, (3, 28, 28)).astype(np.uint8)
    ref = net(mx.nd.array(to_input(raw, mean=0.1307, std=0.3081))).asnumpy()
    probs = [Predictor(str(tmp_path / f"d{p}")).probabilities(raw) for p in (False, True)]
    want = mx.nd.softmax(mx.nd.array(ref)).asnumpy()
    for p in probs:
        np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6)


def _as_plain_files(folder):
    """The layout an older inceptionzoo wrote: plain files, no generation folder."""
    for n in os.listdir(folder):
        path = os.path.join(folder, n)
        if os.path.islink(path) and not n.startswith("."):
            data = open(path, "rb").read()
            os.remove(path)
            open(path, "wb").write(data)
    for n in os.listdir(folder):
        if n.startswith("."):
            path = os.path.join(folder, n)
            os.remove(path) if os.path.islink(path) else shutil.rmtree(path)


@pytest.mark.parametrize("fail_at", [None, 1, 2, 3, 4])
def test_overwrite_of_an_export_of_plain_files(tmp_path, monkeypatch, fail_at):
    old_net, _ = built("inception_mnist", seed=0)
    new_net, _ = built("inception_mnist", seed=5)
    folder = str(tmp_path / "deploy")
    export(old_net, os.path.join(folder, "m"), onnx=False)
    _as_plain_files(folder)
    old = _final_set(folder, "m")
    assert old[0] and not os.path.islink(os.path.join(folder, "m-meta.json"))
    calls = _overwrite_crashing_at(monkeypatch, fail_at, new_net, os.path.join(folder, "m"))
    now = _final_set(folder, "m")
    assert now[0] and (now == old or (now[1] != old[1] and now[2] != old[2])), (fail_at, calls)
    if fail_at is None:
        assert now != old and os.path.islink(os.path.join(folder, "m-meta.json"))


KILLER = textwrap.dedent("""
    import sys
    from inceptionzoo import get_model
    from inceptionzoo.export import export
    nets = [get_model('inception_mnist', pretrained=True), get_model('inception_naive_mnist',
                                                                     pretrained=True)]
    print('ready', flush=True)
    i = 0
    while True:
        export(nets[i % 2], sys.argv[1], preprocess=bool(i % 3), overwrite=True)
        i += 1
""")


@pytest.mark.slow
def test_sigkill_during_overwrite_leaves_a_whole_export(tmp_path):
    import random
    import signal
    import time

    folder = str(tmp_path / "deploy")
    export(get_model("inception_mnist", pretrained=True), os.path.join(folder, "m"))
    rng = random.Random(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", KILLER, os.path.join(folder, "m")],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.2, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        consistent = _final_set(folder, "m")
        assert consistent is not None and consistent[0]
        p = Predictor(folder)
        assert p.predict_files(example_images()[7:8], top_k=1)[0][0][0] == "7"


@pytest.mark.slow
def test_racing_cli_exports_exactly_one_wins(tmp_path):
    """The same race between two `inceptionzoo export` processes."""
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    for round_ in range(3):
        out = str(tmp_path / f"r{round_}")
        procs = [subprocess.Popen([exe, "export", model, "--pretrained", "--out", out,
                                   "--name", "m"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for model in ("inception_mnist", "inception_naive_mnist")]
        results = [(p.wait(), p.stderr.read()) for p in procs]
        assert sorted(rc for rc, _ in results) == [0, 2], results
        assert "an export exists already" in [err for rc, err in results if rc == 2][0]
        assert _final_set(out, "m")[0]


def test_two_exports_of_other_names_share_a_folder(tmp_path, capsys):
    """Every file of an export carries its name: a second `--name` into the same folder is
    not refused, and each export keeps its own sidecars."""
    from inceptionzoo.cli import main

    out = str(tmp_path / "deploy")
    for name in ("first", "second"):
        assert main(["export", "inception_mnist", "--pretrained", "--out", out,
                     "--name", name]) == 0, capsys.readouterr().err
    names = sorted(p for p in os.listdir(out) if not p.startswith("."))
    assert names == sorted(f"{n}-{f}" for n in ("first", "second") for f in (
        "0000.params", "symbol.json", "meta.json", "signature.json", "synset.txt"))
    for name in ("first", "second"):
        assert Predictor(out, name=name).predict_files(example_images()[:1],
                                                       top_k=1)[0][0][0] == "0"


def test_overwrite_removes_the_unprefixed_sidecars_of_an_older_export(tmp_path):
    """An export of the earlier layout (`signature.json`, `synset.txt` linked into its
    generation folder) overwritten: no dangling unprefixed links are left."""
    net, _ = built("inception_mnist")
    paths = export(net, str(tmp_path / "m"))
    gen = os.path.join(tmp_path, os.readlink(tmp_path / ".m.export"))
    for new, old in (("signature", "signature.json"), ("synset", "synset.txt")):
        os.rename(os.path.realpath(paths[new]), os.path.join(gen, old))
        os.remove(paths[new])
        os.symlink(f".m.export/{old}", tmp_path / old)
    export(net, str(tmp_path / "m"), overwrite=True)
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith(".")) == sorted(
        f"m-{f}" for f in ("0000.params", "symbol.json", "meta.json", "signature.json",
                           "synset.txt"))


# -- issue 27: exports that never touch each other, overwrites of every file, long names,
# feature extractors, the onnx extra ---------------------------------------------------------

#: names where one is a prefix of another, or holds '-', '.', 'export' or what looks like the
#: export's own temporary and generation names
SHARING_NAMES = ("x", "x.export-v2", "x.export", "x-v2", "x-symbol", "x.export-abcdefgh", ".x",
                 "x.tmp-abcdefgh", "x.export-v2.export", "xx", "x.mar")


def _dense(seed):
    mx.random.seed(seed)
    block = mx.gluon.nn.HybridSequential()
    block.add(mx.gluon.nn.Dense(3, in_units=4))
    block.initialize()
    return block


def test_exports_of_any_two_names_never_touch_each_other(tmp_path):
    """Issue 27 item 2: `--name x` after `--name x.export-v2` removed the other's generation
    folder (every entry starting with `.x.export-`), leaving its links dangling."""
    folder = str(tmp_path / "NC")
    sha = {}
    for i, name in enumerate(SHARING_NAMES):  # each export after every other...
        sha[name] = sha1_file(export(_dense(i), os.path.join(folder, name),
                                     input_shape=(4,))["params"])
    for i, name in enumerate(reversed(SHARING_NAMES)):  # ... and each overwrite after them
        sha[name] = sha1_file(export(_dense(100 + i), os.path.join(folder, name),
                                     input_shape=(4,), overwrite=True)["params"])
    assert len(set(sha.values())) == len(SHARING_NAMES)
    for name in SHARING_NAMES:
        consistent, _, params_sha1 = _final_set(folder, name)
        assert consistent and params_sha1 == sha[name], name
        gens = [n for n in os.listdir(folder)
                if re.fullmatch(re.escape(f".{name}.export-") + "[a-z0-9_]{8}", n)]
        assert gens == [os.readlink(os.path.join(folder, f".{name}.export"))], name
    # five files, a link and one generation folder per export, nothing else; no dangling link
    final = {f"{n}-{f}" for n in SHARING_NAMES for f in (
        "0000.params", "symbol.json", "meta.json", "signature.json", "synset.txt")}
    others = [n for n in os.listdir(folder) if n not in final]
    assert len(others) == 2 * len(SHARING_NAMES) and len(os.listdir(folder)) == 7 * len(
        SHARING_NAMES), sorted(others)
    assert all(os.path.exists(os.path.join(folder, n)) for n in os.listdir(folder))


def _mar_meta(mar):
    import zipfile

    with zipfile.ZipFile(mar) as z:
        return json.loads(z.read([n for n in z.namelist() if n.endswith("-meta.json")][0]))


def test_an_overwrite_replaces_the_archive_and_the_onnx_file(tmp_path):
    """Issue 27 item 3: after an overwrite, `x.mar` still served the old network."""
    pytest.importorskip("onnx")
    folder = str(tmp_path / "NC")
    prefix = os.path.join(folder, "x")
    first = export(get_model("inception_mnist", pretrained=True), prefix, mar=True, onnx=True)
    assert _mar_meta(first["mar"])["model"] == "inception_mnist"
    naive = get_model("inception_naive_mnist", pretrained=True)
    paths = export(naive, prefix, overwrite=True)
    assert "mar" not in paths and "onnx" not in paths
    for ext in (".mar", ".onnx"):  # no old file left as if it were the export's
        assert not os.path.lexists(prefix + ext), ext
    paths = export(naive, prefix, overwrite=True, mar=True)
    meta = json.loads(open(paths["meta"]).read())
    assert meta["model"] == "inception_naive_mnist" and _mar_meta(paths["mar"]) == meta
    assert os.path.islink(paths["mar"])  # a role of the generation: it switches with the rest
    # an archive written beside the generation (by an older inceptionzoo) is replaced too
    data = open(paths["mar"], "rb").read()
    os.remove(paths["mar"])
    open(paths["mar"], "wb").write(data)
    export(get_model("inception_mnist", pretrained=True), prefix, overwrite=True)
    assert not os.path.lexists(paths["mar"])
    assert sorted(os.listdir(folder)) == sorted([".x.export", os.readlink(
        os.path.join(folder, ".x.export"))] + [f"x-{f}" for f in (
            "0000.params", "symbol.json", "meta.json", "signature.json", "synset.txt")])


@pytest.mark.parametrize("fail_at", range(1, 9))
def test_an_overwrite_with_an_archive_switches_as_a_whole(tmp_path, monkeypatch, fail_at):
    """A crash at any rename of an overwrite leaves the archive of the set the final names
    show."""
    folder = str(tmp_path / "NC")
    old_net, _ = built("inception_mnist", seed=0)
    new_net, _ = built("inception_mnist", seed=5)
    export(old_net, os.path.join(folder, "m"), mar=True)
    _overwrite_crashing_at(monkeypatch, fail_at, new_net, os.path.join(folder, "m"),
                           preprocess=False, mar=True)
    now = _final_set(folder, "m")
    assert now[0]
    assert _mar_meta(os.path.join(folder, "m.mar")) == json.loads(
        open(os.path.join(folder, "m-meta.json")).read())


def test_long_and_bad_names_are_refused_before_anything_is_written(tmp_path, capsys):
    """Issue 27: a 236-character `--name` failed after publishing half an export, and that
    half blocked the next export."""
    from inceptionzoo.cli import main
    from inceptionzoo.errors import InceptionZooError

    out = tmp_path / "deploy"
    argv = ["export", "inception_mnist", "--pretrained", "--out", str(out), "--onnx", "--mar"]
    assert main(argv + ["--name", "n" * 236]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at most 228 bytes" in err and "got 236 bytes" in err, err
    assert not out.exists()
    net = _dense(0)
    for bad, words in [("n" * 229, "at most 228 bytes"), ("é" * 115, "at most 228 bytes"),
                       ("a\nb", "control characters"), ("a\x00b", "control characters")]:
        with pytest.raises(InceptionZooError, match=words):
            export(net, str(out / bad), input_shape=(4,), mar=False)
        assert not out.exists()
    # the longest name that fits: every file it writes fits NAME_MAX
    from inceptionzoo.export import NAME_MAX

    longest = "n" * 228
    paths = export(get_model("inception_mnist", pretrained=True), str(out / longest),
                   onnx=pytest.importorskip("onnx") is not None, mar=True)
    assert set(paths) == {"symbol", "params", "meta", "signature", "synset", "onnx", "mar"}
    gen = os.readlink(out / f".{longest}.export")
    assert all(len(n) <= NAME_MAX for n in os.listdir(out) + os.listdir(out / gen))
    assert _final_set(str(out), longest)[0]


@pytest.mark.parametrize("fail_at", range(1, 8))
def test_a_failure_while_publishing_leaves_nothing(tmp_path, monkeypatch, fail_at):
    """A first export that fails at any of its links leaves the folder as it was, and the
    next export is not blocked by a half."""
    folder = tmp_path / "deploy"
    net = _dense(0)
    calls, published = _export_failing_at(monkeypatch, fail_at, net, str(folder / "m"),
                                          call="symlink", input_shape=(4,))
    if not published:
        assert os.listdir(folder) == [], calls
        export(net, str(folder / "m"), input_shape=(4,))  # not blocked
    assert _final_set(str(folder), "m")[0]


def test_a_feature_extractor_exports_its_maps(tmp_path):
    """Issue 27 item 5: meta.json said 10 classes and logits for a (N, 64, 6, 6) output, the
    .mar handler then failed on every request, and onnx=True was a bare ValueError."""
    from inceptionzoo.errors import InceptionZooError

    net = get_model("inception_mnist", pretrained=True, features_only=True, out_indices=(2,))
    with pytest.raises(InceptionZooError, match="mar=True .* feature extractor"):
        export(net, str(tmp_path / "refused" / "f"), mar=True)
    assert not (tmp_path / "refused").exists()
    paths = export(net, str(tmp_path / "one" / "f"))
    assert set(paths) == {"symbol", "params", "meta", "signature"}  # no synset: no labels
    meta = json.loads(open(paths["meta"]).read())
    assert meta["outputs"] == "features" and meta["output_names"] == ["block3"]
    assert meta["output_shapes"] == [[0, 64, 6, 6]]
    assert not {"classes", "labels", "output"} & set(meta)
    sig = json.loads(open(paths["signature"]).read())
    assert sig["outputs"] == [{"data_name": "block3", "data_shape": [0, 64, 6, 6]}]
    with pytest.raises(PredictionError):  # not served as a classifier
        Predictor(str(tmp_path / "one"))
    x = np.random.RandomState(0).rand(2, 1, 28, 28).astype(np.float32)
    loaded = mx.gluon.SymbolBlock.imports(paths["symbol"], ["data"], paths["params"])
    net.hybridize(active=False)
    np.testing.assert_allclose(loaded(mx.nd.array(x)).asnumpy(),
                               net(mx.nd.array(x))[0].asnumpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(InceptionZooError, match="no classes"):
        export(net, str(tmp_path / "labels" / "f"), labels=["a"])
    classifier = json.loads(open(export(get_model("inception_mnist", pretrained=True),
                                        str(tmp_path / "c" / "c"))["meta"]).read())
    assert classifier["outputs"] == "logits" and classifier["classes"] == 10


def test_a_feature_extractor_of_three_stages_exports_to_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")

    net = get_model("inception_mnist", pretrained=True, features_only=True)
    paths = export(net, str(tmp_path / "f"), onnx=True, preprocess=True)
    meta = json.loads(open(paths["meta"]).read())
    assert meta["output_names"] == ["block1", "block2", "block3"]
    model = onnx.load(paths["onnx"])
    assert [o.name for o in model.graph.output] == meta["output_names"]
    assert [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
            for o in model.graph.output] == [["batch"] + s[1:] for s in meta["output_shapes"]]
    raw = np.random.RandomState(3).randint(0, 256, (3, 28, 28)).astype(np.uint8)
    got = ort.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"]).run(
        None, {"data": raw})
    net.hybridize(active=False)
    for g, r in zip(got, net(mx.nd.array(to_input(raw)))):
        assert np.abs(g - r.asnumpy()).max() <= 1e-5
    loaded = mx.gluon.SymbolBlock.imports(paths["symbol"], ["data"], paths["params"])
    assert [o.shape for o in loaded(mx.nd.array(raw, dtype="uint8"))] == [
        (3,) + tuple(s[1:]) for s in meta["output_shapes"]]


NO_ONNX = textwrap.dedent("""
    import sys
    sys.modules['onnx'] = None  # as if the onnx extra were not installed
    from inceptionzoo.cli import main
    sys.exit(main(['export', 'inception_mnist', '--pretrained', '--out', sys.argv[1],
                   '--onnx']))
""")


@pytest.mark.slow
def test_export_onnx_without_the_extra_is_one_line_and_writes_nothing(tmp_path):
    """Issue 27: a ModuleNotFoundError traceback, and an empty deploy/ left behind."""
    out = tmp_path / "deploy"
    proc = subprocess.run([sys.executable, "-c", NO_ONNX, str(out)], capture_output=True,
                          text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("inceptionzoo export")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "pip install -c constraints.txt -e '.[cpu,onnx]'" in lines[0] and "--onnx" in lines[0]
    assert not out.exists()
