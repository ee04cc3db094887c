"""Small data sets written for the tests and the benchmarks (not installed with the package):
MNIST digits as an image folder, the first digits of MNIST as IDX files.

The benchmarks import it as a sibling module; the tests find it through ``tests/conftest.py``,
which puts ``benchmarks/`` on the path."""
import os

import numpy as np

from inceptionzoo.mnist import MNIST_FILES, load_mnist, write_idx


def write_image_folder(root, images, labels, per_class=None, classes=None):
    """Write uint8 images as PNG files, one subfolder per class (the layout
    :class:`inceptionzoo.datasets.FolderSource` reads), e.g. MNIST digits as your-own-images
    data.

    Parameters
    ----------
    root : str
        The folder (created).
    images : numpy.ndarray
        uint8 ``(N, H, W)`` or ``(N, H, W, 3)``.
    labels : numpy.ndarray
        ``(N,)`` integer labels; the subfolder is the label's number.
    per_class : int, optional
        At most this many images of each class (the first ones).
    classes : iterable of int, optional
        Only these labels (default: every label present).

    Returns
    -------
    str
        ``root``.
    """
    from PIL import Image

    for c in (sorted(set(int(v) for v in labels)) if classes is None else classes):
        folder = os.path.join(root, str(c))
        os.makedirs(folder, exist_ok=True)
        for i in np.flatnonzero(labels == c)[:per_class]:
            Image.fromarray(images[i]).save(os.path.join(folder, f"{i}.png"))
    return root


def write_mnist_subset(folder, mnist_dir, n_train, n_test, gzip_labels=False):
    """The first ``n_train`` training and ``n_test`` test MNIST digits of ``mnist_dir`` as
    the four IDX files in ``folder``.

    Parameters
    ----------
    folder : str
        Output folder (created).
    mnist_dir : str
        Folder of the full MNIST IDX files.
    n_train, n_test : int
        How many images of each split.
    gzip_labels : bool, default False
        Write the label files gzipped (``.gz``), as MNIST is often downloaded.

    Returns
    -------
    str
        ``folder``.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    for t, n in ((True, n_train), (False, n_test)):
        x, y = load_mnist(mnist_dir, train=t, download=False)
        write_idx(os.path.join(folder, MNIST_FILES[t][0]), x[:n])
        write_idx(os.path.join(folder, MNIST_FILES[t][1]) + (".gz" if gzip_labels else ""),
                  y[:n])
    return folder
