"""Packing an image folder into RecordIO (``PREFIX.rec`` + ``.idx``) with MXNet's ``im2rec.py``,
labelled as :func:`inceptionzoo.datasets.list_folder` labels the folder, and checked as
:class:`~inceptionzoo.datasets.RecordSource` reads it (the RecordIO side of both is
:mod:`inceptionzoo.recordio`)."""
import os

from ._checks import check_count
from .image_folders import list_folder
from .recordio import RECORDIO_EXTRA, im2rec_path, write_records

__all__ = ["write_recordio", "im2rec_path", "RECORDIO_EXTRA"]


def write_recordio(folder, prefix, threads=1, quality=95, python=None):
    """Pack an image folder into ``PREFIX.rec`` + ``PREFIX.idx`` (and its list ``PREFIX.lst``)
    with MXNet's ``im2rec.py``.

    The list is made here from :func:`list_folder`, the labeling :class:`FolderSource` reads,
    and im2rec only packs it: both sources give the same class numbers for the same folder.
    Every image is checked first (:func:`inceptionzoo.recordio.verify_image`; a file that is
    not a readable PNG/JPEG is an error naming it), images are stored as they are
    (``--pass-through``), so both sources decode the same bytes, and the packed file is checked
    (:func:`~inceptionzoo.recordio.scan_recordio`) before it replaces ``PREFIX.*``: the writer
    is :func:`inceptionzoo.recordio.write_records`. im2rec needs OpenCV: the ``recordio``
    extra.

    Parameters
    ----------
    folder : str
        Image folder, one subfolder per class.
    prefix, threads, quality, python
        As :func:`inceptionzoo.recordio.write_records` takes them.

    Returns
    -------
    str
        The ``.rec`` path.
    """
    check_count("threads", threads), check_count("quality", quality)  # before the folder is read
    folder = os.path.abspath(os.fspath(folder))
    _, items = list_folder(folder)
    return write_records(items, folder, prefix, threads=threads, quality=quality, python=python)
