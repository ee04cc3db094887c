"""The one labelling of an image folder (:func:`list_folder`): read by
:class:`~inceptionzoo.datasets.FolderSource` and packed into RecordIO by
:func:`~inceptionzoo.packing.write_recordio`, which both import it from here."""
import os

from .errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "list_folder"]

#: the extensions of the files a class folder's images are (any case)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def _hidden(name):
    return name.startswith(".")


def _kinds():
    return "/".join(e[1:].upper() for e in IMAGE_EXTENSIONS)


def list_folder(root):
    """The one labeling of an image folder, used by :class:`FolderSource` and by
    :func:`~inceptionzoo.packing.write_recordio` alike.

    Classes are the sorted names of the subfolders of ``root``; a class holds every file with
    an image extension (``IMAGE_EXTENSIONS``, any case) anywhere below its subfolder, nested
    subfolders included, in sorted path order. Hidden files and folders (names starting with
    ``.``) and files at the top level are not data; symbolic links are followed (each real
    folder once, so a link loop ends).

    Parameters
    ----------
    root : str
        The folder.

    Returns
    -------
    (list of str, list of (str, int))
        Class names (index = label) and ``(path, label)`` of every image.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder (expected one subfolder of images per class)")
    classes = sorted(d for d in os.listdir(root)
                     if not _hidden(d) and os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise DataError(f"{root}: no class subfolders (expected one subfolder of "
                        f"{_kinds()} images per class)")
    items = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        seen, files = set(), []
        for path, dirs, names in os.walk(folder, followlinks=True):
            real = os.path.realpath(path)
            if real in seen:  # a link back up the tree
                dirs[:] = []
                continue
            seen.add(real)
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            files += [os.path.join(path, f) for f in sorted(names)
                      if not _hidden(f) and f.lower().endswith(IMAGE_EXTENSIONS)
                      and os.path.isfile(os.path.join(path, f))]
        if not files:
            raise DataError(f"{folder}: empty class folder (expected at least one "
                            f"{_kinds()} image)")
        items += [(f, label) for f in files]
    return classes, items
