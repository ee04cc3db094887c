"""MXNet's OpenMP threads: importing inceptionzoo first gives MXNet one thread per physical core
(MXNet 1.9.1 alone takes half the logical CPUs on x86: one of two cores here, half speed)."""
import json
import os
import subprocess
import sys

import pytest

from inceptionzoo import _openmp
from inceptionzoo.train import train

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")
BENCH = os.path.join(HERE, "..", "benchmarks")


def _child_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _openmp.THREAD_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([SRC, BENCH])
    env.update(extra)
    return env


def _run(code, **extra):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_child_env(**extra), check=True).stdout.split()


SHOW = ("import inceptionzoo, os; print(os.environ.get('MXNET_OMP_MAX_THREADS'), "
        "os.environ.get('OMP_NUM_THREADS'))")


def test_importing_the_package_sets_one_thread_per_physical_core():
    assert _run(SHOW) == [str(_openmp.physical_cores()), "None"]


@pytest.mark.parametrize("var,value,expected", [
    ("OMP_NUM_THREADS", "1", ["None", "1"]),
    ("MXNET_OMP_MAX_THREADS", "3", ["3", "None"]),
])
def test_a_users_thread_setting_is_kept(var, value, expected):
    assert _run(SHOW, **{var: value}) == expected


def test_mxnet_loaded_first_is_left_alone():
    out = _run("import mxnet, inceptionzoo, os; "
               "print(os.environ.get('MXNET_OMP_MAX_THREADS'))")
    assert out == ["None"]
    env = {}
    assert _openmp.set_default_threads(env, modules={"mxnet": object()}, cores=4) is None
    assert env == {}
    assert _openmp.set_default_threads(env, modules={}, cores=4) == 4
    assert env == {"MXNET_OMP_MAX_THREADS": "4"}


def _fake_sysfs(root, cores):
    for cpu, (package, core) in enumerate(cores):
        topology = root / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")
    return str(root)


def test_physical_cores_counts_hyper_threads_once(tmp_path):
    # 2 packages x 2 cores x 2 hyper-threads
    sysfs = _fake_sysfs(tmp_path / "ht", [(p, c) for _ in range(2) for p in (0, 1)
                                          for c in (0, 1)])
    assert _openmp.physical_cores(range(8), sysfs) == 4
    assert _openmp.physical_cores([0, 4], sysfs) == 1  # two threads of one core
    # no hyper-threading: every CPU is a core
    assert _openmp.physical_cores(range(2), _fake_sysfs(tmp_path / "plain",
                                                        [(0, 0), (0, 1)])) == 2
    # no topology to read: every CPU counts
    assert _openmp.physical_cores(range(3), str(tmp_path / "missing")) == 3


def test_threads_note_only_when_mxnet_came_first_and_cores_idle(monkeypatch):
    monkeypatch.setattr(_openmp, "_usable_cpus", lambda: [0, 1])
    monkeypatch.setattr(_openmp.platform, "machine", lambda: "x86_64")
    note = _openmp.threads_note(environ={}, modules_before=True, cores=2)
    assert "runs 1 OpenMP thread(s) on 2 cores" in note and "MXNET_OMP_MAX_THREADS=2" in note
    assert _openmp.threads_note(environ={}, modules_before=False, cores=2) is None
    assert _openmp.threads_note(environ={"OMP_NUM_THREADS": "1"}, modules_before=True,
                                cores=2) is None
    assert _openmp.threads_note(environ={}, modules_before=True, cores=1) is None  # HT pair


def test_training_says_when_mxnet_leaves_cores_idle(monkeypatch, mnist_dir, tmp_path):
    from _sample_data import write_mnist_subset

    data = write_mnist_subset(str(tmp_path / "mnist"), mnist_dir, 100, 100)
    for var in _openmp.THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_openmp, "MXNET_LOADED_FIRST", True)
    monkeypatch.setattr(_openmp, "_usable_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(_openmp, "physical_cores", lambda: 4)
    monkeypatch.setattr(_openmp.platform, "machine", lambda: "x86_64")
    lines = []
    train(data_dir=data, recipe="seed", epochs=1, progress=False, log=lines.append)
    assert any("MXNET_OMP_MAX_THREADS=4" in line for line in lines), lines


def test_the_benchmarks_training_step_runs_with_the_librarys_threads():
    """benchmarks/throughput.py's worker imports inceptionzoo before MXNet: ``train-hybrid``
    times the step with the threads a user of the library gets."""
    spec = {"model": "inception_mnist", "ctx": "cpu", "batch": 2, "mode": "train-hybrid",
            "run_seconds": 0.05, "repeats": 1, "latency_iters": 1}
    out = subprocess.run([sys.executable, os.path.join(BENCH, "throughput.py"), "--worker",
                          json.dumps(spec)], capture_output=True, text=True,
                         env=_child_env(MXNET_STORAGE_FALLBACK_LOG_VERBOSE="0"), check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["mxnet_omp_threads"] == str(_openmp.physical_cores())


def test_every_benchmark_imports_inceptionzoo_before_mxnet():
    """A benchmark that loads MXNet first runs it on MXNet's own guess (half the logical CPUs
    on x86): every MXNet contender must import inceptionzoo first (line order in each file)."""
    import glob
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    late = []
    for path in sorted(glob.glob(os.path.join(root, "benchmarks", "*.py"))):
        lines = open(path).read().splitlines()
        first = {name: next((i for i, line in enumerate(lines)
                             if re.match(rf"\s*(import|from) {name}\b", line)), None)
                 for name in ("mxnet", "inceptionzoo")}
        if first["mxnet"] is not None and (first["inceptionzoo"] is None
                                           or first["inceptionzoo"] > first["mxnet"]):
            late.append(os.path.basename(path))
    assert late == [], f"import inceptionzoo before mxnet in {late}"
