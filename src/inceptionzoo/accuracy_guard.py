"""The accuracy guard: :func:`lower_precision` turns a float32 network into the graph an export
of ``precision='int8'`` or ``'bf16'`` writes (:mod:`inceptionzoo.quantization`), and measures it
against its float32 twin on labelled held-out images before anything is written
(:func:`inceptionzoo.export.export` calls it).

- ``int8``: the calibration mode is chosen by measurement: each of ``naive`` and ``entropy`` is
  calibrated on 80% of the calibration images and the one whose top-1 agrees more with float32
  on the other 20% is kept (ties: the smaller mean logit difference). With an ONNX model, ONNX
  Runtime's INT8 twin (:func:`~inceptionzoo.quantization.quantize_onnx`, the same calibration
  images) is guarded the same way; the serving graph races the two INT8 runtimes as it races
  float32's.
- ``bf16``: no calibration.

The guard: top-1 accuracy of both graphs and their top-1 agreement on the held-out images; the
lower-precision graph is refused (:class:`~inceptionzoo.errors.AccuracyGuardError`, one line)
when its accuracy is more than ``max_accuracy_drop`` points below float32's.

Image sets (``calibration``, ``holdout``) are given as ``'mnist:DIR'`` (the MNIST IDX files in
``DIR``: the training split for calibration, the test split for the holdout, which are
disjoint), a folder of images with one subfolder per class (named by the network's labels for
a holdout; decoded and centre-cropped by the weights' evaluation transform), or arrays: a
calibration array of network inputs ``(N, C, H, W)``, a holdout ``(inputs, labels)`` pair.
"""
import dataclasses
import hashlib
import os

import mxnet as mx
import numpy as np

from . import runtimes
from ._checks import check_count
from .data_source import ArraySource
from .errors import AccuracyGuardError, InceptionZooError
from .image_folders import FolderSource
from .mnist import load_mnist
from .quantization import ONNX_INT8, PRECISIONS, CALIB_MODES, quantize, quantize_onnx, to_bfloat16
from .serving_core import sample_input

__all__ = ["lower_precision", "load_images", "MAX_ACCURACY_DROP", "CALIBRATION_SIZE"]

#: Default largest top-1 accuracy drop, in points, the guard lets through.
MAX_ACCURACY_DROP = 0.5
#: Default number of calibration images used (a seeded random choice when there are more).
CALIBRATION_SIZE = 500
#: Part of the calibration images that selects the calibration mode (the rest calibrates).
SELECTION_SHARE = 0.2
#: Batch size of the guard's forward passes.
_BATCH = 250
#: The load-time parity check of an INT8 ONNX file against MXNet's INT8 graph allows this many
#: times the difference measured at export (two quantisations differ; float32 rounding does not
#: describe them), at least :data:`inceptionzoo.runtimes.PARITY`.
ONNX_PARITY_MARGIN = 3.0


def _source(spec, info, split):
    """``(source, description)`` for ``'mnist:DIR'`` or an image folder."""
    spec = os.fspath(spec)
    if spec.startswith("mnist:"):
        path = os.path.abspath(os.path.expanduser(spec[len("mnist:"):]))
        x, y = load_mnist(path, train=split == "train", download=False)
        return ArraySource(x, y, info, path=path), {"source": "mnist", "path": path,
                                                      "split": split}
    path = os.path.abspath(os.path.expanduser(spec))
    if not os.path.isdir(path):
        raise InceptionZooError(f"{spec!r}: expected 'mnist:DIR' (MNIST IDX files) or a folder "
                                "of images with one subfolder per class")
    return FolderSource(path, info, train=False, threads=1), {"source": "folder", "path": path}


def load_images(spec, info, split, limit=None, labelled=True):
    """Network inputs (and labels) of an image set, as :func:`lower_precision` reads them.

    Parameters
    ----------
    spec : str or numpy.ndarray or tuple
        ``'mnist:DIR'``, a folder of class subfolders, an array of network inputs
        ``(N, C, H, W)``, or an ``(inputs, labels)`` pair.
    info : ModelInfo
        The network's metadata (input shape, normalisation, evaluation transform).
    split : str
        ``'train'`` or ``'test'``: which MNIST split ``'mnist:DIR'`` means.
    limit : int, optional
        At most this many images: a seeded random choice (in file order) when there are more.
    labelled : bool
        Labels are needed (a holdout): an array without labels is refused.

    Returns
    -------
    tuple
        ``(inputs float32 (N, C, H, W), labels int64 (N,) or None, class names or None,
        description dict)``; the description names the source, its path or ``"array"``,
        the count and the SHA-1 of the inputs.
    """
    classes = None
    if isinstance(spec, (str, os.PathLike)):
        source, desc = _source(spec, info, split)
        index = np.arange(len(source))
        if limit is not None and limit < len(index):
            index = np.sort(np.random.RandomState(0).choice(len(index), limit, replace=False))
        xs, ys = [], []
        for i in range(0, len(index), _BATCH):
            x, y = source._load(index[i:i + _BATCH])
            xs.append(x.asnumpy())
            ys.append(y.asnumpy())
        x, y, classes = np.concatenate(xs), np.concatenate(ys).astype(np.int64), source.classes
    else:
        if isinstance(spec, tuple) and len(spec) == 2:
            x, y = np.asarray(spec[0], dtype=np.float32), np.asarray(spec[1])
            if y.shape != (len(x),) or y.dtype.kind not in "iu":
                raise InceptionZooError(f"labels must be integers, one per image ({len(x)}); "
                                        f"got shape {y.shape} of {y.dtype}")
        elif labelled:
            raise InceptionZooError("a holdout needs labels: give 'mnist:DIR', a folder of "
                                    "class subfolders or an (inputs, labels) pair; got "
                                    f"{type(spec).__name__}")
        else:
            x, y = np.asarray(spec, dtype=np.float32), None
        want = tuple(info.input_shape)
        if x.ndim != 4 or x.shape[1:] != want or not len(x):
            raise InceptionZooError(f"expected a non-empty array of network inputs (N,) + "
                                    f"{want}; got shape {x.shape}")
        if not np.isfinite(x).all():
            raise InceptionZooError("the images hold NaN or infinite values")
        if limit is not None and limit < len(x):
            index = np.sort(np.random.RandomState(0).choice(len(x), limit, replace=False))
            x, y = x[index], None if y is None else y[index]
        y = None if y is None else y.astype(np.int64)
        desc = {"source": "array"}
    x = np.ascontiguousarray(x, dtype=np.float32)
    desc.update(count=int(len(x)), sha1=hashlib.sha1(x.tobytes()).hexdigest())
    return x, (y if labelled else None), classes, desc


def _check_disjoint(calibration, holdout):
    """Refuse a holdout that is (or holds, or is inside) the calibration folder."""
    if not all(isinstance(s, (str, os.PathLike)) for s in (calibration, holdout)):
        return
    c, h = os.fspath(calibration), os.fspath(holdout)
    split = {}
    for spec in (c, h):
        mnist = spec.startswith("mnist:")
        split[spec] = (mnist, os.path.realpath(os.path.expanduser(spec[6:] if mnist else spec)))
    (cm, cp), (hm, hp) = split[c], split[h]
    if cm and hm:
        return  # the training and the test split of one MNIST folder
    if cp == hp or cp.startswith(hp + os.sep) or hp.startswith(cp + os.sep):
        raise InceptionZooError(f"the calibration and holdout images must be disjoint; got "
                                f"calibration {c!r} and holdout {h!r} (the same folder, or one "
                                "inside the other)")


# -- the guard ----------------------------------------------------------------------------------

def _logits(block, x):
    """Logits of ``x`` (numpy) in batches: an MXNet block, or an ONNX Runtime runner (numpy in
    and out)."""
    ort = isinstance(block, runtimes.OrtRunner)
    out = []
    for i in range(0, len(x), _BATCH):
        y = block(x[i:i + _BATCH] if ort else mx.nd.array(x[i:i + _BATCH]))
        if isinstance(y, (list, tuple)):
            y = y[0]
        # asnumpy, no MXNet cast: a Cast of the INT8 graph's output failed once (Inception-
        # ResNet-v2 at 75x75 right after training: "We can't generate TBlob for MKLDNN data"),
        # and MXNet's copy to NumPy reorders oneDNN-layout data itself
        out.append(np.asarray(y if ort else y.asnumpy(), dtype=np.float32))
    return np.concatenate(out)


def _label_index(classes, labels, desc):
    """Holdout label -> network output index, by class name."""
    if classes is None:
        return None
    where = {name: i for i, name in enumerate(labels)}
    unknown = [c for c in classes if c not in where]
    if unknown:
        raise InceptionZooError(f"{desc.get('path')}: holdout classes {unknown[:5]} are not "
                                f"labels of the network (first labels: {labels[:5]}): name the "
                                "class subfolders by the network's labels")
    return np.array([where[c] for c in classes])


def _int8(net, x):
    """The INT8 block, its calibration mode chosen by measurement, and the record of it."""
    select = max(1, int(round(len(x) * SELECTION_SHARE)))
    if len(x) - select < 1:
        raise InceptionZooError(f"int8 needs at least 2 calibration images; got {len(x)}")
    calib, held = x[:-select], x[-select:]
    ref = _logits(net, held)
    best, scores = None, {}
    for mode in CALIB_MODES:
        q = quantize(net, calib, calib_mode=mode)
        got = _logits(q, held)
        agree = float((got.argmax(1) == ref.argmax(1)).mean())
        diff = float(np.abs(got - ref).mean())
        scores[mode] = {"agreement": agree, "mean_abs_logit_diff": diff}
        if best is None or (agree, -diff) > (scores[best[0]]["agreement"],
                                             -scores[best[0]]["mean_abs_logit_diff"]):
            best = (mode, q)
    return best[1], {"calib_mode": best[0], "calib_modes": scores,
                     "calib_mode_selection_images": select}


def lower_precision(net, precision, calibration=None, holdout=None,
                    max_accuracy_drop=MAX_ACCURACY_DROP, calibration_size=CALIBRATION_SIZE,
                    holdout_size=None, labels=None, input_shape=None, onnx_model=None):
    """The lower-precision twin of ``net``, measured against it on labelled held-out images.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        A zoo classifier with its weights (``net.info`` gives its input and normalisation).
    precision : str
        ``'int8'`` or ``'bf16'``.
    calibration : str or numpy.ndarray
        INT8 only: ``'mnist:DIR'`` (the training split), a folder of images, or network inputs
        ``(N, C, H, W)``; at most ``calibration_size`` are used.
    holdout : str or tuple
        Labelled images: ``'mnist:DIR'`` (the test split), a folder of class subfolders named by
        the network's labels, or ``(inputs, labels)``; disjoint from ``calibration``.
    max_accuracy_drop : float
        Largest top-1 accuracy drop allowed, in points (0.5: half a percent).
    calibration_size, holdout_size : int, optional
        How many images of each set to use (``holdout_size=None``: all).
    labels : list of str, optional
        The network's labels (default ``net.info.labels()``), to map a folder's classes.
    input_shape : tuple of int, optional
        ``(C, H, W)`` of the export, when not the metadata's (a network fine-tuned at another
        size): images are read at it.
    onnx_model : bytes or callable, optional
        INT8 only: the network's float32 ONNX model (or a function returning it, called once
        the arguments and MXNet's guard have passed), to quantise with ONNX Runtime too
        (:func:`quantize_onnx`, on the same calibration images) and guard the same way.

    Returns
    -------
    tuple
        ``(block, record, onnx_int8)``: a hybridized ``SymbolBlock`` computing in
        ``precision``; what ``NAME-meta.json`` records of it (``precision``, ``calibration``,
        ``calib_mode``, ``guard``; with ``onnx_model`` also ``onnx``: its quantisation, its
        guard and the tolerance of the load-time parity check against the MXNet graph); the
        INT8 ONNX model's bytes (None without ``onnx_model``).

    Raises
    ------
    AccuracyGuardError
        The accuracy drops more than ``max_accuracy_drop`` points.
    InceptionZooError
        Bad arguments (unknown precision, missing or overlapping image sets ...).
    """
    info, drop_limit = _checked_arguments(net, precision, calibration, holdout,
                                          max_accuracy_drop, calibration_size, holdout_size,
                                          input_shape, onnx_model)
    hx, hy, classes, hdesc = load_images(holdout, info, "test", holdout_size)
    index = _label_index(classes, labels or info.labels(), hdesc)
    if index is not None:
        hy = index[hy]
    record = {"precision": precision}
    if precision == "int8":
        cx, _, _, cdesc = load_images(calibration, info, "train", calibration_size,
                                      labelled=False)
        if cdesc["sha1"] == hdesc["sha1"]:
            raise InceptionZooError("the calibration and holdout images must be disjoint; got "
                                    "the same images for both")
        block, chosen = _int8(net, cx)
        record.update(calibration=cdesc, **chosen)
    else:
        block = to_bfloat16(net, info.input_shape)
    ref = _logits(net, hx).argmax(1)
    record["guard"] = _guard(precision, ref, _logits(block, hx).argmax(1), hy, hdesc, drop_limit)
    onnx_int8 = None
    if onnx_model is not None:
        onnx_int8 = quantize_onnx(onnx_model() if callable(onnx_model) else onnx_model, cx)
        runner = runtimes.OrtRunner(onnx_int8)
        guard = _guard("int8 (ONNX Runtime)", ref, _logits(runner, hx).argmax(1), hy, hdesc,
                       drop_limit)
        record["onnx"] = {"quantization": dict(ONNX_INT8), "guard": guard,
                          "parity_tolerance": _parity_tolerance(block, runner, hx.shape[1:])}
    return block, record, onnx_int8


def _checked_arguments(net, precision, calibration, holdout, max_accuracy_drop,
                       calibration_size, holdout_size, input_shape, onnx_model):
    """``(the metadata the images are read with, the drop limit)``, or one error naming the
    argument, before any image is read."""
    if precision not in PRECISIONS[1:]:
        raise InceptionZooError(f"precision must be one of {', '.join(PRECISIONS)}; got "
                                f"{precision!r}")
    info = getattr(net, "info", None)
    if info is None:
        raise InceptionZooError(f"precision={precision!r} needs a zoo network (its metadata "
                                "gives the input and normalisation of the guard's images)")
    if input_shape is not None:
        info = dataclasses.replace(info, input_shape=tuple(input_shape))
    if holdout is None:
        raise InceptionZooError(f"precision={precision!r} needs a labelled holdout set (the "
                                "accuracy guard): holdout='mnist:DIR' or a folder of class "
                                "subfolders (--holdout)")
    if onnx_model is not None and precision != "int8":
        raise InceptionZooError(f"precision={precision!r} with an ONNX model: ONNX Runtime has "
                                "no bfloat16 convolution kernels on CPU; only int8 has an ONNX "
                                "twin")
    if precision == "int8" and calibration is None:
        raise InceptionZooError("precision='int8' needs calibration images (--calib): "
                                "'mnist:DIR', a folder of images or an array")
    try:
        drop_limit = float(max_accuracy_drop)
    except (TypeError, ValueError):
        drop_limit = float("nan")
    if not np.isfinite(drop_limit):
        raise InceptionZooError(f"max_accuracy_drop must be a finite number of points; got "
                                f"{max_accuracy_drop!r}")
    for name, size in (("calibration_size", calibration_size), ("holdout_size", holdout_size)):
        if size is not None:
            check_count(name, size)
    if calibration is not None:
        _check_disjoint(calibration, holdout)
    return info, drop_limit


def _guard(what, ref, got, hy, hdesc, drop_limit):
    """The guard's record of top-1 predictions ``got`` against float32's ``ref`` on labels
    ``hy``, or :class:`AccuracyGuardError` when the accuracy drops more than ``drop_limit``."""
    acc32, acc = float((ref == hy).mean()), float((got == hy).mean())
    agree, drop = float((ref == got).mean()), (acc32 - acc) * 100
    if not drop <= drop_limit:
        raise AccuracyGuardError(
            f"{what} refused by the accuracy guard: top-1 accuracy {acc:.2%} against "
            f"float32's {acc32:.2%} on {len(hy)} held-out images ({hdesc.get('path', 'array')})"
            f", a drop of {drop:.2f} points above the limit of {drop_limit:g} "
            f"(max_accuracy_drop, --max-accuracy-drop); top-1 agreement {agree:.2%}; nothing "
            "was written")
    return {"holdout": hdesc, "accuracy_fp32": acc32, "accuracy": acc, "agreement": agree,
            "accuracy_drop_points": drop, "max_accuracy_drop_points": drop_limit}


def _parity_tolerance(block, runner, sample_shape):
    """The tolerance of the serving graph's load-time check of the INT8 ONNX file against the
    INT8 MXNet graph: :data:`ONNX_PARITY_MARGIN` times their largest difference (a fraction of
    the largest |logit|) on the check's own inputs (batch 1 and 8), at least
    :data:`inceptionzoo.runtimes.PARITY`, at most 1."""
    worst = 0.0
    for batch in (1, 8):
        x = sample_input(batch, sample_shape, "float32")
        _, diff, scale = runtimes.parity(_logits(block, x), runner(x))
        worst = max(worst, diff / max(scale, 1e-12))
    return float(min(1.0, max(runtimes.PARITY, ONNX_PARITY_MARGIN * worst)))
