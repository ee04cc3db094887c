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
job never hangs on a dead peer. A worker that exits 0 while its peers still run
:data:`EXIT_GRACE` seconds later fails the job too: in ``dist_sync`` the peers wait for it in a
KVStore barrier that never opens (every worker of a job passes the barrier MXNet holds before
exit, so they end within seconds of each other).

On this machine (``local``) the workers share its cores: each gets ``MXNET_OMP_MAX_THREADS`` =
its share of the physical cores (at least 1), the servers and the scheduler 1, unless the user
set ``OMP_NUM_THREADS`` or ``MXNET_OMP_MAX_THREADS`` (here or with ``env``), which then holds
for every process (:func:`local_threads`). Each would otherwise take every core (importing
inceptionzoo gives MXNet one thread per core), and N workers' OpenMP threads would fight for
them (2 workers of 2 threads each on 2 cores: ~1 s more per small ``dist_sync`` step). The
count inceptionzoo chose in a parent process (a script that imported it and runs ``launch``) is
not the user's (:func:`inceptionzoo._openmp.chosen_by_package`).

Every process of a job runs under a *guard* (:mod:`inceptionzoo.process_guard` run as a
script: ``python -I process_guard.py guard LABEL -- COMMAND``): the guard starts the command in
a session of its own and, when the command ends, when it is sent SIGTERM/SIGINT/SIGHUP, or when
its standard input closes (the launcher or its ssh connection went away, even by SIGKILL),
stops the command's whole process group (SIGTERM, then SIGKILL after a grace period), so no
child of a worker outlives the job. ``launch`` itself stops the job on SIGTERM, SIGINT (Ctrl-C)
and SIGHUP. The hosts of a job are :mod:`inceptionzoo.hostfiles`.

``local`` runs everything on this machine over loopback; ``ssh`` runs the scheduler here and
each server and worker on the hosts of a hostfile, round-robin, through ``ssh [-p PORT]
[-o OPTION ...] -- [USER@]HOST 'cd DIR && exec env ... PYTHON -I .../process_guard.py guard
...'`` (the same working directory, Python and inceptionzoo must exist on every host).
"""
import math
import numbers
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

from . import _openmp
from ._checks import check_count
from .errors import InceptionZooError
from .hostfiles import check_port, free_port, parse_host, read_hostfile
from .process_guard import GRACE, StopSignals, guarded, signal_group, signal_name

__all__ = ["free_port", "parse_host", "read_hostfile", "node_env", "local_threads",
           "ssh_commands", "launch", "MAX_PROCESSES", "EXIT_GRACE"]

#: what an idle scheduler/server process runs: importing mxnet with DMLC_ROLE set serves
SERVER_CODE = "import mxnet"
#: the largest number of workers (and of servers) one job may have
MAX_PROCESSES = 1024
#: seconds the other workers may still run after one exited 0 (then the job has failed)
EXIT_GRACE = 60.0
_SSH_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9]*=[^\n\r\0]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def node_env(role, root_uri, root_port, workers, servers, node_host=None, extra=None):
    """The environment variables of one ps-lite process.

    Parameters
    ----------
    role : {'scheduler', 'server', 'worker'}
        The process's part in the job (``DMLC_ROLE``).
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


def local_threads(role, workers, env=None, environ=None, cores=None):
    """The OpenMP thread setting of one process of a job on this machine.

    Parameters
    ----------
    role : {'scheduler', 'server', 'worker'}
    workers : int
        How many workers share the machine.
    env : dict, optional
        The job's own variables (``--env``).
    environ : dict, optional
        The launcher's environment; default ``os.environ``.
    cores : int, optional
        Default: the physical cores this process may use (:func:`_openmp.physical_cores`).

    Returns
    -------
    dict
        ``{'MXNET_OMP_MAX_THREADS': N}``: a worker's share of the cores (at least 1), 1 for a
        server or the scheduler; empty when the user set ``OMP_NUM_THREADS`` or
        ``MXNET_OMP_MAX_THREADS`` in ``env`` or ``environ`` (not the one inceptionzoo set at
        import).
    """
    if any(var in (env or {}) for var in _openmp.THREAD_VARIABLES) \
            or _openmp.user_thread_variables(environ):
        return {}
    cores = _openmp.physical_cores() if cores is None else cores
    return {"MXNET_OMP_MAX_THREADS": max(cores // workers, 1) if role == "worker" else 1}


def _index(jobs, i):
    """``INCEPTIONZOO_WORKER_INDEX``: the launcher's number of a worker (0, 1, ...), for logs
    and scripts. It is not the KVStore rank, which ps-lite gives in order of connection."""
    if jobs[i][0] != "worker":
        return {}
    return {"INCEPTIONZOO_WORKER_INDEX": sum(role == "worker" for role, _ in jobs[:i])}


def _labels(jobs):
    """``server 0``, ``worker 1``, ...: how messages name each process of ``jobs``."""
    seen = {}
    out = []
    for role, _ in jobs:
        out.append(f"{role} {seen.get(role, 0)}")
        seen[role] = seen.get(role, 0) + 1
    return out


def _check_job(workers, servers, command, env):
    check_count("--workers", workers, 1, MAX_PROCESSES)
    check_count("--servers", servers, 1, MAX_PROCESSES)
    if not command:
        raise InceptionZooError(
            "no command to launch: expected `inceptionzoo launch ... -- COMMAND`")
    for k, v in (env or {}).items():
        if not isinstance(k, str) or not _ENV_NAME.fullmatch(k) or "\0" in str(v):
            raise InceptionZooError(f"environment variable {k!r}={v!r}: expected NAME=VALUE with a "
                                    "NAME of letters, digits and _ (not starting with a digit)")


def _check_ssh_options(options):
    for opt in options or ():
        if not isinstance(opt, str) or not _SSH_OPTION.fullmatch(opt):
            raise InceptionZooError(
                f"--ssh-option {opt!r}: expected KEY=VALUE, an ssh_config option "
                "such as IdentityFile=~/.ssh/id_ed25519 or Port=2222")


def _jobs(command, workers, servers, python):
    return [("server", [python, "-c", SERVER_CODE])] * servers + \
        [("worker", list(command))] * workers


def ssh_commands(command, hosts, workers, servers, root_uri, root_port, cwd=None,
                 python=None, env=None, ssh_options=()):
    """The ``ssh`` command lines of a job: servers, then workers, on ``hosts`` round-robin.

    Parameters
    ----------
    command : list of str
        What each worker runs.
    hosts : list of str
        Where servers and workers run (servers from the first host on, then workers), each
        ``[user@]host[:port]`` (:func:`parse_host`).
    workers, servers : int
        How many of each the job has.
    root_uri, root_port : str, int
        The scheduler's address as the hosts reach it (the scheduler runs where ``launch``
        runs).
    cwd : str, optional
        Working directory on the hosts (default: this one).
    python : str, optional
        Python on the hosts for the guards and servers (default: this one).
    env : dict, optional
        More variables for every process.
    ssh_options : list of str, optional
        ``KEY=VALUE`` ssh_config options, each passed as ``-o KEY=VALUE`` (e.g.
        ``IdentityFile=...``, ``StrictHostKeyChecking=accept-new``).

    Returns
    -------
    list of (str, str, list of str)
        ``(role, host, argv)`` for each process; ``argv`` starts with ``ssh`` and runs the
        command under a guard (:func:`inceptionzoo.process_guard.guard`) on the host.
    """
    _check_job(workers, servers, command, env)
    _check_ssh_options(ssh_options)
    if not hosts:
        raise InceptionZooError("ssh launcher: the hostfile lists no host")
    parsed = [parse_host(h) for h in hosts]
    cwd = cwd or os.getcwd()
    python = python or sys.executable
    out = []
    jobs = _jobs(command, workers, servers, python)
    for i, ((role, argv), label) in enumerate(zip(jobs, _labels(jobs))):
        user, host, port = parsed[i % len(hosts)]
        variables = node_env(role, root_uri, root_port, workers, servers, node_host=host,
                             extra=dict(_index(jobs, i), **(env or {})))
        remote = "cd {} && exec env {} {}".format(
            shlex.quote(cwd), " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items()),
            " ".join(shlex.quote(a) for a in guarded(python, f"{label} on {host}", argv)))
        ssh = ["ssh", "-o", "BatchMode=yes"] + (["-p", str(port)] if port else [])
        for opt in ssh_options or ():
            ssh += ["-o", opt]
        out.append((role, host, ssh + ["--", f"{user}@{host}" if user else host, remote]))
    return out


# -- the launcher ---------------------------------------------------------------------------

def _status(code):
    """Words for a child's exit status (negative: killed by that signal)."""
    if code < 0:
        return f"was killed by {signal_name(-code)}"
    if code > 128 and code - 128 in signal.valid_signals():
        return f"exited with status {code} (killed by {signal_name(code - 128)})"
    return f"exited with status {code}"


def _start(argv, env, log):
    """Start one guard with this environment (without the ``MXNET_OMP_MAX_THREADS`` that
    inceptionzoo chose here or in a parent: every core for one process) and ``env``."""
    user = _openmp.user_thread_variables()
    own = {k: v for k, v in os.environ.items() if k != _openmp.CHOSEN_VARIABLE
           and (k not in _openmp.THREAD_VARIABLES or k in user)}
    return subprocess.Popen(argv, env=dict(own, **env), stdin=subprocess.PIPE,
                            stdout=log, stderr=log, start_new_session=True)


def _kill(procs, grace=GRACE):
    """Stop every guard (their commands' groups go with them); SIGKILL what remains."""
    for _, p in procs:
        try:
            p.stdin.close()  # a guard stops its command at EOF, also across ssh
        except OSError:
            pass
        if p.poll() is None:  # a guard reaped is gone with its command's group
            signal_group(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace + 5
    for _, p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            signal_group(p.pid, signal.SIGKILL)
            p.wait()


def _check_seconds(name, value, optional=True):
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise InceptionZooError(f"{name} must be a finite number of seconds > 0; got {value!r}")


def _local_nodes(command, workers, servers, port, env, python):
    """``(scheduler address, port, nodes)`` of a job on this machine over loopback: each node
    a ``(label, argv, environment)``."""
    uri = "127.0.0.1"
    if port is not None:
        check_port(port, uri)
    port = port or free_port(uri)
    jobs = _jobs(command, workers, servers, python)
    nodes = [(label, guarded(python, label, argv),
              node_env(role, uri, port, workers, servers, node_host=uri,
                       extra=dict(_index(jobs, i), **local_threads(role, workers, env),
                                  **(env or {}))))
             for i, ((role, argv), label) in enumerate(zip(jobs, _labels(jobs)))]
    return uri, port, nodes


def _ssh_nodes(command, workers, servers, hostfile, port, scheduler_host, env, ssh_options):
    """``(scheduler address, port, nodes)`` of a job on the hosts of ``hostfile``, started
    over ssh."""
    if not hostfile:
        raise InceptionZooError("the ssh launcher needs --hostfile FILE (one host per line)")
    if scheduler_host is not None:
        parse_host(scheduler_host, "--scheduler-host")
    _check_ssh_options(ssh_options)
    uri = scheduler_host or socket.gethostname()
    if port is not None:
        check_port(port, "")
    port = port or free_port("0.0.0.0")
    hosts = read_hostfile(hostfile)
    cmds = ssh_commands(command, hosts, workers, servers, uri, port, env=env,
                        ssh_options=ssh_options)
    jobs = [(role, None) for role, _, _ in cmds]
    nodes = [(f"{label} on {host}", argv, {}) for (role, host, argv), label in
             zip(cmds, _labels(jobs))]
    return uri, port, nodes


def launch(command, workers=2, servers=1, launcher="local", hostfile=None, port=None,
           scheduler_host=None, env=None, timeout=None, poll=0.2, log=None, ssh_options=(),
           exit_grace=None):
    """Run ``command`` as ``workers`` ps-lite workers with ``servers`` servers and a scheduler.

    Parameters
    ----------
    command : list of str
        The worker's command line, e.g. ``['inceptionzoo', 'train', '--kvstore', 'dist_sync',
        ...]``.
    workers, servers : int
        Number of workers and parameter servers, each 1..``MAX_PROCESSES``.
    launcher : {'local', 'ssh'}
        ``local``: every process on this machine over loopback. ``ssh``: the scheduler here,
        servers and workers on the hosts of ``hostfile``.
    hostfile : str, optional
        One ``[user@]host[:port]`` per line (``ssh`` only).
    port : int, optional
        The scheduler's port (default: a free one).
    scheduler_host : str, optional
        The scheduler's address as the other hosts reach it (``ssh``; default: this machine's
        host name).
    env : dict, optional
        More environment variables for every process (over ssh, the only ones besides the
        ``DMLC_*`` variables: the hosts' login environment is not this one). ``local``: without
        ``OMP_NUM_THREADS`` or ``MXNET_OMP_MAX_THREADS`` here or in ``env``, each process gets
        its share of the cores (:func:`local_threads`).
    timeout : float, optional
        Kill the job and fail after this many seconds.
    exit_grace : float, optional
        Seconds the other workers may still run after one exited 0; past that the job fails
        (a peer waits for the finished worker, e.g. in a KVStore barrier). Default
        :data:`EXIT_GRACE`.
    poll : float
        How often the children are checked, in seconds.
    log : file, optional
        Where the children's output goes (default: inherited).
    ssh_options : list of str, optional
        ``KEY=VALUE`` ssh_config options for every ssh (``ssh`` only; see
        :func:`ssh_commands`).

    Returns
    -------
    int
        0 when every worker exits 0; otherwise the first failing worker's status (``128 + N``
        when signal N killed it), or ``128 + N`` when signal N (SIGTERM, SIGINT, SIGHUP)
        stopped the launcher, or 1 (a server or the scheduler died, the timeout, workers still
        running ``exit_grace`` seconds after one exited 0); always after every process of the
        job was stopped.
    """
    if launcher not in ("local", "ssh"):
        raise InceptionZooError(f"unknown launcher {launcher!r}: expected 'local' or 'ssh'")
    _check_job(workers, servers, command, env)
    _check_seconds("timeout", timeout)
    exit_grace = EXIT_GRACE if exit_grace is None else exit_grace
    _check_seconds("exit_grace", exit_grace, optional=False)
    _check_seconds("poll", poll, optional=False)
    python = sys.executable
    if launcher == "local":
        uri, port, nodes = _local_nodes(command, workers, servers, port, env, python)
    else:
        uri, port, nodes = _ssh_nodes(command, workers, servers, hostfile, port,
                                      scheduler_host, env, ssh_options)
    local = launcher == "local"
    sched_env = node_env("scheduler", uri, port, workers, servers, node_host=uri if local else None,
                         extra=dict(local_threads("scheduler", workers, env) if local else {},
                                    **(env or {})))
    nodes.insert(0, ("scheduler", guarded(python, "scheduler", [python, "-c", SERVER_CODE]),
                     sched_env))
    procs = []
    with StopSignals() as stopped:
        try:
            return _watch(nodes, procs, stopped, timeout, poll, log, exit_grace)
        finally:
            _kill(procs)


def _watch(nodes, procs, stopped, timeout, poll, log, exit_grace=EXIT_GRACE):
    """Start ``nodes`` into ``procs`` and watch them: the body of :func:`launch`."""
    def say(text):
        print(f"inceptionzoo launch: {text}", file=sys.stderr, flush=True)

    def signalled():
        say(f"stopped by {signal_name(stopped.signum)}; stopping the job")
        return 128 + stopped.signum

    for label, argv, env in nodes:
        if stopped.signum:
            return signalled()
        procs.append((label, _start(argv, env, log)))
    workers = [(label, p) for label, p in procs if label.startswith("worker")]
    others = [(label, p) for label, p in procs if not label.startswith("worker")]
    deadline = time.monotonic() + timeout if timeout else None
    first_done = None  # (label, when) of the first worker that exited 0
    while True:
        if stopped.signum:
            return signalled()
        failed = [(label, p.returncode) for label, p in workers if p.poll() not in (None, 0)]
        if failed:
            label, code = failed[0]
            say(f"{label} {_status(code)}; stopping the others")
            return code if code > 0 else 128 - code
        if all(p.returncode == 0 for _, p in workers):
            break
        done = [label for label, p in workers if p.returncode == 0]
        if done and first_done is None:
            first_done = (done[0], time.monotonic())
        if first_done and time.monotonic() - first_done[1] > exit_grace:
            running = ", ".join(label for label, p in workers if p.returncode is None)
            say(f"{first_done[0]} exited with status 0 but {running} still ran {exit_grace} s "
                "later (waiting for it, e.g. in a KVStore barrier); stopping the job")
            return 1
        dead = [(label, p.returncode) for label, p in others
                if p.poll() is not None and p.returncode != 0]
        if dead:
            say(f"the {dead[0][0]} {_status(dead[0][1])}; stopping the workers")
            return 1
        if deadline and time.monotonic() > deadline:
            say(f"timed out after {timeout} s; stopping the job")
            return 1
        time.sleep(poll)
    # the workers are done: the servers and the scheduler exit on their own
    end = time.monotonic() + 30
    while time.monotonic() < end and any(p.poll() is None for _, p in others):
        if stopped.signum:
            return signalled()
        time.sleep(poll)
    return 0
