"""RecordIO, the one module: MXNet's ``.rec`` + ``.idx`` files checked as bytes before MXNet's
C++ reader sees them, and written by MXNet's ``tools/im2rec.py``.

- :func:`scan_recordio` parses a ``.rec`` file as dmlc's RecordIO reader does (magic, length and
  continuation flag, 4-byte padding), every length and offset checked against the file's bytes,
  and its ``.idx`` as text; every record must carry an image header with a class label and an
  image the training pipelines accept (:func:`check_image`): ``ImageRecordIter`` ends the
  process on an image it cannot decode. This is a security boundary: a ``.rec`` is untrusted.
- :func:`write_records` packs a listing of ``(path, label)`` with im2rec (``--pass-through``: the
  bytes stored as they are) and checks the result with :func:`scan_recordio` before it replaces
  ``PREFIX.*``; :func:`inceptionzoo.packing.write_recordio` gives it an image folder's listing.

Training images are PNG or JPEG only (:data:`IMAGE_FORMATS`): what both PIL (image folders) and
MXNet's OpenCV decoder (RecordIO) read the same. The acceptance policy itself (formats, size,
the decompression-bomb limit, modes) is :func:`inceptionzoo.imaging.check_image`.
"""
import mmap
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

from ._checks import check_count
from . import imaging
from ._errors import install_hint
from ._io import ensure_writable_dir
from .errors import DataError, InceptionZooError

__all__ = ["IMAGE_FORMATS", "MAX_CLASSES", "RECORDIO_EXTRA", "check_image", "verify_image",
           "scan_recordio", "listed_classes", "write_records", "im2rec_path"]

#: what both pipelines decode (PIL's format names); anything else is refused, naming the file
IMAGE_FORMATS = ("PNG", "JPEG")
#: the largest class count a RecordIO label may imply (a label is a class index)
MAX_CLASSES = 100_000


def check_image(im, where):
    """Refuse a PIL image (opened, not yet decoded) that the pipelines must not decode: the one
    policy (:func:`inceptionzoo.imaging.check_image`) with :data:`IMAGE_FORMATS`.

    Parameters
    ----------
    im : PIL.Image.Image
        The image, as ``Image.open`` returns it.
    where : str
        The file (or record) for the message.

    Raises
    ------
    DataError
        Not PNG/JPEG, an empty size, more pixels than PIL's decompression-bomb limit
        (``PIL.Image.MAX_IMAGE_PIXELS``), or floating-point samples.
    """
    try:
        imaging.check_image(im, where, IMAGE_FORMATS)
    except imaging.ImageError as err:
        raise DataError(str(err)) from None


def verify_image(source, where):
    """Accept a training image (a path or encoded bytes) without decoding its pixels:
    :func:`inceptionzoo.imaging.verify_image` with :data:`IMAGE_FORMATS` (PNG chunks are
    verified to their end), refusing with a :class:`DataError` naming ``where``.

    Parameters
    ----------
    source : str or bytes
        The image file, or its encoded bytes.
    where : str
        How the error names it (the path, or the record).
    """
    try:
        imaging.verify_image(source, where, IMAGE_FORMATS)
    except imaging.ImageError as err:
        raise DataError(str(err)) from None


_REC_MAGIC = 0xCED7230A
_IR_FORMAT = "<IfQQ"  # MXNet's IRHeader: flag, label, id, id2


def _read_index(idx):
    """``{offset: key}`` of a ``.idx`` file (``KEY<tab>OFFSET`` lines), checked as text."""
    try:
        with open(idx, "rb") as f:
            text = f.read().decode("ascii")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{idx}: not a readable RecordIO index ({err})") from None
    offsets, keys = {}, set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise DataError(f"{idx}: line {n} is {line[:60]!r}; expected KEY<tab>OFFSET, two "
                            "integers >= 0 (as im2rec writes)")
        key, offset = int(parts[0]), int(parts[1])
        if key in keys or offset in offsets:
            raise DataError(f"{idx}: line {n}: key {key} or offset {offset} appears twice")
        keys.add(key)
        offsets[offset] = key
    return offsets


def _records(rec):
    """``(offset, payload)`` of every record of a ``.rec`` file, parsed as dmlc's RecordIO
    reader does (magic, length and continuation flag, 4-byte padding), every length checked
    against the file's size."""
    try:
        with open(rec, "rb") as f:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) \
                if os.fstat(f.fileno()).st_size else b""
    except (OSError, ValueError) as err:
        raise DataError(f"{rec}: cannot read the RecordIO file ({err})") from None
    pos, start, parts = 0, None, []
    try:
        while pos < len(data):
            if pos + 8 > len(data):
                raise DataError(f"{rec}: truncated: {len(data) - pos} byte(s) at offset {pos}, "
                                "expected a record header of 8")
            magic, lrec = struct.unpack_from("<II", data, pos)
            if magic != _REC_MAGIC:
                raise DataError(f"{rec}: no record at offset {pos} (magic {magic:#010x}, "
                                f"expected {_REC_MAGIC:#010x}): not a RecordIO file, or the "
                                "index and the file disagree")
            flag, length = lrec >> 29, lrec & ((1 << 29) - 1)
            body, end = pos + 8, pos + 8 + ((length + 3) & ~3)
            if end > len(data):
                raise DataError(f"{rec}: truncated: the record at offset {pos} claims {length} "
                                f"bytes, the file ends {len(data) - body} bytes later")
            if (flag in (0, 1)) != (start is None) or flag > 3:
                raise DataError(f"{rec}: record at offset {pos}: continuation flag {flag} out "
                                "of sequence (a corrupt file)")
            if start is None:
                start, parts = pos, []
            parts.append(data[body:body + length])
            pos = end
            if flag in (0, 3):
                yield start, struct.pack("<I", _REC_MAGIC).join(parts)
                start = None
        if start is not None:
            raise DataError(f"{rec}: truncated: the record at offset {start} has no last part")
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _record_label_and_image(payload, where):
    """The class index and the image bytes of one record, or a DataError."""
    size = struct.calcsize(_IR_FORMAT)
    if len(payload) < size:
        raise DataError(f"{where}: {len(payload)} bytes; expected an image record header of "
                        f"{size}")
    flag, label, _, _ = struct.unpack_from(_IR_FORMAT, payload)
    if flag > 0:  # a label vector of `flag` floats follows; the first is the class
        if size + 4 * flag > len(payload):
            raise DataError(f"{where}: the header claims {flag} labels ({4 * flag} bytes), "
                            f"the record has {len(payload) - size}")
        label = struct.unpack_from("<f", payload, size)[0]
        size += 4 * flag
    if not (np.isfinite(label) and label == int(label) and 0 <= label < MAX_CLASSES):
        raise DataError(f"{where}: label {label}; expected a class index, an integer in "
                        f"0..{MAX_CLASSES - 1}")
    return int(label), payload[size:]


def scan_recordio(rec, idx, keys=False):
    """Check a RecordIO file and its index before MXNet's C++ reader sees them; return the
    label of every record.

    The index must list exactly the records of the file; every record must carry an image
    header with a class label and PNG/JPEG bytes that PIL can open (:func:`check_image`; PNG
    chunks are verified to their end), since ``ImageRecordIter`` ends the process on an image
    it cannot decode.

    Parameters
    ----------
    rec : str
        The ``.rec`` file.
    idx : str
        Its ``.idx`` file.
    keys : bool
        Also return the records' keys.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        int64 labels in file order (and, with ``keys``, the key of each record).
    """
    offsets = _read_index(idx)
    labels, found = [], []
    for offset, payload in _records(rec):
        where = f"{rec}: record at offset {offset}"
        if offset not in offsets:
            raise DataError(f"{where} is missing from the index {idx}: expected an index of "
                            "this file (pack both with write_recordio)")
        key = offsets.pop(offset)
        where = f"{rec}: record {key} (offset {offset})"
        label, image = _record_label_and_image(payload, where)
        verify_image(image, where)
        labels.append(label)
        found.append(key)
    if offsets:
        off, key = min(offsets.items())
        raise DataError(f"{idx}: key {key} points to offset {off}, where {rec} has no record "
                        f"(it has {len(labels)} records): the index does not belong to this "
                        "file, or the file is truncated")
    labels = np.asarray(labels, dtype=np.int64)
    return (labels, np.asarray(found, dtype=np.int64)) if keys else labels


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


#: a RecordIO list larger than this is not read for class names
MAX_LST_BYTES = 64 << 20


def listed_classes(rec, n):
    """The class names of a ``.rec`` from the im2rec list beside it (``PREFIX.lst``, which
    :func:`~inceptionzoo.packing.write_recordio` and im2rec write: ``index, label, CLASS/...``
    per line): label ``i`` is named by the folder its images came from. None when there is no
    such list, or it does not name each of the ``n`` labels by one folder (the labels are then
    their numbers).

    Parameters
    ----------
    rec : str
        The ``.rec`` file.
    n : int
        The number of classes its records hold.

    Returns
    -------
    list of str or None
    """
    lst = os.path.splitext(rec)[0] + ".lst"
    if not os.path.isfile(lst) or os.path.getsize(lst) > MAX_LST_BYTES:
        return None
    names = {}
    with open(lst, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3:
                return None
            try:
                label = float(fields[1])
            except ValueError:
                return None
            folder = fields[-1].replace("\\", "/").split("/")[0]
            if not label.is_integer() or "/" not in fields[-1].replace("\\", "/") or \
                    names.setdefault(int(label), folder) != folder:
                return None
    if sorted(names) != list(range(n)) or len(set(names.values())) != n:
        return None
    return [names[i] for i in range(n)]


def _require_cv2(python):
    """Refuse, before im2rec runs, an interpreter that cannot import OpenCV (``cv2``)."""
    run = subprocess.run([python, "-c", "import cv2"], capture_output=True, text=True)
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["import cv2 failed"])[-1]
        raise ModuleNotFoundError(
            f"packing RecordIO runs MXNet's im2rec.py, which needs OpenCV (cv2), and {python} "
            f"cannot import it ({last}): {install_hint(RECORDIO_EXTRA)} (opencv-python)",
            name="cv2")


def write_records(items, folder, prefix, threads=1, quality=95, python=None):
    """Pack ``(path, label)`` images below ``folder`` into ``PREFIX.rec`` + ``PREFIX.idx`` (and
    the list ``PREFIX.lst``) with MXNet's ``im2rec.py``.

    Every image is checked first (:func:`verify_image`), images are stored as they are
    (``--pass-through``), and the packed file is checked (:func:`scan_recordio`) before it
    replaces ``PREFIX.*``. im2rec needs OpenCV: the ``recordio`` extra.

    Parameters
    ----------
    items : list of (str, int)
        Image paths (below ``folder``) and their labels, key = position.
    folder : str
        The root the list's paths are relative to.
    prefix : str
        Output path without extension.
    threads, quality : int
        im2rec's ``--num-thread`` and ``--quality`` (unused with pass-through).
    python : str, optional
        Interpreter that runs im2rec (default: this one).

    Returns
    -------
    str
        The ``.rec`` path.
    """
    prefix = os.path.abspath(os.fspath(prefix))
    if os.path.isdir(prefix):
        raise InceptionZooError(f"RecordIO prefix {prefix} is a folder: expected a file path "
                                "without extension, e.g. DIR/train")
    threads, quality = check_count("threads", threads), check_count("quality", quality)
    lines = []
    for i, (path, label) in enumerate(items):
        rel = os.path.relpath(path, folder)
        if any(c in rel for c in "\t\n\r") or rel != rel.strip():
            raise DataError(f"{path}: a file name with a tab, a line break or white space at "
                            "its ends cannot go into im2rec's list: rename it")
        verify_image(path, path)
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
