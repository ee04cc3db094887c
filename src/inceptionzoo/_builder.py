"""The one builder behind every registered factory (one job: a network with the weights
``pretrained`` names), in the manner of timm's ``build_model_with_cfg``.

``pretrained`` means the same for every network:

- ``True``: the weights registered for the model: its shipped file (MNIST; user cache first,
  see :func:`inceptionzoo.weights.find_weights`), else the converted file ``NAME.params`` (with
  its sidecar ``NAME.json``) in the weights folder (``root``, else ``$INCEPTIONZOO_HOME``, else
  ``~/.inceptionzoo``); none is a :class:`~inceptionzoo.weights.WeightsError` naming the
  ``inceptionzoo convert`` command that makes one;
- a path: that ``.params`` file, described by its sidecar (a shipped file needs none: its SHA-1
  identifies it), SHA-1 checked, for any network;
- ``False`` / ``None``: no weights.

``classes`` other than the weights' loads every layer but the classifier, which is new
(:meth:`~inceptionzoo.models._base.ZooNet.reset_classifier`). The weights' spec is attached as
``net.weights`` and :func:`with_weights` makes ``net.info`` describe it.
"""
import dataclasses
import inspect
import os

from ._io import sha1_file
from .errors import InceptionZooError
from .weights import WeightsError, find_weights, load_params_file, weights_home
from .weights_spec import read_sidecar, sidecar_path

__all__ = ["build", "resolve_weights", "with_weights", "as_features", "canonical_path",
           "FACTORY_DOC"]


FACTORY_DOC = """{title}.{note}

    Parameters
    ----------
    classes : int, optional
        Output classes; default: the weights' when ``pretrained`` loads some, else {classes}.
        Another count than the weights' loads every layer but the classifier, which is new.
    pretrained : bool or str, default False
        ``True``: the weights registered for the model ({where}); a path: that ``.params`` file
        (checked against the SHA-1 of its sidecar, whose preprocessing goes into
        ``net.info``); ``False``: none.
    root : str, optional
        The weights folder (default ``$INCEPTIONZOO_HOME``, else ``~/.inceptionzoo``).
    ctx : mxnet.Context or list, optional
        Where to load the weights.
    **kwargs
        Options of :class:`{cls}`.

    Returns
    -------
    {cls}
    """


def canonical_path(name, root=None):
    """Where ``pretrained=True`` looks for a converted file of model ``name``.

    Parameters
    ----------
    name : str
        Registry name.
    root : str, optional
        The weights folder (see :func:`inceptionzoo.weights.weights_home`).

    Returns
    -------
    str
        ``<weights folder>/<name>.params`` (its sidecar: ``<name>.json``).
    """
    return os.path.join(weights_home(root), f"{name.lower()}.params")


def _convert_hint(name, root):
    from ._registry import model_weights

    sources = [s.source for s in model_weights(name) if ":" in s.source]
    out = canonical_path(name, root)
    if not sources:
        return (f"no checkpoint converts to {name!r}: put a .params file with its sidecar at "
                f"{out!r}, or give the file itself (--params FILE; pretrained=PATH in Python)")
    return (f"convert a checkpoint into it: `inceptionzoo convert {sources[0]} CHECKPOINT --out "
            f"{os.path.dirname(out)}` (sources: {', '.join(sources)}; `inceptionzoo convert "
            "--help`, and the documentation's page \"Bring your weights\"), or give the file "
            "itself (--params FILE; pretrained=PATH in Python)")


def resolve_weights(name, pretrained, root=None, plain_ok=False):
    """Which file and spec ``pretrained`` names for model ``name`` (nothing is loaded or
    hashed but a sidecar-less file, which may be a shipped one).

    Parameters
    ----------
    name : str
        Registry name.
    pretrained : bool, str or os.PathLike
        As for :func:`build`.
    root : str, optional
        The weights folder.
    plain_ok : bool, default False
        A path without a sidecar that is no shipped file is returned with spec None (a plain
        parameter file of the model, e.g. a training checkpoint) instead of refused.

    Returns
    -------
    (str or None, WeightsSpec or None)
    """
    from ._registry import model_weights

    if pretrained is None or pretrained is False:
        return None, None
    specs = model_weights(name)
    if pretrained is True:
        shipped = [s for s in specs if s.sha1]
        if shipped:
            return find_weights(name, root=root), shipped[0]
        path = canonical_path(name, root)
        if not os.path.isfile(path):
            raise WeightsError(f"no pretrained weights ship for {name!r} and the weights "
                               f"folder has no {os.path.basename(path)}: "
                               + _convert_hint(name, root))
        return path, read_sidecar(path)
    if not isinstance(pretrained, (str, os.PathLike)):
        raise WeightsError(f"pretrained must be True, False or the path of a .params file; "
                           f"got {pretrained!r}")
    path = os.path.abspath(os.fspath(pretrained))
    if os.path.isfile(path) and not os.path.isfile(sidecar_path(path)):
        got = sha1_file(path)
        known = [s for s in specs if s.sha1 == got]
        if known:
            return path, known[0]
        if plain_ok:
            return path, None
    return path, read_sidecar(path)


def _network_options(cls):
    """The option names ``cls`` takes (its constructor's named parameters)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                names.add(p.name)
    return names - {"classes", "prefix", "params", "layout", "fc_name", "default_hw"}


def _check_spec(name, cls, path, spec, kwargs):
    side = sidecar_path(path)
    if spec.model != name:
        raise WeightsError(f"{path!r} holds weights of {spec.model!r}, not {name!r}")
    if spec.sha1 is None:
        raise WeightsError(f"{side!r}: field 'sha1' is null: the weights cannot be checked")
    got = sha1_file(path)
    if got != spec.sha1:
        raise WeightsError(f"{path!r} has SHA-1 {got}; its sidecar {side!r} records "
                           f"{spec.sha1}: the file is corrupt or was replaced")
    allowed = _network_options(cls)
    for key, value in spec.options.items():
        if key not in allowed:
            raise WeightsError(f"{side!r}: field 'options' has {key!r}, which {cls.__name__} "
                               f"does not take (it takes {', '.join(sorted(allowed))})")
        if kwargs.setdefault(key, value) != value:
            raise WeightsError(f"{path!r} was converted with {key}={value}; got "
                               f"{key}={kwargs[key]}")


def _check_geometry(net, path, spec):
    """The sidecar's input size must be one the network takes, and its resize a sane one."""
    side = sidecar_path(path)
    try:
        net.check_input_shape((1,) + tuple(spec.input_size))
    except InceptionZooError as err:
        raise WeightsError(f"{side!r}: field 'input_size' {list(spec.input_size)} does not fit "
                           f"the network ({err})") from None
    top = 8 * max(spec.input_size[1:])
    if spec.resize_size > top:
        raise WeightsError(f"{side!r}: field 'resize_size' must be at most {top} (8 x the input "
                           f"size); got {spec.resize_size}")


def build(name, cls, classes=None, pretrained=False, root=None, ctx=None, **kwargs):
    """Build network ``cls`` for registry entry ``name`` and load the weights ``pretrained``
    names (see the module's docstring).

    Parameters
    ----------
    name : str
        Registry name (also the parameter prefix, ``name + '_'``).
    cls : type
        The network class (a :class:`~inceptionzoo.models._base.ZooNet`).
    classes : int, optional
        Output classes; default: the weights', else the registered count.
    pretrained : bool, str or os.PathLike
        ``True``, a path, or ``False`` / ``None``.
    root : str, optional
        The weights folder.
    ctx : mxnet.Context or list, optional
        Where to load the weights.
    **kwargs
        The network's options.

    Returns
    -------
    ZooNet
        With ``net.weights``: the loaded weights' :class:`~inceptionzoo.weights_spec.WeightsSpec`
        (None without weights).
    """
    from ._registry import model_info

    kwargs.setdefault("prefix", name + "_")
    if classes is not None and (not isinstance(classes, int) or isinstance(classes, bool)
                                or classes < 1):
        raise InceptionZooError(f"classes must be an integer >= 1; got {classes!r}")
    path, spec = resolve_weights(name, pretrained, root)
    if spec is None:
        net = cls(classes=model_info(name).classes if classes is None else classes, **kwargs)
        net.weights = None
        return net
    _check_spec(name, cls, path, spec, kwargs)
    net = cls(classes=spec.classes, **kwargs)
    _check_geometry(net, path, spec)
    load_params_file(net, path, ctx=ctx)
    if classes is not None and classes != spec.classes:
        net.reset_classifier(classes)
    net.weights = spec
    return net


def with_weights(info, spec, classes):
    """``info`` made true for a network built with weights ``spec``.

    Parameters
    ----------
    info : ModelInfo
        The network's info.
    spec : WeightsSpec
        The weights loaded.
    classes : int
        The network's classes (the weights' class names hold only if they are the same).

    Returns
    -------
    ModelInfo
    """
    return dataclasses.replace(
        info, input_shape=tuple(spec.input_size), mean=spec.mean, std=spec.std,
        resize_size=spec.resize_size, crop_pct=spec.crop_pct,
        interpolation=spec.interpolation, pretrained=spec.to_dict(),
        class_names=spec.class_names if classes == spec.classes else None)


def as_features(net, out_indices=None):
    """The feature-extractor form of a built network (``get_model(..., features_only=True)``).

    Parameters
    ----------
    net : ZooNet
        A built network.
    out_indices : sequence of int, optional
        Stages to return (indices into ``net.feature_info``); default all.

    Returns
    -------
    FeatureNet
    """
    from .models._base import FeatureNet

    return FeatureNet(net, out_indices)
