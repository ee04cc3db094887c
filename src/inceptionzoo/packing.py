"""Packing an image folder into RecordIO (``PREFIX.rec`` + ``.idx``) with MXNet's ``im2rec.py``,
labelled as :func:`inceptionzoo.datasets.list_folder` labels the folder, and checked as
:class:`~inceptionzoo.datasets.RecordSource` reads it."""
import os
import shutil
import subprocess
import sys
import tempfile

from ._errors import install_hint
from ._io import ensure_writable_dir
from .datasets import _verify_image, list_folder, scan_recordio
from .errors import DataError, InceptionZooError

__all__ = ["write_recordio", "im2rec_path", "RECORDIO_EXTRA"]


def im2rec_path():
    """``tools/im2rec.py`` inside the installed mxnet package.

    Returns
    -------
    str
    """
    import mxnet

    path = os.path.join(os.path.dirname(mxnet.__file__), "tools", "im2rec.py")
    if not os.path.isfile(path):
        raise OSError(f"MXNet's im2rec.py is not at {path}")
    return path


#: the extra that brings OpenCV, which MXNet's im2rec.py imports
RECORDIO_EXTRA = "recordio"


def _require_cv2(python):
    """Refuse, before im2rec runs, an interpreter that cannot import OpenCV (``cv2``)."""
    run = subprocess.run([python, "-c", "import cv2"], capture_output=True, text=True)
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["import cv2 failed"])[-1]
        raise ModuleNotFoundError(
            f"packing RecordIO runs MXNet's im2rec.py, which needs OpenCV (cv2), and {python} "
            f"cannot import it ({last}): {install_hint(RECORDIO_EXTRA)} (opencv-python)",
            name="cv2")


def write_recordio(folder, prefix, threads=1, quality=95, python=None):
    """Pack an image folder into ``PREFIX.rec`` + ``PREFIX.idx`` (and its list ``PREFIX.lst``)
    with MXNet's ``im2rec.py``.

    The list is made here from :func:`list_folder`, the labeling :class:`FolderSource` reads,
    and im2rec only packs it: both sources give the same class numbers for the same folder.
    Every image is checked first (:func:`check_image`; a file that is not a readable PNG/JPEG
    is an error naming it), images are stored as they are (``--pass-through``), so both
    sources decode the same bytes, and the packed file is checked (:func:`scan_recordio`)
    before it replaces ``PREFIX.*``. im2rec needs OpenCV: the ``recordio`` extra.

    Parameters
    ----------
    folder : str
        Image folder, one subfolder per class.
    prefix : str
        Output path without extension.
    threads : int
        im2rec's ``--num-thread``.
    quality : int
        Unused with pass-through; kept for im2rec's command line.
    python : str, optional
        Interpreter that runs im2rec (default: this one).

    Returns
    -------
    str
        The ``.rec`` path.
    """
    folder = os.path.abspath(os.fspath(folder))
    classes, items = list_folder(folder)
    prefix = os.path.abspath(os.fspath(prefix))
    if os.path.isdir(prefix):
        raise InceptionZooError(f"RecordIO prefix {prefix} is a folder: expected a file path "
                                "without extension, e.g. DIR/train")
    for name, value in (("threads", threads), ("quality", quality)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InceptionZooError(f"{name} must be an integer >= 1; got {value!r}")
    lines = []
    for i, (path, label) in enumerate(items):
        rel = os.path.relpath(path, folder)
        if any(c in rel for c in "\t\n\r") or rel != rel.strip():
            raise DataError(f"{path}: a file name with a tab, a line break or white space at "
                            "its ends cannot go into im2rec's list: rename it")
        _verify_image(path, path)
        lines.append(f"{i}\t{label}\t{rel}\n")
    tool, py = im2rec_path(), python or sys.executable
    _require_cv2(py)
    out = ensure_writable_dir(os.path.dirname(prefix))
    work = tempfile.mkdtemp(prefix=f".{os.path.basename(prefix)}.", dir=out)
    try:
        lst = os.path.join(work, "pack.lst")  # alone in its folder: im2rec packs every
        with open(lst, "w") as f:             # PREFIX*.lst it finds beside PREFIX
            f.writelines(lines)
        run = subprocess.run([py, tool, "--pass-through", "--num-thread", str(threads),
                              "--quality", str(quality), os.path.join(work, "pack"), folder],
                             capture_output=True, text=True)
        rec, idx = os.path.join(work, "pack.rec"), os.path.join(work, "pack.idx")
        if run.returncode != 0 or not os.path.isfile(idx):
            raise OSError(f"im2rec.py failed on {folder}: "
                          f"{(run.stderr.strip() or run.stdout.strip())[-500:]}")
        labels, keys = scan_recordio(rec, idx, keys=True)
        want = {i: label for i, (_, label) in enumerate(items)}
        if dict(zip(keys.tolist(), labels.tolist())) != want:
            raise OSError(f"im2rec.py packed {len(keys)} records from {folder}, expected "
                          f"{len(items)} with the labels of its listing")
        for ext in (".rec", ".idx", ".lst"):
            os.replace(os.path.join(work, "pack" + ext), prefix + ext)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return prefix + ".rec"
