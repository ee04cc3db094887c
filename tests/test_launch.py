"""`inceptionzoo launch` as an adversarial user meets it: signals to the launcher, workers
killed by a signal, absurd counts and ports, hostile or broken hostfiles and ssh options.

Every process of a test job carries a marker variable (``--env``), so the tests find all of
them, their children included, by pid in /proc, and require that none survives the job."""
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from inceptionzoo import _openmp
from inceptionzoo import launch as launch_module
from inceptionzoo.cli import main
from inceptionzoo.launch import launch, read_hostfile, ssh_commands

EXE = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")

#: a worker that starts a child and waits for it; it records "INDEX SHELL_PID CHILD_PID"
WORKER = """sleep 300 &
echo "$INCEPTIONZOO_WORKER_INDEX $$ $!" >> "$1"
wait
"""


def job_processes(marker):
    """Pids of the live (not zombie) processes whose environment holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in env and state not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def wait_for(condition, what, seconds=120):
    """Poll ``condition`` until true; fail naming ``what`` after ``seconds``."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def job(tmp_path):
    """Start `inceptionzoo launch --workers 2 -- sh WORKER PIDS` in a session of its own and
    wait until both workers run their child. Yields (launcher Popen, marker, {index: (shell,
    child)}); kills whatever is left at the end."""
    marker = f"IZ_TEST_JOB={uuid.uuid4().hex}"
    script, pids = tmp_path / "worker.sh", tmp_path / "pids"
    script.write_text(WORKER)
    proc = subprocess.Popen([EXE, "launch", "--workers", "2", "--env", marker, "--", "sh",
                             str(script), str(pids)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)

    def started():
        assert proc.poll() is None, proc.communicate()
        return pids.exists() and len(pids.read_text().splitlines()) == 2

    try:
        wait_for(started, "both workers and their children")
        workers = {int(i): (int(a), int(b)) for i, a, b in
                   (line.split() for line in pids.read_text().splitlines())}
        yield proc, marker, workers
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in job_processes(marker):  # leave nothing behind, whatever the test found
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=lambda s: s.name)
def test_a_signal_to_the_launcher_stops_the_whole_job(job, sig):
    proc, marker, workers = job
    members = job_processes(marker)
    # scheduler, server, 2 workers (each a guard, its command, the command's child) at least
    assert len(members) >= 8, members
    assert all(pid in members for pair in workers.values() for pid in pair)
    os.killpg(proc.pid, sig)  # as a terminal's Ctrl-C does: the launcher's foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert f"inceptionzoo launch: stopped by {sig.name}; stopping the job" in err
    assert job_processes(marker) == []
    assert not [pid for pid in members if alive(pid)]


@pytest.mark.slow
def test_a_worker_killed_by_a_signal_takes_its_children_with_it(job):
    proc, marker, workers = job
    shell, child = workers[1]
    os.kill(shell, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGKILL, err
    assert "inceptionzoo launch: worker 1 was killed by SIGKILL" in err
    assert ("inceptionzoo launch: worker 1 exited with status 137 (killed by SIGKILL); "
            "stopping the others") in err
    assert not alive(child)  # the killed worker's own child
    assert job_processes(marker) == []


@pytest.mark.slow
def test_a_launcher_killed_by_sigkill_leaves_nothing(job):
    """SIGKILL cannot be caught: each guard sees its standard input close and stops its
    command's process group."""
    proc, marker, workers = job
    members = job_processes(marker)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not job_processes(marker), "the job to go after its launcher")
    assert not [pid for pid in members if alive(pid)]


def _environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read().split(b"\0")


@pytest.mark.slow
def test_a_dead_server_stops_the_workers(job):
    proc, marker, workers = job
    server = [pid for pid in job_processes(marker) if b"DMLC_ROLE=server" in _environ(pid)
              and b"\0guard\0" not in open(f"/proc/{pid}/cmdline", "rb").read()]
    assert len(server) == 1, server  # the server itself, not its guard
    os.kill(server[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert ("inceptionzoo launch: the server 0 exited with status 137 (killed by SIGKILL); "
            "stopping the workers") in err
    assert job_processes(marker) == []
    assert not [pid for pair in workers.values() for pid in pair if alive(pid)]


@pytest.mark.slow
def test_timeout_stops_the_job():
    marker = f"IZ_TEST_JOB={uuid.uuid4().hex}"
    run = subprocess.run([EXE, "launch", "--workers", "1", "--timeout", "3", "--env", marker,
                          "--", "sleep", "300"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    assert "inceptionzoo launch: timed out after 3.0 s; stopping the job" in run.stderr
    assert job_processes(marker) == []


#: worker 0 finishes at once; worker 1 waits for it forever, as in a KVStore barrier
EARLY_EXIT = """if [ "$INCEPTIONZOO_WORKER_INDEX" = 0 ]; then exit 0; fi
sleep 300
"""


@pytest.mark.slow
def test_a_worker_that_finishes_while_its_peers_wait_fails_the_job(tmp_path):
    """One worker exiting 0 while another waits in a barrier hung `launch` until --timeout
    (which has no default)."""
    marker = f"IZ_TEST_JOB={uuid.uuid4().hex}"
    script = tmp_path / "worker.sh"
    script.write_text(EARLY_EXIT)
    start = time.monotonic()
    run = subprocess.run([EXE, "launch", "--workers", "2", "--exit-grace", "2", "--env", marker,
                          "--", "sh", str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    assert ("inceptionzoo launch: worker 0 exited with status 0 but worker 1 still ran 2.0 s "
            "later (waiting for it, e.g. in a KVStore barrier); stopping the job") in run.stderr
    assert time.monotonic() - start < 200
    assert job_processes(marker) == []


def test_the_exit_grace_has_a_default():
    assert launch_module.EXIT_GRACE == 60.0


@pytest.fixture
def no_thread_variables(monkeypatch):
    for var in _openmp.THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_openmp, "physical_cores", lambda: 8)
    monkeypatch.setattr(_openmp, "SET_AT_IMPORT", 8)


def _threads(env=None, workers=4):
    _, _, nodes = launch_module._local_nodes(["train"], workers, 2, None, env, sys.executable)
    return {label: node.get("MXNET_OMP_MAX_THREADS") for label, _, node in nodes}


def test_local_workers_share_the_physical_cores(no_thread_variables, monkeypatch):
    """Each local worker took every core (MXNet's threads, one per core): 2 workers of one
    MNIST epoch had not finished after 643 s where one process took 35 s."""
    assert _threads() == {"server 0": "1", "server 1": "1", "worker 0": "2", "worker 1": "2",
                          "worker 2": "2", "worker 3": "2"}
    assert _threads(workers=16)["worker 15"] == "1"  # at least one each
    assert launch_module.local_threads("scheduler", 4) == {"MXNET_OMP_MAX_THREADS": 1}
    # the MXNET_OMP_MAX_THREADS inceptionzoo set here at import is not the user's
    monkeypatch.setenv("MXNET_OMP_MAX_THREADS", "8")
    assert _threads()["worker 0"] == "2"


@pytest.mark.parametrize("where,variable", [("env", "OMP_NUM_THREADS"),
                                            ("env", "MXNET_OMP_MAX_THREADS"),
                                            ("environ", "OMP_NUM_THREADS"),
                                            ("environ", "MXNET_OMP_MAX_THREADS")])
def test_a_users_thread_setting_wins_for_every_local_process(no_thread_variables, monkeypatch,
                                                            where, variable):
    env = {variable: "3"} if where == "env" else None
    if where == "environ":
        monkeypatch.setenv(variable, "3")
    assert set(_threads(env).values()) == {"3" if (variable, where) == (
        "MXNET_OMP_MAX_THREADS", "env") else None}
    assert launch_module.local_threads("scheduler", 4, env) == {}


def test_children_do_not_inherit_the_launchers_own_thread_default(no_thread_variables,
                                                                  monkeypatch):
    """``--env OMP_NUM_THREADS=2`` was overridden by the MXNET_OMP_MAX_THREADS (every core)
    that importing inceptionzoo set in the launcher, which MXNet reads first."""
    seen = []
    monkeypatch.setattr(launch_module.subprocess, "Popen",
                        lambda argv, env, **kwargs: seen.append(env))
    monkeypatch.setenv("MXNET_OMP_MAX_THREADS", "8")  # set at import (SET_AT_IMPORT)
    monkeypatch.setenv(_openmp.CHOSEN_VARIABLE, "8")
    launch_module._start(["true"], {"OMP_NUM_THREADS": "2"}, None)
    assert seen[0]["OMP_NUM_THREADS"] == "2" and "MXNET_OMP_MAX_THREADS" not in seen[0]
    assert _openmp.CHOSEN_VARIABLE not in seen[0]
    monkeypatch.setenv("MXNET_OMP_MAX_THREADS", "5")  # the user's
    launch_module._start(["true"], {}, None)
    assert seen[1]["MXNET_OMP_MAX_THREADS"] == "5"


def test_the_count_a_parent_process_chose_is_not_the_users(monkeypatch):
    """A script that imported inceptionzoo (benchmarks/train_scaling.py) and ran `inceptionzoo
    launch` passed on the MXNET_OMP_MAX_THREADS (every core) its import set: the launcher took it
    for the user's, and 2 workers of 2 threads each on 2 cores took ~1 s more per small
    dist_sync step (60 steps of batch 100: 48.7 s against 2.5 s in one process)."""
    monkeypatch.setattr(_openmp, "SET_AT_IMPORT", None)
    inherited = {"MXNET_OMP_MAX_THREADS": "8", _openmp.CHOSEN_VARIABLE: "8"}
    assert launch_module.local_threads("worker", 2, environ=inherited, cores=8) == \
        {"MXNET_OMP_MAX_THREADS": 4}
    assert launch_module.local_threads("server", 2, environ=inherited, cores=8) == \
        {"MXNET_OMP_MAX_THREADS": 1}
    # a user's count (without the package's mark, or another value) still wins
    for environ in ({"MXNET_OMP_MAX_THREADS": "8"},
                    {"MXNET_OMP_MAX_THREADS": "3", _openmp.CHOSEN_VARIABLE: "8"},
                    dict(inherited, OMP_NUM_THREADS="3")):
        assert launch_module.local_threads("worker", 2, environ=environ, cores=8) == {}


#: a worker of a real job: joins the KVStore and records its thread setting
RECORD_THREADS = """import os, sys
import mxnet as mx
kv = mx.kv.create("dist_sync")
with open(sys.argv[1] + os.environ["INCEPTIONZOO_WORKER_INDEX"], "w") as f:
    f.write(os.environ.get("MXNET_OMP_MAX_THREADS", "-"))
"""


#: how a script that imported inceptionzoo runs a command (benchmarks/train_scaling.py)
FROM_A_SCRIPT = "import inceptionzoo, subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


@pytest.mark.slow
@pytest.mark.parametrize("parent", [[], [sys.executable, "-c", FROM_A_SCRIPT]],
                         ids=["shell", "script"])
def test_a_real_local_job_gives_each_worker_its_share(tmp_path, parent):
    script = tmp_path / "worker.py"
    script.write_text(RECORD_THREADS)
    env = {k: v for k, v in os.environ.items()
           if k not in _openmp.THREAD_VARIABLES + (_openmp.CHOSEN_VARIABLE,)}
    run = subprocess.run(parent + [EXE, "launch", "--workers", "2", "--timeout", "240", "--",
                                   sys.executable, str(script), str(tmp_path / "threads")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    share = str(max(_openmp.physical_cores() // 2, 1))
    assert [(tmp_path / f"threads{i}").read_text() for i in (0, 1)] == [share, share]


@pytest.mark.slow
def test_a_command_that_cannot_start_is_named(tmp_path):
    run = subprocess.run([EXE, "launch", "--workers", "1", "--", str(tmp_path / "nothing")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 127, run.stderr
    assert f"worker 0: cannot run '{tmp_path / 'nothing'}': No such file or directory" \
        in run.stderr
    assert "worker 0 exited with status 127; stopping the others" in run.stderr


@pytest.mark.parametrize("kwargs,words", [
    (dict(workers=1_000_000_000), "--workers must be an integer in 1..1024; got 1000000000"),
    (dict(workers=-1), "--workers must be an integer in 1..1024; got -1"),
    (dict(workers=2.5), "--workers must be an integer in 1..1024; got 2.5"),
    (dict(workers="2"), "--workers must be an integer in 1..1024; got '2'"),
    (dict(workers=True), "--workers must be an integer in 1..1024; got True"),
    (dict(servers=10**12), "--servers must be an integer in 1..1024; got 1000000000000"),
    (dict(servers=-3), "--servers must be an integer in 1..1024; got -3"),
    (dict(port=70000), "--port must be an integer in 1..65535; got 70000"),
    (dict(port=-1), "--port must be an integer in 1..65535; got -1"),
    (dict(port=0), "--port must be an integer in 1..65535; got 0"),
    (dict(port=80.5), "--port must be an integer in 1..65535; got 80.5"),
    (dict(timeout=-1), "timeout must be a finite number of seconds > 0; got -1"),
    (dict(timeout=float("nan")), "timeout must be a finite number of seconds > 0; got nan"),
    (dict(poll=0), "poll must be a finite number of seconds > 0; got 0"),
    (dict(exit_grace=0), "exit_grace must be a finite number of seconds > 0; got 0"),
    (dict(env={"A B": "1"}), "environment variable 'A B'='1': expected NAME=VALUE"),
    (dict(env={"X;touch /tmp/y": "1"}), "environment variable 'X;touch /tmp/y'"),
    (dict(launcher="ssh", hostfile="h", scheduler_host="-oProxyCommand=x"),
     "--scheduler-host: '-oProxyCommand=x' is not a host"),
])
def test_bad_arguments_are_refused_before_anything_starts(kwargs, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        launch(["true"], **dict(dict(timeout=20), **kwargs))  # bounded, were it to start


def test_a_port_in_use_is_named():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OSError, match=f"--port {port}: cannot listen on 127.0.0.1 "
                           r"\(Address already in use\): expected a free port"):
            launch(["true"], port=port, timeout=20)


@pytest.mark.parametrize("argv,line", [
    (["--workers", "1000000000"], "--workers must be an integer in 1..1024; got 1000000000"),
    (["--servers", "-2"], "--servers must be an integer in 1..1024; got -2"),
    (["--port", "99999"], "--port must be an integer in 1..65535; got 99999"),
    (["--exit-grace", "-1"], "exit_grace must be a finite number of seconds > 0; got -1.0"),
    (["--env", "IZ_SURELY_UNSET_VARIABLE"], "--env 'IZ_SURELY_UNSET_VARIABLE': "
     "IZ_SURELY_UNSET_VARIABLE is not set here: expected NAME=VALUE, or the NAME of a variable "
     "of this environment"),
    (["--launcher", "ssh", "--hostfile", "/nonexistent/hosts"],
     "cannot read the hostfile '/nonexistent/hosts': No such file or directory"),
    (["--launcher", "ssh", "--hostfile", "/", "--ssh-option=-oProxyCommand=x"],
     "--ssh-option '-oProxyCommand=x': expected KEY=VALUE, an ssh_config option such as "
     "IdentityFile=~/.ssh/id_ed25519 or Port=2222"),
])
def test_cli_errors_are_one_line(capsys, argv, line):
    assert main(["launch"] + argv + ["--", "true"]) == 2
    assert capsys.readouterr().err == f"inceptionzoo launch: error: {line}\n"


@pytest.mark.parametrize("text", [
    "-oProxyCommand=touch /tmp/pwned", "-p", "node a", "host;reboot", "$(reboot)", "a@b@c",
    "node:0", "node:65536", "node:", "[::1", "@node", "-x@node", "node-", "no_underscore.host",
    "user@-node", "n\u00f6de", "'node'", "",
])
def test_parse_host_refuses_everything_but_the_grammar(text):
    from inceptionzoo.launch import parse_host

    with pytest.raises(ValueError, match=r"is not a host: expected \[user@\]host\[:port\]"):
        parse_host(text)


@pytest.mark.parametrize("text,parsed", [
    ("node-a", (None, "node-a", None)),
    ("alice@10.0.0.2:2222", ("alice", "10.0.0.2", 2222)),
    ("[fe80::1]:22", (None, "fe80::1", 22)),
    ("gpu-7.cluster.example.org", (None, "gpu-7.cluster.example.org", None)),
])
def test_parse_host(text, parsed):
    from inceptionzoo.launch import parse_host

    assert parse_host(text) == parsed


def test_ssh_lines_keep_hosts_out_of_the_options():
    cmds = ssh_commands(["train"], ["alice@10.0.0.2:2222", "node-b"], workers=1, servers=1,
                        root_uri="head", root_port=9000, cwd="/w", python="/py",
                        ssh_options=["IdentityFile=/keys/id", "StrictHostKeyChecking=accept-new"])
    (_, host0, argv0), (_, host1, argv1) = cmds
    assert host0 == "10.0.0.2" and host1 == "node-b"
    assert argv0[:-1] == ["ssh", "-o", "BatchMode=yes", "-p", "2222", "-o",
                          "IdentityFile=/keys/id", "-o", "StrictHostKeyChecking=accept-new", "--",
                          "alice@10.0.0.2"]
    assert argv1[-3:-1] == ["--", "node-b"]
    assert "DMLC_NODE_HOST=10.0.0.2 " in argv0[-1]  # the address, not alice@...:2222
    for bad in (["-oProxyCommand=x"], ["node a"]):
        with pytest.raises(ValueError, match="is not a host"):
            ssh_commands(["train"], bad, 1, 1, "head", 9000)
    for opt in ("-oProxyCommand=x", "Port", "Port=", "Port=2\n-oX=y"):
        with pytest.raises(ValueError, match="expected KEY=VALUE"):
            ssh_commands(["train"], ["node"], 1, 1, "head", 9000, ssh_options=[opt])


@pytest.mark.parametrize("content,words", [
    (b"node-a\n-oProxyCommand=touch /tmp/pwned\n",
     r"line 2: '-oProxyCommand=touch /tmp/pwned' is not a host"),
    (b"node-a\nnode-b node-c\n", r"line 2: 'node-b node-c' is not a host"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00", r"line 1: not text \(a NUL byte or invalid UTF-8\)"),
    (b"# hosts\nnode-a\ncaf\xe9\n", r"line 3: not text \(a NUL byte or invalid UTF-8\)"),
    (b"", r"lists no host \(empty, or comments only\)"),
    (b"# only a comment\n\n   \n", r"lists no host \(empty, or comments only\)"),
    (b"node\n" * 300000, r"is larger than 1048576 bytes"),
])
def test_broken_hostfiles_name_the_file_and_line(tmp_path, content, words):
    path = tmp_path / "hosts"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"hostfile '{path}'.*{words}"):
        read_hostfile(str(path))


def test_hostfile_that_is_a_folder_is_named(tmp_path):
    with pytest.raises(OSError, match=f"cannot read the hostfile '{tmp_path}': Is a directory"):
        read_hostfile(str(tmp_path))


def test_hostfile_comments_crlf_and_bom():
    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix=".hosts") as f:
        f.write(b"\xef\xbb\xbf# cluster\r\nnode-a\r\n  bob@node-b:2200  # second\r\n")
        f.flush()
        assert read_hostfile(f.name) == ["node-a", "bob@node-b:2200"]


# -- a real sshd on loopback: two addresses play two hosts ----------------------------------

SSHD_MISSING = ("openssh-server and openssh-client are needed for the ssh launcher's tests: "
                ".ci/run installs them (apt-get install openssh-server openssh-client)")


def _accepts(host, port):
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def sshd(tmp_path):
    """An sshd of this test on a free port of 127.0.0.1 and 127.0.0.2, with a host key and a
    user key made here; its own config file (-f), no change to the system's. Yields
    (hostfile, ssh options for `launch`, sshd log path); sshd is stopped in all cases."""
    import getpass
    import shutil

    from inceptionzoo.launch import free_port

    sshd_exe = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.isfile(sshd_exe) or not shutil.which("ssh") \
            or not shutil.which("ssh-keygen"):
        pytest.fail(SSHD_MISSING)
    d = tmp_path / "sshd"
    d.mkdir()
    for key in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f",
                        str(d / key)], check=True, timeout=60)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    port = free_port("127.0.0.1")
    while _accepts("127.0.0.2", port):
        port = free_port("127.0.0.1")
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", "ListenAddress 127.0.0.2",
        f"HostKey {d / 'host_key'}", f"AuthorizedKeysFile {d / 'authorized_keys'}",
        f"PidFile {d / 'sshd.pid'}", "UsePAM no", "StrictModes no", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password", f"AllowUsers {getpass.getuser()}",
        "LogLevel VERBOSE", "PrintMotd no", "X11Forwarding no", "AllowTcpForwarding no",
        "MaxStartups 100", ""]))
    host_key = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text("".join(f"[{h}]:{port} {host_key[0]} {host_key[1]}\n"
                                           for h in ("127.0.0.1", "127.0.0.2")))
    (d / "hosts").write_text(f"# two loopback addresses, two hosts\n127.0.0.1:{port}\n"
                             f"127.0.0.2:{port}\n")
    if os.geteuid() == 0:  # sshd as root needs its privilege separation folder (made at boot
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # by the Debian service)
    log = d / "sshd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sshd_exe, "-D", "-e", "-f", str(d / "sshd_config")],
                                stdout=out, stderr=out, start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None or
                 (_accepts("127.0.0.1", port) and _accepts("127.0.0.2", port)), "sshd", 60)
        assert proc.poll() is None, f"sshd did not start: {log.read_text()}"
        options = [f"IdentityFile={d / 'user_key'}", "IdentitiesOnly=yes",
                   f"UserKnownHostsFile={d / 'known_hosts'}", "StrictHostKeyChecking=yes"]
        yield str(d / "hosts"), options, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ssh_launch_args(hostfile, options):
    """`inceptionzoo launch` arguments that run a job on the hosts of ``sshd``."""
    args = ["--launcher", "ssh", "--hostfile", hostfile, "--scheduler-host", "127.0.0.1"]
    for opt in options:
        args += ["--ssh-option", opt]
    if "PYTHONPATH" in os.environ:  # a source checkout run: the hosts import the same code
        args += ["--env", "PYTHONPATH"]
    return args


@pytest.mark.slow
def test_sigterm_stops_a_job_on_ssh_hosts(sshd, tmp_path):
    """Over ssh the guards on the hosts see their standard input close when the launcher
    stops its ssh clients, and stop their commands' process groups."""
    hostfile, options, log = sshd
    marker = f"IZ_TEST_JOB={uuid.uuid4().hex}"
    script, pids = tmp_path / "worker.sh", tmp_path / "pids"
    script.write_text(WORKER)
    proc = subprocess.Popen([EXE, "launch", "--workers", "2", "--env", marker]
                            + ssh_launch_args(hostfile, options)
                            + ["--", "sh", str(script), str(pids)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None or
                 (pids.exists() and len(pids.read_text().splitlines()) == 2), "the workers")
        assert proc.poll() is None, proc.communicate()
        members = job_processes(marker)
        children = [int(line.split()[2]) for line in pids.read_text().splitlines()]
        assert all(pid in members for pid in children)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert "stopped by SIGTERM; stopping the job" in err
        wait_for(lambda: not job_processes(marker), "the hosts' processes to stop", 60)
        assert not [pid for pid in members if alive(pid)]
        text = log.read_text()
        assert text.count(" on 127.0.0.1 port ") >= 2  # server 0 and worker 1
        assert text.count(" on 127.0.0.2 port ") >= 1  # worker 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in job_processes(marker):
            os.kill(pid, signal.SIGKILL)
