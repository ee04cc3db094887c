"""The model registry: ``register_model`` next to each definition, and the lookups.

Names are case-insensitive (stored lower-case). Metadata is queryable without building a model
and is always handed out as a copy.
"""
import copy
import dataclasses
import difflib
import fnmatch
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from .errors import InceptionZooError, UnknownModelError, WrongTypeError

__all__ = ["ModelInfo", "UnknownModelError", "register_model", "get_model", "list_models",
           "model_info", "models_markdown"]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What is known about a registered model without building it.

    Attributes
    ----------
    name : str
        Registry name (lower case).
    description : str
        One line for tables.
    input_shape : tuple of int
        ``(C, H, W)`` of one sample at the size the model was designed for.
    classes : int
        Default number of output classes.
    variant : str
        Which Inception block the network uses: ``'naive'``, ``'reduced'`` (GoogLeNet's),
        ``'factorised'`` (Inception-v3's), ``'v4'`` or ``'resnet'`` (Inception-ResNet).
    num_params : int
        Number of parameters with the default ``classes`` (checked by the tests).
    macs : int or None
        Multiply-accumulates of one forward pass on one ``input_shape`` sample.
    paper : str
        Where the architecture comes from.
    pretrained : dict or None
        Shipped weights: file name, SHA-1, accuracy, recipe and the command that made them.
    mean, std : tuple of float
        Per-channel normalisation the network expects, on pixels scaled to [0, 1]:
        ``x = (image / 255 - mean) / std`` (one value per input channel; timm's
        ``pretrained_cfg`` convention). MNIST networks: mean 0, std 1.
    layout : str
        Layout of the network's input: ``'NCHW'``.
    crop_pct : float
        Evaluation crop: an image is resized so that its shorter side is
        ``input_size / crop_pct``, then centre-cropped to ``input_shape[1:]`` (1.0: resized
        straight to the input size).
    interpolation : str
        Resampling filter of that resize: ``'bilinear'`` or ``'bicubic'``.
    """

    name: str
    description: str
    input_shape: Tuple[int, int, int]
    classes: int
    variant: str
    num_params: int
    macs: Optional[int] = None
    paper: str = ""
    pretrained: Optional[dict] = None
    mean: Tuple[float, ...] = (0.0,)
    std: Tuple[float, ...] = (1.0,)
    layout: str = "NCHW"
    crop_pct: float = 1.0
    interpolation: str = "bilinear"

    def __post_init__(self):
        from .transforms import normalisation  # the one check of mean/std

        try:
            mean, std = normalisation(self.mean, self.std, self.input_shape[0])
        except ValueError as err:
            raise InceptionZooError(f"{self.name}: {err}") from None
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        if not 0 < self.crop_pct <= 1:
            raise InceptionZooError(
                f"{self.name}: crop_pct must be in (0, 1]; got {self.crop_pct}")

    def to_dict(self) -> dict:
        """A plain-dict (JSON-friendly) copy."""
        d = dataclasses.asdict(self)
        for key in ("input_shape", "mean", "std"):
            d[key] = list(d[key])
        return d


@dataclasses.dataclass(frozen=True)
class _Entry:
    factory: Callable
    info: ModelInfo


_ENTRIES: Dict[str, _Entry] = {}


def register_model(name: Optional[str] = None, **meta):
    """Decorator that registers a model factory under ``name``.

    Parameters
    ----------
    name : str, optional
        Registry name (stored lower case); default: the decorated function's name.
    **meta
        The :class:`ModelInfo` fields other than ``name``.

    Returns
    -------
    callable
        A decorator that returns the factory unchanged.

    Raises
    ------
    ValueError
        If the name is already registered (case-insensitively).
    """

    def wrap(factory):
        key = (name or factory.__name__).lower()
        if key in _ENTRIES:
            prev = _ENTRIES[key].factory
            raise InceptionZooError(
                f"a model named {key!r} is already registered "
                f"(by {prev.__module__}.{prev.__qualname__})"
            )
        _ENTRIES[key] = _Entry(factory, ModelInfo(name=key, **meta))
        return factory

    return wrap


def _unregister(name: str) -> None:
    """Remove a registration (for tests that register throw-away models)."""
    del _ENTRIES[name.lower()]


def _entry(name: str) -> _Entry:
    if not isinstance(name, str):
        raise WrongTypeError(f"a model name must be a str, got {type(name).__name__}")
    key = name.lower()
    if key in _ENTRIES:
        return _ENTRIES[key]
    known = sorted(_ENTRIES, key=_natural_key)
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(
        f"unknown model {name!r}.{hint} Registered models: {', '.join(known)}."
    )


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model, as a copy; the model is not built.

    Parameters
    ----------
    name : str
        Registry name, case-insensitive.

    Returns
    -------
    ModelInfo

    Examples
    --------
    >>> model_info('inception_mnist').input_shape
    (1, 28, 28)
    """
    return copy.deepcopy(_entry(name).info)


def get_model(name: str, **kwargs):
    """Build a registered model.

    Parameters
    ----------
    name : str
        Registry name, case-insensitive (see :func:`list_models`).
    **kwargs
        Passed to the model's factory: ``classes``, ``pretrained``, ``root``, ``ctx`` and the
        model's own options.

    Returns
    -------
    mxnet.gluon.HybridBlock
        The network, with its :class:`ModelInfo` attached as ``net.info``. When options change
        the network (``classes``, ``in_channels``, ``batch_norm``, ``aux_logits`` ...),
        ``input_shape``, ``classes``, ``num_params`` and ``macs`` are those of the network
        actually built, and ``pretrained`` is kept only if the shipped weights were loaded.
    """
    entry = _entry(name)
    net = entry.factory(**kwargs)
    net.info = _built_info(entry.info, net, kwargs)
    if getattr(net, "weights_info", None):  # converted weights: their preprocessing
        net.info = dataclasses.replace(net.info, **net.weights_info)
    return net


#: factory arguments that do not change the network's structure
_LOADING_ARGS = {"pretrained", "root", "ctx", "prefix"}


def _built_info(info: ModelInfo, net, kwargs) -> ModelInfo:
    """``info`` made true for ``net``: recounted when structural options were passed."""
    info = copy.deepcopy(info)
    changes = {k: v for k, v in kwargs.items() if k not in _LOADING_ARGS}
    same_classes = getattr(net, "classes", info.classes) == info.classes
    converted = getattr(net, "weights_info", None)  # options may come from the weights' sidecar
    if same_classes and not converted and (not changes or all(getattr(info, k, None) == v
                                            for k, v in changes.items())):
        return info
    from .cost import count, num_params

    c = getattr(net, "in_channels", info.input_shape[0])
    shape = (c,) + tuple(getattr(net, "default_hw", info.input_shape[1:]))
    report = count(net, shape)
    mean, std = info.mean, info.std
    if c != info.input_shape[0]:  # one value repeated, or the first channel's value
        mean, std = (mean[0],) * c, (std[0],) * c
    return dataclasses.replace(
        info, input_shape=shape, classes=getattr(net, "classes", info.classes),
        num_params=num_params(net), macs=report.macs, mean=mean, std=std,
        pretrained=info.pretrained if kwargs.get("pretrained") else None)


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s.lower())]


Patterns = Union[None, str, Sequence[str]]


def _as_patterns(p: Patterns) -> List[str]:
    if p is None:
        return []
    if isinstance(p, str):
        return [p] if p else []
    return [q.lower() for q in p if q]


def list_models(include: Patterns = None, exclude: Patterns = None) -> List[str]:
    """Registered model names, sorted in natural order, as a new list.

    Parameters
    ----------
    include : str or list of str, optional
        fnmatch patterns; a name is kept when it matches any. ``None``, ``''`` or ``[]``
        keep every name.
    exclude : str or list of str, optional
        fnmatch patterns; a name matching any is dropped. ``None``, ``''`` or ``[]`` drop none.
    """
    names = list(_ENTRIES)
    inc = [p.lower() for p in _as_patterns(include)]
    exc = [p.lower() for p in _as_patterns(exclude)]
    if inc:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in inc)]
    if exc:
        names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in exc)]
    return sorted(names, key=_natural_key)


def _fmt_int(n):
    return f"{n:,}" if n is not None else "-"


def models_markdown():
    """The model table of ``docs/models.md`` (``inceptionzoo list --markdown``), from the
    registry.

    Returns
    -------
    str
        A Markdown table, one row per registered model, in :func:`list_models` order.
    """
    rows = ["| model | block | input (C, H, W) | classes | parameters | MACs | pretrained "
            "top-1 | description |",
            "|---|---|---|---|---:|---:|---:|---|"]
    for name in list_models():
        i = model_info(name)
        acc = f"{i.pretrained['accuracy']:.4f}" if i.pretrained else "-"
        shape = "x".join(str(d) for d in i.input_shape)
        rows.append(f"| `{name}` | {i.variant} | {shape} | {i.classes} | {_fmt_int(i.num_params)}"
                    f" | {_fmt_int(i.macs)} | {acc} | {i.description} |")
    return "\n".join(rows) + "\n"
