"""Writing files so that nothing is lost: a temporary name in the target folder, then an atomic
rename into place."""
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile

__all__ = ["atomic_path", "dump_json", "ensure_writable_dir", "folder_lock", "sha1_file",
           "umask_mode", "write_json"]


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
