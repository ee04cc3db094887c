"""Lower precision for serving: INT8 (oneDNN quantisation) and bfloat16, behind an accuracy guard.

:func:`lower_precision` turns a float32 network into the graph an export of
``precision='int8'`` or ``'bf16'`` writes, and measures it against its float32 twin on labelled
held-out images before anything is written (:func:`inceptionzoo.export.export` calls it):

- ``int8``: MXNet's oneDNN quantisation (``mxnet.contrib.quantization.quantize_net``), its
  activation ranges calibrated on the calibration images; the calibration mode (``naive``:
  min/max, ``entropy``: KL-optimal thresholds) is chosen by measurement: each is calibrated on
  80% of the calibration images and the one whose top-1 agrees more with float32 on the other
  20% is kept (ties: the smaller mean logit difference).
- ``bf16``: every convolution and fully-connected layer in bfloat16 (its inputs and weights
  cast by ``amp_cast``), the dtype-neutral operators between them (ReLU, pooling, concat,
  batch norm ... MXNet's AMP list) kept in bfloat16, everything else and the output in float32.
  (``mxnet.contrib.amp.convert_symbol`` of MXNet 1.9.1 inserts no casts on these graphs: the
  graph it returns computes in float32.)

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
import json
import os
import warnings

import mxnet as mx
import numpy as np

from ._checks import check_count
from .errors import AccuracyGuardError, InceptionZooError
from .symbol_graphs import symbol_graph

__all__ = ["quantize", "to_bfloat16", "lower_precision", "load_images", "PRECISIONS",
           "MAX_ACCURACY_DROP", "CALIBRATION_SIZE", "CALIB_MODES"]

#: What ``export(..., precision=)`` and ``--precision`` take.
PRECISIONS = ("fp32", "int8", "bf16")
#: Default largest top-1 accuracy drop, in points, the guard lets through.
MAX_ACCURACY_DROP = 0.5
#: Default number of calibration images used (a seeded random choice when there are more).
CALIBRATION_SIZE = 500
#: INT8 calibration modes compared by :func:`lower_precision`.
CALIB_MODES = ("naive", "entropy")
#: Part of the calibration images that selects the calibration mode (the rest calibrates).
SELECTION_SHARE = 0.2
#: Batch size of the guard's and the calibration's forward passes.
_BATCH = 250


def quantize(net, calib_images, batch_size=100, calib_mode="naive"):
    """INT8 copy of ``net`` for MXNet's CPU (oneDNN) build, calibrated on ``calib_images``.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        An initialised network (it is hybridized as a side effect).
    calib_images : array, shape (N, C, H, W)
        Inputs, already transformed as for the network (e.g. ``data.to_input``). Use real
        data: ``tests/test_quantization.py`` checks that 1,000 MNIST training digits keep the
        shipped ``inception_mnist`` within 0.3 points of its float32 test accuracy.
    batch_size : int
        Calibration batch size.
    calib_mode : str
        ``'naive'`` (activation ranges are the min/max seen) or ``'entropy'`` (thresholds that
        minimise the KL divergence of the quantised distribution).

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized with ``static_alloc`` and ``static_shape``. It runs only on MXNet's CPU build;
        export the float32 network for anything else.
    """
    from mxnet.contrib.quantization import quantize_net

    if calib_mode not in CALIB_MODES:
        raise InceptionZooError(f"calib_mode must be one of {', '.join(CALIB_MODES)}; got "
                                f"{calib_mode!r}")
    x = np.asarray(calib_images, dtype=np.float32)
    bs = min(batch_size, len(x))
    if x.ndim != 4 or bs < 1:
        raise InceptionZooError(f"calib_images must be a non-empty (N, C, H, W) array; got shape "
                                f"{x.shape}")
    calib = [[mx.nd.array(x[i:i + bs])] for i in range(0, len(x) - bs + 1, bs)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        warnings.filterwarnings("ignore", message=".*quantize_net_v2")
        qnet = quantize_net(net, quantized_dtype="auto", calib_mode=calib_mode,
                            calib_data=calib, num_calib_examples=len(calib) * bs, ctx=mx.cpu(),
                            data_shapes=[mx.io.DataDesc("data", (bs,) + x.shape[1:])])
    qnet.hybridize(static_alloc=True, static_shape=True)
    return qnet


# -- bfloat16 -----------------------------------------------------------------------------------

#: Operators computed in bfloat16 (their inputs cast to it).
_BF16_OPS = ("Convolution", "FullyConnected")


def _bf16_neutral(node):
    """Whether an operator runs in bfloat16 when its data is bfloat16 (MXNet's AMP list of
    dtype-neutral operators, plus ``Activation`` ReLU, which oneDNN runs in bfloat16)."""
    from mxnet.contrib.amp.lists.symbol_bf16 import BF16_FP32_FUNCS

    if node["op"] == "Activation":
        return node.get("attrs", {}).get("act_type") == "relu"
    return node["op"] in BF16_FP32_FUNCS


def bfloat16_symbol(sym):
    """The graph with convolutions and fully-connected layers in bfloat16 (see the module
    text): ``amp_cast`` nodes inserted where the dtype changes; the outputs are float32.

    Parameters
    ----------
    sym : mxnet.Symbol
        A float32 graph.

    Returns
    -------
    mxnet.Symbol
        Same inputs and outputs.
    """
    graph = symbol_graph(sym)
    old, nodes, where, bf16, casts = graph["nodes"], [], {}, set(), {}

    def cast(entry, dtype):  # entry: [node, output, version] in the new graph
        key = (entry[0], entry[1], dtype)
        if key not in casts:
            nodes.append({"op": "amp_cast", "name": f"{nodes[entry[0]]['name']}_{entry[1]}"
                                                    f"_amp_cast_{dtype}",
                          "attrs": {"dtype": dtype}, "inputs": [list(entry)]})
            casts[key] = len(nodes) - 1
            if dtype == "bfloat16":
                bf16.add(casts[key])
        return [casts[key], 0, 0]

    for i, node in enumerate(old):
        inputs = [[where[a], b, c] for a, b, c in node["inputs"]]
        node = dict(node, inputs=inputs)
        data = inputs[:1] if node["op"].startswith("BatchNorm") else inputs
        if node["op"] in _BF16_OPS:
            node["inputs"] = [e if e[0] in bf16 else cast(e, "bfloat16") for e in inputs]
            out_bf16 = True
        elif node["op"] != "null" and _bf16_neutral(node) and any(e[0] in bf16 for e in data):
            node["inputs"] = [e if e[0] in bf16 or e not in data else cast(e, "bfloat16")
                              for e in inputs]
            out_bf16 = True
        else:
            node["inputs"] = [cast(e, "float32") if e[0] in bf16 else e for e in inputs]
            out_bf16 = False
        nodes.append(node)
        where[i] = len(nodes) - 1
        if out_bf16:
            bf16.add(where[i])
    heads = [[where[a], b, c] for a, b, c in graph["heads"]]
    heads = [cast(h, "float32") if h[0] in bf16 else h for h in heads]
    out = {"nodes": nodes, "arg_nodes": [i for i, n in enumerate(nodes) if n["op"] == "null"],
           "heads": heads, "attrs": graph.get("attrs", {})}
    out["node_row_ptr"] = list(range(len(nodes) + 1))  # recomputed by MXNet on load
    return mx.sym.load_json(json.dumps(out))


def to_bfloat16(net, input_shape):
    """A bfloat16 copy of ``net`` (:func:`bfloat16_symbol` of its graph, its parameters
    shared, stored in float32 and cast in the graph).

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        An initialised network.
    input_shape : tuple of int
        ``(C, H, W)``.

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized with ``static_alloc`` and ``static_shape``.
    """
    data = mx.sym.var("data")
    out = net(data)
    if isinstance(out, (list, tuple)):
        out = mx.sym.Group(list(out))
    sym = bfloat16_symbol(out)
    with warnings.catch_warnings():  # the input's dtype is given at the first call
        warnings.filterwarnings("ignore", message="Cannot decide type")
        block = mx.gluon.SymbolBlock(sym, [mx.sym.var("data")], params=net.collect_params())
    block.hybridize(static_alloc=True, static_shape=True)
    block(mx.nd.zeros((1,) + tuple(input_shape)))  # builds the graph now: errors here
    return block


# -- image sets ---------------------------------------------------------------------------------

def _source(spec, info, split):
    """``(source, description)`` for ``'mnist:DIR'`` or an image folder."""
    from .datasets import ArraySource, FolderSource
    from .mnist import load_mnist

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
    out = []
    for i in range(0, len(x), _BATCH):
        y = block(mx.nd.array(x[i:i + _BATCH]))
        if isinstance(y, (list, tuple)):
            y = y[0]
        out.append(y.astype("float32").asnumpy())
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
                    holdout_size=None, labels=None, input_shape=None):
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

    Returns
    -------
    tuple
        ``(block, record)``: a hybridized ``SymbolBlock`` computing in ``precision``, and what
        ``NAME-meta.json`` records of it (``precision``, ``calibration``, ``calib_mode``,
        ``guard``).

    Raises
    ------
    AccuracyGuardError
        The accuracy drops more than ``max_accuracy_drop`` points.
    InceptionZooError
        Bad arguments (unknown precision, missing or overlapping image sets ...).
    """
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
    ref, got = _logits(net, hx).argmax(1), _logits(block, hx).argmax(1)
    acc32, acc = float((ref == hy).mean()), float((got == hy).mean())
    agree, drop = float((ref == got).mean()), (acc32 - acc) * 100
    record["guard"] = {"holdout": hdesc, "accuracy_fp32": acc32, "accuracy": acc,
                       "agreement": agree, "accuracy_drop_points": drop,
                       "max_accuracy_drop_points": drop_limit}
    if not drop <= drop_limit:
        raise AccuracyGuardError(
            f"{precision} refused by the accuracy guard: top-1 accuracy {acc:.2%} against "
            f"float32's {acc32:.2%} on {len(hx)} held-out images ({hdesc.get('path', 'array')})"
            f", a drop of {drop:.2f} points above the limit of {drop_limit:g} "
            f"(max_accuracy_drop, --max-accuracy-drop); top-1 agreement {agree:.2%}; nothing "
            "was written")
    return block, record
