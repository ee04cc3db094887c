"""One serving graph, two runtimes: inceptionzoo.serving.load_graph runs an export in MXNet or
its NAME.onnx in ONNX Runtime (checked to give the same logits, the faster per batch size, the
choice saved beside the export), and the .mar handler does the same."""
import json
import os
import sys
import time
import zipfile

import mxnet as mx
import numpy as np
import pytest

from conftest import FakeContext, randomise_bn_statistics
from inceptionzoo import export_runner, get_model, runtimes
from inceptionzoo._io import sha1_file
from inceptionzoo.cli import main
from inceptionzoo.mnist import example_images
from inceptionzoo.export import export
from inceptionzoo.graph_tuning import TunedGraph
from inceptionzoo.serving import PredictionError, Predictor, load_graph

import onnxruntime  # noqa: E402,F401  (the onnxruntime extra, installed by `make setup`: no skip)


def _copy(src, dst):
    """The export's files by their final names (links followed), as plain files."""
    for name in os.listdir(src):
        if not os.path.isdir(src / name):
            (dst / name).write_bytes((src / name).read_bytes())
    return dst


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped inception_mnist, plain (float32 NCHW input), with its ONNX file."""
    folder = tmp_path_factory.mktemp("export")
    export("inception_mnist", str(folder / "inception_mnist"), onnx=True)
    return folder


@pytest.fixture
def folder(exported, tmp_path):
    return _copy(exported, tmp_path)


def _batch(n=5):
    return np.random.RandomState(1).rand(n, 1, 28, 28).astype(np.float32)


def _other_weights_onnx(tmp_path):
    """The ONNX file of inception_mnist with other (random) weights."""
    other = get_model("inception_mnist")
    other.initialize(mx.init.Xavier())
    return export(other, str(tmp_path / "other" / "inception_mnist"), onnx=True)["onnx"]


def _no_timing(*args, **kwargs):
    raise AssertionError("timed the runtimes although a saved tuning covers the batch size")


def test_three_runtimes_give_the_same_logits(folder):
    x = _batch()
    ref = get_model("inception_mnist", pretrained=True)(mx.nd.array(x)).asnumpy()
    graphs = {r: load_graph(str(folder), runtime=r, warmup=(1, 5))
              for r in ("mxnet", "onnxruntime", "auto")}
    assert graphs["mxnet"].runtimes == ["mxnet"] and graphs["mxnet"].ort is None
    assert graphs["onnxruntime"].runtimes == ["onnxruntime"] and graphs["onnxruntime"].net is None
    assert graphs["auto"].runtimes == ["mxnet", "onnxruntime"]
    for r, g in graphs.items():
        got = g(x)
        assert isinstance(got, np.ndarray) and got.shape == (5, 10), r
        same, diff, scale = runtimes.parity(ref, got)
        assert same, (r, diff, scale)
    assert graphs["mxnet"].runtime_for(5) == "mxnet"
    assert graphs["onnxruntime"].runtime_for(5) == "onnxruntime"
    auto = graphs["auto"]
    assert set(auto.choice) == {1, 5} and set(auto.seconds) == {1, 5}
    for b in (1, 5):  # the faster of the two medians, as timed at load
        races = {r: auto.seconds[b][r] for r in ("mxnet", "onnxruntime")}
        assert auto.choice[b] == min(races, key=races.get)
        assert auto.runtime_for(b) == auto.choice[b]
    assert auto.runtime_for(4) == auto.choice[5] and auto.runtime_for(300) == auto.choice[5]


def test_auto_choice_is_saved_and_reused_without_timing(folder, monkeypatch):
    first = load_graph(str(folder), warmup=(1, 3))
    first.choice = {1: "onnxruntime", 3: "mxnet"}  # both kinds must survive the round trip
    path = first.save_tuning()
    assert path == str(folder / "inception_mnist-tuning.json")
    record = json.loads(open(path).read())["runtimes"]
    assert record["choice"] == {"1": "onnxruntime", "3": "mxnet"}
    assert record["onnx_sha1"] == sha1_file(str(folder / "inception_mnist.onnx"))
    monkeypatch.setattr(runtimes, "time_alternating", _no_timing)
    monkeypatch.setattr(TunedGraph, "_pick", _no_timing)
    second = load_graph(str(folder), warmup=(1, 3))
    assert second.choice == {1: "onnxruntime", 3: "mxnet"}
    assert second.runtime_for(1) == "onnxruntime" and second.runtime_for(3) == "mxnet"
    x = _batch(3)
    np.testing.assert_allclose(second(x[:1]), first.net(mx.nd.array(x[:1])).asnumpy(),
                               rtol=1e-4, atol=1e-4)


def _fake_times(order):
    """A ``time_alternating`` that reports the runners named in ``order`` fastest first."""
    def timing(runners, x, budget=2.0, **kwargs):
        for run in runners.values():
            run(x)  # they must run
        return {n: (order.index(n) if n in order else len(order)) + 1.0 for n in runners}
    return timing


def test_the_race_does_not_charge_a_runtime_for_the_one_that_ran_before(monkeypatch):
    """A runtime whose first call after the other one is slow (that one's threads still spin)
    but which is faster when it runs on its own, as a server runs it, wins the race."""
    clock = [0.0]
    last = [None]

    def runner(name, alone, after_other):
        def run(x):
            clock[0] += alone if last[0] in (None, name) else after_other
            last[0] = name
        return run

    monkeypatch.setattr(runtimes.time, "perf_counter", lambda: clock[0])
    runners = {"mxnet": runner("mxnet", 1.0, 3.0), "onnxruntime": runner("onnxruntime", 2.0, 2.0)}
    last[0] = "onnxruntime"  # as after the warm-up
    times = runtimes.time_alternating(runners, None, budget=100.0, min_rounds=2, max_rounds=2)
    assert times == {"mxnet": 1.0, "onnxruntime": 2.0}
    last[0] = "onnxruntime"
    unsettled = runtimes.time_alternating(runners, None, budget=100.0, min_rounds=2,
                                          max_rounds=2, settle=0)
    assert unsettled == {"mxnet": 3.0, "onnxruntime": 2.0}  # each MXNet call right after ONNX
    # Runtime's: the slower one would win


@pytest.mark.parametrize("faster", ["threads=0", "threads=1"])
def test_onnx_runtime_runs_each_batch_size_in_the_thread_setting_timed_faster(
        folder, monkeypatch, faster):
    ort = runtimes.OrtRunner(str(folder / "inception_mnist.onnx"))
    x1, x5 = _batch(1), _batch(5)
    ref = ort(x5)
    monkeypatch.setattr(runtimes, "time_alternating", _fake_times([faster]))
    monkeypatch.setattr(runtimes.OrtRunner, "CLEAR_WIN", float("inf"))  # always a race
    monkeypatch.setattr(runtimes._openmp, "physical_cores", lambda: 2)
    seconds = ort.tune([x1, x5])
    threads = int(faster[-1])
    assert set(seconds) == {1, 5} and set(seconds[1]) == {"threads=0", "threads=1"}
    assert ort.threads == {1: threads, 5: threads}
    assert set(ort.sessions) == {0, threads}  # the session no size uses is dropped
    assert ort.session_for(1) is ort.sessions[threads] is ort.session_for(300)
    same, diff, scale = runtimes.parity(ref, ort(x5))  # one thread or two: the same logits
    assert same, (diff, scale)


def test_a_load_opens_each_onnx_runtime_session_once(folder, monkeypatch):
    """The serving graph re-checks every thread setting while serving, so tuning at load
    keeps the session no batch size uses instead of dropping it and opening it again."""
    monkeypatch.setattr(runtimes._openmp, "physical_cores", lambda: 2)
    monkeypatch.setattr(runtimes, "time_alternating", _fake_times(["threads=0", "onnxruntime"]))
    monkeypatch.setattr(runtimes.OrtRunner, "CLEAR_WIN", float("inf"))  # always a race
    opened, real = [], runtimes.OrtRunner._session

    def counted(self, threads):
        opened.append(threads)
        return real(self, threads)

    monkeypatch.setattr(runtimes.OrtRunner, "_session", counted)
    graph = load_graph(str(folder), warmup=(1, 3))
    assert graph.ort.threads == {1: 0, 3: 0} and sorted(graph.ort.sessions) == [0, 1]
    assert sorted(opened) == [0, 1], opened


def test_a_thread_setting_far_slower_on_its_warm_call_is_out_without_a_race(folder, monkeypatch):
    ort = runtimes.OrtRunner(str(folder / "inception_mnist.onnx"))
    monkeypatch.setattr(runtimes._openmp, "physical_cores", lambda: 2)
    monkeypatch.setattr(runtimes, "time_alternating", _no_timing)
    clock = iter([0.0, 1.0, 10.0, 12.5])  # default: 1 s warm call; one thread: 2.5 s (2.5x)
    monkeypatch.setattr(runtimes.time, "perf_counter", lambda: next(clock))
    assert ort.tune([_batch(2)]) == {2: {"threads=0": 1.0, "threads=1": 2.5}}
    assert ort.threads == {2: 0} and set(ort.sessions) == {0}


def test_one_core_has_no_thread_setting_to_compare(folder, monkeypatch):
    ort = runtimes.OrtRunner(str(folder / "inception_mnist.onnx"))
    monkeypatch.setattr(runtimes, "time_alternating", _no_timing)
    monkeypatch.setattr(runtimes._openmp, "physical_cores", lambda: 1)
    assert ort.tune([_batch(1)]) == {} and ort.threads == {1: 0} and set(ort.sessions) == {0}


def test_the_thread_setting_is_saved_with_the_tuning_and_reused(folder, monkeypatch):
    monkeypatch.setattr(runtimes._openmp, "physical_cores", lambda: 2)
    monkeypatch.setattr(runtimes, "time_alternating", _fake_times(["threads=1", "onnxruntime"]))
    monkeypatch.setattr(runtimes.OrtRunner, "CLEAR_WIN", float("inf"))  # always a race
    first = load_graph(str(folder), warmup=(1, 3))
    assert first.ort.threads == {1: 1, 3: 1} and first.runtime_for(1) == "onnxruntime"
    assert first.seconds[1]["threads=1"] < first.seconds[1]["threads=0"]
    first.save_tuning()
    record = json.loads((folder / "inception_mnist-tuning.json").read_text())["runtimes"]
    assert record["threads"] == {"1": 1, "3": 1}
    monkeypatch.setattr(runtimes, "time_alternating", _no_timing)
    monkeypatch.setattr(TunedGraph, "_pick", _no_timing)
    second = load_graph(str(folder), warmup=(1, 3))
    assert second.ort.threads == {1: 1, 3: 1}
    assert second.ort.session_for(3) is second.ort.sessions[1]
    opts = second.ort.sessions[1].get_session_options()
    assert opts.intra_op_num_threads == 1
    x = _batch(3)
    same, diff, scale = runtimes.parity(second.net(mx.nd.array(x)).asnumpy(), second(x))
    assert same, (diff, scale)


@pytest.mark.parametrize("edit, why", [
    (dict(machine="another CPU"), "it was made on another machine"),
    (dict(symbol_sha1="0" * 40), "it was made for another graph"),
    (dict(mxnet="0.0"), "the tuning record was made for other graphs"),
])
def test_a_tuning_for_another_machine_graph_or_version_is_refused(folder, edit, why):
    load_graph(str(folder), warmup=(1,)).save_tuning()
    path = folder / "inception_mnist-tuning.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), **edit)))
    with pytest.warns(UserWarning, match=f"inception_mnist-tuning.json is ignored: {why}"):
        g = load_graph(str(folder), warmup=(1,))
    assert g.seconds and g.net.tuned == [1]  # timed again


def test_a_runtime_choice_for_another_onnx_file_is_refused(folder):
    g = load_graph(str(folder), warmup=(1,))
    g.save_tuning()
    path = folder / "inception_mnist-tuning.json"
    record = json.loads(path.read_text())
    record["runtimes"]["onnx_sha1"] = "1" * 40
    path.write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="its runtime choice was made for another ONNX file"):
        again = load_graph(str(folder), warmup=(1,))
    assert set(again.seconds) == {1}
    record["runtimes"]["onnxruntime"] = None  # tuned where ONNX Runtime was not installed
    path.write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=r"its runtime choice was made without ONNX Runtime; "
                      r"here ONNX Runtime \S+ runs this export's ONNX file \(rerun"):
        load_graph(str(folder), warmup=(1,))


@pytest.mark.parametrize("text, why", [
    ("{not json", "not a JSON file"),
    ("[1, 2]", "expected a JSON object; got list"),
    ('"text"', "expected a JSON object; got str"),
    (None, "runtimes.choice must map batch sizes"),
    (None, "'choice' must be an object"),
    (None, "runtimes.seconds must map batch sizes to"),
    (None, r"runtimes.threads must map batch sizes to one of \[0, 1\]; got {.1.: 64}"),
])
def test_a_corrupt_tuning_file_warns_naming_it_and_retunes(folder, text, why):
    path = folder / "inception_mnist-tuning.json"
    if text is None:  # a record of the right kind with one field of the wrong kind
        load_graph(str(folder), warmup=(1,)).save_tuning()
        record = json.loads(path.read_text())
        if "seconds" in why:
            record["runtimes"]["seconds"] = {"1": {"mxnet": "fast"}}
        elif "threads" in why:
            record["runtimes"]["threads"] = {"1": 64}
        elif "runtimes" in why:
            record["runtimes"]["choice"] = {"1": "tensorflow"}
        else:
            record["choice"] = ["merge+pool-first"]
        text = json.dumps(record)
    path.write_text(text)
    with pytest.warns(UserWarning, match=f"{path}.* is ignored: {why}"):
        g = load_graph(str(folder), warmup=(1,))
    assert g.net.tuned == [1] and set(g.choice) == {1}
    with pytest.warns(UserWarning, match="is ignored"):
        assert main(["predict", "--model-dir", str(folder), example_images()[0]]) == 0


def test_onnx_runtime_with_other_logits_is_refused_with_a_warning(folder, tmp_path):
    """An ONNX file of the same network with other weights, put in place of the export's (with
    its SHA-1 in the metadata, as an export of other weights would have)."""
    wrong = _other_weights_onnx(tmp_path)
    (folder / "inception_mnist.onnx").write_bytes(open(wrong, "rb").read())
    meta_path = folder / "inception_mnist-meta.json"
    meta = json.loads(meta_path.read_text())
    meta["onnx_sha1"] = sha1_file(wrong)
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"ONNX Runtime refused for .*inception_mnist-meta.json: "
                      r"max \|logit difference\| .* above 0.0001 x the largest \|logit\|"):
        g = load_graph(str(folder), warmup=(1, 4))
    assert g.ort is None and g.runtime_for(1) == g.runtime_for(4) == "mxnet"
    assert "ONNX Runtime refused" in g.tuning()["runtimes"]["refused"]
    x = _batch(4)
    np.testing.assert_allclose(g(x), g.net(mx.nd.array(x)).asnumpy(), rtol=1e-6)


def test_a_saved_onnx_runtime_choice_is_checked_again_at_load(folder, tmp_path):
    """A tuning that sends batches to ONNX Runtime, and an ONNX file (recorded in the metadata
    and the tuning) whose logits are not MXNet's: refused at load, even without warm-up."""
    wrong = _other_weights_onnx(tmp_path)
    (folder / "inception_mnist.onnx").write_bytes(open(wrong, "rb").read())
    meta_path = folder / "inception_mnist-meta.json"
    meta_path.write_text(json.dumps(dict(json.loads(meta_path.read_text()),
                                         onnx_sha1=sha1_file(wrong))))
    g = load_graph(str(folder), runtime="mxnet", warmup=(1,))
    record = dict(g.tuning())
    record["runtimes"] = dict(record["runtimes"], choice={"1": "onnxruntime"},
                              onnx_sha1=sha1_file(wrong),
                              onnxruntime=runtimes.OrtRunner(wrong).version)
    (folder / "inception_mnist-tuning.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="ONNX Runtime refused"):
        again = load_graph(str(folder), warmup=())
    assert again.runtime_for(1) == "mxnet" and again.ort is None


def test_an_onnx_file_that_is_not_the_exported_one_is_an_error(folder):
    (folder / "inception_mnist.onnx").write_bytes(b"not the export's ONNX file")
    for runtime in ("auto", "onnxruntime"):
        with pytest.raises(PredictionError, match="inception_mnist.onnx' is corrupt or not the "
                           "exported one: SHA-1"):
            load_graph(str(folder), runtime=runtime, warmup=())


def test_without_onnxruntime_auto_is_mxnet_and_onnxruntime_names_the_extra(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    assert runtimes.import_onnxruntime() is None
    g = load_graph(str(folder), warmup=(1,))
    assert g.runtimes == ["mxnet"] and g.runtime_for(1) == "mxnet" and g.seconds == {}
    with pytest.raises(PredictionError, match=r"runtime 'onnxruntime' needs onnxruntime: in the "
                       r"inceptionzoo checkout, pip install -c constraints.txt -e "
                       r"'\.\[cpu,onnxruntime\]'"):
        load_graph(str(folder), runtime="onnxruntime")
    top = Predictor(str(folder)).predict_files(example_images(), top_k=1)
    assert [t[0][0] for t in top] == [os.path.basename(p).split("-")[1] for p in example_images()]


def test_an_export_without_onnx(tmp_path):
    export("inception_mnist", str(tmp_path / "inception_mnist"))
    assert load_graph(str(tmp_path), warmup=(1,)).runtimes == ["mxnet"]
    with pytest.raises(PredictionError, match="has no ONNX file of this export: export with "
                       r"onnx=True \(inceptionzoo export --onnx\)"):
        load_graph(str(tmp_path), runtime="onnxruntime")
    with pytest.raises(PredictionError, match="runtime must be one of auto, mxnet, onnxruntime; "
                       "got 'tvm'"):
        load_graph(str(tmp_path), runtime="tvm")
    assert main(["predict", "--model-dir", str(tmp_path), "--runtime", "onnxruntime",
                 example_images()[0]]) == 2


@pytest.mark.parametrize("runtime", ["onnxruntime", "auto"])
def test_predictor_and_cli_on_onnx_runtime(folder, runtime, capsys):
    p = Predictor(str(folder), runtime=runtime, warmup=(1, 10))
    truth = [os.path.basename(f).split("-")[1] for f in example_images()]
    assert [t[0][0] for t in p.predict_files(example_images(), top_k=1)] == truth
    probs = p.probabilities(example_images())
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert main(["tune", str(folder), "--batch-sizes", "1,2", "--runtime", runtime]) == 0
    out = capsys.readouterr().out
    record = json.loads((folder / "inception_mnist-tuning.json").read_text())
    assert set(record["runtimes"]["choice"]) == {"1", "2"} and "saved:" in out
    if runtime == "auto":
        assert "mxnet" in out and "onnxruntime" in out and " ms" in out  # both timed
    assert main(["predict", "--model-dir", str(folder), "--runtime", runtime, "--top-k", "1",
                 example_images()[0]]) == 0


@pytest.mark.slow
def test_an_imagenet_network_onnx_at_a_small_input(tmp_path):
    """googlenet_bn (batch norm, 1000 classes) exported at 96x96 with batch-norm statistics away
    from 0/1: the three runtimes agree."""
    net = get_model("googlenet_bn")
    net.initialize(mx.init.Xavier(magnitude=2))
    net(mx.nd.zeros((1, 3, 96, 96)))
    randomise_bn_statistics(net)
    rng = np.random.RandomState(0)
    export(net, str(tmp_path / "googlenet_bn"), input_shape=(3, 96, 96), onnx=True)
    x = rng.rand(2, 3, 96, 96).astype(np.float32)
    ref = load_graph(str(tmp_path), runtime="mxnet", warmup=())(x)
    auto = load_graph(str(tmp_path), warmup=(2,))
    assert auto.runtimes == ["mxnet", "onnxruntime"] and auto.refused is None
    for got in (load_graph(str(tmp_path), runtime="onnxruntime", warmup=())(x), auto(x)):
        assert got.shape == (2, 1000)
        same, diff, scale = runtimes.parity(ref, got)
        assert same, (diff, scale)


# -- one function whichever runtime serves (issue 27) ---------------------------------------

def _saved_choice(folder, choice, threads=None):
    """A saved tuning that sends each batch size of ``choice`` to the runtime it names."""
    g = load_graph(str(folder), runtime="mxnet", warmup=(1,))
    record = g.tuning()
    record["runtimes"] = dict(record["runtimes"], choice={str(b): r for b, r in choice.items()},
                              threads={str(b): t for b, t in (threads or {}).items()},
                              onnx_sha1=sha1_file(str(folder / "inception_mnist.onnx")),
                              onnxruntime=onnxruntime.__version__)
    (folder / "inception_mnist-tuning.json").write_text(json.dumps(record))


def test_an_empty_batch_gives_no_rows_under_every_runtime(folder):
    _saved_choice(folder, {1: "onnxruntime", 8: "mxnet"})
    for runtime in ("auto", "mxnet", "onnxruntime"):
        g = load_graph(str(folder), runtime=runtime, warmup=())
        out = g(np.zeros((0, 1, 28, 28), np.float32))
        assert isinstance(out, np.ndarray) and out.shape == (0, 10), runtime
        assert out.dtype == np.float32


def test_two_runtimes_one_function_same_checks_same_errors(folder):
    """ONNX Runtime serves batches 1-2 and MXNet 3 and up: a wrong input is refused the same
    way at batch 2 and at batch 8, before either runtime sees it."""
    _saved_choice(folder, {1: "onnxruntime", 2: "onnxruntime", 8: "mxnet"})
    g = load_graph(str(folder), warmup=())
    assert g.runtime_for(2) == "onnxruntime" and g.runtime_for(8) == "mxnet"
    shape = r"expected a batch of shape \('N', 1, 28, 28\) \(the export's batch_shape\); got "
    bad = {"channels": (lambda n: np.zeros((n, 3, 28, 28), np.float32),
                        shape + r"\({n}, 3, 28, 28\)"),
           "height": (lambda n: np.zeros((n, 1, 27, 28), np.float32),
                      shape + r"\({n}, 1, 27, 28\)"),
           "nan": (lambda n: np.full((n, 1, 28, 28), np.nan, np.float32),
                   r"the batch of shape \({n}, 1, 28, 28\) holds NaN or infinite values"),
           "one inf": (lambda n: np.where(np.arange(n * 784).reshape(n, 1, 28, 28) == 5, np.inf,
                                          0).astype(np.float32),
                       r"the batch of shape \({n}, 1, 28, 28\) holds NaN or infinite values"),
           "complex": (lambda n: np.zeros((n, 1, 28, 28), np.complex64), "expected real numbers")}
    for what, (make, message) in bad.items():
        for n in (2, 8):
            batches = [make(n)] + ([] if what == "complex" else [mx.nd.array(make(n))])
            for batch in batches:
                with pytest.raises(PredictionError, match=message.format(n=n)):
                    g(batch)
    x = _batch(8)  # other real dtypes are cast, the same at both sizes (up to the runtimes'
    for n in (2, 8):  # parity: a call may be a probe of the other runtime, SteadyRace)
        want = g(x[:n])
        np.testing.assert_allclose(g(x[:n].astype(np.float64)), want, rtol=0,
                                   atol=runtimes.PARITY * np.abs(want).max())


@pytest.mark.parametrize("size", [5, 784, export_runner._DOT_CHECK + 1, 3 * 299 * 299])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_finite_values_check_finds_one_bad_value_and_takes_huge_finite_ones(size, dtype):
    """The input check's shortcut (a sum of squares, or a sum, is finite only when every value
    is) misses no NaN or infinity anywhere, and values whose squares or sum overflow are still
    finite, in every float dtype, contiguous or not."""
    rng = np.random.default_rng(size)
    x = rng.normal(size=size).astype(dtype)
    assert export_runner.all_finite(x) and export_runner.all_finite(x[::2])
    for bad in ([np.nan], [np.inf], [-np.inf], [np.inf, -np.inf]):
        y = x.copy()
        y[rng.choice(size, len(bad), replace=False)] = bad
        assert not export_runner.all_finite(y), (bad, dtype, size)
        assert not export_runner.all_finite(y.reshape(1, -1)[:, ::-1])
    huge = np.full(size, np.finfo(dtype).max / 2, dtype)
    assert export_runner.all_finite(huge) and export_runner.all_finite(-huge)


def test_a_uint8_export_takes_uint8_only_whichever_runtime(tmp_path):
    export("inception_mnist", str(tmp_path / "inception_mnist"), preprocess=True, onnx=True)
    _saved_choice(tmp_path, {1: "onnxruntime", 2: "onnxruntime", 8: "mxnet"})
    g = load_graph(str(tmp_path), warmup=())
    for n in (2, 8):
        with pytest.raises(PredictionError, match="this export takes uint8 pixels; got an array "
                           "of dtype float32"):
            g(np.zeros((n, 28, 28), np.float32))
        assert g(np.zeros((n, 28, 28), np.uint8)).shape == (n, 10)


def test_set_threads_never_shows_a_setting_before_its_session(folder, monkeypatch):
    """A batch served while a saved thread setting's session is being made (issue 27: a
    KeyError in session_for)."""
    ort = runtimes.OrtRunner(str(folder / "inception_mnist.onnx"))
    real = runtimes.OrtRunner._session
    served = []

    def slow_session(self, threads):
        served.append(self.session_for(1) is not None)  # another thread, meanwhile
        return real(self, threads)

    monkeypatch.setattr(runtimes.OrtRunner, "_session", slow_session)
    ort.set_threads({1: 1, 8: 0})
    assert served == [True] and ort.session_for(1) is ort.sessions[1]


def test_warmup_while_other_threads_serve_new_batch_sizes(folder, monkeypatch):
    """A saved tuning choosing ONNX Runtime for batch 1 (no thread setting saved); one thread
    warms up 1 and 64 while others send batch sizes 2 to 15, here while batch 64 is timed
    (issue 27: each got a KeyError, batch 1's setting recorded before its session existed)."""
    import threading

    _saved_choice(folder, {1: "onnxruntime"})
    g = load_graph(str(folder), warmup=())
    x = _batch(64)
    errors, answers = [], []

    def serve(n):
        try:
            answers.append(g(x[:n]).shape)
        except Exception as err:  # noqa: BLE001 -- the test collects every failure
            errors.append(repr(err))

    def race(runners, batch, budget=2.0, **kwargs):  # one thread faster; clients meanwhile
        for run in runners.values():
            run(batch)
        if len(batch) == 64 and "threads=1" in runners:
            clients = [threading.Thread(target=serve, args=(n,)) for n in range(2, 16)]
            for t in clients:
                t.start()
            for t in clients:
                t.join()
        return {n: 1.0 if n in ("threads=1", "onnxruntime") else 2.0 for n in runners}

    monkeypatch.setattr(runtimes, "time_alternating", race)
    monkeypatch.setattr(runtimes._openmp, "physical_cores", lambda: 2)
    monkeypatch.setattr(runtimes.OrtRunner, "CLEAR_WIN", float("inf"))  # always a race
    warm = threading.Thread(target=g.warmup, args=([1, 64],))
    warm.start()
    warm.join()
    assert errors == [] and sorted(answers) == [(n, 10) for n in range(2, 16)]
    assert g.ort.threads == {1: 1, 64: 1} and g.runtime_for(1) == "onnxruntime"


# -- the ONNX file's SHA-1 ------------------------------------------------------------------

def _without_onnx_sha1(folder):
    meta_path = folder / "inception_mnist-meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["onnx_file"], meta["onnx_sha1"]  # as exports before onnx_sha1 wrote it
    meta_path.unlink()
    meta_path.write_text(json.dumps(meta))


def test_an_unrecorded_onnx_file_is_checked_against_mxnet(folder, tmp_path):
    """runtime='onnxruntime' on an export without onnx_sha1: its NAME.onnx must give MXNet's
    logits (a swapped file was served unchecked)."""
    _without_onnx_sha1(folder)
    g = load_graph(str(folder), runtime="onnxruntime", warmup=())
    assert g.runtimes == ["onnxruntime"]
    wrong = _other_weights_onnx(tmp_path)
    (folder / "inception_mnist.onnx").write_bytes(open(wrong, "rb").read())
    with pytest.warns(UserWarning, match="ONNX Runtime refused"), \
            pytest.raises(PredictionError, match=r"ONNX Runtime refused for .*: max \|logit "
                          r"difference\| .* \(the export recorded no onnx_sha1 for its ONNX "
                          r"file: export again with --onnx\)"):
        load_graph(str(folder), runtime="onnxruntime", warmup=())


def test_a_recorded_onnx_file_that_is_missing_serves_mxnet_under_auto(folder):
    (folder / "inception_mnist.onnx").unlink()
    with pytest.warns(UserWarning, match=r"inception_mnist.onnx' \(recorded by .*"
                      r"inception_mnist-meta.json\) is missing: MXNet serves this export") as w:
        g = load_graph(str(folder), warmup=(1,))
    assert len([m for m in w if "is missing" in str(m.message)]) == 1  # said once
    assert g.runtimes == ["mxnet"] and g(_batch(2)).shape == (2, 10)
    with pytest.raises(PredictionError, match=r"has no ONNX file of this export \('.*"
                       r"inception_mnist.onnx' is missing\)"):
        load_graph(str(folder), runtime="onnxruntime", warmup=())


# -- the .mar handler -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("mar")
    return export("inception_mnist", str(root / "inception_mnist"), onnx=True, mar=True)["mar"]


def _handler_in(mar, folder):
    import inceptionzoo.mms_handler as mms_handler

    with zipfile.ZipFile(mar) as z:
        z.extractall(folder)
    return mms_handler.InceptionZooService(), FakeContext(str(folder), batch_size=4)


def test_archive_carries_the_onnx_file_and_the_runtime_module(archive):
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
    assert {"inception_mnist.onnx", "inceptionzoo_serving/runtimes.py",
            "inceptionzoo_serving/serving_core.py"} <= names


def test_handler_serves_with_onnx_runtime_where_it_is_faster(archive, tmp_path):
    service, ctx = _handler_in(archive, tmp_path)
    service.initialize(ctx)
    graph = service.graph
    assert graph.ort is not None and set(graph.choice) == {1, 4}
    assert set(graph.ort.threads) == {1, 4}  # ONNX Runtime's thread setting, tuned at load
    bodies = [open(p, "rb").read() for p in example_images()]
    graph.choice = {1: "onnxruntime", 4: "onnxruntime"}  # whatever the timing said
    answers = [json.loads(a) for a in service.handle([{"body": b} for b in bodies], ctx)]
    assert graph.runtime_for(len(bodies)) == "onnxruntime"
    assert [a["label"] for a in answers] == [os.path.basename(p).split("-")[1]
                                            for p in example_images()]
    x = service.classifier.graph_input(np.stack([service._image(b) for b in bodies])).asnumpy()
    same, diff, scale = runtimes.parity(graph._mxnet(x), graph(x))
    assert same, (diff, scale)


def test_handler_refuses_an_onnx_file_with_other_logits(archive, tmp_path):
    """An ONNX file swapped in the unpacked archive: its SHA-1 is not the recorded one."""
    service, ctx = _handler_in(archive, tmp_path / "mar")
    wrong = _other_weights_onnx(tmp_path)
    (tmp_path / "mar" / "inception_mnist.onnx").write_bytes(open(wrong, "rb").read())
    with pytest.raises(PredictionError, match=r"inception_mnist.onnx' is corrupt or not the "
                       r"exported one: SHA-1"):
        service.initialize(ctx)


def test_handler_refuses_onnx_runtime_with_other_logits(archive, tmp_path):
    """The parity check at load: MXNet serves, with a warning."""
    service, ctx = _handler_in(archive, tmp_path / "mar")
    wrong = _other_weights_onnx(tmp_path)
    (tmp_path / "mar" / "inception_mnist.onnx").write_bytes(open(wrong, "rb").read())
    meta_file = tmp_path / "mar" / "inception_mnist-meta.json"
    meta = json.loads(meta_file.read_text())
    meta["onnx_sha1"] = sha1_file(wrong)  # recorded, so only the logits can tell
    meta_file.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"ONNX Runtime refused for .*inception_mnist-meta.json: "
                      r"max \|logit difference\|"):
        service.initialize(ctx)
    assert service.graph.ort is None and service.graph.runtime_for(1) == "mxnet"


def test_handler_without_onnxruntime_serves_with_mxnet(archive, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    service, ctx = _handler_in(archive, tmp_path)
    service.initialize(ctx)
    assert service.graph.ort is None and service.graph.runtime_for(4) == "mxnet"
    answers = service.handle([{"body": open(example_images()[0], "rb").read()}], ctx)
    assert json.loads(answers[0])["label"] == os.path.basename(example_images()[0]).split("-")[1]


def _serve(race, batch, chosen, seconds, calls):
    """``calls`` calls through ``race``, as the serving graph makes them: each runtime's call
    takes ``seconds[runtime]``; returns the choice after each call and the runtimes that
    ran."""
    ran, choices = [], []
    for _ in range(calls):
        run, timed = race.route(batch, chosen, [r for r in seconds if r != chosen])
        ran.append(run)
        if timed:
            chosen = race.record(batch, run, seconds[run], chosen)
        else:
            race.untimed(batch, run, seconds[run])
        choices.append(chosen)
    return choices, ran


def test_steady_race_probes_once_per_interval_and_switches_to_a_runtime_that_became_faster():
    race = runtimes.SteadyRace(every=1.0, margin=1.1, spacing=0)
    # the chosen runtime is faster: probes happen (two calls each, after 1 s, then after 2 s
    # more: a losing probe doubles the wait) but the choice stays
    choices, ran = _serve(race, 32, "mxnet", {"mxnet": 0.01, "onnxruntime": 0.02}, 400)
    assert set(choices) == {"mxnet"}
    probes = ran.count("onnxruntime")
    assert probes == 2 * 2  # 4 to 5 s of serving
    assert all(ran[i + 1] == "onnxruntime" for i in range(len(ran) - 1)
               if ran[i] == "onnxruntime" and ran[i - 1] == "mxnet")
    # now it is the slower (as after another runtime's big batch): the choice moves after
    # three probes, and back again when the other slows down more
    choices, ran = _serve(race, 32, "mxnet", {"mxnet": 0.05, "onnxruntime": 0.02}, 200)
    assert choices[-1] == "onnxruntime" and ran[-1] == "onnxruntime"
    assert choices.index("onnxruntime") > 3
    choices, _ = _serve(race, 32, "onnxruntime", {"mxnet": 0.05, "onnxruntime": 0.2}, 100)
    assert choices[-1] == "mxnet"
    # within the margin: no switch
    race = runtimes.SteadyRace(every=1.0, margin=1.1, spacing=0)
    choices, _ = _serve(race, 1, "mxnet", {"mxnet": 0.0105, "onnxruntime": 0.01}, 2000)
    assert set(choices) == {"mxnet"}


def test_steady_race_keeps_the_serving_within_095x_of_the_faster_runtime():
    """At the default margin (1.05) a runtime 7% faster takes over (Inception-v3 at batch 1:
    MXNet 7% faster than the ONNX Runtime chosen at load, kept at a margin of 1.1), and one
    3% faster does not (the two swap places on noise at that distance)."""
    seconds = {"onnxruntime": 0.055, "mxnet": 0.055 / 1.07}
    choices, _ = _serve(runtimes.SteadyRace(), 1, "onnxruntime", seconds, 2000)
    assert choices[-1] == "mxnet"
    seconds["mxnet"] = 0.055 / 1.03
    choices, _ = _serve(runtimes.SteadyRace(), 1, "onnxruntime", seconds, 2000)
    assert set(choices) == {"onnxruntime"}


def test_a_much_slower_runtime_does_not_hold_back_the_probes_of_a_faster_one():
    """Inception-v3 at batch 1 under 'auto': ONNX Runtime's two-thread session chosen at load,
    its one-thread session twice as slow, MXNet 7% faster. Each other runtime waits on its
    own losses: MXNet takes over within 15 s of serving (with one wait for both, each losing
    probe of the slow session held MXNet's next probe back ~11 s: ~40 s)."""
    seconds = {"ort2": 0.055, "ort1": 0.11, "mxnet": 0.055 / 1.07}
    race = runtimes.SteadyRace()
    choices, ran = _serve(race, 1, "ort2", seconds, 1500)
    switch = choices.index("mxnet")
    served = sum(seconds[r] for r in ran[:switch])
    assert served < 15, served
    assert ran[:switch].count("ort1") >= 2  # the slow one was probed too, less often
    assert ran[:switch].count("ort1") < ran[:switch].count("mxnet")
    # any two probes stay the spacing apart (50 calls' time of the chosen runtime)
    served = np.cumsum([0.0] + [seconds[r] for r in ran])
    starts = [served[i] for i in range(1, len(ran)) if ran[i] != "ort2" == ran[i - 1]]
    assert min(b - a for a, b in zip(starts, starts[1:])) >= 50 * 0.055


def test_steady_race_probes_a_slow_network_at_most_once_per_spacing_calls():
    """A call of a second: probes at most once per 50 calls' time, whatever ``every`` says."""
    race = runtimes.SteadyRace(every=0.25, spacing=50, backoff=1, budget=0)
    _, ran = _serve(race, 16, "mxnet", {"mxnet": 1.0, "onnxruntime": 2.0}, 500)
    probes = ran.count("onnxruntime") // 2
    assert 500 / 52 - 1 <= probes <= 500 / 50 + 1
    cost = ran.count("onnxruntime") * 2.0 / (ran.count("mxnet") * 1.0 + ran.count("onnxruntime")
                                             * 2.0)
    assert cost < 0.08


def test_steady_race_waits_longer_after_each_losing_probe_and_reacts_after_a_win():
    """Probes of a runtime that keeps losing come 50, 100, 200, 400, 400 ... calls' time
    apart (the wait doubles, up to 8 times); the costs of probing fall below 1.5%; when that
    runtime becomes the faster one, its first winning probe resets the wait and it takes
    over."""
    race = runtimes.SteadyRace(every=0.25, spacing=50, budget=0)
    seconds = {"mxnet": 1.0, "onnxruntime": 2.0}
    _, ran = _serve(race, 16, "mxnet", seconds, 2000)
    clock = np.cumsum([0.0] + [seconds[r] for r in ran])
    starts = [clock[i] for i in range(1, len(ran)) if ran[i] == "onnxruntime" != ran[i - 1]]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # 100, 200, 400, 400 s of serving by the chosen runtime, plus each probe's two calls of
    # 2 s and the first call back (1 s), which are not timed
    assert gaps[:4] == [105, 205, 405, 405], gaps
    cost = ran.count("onnxruntime") * 2.0 / (ran.count("mxnet") + ran.count("onnxruntime") * 2.0)
    assert cost < 0.015
    choices, ran = _serve(race, 16, "mxnet", {"mxnet": 1.0, "onnxruntime": 0.5}, 1000)
    switch = choices.index("onnxruntime")
    assert switch < 400 + 3 * 60, switch  # one long wait, then probes 50 calls apart


def test_steady_race_counts_serving_time_not_idle_time():
    """Probes come per seconds of serving the size: after an idle minute the next call is not
    a probe (it would be one at every request after a pause), and the probe comes once the
    chosen runtime has served ``every`` seconds since the last one."""
    race = runtimes.SteadyRace(every=1.0, spacing=0, backoff=1, budget=0)
    seconds = {"mxnet": 0.01, "onnxruntime": 0.02}
    _, ran = _serve(race, 8, "mxnet", seconds, 150)  # 1.5 s of serving: one probe
    assert ran.count("onnxruntime") == 2
    # an idle minute here changes nothing: the race has no clock, only its calls' times
    _, ran = _serve(race, 8, "mxnet", seconds, 40)
    assert set(ran) == {"mxnet"}
    _, ran = _serve(race, 8, "mxnet", seconds, 60)  # 1 s of serving since the probe
    assert ran.count("onnxruntime") == 2


@pytest.mark.parametrize("slower", [1.2, 2.0, 4.0])
def test_steady_race_spends_at_most_its_budget_on_losing_probes(slower):
    """Big batches (MXNet 18 ms a call, ONNX Runtime 1.2x to 4x slower): whatever the probed
    runtime loses per call, the probes cost at most ~1% of the serving once the waits have
    grown, and a runtime that becomes faster still takes over."""
    race = runtimes.SteadyRace(every=0.25, spacing=50, budget=0.01)
    seconds = {"mxnet": 0.018, "onnxruntime": 0.018 * slower}
    _, ran = _serve(race, 256, "mxnet", seconds, 20000)  # 6 minutes of serving
    late = ran[10000:]
    spent = sum(seconds[r] for r in late)
    lost = late.count("onnxruntime") * (seconds["onnxruntime"] - seconds["mxnet"])
    assert late.count("onnxruntime") >= 2 and lost / spent <= 0.012, (slower, lost / spent)
    choices, _ = _serve(race, 256, "mxnet", {"mxnet": 0.018, "onnxruntime": 0.009}, 20000)
    assert choices[-1] == "onnxruntime"
    # without the budget, the probes of a 4x slower runtime cost more
    if slower == 4.0:
        race = runtimes.SteadyRace(every=0.25, spacing=50, budget=0)
        _, ran = _serve(race, 256, "mxnet", seconds, 20000)
        late = ran[10000:]
        lost_before = late.count("onnxruntime") * (seconds["onnxruntime"] - seconds["mxnet"])
        assert lost_before / sum(seconds[r] for r in late) > 0.012


def test_one_slow_probe_call_does_not_stop_the_re_check():
    """The budget's wait after a losing probe stops at 4 times the longest wait of the backoff
    (8 s of serving at batch 1): a probe call held up 100 ms (the scheduler, a pause), where a
    call takes 0.15 ms, would otherwise stop the probes for 30 s of serving (200,000 calls)."""
    race = runtimes.SteadyRace(every=0.25, spacing=50, budget=0.01)
    seconds = {"onnxruntime": 0.00015, "mxnet": 0.1}  # the probe's timed call, held up
    _, ran = _serve(race, 1, "onnxruntime", seconds, 2000)
    assert ran.count("mxnet") >= 2
    first = ran.index("mxnet")
    seconds["mxnet"] = 0.0006  # MXNet back to its usual 4x slower
    _, ran = _serve(race, 1, "onnxruntime", seconds, int(4 * 8 * 0.25 / 0.00015) + 2000)
    assert ran.count("mxnet") >= 2, first  # probed again within 8 s of serving


def _serve_with_switch_cost(race, calls):
    """MXNet chosen at batch 1, 1 ms a call; ONNX Runtime 0.8 ms a call, but 3 ms in the first
    6 ms after a switch to it. Returns (runtime, timed, seconds) per call and the choice."""
    calls_made, chosen, now, switched = [], "mxnet", 0.0, 0.0
    for _ in range(calls):
        run, timed = race.route(1, chosen, ["onnxruntime"])
        if calls_made and run != calls_made[-1][0]:
            switched = now
        cost = 0.001 if run == "mxnet" else (0.003 if now - switched < 0.006 else 0.0008)
        now += cost
        calls_made.append((run, timed, cost))
        if timed:
            chosen = race.record(1, run, cost, chosen)
        else:
            race.untimed(1, run, cost)
    return calls_made, chosen


def test_a_probe_runs_until_the_switch_has_settled_and_times_only_its_last_call():
    """A runtime's first calls after the other's are slower for milliseconds: a probe is at
    least two calls and at least ``settle`` seconds long (at most 8 calls' time of the chosen
    runtime), and only its last call counts; so a runtime slowed only by the switch does not
    lose its probes."""
    race = runtimes.SteadyRace(every=0.25, spacing=0, settle=0.02)
    calls, chosen = _serve_with_switch_cost(race, 3000)
    ran = [r for r, _, _ in calls]
    probe = ran.index("onnxruntime")
    length = ran.index("mxnet", probe) - probe
    assert length >= 4  # 8 ms (8 calls of MXNet's 1 ms, less than 20 ms), not two calls
    assert [t for _, t, _ in calls[probe:probe + length]] == [False] * (length - 1) + [True]
    assert {c for r, t, c in calls[:ran.index("mxnet", probe)] if r == "onnxruntime" and t} \
        == {0.0008}
    assert chosen == "onnxruntime"  # 1.25x faster once settled: it takes over
    # timed on its second call (settle=0), the same runtime loses every probe
    race = runtimes.SteadyRace(every=0.25, spacing=0, settle=0)
    calls, chosen = _serve_with_switch_cost(race, 3000)
    assert chosen == "mxnet" and sum(r == "onnxruntime" for r, _, _ in calls) >= 4


def test_a_pause_in_a_probe_does_not_settle_it():
    """A probe settles over its own calls' time, not the wall time: a pause between two of
    its requests (the runtime's threads asleep after it) does not make the next call the timed
    one."""
    race, call = runtimes.SteadyRace(every=0.25, spacing=0, settle=0.02), 2.0 ** -10  # ~1 ms
    run, timed = race.route(1, "mxnet", ["onnxruntime"])
    while run == "mxnet":  # 0.25 s of serving, then a probe starts
        race.record(1, run, call, "mxnet") if timed else race.untimed(1, run, call)
        run, timed = race.route(1, "mxnet", ["onnxruntime"])
    assert not timed
    race.untimed(1, run, call)
    for calls in range(2, 9):  # it settles over 8 of its calls (8 of the chosen one's)
        time.sleep(0.01)  # 10 ms idle before each request: 70 ms of wall time in all
        run, timed = race.route(1, "mxnet", ["onnxruntime"])
        assert (run, timed) == ("onnxruntime", False), calls
        race.untimed(1, run, call)
    assert race.route(1, "mxnet", ["onnxruntime"]) == ("onnxruntime", True)


def test_a_probe_ends_when_its_calls_fail_or_go_unreported(folder):
    """A probed runtime that raises still ends its probe (the serving graph reports the failed
    call's time), and a caller that never reports untimed calls is not held on the probed
    runtime past :attr:`SteadyRace.MAX_PROBE_CALLS` calls."""
    race = runtimes.SteadyRace(every=0.0, spacing=0, settle=10.0)  # never settles on time
    run, timed = race.route(1, "a", ["b"])
    while run == "a":
        race.record(1, run, 0.001, "a") if timed else None
        run, timed = race.route(1, "a", ["b"])
    calls = 1
    while not timed:
        run, timed = race.route(1, "a", ["b"])
        calls += 1
    assert run == "b" and calls == runtimes.SteadyRace.MAX_PROBE_CALLS
    graph = load_graph(str(folder), "auto", warmup=(4,))
    graph._race = runtimes.SteadyRace(every=0.0, spacing=0, settle=0.005)

    class Failing:
        def __getattr__(self, name):
            return getattr(graph.net, name)

        def __call__(self, x):
            time.sleep(0.002)
            raise mx.base.MXNetError("on purpose")

    graph.choice = {4: "onnxruntime"}
    graph.net = Failing()
    failed = 0
    for _ in range(40):
        try:
            graph(_batch(4))
        except PredictionError:
            failed += 1
    assert failed >= 2 and 40 - failed >= 10  # each probe of MXNet ends; ONNX Runtime serves


class _Slower:
    """A runtime (or an ONNX Runtime session) made slower on purpose: ``delay`` seconds more
    per call."""

    def __init__(self, run, delay):
        self.run, self.delay = run, delay

    def __call__(self, x):
        time.sleep(self.delay)
        return self.run(x)

    def run_with(self, threads, x):
        time.sleep(self.delay)
        return self.run.run_with(threads, x)

    def __getattr__(self, name):  # threads, version, sessions ... of the real runner
        return getattr(self.run, name)


@pytest.mark.parametrize("slow", ["onnxruntime", "mxnet"])
def test_auto_serves_the_runtime_that_is_faster_in_steady_state(folder, slow, monkeypatch):
    """One runtime slowed on purpose: the load-time race picks the other, and when it is
    slowed only after load (a choice made under other conditions), serving moves to the
    other within a few probes, with the same logits throughout."""
    monkeypatch.setattr(runtimes.OrtRunner, "tune", lambda self, batches, **kw: {})
    x = _batch(4)
    graph = load_graph(str(folder), "auto", warmup=())
    want = graph.net(mx.nd.array(x)).asnumpy()
    real = {"onnxruntime": graph.ort, "mxnet": graph.net}
    setattr(graph, "ort" if slow == "onnxruntime" else "net", _Slower(real[slow], 0.02))
    graph.warmup([4])
    fast = "mxnet" if slow == "onnxruntime" else "onnxruntime"
    assert graph.choice[4] == fast
    # slowed after load: the choice made at load was the slow one
    graph.choice = {**graph.choice, 4: slow}  # a new dict: see ExportRunner.choice
    graph._race = runtimes.SteadyRace(every=0.0, spacing=0, settle=0)
    ran = []
    for _ in range(40):  # probes take turns among the other ways (MXNet, ORT's other setting)
        ran.append(graph.runtime_for(4))
        np.testing.assert_allclose(graph(x), want, rtol=1e-4, atol=1e-4)
    assert graph.choice[4] == fast, ran
    assert ran[-1] == fast
    # a runtime that is not re-checked: not 'auto'
    pinned = load_graph(str(folder), slow, warmup=(4,))
    pinned._race = runtimes.SteadyRace(every=0.0, spacing=0, settle=0)
    for _ in range(10):
        pinned(x)
    assert pinned.runtime_for(4) == slow


def test_the_serving_graph_times_every_call_a_probe_settles_over(folder):
    """Each call the re-check says not to time reaches :meth:`SteadyRace.untimed` with its
    runtime and its own time (a probe's settle clock), each timed one :meth:`record`."""
    events = []

    class Spy(runtimes.SteadyRace):
        def route(self, batch, chosen, others):
            got = super().route(batch, chosen, others)
            events.append(("route",) + got)
            return got

        def untimed(self, batch, runtime, seconds):
            events.append(("untimed", runtime, seconds))
            super().untimed(batch, runtime, seconds)

        def record(self, batch, runtime, seconds, chosen):
            events.append(("record", runtime, seconds))
            return super().record(batch, runtime, seconds, chosen)

    graph = load_graph(str(folder), "auto", warmup=(4,))
    graph._race = Spy(every=0.0, spacing=0, settle=0.005)
    for _ in range(30):
        graph(_batch(4))
    routes = [i for i, e in enumerate(events) if e[0] == "route"]
    assert len(routes) == 30
    for i in routes:
        _, run, timed = events[i]
        kind, ran, seconds = events[i + 1]
        assert (kind, ran) == ("record" if timed else "untimed", run) and seconds > 0
    assert sum(e[0] == "untimed" for e in events) >= 3  # probes of more than one call ran


def test_onnx_runtime_threads_are_not_pinned_to_cores(folder):
    """ONNX Runtime pins the threads of a pool it sizes itself (its worker on one CPU only,
    beside MXNet's unpinned threads); the zoo's sessions name the count, which leaves them to
    the scheduler."""
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2 \
            or not os.path.isdir("/proc/self/task"):
        pytest.skip("needs Linux and at least 2 CPUs")
    everywhere = set(os.sched_getaffinity(0))
    ort = runtimes.OrtRunner(str(folder / "inception_mnist.onnx"))
    ort(_batch(32))
    for tid in os.listdir("/proc/self/task"):
        assert os.sched_getaffinity(int(tid)) == everywhere, f"thread {tid} is pinned"


def test_onnx_runtime_pools_stop_spinning_when_a_run_returns(folder):
    """Every session the zoo opens stops its pool's spinning at the end of a run: in a serving
    process MXNet or the other session runs next, and spinning threads would slow it."""
    ort = runtimes.OrtRunner(str(folder / "inception_mnist.onnx"))
    ort.open_all()
    assert len(ort.sessions) >= 1
    for threads, session in ort.sessions.items():
        entry = session.get_session_options().get_session_config_entry(
            "session.force_spinning_stop")
        assert entry == "1", threads


def test_onnx_runtime_moves_a_batch_size_to_the_thread_setting_that_became_faster(folder,
                                                                                   monkeypatch):
    """ONNX Runtime's thread setting per batch size is re-checked while serving like the
    runtime: the chosen session slowed on purpose after load, the size moves to the other."""
    monkeypatch.setattr(runtimes.OrtRunner, "tune", lambda self, batches, **kw: {})
    graph = load_graph(str(folder), "onnxruntime", warmup=(4,))
    assert sorted(graph.ort.sessions) == [0, 1] and graph.ort.threads.get(4, 0) == 0
    real = graph.ort.sessions[0]

    class SlowSession:
        def run(self, *args):
            time.sleep(0.02)
            return real.run(*args)

    graph.ort.sessions[0] = SlowSession()
    graph.ort._by_batch = {}
    graph._race = runtimes.SteadyRace(every=0.0, spacing=0, settle=0)
    x = _batch(4)
    want = real.run(None, {graph.ort.input_name: x})[0]
    for _ in range(30):
        np.testing.assert_allclose(graph(x), want, rtol=1e-5, atol=1e-5)
    assert graph.ort.threads[4] == 1 and graph.graph_for(4) == ("onnxruntime", "threads=1")
    assert graph.tuning()["runtimes"]["threads"]["4"] == 1
