"""Start MXNet's parameter server (a scheduler, servers, workers) for distributed training.

MXNet's distributed KVStore (``dist_sync``, ``dist_device_sync``, ``dist_async``) is ps-lite:
every process reads its role and the scheduler's address from environment variables
(``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``, ``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_SERVER``,
``DMLC_NUM_WORKER``). A server or the scheduler is any Python process that imports ``mxnet``
with its role set: the import runs the server loop. MXNet 1.9.1 ships ``tools/launch.py`` for
this, but its bundled ``dmlc_tracker`` calls ``Thread.isAlive`` (removed in Python 3.9), and
it does not stop the job when one worker dies. This module sets the same variables itself and
watches its children: the first worker that fails (or the scheduler or a server that dies
while workers run) makes it kill every other process and return a non-zero status, so a
job never hangs on a dead peer.

``local`` runs everything on this machine over loopback; ``ssh`` runs the scheduler here and
each server and worker on the hosts of a hostfile, round-robin, through ``ssh HOST 'cd DIR &&
env ... COMMAND'`` (the same working directory and Python must exist on every host).
"""
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

__all__ = ["free_port", "read_hostfile", "node_env", "ssh_commands", "launch"]

#: what an idle scheduler/server process runs: importing mxnet with DMLC_ROLE set serves
SERVER_CODE = "import mxnet"


def free_port(host="127.0.0.1"):
    """A TCP port that is free on ``host`` now (the OS picks it).

    Parameters
    ----------
    host : str, default '127.0.0.1'
        The address to bind.

    Returns
    -------
    int
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def read_hostfile(path):
    """Host names from a file, one per line (``#`` comments and blank lines ignored).

    Parameters
    ----------
    path : str
        The hostfile.

    Returns
    -------
    list of str
    """
    try:
        with open(path) as f:
            hosts = [line.split("#")[0].strip() for line in f]
    except OSError as err:
        raise OSError(f"cannot read the hostfile {path!r}: {err.strerror}") from None
    hosts = [h for h in hosts if h]
    if not hosts:
        raise ValueError(f"hostfile {path!r} lists no host: expected one host name per line")
    return hosts


def node_env(role, root_uri, root_port, workers, servers, node_host=None, extra=None):
    """The environment variables of one ps-lite process.

    Parameters
    ----------
    role : {'scheduler', 'server', 'worker'}
    root_uri, root_port : str, int
        Address of the scheduler.
    workers, servers : int
        How many of each the job has.
    node_host : str, optional
        The address this process announces to its peers (``DMLC_NODE_HOST``).
    extra : dict, optional
        More variables (they win over the defaults below).

    Returns
    -------
    dict of str
        ``DMLC_*`` variables plus ``PS_HEARTBEAT_INTERVAL``/``PS_HEARTBEAT_TIMEOUT`` (so that a
        peer that vanishes is noticed) unless ``extra`` sets them.
    """
    env = {"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": str(root_uri),
           "DMLC_PS_ROOT_PORT": str(root_port), "DMLC_NUM_WORKER": str(workers),
           "DMLC_NUM_SERVER": str(servers), "PS_HEARTBEAT_INTERVAL": "5",
           "PS_HEARTBEAT_TIMEOUT": "30"}
    if node_host:
        env["DMLC_NODE_HOST"] = str(node_host)
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def _index(jobs, i):
    """``INCEPTIONZOO_WORKER_INDEX``: the launcher's number of a worker (0, 1, ...), for logs
    and scripts. It is not the KVStore rank, which ps-lite gives in order of connection."""
    if jobs[i][0] != "worker":
        return {}
    return {"INCEPTIONZOO_WORKER_INDEX": sum(role == "worker" for role, _ in jobs[:i])}


def _check_counts(workers, servers, command):
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1; got {workers!r}")
    if not isinstance(servers, int) or servers < 1:
        raise ValueError(f"--servers must be an integer >= 1; got {servers!r}")
    if not command:
        raise ValueError("no command to launch: expected `inceptionzoo launch ... -- COMMAND`")


def ssh_commands(command, hosts, workers, servers, root_uri, root_port, cwd=None,
                 python=None, env=None):
    """The ``ssh`` command lines of a job: servers, then workers, on ``hosts`` round-robin.

    Parameters
    ----------
    command : list of str
        What each worker runs.
    hosts : list of str
        Where servers and workers run (servers from the first host on, then workers).
    workers, servers : int
    root_uri, root_port : str, int
        The scheduler's address as the hosts reach it (the scheduler runs where ``launch``
        runs).
    cwd : str, optional
        Working directory on the hosts (default: this one).
    python : str, optional
        Python on the hosts for the servers (default: this one).
    env : dict, optional
        More variables for every process.

    Returns
    -------
    list of (str, str, list of str)
        ``(role, host, argv)`` for each process; ``argv`` starts with ``ssh``.
    """
    _check_counts(workers, servers, command)
    if not hosts:
        raise ValueError("ssh launcher: the hostfile lists no host")
    cwd = cwd or os.getcwd()
    python = python or sys.executable
    out = []
    jobs = [("server", [python, "-c", SERVER_CODE])] * servers + \
        [("worker", list(command))] * workers
    for i, (role, argv) in enumerate(jobs):
        host = hosts[i % len(hosts)]
        variables = node_env(role, root_uri, root_port, workers, servers, node_host=host,
                             extra=dict(_index(jobs, i), **(env or {})))
        remote = "cd {} && env {} {}".format(
            shlex.quote(cwd), " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items()),
            " ".join(shlex.quote(a) for a in argv))
        out.append((role, host, ["ssh", "-o", "StrictHostKeyChecking=no", "-o",
                                 "BatchMode=yes", host, remote]))
    return out


def _start(argv, env, log):
    return subprocess.Popen(argv, env=dict(os.environ, **env), stdout=log, stderr=log,
                            start_new_session=True)


def _kill(procs, grace=5.0):
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def launch(command, workers=2, servers=1, launcher="local", hostfile=None, port=None,
           scheduler_host=None, env=None, timeout=None, poll=0.2, log=None):
    """Run ``command`` as ``workers`` ps-lite workers with ``servers`` servers and a scheduler.

    Parameters
    ----------
    command : list of str
        The worker's command line, e.g. ``['inceptionzoo', 'train', '--kvstore', 'dist_sync',
        ...]``.
    workers, servers : int
        Number of workers and parameter servers.
    launcher : {'local', 'ssh'}
        ``local``: every process on this machine over loopback. ``ssh``: the scheduler here,
        servers and workers on the hosts of ``hostfile``.
    hostfile : str, optional
        One host per line (``ssh`` only).
    port : int, optional
        The scheduler's port (default: a free one).
    scheduler_host : str, optional
        The scheduler's address as the other hosts reach it (``ssh``; default: this machine's
        host name).
    env : dict, optional
        More environment variables for every process.
    timeout : float, optional
        Kill the job and fail after this many seconds.
    poll : float
        How often the children are checked, in seconds.
    log : file, optional
        Where the children's output goes (default: inherited).

    Returns
    -------
    int
        0 when every worker exits 0; otherwise the first failing worker's status (or 1), after
        every other process was killed.
    """
    if launcher not in ("local", "ssh"):
        raise ValueError(f"unknown launcher {launcher!r}: expected 'local' or 'ssh'")
    _check_counts(workers, servers, command)
    if launcher == "local":
        uri = "127.0.0.1"
        port = port or free_port(uri)
        jobs = [("server", [sys.executable, "-c", SERVER_CODE])] * servers + \
            [("worker", list(command))] * workers
        nodes = [(role, argv, node_env(role, uri, port, workers, servers, node_host=uri,
                                       extra=dict(_index(jobs, i), **(env or {}))))
                 for i, (role, argv) in enumerate(jobs)]
    else:
        if not hostfile:
            raise ValueError("the ssh launcher needs --hostfile FILE (one host per line)")
        uri = scheduler_host or socket.gethostname()
        port = port or free_port("0.0.0.0")
        nodes = [(role, argv, {}) for role, _, argv in
                 ssh_commands(command, read_hostfile(hostfile), workers, servers, uri, port,
                              env=env)]
    sched_env = node_env("scheduler", uri, port, workers, servers,
                         node_host=uri if launcher == "local" else None, extra=env)
    procs = [("scheduler", _start([sys.executable, "-c", SERVER_CODE], sched_env, log))]
    try:
        for role, argv, node in nodes:
            procs.append((role, _start(argv, node, log)))
        worker_procs = [p for role, p in procs if role == "worker"]
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            codes = [p.poll() for p in worker_procs]
            failed = [c for c in codes if c not in (None, 0)]
            if failed:
                print(f"inceptionzoo launch: a worker exited with status {failed[0]}; "
                      "stopping the others", file=sys.stderr)
                return failed[0] if failed[0] > 0 else 1
            if all(c == 0 for c in codes):
                break
            dead = [(role, p.returncode) for role, p in procs
                    if role != "worker" and p.poll() is not None and p.returncode != 0]
            if dead:
                print(f"inceptionzoo launch: the {dead[0][0]} exited with status {dead[0][1]}"
                      "; stopping the workers", file=sys.stderr)
                return 1
            if deadline and time.monotonic() > deadline:
                print(f"inceptionzoo launch: timed out after {timeout} s; stopping the job",
                      file=sys.stderr)
                return 1
            time.sleep(poll)
        # the workers are done: the servers and the scheduler exit on their own
        for role, p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        return 0
    finally:
        _kill([p for _, p in procs])
