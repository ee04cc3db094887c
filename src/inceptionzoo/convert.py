"""Checkpoints of torchvision, timm and gluoncv -> zoo ``.params`` files (one job: mapping
every tensor, strictly).

``convert('torchvision:inception_v3', 'inception_v3_google-0cc3c7bd.pth', 'v3.params')`` reads
the checkpoint (``.pth``/``.pt`` state dicts without needing torch, ``.safetensors`` through the
``safetensors`` package, gluoncv ``.params`` through MXNet), renames every tensor with the
family's rules (:data:`SOURCES`), checks names and shapes against the zoo network -- every
missing, unexpected and mis-shaped tensor in ONE :class:`ConversionError` -- and writes
``v3.params`` plus the sidecar ``v3.json``: the weights' spec
(:class:`~inceptionzoo.weights_spec.WeightsSpec`, the one the model declares for that source,
with the classes, the SHA-1 of the checkpoint and of the params file filled in).
``get_model('inception_v3', pretrained='v3.params')`` loads it back (:mod:`inceptionzoo._builder`),
checks the SHA-1 and puts that preprocessing into ``net.info``.

Name mapping of the torch sources: the family's renames (regular expressions, in order), then
lower case, ``.`` -> ``_``, BN ``weight``/``bias`` -> ``gamma``/``beta``, and the zoo model's
prefix. gluoncv's files name parameters by position (``features.7.1.0.weight``); their layers
are in the same order as the zoo network's, so they are mapped by order, each tensor's shape
checked.
"""
import collections
import dataclasses
import os
import pickle
import re
import zipfile
from typing import Dict, Optional, Tuple

import numpy as np

from ._io import atomic_path, sha1_file, write_json
from .weights_spec import sidecar_path

__all__ = ["ConversionError", "Source", "SOURCES", "convert", "read_checkpoint", "sidecar_path"]


class ConversionError(ValueError):
    """A checkpoint cannot be converted: unknown source, unreadable file, or tensors that do
    not fit the zoo network."""


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

    The preprocessing the source's weights need is the
    :class:`~inceptionzoo.weights_spec.WeightsSpec` the zoo model declares for the source.
    """

    model: str
    renames: Tuple[Tuple[str, str], ...] = ()
    drop: Optional[str] = None
    aux_prefix: Optional[str] = None
    classifier: str = "fc.weight"


def _v4_renames():
    from .models.inception_v4 import INCEPTION_V4_NAMES

    return tuple((rf"^features\.{i}\.", name + ".") for i, name in enumerate(INCEPTION_V4_NAMES))


_GOOGLENET_RENAMES = (
    (r"^conv2\.", "conv2red."), (r"^conv3\.", "conv2."), (r"^fc\.", "output."),
    (r"\.branch1\.", ".b1."), (r"\.branch2\.0\.", ".b3red."), (r"\.branch2\.1\.", ".b3."),
    (r"\.branch3\.0\.", ".b5red."), (r"\.branch3\.1\.", ".b5."), (r"\.branch4\.1\.", ".proj."),
)

#: ``(source, source model name) -> Source``; the preprocessing of each is declared beside
#: its zoo model (``model_weights(model)``, matched by ``source``)
SOURCES: Dict[Tuple[str, str], Source] = {
    ("torchvision", "inception_v3"): Source("inception_v3", aux_prefix="AuxLogits."),
    ("timm", "inception_v3"): Source("inception_v3", aux_prefix="AuxLogits."),
    ("torchvision", "googlenet"): Source("googlenet_bn", renames=_GOOGLENET_RENAMES,
                                         drop=r"^aux[12]\."),
    ("timm", "inception_v4"): Source("inception_v4", renames=None, classifier="last_linear.weight"),
    ("timm", "inception_resnet_v2"): Source("inception_resnet_v2", classifier="classif.weight"),
    ("gluoncv", "inceptionv3"): Source("inception_v3", classifier="output.weight"),
    ("gluoncv", "googlenet"): Source("googlenet_bn", classifier="output.weight",
                                     drop=r"^head\."),
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
        The sidecar's content: ``WeightsSpec.to_dict()`` (``model``, ``file``, ``sha1``,
        ``source``, ``resize_size`` ...).
    """
    import mxnet as mx

    from . import get_model

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
    meta = _sidecar(kind, spec, source, classes, options, out, checkpoint).to_dict()
    write_json(sidecar_path(out), meta)
    return meta


def _sidecar(kind, spec, source, classes, options, out, checkpoint):
    """The converted file's :class:`~inceptionzoo.weights_spec.WeightsSpec`: the one the zoo
    model declares for this source, with what this conversion made filled in."""
    from . import __version__
    from ._registry import model_weights

    tag = f"{kind}:{spec.split(':', 1)[1].lower()}"
    declared = [w for w in model_weights(source.model) if w.source == tag]
    if not declared:
        raise ConversionError(f"model {source.model!r} declares no weights spec for {tag!r}")
    return dataclasses.replace(
        declared[0], classes=classes, class_names=declared[0].class_names
        if classes == declared[0].classes else None, options=dict(options),
        file=os.path.basename(out), sha1=sha1_file(out),
        checkpoint=os.path.basename(os.fspath(checkpoint)), checkpoint_sha1=sha1_file(checkpoint),
        inceptionzoo_version=__version__)
