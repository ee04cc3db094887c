"""One MXNet Model Server process (multi-model-server 1.1) and talking to it: :class:`ModelServer`
(started in a process group of its own on loopback, its management API, stopped as a whole),
:func:`request` (one HTTP request), :func:`free_port` (a port MMS takes), :func:`find_java`.
:func:`inceptionzoo.mms.serve` runs it for ``inceptionzoo serve``; the tests start MMS through
it too.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from ._io import atomic_path, parse_json
from .errors import InceptionZooError
from .process_guard import GRACE, live_members, stop_group

__all__ = ["ModelServer", "free_port", "request", "find_java", "MAX_PORT",
           "JAVA_HINT", "wait_ports_free"]

#: MMS 1.1.11 refuses ports of 32767 and above ("Invalid port number").
MAX_PORT = 32766

#: What to install when ``java`` is missing (MMS needs Java 8 or newer).
JAVA_HINT = "install a Java 8+ runtime, e.g. Debian's openjdk-17-jre-headless"


def free_port(avoid=()):
    """A TCP port free on 127.0.0.1 now, in 20000..32000 (below :data:`MAX_PORT`).

    Parameters
    ----------
    avoid : collection of int
        Ports not to return (another one picked for the same server).

    Returns
    -------
    int
    """
    import random

    ports = list(range(20000, 32001))
    random.SystemRandom().shuffle(ports)
    for port in ports:
        if port in avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free TCP port on 127.0.0.1 in 20000..32000")


def request(url, data=None, method=None, timeout=60, content_type="image/png"):
    """``(status, body)`` of one HTTP request; an HTTP error status is returned, not raised.

    Parameters
    ----------
    url : str
    data : bytes, optional
        The request body.
    method : str, optional
        ``'POST'``, ``'GET'`` ... (default: POST with a body, else GET).
    timeout : float
        Seconds.
    content_type : str
        The body's ``Content-Type``.

    Returns
    -------
    (int, bytes)
    """
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def find_java():
    """The ``java`` that MMS's launcher runs: ``$JAVA_HOME/bin/java`` if ``JAVA_HOME`` is set,
    else the first on ``PATH``.

    Returns
    -------
    str

    Raises
    ------
    InceptionZooError
        No such Java, naming what to install.
    """
    home = os.environ.get("JAVA_HOME")
    if home:
        java = os.path.join(home, "bin", "java")
        if os.path.isfile(java) and os.access(java, os.X_OK):
            return java
        raise InceptionZooError(f"MXNet Model Server runs $JAVA_HOME/bin/java and {java} is not "
                                f"an executable: set JAVA_HOME to a Java runtime, or "
                                f"{JAVA_HINT}")
    java = shutil.which("java")
    if java is None:
        raise InceptionZooError(f"MXNet Model Server needs Java and there is no java on PATH: "
                                f"{JAVA_HINT}")
    return java


class _ServerFailed(Exception):
    """MMS stopped or did not load the model (not bad input: :func:`serve` returns 1)."""


class ModelServer:
    """One ``multi-model-server --start --foreground`` in a process group of its own, on
    loopback, its pid file and worker sockets in a private temporary folder (so that servers
    do not meet), its logs in ``STORE/logs``.

    Parameters
    ----------
    store : str
        The model store folder (holds ``config.properties``).
    port, management_port : int
        Inference and management API ports on 127.0.0.1.
    workers : int
        Workers per model loaded at start-up (``default_workers_per_model``).
    models : list of str, optional
        ``NAME=FILE.mar`` to load at start-up (MMS's ``--models``).
    """

    #: what :meth:`start`, :meth:`wait_up` and :meth:`wait_ready` raise when MMS stopped or
    #: did not load the model (not bad input)
    Failed = _ServerFailed

    def __init__(self, store, port, management_port, workers=1, models=()):
        self.store, self.models = os.path.abspath(store), list(models)
        self.config = os.path.join(self.store, "config.properties")
        self.workers = workers
        self.api = f"http://127.0.0.1:{port}"
        self.mgmt = f"http://127.0.0.1:{management_port}"
        self.ports = (port, management_port)
        self.proc, self._runtime = None, None
        self.logs = os.path.join(self.store, "logs")
        self.log_file = os.path.join(self.logs, "mms-stdout.log")

    def start(self):
        """Write ``STORE/config.properties`` and start the server (returns at once; see
        :meth:`wait_up`)."""
        os.makedirs(self.logs, exist_ok=True)
        with atomic_path(self.config) as tmp:
            with open(tmp, "w") as f:
                f.write(f"# written by inceptionzoo serve\n"
                        f"inference_address={self.api}\nmanagement_address={self.mgmt}\n"
                        f"model_store={self.store}\n"
                        f"default_workers_per_model={self.workers}\n")
        self._runtime = tempfile.mkdtemp(prefix="inceptionzoo-mms-")
        env = dict(os.environ, TMPDIR=self._runtime, TEMP=self._runtime, LOG_LOCATION=self.logs,
                   METRICS_LOCATION=self.logs)
        argv = [sys.executable, "-m", "mms.model_server", "--start", "--foreground",
                "--mms-config", self.config, "--model-store", self.store]
        if self.models:
            argv += ["--models"] + self.models
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.store, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def log_tail(self, chars=2000):
        """The end of the server's console output."""
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""

    def _alive(self):
        if self.proc.poll() is not None:
            raise _ServerFailed(f"MXNet Model Server exited with status {self.proc.returncode}; "
                                f"its logs are in {self.logs}:\n{self.log_tail()}")

    def _poll(self, check, deadline, stopped, late):
        """Call ``check()`` every 0.5 s until it is true (True), ``stopped()`` (False), the
        server ends or ``deadline`` passes (:class:`_ServerFailed` with ``late``)."""
        while not stopped():
            self._alive()
            try:
                if check():
                    return True
            except (OSError, ValueError):  # not up yet, or an answer that is not JSON yet
                pass
            if time.monotonic() > deadline:
                raise _ServerFailed(f"{late}; see the logs in {self.logs}")
            time.sleep(0.5)
        return False

    def wait_up(self, deadline, stopped=lambda: False):
        """Wait until the management API answers; False if ``stopped()`` first."""
        return self._poll(lambda: request(f"{self.mgmt}/models", timeout=5)[0] == 200,
                          deadline, stopped, f"MXNet Model Server did not answer on {self.mgmt} "
                          "in time")

    def register(self, name, mar, batch_size, max_batch_delay, workers):
        """Register ``mar`` of the store as ``name`` (asynchronous: see :meth:`wait_ready`)."""
        query = urllib.parse.urlencode({
            "url": mar, "model_name": name, "batch_size": batch_size,
            "max_batch_delay": max_batch_delay, "initial_workers": workers,
            "synchronous": "false"})
        code, body = request(f"{self.mgmt}/models?{query}", data=b"", method="POST", timeout=60)
        if code not in (200, 202):
            raise _ServerFailed(f"MXNet Model Server refused to register {mar} (HTTP {code}: "
                                f"{body.decode(errors='replace')[:500]}); logs in {self.logs}")

    def wait_ready(self, name, deadline, workers=1, stopped=lambda: False):
        """Wait until ``name`` has ``workers`` READY workers; False if ``stopped()`` first."""
        def ready():
            code, body = request(f"{self.mgmt}/models/{name}", timeout=5)
            found = parse_json(body, "MMS's answer").get("workers", []) if code == 200 else []
            return len(found) >= workers and all(w.get("status") == "READY" for w in found)

        return self._poll(ready, deadline, stopped,
                          f"MXNet Model Server did not load {name} in time")

    def predict(self, name, body, content_type="image/png", timeout=60):
        """``(status, body)`` of ``POST /predictions/NAME``."""
        return request(f"{self.api}/predictions/{name}", data=body, method="POST",
                       timeout=timeout, content_type=content_type)

    def stop(self, grace=GRACE):
        """Stop the server's whole process group (SIGTERM, SIGKILL after ``grace`` s) and wait
        until its ports are free; idempotent."""
        if self.proc is not None and self.proc.returncode is None:
            stop_group(self.proc.pid, grace)  # the leader is not reaped yet: its group id
            self.proc.wait()
            end = time.monotonic() + grace
            while live_members(self.proc.pid) and time.monotonic() < end:
                time.sleep(0.05)
        if self.proc is not None:
            wait_ports_free(self.ports, grace)
        if self._runtime:
            shutil.rmtree(self._runtime, ignore_errors=True)
            self._runtime = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def port_free(port):
    """Whether 127.0.0.1 can listen on ``port`` now.

    Parameters
    ----------
    port : int

    Returns
    -------
    bool
    """
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_ports_free(ports, seconds):
    """Wait until every port of ``ports`` is free, at most ``seconds``.

    Parameters
    ----------
    ports : iterable of int
    seconds : float
    """
    end = time.monotonic() + seconds
    while not all(port_free(p) for p in ports) and time.monotonic() < end:
        time.sleep(0.1)
