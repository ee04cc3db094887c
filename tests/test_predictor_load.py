"""How the Predictor loads an export (symbol and params once, checked) and prepares it
(warm-up at load time, a saved tuning reused by the next process)."""
import json
import os
import re

import mxnet as mx
import numpy as np
import pytest

from inceptionzoo.cli import main
from inceptionzoo.mnist import example_images
from inceptionzoo.export import export
from inceptionzoo.graph_tuning import TunedGraph
from inceptionzoo.serving import PredictionError, Predictor


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    export("inception_mnist", str(folder / "inception_mnist"), preprocess=True)
    return folder


def _copy(src, dst):
    """The export's files by their final names (links followed), as plain files."""
    for name in os.listdir(src):
        if os.path.isdir(src / name):  # the export's generation folder and its link
            continue
        with open(src / name, "rb") as f, open(dst / name, "wb") as g:
            g.write(f.read())
    return dst


def test_loads_the_symbol_once_and_the_params_once_without_a_symbolblock(exported, monkeypatch):
    from inceptionzoo import export_files

    reads, loads = [], []
    real_read, real_from_buffer = export_files._read, mx.nd.load_frombuffer
    monkeypatch.setattr(export_files, "_read",
                        lambda path: reads.append(os.path.basename(path)) or real_read(path))
    monkeypatch.setattr(mx.nd, "load", lambda *a: loads.append("nd") or real_nd_load(*a))
    real_nd_load = mx.nd.load
    monkeypatch.setattr(mx.nd, "load_frombuffer",  # the params are read once, checked, parsed
                        lambda *a: loads.append("nd") or real_from_buffer(*a))

    def no_symbolblock(*a, **k):
        raise AssertionError("SymbolBlock.imports was used")

    monkeypatch.setattr(mx.gluon.SymbolBlock, "imports", no_symbolblock)
    p = Predictor(str(exported), runtime="mxnet")
    assert sorted(reads) == ["inception_mnist-0000.params", "inception_mnist-meta.json",
                             "inception_mnist-symbol.json"]
    assert loads == ["nd"] and isinstance(p.net, TunedGraph)
    top = p.predict_files(example_images(), top_k=1)
    truth = [os.path.basename(f).split("-")[1] for f in example_images()]
    assert [t[0][0] for t in top] == truth


def test_params_that_do_not_fit_the_graph_are_listed(exported, tmp_path):
    folder = _copy(exported, tmp_path)
    meta = json.loads((folder / "inception_mnist-meta.json").read_text())
    params = folder / meta["params_file"]
    arrays = mx.nd.load(str(params))
    del arrays["arg:inception_mnist_stem_bias"]
    arrays["arg:stray_weight"] = mx.nd.zeros((2,))
    arrays["arg:inception_mnist_output_bias"] = mx.nd.zeros((11,))
    mx.nd.save(str(params), arrays)
    from inceptionzoo._io import sha1_file

    meta["params_sha1"] = sha1_file(str(params))
    (folder / "inception_mnist-meta.json").write_text(json.dumps(meta))
    with pytest.raises(PredictionError) as err:
        Predictor(str(folder))
    msg = str(err.value)
    assert "does not fit its graph: missing: inception_mnist_stem_bias" in msg
    assert "not in the graph: stray_weight" in msg
    assert "mis-shaped: inception_mnist_output_bias (11,) (graph: (10,))" in msg


def test_a_saved_tuning_is_loaded_and_nothing_is_timed(exported, tmp_path, monkeypatch):
    folder = _copy(exported, tmp_path)
    first = Predictor(str(folder), warmup=(1, 2))
    assert sorted(first.net.tuned) == [1, 2] and first.tuning_loaded == {}
    path = first.save_tuning()
    assert path == str(folder / "inception_mnist-tuning.json")

    def no_timing(self, x):
        raise AssertionError(f"tuned batch {x.shape[0]} on a live request")

    monkeypatch.setattr(TunedGraph, "_pick", no_timing)
    second = Predictor(str(folder), warmup=(1, 2))
    assert second.tuning_loaded == {1: first.net.choice[1], 2: first.net.choice[2]}
    assert second.net.choice == first.net.choice and second.net.tuned == []
    images = example_images()[:2]
    np.testing.assert_array_equal(second.probabilities(images), first.probabilities(images))


def test_tuning_made_for_another_graph_is_ignored_with_a_warning(exported, tmp_path):
    folder = _copy(exported, tmp_path)
    Predictor(str(folder), warmup=(1,)).save_tuning()
    record = json.loads((folder / "inception_mnist-tuning.json").read_text())
    (folder / "inception_mnist-tuning.json").write_text(json.dumps(dict(record, fuse=False)))
    with pytest.warns(UserWarning, match="is ignored: the tuning record was made for other"):
        p = Predictor(str(folder))
    assert p.tuning_loaded == {}


def test_cli_tune_writes_the_choice(exported, tmp_path, capsys):
    folder = _copy(exported, tmp_path)
    assert main(["tune", str(folder), "--batch-sizes", "1,3"]) == 0
    out = capsys.readouterr().out
    record = json.loads((folder / "inception_mnist-tuning.json").read_text())
    assert set(record["choice"]) == {"1", "3"} and "saved:" in out
    assert main(["tune", str(folder), "--batch-sizes", "1,x"]) == 2
    assert "--batch-sizes must be comma-separated integers >= 1; got '1,x'" in \
        capsys.readouterr().err


@pytest.mark.parametrize("key,value,words", [
    ("params_file", "../../etc/passwd", "'params_file' must be a plain file name"),
    ("symbol_file", 7, "'symbol_file' must be a plain file name"),
    ("input_name", ["data"], "'input_name' must be a string"),
    ("classes", "10", "'classes' must be an integer >= 1"),
    ("labels", ["a", "b"], "'labels' must be a list of 10 strings"),
])
def test_meta_values_are_checked_before_use(exported, tmp_path, key, value, words):
    """meta.json sits beside the files it names: a file name that leaves the export folder,
    or values of the wrong type, are refused naming the file and the key."""
    folder = _copy(exported, tmp_path)
    meta_file = folder / "inception_mnist-meta.json"
    meta = json.loads(meta_file.read_text())
    meta[key] = value
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(PredictionError, match=re.escape(words)) as err:
        Predictor(str(folder))
    assert str(meta_file) in str(err.value)


# -- a load while the export is replaced (issue 27) -------------------------------------------

def test_a_load_that_sees_the_export_switch_reads_the_new_generation_whole(tmp_path,
                                                                           monkeypatch):
    """The export is overwritten (another network, same name) right after the load read the
    metadata: the load reads the new generation as a whole, not the old metadata with the new
    files."""
    from inceptionzoo import export_files
    from inceptionzoo.serving import load_graph

    export("inception_mnist", str(tmp_path / "x"))
    real_read, switched = export_files._read, []

    def read(path):
        data = real_read(path)
        if path.endswith("x-meta.json") and not switched:
            switched.append(path)
            export("inception_naive_mnist", str(tmp_path / "x"), overwrite=True)
            assert not os.path.exists(path)  # the generation it came from is gone
        return data

    monkeypatch.setattr(export_files, "_read", read)
    g = load_graph(str(tmp_path), runtime="mxnet", warmup=())
    assert switched and g.meta["model"] == "inception_naive_mnist"
    x = np.random.RandomState(0).rand(2, 1, 28, 28).astype(np.float32)
    from inceptionzoo import get_model

    ref = get_model("inception_naive_mnist", pretrained=True)(mx.nd.array(x)).asnumpy()
    np.testing.assert_allclose(g(x), ref, rtol=1e-4, atol=1e-4)


def test_an_export_replaced_on_every_read_is_a_prediction_error(tmp_path, monkeypatch):
    from inceptionzoo import export_files
    from inceptionzoo.serving import load_graph

    export("inception_mnist", str(tmp_path / "x"))
    real_read, names = export_files._read, ["inception_naive_mnist", "inception_mnist"] * 3

    def read(path):
        data = real_read(path)
        if path.endswith("x-meta.json"):
            export(names.pop(), str(tmp_path / "x"), overwrite=True)
        return data

    monkeypatch.setattr(export_files, "_read", read)
    with pytest.raises(PredictionError, match=r"x-meta.json: the export changed while it was "
                       r"read \(replaced 3 times over, or its links dangle\); load it again"):
        load_graph(str(tmp_path), runtime="mxnet", warmup=())


@pytest.mark.slow
def test_loads_while_another_process_overwrites_the_export(tmp_path):
    """One process re-exports A and B into a folder every ~0.3 s; this one loads in a loop:
    each load is one whole generation (its logits are its network's) or a PredictionError
    saying the export changed (issue 27: a bare FileNotFoundError, or 'corrupt')."""
    import subprocess
    import sys
    import time

    from inceptionzoo import get_model
    from inceptionzoo.serving import load_graph

    export("inception_mnist", str(tmp_path / "x"))
    x = np.random.RandomState(0).rand(2, 1, 28, 28).astype(np.float32)
    refs = {n: get_model(n, pretrained=True)(mx.nd.array(x)).asnumpy()
            for n in ("inception_mnist", "inception_naive_mnist")}
    stop = tmp_path / "stop"
    script = (f"import os, time\nfrom inceptionzoo.export import export\nk = 0\n"
              f"while not os.path.exists({str(stop)!r}):\n"
              f"    export(['inception_naive_mnist', 'inception_mnist'][k % 2], "
              f"{str(tmp_path / 'x')!r}, overwrite=True)\n    k += 1\n    time.sleep(0.3)\n")
    writer = subprocess.Popen([sys.executable, "-c", script])
    outcomes = []
    try:
        meta = tmp_path / "x-meta.json"
        end = time.monotonic() + 120
        while "naive" not in (meta.read_text() if meta.exists() else ""):  # writer under way
            assert time.monotonic() < end and writer.poll() is None
            time.sleep(0.1)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                g = load_graph(str(tmp_path), runtime="mxnet", warmup=())
            except PredictionError as err:
                assert "the export changed while it was read" in str(err), err
                outcomes.append("changed")
                continue
            np.testing.assert_allclose(g(x), refs[g.meta["model"]], rtol=1e-4, atol=1e-4)
            outcomes.append(g.meta["model"])
    finally:
        stop.write_text("")
        writer.wait(timeout=60)
    assert writer.returncode == 0 and len(outcomes) >= 5
    assert {"inception_mnist", "inception_naive_mnist"} <= set(outcomes), outcomes
