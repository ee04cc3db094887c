"""Serving an export with MXNet Model Server (multi-model-server 1.1, the ``serve`` extra):
``inceptionzoo serve EXPORT_DIR``.

:func:`serve` checks everything it can before anything starts (the ``serve`` extra, a Java
runtime, the ports, the export), puts the export's ``.mar`` (the export's own when it is the
export's, else one built by :func:`inceptionzoo.mar.write_mar`) and a ``config.properties`` in a
model store folder of its own, starts ``multi-model-server --foreground`` in a process group of
its own, registers the model through MMS's management API with MMS's own batching parameters
(``batch_size``, ``max_batch_delay``, ``initial_workers``), sends one image and prints the
prediction URL once the model answers. SIGTERM, SIGINT (Ctrl-C) or SIGHUP stop the whole group
(the Python wrapper, the Java frontend and its Python workers; SIGKILL after a grace period)
and :func:`serve` returns once the ports are free again.

:class:`ModelServer` is the server process itself (the tests start MMS through it too).
"""
import importlib.util
import io
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
import zipfile

from ._io import atomic_path, ensure_writable_dir, parse_json
from ._checks import check_count
from ._errors import install_hint
from .errors import InceptionZooError
from .hostfiles import check_port
from .process_guard import GRACE, StopSignals, live_members, signal_name, stop_group
from .serving_core import META_SUFFIX, export_name, read_export

__all__ = ["serve", "ModelServer", "recorded_batching", "free_port", "request", "find_java",
           "MAX_PORT", "DEFAULT_BATCHING"]

#: MMS 1.1.11 refuses ports of 32767 and above ("Invalid port number").
MAX_PORT = 32766

#: MMS's own defaults, used when the export records no batching and no flag is given.
DEFAULT_BATCHING = {"batch_size": 1, "max_batch_delay_ms": 100}

#: What to install when ``java`` is missing (MMS needs Java 8 or newer).
JAVA_HINT = "install a Java 8+ runtime, e.g. Debian's openjdk-17-jre-headless"

#: The largest ``NAME-meta.json`` read from inside an export's ``.mar`` (ImageNet's 1000 labels
#: take about 30 kB).
META_MAX_BYTES = 1 << 20

#: What to install when MMS is missing.
EXTRA_HINT = install_hint("serve")


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


def _require_mms():
    if importlib.util.find_spec("mms") is None:
        raise InceptionZooError(f"MXNet Model Server (multi-model-server) is not installed: "
                                f"{EXTRA_HINT}")


def _check_ports(port, management_port, host="127.0.0.1"):
    for name, value in (("--port", port), ("--management-port", management_port)):
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_PORT:
            raise InceptionZooError(f"{name} {value}: MXNet Model Server refuses ports of "
                                    f"{MAX_PORT + 1} and above; expected 1..{MAX_PORT}")
        check_port(value, host, name, MAX_PORT)
    if port == management_port:
        raise InceptionZooError(f"--port and --management-port are both {port}: expected two "
                                "ports")


def recorded_batching(meta):
    """The batching an export records (``meta['batching']``: ``batch_size``,
    ``max_batch_delay_ms``, checked by :func:`inceptionzoo.serving_core.read_meta`), else
    :data:`DEFAULT_BATCHING` (MMS's defaults).

    Parameters
    ----------
    meta : dict
        The export's ``NAME-meta.json``, as ``read_meta`` returns it.

    Returns
    -------
    dict
        ``{"batch_size": int >= 1, "max_batch_delay_ms": int >= 0}``.
    """
    return dict(meta.get("batching") or DEFAULT_BATCHING)


def _export(export_dir, name):
    """``(meta file, meta, files by role)`` of the export in ``export_dir``: one generation,
    its params and graph checked against the SHA-1s it recorded (the serving core's reader)."""
    if not os.path.isdir(export_dir):
        raise InceptionZooError(f"{export_dir!r} is not a folder: expected the folder an "
                                "`inceptionzoo export` wrote")
    files = read_export(export_dir, name)
    meta, generation = files.meta, files.generation
    paths = {role: os.path.join(generation, meta[f"{role}_file"])
             for role in ("symbol", "params")}
    paths["meta"] = files.meta_file
    base = export_name(files.meta_file)
    for role, file in (("synset", f"{base}-synset.txt"), ("onnx", meta.get("onnx_file"))):
        if file and os.path.isfile(os.path.join(generation, file)):
            paths[role] = os.path.join(generation, file)
    return files.meta_file, meta, paths


def _archive_matches(mar, meta):
    """Whether ``mar`` is an archive of this export (same params and graph SHA-1)."""
    try:
        with zipfile.ZipFile(mar) as z:
            inner = [n for n in z.namelist() if n.endswith(META_SUFFIX) and "/" not in n]
            if len(inner) != 1 or z.getinfo(inner[0]).file_size > META_MAX_BYTES:
                return False
            theirs = parse_json(z.read(inner[0]), mar)
    except (OSError, ValueError, zipfile.BadZipFile):
        return False
    return isinstance(theirs, dict) and all(
        theirs.get(k) == meta[k] for k in ("params_sha1", "symbol_sha1"))


def _put_archive(paths, meta, base, store):
    """``STORE/BASE.mar``: the export's own ``BASE.mar`` when it archives this export (linked,
    else copied), else one written from the export's files; returns whether it was built."""
    target = os.path.join(store, f"{base}.mar")
    own = os.path.join(os.path.dirname(paths["meta"]), f"{base}.mar")
    if os.path.isfile(own) and _archive_matches(own, meta):
        with atomic_path(target) as tmp:
            os.remove(tmp)
            try:
                os.link(os.path.realpath(own), tmp)
            except OSError:
                shutil.copyfile(own, tmp)
        return False
    from .mar import write_mar

    write_mar(paths, base, target, overwrite=True)
    return True


def _probe_image():
    """A small PNG any export takes (the handler resizes and crops it)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return buf.getvalue()


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
            _wait_ports_free(self.ports, grace)
        if self._runtime:
            shutil.rmtree(self._runtime, ignore_errors=True)
            self._runtime = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait_ports_free(ports, seconds):
    end = time.monotonic() + seconds
    while not all(_port_free(p) for p in ports) and time.monotonic() < end:
        time.sleep(0.1)


def _settings(meta, batch_size, max_batch_delay, workers):
    """The batching (flags over the export's recorded one) and the worker count, checked."""
    batching = recorded_batching(meta)
    if batch_size is not None:
        batching["batch_size"] = check_count("--batch-size", batch_size)
    if max_batch_delay is not None:
        batching["max_batch_delay_ms"] = check_count("--max-batch-delay", max_batch_delay, 0)
    check_count("--workers", workers)
    return batching


def _store_folder(store):
    if store is None:
        return tempfile.mkdtemp(prefix="inceptionzoo-serve-"), True
    return ensure_writable_dir(os.path.abspath(store)), False


def serve(export_dir, name=None, port=8080, management_port=8081, batch_size=None,
          max_batch_delay=None, workers=1, store=None, timeout=600, out=None):
    """Serve an export with MXNet Model Server until SIGTERM, SIGINT or SIGHUP.

    Parameters
    ----------
    export_dir : str
        A folder ``inceptionzoo export`` wrote.
    name : str, optional
        Which export, if the folder holds several; also the MMS model name.
    port, management_port : int
        Inference and management API ports on 127.0.0.1 (1..:data:`MAX_PORT`, free).
    batch_size, max_batch_delay : int, optional
        MMS's batching: the most requests one call of the handler takes, and how long (ms)
        MMS waits to fill a batch; default: the export's recorded ``batching``, else 1 / 100.
    workers : int
        MMS worker processes (each loads the model).
    store : str, optional
        The folder for the model store, ``config.properties`` and logs (kept); default a
        temporary folder, removed at the end unless the server failed.
    timeout : float
        Seconds allowed for the server to start and load the model.
    out : file, optional
        Where the progress lines go (default ``sys.stdout``).

    Returns
    -------
    int
        0 after a stop by signal (every process of the server ended, ports free again); 1 if
        the server failed (the reason and the log folder on stderr).

    Raises
    ------
    InceptionZooError, OSError
        Before anything starts: no ``serve`` extra, no Java, a port in use or >= 32767, a
        folder that is not an export, bad batching values.
    """
    out = out or sys.stdout
    _require_mms()
    find_java()
    _check_ports(port, management_port)
    meta_file, meta, paths = _export(os.fspath(export_dir), name)
    batching = _settings(meta, batch_size, max_batch_delay, workers)
    base = export_name(meta_file)
    folder, temporary = _store_folder(store)
    code = 0  # 1: the server failed, and a temporary store is kept for its logs
    try:
        with StopSignals() as stop:  # from here on a stop signal ends the command cleanly
            built = _put_archive(paths, meta, base, folder)
            print(f"model store: {folder} ({base}.mar {'built from' if built else 'of'} the "
                  f"export; logs in {os.path.join(folder, 'logs')})", file=out, flush=True)
            server = ModelServer(folder, port, management_port, workers)
            try:
                if stop.signum is None:
                    code = _run(server, base, batching, workers, timeout, stop, out)
            finally:
                server.stop()
        if stop.signum:
            print(f"stopped by {signal_name(stop.signum)}: the server and its workers ended, "
                  f"ports {port} and {management_port} free", file=out, flush=True)
        return code
    finally:
        if temporary and code != 1:
            shutil.rmtree(folder, ignore_errors=True)


def _run(server, name, batching, workers, timeout, stop, out):
    """Start, register, probe, announce, then wait for a stop signal or the server's end."""
    stopped = lambda: stop.signum is not None  # noqa: E731
    try:
        server.start()
        deadline = time.monotonic() + timeout
        if not server.wait_up(deadline, stopped):
            return 0
        server.register(name, f"{name}.mar", batching["batch_size"],
                        batching["max_batch_delay_ms"], workers)
        if not server.wait_ready(name, deadline, workers, stopped):
            return 0
        try:
            code, body = server.predict(name, _probe_image(),
                                        timeout=max(deadline - time.monotonic(), 10))
        except OSError as err:
            raise _ServerFailed(f"{name} did not answer a test image ({err}); see "
                                f"{server.logs}") from None
        if code != 200:
            raise _ServerFailed(f"{name} answered a test image with HTTP {code}: "
                                f"{body.decode(errors='replace')[:500]}; see {server.logs}")
        print(f"serving {name} (batch size {batching['batch_size']}, max batch delay "
              f"{batching['max_batch_delay_ms']} ms, {workers} worker{'s' * (workers > 1)}); "
              f"stop with Ctrl-C or SIGTERM", file=out)
        print(f"predictions: {server.api}/predictions/{name}", file=out)
        print(f"management: {server.mgmt}/models/{name}", file=out, flush=True)
        while not stopped():
            server._alive()
            time.sleep(0.2)
        return 0
    except _ServerFailed as err:
        print(f"inceptionzoo serve: error: {err}", file=sys.stderr, flush=True)
        return 1
