"""Files in and out: writing so that nothing is lost (a temporary name in the target folder,
then an atomic rename into place), and the one bounded reader of every JSON file the library
reads (metadata, tunings, sidecars, manifests, run records).

Standard library only: the model-server archive carries this module beside the serving core.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile

__all__ = ["atomic_path", "dump_json", "ensure_writable_dir", "folder_lock", "parse_json",
           "read_json", "read_limited", "sha1_file", "umask_mode", "write_json"]

#: the largest JSON file the library reads (its own files are kilobytes; a 1000-class sidecar
#: with names is ~40 KB)
JSON_MAX_BYTES = 16 << 20
#: the deepest nesting of arrays / objects it accepts (its own files nest 4 levels);
#: Python's parser recurses once per level and fails with RecursionError near 1,000
JSON_MAX_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def ensure_writable_dir(path):
    """Create ``path`` (and parents) if needed; raise a clear error if it cannot be written."""
    path = os.path.abspath(os.fspath(path))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the output folder {path!r}: {err.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"the output folder {path!r} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(path, overwrite=True):
    """Yield a temporary file name beside ``path``; on success rename it to ``path``.

    The temporary file is removed if the body raises, so an interrupted write never leaves a
    partial file under the final name. With ``overwrite=False`` an existing ``path`` is an error.
    """
    path = os.path.abspath(os.fspath(path))
    folder = ensure_writable_dir(os.path.dirname(path))
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists; pass overwrite=True to replace it")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, umask_mode(0o666))  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def umask_mode(mode):
    """``mode`` less the process's umask: the permissions ``open``/``mkdir`` would have given
    what ``mkstemp``/``mkdtemp`` create private (0600/0700)."""
    umask = os.umask(0)  # the only way to read it: set it, and put it back
    os.umask(umask)
    return mode & ~umask


@contextlib.contextmanager
def folder_lock(folder):
    """Exclusive ``flock`` on a folder itself, held for the body: writers that publish a set of
    files into one folder (exports, conversions) take turns."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock (also when the process dies)


def sha1_file(path, chunk=1 << 20):
    """Hex SHA-1 of a file's bytes."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def dump_json(path, obj, **kwargs):
    """Write ``obj`` to ``path`` as indented JSON ending in a newline (in place: for a file
    of a set that is published as a whole; else use :func:`write_json`)."""
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, **kwargs)
        f.write("\n")


def write_json(path, obj, **kwargs):
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        dump_json(tmp, obj, **kwargs)


def parse_json(data, source, error=ValueError, max_depth=JSON_MAX_DEPTH):
    """Parse JSON text, refusing what Python's parser would choke on.

    Parameters
    ----------
    data : bytes or str
        The JSON text.
    source : str
        What it is, for the error message (a file's path).
    error : type, default ValueError
        The exception class raised, so that each caller reports in its own terms.
    max_depth : int
        The deepest nesting of arrays and objects accepted.

    Returns
    -------
    object
        The parsed value.

    Raises
    ------
    error
        Not UTF-8, not JSON, or nested deeper than ``max_depth`` (checked before parsing: a
        ``'[' * 100000`` file would otherwise be a ``RecursionError``).

    >>> parse_json(b'{"a": [1, 2]}', "x.json")
    {'a': [1, 2]}
    >>> parse_json(b"[" * 40 + b"]" * 40, "x.json")
    Traceback (most recent call last):
    ...
    ValueError: x.json: not a JSON file of this library: nested 40 levels deep, expected at most 32
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    deepest = _nesting(data)
    if deepest > max_depth:
        raise error(f"{source}: not a JSON file of this library: nested {deepest} levels deep, "
                    f"expected at most {max_depth}")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise error(f"{source}: not a JSON file: not UTF-8 text (byte {err.start})") from None
    except ValueError as err:  # json.JSONDecodeError is one
        raise error(f"{source}: not a JSON file: {err}") from None


def _nesting(data):
    """The deepest nesting of ``data``'s arrays and objects (strings removed)."""
    depth = deepest = 0
    for m in re.finditer(rb"[\[\]{}]", _JSON_STRING.sub(b'""', data)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def read_limited(path, max_bytes, what="", error=OSError):
    """The bytes of the file ``path``, at most ``max_bytes + 1`` of them (more than
    ``max_bytes``: the caller's "too large"), read once.

    Parameters
    ----------
    path : str
    max_bytes : int
    what : str
        How the error names the file before its path (``"the hostfile "``).
    error : type
        Raised when the file cannot be read: ``cannot read WHAT'PATH': REASON``.

    Returns
    -------
    bytes
    """
    try:
        with open(path, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError as err:
        raise error(f"cannot read {what}{path!r}: {err.strerror}") from None


def read_json(path, error=ValueError, max_bytes=JSON_MAX_BYTES, max_depth=JSON_MAX_DEPTH):
    """Read a JSON file through :func:`parse_json`, after checking its size.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    error : type, default ValueError
        The exception class raised (an ``InceptionZooError`` subclass, usually).
    max_bytes : int
        The largest file accepted.
    max_depth : int
        The deepest nesting accepted.

    Returns
    -------
    object
        The parsed value.

    Raises
    ------
    error
        The file is missing, unreadable, larger than ``max_bytes``, or not bounded JSON.
    """
    path = os.fspath(path)
    data = read_limited(path, max_bytes, error=error)
    if len(data) > max_bytes:
        raise error(f"{path}: not a JSON file of this library: larger than {max_bytes} bytes")
    return parse_json(data, path, error, max_depth)
