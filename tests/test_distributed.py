"""Training on MXNet's parameter server, started by `inceptionzoo launch` on this machine
(loopback, free ports): one scheduler, one server, two workers."""
import os
import re
import signal
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import inceptionzoo.process_guard as process_guard
from inceptionzoo import _openmp
from inceptionzoo.launch import launch, node_env, read_hostfile, ssh_commands
from inceptionzoo.train import train
from test_launch import ssh_launch_args, sshd  # noqa: F401 - sshd is a fixture

EXE = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")


def test_ssh_commands_carry_the_ps_lite_environment(tmp_path):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# the cluster\nnode-a\n\nnode-b  # second\n")
    hosts = read_hostfile(str(hostfile))
    assert hosts == ["node-a", "node-b"]
    cmds = ssh_commands(["inceptionzoo", "train", "--kvstore", "dist_sync", "--out", "a b"],
                        hosts, workers=3, servers=1, root_uri="head", root_port=9091,
                        cwd="/work/zoo", python="/venv/bin/python")
    assert [(role, host) for role, host, _ in cmds] == [
        ("server", "node-a"), ("worker", "node-b"), ("worker", "node-a"), ("worker", "node-b")]
    role, host, argv = cmds[1]
    assert argv[:5] == ["ssh", "-o", "BatchMode=yes", "--", "node-b"]
    remote = argv[5]
    assert remote.startswith("cd /work/zoo && exec env DMLC_ROLE=worker DMLC_PS_ROOT_URI=head "
                             "DMLC_PS_ROOT_PORT=9091 DMLC_NUM_WORKER=3 DMLC_NUM_SERVER=1 ")
    assert "DMLC_NODE_HOST=node-b" in remote
    guard = f"/venv/bin/python -I {process_guard.__file__} guard"
    assert remote.endswith(f" {guard} 'worker 0 on node-b' -- inceptionzoo train --kvstore "
                           "dist_sync --out 'a b'")
    server = cmds[0][2][5]
    assert "DMLC_ROLE=server" in server
    assert server.endswith(f"{guard} 'server 0 on node-a' -- /venv/bin/python -c 'import mxnet'")


@pytest.mark.parametrize("kwargs,words", [
    (dict(workers=0), "--workers must be an integer in 1..1024; got 0"),
    (dict(servers=0), "--servers must be an integer in 1..1024; got 0"),
    (dict(launcher="mpi"), "unknown launcher 'mpi': expected 'local' or 'ssh'"),
    (dict(launcher="ssh"), "the ssh launcher needs --hostfile"),
])
def test_launch_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        launch(["true"], **kwargs)


def test_dist_kvstore_without_launcher_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DMLC_ROLE", raising=False)
    from inceptionzoo.mnist import MNIST_FILES, write_idx

    for t in (True, False):
        write_idx(str(tmp_path / MNIST_FILES[t][0]), np.zeros((4, 28, 28)))
        write_idx(str(tmp_path / MNIST_FILES[t][1]), np.zeros((4,)))
    with pytest.raises(ValueError, match="needs MXNet's parameter server: run the command "
                       "under `inceptionzoo launch"):
        train(data_dir=str(tmp_path), kvstore="dist_sync", progress=False)


def test_node_env():
    env = node_env("worker", "127.0.0.1", 9000, 2, 1, node_host="127.0.0.1",
                   extra={"PS_HEARTBEAT_TIMEOUT": 10})
    assert env["DMLC_ROLE"] == "worker" and env["DMLC_NUM_WORKER"] == "2"
    assert env["PS_HEARTBEAT_TIMEOUT"] == "10" and env["DMLC_NODE_HOST"] == "127.0.0.1"


def _launch(args, hang_seconds):
    """``inceptionzoo launch ARGS`` in its own process group; a job still running after
    ``hang_seconds`` (far above its normal run time, so that a slow machine does not trip it)
    is killed with all its processes and fails the test as a hang."""
    proc = subprocess.Popen([EXE, "launch"] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # SIGINT may be ignored here (a background job): not in the launcher
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        out, err = proc.communicate(timeout=hang_seconds)
    except subprocess.TimeoutExpired:
        # SIGINT: the launcher stops its nodes (each in its own session) on the way out
        os.killpg(proc.pid, signal.SIGINT)
        try:
            err = proc.communicate(timeout=60)[1][-2000:]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            err = "(none: the launcher did not stop on SIGINT either and was killed)"
        pytest.fail(f"the launcher did not stop the job within {hang_seconds} s (a hang: a "
                    f"worker died and the others were not stopped?); stderr: {err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


DEAD_WORKER = """
import os, mxnet as mx
kv = mx.kv.create("dist_sync")
if kv.rank == 1:
    os._exit(3)  # a crash: no MXNet shutdown
x = mx.nd.ones((4,))
kv.init(0, x)
for _ in range(10**6):  # waits forever for the dead worker's push
    kv.pushpull(0, x, out=x)
    x.wait_to_read()
"""


@pytest.mark.slow
def test_a_dead_worker_stops_the_job(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(DEAD_WORKER)
    run = _launch(["--workers", "2", "--servers", "1", "--", sys.executable, str(script)],
                  hang_seconds=120)
    assert run.returncode == 3, run.stderr
    assert re.search(r"worker [01] exited with status 3; stopping the others", run.stderr)


@pytest.mark.slow
def test_a_worker_that_fails_in_training_stops_the_job(mnist400, tmp_path):
    """Worker 1 meets a corrupt trainer state after joining the KVStore: it reports the error
    and leaves at once (a normal exit would wait in MXNet's shutdown barrier for worker 0,
    which waits for its gradients); the launcher stops worker 0 and fails with status 2."""
    import shutil

    good = tmp_path / "good"
    train(data_dir=mnist400, recipe="seed", epochs=1, out=str(good), progress=False,
          log=lambda *a: None)
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    (bad / "inception_mnist-0001.states").write_bytes(b"garbage")
    cmd = (f"if [ \"$INCEPTIONZOO_WORKER_INDEX\" = 1 ]; then OUT={bad}; else OUT={good}; fi; "
           f"exec {EXE} train inception_mnist --data-dir {mnist400} --recipe seed --epochs 3 "
           "--resume --kvstore dist_sync --no-progress --out $OUT")
    run = _launch(["--workers", "2", "--", "sh", "-c", cmd], hang_seconds=300)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "inception_mnist-0001.states: not a trainer state file" in run.stderr
    assert "worker 1 exited with status 2; stopping the others" in run.stderr
    assert sorted(os.listdir(good)) == ["curves.png", "inception_mnist-0001.params",
                                        "inception_mnist-0001.states", "metrics.json"]


def _same_threads():
    """``launch`` options that run every process on this process's OpenMP threads (not each
    worker's share of the cores, nor, over ssh, every core of the host): the float sums of
    oneDNN's convolutions depend on the thread count."""
    return [f"--env={k}={v}" for k, v in os.environ.items() if k in _openmp.THREAD_VARIABLES]


def _load(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


@pytest.fixture(scope="module")
def mnist400(tmp_path_factory, mnist_dir):
    """400 real training digits and 100 test digits as IDX files: 4 steps of batch 100."""
    from _sample_data import write_mnist_subset

    return write_mnist_subset(str(tmp_path_factory.mktemp("mnist400")), mnist_dir, 400, 100)


@pytest.mark.slow
def test_two_workers_match_one_process_and_resume(mnist400, tmp_path):
    """2 workers x 50 images = 1 process x 100 images after the 4 steps of epoch 1 (to 1e-5);
    a distributed run resumed after epoch 1 ends epoch 2 where one process does with the same
    split of each batch over two contexts (the float sums then match too, to 1e-6; against one
    context the summation-order differences, 1e-6 after epoch 1, grow to 1e-4 in 4 more steps
    of this network)."""
    recipe = ["--recipe", "seed", "--lr", "0.02", "--batch-size", "100", "--seed", "3"]
    quiet = dict(data_dir=mnist400, recipe="seed", lr=0.02, batch_size=100, seed=3,
                 progress=False, log=lambda *a: None)
    one = train(epochs=1, out=str(tmp_path / "one"), **quiet)
    two = train(epochs=2, ctx="cpu0,cpu1", out=str(tmp_path / "two"), **quiet)
    dist = tmp_path / "dist"
    threads = _same_threads()
    for epochs, extra in (("1", []), ("2", ["--resume"])):
        run = subprocess.run(
            [EXE, "launch", "--workers", "2", "--servers", "1", "--timeout", "300"] + threads
            + ["--", EXE,
             "train", "inception_mnist", "--data-dir", mnist400, "--kvstore", "dist_sync",
             "--epochs", epochs,
             "--out", str(dist), "--no-progress"] + recipe + extra,
            capture_output=True, text=True, timeout=400)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.count("final test accuracy") == 1  # worker 0 reports, alone
    assert "resuming from" in run.stdout
    assert sorted(os.listdir(dist)) == sorted(os.listdir(tmp_path / "two"))  # no stray files
    for epoch, ref, tol in ((1, tmp_path / "one", 1e-5), (2, tmp_path / "two", 1e-6)):
        a = _load(ref / f"inception_mnist-000{epoch}.params")
        b = _load(dist / f"inception_mnist-000{epoch}.params")
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=tol, atol=tol, err_msg=f"{epoch} {k}")
    import json

    m = json.loads((dist / "metrics.json").read_text())
    assert m["num_workers"] == 2 and m["kvstore"] == "dist_sync" and m["rank"] == 0
    assert [e["epoch"] for e in m["epochs"]] == [1, 2]
    assert m["epochs"][0]["test_accuracy"] == one["accuracy"]
    assert m["accuracy"] == two["accuracy"]


@pytest.mark.slow
def test_dist_async_trains_and_resumes(mnist400, tmp_path):
    """dist_async updates on the servers (MXNet's rule): checkpoints hold the parameters only,
    and --resume continues from them."""
    out = tmp_path / "async"
    for epochs, extra in (("1", []), ("2", ["--resume"])):
        run = subprocess.run(
            [EXE, "launch", "--workers", "2", "--timeout", "300", "--", EXE, "train",
             "inception_mnist", "--data-dir", mnist400, "--kvstore", "dist_async", "--recipe",
             "default", "--epochs", epochs, "--out", str(out), "--no-progress"] + extra,
            capture_output=True, text=True, timeout=400)
        assert run.returncode == 0, run.stderr[-2000:]
    assert "resuming from" in run.stdout and "inception_mnist-0001.params" in run.stdout
    assert sorted(os.listdir(out)) == ["curves.png", "inception_mnist-0001.params",
                                       "inception_mnist-0002.params", "metrics.json"]
    params = _load(out / "inception_mnist-0002.params")
    assert all(np.isfinite(v).all() for v in params.values())
    assert any(not np.array_equal(v, w) for v, w in
               zip(params.values(), _load(out / "inception_mnist-0001.params").values()))


def test_launch_cli_errors_are_one_line(capsys):
    from inceptionzoo.cli import main

    assert main(["launch", "--workers", "0", "--", "true"]) == 2
    assert capsys.readouterr().err == ("inceptionzoo launch: error: --workers must be an "
                                       "integer in 1..1024; got 0\n")


@pytest.mark.slow
def test_ssh_launcher_matches_the_local_launcher(mnist400, tmp_path, sshd):
    """The 2-worker dist_sync epoch above, once with the local launcher and once through
    `--launcher ssh` to a real sshd (two loopback addresses as two hosts, keys and known
    hosts made by the test, passed with --ssh-option): the same weights."""
    hostfile, options, log = sshd
    train_cmd = [EXE, "train", "inception_mnist", "--data-dir", mnist400, "--kvstore",
                 "dist_sync", "--epochs", "1", "--no-progress", "--recipe", "seed", "--lr", "0.02",
                 "--batch-size", "100", "--seed", "3"]
    for name, how in (("local", []), ("ssh", ssh_launch_args(hostfile, options))):
        run = subprocess.run([EXE, "launch", "--workers", "2", "--servers", "1", "--timeout",
                              "300"] + how + _same_threads() + ["--"] + train_cmd
                             + ["--out", str(tmp_path / name)],
                             capture_output=True, text=True, timeout=400)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stdout.count("final test accuracy") == 1
    text = log.read_text()
    assert text.count("Accepted publickey") == 3  # a server and two workers, all over ssh
    assert " on 127.0.0.2 port " in text and " on 127.0.0.1 port " in text
    a = _load(tmp_path / "local" / "inception_mnist-0001.params")
    b = _load(tmp_path / "ssh" / "inception_mnist-0001.params")
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-6, err_msg=k)
