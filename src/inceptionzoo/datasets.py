"""Training and validation data for any registered network: MNIST IDX files, image folders and
RecordIO files, transformed as the network's metadata (``net.info``) says.

Three kinds of source, found by :func:`open_sources`:

- **MNIST IDX** (the four files of :mod:`inceptionzoo.mnist`), held in memory;
- **an image folder**: one subfolder per class with PNG/JPEG files (classes in sorted folder
  order, see :func:`list_folder`), decoded by PIL and transformed by ``mx.image`` in a thread
  pool;
- **RecordIO**: ``NAME.rec`` + ``NAME.idx`` packed by MXNet's ``tools/im2rec.py`` from the same
  listing (see :func:`inceptionzoo.packing.write_recordio`), read by ``mx.io.ImageRecordIter``,
  MXNet's C++ pipeline with its own decoding threads and augmentation. Every record is checked
  when the file is opened (:func:`scan_recordio`): the C++ decoder crashes the process on bytes
  it cannot decode.

A file that is not a readable PNG/JPEG image stops the run with a :class:`DataError` naming it
(nothing is skipped silently).

The transform is the weights' evaluation transform of ``net.info``
(:meth:`inceptionzoo.imaging.EvalTransform.from_info`: input size and channels, per-channel
``mean``/``std`` on pixels scaled to [0, 1], ``resize_size`` or ``crop_pct``, ``interpolation``),
the one the Predictor and the MMS handler apply: validation images of a folder are resized with
PIL so that the shorter side is ``resize_size`` and centre-cropped. Training images of a
3-channel network get the augmentation derived from the same spec
(:meth:`~inceptionzoo.imaging.EvalTransform.augment`: random resized crop with scale 0.08..1
and aspect ratio 3/4..4/3 to the input size with the spec's interpolation, random horizontal
flip); 1-channel (MNIST-like) networks get no augmentation. RecordIO is decoded by MXNet's C++
``ImageRecordIter`` (OpenCV) with the same spec: ``resize`` = ``resize_size``, centre crop to
the input size, ``inter_method`` from the interpolation (the same geometry; OpenCV's resampling
differs from PIL's by a few grey levels).

Every source yields the *local part of each global batch* for one of ``num_workers`` workers
(:meth:`Source.epoch`): MNIST and image folders cut the same shuffled global batch on every
worker and hand worker ``rank`` its slice, so the sum of the gradients over the workers is the
gradient of the global batch whatever the number of workers. RecordIO is read as
``ImageRecordIter`` shards (``part_index``/``num_parts``), each worker with its part of the
file, as MXNet and gluoncv do.
"""
import contextlib
import os

import numpy as np

from ._errors import mxnet_message
from .mnist import DataError, MNIST_FILES, load_mnist, resolve_data_dir
from .errors import InceptionZooError

__all__ = ["IMAGE_EXTENSIONS", "IMAGE_FORMATS", "MAX_CLASSES", "Batch", "Source",
           "ArraySource", "FolderSource", "RecordSource", "open_sources", "list_folder",
           "check_image", "scan_recordio"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
#: what both pipelines decode (PIL's format names); anything else is refused, naming the file
IMAGE_FORMATS = ("PNG", "JPEG")
#: the largest class count a RecordIO label may imply (a label is a class index)
MAX_CLASSES = 100_000
#: ``inter_method`` of ``ImageRecordIter`` by interpolation name (OpenCV's filters; PIL's
#: ``box`` and ``hamming`` have no OpenCV twin and map to area and bilinear)
_INTERP = {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3, "box": 3, "lanczos": 4,
           "hamming": 1}


class Batch:
    """One worker's part of a global batch.

    Attributes
    ----------
    data : mxnet.nd.NDArray
        ``(n, C, H, W)`` float32, transformed; ``n`` may be 0.
    label : mxnet.nd.NDArray
        ``(n,)`` float32 class indices.
    global_size : int
        Number of images in the global batch (all workers together): the gradient scale.
    """

    __slots__ = ("data", "label", "global_size")

    def __init__(self, data, label, global_size):
        self.data, self.label, self.global_size = data, label, global_size


class Source:
    """Base class: a split of a data set, for one network.

    Attributes
    ----------
    path : str
        Where the data comes from (for messages).
    classes : list of str
        Class names, index = label.
    """

    path = ""
    classes = ()

    def __len__(self):
        raise NotImplementedError

    @property
    def num_classes(self):
        """Number of classes of the data."""
        return len(self.classes)

    def steps(self, batch_size):
        """Global batches in one epoch."""
        return -(-len(self) // batch_size)

    def epoch(self, batch_size, rng=None, rank=0, num_workers=1):
        """Iterate over this worker's part of each global batch of one epoch.

        Parameters
        ----------
        batch_size : int
            Global batch size (all workers together).
        rng : numpy.random.RandomState, optional
            Shuffles the order (the same on every worker); None reads in order.
        rank, num_workers : int
            This worker and how many share each batch.

        Returns
        -------
        iterator of Batch
        """
        raise NotImplementedError


def _check_labels(labels, path):
    if len(labels) == 0:
        raise DataError(f"{path}: no images (expected at least one)")


class _IndexedSource(Source):
    """A source whose samples can be read by index: the global order is cut identically on
    every worker."""

    def _load(self, index):
        """``(data, label)`` NDArrays of the samples ``index`` (a non-empty int array)."""
        raise NotImplementedError

    def _parts(self, batch_size, rng, rank, num_workers):
        n = len(self)
        order = rng.permutation(n) if rng is not None else np.arange(n)
        for start in range(0, n, batch_size):
            g = order[start:start + batch_size]
            yield np.array_split(g, num_workers)[rank], len(g)

    def epoch(self, batch_size, rng=None, rank=0, num_workers=1):
        import mxnet as mx

        for part, size in self._parts(batch_size, rng, rank, num_workers):
            if len(part):
                x, y = self._load(part)
            else:
                x = mx.nd.zeros((0,) + self.shape)
                y = mx.nd.zeros((0,))
            yield Batch(x, y, size)


def _norm(info):
    mean = np.asarray(info.mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(info.std, np.float32).reshape(1, -1, 1, 1)
    return mean, std


class ArraySource(_IndexedSource):
    """Images held in memory as uint8 ``(N, H, W)``, e.g. MNIST IDX files.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 ``(N, H, W)``.
    labels : numpy.ndarray
        ``(N,)`` integer labels.
    info : ModelInfo
        The network's metadata: must take 1 channel of ``H x W``.
    path : str
        For messages.
    classes : list of str, optional
        Default: ``'0'`` ... ``'9'``.
    """

    def __init__(self, images, labels, info, path="", classes=None):
        self.images, self.labels, self.path = images, labels, path
        _check_labels(labels, path)
        self.classes = list(classes or [str(i) for i in range(10)])
        self.shape = tuple(info.input_shape)
        if self.shape != (1,) + tuple(images.shape[1:]):
            raise DataError(f"{path}: {images.shape[1]}x{images.shape[2]} grey-scale images; "
                            f"model {info.name!r} expects input (C, H, W) = {self.shape}. Use "
                            "an MNIST network, or write the images as a folder or RecordIO")
        self.mean, self.std = _norm(info)
        self.identity = not self.mean.any() and (self.std == 1).all()

    def __len__(self):
        return len(self.images)

    def _load(self, index):
        import mxnet as mx

        from .mnist import to_input

        x = to_input(self.images[index])
        if not self.identity:
            x = (x - self.mean) / self.std
        return mx.nd.array(x), mx.nd.array(self.labels[index], dtype=np.float32)


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


def check_image(im, where):
    """Refuse a PIL image (opened, not yet decoded) that the pipelines must not decode.

    Parameters
    ----------
    im : PIL.Image.Image
        The image, as ``Image.open`` returns it.
    where : str
        The file (or record) for the message.

    Raises
    ------
    DataError
        Not PNG/JPEG (:data:`IMAGE_FORMATS`), an empty size, or more pixels than PIL's
        decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    from PIL import Image

    if im.format not in IMAGE_FORMATS:
        raise DataError(f"{where}: a {im.format or 'unknown'} image; expected "
                        f"{' or '.join(IMAGE_FORMATS)}")
    w, h = im.size
    limit = Image.MAX_IMAGE_PIXELS
    if w < 1 or h < 1:
        raise DataError(f"{where}: image of size {w}x{h}; expected at least 1x1 pixels")
    if limit and w * h > limit:
        raise DataError(f"{where}: image too large to decode safely ({w}x{h} = {w * h} "
                        f"pixels; PIL's decompression-bomb limit is {limit})")


@contextlib.contextmanager
def _image_errors(where):
    """Turn any failure of PIL on one image into a DataError naming ``where``."""
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise DataError(f"{where}: image too large to decode safely ({err})") from None
    except UnidentifiedImageError:
        raise DataError(f"{where}: not a readable image (PIL cannot identify its format; "
                        f"expected {' or '.join(IMAGE_FORMATS)})") from None
    except Exception as err:  # noqa: BLE001 - any decoder failure is this image's fault
        raise DataError(f"{where}: not a readable image ({type(err).__name__}: {err})"
                        ) from None


def _verify_image(source, where):
    """Open ``source`` (a path or a file object) without decoding its pixels: check it with
    :func:`check_image` and verify a PNG's chunks to their end (a truncated PNG fails here)."""
    from PIL import Image

    with _image_errors(where), Image.open(source) as im:
        check_image(im, where)
        if im.format == "PNG":
            im.verify()


class _Decoded:
    """A Gluon dataset of (transformed image, label), decoded by PIL, that names the file it
    cannot decode."""

    def __init__(self, items, transform):
        self.items, self.transform = items, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        return self.transform(path), np.float32(label)


class _Transform:
    """Image file -> normalised CHW float32: the weights' evaluation transform
    (:class:`~inceptionzoo.imaging.EvalTransform`), or for training 3-channel networks the
    augmentation derived from it. PIL and numpy only, safe in several decoding threads."""

    def __init__(self, info, train):
        from .imaging import EvalTransform, ImageError

        try:
            self.spec = EvalTransform.from_info(info)
        except ImageError as err:
            raise DataError(f"model {info.name!r}: {err}") from None
        self.augment = train and self.spec.channels == 3

    def __call__(self, path):
        from PIL import Image

        from .imaging import ImageError, decode

        with _image_errors(path), Image.open(path) as im:
            check_image(im, path)  # PNG / JPEG below the bomb limit, as RecordIO packs them
            try:
                img = decode(im, self.spec.channels, label=path)
            except ImageError as err:  # PIL fails here, on the file, not later elsewhere
                raise DataError(str(err)) from None
        img = self.spec.augment(img) if self.augment else self.spec.crop(img)
        return self.spec.normalise(np.asarray(img)[None])[0]


class FolderSource(_IndexedSource):
    """An image folder: one subfolder per class (sorted names = labels), PNG/JPEG files.

    Parameters
    ----------
    root : str
        The folder.
    info : ModelInfo
        The network's metadata (input size and channels, mean/std, crop_pct, interpolation).
    train : bool
        Augment (3-channel networks only) or centre-crop.
    workers : int, optional
        Decoding threads (default: up to 4).
    """

    def __init__(self, root, info, train=True, workers=None):
        self.path = os.path.abspath(root)
        self.classes, self.items = list_folder(self.path)
        self.shape = tuple(info.input_shape)
        if self.shape[0] not in (1, 3):
            raise DataError(f"model {info.name!r} takes {self.shape[0]} channels: image "
                            "folders give 1 (grey) or 3 (RGB)")
        self.dataset = _Decoded(self.items, _Transform(info, train))
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)

    def __len__(self):
        return len(self.items)

    def _load(self, index):
        import mxnet as mx

        samples = [self.dataset[int(i)] for i in index]
        return mx.nd.stack(*[s[0] for s in samples]), mx.nd.array([s[1] for s in samples])

    def epoch(self, batch_size, rng=None, rank=0, num_workers=1):
        import mxnet as mx

        parts = list(self._parts(batch_size, rng, rank, num_workers))
        sampler = [p.tolist() if len(p) else [0] for p, _ in parts]  # [0]: dropped below
        loader = mx.gluon.data.DataLoader(self.dataset, batch_sampler=sampler,
                                          num_workers=self.workers, thread_pool=True)
        for (part, size), (x, y) in zip(parts, loader):
            if not len(part):
                x, y = x[:0], y[:0]
            yield Batch(x, y, size)


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
    import mmap
    import struct

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
    import struct

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
    import io

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
        _verify_image(io.BytesIO(image), where)
        labels.append(label)
        found.append(key)
    if offsets:
        off, key = min(offsets.items())
        raise DataError(f"{idx}: key {key} points to offset {off}, where {rec} has no record "
                        f"(it has {len(labels)} records): the index does not belong to this "
                        "file, or the file is truncated")
    labels = np.asarray(labels, dtype=np.int64)
    return (labels, np.asarray(found, dtype=np.int64)) if keys else labels


#: a RecordIO list larger than this is not read for class names
MAX_LST_BYTES = 64 << 20


def _listed_classes(rec, n):
    """The class names of a ``.rec`` from the im2rec list beside it (``PREFIX.lst``, which
    :func:`~inceptionzoo.packing.write_recordio` and im2rec write: ``index, label, CLASS/...``
    per line): label ``i`` is named by the folder its images came from. None when there is no
    such list, or it does not name each of the ``n`` labels by one folder (the labels are then
    their numbers)."""
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


class RecordSource(Source):
    """A RecordIO file (``.rec`` with its ``.idx``) read by ``mx.io.ImageRecordIter``.

    Parameters
    ----------
    rec : str
        The ``.rec`` file; ``.idx`` beside it (same stem) is required.
    info : ModelInfo
        The network's metadata.
    train : bool
        Shuffle and augment (3-channel networks) or read in order, centre-cropped.
    workers : int, optional
        ``preprocess_threads`` of the iterator (default: up to 4).
    seed : int
        Seed of the iterator's shuffling and augmentation.
    """

    def __init__(self, rec, info, train=True, workers=None, seed=0):
        self.path = os.path.abspath(rec)
        self.idx = os.path.splitext(self.path)[0] + ".idx"
        if not os.path.isfile(self.path):
            raise DataError(f"{self.path}: RecordIO file not found")
        if not os.path.isfile(self.idx):
            raise DataError(f"{self.path}: its index {self.idx} is missing (write both with "
                            "MXNet's tools/im2rec.py; see inceptionzoo.packing.write_recordio)")
        self.labels = scan_recordio(self.path, self.idx)
        _check_labels(self.labels, self.path)
        n = int(self.labels.max()) + 1
        self.classes = _listed_classes(self.path, n) or [str(i) for i in range(n)]
        self.info, self.train, self.seed = info, train, seed
        self.shape = tuple(info.input_shape)
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        self._iters = {}

    def __len__(self):
        return len(self.labels)

    def _iter(self, local_batch, rank, num_workers):
        import mxnet as mx

        key = (local_batch, rank, num_workers)
        if key in self._iters:
            it = self._iters[key]
            it.reset()
            return it
        from .imaging import EvalTransform

        c = self.shape[0]
        spec = EvalTransform.from_info(self.info)  # the weights' transform, in MXNet's terms
        mean = [m * 255 for m in spec.mean]
        std = [s * 255 for s in spec.std]
        args = dict(path_imgrec=self.path, path_imgidx=self.idx, data_shape=self.shape,
                    batch_size=local_batch, label_width=1, part_index=rank,
                    num_parts=num_workers, preprocess_threads=self.workers,
                    inter_method=_INTERP[spec.interpolation], seed=self.seed,
                    shuffle=self.train, round_batch=True,
                    mean_r=mean[0], std_r=std[0])
        if c == 3:
            args.update(mean_g=mean[1], mean_b=mean[2], std_g=std[1], std_b=std[2])
        if self.train and c == 3:
            args.update(random_resized_crop=True, min_random_area=0.08, max_random_area=1.0,
                        min_aspect_ratio=3 / 4, max_aspect_ratio=4 / 3, rand_mirror=True,
                        resize=-1)
        else:  # the evaluation transform: resize the shorter side, centre crop
            args.update(resize=spec.resize_size)
        try:
            it = mx.io.ImageRecordIter(**args)
        except mx.base.MXNetError as err:
            raise DataError(f"{self.path}: ImageRecordIter cannot read it "
                            f"({mxnet_message(err)})") from None
        self._iters[key] = it
        return it

    def epoch(self, batch_size, rng=None, rank=0, num_workers=1):
        """This worker's batches: ``ceil(len / batch_size)`` of them on every worker, each
        of ``batch_size / num_workers`` images from this worker's shard (the shard is read
        again from its start when it runs out, so that every worker takes as many steps)."""
        local = np.array_split(np.arange(batch_size), num_workers)[rank].size
        if local == 0:
            raise InceptionZooError(f"batch size {batch_size} is smaller than the {num_workers} "
                                    "workers: expected a batch size >= the number of workers")
        local = min(local, max(len(self) // num_workers, 1))  # the iterator's limit
        it = self._iter(local, rank, num_workers)
        if rng is None and num_workers == 1:  # in order, exactly once (evaluation)
            for b in it:
                n = local - b.pad
                yield Batch(b.data[0][:n], b.label[0][:n], n)
            return
        for _ in range(self.steps(batch_size)):
            try:
                b = it.next()
            except StopIteration:
                it.reset()
                b = it.next()
            yield Batch(b.data[0], b.label[0], min(batch_size, len(self)))


def _mnist_dir(path):
    return all(any(os.path.isfile(os.path.join(path, s + e)) for e in ("", ".gz"))
               for s in MNIST_FILES[True])


def _open_one(path, info, train, workers, seed):
    """A source from a path: a ``.rec`` file, or a folder (MNIST IDX or class subfolders)."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if path.endswith(".rec") or os.path.isfile(path):
        return RecordSource(path, info, train=train, workers=workers, seed=seed)
    if os.path.isdir(path) and _mnist_dir(path) or os.path.isdir(path) and \
            any(os.path.isfile(os.path.join(path, s + e))
                for s in MNIST_FILES[False] for e in ("", ".gz")):
        x, y = load_mnist(path, train=train, download=False)
        return ArraySource(x, y, info, path=path)
    return FolderSource(path, info, train=train, workers=workers)


def open_sources(info, data_dir=None, train_data=None, val_data=None, workers=None, seed=0,
                 train=True):
    """The training and validation sources for a network.

    Parameters
    ----------
    info : ModelInfo
        The network's metadata (``net.info``).
    data_dir : str, optional
        A folder holding MNIST IDX files, or ``train.rec``/``train.idx`` +
        ``val.rec``/``val.idx``, or ``train/`` + ``val/`` image folders. None: MNIST from
        :func:`inceptionzoo.mnist.resolve_data_dir` (``$INCEPTIONZOO_DATA``, MXNet's folder).
    train_data, val_data : str, optional
        Explicit training / validation data (a ``.rec`` file, an image folder, or an MNIST
        folder, whose train split resp. test split is read); they override ``data_dir``.
    workers : int, optional
        Decoding threads.
    seed : int
        Seed of RecordIO shuffling and augmentation.
    train : bool
        Open the training data too (False: only validation, e.g. for evaluation).

    Returns
    -------
    (Source, Source)
        Training (None if ``train=False``) and validation data.
    """
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                or workers < 1):
        raise InceptionZooError(f"data workers (decoding threads) must be an integer >= 1; got "
                                f"{workers!r}")
    splits = (True, False) if train else (False,)
    given = {True: train_data, False: val_data}
    if data_dir is None and any(given[t] is None for t in splits):
        if any(given[t] is not None for t in splits):
            raise InceptionZooError("give both --train-data and --val-data, or --data-dir")
        folder = resolve_data_dir(None)
        got = {t: ArraySource(*load_mnist(folder, train=t), info, path=folder) for t in splits}
        return got.get(True), got[False]
    paths = {}
    if data_dir is not None:
        d = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
        if not os.path.isdir(d):
            raise DataError(f"--data-dir {d}: not a folder")
        if _mnist_dir(d):
            paths = {True: d, False: d}
        elif os.path.isfile(os.path.join(d, "train.rec")):
            paths = {True: os.path.join(d, "train.rec"), False: os.path.join(d, "val.rec")}
        elif os.path.isdir(os.path.join(d, "train")):
            paths = {True: os.path.join(d, "train"), False: os.path.join(d, "val")}
        else:
            raise DataError(f"--data-dir {d}: found neither MNIST IDX files "
                            f"({MNIST_FILES[True][0]}[.gz] ...), nor train.rec + val.rec, "
                            "nor train/ + val/ image folders")
    for t in splits:
        if given[t] is not None:
            paths[t] = given[t]
        elif not os.path.exists(paths[t]):
            raise DataError(f"--data-dir {d}: {'train' if t else 'val'} data {paths[t]} is "
                            "missing")
    got = {t: _open_one(paths[t], info, t, workers, seed) for t in splits}
    tr, val = got.get(True), got[False]
    if isinstance(tr, FolderSource) and isinstance(val, FolderSource) and \
            val.classes != tr.classes:
        raise DataError(f"{val.path} has classes {val.classes}, but {tr.path} has "
                        f"{tr.classes}: expected the same class subfolders")
    return tr, val


#: names that moved to :mod:`inceptionzoo.packing` (importable from here, with a warning, for
#: one more release)
_MOVED = ("write_recordio", "im2rec_path", "RECORDIO_EXTRA")


def __getattr__(name):
    if name in _MOVED:
        import warnings

        from . import packing

        warnings.warn(f"inceptionzoo.datasets.{name} is deprecated: import it from "
                      "inceptionzoo.packing", DeprecationWarning, stacklevel=2)
        return getattr(packing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
