"""The benchmark harness (benchmarks/throughput.py, beside the package). The tests that run it
spawn a fresh worker process per configuration: they are slow."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from conftest import side_env_python
from inceptionzoo import get_model, list_models
from inceptionzoo.graph_tuning import TunedGraph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from throughput import RECOMMENDED_MODE, prepare_inference, probe_gpu, run, table  # noqa: E402
from inceptionzoo.convert import SOURCES  # noqa: E402

CONVERTED = {s.model for s in SOURCES.values()}  # BN networks: the torch peer has no twin

FAST = dict(run_seconds=0.05, repeats=2, latency_iters=5, log=lambda *a: None)


@pytest.mark.slow
def test_rows_have_measurements():
    rows = run(["inception_mnist"], ["imperative", "static", "mkldnn", "int8", "recommended",
                                     "train-hybrid"], [1, 4], **FAST)
    modes = ["imperative", "static", "mkldnn", "int8", "recommended", "train-hybrid"]
    # at each batch size the contenders one after another
    assert [(r["mode"], r["batch"]) for r in rows] == [(m, b) for b in (1, 4) for m in modes]
    net = get_model("inception_mnist")
    net.initialize()
    variants = TunedGraph.from_block(net, merge=True).graphs  # the Predictor's variants
    assert all((r["mode"] == "recommended") == (r.get("graph") in variants) for r in rows)
    for r in rows:
        assert "error" not in r, r
        assert r["images_per_sec"] > 0 and 0 < r["p50_ms"] and r["peak_rss_mb"] > 50
        base = "train-imperative" if r["mode"].startswith("train") else "imperative"
        ref = [b for b in rows if b["mode"] == base and b["batch"] == r["batch"]]
        if ref:  # speed-up against the same batch size's baseline mode, when it ran
            assert r["speedup"] == r["images_per_sec"] / ref[0]["images_per_sec"], r
        else:
            assert "speedup" not in r, r
    assert [r["mode"] for r in rows if "speedup" not in r] == ["train-hybrid"] * 2
    assert "train-hybrid" in table(rows)


def test_recommended_mode_runs_the_predictors_path_warmed_up():
    """The harness's recommended mode is the Predictor's TunedGraph, tuned before timing."""
    net = get_model("inception_mnist")
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(3, 1, 28, 28))
    graph = prepare_inference(net, RECOMMENDED_MODE, x)
    assert isinstance(graph, TunedGraph) and set(graph.choice) == {3}
    np.testing.assert_allclose(graph(x).asnumpy(), net(x).asnumpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_trials_run_fresh_workers_and_report_medians():
    rows = run(["inception_mnist"], ["static"], [1], trials=3, **FAST)
    r = rows[0]
    assert r["trials"] == 3 and len(r["p50_ms_trials"]) == 3
    assert r["p50_ms"] == sorted(r["p50_ms_trials"])[1]
    lo, hi = min(r["p50_ms_trials"]), max(r["p50_ms_trials"])
    assert f"| {r['p50_ms']:.3f} ({lo:.3f}..{hi:.3f}) |" in table(rows)
    with pytest.raises(ValueError, match="trials must be at least 1 .*; got 0"):
        run(["inception_mnist"], ["static"], [1], trials=0, **FAST)


@pytest.mark.parametrize("mode", ["hybrid", "static", "mkldnn"])
def test_modes_compute_the_same_function(mode):
    net = get_model("inception_mnist")
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(3, 1, 28, 28))
    ref = net(x).asnumpy()
    got = prepare_inference(net, mode, x)(x).asnumpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_gpu_is_probed_not_crashed():
    info = probe_gpu(0, timeout=120)
    rows = run(["inception_mnist"], ["static"], [1], ctx="gpu0", **FAST)
    if info["supported"]:  # a GPU that MXNet runs on: the row is a measurement
        assert mx.context.num_gpus() > 0 and info["reason"] == ""
        assert "error" not in rows[0] and rows[0]["images_per_sec"] > 0, rows
    else:  # none, or one MXNet 1.9.1 cannot use: a reason, and the row says unsupported
        assert info["reason"] and rows[0]["error"] == "unsupported: " + info["reason"]
        if mx.context.num_gpus() == 0:
            assert "gpu0" in info["reason"]


@pytest.mark.slow
def test_script_writes_json_and_plot(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "throughput.py")
    env = dict(os.environ, MXNET_STORAGE_FALLBACK_LOG_VERBOSE="0")
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- bench:x:begin -->\nold\n<!-- bench:x:end -->\nafter\n")
    p = subprocess.run([sys.executable, script, "--models", "inception_mnist", "--modes",
                        "imperative,hybrid", "--batch-sizes", "1,2", "--run-seconds", "0.05",
                        "--repeats", "2", "--latency-iters", "5", "--json",
                        str(tmp_path / "o.json"), "--plot", str(tmp_path / "o.png"),
                        "--doc", str(doc), "--doc-section", "x"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    text = doc.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert "| inception_mnist | cpu | hybrid | 2 |" in text
    assert "Measured with `benchmarks/throughput.py --models inception_mnist" in text
    assert "| inception_mnist | cpu | hybrid | 2 |" in p.stdout
    report = json.loads((tmp_path / "o.json").read_text())
    assert report["env"]["MXNET_STORAGE_FALLBACK_LOG_VERBOSE"] == "0"
    assert report["versions"]["mxnet"] == mx.__version__ and report["machine"]["cores"] >= 1
    assert len(report["results"]) == 4 and "MKLDNN" in report["mxnet_features"]
    assert (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_cli_bench_unknown_model():
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    p = subprocess.run([exe, "bench", "inception_mnst"], capture_output=True, text=True)
    assert p.returncode == 2 and "Did you mean 'inception_mnist'" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.slow
def test_cli_bench_help_is_the_harness_help():
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    p = subprocess.run([exe, "bench", "--help"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "--batch-sizes" in p.stdout and "--peer" in p.stdout and "onnxruntime" in p.stdout


@pytest.mark.slow
def test_importing_the_package_loads_no_benchmark_or_plotting_module():
    code = ("import inceptionzoo, inceptionzoo.cli, inceptionzoo.serving, sys; "
            "print(sorted(m for m in sys.modules if m.startswith('inceptionzoo')))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    mods = eval(p.stdout.strip().splitlines()[-1])
    assert "inceptionzoo.serving" in mods
    assert not [m for m in mods if "bench" in m or "peers" in m or "plot" in m], mods
    assert not os.path.exists(os.path.join(ROOT, "src", "inceptionzoo", "bench.py"))


def _torch_venv():
    from throughput import TORCH_PYTHON

    side_env_python(TORCH_PYTHON, "the PyTorch side environment (`make torch-env`)")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if n not in CONVERTED])
def test_torch_twin_is_the_same_function_and_never_imports_mxnet(name):
    """The PyTorch twin, built in the PyTorch venv from the files the MXNet side wrote, passes
    the harness's logits check (else its row would say refused)."""
    _torch_venv()
    rows = run([name], ["torch-eager"], [1], **FAST)
    assert "error" not in rows[0], rows[0]
    assert rows[0]["parity_max_diff"] <= 1e-4 * rows[0]["parity_scale"]
    assert rows[0]["mxnet_imported"] is False and rows[0]["torch"].startswith("2.")


@pytest.mark.slow
def test_peers_run_at_their_best_in_processes_without_mxnet():
    """Frozen torch.compile (PyTorch venv) and ONNX Runtime (main venv's python) are checked,
    then timed like the rest, and neither process imports MXNet; the serving graph runs."""
    _torch_venv()
    rows = run(["inception_mnist"], ["torch-compile-frozen", "onnxruntime", "serving"], [2],
               **FAST)
    for r in rows:
        assert "error" not in r and r["images_per_sec"] > 0 and r["p50_ms"] > 0, r
    assert rows[0]["mxnet_imported"] is False and rows[1]["mxnet_imported"] is False
    assert rows[1]["onnxruntime"] and rows[1]["parity_max_diff"] < 1e-4 * rows[1]["parity_scale"]
    assert rows[2]["runtime"] in ("mxnet", "onnxruntime")
    assert rows[1]["threads"] in (0, 1)  # ONNX Runtime's setting timed faster, as serving does


@pytest.mark.slow
def test_the_harness_refuses_a_peer_that_computes_another_function(tmp_path):
    """MXNet's check logits of another network with the same shapes: every peer is refused
    before it is timed, naming the difference."""
    import throughput

    _torch_venv()
    files = throughput._prepared("inception_mnist", str(tmp_path / "a"))
    other = throughput._prepared("inception_naive_mnist", str(tmp_path / "b"))
    files["check_logits"] = other["check_logits"]  # what a wrong peer would be compared with
    for mode in ("onnxruntime", "torch-eager"):
        spec = dict(model="inception_mnist", ctx="cpu", mode=mode, batch=2, run_seconds=0.05,
                    repeats=1, latency_iters=1, **files)
        res = throughput._run_worker(spec, 600)
        assert "images_per_sec" not in res, res
        assert res["error"].startswith(f"refused: {mode} computes another function than "
                                       "MXNet's inception_mnist (max |logit difference|"), res


@pytest.mark.slow
def test_onnxruntime_profile_times_each_node_of_the_export():
    """benchmarks/ort_profile.py: kernel time per node per call, warm-up runs left out."""
    from throughput import _ort_worker

    nodes = _ort_worker({"model": "inception_mnist", "batch": 2, "profile": 3})["nodes"]
    ops = [n["op"] for n in nodes]
    assert ops.count("Conv") >= 19 and "Gemm" in ops and "Concat" in ops, ops
    convs = [n["ms"] for n in nodes if n["op"] == "Conv"]
    assert all(ms > 0 for ms in convs) and all(n["ms"] >= 0 for n in nodes)


def test_gluoncv_imports_beside_torch():
    pytest.importorskip("torch")
    from inceptionzoo._gluoncv import import_gluoncv

    assert "googlenet" in import_gluoncv().model_zoo.get_model_list()
    import torch  # still importable afterwards

    assert torch.__version__


@pytest.mark.slow
def test_imagenet_benchmark_script_runs(tmp_path):
    """benchmarks/imagenet_inception.py on GoogLeNet with a tiny iteration count: every
    contender measured after its logits check (the numbers are for an idle machine)."""
    _torch_venv()
    script = os.path.join(ROOT, "benchmarks", "imagenet_inception.py")
    p = subprocess.run([sys.executable, script, "--networks", "googlenet", "--batch-sizes", "1",
                        "--run-seconds", "0.01", "--repeats", "1", "--latency-iters", "1",
                        "--modes", "recommended,serving,gluoncv-static,onnxruntime,torch-eager",
                        "--json", str(tmp_path / "rows.json")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["mode"] for r in rows] == ["recommended", "serving", "gluoncv-static",
                                         "onnxruntime", "torch-eager"]
    assert all(r["images_per_sec"] > 0 and r["model"] == "googlenet" for r in rows)
    peers = rows[2:]
    assert all(r["parity_max_diff"] <= 1e-4 * r["parity_scale"] for r in peers)
    assert rows[3]["mxnet_imported"] is False and rows[4]["mxnet_imported"] is False


def test_timing_loop_reports_median_min_max_and_latency_percentiles(monkeypatch):
    """_timing.time_calls on a fake clock whose calls take known times: warm-up calls of 0.25 s,
    five latency calls of 1, 2, 4, 8, 16 ms (2**-10 s units), then runs of 10 calls of 1, 2
    and 4 units each (run_seconds = 10 x the median call)."""
    import types

    import _timing

    unit = 2.0 ** -10
    batch = 4
    schedule = ([0.25] * 5 + [unit * d for d in (8, 1, 16, 4, 2)]
                + [unit * d for d in (2, 1, 4) for _ in range(10)])
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(_timing, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))

    def call():
        clock.now += schedule.pop(0)
        return clock.now

    got = _timing.time_calls(call, batch, run_seconds=10 * 4 * unit, repeats=3,
                             latency_iters=5, sync=lambda out, all_=False: None)
    assert schedule == []  # as many calls as the loop promises, no more
    rates = [batch / (unit * d) for d in (2, 1, 4)]
    assert got == pytest.approx({
        "images_per_sec": sorted(rates)[1], "images_per_sec_min": min(rates),
        "images_per_sec_max": max(rates), "p50_ms": 4 * unit * 1e3, "p90_ms": 8 * unit * 1e3,
        "calls_per_repeat": 10})


# --- issue #19: arguments and outputs are checked before any worker starts ---------------------

def _bad_args(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    doc = tmp_path / "doc.md"
    doc.write_text("no markers here\n")
    return [
        (["--json", str(blocker / "out.json")], f"--json {blocker / 'out.json'}: cannot create "
         "the output folder"),
        (["--json", str(tmp_path)], f"--json {tmp_path}: a folder; expected a file path"),
        (["--plot", str(blocker / "p.png")], f"--plot {blocker / 'p.png'}: cannot create"),
        (["--doc", str(doc)], f"--doc {doc} has no section <!-- bench:results:begin -->"),
        (["--doc", str(tmp_path / "missing.md")], f"--doc {tmp_path / 'missing.md'}: cannot "
         "read it"),
        (["--batch-sizes", "0"], "--batch-sizes must be comma-separated integers >= 1; got '0'"),
        (["--batch-sizes", "-4"], "--batch-sizes must be comma-separated integers >= 1"),
        (["--batch-sizes", "1.5"], "--batch-sizes must be comma-separated integers >= 1"),
        (["--batch-sizes", ""], "--batch-sizes must be comma-separated integers >= 1"),
        (["--modes", "bogus"], "--modes: unknown mode(s) 'bogus'; expected some of imperative"),
        (["--modes", "static,"], "--modes: unknown mode(s) ''"),
        (["--run-seconds", "-1"], "--run-seconds must be a finite number > 0; got -1.0"),
        (["--run-seconds", "nan"], "--run-seconds must be a finite number > 0; got nan"),
        (["--run-seconds", "0"], "--run-seconds must be a finite number > 0; got 0.0"),
        (["--trials", "0"], "--trials must be an integer >= 1; got 0"),
        (["--repeats", "0"], "--repeats must be an integer >= 1; got 0"),
        (["--latency-iters", "-3"], "--latency-iters must be an integer >= 1; got -3"),
        (["--ctx", "tpu"], "--ctx must be cpu or gpuN; got 'tpu'"),
    ]


def test_bad_arguments_are_refused_before_any_worker(tmp_path, monkeypatch, capsys):
    """On main a --json under a file ran every configuration and then crashed; --batch-sizes
    0, --modes bogus, --run-seconds -1 started workers."""
    import throughput

    def no_run(*a, **k):
        raise AssertionError("a benchmark ran")

    monkeypatch.setattr(throughput, "run", no_run)
    for flags, words in _bad_args(tmp_path):
        code = throughput.main(["--models", "inception_mnist"] + flags, prog="bench")
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, (flags, err)
        assert err.startswith("bench: error: ") and words in err, (flags, err)


def test_cli_bench_output_under_a_file_fails_first(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    (tmp_path / "file").write_text("x")
    p = subprocess.run([exe, "bench", "--modes", "static", "--batch-sizes", "1", "--json",
                        str(tmp_path / "file" / "o.json")], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "cannot create the output folder" in p.stderr and "b1:" not in p.stderr


@pytest.mark.slow
def test_onednn_profile_reads_the_bundled_onednn_version_and_primitives():
    """benchmarks/onednn_profile.py runs a network under DNNL_VERBOSE in a fresh process: the
    version oneDNN reports, and the convolutions of a call, are read from its output."""
    from onednn_profile import profile

    res = profile("inception_mnist", 1, "recommended", iters=2)
    assert res["onednn"].startswith("v2."), res["onednn"]  # MXNet 1.9.1 bundles oneDNN 2.x
    convs = {k: n for k, n in res["calls"].items() if k[0] == "convolution"}
    assert convs and all(ms > 0 for k, ms in res["per"].items() if k in convs)


def test_profile_table_names_each_side_s_onednn():
    from imagenet_profile import table as profile_table

    mx_facts = {"fused sum": 0, "fused activation": 3, "threads": 2, "graph": "ops",
                "onednn": "v2.4.4", "conv impls": ["brgconv:avx512_core"]}
    pt_facts = {"threads": 2, "torch": "2.x", "onednn": "v3.12.0", "top": []}
    text = profile_table("inception_v3", 1, {"convolution": (3, 9.0)}, mx_facts,
                         {"convolution": (3, 4.5)}, pt_facts)
    assert "- oneDNN: MXNet's bundled v2.4.4 (convolutions: brgconv:avx512_core), PyTorch's " \
           "v3.12.0" in text
    assert "| convolution | 3 | 9.00 | 3 | 4.50 |" in text and "**9.00**" in text


@pytest.mark.slow
def test_bfloat16_probe_times_three_contenders_and_measures_the_drift():
    from bfloat16_probe import probe

    res = probe("inception_mnist", 2, budget=0.2)
    assert set(res["ms"]) == {"recommended float32", "hybridized float32",
                              "hybridized bfloat16 (AMP)"}
    assert all(ms > 0 for ms in res["ms"].values())
    # bfloat16 moves the logits (8-bit mantissa) but not by more than a few percent
    assert 0 < res["bf16_max_diff_of_scale"] < 0.05


@pytest.mark.slow
def test_race_stability_serves_the_order_in_turns_and_rates_auto_against_peers(capsys):
    """benchmarks/race_stability.py: the three contenders' fresh processes serve each step of
    the order in turns; the table has three rows per load, the ONNX Runtime peer never
    imports MXNet (its worker asserts it), and the worst ratio is printed."""
    import race_stability

    assert race_stability.main(["--loads", "1", "--order", "1,2,1", "--seconds", "0.1",
                                "--slices", "2", "--twin", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [ln for ln in out if ln.startswith("| ")]
    assert rows[0].startswith("| load | contender | b1 (step 1) | b2 (step 2) | b1 (step 3)")
    assert rows[1].startswith("| 1 | auto | ") and rows[1].count("x |") == 3
    assert [r.split(" |")[1] for r in rows[2:]] == [" mxnet alone", " onnxruntime alone",
                                                    " onnxruntime twin"]
    raw = json.loads(out[-1])
    assert all(len(load[c]["slices"]) == 3 and all(len(s) == 2 for s in load[c]["slices"])
               and min(load[c]["rates"]) > 0 for load in raw for c in load)
    assert set(raw[0]["auto"]["choice"].values()) <= {"mxnet", "onnxruntime"}
    assert "worst auto / better peer of the same load over 1 loads" in out[-4]
    assert out[-3].startswith("worst slower / faster of the two identical ONNX Runtime")
    assert out[-2].startswith("worst slice / its step's median: auto ")


def test_race_stability_table_rates_auto_against_the_better_peer_of_the_same_load():
    from race_stability import slice_spread, table

    loads = [{"auto": {"rates": [100.0, 50.0], "choice": {"1": "mxnet", "4": "onnxruntime"}},
              "mxnet": {"rates": [200.0, 10.0]}, "onnxruntime": {"rates": [80.0, 100.0]}},
             {"auto": {"rates": [90.0, 90.0], "choice": {"1": "mxnet", "4": "mxnet"}},
              "mxnet": {"rates": [90.0, 90.0]}, "onnxruntime": {"rates": [10.0, 10.0]}}]
    text, worst = table([1, 4], loads)
    assert "| 1 | auto | 100 mxnet 0.50x | 50.0 onnxruntime 0.50x |" in text
    assert "| 1 | mxnet alone | 200 | 10.0 |"  # a decimal below 100 in text
    assert "| 2 | auto | 90.0 mxnet 1.00x | 90.0 mxnet 1.00x |" in text
    assert worst == pytest.approx(0.5)
    spread = slice_spread([{c: {"slices": [[1.0, 2.0, 4.0]]} for c in ("auto", "mxnet",
                                                                         "onnxruntime")}])
    assert spread == {"auto": 0.5, "mxnet": 0.5, "onnxruntime": 0.5}
    loads[0]["onnxruntime twin"] = {"rates": [100.0, 80.0]}  # --twin: rated against its twin
    text, _ = table([1, 4], loads[:1])
    assert "| 1 | onnxruntime twin | 100 0.80x | 80.0 0.80x |" in text


def test_core_latency_alternates_the_round_trip_with_both_sessions(capsys):
    """benchmarks/core_latency.py: the C round trip compiles and runs on two pinned threads,
    each window gives a round trip and both sessions' images/s, in a process without MXNet
    (its worker asserts it), and the windows are split at the median round trip."""
    import core_latency

    assert core_latency.main(["--windows", "4", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out.splitlines()
    windows = [[float(v) for v in ln.split()] for ln in out[:4]]
    assert all(len(w) == 3 and min(w) > 0 for w in windows)
    rows = [ln for ln in out if ln.startswith("| near") or ln.startswith("| far")]
    assert [r.split(" (")[0] for r in rows] == ["| near", "| far"]
    assert sum(int(r.split("|")[2]) for r in rows) == 4


def test_core_latency_report_splits_the_windows_at_the_round_trip_given():
    from core_latency import report

    rows = [(80.0, 14000.0, 7000.0), (90.0, 12000.0, 7000.0), (350.0, 7000.0, 7000.0)]
    text = report(rows, split_ns=200)
    assert "| near (< 200 ns) | 2 | 85 | 13,000 | 7,000 | 1.86x |" in text
    assert "| far (>= 200 ns) | 1 | 350 | 7,000 | 7,000 | 1.00x |" in text
    assert "| far (>= 400 ns) | 0 | - | - | - | - |" in report(rows, split_ns=400)


def test_serving_overhead_times_each_layer_of_the_call_against_the_session(capsys):
    """benchmarks/serving_overhead.py: one row per layer and batch size, the session first
    (ratio 1), every layer timed."""
    import serving_overhead

    assert serving_overhead.main(["--batch-sizes", "1,2", "--rounds", "1",
                                  "--after-switch", "3"]) == 0
    out = capsys.readouterr().out.split("\n\n")
    switch = [ln.split(" | ") for ln in out[1].splitlines()[2:]]
    assert [(r[0], r[1]) for r in switch] == [(f"| {b}", w) for b in (1, 2) for w in (
        "onnxruntime after mxnet", "mxnet after onnxruntime")]
    assert all(len(r[2].split()) == 6 and float(r[3].rstrip(" |")) > 0 for r in switch)
    rows = [ln.split(" | ") for ln in out[0].splitlines()[2:]]
    assert [(r[0], r[1]) for r in rows] == [
        (f"| {b}", name) for b in (1, 2) for name in (
            "session.run", "graph.run (no input check)", "graph(x) without re-check",
            "graph(x)")]
    assert all(float(r[2].replace(",", "")) > 0 for r in rows)
    assert [r[3] for r in rows if r[1] == "session.run"] == ["1.000 |", "1.000 |"]


@pytest.mark.slow
def test_precision_benchmark_times_each_precision_in_each_runtime(tmp_path, mnist_dir):
    """benchmarks/precision.py: float32 and INT8 in MXNet and in ONNX Runtime (its own worker,
    no MXNet), each row rated against the best float32 runtime (one of which is 1.0)."""
    import precision

    out = tmp_path / "rows.json"
    assert precision.main(["--networks", "inception_mnist", "--batches", "2", "--precisions",
                           "fp32,int8", "--seconds", "0.1", "--rounds", "1", "--mnist",
                           mnist_dir, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert {(r["precision"], r["runtime"]) for r in rows} == {
        ("fp32", "mxnet"), ("fp32", "onnxruntime"), ("int8", "mxnet"), ("int8", "onnxruntime")}
    assert all(r["images_per_sec"] > 0 and r["batch"] == 2 for r in rows)
    assert max(r["ratio_to_best_fp32"] for r in rows if r["precision"] == "fp32") == 1.0


@pytest.mark.slow
def test_precision_guard_trains_exports_and_reports_each_guarded_graph(tmp_path, mnist_dir):
    """benchmarks/precision_guard.py, tiny: a network trained on digit folders at its smallest
    input, exported at int8 (MXNet and ONNX Runtime) and bf16, one guard row for each."""
    import precision_guard

    out = tmp_path / "rows.json"
    assert precision_guard.main(["--mnist-dir", mnist_dir, "--networks", "googlenet_bn",
                                 "--train-per-class", "10", "--test-per-class", "3",
                                 "--calib-per-class", "2", "--epochs", "1",
                                 "--max-accuracy-drop", "100", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["graph"] for r in rows] == ["int8 (MXNet)", "int8 (ONNX Runtime)", "bf16 (MXNet)"]
    assert all(r["holdout"] == 30 and r["input"] == 31 and 0 <= r["agreement"] <= 1
               for r in rows)


def test_calling_thread_team_times_the_graph_around_one_reorder_in_both_settings(capsys):
    """benchmarks/calling_thread_team.py: one row per setting of the calling thread's OpenMP
    threads, thread counts and times before and after; the package's setting starts no
    thread, two threads on the calling thread do (on two cores or more)."""
    import calling_thread_team
    from inceptionzoo import _openmp

    assert calling_thread_team.main(["--batch-sizes", "1"]) == 0
    rows = [ln.split(" | ") for ln in capsys.readouterr().out.splitlines()[2:]]
    assert [r[0] for r in rows] == ["| 1 (the package's)", "| 2 (before)"]
    counts = [tuple(int(v) for v in r[1].split(" / ")) for r in rows]
    assert counts[0][0] == counts[0][1]
    if _openmp.physical_cores() >= 2:
        assert counts[1][1] > counts[1][0]
    assert all(float(v.rstrip(" |")) > 0 for r in rows for v in r[2:])
