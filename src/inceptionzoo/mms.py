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

:class:`ModelServer` is the server process itself (:mod:`inceptionzoo.model_server`; the tests
start MMS through it too).
"""
import importlib.util
import io
import os
import shutil
import sys
import tempfile
import time
import zipfile

from ._io import atomic_path, ensure_writable_dir, parse_json
from ._checks import check_count, is_integer
from ._errors import install_hint
from .errors import InceptionZooError
from .mar import write_mar
from .hostfiles import check_port
from .model_server import (JAVA_HINT, MAX_PORT, ModelServer, find_java,  # noqa: F401
                           free_port, request)
from .process_guard import StopSignals, signal_name
from .serving_core import META_SUFFIX, export_name, read_export

__all__ = ["serve", "ModelServer", "recorded_batching", "free_port", "request", "find_java",
           "MAX_PORT", "DEFAULT_BATCHING"]

#: MMS's own defaults, used when the export records no batching and no flag is given.
DEFAULT_BATCHING = {"batch_size": 1, "max_batch_delay_ms": 100}

#: The largest ``NAME-meta.json`` read from inside an export's ``.mar`` (ImageNet's 1000 labels
#: take about 30 kB).
META_MAX_BYTES = 1 << 20

#: What to install when MMS is missing.
EXTRA_HINT = install_hint("serve")


def _require_mms():
    if importlib.util.find_spec("mms") is None:
        raise InceptionZooError(f"MXNet Model Server (multi-model-server) is not installed: "
                                f"{EXTRA_HINT}")


def _check_ports(port, management_port, host="127.0.0.1"):
    for name, value in (("--port", port), ("--management-port", management_port)):
        if is_integer(value) and value > MAX_PORT:
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
    write_mar(paths, base, target, overwrite=True)
    return True


def _probe_image():
    """A small PNG any export takes (the handler resizes and crops it)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return buf.getvalue()


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
            raise ModelServer.Failed(f"{name} did not answer a test image ({err}); see "
                                f"{server.logs}") from None
        if code != 200:
            raise ModelServer.Failed(f"{name} answered a test image with HTTP {code}: "
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
    except ModelServer.Failed as err:
        print(f"inceptionzoo serve: error: {err}", file=sys.stderr, flush=True)
        return 1
