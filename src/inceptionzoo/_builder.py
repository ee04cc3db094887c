"""The one builder behind every registered factory (one job: a network with the weights
``pretrained`` names), in the manner of timm's ``build_model_with_cfg``, and the one place that
decides which weights file that is and how it is read (:func:`resolve_weights`).

``pretrained`` means the same for every network and every caller (``get_model``, ``train``,
``evaluate``, ``export``, the CLI):

- ``True``: the model's default tag, the first of the weights it declares
  (``model_weights(NAME)``);
- a tag (``'tv_in1k'``, ``'timm_in1k'``, ``'mnist'`` ...; ``get_model('NAME.TAG',
  pretrained=True)`` says the same): a shipped file (weights folder first, then the package's),
  or the converted file ``NAME.TAG.params`` with its sidecar ``NAME.TAG.json`` in the weights
  folder (``root``, else ``$INCEPTIONZOO_HOME``, else ``~/.inceptionzoo``); a missing one is a
  :class:`~inceptionzoo.weights.WeightsError` naming the ``inceptionzoo convert`` command that
  makes it (a file an older inceptionzoo wrote as ``NAME.params`` is still read for its
  source's tag);
- a path: a converted file or training checkpoint (described by its sidecar, SHA-1 checked), a
  shipped file (its SHA-1 identifies it), or a plain Gluon ``.params`` file (no sidecar: the
  network's default transform, the classes of its classifier; ``net.weights.source`` is
  :data:`~inceptionzoo.weights_spec.PLAIN`);
- ``False`` / ``None``: no weights.

Every file is read once (its bytes: structure check, SHA-1, then MXNet parses the same bytes).
``classes`` other than the weights' loads every layer but the classifier, which is new
(:meth:`~inceptionzoo.models._base.ZooNet.reset_classifier`); ``in_channels`` other than the
weights' adapts their first convolution as timm does
(:meth:`~inceptionzoo.models._base.ZooNet.adapt_input_channels`). The weights' spec is attached
as ``net.weights`` and :func:`with_weights` makes ``net.info`` describe it.

timm's spellings are taken beside the zoo's: ``num_classes`` for ``classes`` (0: no classifier,
the network returns its pooled features) and ``in_chans`` for ``in_channels``. An option the
network does not take, or one of the wrong type or range, is one ``InceptionZooError`` naming
it (:func:`check_network_options`).

(Over 500 lines: the one decision of which weights a network gets and how the file is read,
whose steps share the same checks; each function is short.)
"""
import dataclasses
import inspect
import os

from ._checks import check_count
from ._deprecation import deprecated
from ._io import read_json
from ._registry import checkpoint_sources, model_entrypoint, model_info, model_weights
from .errors import InceptionZooError
from .transforms import channel_normalisation
from .weights import (WeightsError, assign_arrays, by_structure, check_contexts,
                      read_weights_file, shipped_dir, weights_home)
from .weights_spec import PLAIN, WeightsSpec, read_sidecar, sidecar_path

__all__ = ["build", "resolve_weights", "ResolvedWeights", "weights_status", "tag_path",
           "source_path", "with_weights", "check_network_options", "FACTORY_DOC",
           "TIMM_ALIASES"]

#: timm's spelling -> the zoo's, of the options every network takes
TIMM_ALIASES = {"num_classes": "classes", "in_chans": "in_channels"}
#: what every factory takes besides the network's own options (and ``get_model``'s
#: ``features_only`` / ``out_indices``)
_FACTORY_ARGS = ("classes", "num_classes", "in_chans", "pretrained", "root", "ctx",
                 "features_only", "out_indices")


FACTORY_DOC = """{title}.{note}

    Parameters
    ----------
    classes : int, optional
        Output classes; default: the weights' when ``pretrained`` loads some, else {classes}.
        Another count than the weights' loads every layer but the classifier, which is new;
        0: no classifier, the network returns its pooled features. ``num_classes`` (timm's
        name) is the same.
    pretrained : bool or str, default False
        ``True``: the model's default weights ({where}); a tag (``model_weights(NAME)``); a
        path: a ``.params`` file (converted or a training checkpoint: its sidecar's SHA-1 and
        preprocessing; plain: the network's default transform); ``False``: none.
    root : str, optional
        The weights folder (default ``$INCEPTIONZOO_HOME``, else ``~/.inceptionzoo``).
    ctx : mxnet.Context or list, optional
        Where to load the weights.
    **kwargs
        Options of :class:`{cls}` (``in_chans`` is timm's name of ``in_channels``).

    Returns
    -------
    {cls}
    """


def tag_path(name, tag, root=None):
    """Where the weights of model ``name`` tagged ``tag`` live in the weights folder.

    Parameters
    ----------
    name : str
        Registry name.
    tag : str
        One of the model's weight tags (``'tv_in1k'``).
    root : str, optional
        The weights folder (see :func:`inceptionzoo.weights.weights_home`).

    Returns
    -------
    str
        ``<weights folder>/<name>.<tag>.params`` (its sidecar: ``<name>.<tag>.json``), the
        name ``inceptionzoo convert`` gives by default.
    """
    return os.path.join(weights_home(root), f"{name.lower()}.{tag}.params")


def source_path(source, folder):
    """Where ``inceptionzoo convert SOURCE:NAME`` puts its output in ``folder`` by default:
    the file of the tag the zoo model declares for that source (:func:`tag_path`).

    Parameters
    ----------
    source : str
        ``SOURCE:NAME`` (case-insensitive), a source some model declares.
    folder : str
        The output folder.

    Returns
    -------
    str
    """
    kind, _, net = source.lower().partition(":")
    model = checkpoint_sources()[kind, net].model
    tag = [s.tag for s in model_weights(model) if s.source == f"{kind}:{net}"][0]
    return tag_path(model, tag, folder)


@dataclasses.dataclass(frozen=True)
class ResolvedWeights:
    """A weights file read once, and what it is (what :func:`resolve_weights` returns; also
    taken by ``pretrained=``, so that a caller who resolved it does not read it again).

    Attributes
    ----------
    path : str
        The ``.params`` file.
    spec : WeightsSpec
        Its spec: its sidecar, the shipped spec its SHA-1 matches, or (a plain Gluon file) the
        network's default transform with source :data:`~inceptionzoo.weights_spec.PLAIN`.
    sha1 : str
        The file's SHA-1 (of the bytes that were loaded).
    kind : str
        ``'shipped'``, ``'converted'``, ``'checkpoint'`` (a training checkpoint with its
        sidecar) or ``'plain'``.
    arrays : dict
        The file's arrays, parsed from the checked bytes.
    """

    path: str
    spec: WeightsSpec
    sha1: str
    kind: str
    arrays: dict = dataclasses.field(repr=False, compare=False)


def _obtain(spec, root):
    """How to get the weights ``spec`` declares when they are not there: the command (a
    ``convert`` whose CHECKPOINT is the source's file), or what to do."""
    if spec.source == "shipped":
        return f"reinstall inceptionzoo (the file {spec.file} ships with it)"
    return f"inceptionzoo convert {spec.source} CHECKPOINT --out {weights_home(root)}"


def _legacy(name, root):
    """``(path, source)`` of a file converted by inceptionzoo <= 0.1 into the weights folder
    under the model's bare name (``NAME.params`` + ``NAME.json``), or None."""
    path = os.path.join(weights_home(root), f"{name.lower()}.params")
    if not os.path.isfile(path):
        return None
    try:
        side = read_json(sidecar_path(path))
    except ValueError:  # no readable sidecar: not one convert wrote, nothing to move
        return None
    return (path, side.get("source")) if isinstance(side, dict) else None


def _tagged_file(name, spec, root):
    """The file of the declared weights ``spec`` (its tag), or a WeightsError saying how to
    get it."""
    home = weights_home(root)
    if spec.source == "shipped":
        candidates = [os.path.join(home, spec.file), os.path.join(shipped_dir(), spec.file)]
        found = [p for p in candidates if os.path.isfile(p)]
        if found:
            return found[0]
        raise WeightsError(f"no weight file for {name}.{spec.tag}; looked for {spec.file} in "
                           f"{home} and {shipped_dir()}: {_obtain(spec, root)}")
    path = tag_path(name, spec.tag, root)
    if os.path.isfile(path):
        return path
    old = _legacy(name, root)
    if old is not None and old[1] == spec.source:  # an older inceptionzoo's name: still read
        deprecated(f"the weight file name {os.path.basename(old[0])}",
                   f"move it and its sidecar to {os.path.basename(path)} / "
                   f"{os.path.basename(sidecar_path(path))}")
        return old[0]
    moved = ""
    if old is not None:
        tag = [s.tag for s in model_weights(name) if s.source == old[1]]
        new = tag_path(name, tag[0], root) if tag else None
        moved = (f"; {old[0]} (converted by an older inceptionzoo from {old[1]}) holds other "
                 "weights" + (f": move it and its sidecar to {os.path.basename(new)} / "
                              f"{os.path.basename(sidecar_path(new))} (`mv {old[0]} {new}; mv "
                              f"{sidecar_path(old[0])} {sidecar_path(new)}`)" if new else ""))
    raise WeightsError(f"no weights {name}.{spec.tag} ({spec.source}) in the weights folder: "
                       f"{os.path.basename(path)} is not in {home}{moved}. Make it: "
                       f"`{_obtain(spec, root)}` (CHECKPOINT: the source's file; the "
                       "documentation's page \"Bring your weights\"), or give the file itself "
                       "(--params FILE; pretrained=PATH in Python)")


def weights_status(name, root=None):
    """Each set of weights model ``name`` declares, and whether it is there (for ``inceptionzoo
    list --weights`` and ``info``; nothing is hashed: the SHA-1 is the one recorded).

    Parameters
    ----------
    name : str
        Registry name.
    root : str, optional
        The weights folder.

    Returns
    -------
    list of dict
        ``{'name': 'NAME.TAG', 'tag', 'source', 'default' (bool), 'path' (None: absent),
        'sha1', 'get' (how to obtain it, when absent)}``, in declaration order.
    """
    rows = []
    for i, spec in enumerate(model_weights(name)):
        row = {"name": f"{name}.{spec.tag}", "tag": spec.tag, "source": spec.source,
               "default": i == 0, "path": None, "sha1": None, "get": None}
        try:
            path = _tagged_file(name, spec, root)
        except WeightsError:
            row["get"] = _obtain(spec, root)
        else:
            row["path"] = path
            row["sha1"] = spec.sha1 if spec.source == "shipped" else \
                _recorded_sha1(path)
        rows.append(row)
    return rows


def _recorded_sha1(path):
    try:
        return read_sidecar(path).sha1
    except WeightsError as err:
        return f"unreadable sidecar ({err})"


def _plain_spec(name, path, sha1, arrays):
    """The spec of a plain Gluon ``.params`` file of model ``name``: the network's default
    transform and the classes its classifier has."""
    net = model_entrypoint(name)()  # the structure only: nothing is initialised
    info = model_info(name)
    head = by_structure(net, arrays).get(net.classifier_paths[0] + ".weight")
    if head is None or len(head.shape) != 2:
        raise WeightsError(f"parameter file {path!r} has no classifier "
                           f"{net.classifier_paths[0]}.weight: not weights of {name!r}")
    classes = int(head.shape[0])
    return WeightsSpec(name, classes, info.input_shape, info.resize_size, info.mean, info.std,
                       PLAIN, crop_pct=info.crop_pct, interpolation=info.interpolation,
                       class_names=info.class_names if classes == info.classes else None,
                       file=os.path.basename(path), sha1=sha1)


def _read(name, path, declared=None):
    """Read ``path`` once and tell what it is (see :class:`ResolvedWeights`)."""
    side = sidecar_path(path)
    if os.path.isfile(side):
        spec = read_sidecar(path)
        if spec.model != name:
            raise WeightsError(f"{path!r} holds weights of {spec.model!r}, not {name!r}")
        if spec.sha1 is None:
            raise WeightsError(f"{side!r}: field 'sha1' is null: the weights cannot be checked")
        if declared is not None and spec.source != declared.source:
            raise WeightsError(f"{path!r} holds weights from {spec.source}, not "
                               f"{name}.{declared.tag}'s {declared.source}")

        def check(sha1):
            if sha1 != spec.sha1:
                raise WeightsError(f"{path!r} has SHA-1 {sha1}; its sidecar {side!r} records "
                                   f"{spec.sha1}: the file is corrupt or was replaced")

        sha1, arrays = read_weights_file(path, check_sha1=check)
        if declared is not None:
            spec = dataclasses.replace(spec, tag=declared.tag)
        kind = "checkpoint" if spec.source == "inceptionzoo train" else "converted"
        return ResolvedWeights(path, spec, sha1, kind, arrays)
    if declared is not None and declared.source != "shipped":
        raise WeightsError(f"{side!r} is missing: converted weights need the sidecar "
                           "`inceptionzoo convert` writes beside them")

    def check_shipped(sha1):
        if declared is not None and sha1 != declared.sha1:
            raise WeightsError(f"weight file {path!r} is corrupt or not the recorded one: SHA-1 "
                               f"{sha1}, expected {declared.sha1}. Delete it (or reinstall "
                               "inceptionzoo).")

    sha1, arrays = read_weights_file(path, check_sha1=check_shipped)
    known = [s for s in model_weights(name) if s.source == "shipped" and s.sha1 == sha1]
    if known:
        return ResolvedWeights(path, known[0], sha1, "shipped", arrays)
    return ResolvedWeights(path, _plain_spec(name, path, sha1, arrays), sha1, "plain", arrays)


def resolve_weights(name, pretrained, root=None):
    """THE decision of which weights ``pretrained`` names for model ``name`` and how they are
    read (every caller -- ``get_model``, ``train``, ``evaluate``, ``export``, the CLI -- comes
    here; the file is read once).

    Parameters
    ----------
    name : str
        Registry name.
    pretrained : bool, str, os.PathLike or ResolvedWeights
        ``True``: the model's default tag (its first declared weights); a tag (``'tv_in1k'``);
        a path: a converted file with its sidecar, a training checkpoint, a shipped file or a
        plain Gluon ``.params`` file; ``False`` / ``None``: none.
    root : str, optional
        The weights folder.

    Returns
    -------
    ResolvedWeights or None
    """
    if pretrained is None or pretrained is False:
        return None
    if isinstance(pretrained, ResolvedWeights):
        if pretrained.spec.model != name:
            raise WeightsError(f"{pretrained.path!r} holds weights of "
                               f"{pretrained.spec.model!r}, not {name!r}")
        return pretrained
    specs = model_weights(name)
    tags = {s.tag: s for s in specs}
    if pretrained is True:
        if not specs:
            raise WeightsError(f"model {name!r} declares no weights (no checkpoint converts "
                               "to it): give a .params file of it (--params FILE; "
                               "pretrained=PATH in Python)")
        return _read(name, _tagged_file(name, specs[0], root), specs[0])
    if isinstance(pretrained, str) and pretrained.lower() in tags:
        spec = tags[pretrained.lower()]
        return _read(name, _tagged_file(name, spec, root), spec)
    if not isinstance(pretrained, (str, os.PathLike)):
        raise WeightsError(f"pretrained must be True, False, a tag ({', '.join(tags) or 'none'}"
                           f") or the path of a .params file; got {pretrained!r}")
    path = os.path.abspath(os.fspath(pretrained))
    if not os.path.isfile(path):
        what = (f"neither a weights tag of {name!r} (its tags: {', '.join(tags) or 'none'}) "
                "nor a file" if isinstance(pretrained, str) and os.sep not in pretrained
                and not pretrained.endswith(".params") else "a file that does not exist")
        raise WeightsError(f"pretrained={os.fspath(pretrained)!r} is {what}")
    return _read(name, path)


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


def _check_options(name, cls, path, spec, kwargs):
    side = sidecar_path(path)
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


def check_network_options(name, cls, classes, kwargs):
    """``(classes, kwargs)`` with timm's spellings turned into the zoo's, each option of
    ``cls`` checked (:meth:`~inceptionzoo.models._base.ZooNet.check_options`) and an option
    ``cls`` does not take refused with the list of those it takes.

    Parameters
    ----------
    name : str
        Registry name.
    cls : type
        The network class.
    classes : int or None
        The factory's ``classes``.
    kwargs : dict
        The factory's other keyword arguments (the network's options).

    Returns
    -------
    (int or None, dict)

    Raises
    ------
    InceptionZooError
    """
    kwargs = dict(kwargs)
    given = {"classes": classes} if classes is not None else {}
    for timm, zoo in TIMM_ALIASES.items():
        if timm in kwargs:
            value = kwargs.pop(timm)
            if zoo in given or zoo in kwargs:
                other = given.get(zoo, kwargs.get(zoo))
                if other != value:
                    raise InceptionZooError(f"{timm}={value!r} and {zoo}={other!r}: {timm} is "
                                            f"timm's name of {zoo}; give one")
            kwargs[zoo] = value
    classes = kwargs.pop("classes", classes)
    allowed = _network_options(cls) | {"prefix"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        takes = sorted((set(_FACTORY_ARGS) | allowed) - {"prefix"})
        raise InceptionZooError(f"{name} takes no option {', '.join(map(repr, unknown))}: its "
                                f"options are {', '.join(takes)}")
    if classes is not None:
        classes = check_count("classes (num_classes)", classes, low=0)
    kwargs = cls.check_options(dict(kwargs, **({} if classes is None else
                                               {"classes": classes})))
    kwargs.pop("classes", None)
    return classes, kwargs


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
    pretrained : bool, str, os.PathLike or ResolvedWeights
        See :func:`resolve_weights`.
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
    classes, kwargs = check_network_options(name, cls, classes, kwargs)
    kwargs.setdefault("prefix", name + "_")
    w = resolve_weights(name, pretrained, root)
    if w is None:
        net = cls(classes=model_info(name).classes if classes is None else classes, **kwargs)
        net.weights = None
        return net
    in_channels = kwargs.pop("in_channels", None)  # the weights' own, then adapted
    _check_options(name, cls, w.path, w.spec, kwargs)
    net = cls(classes=w.spec.classes, **kwargs)
    _check_geometry(net, w.path, w.spec)
    check_contexts(ctx)
    assign_arrays(net, w.arrays, w.path, ctx=ctx)
    if classes is not None and classes != w.spec.classes:
        net.reset_classifier(classes)
    if in_channels is not None and in_channels != net.in_channels:
        net.adapt_input_channels(in_channels)
    net.weights = w.spec
    return net


def with_weights(info, spec, classes):
    """``info`` made true for a network built with weights ``spec``.

    Parameters
    ----------
    info : ModelInfo
        The network's info (its ``input_shape[0]``: the network's input channels).
    spec : WeightsSpec
        The weights loaded.
    classes : int
        The network's classes (the weights' class names hold only if they are the same).

    Returns
    -------
    ModelInfo
    """
    c = info.input_shape[0]  # the network's (``in_chans`` adapts the weights')
    mean, std = channel_normalisation(spec.mean, spec.std, c)
    return dataclasses.replace(
        info, input_shape=(c,) + tuple(spec.input_size[1:]), mean=mean, std=std,
        resize_size=spec.resize_size, crop_pct=spec.crop_pct,
        interpolation=spec.interpolation, pretrained=spec.to_dict(),
        class_names=spec.class_names if classes == spec.classes else None)
