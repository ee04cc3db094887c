"""An export's folder: its names (:func:`export_prefix`, :func:`file_names`, checked to fit the
file system by :func:`check_export_name`) and publishing one generation as a whole
(:func:`publish`).

The files, the ``.mar`` and ``.onnx`` included, are written into a folder of their own,
``.NAME.export-<id>/`` (``<id>``: 8 characters of ``[a-z0-9_]``), and published in one step:
``.NAME.export`` is a symbolic link to that folder and every final name (``NAME-symbol.json``
...) is a symbolic link through it (``.NAME.export/NAME-symbol.json``). Replacing that one link
is a single atomic rename, so an overwritten export switches over as a whole. Exports into one
folder take turns (an exclusive ``flock`` on the folder while they publish).
"""
import os
import re
import shutil
import tempfile

from ._io import ensure_writable_dir, folder_lock, umask_mode
from .errors import InceptionZooError

__all__ = ["export_prefix", "export_target", "file_names", "check_export_name", "publish",
           "NAME_MAX"]

#: The longest file name, in bytes, that the file systems of Linux take (their ``NAME_MAX``):
#: every file an export writes (temporaries and generation folder included) must fit.
NAME_MAX = 255

#: Digits of the largest process id on Linux (4194304), which temporary link names carry.
_PID_DIGITS = 7
#: Length of the random part of ``tempfile``'s names (generation and temporary folders).
_RANDOM = 8


def export_prefix(folder, name):
    """``folder/name`` after checking that ``name`` is a plain file name (what ``--name``
    takes): no folder part, not absolute, not ``.`` or ``..``.

    Parameters
    ----------
    folder : str
        The output folder.
    name : str
        The export's name (file prefix).

    Returns
    -------
    str
        The prefix to pass to :func:`export`.
    """
    name = os.fspath(name)
    seps = [s for s in (os.sep, os.altsep, "/") if s]
    if not name or name in (".", "..") or any(s in name for s in seps):
        raise InceptionZooError(
            f"an export name must be a plain file name (no folder part, not '.' "
            f"or '..'); got {name!r}: put the folder in --out")
    return os.path.join(os.fspath(folder), name)


def export_target(name, prefix, overwrite):
    """``(folder, base, files)`` of an export to ``prefix``: its folder (created), the base
    name, and each role's file name; an existing export there is refused unless
    ``overwrite``.

    Parameters
    ----------
    name : str
        The model's name (the export's name when ``prefix`` is a folder, ``'deploy/'``).
    prefix : str
    overwrite : bool

    Returns
    -------
    (str, str, dict)
    """
    prefix = os.fspath(prefix)
    if prefix.endswith(tuple(s for s in (os.sep, os.altsep) if s)):  # a folder: 'deploy/'
        prefix = os.path.join(prefix, name)
    prefix = os.path.abspath(prefix)
    base = os.path.basename(prefix)
    check_export_name(base)  # before the folder is created
    folder = ensure_writable_dir(os.path.dirname(prefix))
    files = file_names(base)
    if not overwrite:
        _refuse_existing(folder, base, files)
    return folder, base, files


def file_names(base):
    """Each role's file name in an export named ``base``.

    Parameters
    ----------
    base : str

    Returns
    -------
    dict
        Role (``symbol``, ``params``, ``meta``, ``signature``, ``synset``, ``onnx``, ``mar``)
        -> file name.
    """
    return {"symbol": f"{base}-symbol.json", "params": f"{base}-0000.params",
            "meta": f"{base}-meta.json", "signature": f"{base}-signature.json",
            "synset": f"{base}-synset.txt", "onnx": f"{base}.onnx", "mar": f"{base}.mar"}


def _written_names(base):
    """Every name an export of ``base`` writes into its folder or generation folder, at its
    longest: the final names (and ``NAME-tuning.json``, which ``tune`` writes beside them),
    the temporary links, folders and files on the way, the generation folder."""
    pid, rnd = "9" * _PID_DIGITS, "x" * _RANDOM
    files = file_names(base)
    final = list(files.values()) + [f"{base}-tuning.json", _link_name(base)]
    return final + [_temporary_link(n, pid) for n in final] + [
        f"{_link_name(base)}-{rnd}", f".{base}.tmp-{rnd}", f".{files['mar']}.{rnd}.tmp",
        f".{base}-tuning.json.{rnd}.tmp"]


def check_export_name(base):
    """Refuse an export name that some file of the export could not carry: control characters,
    or a length that makes a name longer than :data:`NAME_MAX` bytes.

    Parameters
    ----------
    base : str

    Raises
    ------
    InceptionZooError
    """
    bad = sorted({c for c in base if ord(c) < 32 or ord(c) == 127})
    if bad or base in ("", ".", ".."):
        raise InceptionZooError(f"an export name must be a plain file name without control "
                                f"characters (not '.' or '..'); got {base!r}")
    try:
        longest = max(_written_names(base), key=lambda n: len(os.fsencode(n)))
        size = len(os.fsencode(base))
    except UnicodeEncodeError as err:
        raise InceptionZooError(f"an export name must be encodable in the file system's "
                                f"encoding ({err.encoding}); got {base!r}") from None
    over = len(os.fsencode(longest)) - NAME_MAX
    if over > 0:
        raise InceptionZooError(
            f"an export name must be at most {size - over} bytes long (the longest file name an "
            f"export writes, {longest.replace(base, 'NAME', 1)!r}, must fit the file system's "
            f"{NAME_MAX} bytes); got {size} bytes ({base[:16]!r}...)")


#: unprefixed sidecars of earlier exports (one export per folder): removed when they link into
#: the generation of the export that replaces them
_LEGACY_NAMES = ("signature.json", "synset.txt")


def _link_name(base):
    return f".{base}.export"


def _is_generation(base, entry):
    """Whether ``entry`` (a name in the folder) is a generation folder of the export ``base``:
    exactly ``.BASE.export-`` and tempfile's 8 random characters, so that an export never takes
    another's (``.x.export-v2.export-...`` is not one of ``x``'s)."""
    return re.fullmatch(re.escape(_link_name(base)) + f"-[a-z0-9_]{{{_RANDOM}}}", entry) is not None


def _temporary_link(path, pid=None):
    """The temporary name :func:`_symlink` creates beside ``path``."""
    return f"{path}.{os.getpid() if pid is None else pid}.new"


def _refuse_existing(folder, base, files):
    names = list(files.values()) + [_link_name(base)]
    found = [os.path.join(folder, n) for n in names if os.path.lexists(os.path.join(folder, n))]
    if found:
        raise FileExistsError(f"an export exists already ({', '.join(found)}); pass "
                              "overwrite=True (--overwrite) to replace it")


def _symlink(target, path):
    """Make ``path`` a symbolic link to ``target``, replacing what is there in one rename."""
    tmp = _temporary_link(path)
    if os.path.lexists(tmp):
        os.remove(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise


def _adopt(folder, base, names):
    """Plain files under the export's final names (an export written by an older inceptionzoo,
    or its ``NAME.mar``, which was written beside the generation) become files of the current
    generation folder (a new one if there is none) with links to them, file by file, without
    changing what any final name shows, so that the switch below replaces them too."""
    real = [n for n in names if os.path.isfile(os.path.join(folder, n))
            and not os.path.islink(os.path.join(folder, n))]
    if not real:
        return
    link = os.path.join(folder, _link_name(base))
    current = os.path.isdir(link)
    gen = os.path.realpath(link) if current else \
        tempfile.mkdtemp(prefix=f"{_link_name(base)}-", dir=folder)
    for n in real:
        tmp = os.path.join(gen, _temporary_link(n))
        try:
            os.link(os.path.join(folder, n), tmp)
        except OSError:
            shutil.copy2(os.path.join(folder, n), tmp)
        os.replace(tmp, os.path.join(gen, n))
    if not current:
        _symlink(os.path.basename(gen), link)
    for n in real:
        _symlink(f"{_link_name(base)}/{n}", os.path.join(folder, n))


def publish(folder, base, tmpdir, names, stale, overwrite):
    """Move the finished files of ``tmpdir`` into place as a whole.

    ``names``: role -> file name written; ``stale``: file names of roles this export does not
    write (removed if an older export left them). The switch is the rename of the link
    ``.BASE.export`` to the new generation folder; the final names are links through it, made
    before the switch (a new one points nowhere until then). A failure before the switch
    removes what this call made, so the folder is as it was.

    Parameters
    ----------
    folder, base : str
        The export's folder and name.
    tmpdir : str
        The folder the files were written in (inside ``folder``): it becomes the generation.
    names : dict
        Role -> file name written.
    stale : list of str
        Names of roles not written.
    overwrite : bool
    """
    link = os.path.join(folder, _link_name(base))
    with folder_lock(folder):
        if not overwrite:  # checked again under the lock: of two racing exports, one wins
            _refuse_existing(folder, base, {**names, **{n: n for n in stale}})
        _adopt(folder, base, list(names.values()) + stale)
        gen = tempfile.mkdtemp(prefix=f"{_link_name(base)}-", dir=folder)
        os.rmdir(gen)
        os.rename(tmpdir, gen)
        made = []
        try:
            os.chmod(gen, umask_mode(0o777))  # mkdtemp makes 0700
            for n in names.values():
                path, target = os.path.join(folder, n), f"{_link_name(base)}/{n}"
                if not (os.path.islink(path) and os.readlink(path) == target):
                    new = not os.path.lexists(path)
                    _symlink(target, path)
                    if new:
                        made.append(path)
            _symlink(os.path.basename(gen), link)  # the switch
        except BaseException:
            for path in made:
                os.remove(path)
            shutil.rmtree(gen, ignore_errors=True)
            raise
        for n in list(stale) + list(_LEGACY_NAMES):  # now links into the new generation,
            path = os.path.join(folder, n)           # where they point nowhere
            if os.path.islink(path) and os.readlink(path).startswith(_link_name(base) + "/"):
                os.remove(path)
        for old in os.listdir(folder):  # earlier generations of this export, now unused
            if _is_generation(base, old) and old != os.path.basename(gen):
                shutil.rmtree(os.path.join(folder, old), ignore_errors=True)
