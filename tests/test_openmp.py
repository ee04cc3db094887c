"""MXNet's OpenMP threads: importing inceptionzoo first gives MXNet one thread per physical core
(MXNet 1.9.1 alone takes half the logical CPUs on x86: one of two cores here, half speed)."""
import json
import os
import subprocess
import sys

import pytest

from inceptionzoo import InceptionZooError, _openmp

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")
BENCH = os.path.join(HERE, "..", "benchmarks")
EXE = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")


def _child_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in _openmp.THREAD_VARIABLES + (_openmp.CHOSEN_VARIABLE,
                                                   _openmp.COPY_VARIABLE)}
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


def test_mxnet_loaded_first_keeps_its_environment_and_a_users_setting():
    out = _run("import mxnet, inceptionzoo, os; "
               "print(os.environ.get('MXNET_OMP_MAX_THREADS'))")
    assert out == ["None"]
    env = {"MXNET_OMP_MAX_THREADS": "1"}  # a user's value, accepted by the MXNet loaded first
    assert _openmp.set_default_threads(env, modules={"mxnet": object()}, cores=4) is None
    assert env == {"MXNET_OMP_MAX_THREADS": "1"}
    env = {}
    assert _openmp.set_default_threads(env, modules={}, cores=4) == 4
    assert env == {"MXNET_OMP_MAX_THREADS": "4", _openmp.CHOSEN_VARIABLE: "4"}


COPY = """
import os, sys
import mxnet as mx, numpy as np
import inceptionzoo
(mx.nd.ones((1, 8)) * 2).wait_to_read()  # the engine's threads exist
before = len(os.listdir("/proc/self/task"))
big = mx.nd.array(np.zeros((256, 1, 28, 28), np.float32))  # 200,704 elements
big.asnumpy()
print(before, len(os.listdir("/proc/self/task")), os.environ.get("MXNET_CPU_PARALLEL_SIZE"))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_large_copies_start_no_second_openmp_team_in_either_import_order():
    """MXNet copies an array of 200,000 elements or more with an OpenMP loop on the calling
    thread: a second thread team beside the engine's, after which every operator paid thread
    wake-ups (a batch of 1 ran 6.5x slower). With inceptionzoo imported, even after mxnet, a
    copy of one MNIST batch of 256 starts no thread; a user's setting is kept."""
    before, after, value = _run(COPY)
    assert after == before and value == _openmp.SERIAL_COPY_SIZE
    # the user's setting: MXNet's own parallel copy, on a calling thread of one OpenMP thread
    # (serial_calling_thread); given two again, that copy starts the calling thread's team
    before, after, value = _run(COPY, MXNET_CPU_PARALLEL_SIZE="1000")
    assert value == "1000" and after == before
    before, after, value = _run(COPY.replace("import inceptionzoo", "import inceptionzoo; "
                                             "mx.base._LIB.MXSetNumOMPThreads(2)"),
                                MXNET_CPU_PARALLEL_SIZE="1000")
    if _openmp.physical_cores() >= 2:
        assert int(after) > int(before)
    env = {"MXNET_CPU_PARALLEL_SIZE": "5"}
    assert not _openmp.set_serial_copies(env) and env == {"MXNET_CPU_PARALLEL_SIZE": "5"}


REORDER = """
import os, sys
import mxnet as mx
import inceptionzoo
exec(sys.argv[1])  # what the test changes after the import
x, w = mx.nd.ones((1, 8, 28, 28)), mx.nd.ones((8, 8, 3, 3))
y = mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=8, no_bias=True)  # in oneDNN's layout
y.wait_to_read()  # on the engine's threads, which now exist
before = len(os.listdir("/proc/self/task"))
y.asnumpy()  # its reorder, on this thread
print(before, len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
@pytest.mark.parametrize("order", ["mxnet first", "inceptionzoo first"])
def test_reading_a_onednn_array_on_the_users_thread_starts_no_second_openmp_team(order):
    """``asnumpy()`` of a convolution's output reorders oneDNN's layout on the calling thread
    with an OpenMP loop: a second thread team beside the engine's, after which the MNIST
    network's batch 1 took 2.5 ms instead of 0.5. The package gives the importing thread one
    OpenMP thread (not under the NaiveEngine, which runs every operator there)."""
    code = REORDER if order == "mxnet first" else REORDER.replace(
        "import mxnet as mx\nimport inceptionzoo", "import inceptionzoo\nimport mxnet as mx")
    run = subprocess.run([sys.executable, "-c", code, "pass"], capture_output=True, text=True,
                         env=_child_env(), timeout=300)
    before, after = run.stdout.split()
    assert after == before, run.stderr[-2000:]
    if _openmp.physical_cores() >= 2:  # two OpenMP threads on the calling thread, as before
        run = subprocess.run([sys.executable, "-c", code, "mx.base._LIB.MXSetNumOMPThreads(2)"],
                             capture_output=True, text=True, env=_child_env(), timeout=300)
        before, after = run.stdout.split()
        assert int(after) > int(before), run.stderr[-2000:]


def test_the_naive_engine_keeps_the_calling_threads_openmp_count():
    class FakeLib:
        calls = []

        def MXSetNumOMPThreads(self, n):
            self.calls.append(n.value)

    class FakeMx:
        class base:
            _LIB = FakeLib()

    assert not _openmp.serial_calling_thread(FakeMx, {"MXNET_ENGINE_TYPE": "NaiveEngine"})
    assert FakeLib.calls == []
    assert _openmp.serial_calling_thread(FakeMx, {"MXNET_ENGINE_TYPE": "ThreadedEnginePerDevice"})
    assert FakeLib.calls == [1]


def test_a_child_process_chooses_its_own_count_and_keeps_its_users():
    """A child of a process that imported inceptionzoo inherited its MXNET_OMP_MAX_THREADS as
    if the user had set it (launch then gave local workers no share of the cores), and it
    overrode a user's OMP_NUM_THREADS given to the child (MXNet reads MXNET_OMP_MAX_THREADS
    first)."""
    inherited = {"MXNET_OMP_MAX_THREADS": "8", _openmp.CHOSEN_VARIABLE: "8"}
    assert _openmp.chosen_by_package(inherited) and _openmp.user_thread_variables(inherited) == {}
    env = dict(inherited)
    assert _openmp.set_default_threads(env, modules={}, cores=2) == 2
    assert env == {"MXNET_OMP_MAX_THREADS": "2", _openmp.CHOSEN_VARIABLE: "2"}
    env = dict(inherited, OMP_NUM_THREADS="1")
    assert _openmp.set_default_threads(env, modules={}, cores=2) is None
    assert env == {"OMP_NUM_THREADS": "1"}
    env = {"MXNET_OMP_MAX_THREADS": "3", _openmp.CHOSEN_VARIABLE: "8"}  # the user changed it
    assert _openmp.set_default_threads(env, modules={}, cores=2) is None
    assert _openmp.user_thread_variables(env) == {"MXNET_OMP_MAX_THREADS": "3"}
    # end to end: a child of a process that imported the package, with the user's variable
    code = ("import inceptionzoo, os, subprocess, sys; sys.exit(subprocess.call([sys.executable, "
            "'-c', sys.argv[1]], env=dict(os.environ, OMP_NUM_THREADS='1')))")
    out = subprocess.run([sys.executable, "-c", code, SHOW], capture_output=True, text=True,
                         env=_child_env(), check=True).stdout.split()
    assert out == ["None", "1"]


#: a fresh process: import in ORDER, run one convolution, print MXNet's thread limit and the
#: process's thread count (the OpenMP pool adds one thread per extra core)
CONVOLVE = """import os, sys
if sys.argv[1] == "mxnet-first":
    import mxnet as mx
    import inceptionzoo
else:
    import inceptionzoo
    import mxnet as mx
from inceptionzoo import _openmp
x = mx.nd.ones((4, 16, 32, 32))
w = mx.nd.ones((16, 16, 3, 3))
mx.nd.Convolution(x, w, no_bias=True, kernel=(3, 3), num_filter=16).wait_to_read()
print(_openmp.loaded_threads(mx)[0].value, len(os.listdir("/proc/self/task")))
"""


def _convolve(order):
    return subprocess.run([sys.executable, "-c", CONVOLVE, order], capture_output=True,
                          text=True, env=_child_env(), check=True).stdout.split()


def test_importing_mxnet_first_still_gives_one_thread_per_physical_core():
    """``import mxnet; import inceptionzoo`` left MXNet on half the logical CPUs (one of two
    cores here): MXSetNumOMPThreads only sets the calling thread, so the package raises the
    limit MXNet fixed at load; its operators then run as many OpenMP threads as in the
    recommended order (same thread count after a convolution)."""
    first = _convolve("mxnet-first")
    assert first == _convolve("inceptionzoo-first")
    assert first[0] == str(_openmp.physical_cores())


class _OtherMXNet:
    __version__ = "1.8.0"


def test_an_mxnet_it_cannot_adjust_gets_a_warning_naming_the_variable():
    with pytest.warns(RuntimeWarning, match=r"MXNet was imported before inceptionzoo and its "
                      r"operator threads could not be raised to the 4 cores \(MXNet 1.8.0 is "
                      r"not 1.9.1\): set MXNET_OMP_MAX_THREADS=4"):
        assert _openmp.set_default_threads({}, modules={"mxnet": _OtherMXNet()}, cores=4) is None


@pytest.mark.parametrize("var,value", [
    ("OMP_NUM_THREADS", "abc"), ("OMP_NUM_THREADS", "2.5"), ("OMP_NUM_THREADS", "0"),
    ("OMP_NUM_THREADS", "-1"), ("OMP_NUM_THREADS", "4,2"), ("OMP_NUM_THREADS", ""),
    ("OMP_NUM_THREADS", "99999"), ("MXNET_OMP_MAX_THREADS", "abc"),
    ("MXNET_OMP_MAX_THREADS", "0"),
])
def test_a_bad_thread_variable_is_one_line_from_the_cli(var, value):
    """MXNet 1.9.1 aborted (SIGABRT) in its import on these, or libgomp ignored them."""
    run = subprocess.run([EXE, "--help"], capture_output=True, text=True,
                         env=_child_env(**{var: value}))
    assert run.returncode == 2, run.stderr
    assert run.stderr == (f"inceptionzoo: error: {var}={value!r}: expected a whole number of "
                          f"threads in 1..4096, e.g. {var}={_openmp.physical_cores()} (MXNet "
                          "1.9.1 reads it as one integer: no list such as 4,2, no fraction, "
                          "no 0)\n")
    run = subprocess.run([EXE, "train", "--help"], capture_output=True, text=True,
                         env=_child_env(**{var: value}))
    assert run.returncode == 2 and run.stderr.startswith("inceptionzoo train: error: "), run


def test_a_bad_thread_variable_refuses_the_import_not_aborts():
    run = subprocess.run([sys.executable, "-c", "import inceptionzoo"], capture_output=True,
                         text=True, env=_child_env(OMP_NUM_THREADS="abc"))
    assert run.returncode == 1, run.stderr
    assert run.stderr.splitlines()[-1].startswith(
        "inceptionzoo.errors.InceptionZooError: OMP_NUM_THREADS='abc': expected a whole number")
    assert "terminate called" not in run.stderr


def test_thread_variables_mxnet_reads_pass_and_an_mxnet_loaded_first_is_not_second_guessed():
    for value in ("1", "2", " 2", "2 ", "+2", "02", "4096"):
        _openmp.check_thread_variables({"OMP_NUM_THREADS": value,
                                        "MXNET_OMP_MAX_THREADS": value})
    with pytest.raises(InceptionZooError, match=r"MXNET_OMP_MAX_THREADS='1e1': expected"):
        _openmp.check_thread_variables({"MXNET_OMP_MAX_THREADS": "1e1"})
    # MXNet loaded first already took (or aborted on) the value: left alone
    assert _openmp.set_default_threads({"OMP_NUM_THREADS": "abc"},
                                       modules={"mxnet": object()}) is None


def test_the_cli_is_recognised_by_its_script_or_module():
    assert _openmp._cli_command(["/venv/bin/inceptionzoo", "train", "x"], []) == \
        "inceptionzoo train"
    assert _openmp._cli_command(["/venv/bin/inceptionzoo", "--help"], []) == "inceptionzoo"
    assert _openmp._cli_command(["-m"], ["python", "-m", "inceptionzoo.cli", "list"]) == \
        "inceptionzoo list"
    assert _openmp._cli_command(["script.py"], ["python", "script.py"]) is None
    assert _openmp._cli_command(["-m"], ["python", "-m", "pytest"]) is None


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


def test_the_package_counts_cores_in_one_place(monkeypatch, tmp_path):
    """physical_cores (affinity mask + sysfs) is the one core count: the decoding threads, ONNX
    Runtime's thread race (tests/test_runtimes.py) and the launcher's shares use it."""
    import glob

    import numpy as np
    from _sample_data import write_image_folder

    from inceptionzoo import model_info
    from inceptionzoo.datasets import FolderSource
    from inceptionzoo.launch import local_threads

    users = sorted(os.path.basename(path) for path in
                   glob.glob(os.path.join(SRC, "inceptionzoo", "**", "*.py"), recursive=True)
                   if "cpu_count" in open(path).read())
    assert users == ["_openmp.py"]
    root = write_image_folder(str(tmp_path / "images"), np.zeros((2, 28, 28), np.uint8),
                              np.array([0, 1]))
    for cores, threads in ((3, 3), (64, 4)):  # at most 4 decoding threads
        monkeypatch.setattr(_openmp, "physical_cores", lambda: cores)
        assert FolderSource(root, model_info("inception_mnist")).threads == threads
        assert local_threads("worker", 1, environ={}) == {"MXNET_OMP_MAX_THREADS": cores}


@pytest.mark.slow
def test_the_import_order_benchmark_runs_both_orders_on_every_core(mnist_dir):
    """Both orders get every core, for the recommended path and for `inceptionzoo train`
    (run in the same process, after that order's imports)."""
    out = subprocess.run([sys.executable, os.path.join(BENCH, "import_order.py"),
                          "--batch-sizes", "2", "--seconds", "0.05", "--rounds", "1",
                          "--mnist-dir", mnist_dir, "--train-images", "200"],
                         capture_output=True, text=True, env=_child_env(), check=True).stdout
    lines = out.splitlines()
    assert lines[1].split()[-2:] == ["b2", "train"], out
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    cores = str(_openmp.physical_cores())
    assert {k: v[0] for k, v in rows.items()} == {"inceptionzoo-first": cores,
                                                  "mxnet-first": cores}, out
    assert all(float(v[-1].replace(",", "")) > 0 for v in rows.values()), out
