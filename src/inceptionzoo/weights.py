"""Weight files: the ones that ship inside the package, the user's weights folder, SHA-1
checks, and reading a ``.params`` file once into a network.

A shipped file is named ``NAME-<sha1[:8]>.params`` and its full SHA-1 is recorded in the spec
the model declares for it (``model_weights(name)``, source ``'shipped'``). It is looked up first
in the weights folder (``root=`` argument, else ``$INCEPTIONZOO_HOME``, else
``~/.inceptionzoo``; resolved at each call, never at import), then among the files shipped with
the package. Every candidate is checked against the full SHA-1 before it is loaded. Which file
``pretrained`` names, and how it is loaded, is decided in one place:
:func:`inceptionzoo._builder.resolve_weights`.
"""
import dataclasses
import hashlib
import os
import shutil

import mxnet as mx

from ._context import check_context
from ._io import atomic_path, read_json, sha1_file
from ._registry import model_weights
from .ndarray_file import load_ndarray_bytes, named_arrays, without_prefixes
from .weights_spec import WeightsSpec

__all__ = ["weights_home", "shipped_dir", "manifest_path", "shipped_spec", "weights_file_name",
           "find_weights", "read_weights_file", "check_contexts", "by_structure", "assign_arrays",
           "load_params_file", "install_weights", "WeightsError"]


from .errors import WeightsError  # noqa: E402  (defined in errors; this import path stays)


def weights_home(root=None):
    """The user weight cache, read at call time.

    Parameters
    ----------
    root : str, optional
        Wins if given; else ``$INCEPTIONZOO_HOME``, else ``~/.inceptionzoo``.

    Returns
    -------
    str
    """
    if root is not None:
        return os.path.abspath(os.path.expanduser(os.fspath(root)))
    env = os.environ.get("INCEPTIONZOO_HOME")
    return os.path.abspath(os.path.expanduser(env or os.path.join("~", ".inceptionzoo")))


def shipped_dir():
    """The folder of weight files that ship inside the package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")


def manifest_path():
    """``manifest.json`` beside the shipped files: name -> the weights' spec
    (:meth:`~inceptionzoo.weights_spec.WeightsSpec.to_dict`). Written by
    ``scripts/pretrain.py``."""
    return os.path.join(shipped_dir(), "manifest.json")


def shipped_spec(name, tag=None):
    """The manifest entry of model ``name`` (a validated
    :class:`~inceptionzoo.weights_spec.WeightsSpec`), or None. Read when a model registers.

    Parameters
    ----------
    name : str
        Registry name.
    tag : str, optional
        The tag the model declares the weights under.

    Returns
    -------
    WeightsSpec or None
        The shipped weights: file name, SHA-1, preprocessing, accuracy, recipe and command.
    """
    if not os.path.exists(manifest_path()):
        return None
    entry = read_json(manifest_path(), WeightsError).get(name)
    if entry is None:
        return None
    spec = WeightsSpec.from_dict(entry, f"{manifest_path()}[{name!r}]")
    return spec if tag is None else dataclasses.replace(spec, tag=tag)


def _record(name):
    """The shipped weights' spec of model ``name``, as a dict."""
    shipped = [s for s in model_weights(name) if s.source == "shipped"]
    if not shipped:
        raise WeightsError(f"no weights ship with model {name!r}")
    return shipped[0].to_dict()


def weights_file_name(name):
    """``NAME-<sha1[:8]>.params`` for a model's recorded weights.

    Parameters
    ----------
    name : str
        Registry name of a model with shipped weights.

    Returns
    -------
    str
    """
    return f"{name.lower()}-{_record(name)['sha1'][:8]}.params"


def find_weights(name, root=None):
    """Path of a verified weight file for model ``name``.

    Parameters
    ----------
    name : str
        Registry name of a model with shipped weights.
    root : str, optional
        The user cache (see :func:`weights_home`), searched before the shipped files.

    Returns
    -------
    str

    Raises
    ------
    WeightsError
        If no candidate exists, or one exists whose SHA-1 differs from the recorded one.
    """
    rec = _record(name)
    fname = weights_file_name(name)
    searched = [os.path.join(weights_home(root), fname), os.path.join(shipped_dir(), fname)]
    for path in searched:
        if os.path.isfile(path):
            got = sha1_file(path)
            if got != rec["sha1"]:
                raise WeightsError(
                    f"weight file {path!r} is corrupt or not the recorded one: SHA-1 {got}, "
                    f"expected {rec['sha1']}. Delete it (or reinstall inceptionzoo).")
            return path
    raise WeightsError(f"no weight file for {name!r}; looked for {fname} in: "
                       + ", ".join(os.path.dirname(p) for p in searched))


def install_weights(src, name, root=None):
    """Copy a weight file into the user cache under its canonical name, after checking it
    against the recorded SHA-1 (written to a temporary name, then renamed).

    Parameters
    ----------
    src : str
        The weight file.
    name : str
        Registry name it belongs to.
    root : str, optional
        The user cache (see :func:`weights_home`).

    Returns
    -------
    str
        The installed path.
    """
    rec = _record(name)
    got = sha1_file(src)
    if got != rec["sha1"]:
        raise WeightsError(f"{src!r} has SHA-1 {got}; model {name!r} expects {rec['sha1']}")
    dst = os.path.join(weights_home(root), weights_file_name(name))
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def read_weights_file(path, error=WeightsError, check_sha1=None):
    """Read a ``.params`` file ONCE: its bytes, their structure checked against their size
    (MXNet alone allocates whatever a corrupt header claims), their SHA-1, and the arrays MXNet
    parses from those same bytes (``mx.nd.load_frombuffer``).

    Parameters
    ----------
    path : str or os.PathLike
    error : type, default WeightsError
        The exception class raised.
    check_sha1 : callable, optional
        Called with the SHA-1 before the bytes are parsed (to refuse a file that is not the
        recorded one with that message rather than a parse error).

    Returns
    -------
    (str, dict of str to mxnet.nd.NDArray)
        The hex SHA-1 of the file and its arrays by name (``arg:`` / ``aux:`` prefixes kept).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise error(f"parameter file {path!r} does not exist")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise error(f"cannot read parameter file {path!r}: {err.strerror}") from None
    sha1 = hashlib.sha1(data).hexdigest()
    if check_sha1 is not None:
        check_sha1(sha1)
    return sha1, named_arrays(load_ndarray_bytes(data, path, error), path, error)


def by_structure(net, arrays):
    """The arrays of a parameter file keyed by ``net``'s structural parameter names
    (``features.0.weight``, as ``save_parameters`` writes them): a file of full names
    (``export``'s ``arg:inception_v3_conv0_weight``, ``ParameterDict.save``) is mapped through
    the parameters' full names; names that fit no parameter are kept as they are.

    Parameters
    ----------
    net : mxnet.gluon.Block
    arrays : dict of str to mxnet.nd.NDArray

    Returns
    -------
    dict of str to mxnet.nd.NDArray
    """
    arrays = without_prefixes(arrays)
    if any("." in k for k in arrays):
        return arrays
    full = {}
    for name, p in net._collect_params_with_prefix().items():
        full.setdefault(p.name, name)
        if p.name.startswith(net.prefix):  # saved without the network's prefix
            full.setdefault(p.name[len(net.prefix):], name)
    return {full.get(k, k): v for k, v in arrays.items()}


def _fits(want, got):
    """A parameter of shape ``want`` (0: not known yet) takes an array of shape ``got``."""
    return not want or (len(want) == len(got) and all(w in (0, g) for w, g in zip(want, got)))


def assign_arrays(net, arrays, path, ctx=None):
    """Load a parameter file's arrays into ``net``: every parameter must be there with its
    shape, and nothing else (one :class:`WeightsError` naming the file, what is missing,
    unexpected or mis-shaped).

    Parameters
    ----------
    net : mxnet.gluon.Block
    arrays : dict of str to mxnet.nd.NDArray
        As :func:`read_weights_file` returns them.
    path : str
        The file, named in errors.
    ctx : mxnet.Context or list of mxnet.Context, optional
    """
    params = net._collect_params_with_prefix()
    arrays = by_structure(net, arrays)
    problems = [f"missing {n}" for n in params if n not in arrays][:5]
    problems += [f"unexpected {n}" for n in arrays if n not in params][:5]
    problems += [f"{n} has shape {tuple(arrays[n].shape)}, the network's is {p.shape}"
                 for n, p in params.items() if n in arrays and not _fits(p.shape,
                                                                          arrays[n].shape)][:5]
    if problems:
        raise WeightsError(f"parameter file {path!r} does not fit model {net.name!r}: "
                           + "; ".join(problems))
    for name, p in params.items():
        p._load_init(arrays[name], ctx)


def check_contexts(ctx):
    """Each context of ``ctx`` must exist here: a GPU that MXNet does not see is an
    ``InceptionZooError`` naming it (else MXNet's failure reads as a corrupt file).

    Parameters
    ----------
    ctx : mxnet.Context, list of mxnet.Context or None
    """
    for c in [ctx] if isinstance(ctx, mx.Context) else (ctx or []):
        check_context(c)


def load_params_file(net, path, ctx=None):
    """Load a ``.params`` file into ``net`` (read once, its structure checked, every
    parameter matched), with clear errors for a missing, unreadable or unfitting file.

    Parameters
    ----------
    net : mxnet.gluon.Block
    path : str or os.PathLike
        The ``.params`` file.
    ctx : mxnet.Context or list of mxnet.Context, optional
        Where to put the parameters; a GPU that MXNet does not see is an
        ``InceptionZooError`` naming the context.

    Returns
    -------
    str
        The file's SHA-1.
    """
    check_contexts(ctx)
    sha1, arrays = read_weights_file(path)
    assign_arrays(net, arrays, os.fspath(path), ctx=ctx)
    return sha1
