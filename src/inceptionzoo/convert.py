"""Checkpoints of torchvision, timm and gluoncv -> zoo ``.params`` files (one job: mapping
every tensor, strictly).

``convert('torchvision:inception_v3', 'inception_v3_google-0cc3c7bd.pth', 'v3.params')`` reads
the checkpoint (``.pth``/``.pt`` state dicts without needing torch, ``.safetensors`` through the
``safetensors`` package, gluoncv ``.params`` through MXNet), renames every tensor with the
family's rules (:data:`SOURCES`), checks names and shapes against the zoo network -- every
missing, unexpected and mis-shaped tensor in ONE :class:`ConversionError` -- and writes
``v3.params`` plus the sidecar ``v3.json``: zoo model, source, SHA-1 of the checkpoint and of
the params file, and the preprocessing the weights need (mean, std, input size, crop,
interpolation). ``get_model('inception_v3', pretrained='v3.params')`` loads it back, checks the
SHA-1 and puts that preprocessing into ``net.info``.

Name mapping of the torch sources: the family's renames (regular expressions, in order), then
lower case, ``.`` -> ``_``, BN ``weight``/``bias`` -> ``gamma``/``beta``, and the zoo model's
prefix. gluoncv's files name parameters by position (``features.7.1.0.weight``); their layers
are in the same order as the zoo network's, so they are mapped by order, each tensor's shape
checked.
"""
import collections
import dataclasses
import json
import os
import pickle
import re
import zipfile
from typing import Dict, Optional, Tuple

import numpy as np

from ._io import atomic_path, sha1_file, write_json

__all__ = ["ConversionError", "Source", "SOURCES", "convert", "read_checkpoint",
           "sidecar_path", "read_sidecar", "load_converted", "build_imagenet",
           "FACTORY_DOC"]


from .errors import ConversionError  # noqa: E402  (defined in errors; this import path stays)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)  # Google's / TF-slim's (x - 0.5) / 0.5


@dataclasses.dataclass(frozen=True)
class Source:
    """How one source network maps onto a zoo network.

    Attributes
    ----------
    model : str
        Zoo model name.
    renames : tuple of (str, str)
        ``re.sub`` rules applied in order to each source name (torch sources).
    drop : str or None
        Regular expression of source tensors that have no place in the zoo network (heads
        the zoo network does not convert, aliases); matched names are left out.
    aux_prefix : str or None
        Start of the source names of the auxiliary head: left out, except when converting
        with ``aux_logits=True``.
    classifier : str
        Source name of the final dense layer's weight (gives the number of classes).
    mean, std, input_size, crop_pct, interpolation
        The preprocessing the source's weights were trained with (its pretrained config).
    """

    model: str
    renames: Tuple[Tuple[str, str], ...] = ()
    drop: Optional[str] = None
    aux_prefix: Optional[str] = None
    classifier: str = "fc.weight"
    mean: Tuple[float, ...] = INCEPTION_MEAN
    std: Tuple[float, ...] = INCEPTION_STD
    input_size: Tuple[int, int, int] = (3, 299, 299)
    crop_pct: float = 0.875
    interpolation: str = "bicubic"


def _v4_renames():
    from .models.inception_v4 import INCEPTION_V4_NAMES

    return tuple((rf"^features\.{i}\.", name + ".") for i, name in enumerate(INCEPTION_V4_NAMES))


_GOOGLENET_RENAMES = (
    (r"^conv2\.", "conv2red."), (r"^conv3\.", "conv2."), (r"^fc\.", "output."),
    (r"\.branch1\.", ".b1."), (r"\.branch2\.0\.", ".b3red."), (r"\.branch2\.1\.", ".b3."),
    (r"\.branch3\.0\.", ".b5red."), (r"\.branch3\.1\.", ".b5."), (r"\.branch4\.1\.", ".proj."),
)

#: ``(source, source model name) -> Source``; preprocessing from torchvision's weight
#: transforms (resize 342 / crop 299, resize 256 / crop 224, bilinear), timm's default
#: ``pretrained_cfg`` and gluoncv's evaluation (crop ratio 0.875, ImageNet mean/std).
SOURCES: Dict[Tuple[str, str], Source] = {
    ("torchvision", "inception_v3"): Source(
        "inception_v3", aux_prefix="AuxLogits.", crop_pct=299 / 342, interpolation="bilinear"),
    ("timm", "inception_v3"): Source("inception_v3", aux_prefix="AuxLogits."),
    ("torchvision", "googlenet"): Source(
        "googlenet_bn", renames=_GOOGLENET_RENAMES, drop=r"^aux[12]\.",
        input_size=(3, 224, 224), interpolation="bilinear"),
    ("timm", "inception_v4"): Source("inception_v4", renames=None, classifier="last_linear.weight"),
    ("timm", "inception_resnet_v2"): Source("inception_resnet_v2", classifier="classif.weight",
                                            crop_pct=0.8975),
    ("gluoncv", "inceptionv3"): Source("inception_v3", classifier="output.weight",
                                       mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                       interpolation="bilinear"),
    ("gluoncv", "googlenet"): Source("googlenet_bn", classifier="output.weight",
                                     drop=r"^head\.", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                     input_size=(3, 224, 224), interpolation="bilinear"),
}


def _source(spec):
    if not isinstance(spec, str) or ":" not in spec:
        raise ConversionError(f"expected SOURCE:NAME (e.g. torchvision:inception_v3); got "
                              f"{spec!r}")
    src, name = spec.split(":", 1)
    key = (src.lower(), name.lower())
    if key not in SOURCES:
        known = ", ".join(f"{s}:{n}" for s, n in SOURCES)
        raise ConversionError(f"unknown source network {spec!r}; known: {known}")
    source = SOURCES[key]
    if source.renames is None:  # built lazily: the names live with the family
        source = dataclasses.replace(source, renames=_v4_renames())
    return key[0], source


# --- reading checkpoints ----------------------------------------------------------------------

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


def _rebuild_tensor(storage, offset, size, stride, *_):
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=[s * item for s in stride]).copy()


class _TorchUnpickler(pickle.Unpickler):
    """Reads a ``torch.save`` zip archive's ``data.pkl`` into numpy arrays, allowing only the
    classes a state dict needs (like ``torch.load(weights_only=True)``), without torch."""

    def __init__(self, file, archive, root):
        super().__init__(file)
        self._archive, self._root = archive, root

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, *_: data
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file")

    def persistent_load(self, pid):
        _, storage_type, key, _, numel = pid
        if storage_type not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported tensor storage {storage_type}")
        raw = self._archive.read(f"{self._root}/data/{key}")
        return np.frombuffer(raw, dtype=_STORAGE_DTYPES[storage_type], count=numel)


def _read_pth(path):
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pkl) != 1:
                raise ConversionError(f"{path!r} is not a torch.save archive (no data.pkl)")
            with archive.open(pkl[0]) as f:
                obj = _TorchUnpickler(f, archive, pkl[0][:-len("/data.pkl")]).load()
    except zipfile.BadZipFile:
        raise ConversionError(
            f"{path!r} is not a zip-format torch checkpoint (torch >= 1.6 torch.save); re-save "
            "it with torch.save(state_dict, path) or as .safetensors") from None
    except (pickle.UnpicklingError, EOFError, KeyError) as err:
        raise ConversionError(f"cannot read {path!r} as a state dict: {err}") from None
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ConversionError(f"{path!r} holds a {type(obj).__name__}, not a state dict")
    return {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}


def _read_safetensors(path):
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ConversionError("reading .safetensors needs the safetensors package: pip install "
                              "'inceptionzoo[convert]'") from None
    try:
        return load_file(path)
    except Exception as err:  # safetensors raises its own SafetensorError
        raise ConversionError(f"cannot read {path!r} as safetensors: {err}") from None


def _read_mxnet(path):
    from .weights import read_params

    return {k: v.asnumpy() for k, v in read_params(path, error=ConversionError).items()}


def read_checkpoint(path, source):
    """The tensors of a checkpoint as ``{name: numpy array}``, in the file's order.

    Parameters
    ----------
    path : str
        A ``.pth``/``.pt`` (torch zip archive), ``.safetensors`` or, for ``source ==
        'gluoncv'``, an MXNet ``.params`` file.
    source : str
        ``'torchvision'``, ``'timm'`` or ``'gluoncv'``.

    Returns
    -------
    dict
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConversionError(f"checkpoint {path!r} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if source == "gluoncv":
        if ext != ".params":
            raise ConversionError(f"a gluoncv checkpoint is a .params file; got {path!r}")
        return _read_mxnet(path)
    if ext in (".pth", ".pt", ".bin"):
        return _read_pth(path)
    if ext == ".safetensors":
        return _read_safetensors(path)
    raise ConversionError(f"a {source} checkpoint is a .pth, .pt or .safetensors file; got "
                          f"{path!r}")


# --- mapping ----------------------------------------------------------------------------------

def _torch_name(name, source, prefix):
    for pattern, repl in source.renames:
        name = re.sub(pattern, repl, name)
    name = name.lower().replace(".", "_")
    name = re.sub(r"bn_weight$", "bn_gamma", re.sub(r"bn_bias$", "bn_beta", name))
    return prefix + name


def _map(tensors, kind, source, net, aux_logits):
    """``{zoo name: array}`` for ``net``, or a ConversionError listing every problem."""
    def left_out(k):
        return (k.endswith("num_batches_tracked") or bool(source.drop and re.search(source.drop, k))
                or bool(source.aux_prefix and not aux_logits and k.startswith(source.aux_prefix)))

    kept = [(k, v) for k, v in tensors.items() if not left_out(k)]
    params = net.collect_params()
    expected = {name: p.shape for name, p in params.items()}
    problems = []
    if kind == "gluoncv":  # by position: both lists are in definition order
        names = list(expected)
        if len(kept) != len(names):
            problems.append(f"the checkpoint has {len(kept)} tensors, the zoo network "
                            f"{len(names)}")
        pairs = [(src, zoo, arr) for (src, arr), zoo in zip(kept, names)]
    else:
        pairs = [(src, _torch_name(src, source, net.prefix), arr) for src, arr in kept]
    mapped = {}
    for src, zoo, arr in pairs:
        if zoo not in expected:
            problems.append(f"unexpected: {src} (-> {zoo})")
        elif tuple(arr.shape) != tuple(expected[zoo]):
            problems.append(f"mis-shaped: {src} {tuple(arr.shape)} -> {zoo} expects "
                            f"{tuple(expected[zoo])}")
        else:
            mapped[zoo] = arr
    covered = {zoo for _, zoo, _ in pairs}
    problems += [f"missing: {zoo} {tuple(shape)}" for zoo, shape in expected.items()
                 if zoo not in covered]
    if problems:
        counts, lines = _summary(problems)
        raise ConversionError(f"the checkpoint does not fit {net.prefix.rstrip('_')!r} "
                              f"({len(problems)} problems: {counts}):\n  " + "\n  ".join(lines))
    return mapped


def _summary(problems, most=10):
    """``(counts, lines)``: how many problems of each kind, and at most ``most`` of each."""
    counts, lines = [], []
    for kind in ("missing", "unexpected", "mis-shaped", "the checkpoint has"):
        found = [p for p in problems if p.startswith(kind)]
        if found:
            counts.append(f"{len(found)} {kind.split()[-1] if ' ' in kind else kind}")
            lines += found[:most]
            if len(found) > most:
                lines.append(f"... and {len(found) - most} more {kind}")
    return ", ".join(counts), lines


def sidecar_path(params_path):
    """``FILE.json`` beside ``FILE.params``.

    Parameters
    ----------
    params_path : str

    Returns
    -------
    str
    """
    return os.path.splitext(os.fspath(params_path))[0] + ".json"


def convert(spec, checkpoint, out, aux_logits=False):
    """Convert a checkpoint into a zoo ``.params`` file and its JSON sidecar.

    Parameters
    ----------
    spec : str
        ``SOURCE:NAME``: ``torchvision:inception_v3``, ``torchvision:googlenet``,
        ``timm:inception_v3``, ``timm:inception_v4``, ``timm:inception_resnet_v2``,
        ``gluoncv:inceptionv3``, ``gluoncv:googlenet``.
    checkpoint : str
        The source's weight file.
    out : str
        The ``.params`` file to write (atomically); the sidecar goes to ``sidecar_path(out)``.
    aux_logits : bool, default False
        Keep Inception-v3's auxiliary head (the network is then built with it).

    Returns
    -------
    dict
        The sidecar's content (``model``, ``params``, ``sha1``, ``source``, ... ).
    """
    import mxnet as mx

    from . import get_model, __version__

    kind, source = _source(spec)
    if aux_logits and not source.aux_prefix:
        raise ConversionError(f"{spec} has no auxiliary head to keep (aux_logits=True)")
    out = os.path.abspath(os.fspath(out))
    if not out.endswith(".params"):
        raise ConversionError(f"the output file must end in .params; got {out!r}")
    tensors = read_checkpoint(checkpoint, kind)
    head = tensors.get(source.classifier)
    if head is None or head.ndim != 2:
        raise ConversionError(f"{checkpoint!r} has no classifier {source.classifier!r}: not a "
                              f"{spec} checkpoint")
    classes = int(head.shape[0])
    options = {"aux_logits": True} if aux_logits else {}
    net = get_model(source.model, classes=classes, **options)
    mapped = _map(tensors, kind, source, net, aux_logits)
    net.initialize(mx.init.Zero())
    for name, p in net.collect_params().items():
        p.set_data(mx.nd.array(mapped[name], dtype=p.dtype))
    with atomic_path(out) as tmp:
        net.save_parameters(tmp)
    meta = {
        "model": source.model, "classes": classes, "options": options,
        "params": os.path.basename(out), "sha1": sha1_file(out),
        "source": f"{kind}:{spec.split(':', 1)[1]}",
        "checkpoint": os.path.basename(os.fspath(checkpoint)),
        "checkpoint_sha1": sha1_file(checkpoint),
        "input_shape": list(source.input_size), "mean": list(source.mean),
        "std": list(source.std), "crop_pct": source.crop_pct,
        "interpolation": source.interpolation, "inceptionzoo_version": __version__,
    }
    write_json(sidecar_path(out), meta)
    return meta


# --- loading a converted file -----------------------------------------------------------------

def load_converted(net, name, path, ctx=None):
    """Load a converted ``.params`` file into ``net`` after checking it against its sidecar.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        The zoo network ``name``, built with the sidecar's classes and options.
    name : str
        Zoo model name the file must be for.
    path : str
        The ``.params`` file.
    ctx : mxnet.Context, optional

    Returns
    -------
    dict
        The ``ModelInfo`` fields the weights set: ``mean``, ``std``, ``input_shape``,
        ``crop_pct``, ``interpolation`` and ``pretrained`` (file, SHA-1, source).
    """
    from .weights import WeightsError, load_params_file

    meta = read_sidecar(path)
    if meta.get("model") != name:
        raise WeightsError(f"{path!r} holds weights of {meta.get('model')!r}, not {name!r}")
    got = sha1_file(path)
    if got != meta.get("sha1"):
        raise WeightsError(f"{path!r} has SHA-1 {got}; its sidecar {sidecar_path(path)!r} "
                           f"records {meta.get('sha1')}: the file is corrupt or was replaced")
    load_params_file(net, path, ctx=ctx)
    return {"mean": tuple(meta["mean"]), "std": tuple(meta["std"]),
            "input_shape": tuple(meta["input_shape"]), "crop_pct": meta["crop_pct"],
            "interpolation": meta["interpolation"],
            "pretrained": {"file": os.path.basename(path), "sha1": got,
                           "source": meta["source"], "checkpoint_sha1": meta["checkpoint_sha1"]}}


def read_sidecar(path):
    """The sidecar JSON of a converted ``.params`` file.

    Parameters
    ----------
    path : str
        The ``.params`` file.

    Returns
    -------
    dict

    Raises
    ------
    WeightsError
        If the file or its sidecar is missing or the sidecar is not JSON.
    """
    from .weights import WeightsError

    side = sidecar_path(path)
    if not os.path.isfile(os.fspath(path)):
        raise WeightsError(f"parameter file {os.fspath(path)!r} does not exist")
    try:
        with open(side) as f:
            return json.load(f)
    except FileNotFoundError:
        raise WeightsError(f"{side!r} is missing: a converted weight file needs the sidecar "
                           "`inceptionzoo convert` writes beside it") from None
    except json.JSONDecodeError as err:
        raise WeightsError(f"{side!r} is not valid JSON: {err}") from None


FACTORY_DOC = """{title}. No weights ship: convert a checkpoint (docs/weights.md).

    Parameters
    ----------
    classes : int, optional
        Output classes; default: the converted file's when ``pretrained`` is one, else 1000.
    pretrained : bool or str, default False
        The path of a ``.params`` file written by ``inceptionzoo convert`` (checked against its
        sidecar, whose mean / std / crop go into ``net.info``). ``True`` is an error.
    root : str, optional
        Unused (no weight cache for these networks); accepted like every zoo factory.
    ctx : mxnet.Context, optional
        Where to load the weights.
    **kwargs
        Options of :class:`{cls}`.

    Returns
    -------
    {cls}
    """


def build_imagenet(name, cls, classes, pretrained, ctx, kwargs):
    """The factory body of the ImageNet networks: build ``cls``; ``pretrained`` is False, or
    the path of a converted file (loaded and checked), never True (no weights ship).

    Parameters
    ----------
    name : str
        Registry name (also the parameter prefix).
    cls : type
        The network class.
    classes : int or None
        None: the converted file's classes, else 1000.
    pretrained : bool or str
    ctx : mxnet.Context or None
    kwargs : dict
        The network's other options.

    Returns
    -------
    mxnet.gluon.HybridBlock
        With ``weights_info`` (what the weights set in ``net.info``) when weights were loaded.
    """
    from .weights import WeightsError

    kwargs.setdefault("prefix", name + "_")
    if pretrained is True:
        raise WeightsError(
            f"no weights ship for {name!r}: convert a torchvision, timm or gluoncv checkpoint "
            f"(`inceptionzoo convert SOURCE:NAME CHECKPOINT --out {name}.params`, see "
            f"docs/weights.md) and pass pretrained='{name}.params'")
    if not pretrained:
        return cls(classes=1000 if classes is None else classes, **kwargs)
    meta = read_sidecar(pretrained)
    if classes not in (None, meta["classes"]):
        raise WeightsError(f"{pretrained!r} has {meta['classes']} classes; got "
                           f"classes={classes}")
    for key, value in meta.get("options", {}).items():
        if kwargs.setdefault(key, value) != value:
            raise WeightsError(f"{pretrained!r} was converted with {key}={value}; got "
                               f"{key}={kwargs[key]}")
    net = cls(classes=meta["classes"], **kwargs)
    net.weights_info = load_converted(net, name, pretrained, ctx=ctx)
    return net
