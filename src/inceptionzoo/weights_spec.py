"""The one schema of a set of weights (one job: describing and validating it): which network
they fit, their classes and class names, the preprocessing they were trained and evaluated
with, where they come from and their SHA-1.

A :class:`WeightsSpec` is declared beside each ``register_model`` (the weights that exist for a
network: the shipped MNIST files, the configs of the checkpoints ``inceptionzoo convert``
takes), is each entry of the shipped ``pretrained/manifest.json``, and is the JSON sidecar
``FILE.json`` that ``inceptionzoo convert`` writes beside ``FILE.params``. It plays the part of
torchvision's ``Weights`` and timm's ``PretrainedCfg``.

The evaluation transform it describes: resize the shorter side of an image to ``resize_size``
with ``interpolation``, centre-crop ``input_size[1:]``, scale to [0, 1], normalise with
``mean`` / ``std``. ``resize_size`` is explicit because the sources do not agree on how to
derive it from ``crop_pct``: torchvision resizes Inception-v3 to 342 (``299 / 342`` is not exact
in floating point), timm to ``floor(size / crop_pct)`` (341 for 299 at 0.875), gluoncv to
``ceil(size / crop_pct)``.
"""
import dataclasses
import os
import re
from typing import Optional, Tuple, Union

from ._checks import is_integer as _is_int, is_number
from ._io import read_json
from .errors import WeightsError, WrongTypeError
from .imaging import ImageError
from .transforms import INTERPOLATIONS as _RESAMPLING, EvalTransform, Normalisation

__all__ = ["WeightsSpec", "IMAGENET_1K", "IMAGENET_MEAN", "IMAGENET_STD", "PLAIN",
           "resolve_labels", "imagenet_classes", "sidecar_path", "read_sidecar", "transforms_for"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: ``source`` of a plain Gluon ``.params`` file (no sidecar): loaded with the network's
#: default transform, which is all that is known of it
PLAIN = "plain .params file"

#: ``class_names`` value that stands for the shipped ImageNet-1k list (:func:`imagenet_classes`)
IMAGENET_1K = "imagenet-1k"
INTERPOLATIONS = tuple(_RESAMPLING)  # the filters the evaluation transform has


_IMAGENET_CACHE = []


def imagenet_classes():
    """The ImageNet-1k class names in index order (``tench``, ``goldfish``, ...), from
    ``pretrained/imagenet_classes.txt`` (written by ``scripts/imagenet_classes.py``).

    Returns
    -------
    tuple of str
        1000 names.
    """
    if not _IMAGENET_CACHE:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained",
                            "imagenet_classes.txt")
        with open(path, encoding="utf-8") as f:
            names = tuple(line.rstrip("\n").split("\t", 1)[1] for line in f if line.strip())
        if len(names) != 1000:
            raise RuntimeError(f"{path} holds {len(names)} classes, expected 1000: reinstall "
                               "inceptionzoo")
        _IMAGENET_CACHE.append(names)
    return _IMAGENET_CACHE[0]


def _opt(check):
    return lambda v: v is None or check(v)


def _is_str(v):
    return isinstance(v, str) and bool(v)


def _is_sha1(v):
    return isinstance(v, str) and len(v) == 40 and all(c in "0123456789abcdef" for c in v)


def _is_tag(v):
    return isinstance(v, str) and re.fullmatch(r"[a-z0-9][a-z0-9_]*", v) is not None


def _is_triple(v):
    return isinstance(v, (list, tuple)) and len(v) == 3 and all(_is_int(x) and x > 0 for x in v)


def _is_floats(v):
    return isinstance(v, (list, tuple)) and len(v) >= 1 and all(is_number(x) for x in v)


def _is_names(v):
    return v is None or v == IMAGENET_1K or (
        isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v))


def _is_options(v):
    return isinstance(v, dict) and all(
        isinstance(k, str) and (v[k] is None or isinstance(v[k], (bool, int, float, str)))
        for k in v)


#: field -> (check, what it must be); the schema :meth:`WeightsSpec.from_dict` enforces
_FIELDS = {
    "model": (_is_str, "a model name (str)"),
    "classes": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "class_names": (_is_names, f"null, {IMAGENET_1K!r} or a list of str"),
    "input_size": (_is_triple, "[C, H, W], three integers >= 1"),
    "resize_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "crop_pct": (lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "interpolation": (lambda v: v in INTERPOLATIONS, f"one of {', '.join(INTERPOLATIONS)}"),
    "mean": (_is_floats, "a list of finite numbers"),  # std > 0 and the count: _problem
    "std": (_is_floats, "a list of finite numbers"),
    "source": (_is_str, "a str ('shipped', 'torchvision:inception_v3', ...)"),
    "tag": (_opt(_is_tag), "null or a tag (lower-case letters, digits and '_': 'tv_in1k')"),
    "file": (_opt(_is_str), "null or a file name (str)"),
    "sha1": (_opt(_is_sha1), "null or 40 lower-case hex digits"),
    "checkpoint": (_opt(_is_str), "null or a file name (str)"),
    "checkpoint_sha1": (_opt(_is_sha1), "null or 40 lower-case hex digits"),
    "options": (_is_options, "an object of network options (name: bool, number or str)"),
    "accuracy": (_opt(lambda v: is_number(v) and 0 <= v <= 1), "null or a number in [0, 1]"),
    "dataset": (_opt(_is_str), "null or a str"),
    "command": (_opt(_is_str), "null or a str"),
    "recipe": (_opt(lambda v: isinstance(v, dict)), "null or an object"),
    "seed": (_opt(_is_int), "null or an integer"),
    "inceptionzoo_version": (_opt(_is_str), "null or a str"),
}


@dataclasses.dataclass(frozen=True)
class WeightsSpec:
    """One set of weights of a zoo network and the preprocessing they need.

    Attributes
    ----------
    model : str
        The zoo model the weights fit.
    classes : int
        Outputs of their classifier.
    class_names : None, str or tuple of str
        The name of each class: a tuple, :data:`IMAGENET_1K` (the shipped list,
        :func:`imagenet_classes`), or None (the indices ``'0'``, ``'1'``, ...).
    input_size : (int, int, int)
        ``(C, H, W)`` the weights were evaluated at (the centre crop).
    resize_size : int
        The shorter side an image is resized to before the centre crop.
    crop_pct : float
        ``H / resize_size`` as the source states it (informative; ``resize_size`` decides).
    interpolation : str
        Resampling of that resize: ``'nearest'``, ``'bilinear'`` or ``'bicubic'``.
    mean, std : tuple of float
        Normalisation on pixels scaled to [0, 1]: ``(x / 255 - mean) / std`` per channel.
    source : str
        Where the weights come from: ``'shipped'``, the converter's ``SOURCE:NAME``,
        ``'inceptionzoo train'``, or :data:`PLAIN` (a Gluon ``.params`` file without a
        sidecar, described by the network's default transform).
    tag : str or None
        The weights' name among the network's (``'tv_in1k'``): ``get_model(NAME,
        pretrained=TAG)``, ``get_model('NAME.TAG', pretrained=True)``.
    file, sha1 : str or None
        The ``.params`` file's name and full SHA-1 (None in a declaration: no file yet).
    checkpoint, checkpoint_sha1 : str or None
        The source checkpoint a converted file was made from.
    options : dict
        Network options the weights need (``{'aux_logits': True}``).
    accuracy, dataset, command, recipe, seed : optional
        How the weights were made and measured, where known.
    inceptionzoo_version : str or None
        The version that wrote a sidecar.
    """

    model: str
    classes: int
    input_size: Tuple[int, int, int]
    resize_size: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    source: str
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    class_names: Union[None, str, Tuple[str, ...]] = None
    tag: Optional[str] = None
    file: Optional[str] = None
    sha1: Optional[str] = None
    checkpoint: Optional[str] = None
    checkpoint_sha1: Optional[str] = None
    options: dict = dataclasses.field(default_factory=dict)
    accuracy: Optional[float] = None
    dataset: Optional[str] = None
    command: Optional[str] = None
    recipe: Optional[dict] = None
    seed: Optional[int] = None
    inceptionzoo_version: Optional[str] = None

    def __post_init__(self):
        problem = _problem(dataclasses.asdict(self))
        if problem:
            raise WeightsError(f"WeightsSpec of {self.model!r}: {problem}")
        for key in ("input_size", "mean", "std"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        if isinstance(self.class_names, list):
            object.__setattr__(self, "class_names", tuple(self.class_names))

    def labels(self):
        """The class names, resolved: a list of ``classes`` str.

        Returns
        -------
        list of str
        """
        return resolve_labels(self.class_names, self.classes)

    def transforms(self):
        """The evaluation transform of these weights as one callable: a path, PIL image, uint8
        numpy array (``(H, W)`` or ``(H, W, C)``; ``(N, H, W, C)`` is N images) or a list of
        them -> the ``(N, C, H, W)`` float32 NDArray batch the network takes.

        Returns
        -------
        inceptionzoo.transforms.EvalTransform

        Examples
        --------
        >>> import numpy as np
        >>> from inceptionzoo import model_weights
        >>> t = model_weights('inception_mnist')[0].transforms()
        >>> t(np.zeros((28, 28), np.uint8)).shape
        (1, 1, 28, 28)
        """
        return EvalTransform(self.input_size[1:], self.input_size[0], self.resize_size,
                             self.interpolation, self.mean, self.std)

    def to_dict(self):
        """A JSON-friendly dict of every field (the sidecar's content).

        Returns
        -------
        dict
        """
        d = dataclasses.asdict(self)
        for key in ("input_size", "mean", "std"):
            d[key] = list(d[key])
        if isinstance(d["class_names"], tuple):
            d["class_names"] = list(d["class_names"])
        return d

    @classmethod
    def from_dict(cls, d, path="<dict>"):
        """A spec from a dict (a sidecar or manifest entry), every field checked.

        Parameters
        ----------
        d : object
            The parsed JSON.
        path : str
            The file it was read from, named in errors.

        Returns
        -------
        WeightsSpec

        Raises
        ------
        WeightsError
            Naming ``path`` and the field: not an object, a field missing, unknown, of the wrong
            type or out of range.
        """
        if not isinstance(d, dict):
            raise WeightsError(f"{path}: expected a JSON object of weights fields "
                               f"({', '.join(_FIELDS)}); got a {type(d).__name__}")
        unknown = sorted(k for k in d if k not in _FIELDS)
        if unknown and set(unknown) <= {"params", "input_shape"}:  # inceptionzoo <= 0.1.0
            raise WeightsError(f"{path}: a sidecar of an older inceptionzoo (fields "
                               f"{', '.join(map(repr, unknown))}, no 'resize_size'): re-run "
                               "`inceptionzoo convert` on the checkpoint to rewrite it")
        if unknown:
            raise WeightsError(f"{path}: unknown field(s) {', '.join(map(repr, unknown))}; "
                               f"expected only {', '.join(_FIELDS)}")
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in d]
        if missing:
            raise WeightsError(f"{path}: field(s) {', '.join(map(repr, missing))} missing "
                               "(a sidecar written by an older inceptionzoo? re-run "
                               "`inceptionzoo convert`)")
        problem = _problem(d)
        if problem:
            raise WeightsError(f"{path}: {problem}")
        return cls(**d)


def _problem(d):
    """The first field of ``d`` that breaks the schema, as a sentence, or None."""
    for key, (check, want) in _FIELDS.items():
        if key in d and not check(d[key]):
            return f"field {key!r} must be {want}; got {d[key]!r}"
    try:  # finite, std > 0, 1 or C values: the one check of the one normaliser
        Normalisation(d["mean"], d["std"], d["input_size"][0])
    except ImageError as err:
        return f"field {str(err).split()[0]!r}: {err}"
    names = d.get("class_names")
    if names == IMAGENET_1K and d["classes"] != 1000:
        return f"field 'class_names' is {IMAGENET_1K!r} but 'classes' is {d['classes']}"
    if isinstance(names, (list, tuple)) and len(names) != d["classes"]:
        return f"field 'class_names' has {len(names)} names for {d['classes']} classes"
    return None


def resolve_labels(class_names, classes):
    """The class names of a spec or ``ModelInfo``, resolved to ``classes`` strings.

    Parameters
    ----------
    class_names : None, str or sequence of str
        As in :class:`WeightsSpec`.
    classes : int
        Number of classes.

    Returns
    -------
    list of str
        The names; the indices as strings when there are none (or they do not fit).
    """
    if class_names == IMAGENET_1K and classes == 1000:
        return list(imagenet_classes())
    if isinstance(class_names, (list, tuple)) and len(class_names) == classes:
        return [str(n) for n in class_names]
    return [str(i) for i in range(classes)]


def transforms_for(net):
    """The evaluation transform of a built network as one callable (see
    :meth:`WeightsSpec.transforms`): its loaded weights' (``net.info`` describes them), else
    the network's default.

    Parameters
    ----------
    net : ZooNet
        A network from :func:`inceptionzoo.get_model`.

    Returns
    -------
    inceptionzoo.transforms.EvalTransform
    """
    info = getattr(net, "info", None)
    if info is None:
        raise WrongTypeError(f"expected a network from inceptionzoo.get_model (with .info); "
                             f"got {type(net).__name__}")
    return EvalTransform.from_info(info)


def sidecar_path(params_path):
    """``FILE.json`` beside ``FILE.params``.

    Parameters
    ----------
    params_path : str or os.PathLike

    Returns
    -------
    str
    """
    return os.path.splitext(os.fspath(params_path))[0] + ".json"


def read_sidecar(path):
    """The validated :class:`WeightsSpec` of a ``.params`` file, from its JSON sidecar.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.params`` file.

    Returns
    -------
    WeightsSpec

    Raises
    ------
    WeightsError
        The file or its sidecar is missing, the sidecar is not JSON, or breaks the schema
        (naming the sidecar and the field).
    """
    path = os.fspath(path)
    side = sidecar_path(path)
    if not os.path.isfile(path):
        raise WeightsError(f"parameter file {path!r} does not exist")
    if not os.path.exists(side):
        raise WeightsError(f"{side!r} is missing: a converted weight file needs the sidecar "
                           "`inceptionzoo convert` writes beside it")
    return WeightsSpec.from_dict(read_json(side, WeightsError), repr(side))
