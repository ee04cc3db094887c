"""The model registry: ``register_model`` next to each definition, and the lookups (data only:
building a network with its weights is :mod:`inceptionzoo._builder`'s job, ``get_model``
:mod:`inceptionzoo._factory`'s).

Names are case-insensitive (stored lower-case). Metadata is queryable without building a model
and is always handed out as a copy.
"""
import copy
import dataclasses
import difflib
import fnmatch
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from .checkpoint_filter import Source
from .cost import count, num_params
from .errors import InceptionZooError, UnknownModelError, WrongTypeError
from .transforms import channel_normalisation, normalisation, resize_size_for
from .weights_spec import resolve_labels

__all__ = ["ModelInfo", "UnknownModelError", "register_model", "list_models", "model_info",
           "model_weights", "model_entrypoint", "split_tag", "checkpoint_sources",
           "ModelExamples", "model_examples"]

#: factory arguments that do not change the network's structure
_LOADING_ARGS = {"pretrained", "root", "ctx", "prefix"}


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
        Number of parameters with the default ``classes``: counted from the built network
        (:func:`inceptionzoo.cost.count`) the first time the model's metadata is asked for,
        then kept for the process, unless ``register_model`` is given it.
    macs : int or None
        Multiply-accumulates of one forward pass on one ``input_shape`` sample (counted with
        ``num_params``).
    paper : str
        Where the architecture comes from.
    pretrained : dict or None
        The weights LOADED into the network (their spec as a dict: tag, source, file, SHA-1
        ...; ``net.weights`` is that spec); None for :func:`model_info` and for a network
        without weights. Which weights a model declares: :func:`model_weights`.
    mean, std : tuple of float
        Per-channel normalisation the network expects, on pixels scaled to [0, 1]:
        ``x = (image / 255 - mean) / std`` (one value per input channel; timm's
        ``pretrained_cfg`` convention). MNIST networks: mean 0, std 1.
    layout : str
        Layout of the network's input: ``'NCHW'``.
    crop_pct : float
        Evaluation crop as the weights' source states it: ``input_shape[1] / resize_size``
        (1.0: resized straight to the input size).
    interpolation : str
        Resampling filter of that resize: ``'bilinear'`` or ``'bicubic'``.
    resize_size : int
        The shorter side an image is resized to before the centre crop to ``input_shape[1:]``
        (default: timm's ``floor(input_size / crop_pct)``; the weights' spec sets it exactly,
        e.g. 342 for torchvision's Inception-v3).
    class_names : None, str or tuple of str
        The classes' names (see :class:`~inceptionzoo.weights_spec.WeightsSpec`):
        ``'imagenet-1k'`` for the shipped ImageNet-1k list; :meth:`labels` resolves them.
    """

    name: str
    description: str
    input_shape: Tuple[int, int, int]
    classes: int
    variant: str
    num_params: Optional[int] = None
    macs: Optional[int] = None
    paper: str = ""
    pretrained: Optional[dict] = None
    mean: Tuple[float, ...] = (0.0,)
    std: Tuple[float, ...] = (1.0,)
    layout: str = "NCHW"
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    resize_size: Optional[int] = None
    class_names: Union[None, str, Tuple[str, ...]] = None

    def __post_init__(self):
        try:  # the one check of mean/std
            mean, std = normalisation(self.mean, self.std, self.input_shape[0])
        except ValueError as err:
            raise InceptionZooError(f"{self.name}: {err}") from None
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        if not 0 < self.crop_pct <= 1:
            raise InceptionZooError(
                f"{self.name}: crop_pct must be in (0, 1]; got {self.crop_pct}")
        if self.resize_size is None:
            side = min(self.input_shape[1:])
            object.__setattr__(self, "resize_size", resize_size_for(side, self.crop_pct))

    def labels(self):
        """The name of each class, resolved (``'0'``, ``'1'`` ... when there are none).

        Returns
        -------
        list of str
        """
        return resolve_labels(self.class_names, self.classes)

    def to_dict(self) -> dict:
        """A plain-dict (JSON-friendly) copy."""
        d = dataclasses.asdict(self)
        for key in ("input_shape", "mean", "std"):
            d[key] = list(d[key])
        if isinstance(d["class_names"], tuple):
            d["class_names"] = list(d["class_names"])
        return d

    def for_network(self, net, options=None):
        """This info made true for ``net``, a network built with ``options`` (its factory's
        keyword arguments) or changed since (``reset_classifier``, ``adapt_input_channels``):
        ``input_shape``, ``classes``, ``num_params`` and ``macs`` counted on it when an option
        changes its structure, the normalisation fitted to its input channels; ``pretrained``
        None and the class names dropped when the classes differ.

        Parameters
        ----------
        net : mxnet.gluon.HybridBlock
            The network (its ``classes``, ``in_channels``, ``default_hw`` and ``weights``
            attributes, where it has them).
        options : dict, optional
            The options it was built or changed with.

        Returns
        -------
        ModelInfo
            A copy (this one when nothing changes the network).
        """
        info = copy.deepcopy(self)
        changes = {k: v for k, v in (options or {}).items() if k not in _LOADING_ARGS}
        same_classes = getattr(net, "classes", info.classes) == info.classes
        loaded = getattr(net, "weights", None)  # options may come from the weights' spec
        if same_classes and not loaded and all(getattr(info, k, None) == v
                                               for k, v in changes.items()):
            return info
        c = getattr(net, "in_channels", info.input_shape[0])
        shape = (c,) + tuple(getattr(net, "default_hw", info.input_shape[1:]))
        mean, std = channel_normalisation(info.mean, info.std, c)
        return dataclasses.replace(
            info, input_shape=shape, classes=getattr(net, "classes", info.classes),
            num_params=num_params(net), macs=count(net, shape).macs, mean=mean, std=std,
            pretrained=None, class_names=info.class_names if same_classes else None)


@dataclasses.dataclass(frozen=True)
class _Entry:
    factory: Callable
    info: ModelInfo
    weights: tuple = ()
    counted: bool = True  # num_params / macs known (given, or counted already)
    sources: tuple = ()  # ((kind, name), Source) of the checkpoints that convert to it
    examples: "ModelExamples" = None  # its example_options and published_gmacs


_ENTRIES: Dict[str, _Entry] = {}


def register_model(name: Optional[str] = None, weights=(), sources=None, example_options=(),
                   published_gmacs=None, **meta):
    """Decorator that registers a model factory under ``name``.

    Parameters
    ----------
    name : str, optional
        Registry name (stored lower case); default: the decorated function's name.
    weights : sequence of WeightsSpec
        The weights that exist for the model (:class:`~inceptionzoo.weights_spec.WeightsSpec`):
        shipped files, and the checkpoints ``inceptionzoo convert`` turns into its weights.
        Each has a ``tag``, unique for the model (``get_model(NAME, pretrained=TAG)``); the
        first is the default (``pretrained=True``), and its preprocessing (mean, std, crop,
        resize, interpolation, class names) fills the :class:`ModelInfo` fields not given in
        ``meta``.
    sources : dict, optional
        ``{'SOURCE:NAME': Source}``: the family's checkpoint filter
        (:class:`~inceptionzoo.checkpoint_filter.Source`) of each source network that
        ``inceptionzoo convert SOURCE:NAME`` turns into this model's weights. Each needs a
        spec in ``weights`` with that ``source``; a source network converts to one model only.
    example_options : sequence of dict, optional
        Options that build a network other than the default one (``{'classes': 5}``,
        ``{'aux_logits': True}`` ...): the registry-driven tests check the metadata of each
        (:func:`model_examples`).
    published_gmacs : float, optional
        The multiply-accumulates (in 10^9) a published source gives the network at
        ``input_shape``; the tests check the counted ``macs`` against it (to 1%).
    **meta
        The :class:`ModelInfo` fields other than ``name``. Leave out ``num_params`` and
        ``macs``: they are counted from the network on first use.

    Returns
    -------
    callable
        A decorator that returns the factory unchanged.

    Raises
    ------
    InceptionZooError
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
        specs = tuple(weights)
        bad = [s.model for s in specs if s.model != key]
        if bad:
            raise InceptionZooError(f"weights declared for {key!r} name another model: {bad}")
        tags = [s.tag for s in specs]
        if None in tags or len(set(tags)) != len(tags):
            raise InceptionZooError(f"weights declared for {key!r} need a tag each, unique; "
                                    f"got {tags}")
        filters = _declared_sources(key, sources or {}, specs)
        examples = _declared_examples(key, example_options, published_gmacs)
        fields = dict(meta)
        if specs:
            first = specs[0]
            for field in ("mean", "std", "crop_pct", "interpolation", "resize_size",
                          "class_names"):
                fields.setdefault(field, getattr(first, field))
        _ENTRIES[key] = _Entry(factory, ModelInfo(name=key, **fields), specs,
                               counted="num_params" in fields, sources=filters,
                               examples=examples)
        return factory

    return wrap


def _declared_sources(key, sources, specs):
    """``register_model``'s ``sources``, checked, as ``(((kind, name), Source), ...)``."""
    taken = {k: e.info.name for e in _ENTRIES.values() for k, _ in e.sources}
    declared = {s.source for s in specs}
    out = []
    for tag, source in sources.items():
        kind, sep, net = tag.lower().partition(":")
        if not (sep and kind and net) or not isinstance(source, Source):
            raise InceptionZooError(f"sources of {key!r} must map 'SOURCE:NAME' to a "
                                    f"checkpoint_filter.Source; got {tag!r}: {source!r}")
        if (kind, net) in taken:
            raise InceptionZooError(f"source {tag!r} of {key!r} already converts to "
                                    f"{taken[kind, net]!r}")
        if f"{kind}:{net}" not in declared:
            raise InceptionZooError(f"source {tag!r} of {key!r} has no WeightsSpec with "
                                    f"source={kind + ':' + net!r} in weights (its preprocessing)")
        out.append(((kind, net), dataclasses.replace(source, model=key)))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class ModelExamples:
    """What a model file declares for checking the model (``register_model``'s
    ``example_options`` and ``published_gmacs``).

    Attributes
    ----------
    options : tuple of dict
        Options that build a network other than the default one.
    published_gmacs : float or None
        Published multiply-accumulates, in 10^9, at the model's ``input_shape``.
    """

    options: Tuple[dict, ...] = ()
    published_gmacs: Optional[float] = None


def _declared_examples(key, options, gmacs):
    """``register_model``'s ``example_options`` and ``published_gmacs``, checked."""
    options = () if options is None else options
    if isinstance(options, (dict, str)) or not all(
            isinstance(o, dict) and o and all(isinstance(k, str) for k in o) for o in options):
        raise InceptionZooError(f"example_options of {key!r} must be a list of non-empty dicts "
                                f"of options; got {options!r}")
    if gmacs is not None and (isinstance(gmacs, bool) or not isinstance(gmacs, (int, float))
                              or not gmacs > 0):
        raise InceptionZooError(f"published_gmacs of {key!r} must be a number > 0; got "
                                f"{gmacs!r}")
    return ModelExamples(tuple(dict(o) for o in options), gmacs)


def model_examples(name: str) -> ModelExamples:
    """What the model's file declares for checking it (see :class:`ModelExamples`), as a copy.

    Parameters
    ----------
    name : str
        Registry name, case-insensitive.

    Returns
    -------
    ModelExamples
    """
    entry = _ENTRIES.get(name.lower()) if isinstance(name, str) else None
    return copy.deepcopy((entry or _entry(name)).examples)  # nothing to count for them


def checkpoint_sources():
    """Every source network ``inceptionzoo convert`` knows, with its checkpoint filter.

    Returns
    -------
    dict
        ``{(source, name): Source}`` (e.g. ``('torchvision', 'inception_v3')``), in
        registration order; each ``Source.model`` is the zoo model it converts to.
    """
    return {k: s for e in _ENTRIES.values() for k, s in e.sources}


def _unregister(name: str) -> None:
    """Remove a registration (for tests that register throw-away models)."""
    del _ENTRIES[name.lower()]


def _entry(name: str) -> _Entry:
    if not isinstance(name, str):
        raise WrongTypeError(f"a model name must be a str, got {type(name).__name__}")
    key = name.lower()
    if key in _ENTRIES:
        if not _ENTRIES[key].counted:
            _count(key)
        return _ENTRIES[key]
    known = sorted(_ENTRIES, key=_natural_key)
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(
        f"unknown model {name!r}.{hint} Registered models: {', '.join(known)}."
    )


def _count(key: str) -> None:
    """Fill in ``num_params`` and ``macs`` of a registration, counted on its default network
    (symbolic: nothing is initialised; all seven models take about 0.5 s together)."""
    entry = _ENTRIES[key]
    _ENTRIES[key] = dataclasses.replace(entry, counted=True)  # the factory may look itself up
    try:
        net = entry.factory()
        info = entry.info
        macs = count(net, info.input_shape).macs if info.macs is None else info.macs
        info = dataclasses.replace(info, num_params=num_params(net), macs=macs)
    except BaseException:
        _ENTRIES[key] = entry
        raise
    _ENTRIES[key] = dataclasses.replace(entry, info=info, counted=True)


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model, as a copy; no weights are initialised or loaded (the
    first lookup of a model in a process declares its default network once, symbolically, to
    count ``num_params`` and ``macs``).

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


def model_weights(name: str):
    """The weights declared for a model (shipped files, convertible checkpoints), as copies.

    Parameters
    ----------
    name : str
        Registry name, case-insensitive.

    Returns
    -------
    tuple of WeightsSpec
        Each with its ``tag``; the first is the default (``pretrained=True``) and the model's
        default preprocessing; empty when none are declared.
    """
    return copy.deepcopy(_entry(name).weights)


def split_tag(name: str):
    """``'inception_v3.tv_in1k'`` -> ``('inception_v3', 'tv_in1k')``; a name without a tag ->
    ``(name, None)``.

    Raises
    ------
    UnknownModelError
        The model is not registered, or does not declare the tag (the error lists its tags).
    """
    if not isinstance(name, str) or "." not in name:
        return name, None
    base, tag = name.split(".", 1)
    tags = [s.tag for s in _entry(base).weights]
    if tag.lower() not in tags:
        raise UnknownModelError(f"model {base!r} has no weights tagged {tag!r}; its tags: "
                                f"{', '.join(tags) or 'none'} (list_models(pretrained=True))")
    return base, tag.lower()


def model_entrypoint(name: str):
    """The factory registered under ``name`` (timm's ``model_entrypoint``): called with no
    argument it builds the default network, without weights. ``get_model`` is the one
    to use: it also attaches ``net.info`` and takes a weights tag in the name.

    Parameters
    ----------
    name : str
        Registry name, case-insensitive.

    Returns
    -------
    callable
    """
    return _entry(name).factory


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s.lower())]


Patterns = Union[None, str, Sequence[str]]


def _as_patterns(p: Patterns) -> List[str]:
    if p is None:
        return []
    if isinstance(p, str):
        return [p] if p else []
    return [q.lower() for q in p if q]


def list_models(include: Patterns = None, exclude: Patterns = None,
                pretrained: bool = False) -> List[str]:
    """Registered model names, sorted in natural order, as a new list.

    Parameters
    ----------
    include : str or list of str, optional
        fnmatch patterns; a name is kept when it matches any. ``None``, ``''`` or ``[]``
        keep every name.
    exclude : str or list of str, optional
        fnmatch patterns; a name matching any is dropped. ``None``, ``''`` or ``[]`` drop none.
    pretrained : bool, default False
        List each declared set of weights instead, timm style ``NAME.TAG``
        (``inception_v3.tv_in1k``; present or not: ``inceptionzoo list --weights`` says); a
        pattern matches the model's name or ``NAME.TAG``.
    """
    inc = [p.lower() for p in _as_patterns(include)]
    exc = [p.lower() for p in _as_patterns(exclude)]

    def kept(*spellings):
        hit = [any(fnmatch.fnmatchcase(n, p) for n in spellings) for p in inc + exc]
        return (not inc or any(hit[:len(inc)])) and not any(hit[len(inc):])

    names = sorted(_ENTRIES, key=_natural_key)
    if pretrained:
        return [f"{n}.{s.tag}" for n in names for s in _ENTRIES[n].weights
                if kept(n, f"{n}.{s.tag}")]
    return [n for n in names if kept(n)]
