"""Pretrained weights: the files that ship inside the package, a user cache, SHA-1 checks.

A weight file is named ``NAME-<sha1[:8]>.params`` and its full SHA-1 is recorded in the
model's metadata (``model_info(name).pretrained``). It is looked up first in the user cache
(``root=`` argument, else ``$INCEPTIONZOO_HOME``, else ``~/.inceptionzoo``; resolved at each
call, never at import), then among the files shipped with the package. Every candidate is
checked against the full SHA-1 before it is loaded.
"""
import os
import shutil

from ._io import atomic_path, read_json, sha1_file

__all__ = ["weights_home", "shipped_dir", "manifest_path", "shipped_spec", "weights_file_name",
           "find_weights", "load_params_file", "install_weights", "read_params",
           "without_prefixes", "WeightsError"]


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


def shipped_spec(name):
    """The manifest entry of model ``name`` (a validated
    :class:`~inceptionzoo.weights_spec.WeightsSpec`), or None. Read when a model registers.

    Parameters
    ----------
    name : str
        Registry name.

    Returns
    -------
    WeightsSpec or None
        The shipped weights: file name, SHA-1, preprocessing, accuracy, recipe and command.
    """
    from .weights_spec import WeightsSpec

    if not os.path.exists(manifest_path()):
        return None
    entry = read_json(manifest_path(), WeightsError).get(name)
    return None if entry is None else WeightsSpec.from_dict(entry, f"{manifest_path()}[{name!r}]")


def _record(name):
    from ._registry import model_info

    rec = model_info(name).pretrained
    if not rec:
        raise WeightsError(f"model {name!r} has no pretrained weights")
    return rec


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


def load_params_file(net, path, ctx=None):
    """``net.load_parameters(path)`` with clear errors for a missing or unreadable file.

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
        ``path``.
    """
    import mxnet as mx

    from ._context import check_context
    from ._errors import mxnet_message
    from .checkpoints import check_ndarray_file

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"parameter file {path!r} does not exist")
    for c in [ctx] if isinstance(ctx, mx.Context) else (ctx or []):
        check_context(c)  # else MXNet's failure reads as a corrupt file
    check_ndarray_file(path, error=WeightsError)  # MXNet allocates what a corrupt header claims
    try:
        net.load_parameters(path, ctx=ctx)
    except mx.base.MXNetError as err:
        raise WeightsError(f"cannot load parameter file {path!r}: corrupt or not an MXNet "
                           f"params file ({mxnet_message(err)})") from None
    except (AssertionError, AttributeError) as err:  # Gluon's shape / name checks
        raise WeightsError(f"parameter file {path!r} does not fit model {net.name!r}: "
                           f"{err}") from None
    return path


def without_prefixes(arrays):
    """The arrays of an MXNet parameter file by plain parameter name: the ``arg:`` / ``aux:``
    prefixes that ``export`` and ``mx.model.save_checkpoint`` write are removed.

    Parameters
    ----------
    arrays : dict of str to mxnet.nd.NDArray
        What ``mx.nd.load`` returned for a file of named arrays.

    Returns
    -------
    dict of str to mxnet.nd.NDArray
        The same arrays, by name without prefix.

    >>> sorted(without_prefixes({"arg:fc.weight": 1, "aux:bn.running_mean": 2, "w": 3}))
    ['bn.running_mean', 'fc.weight', 'w']
    """
    return {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v
            for k, v in arrays.items()}


def read_params(path, error=WeightsError):
    """The named arrays of an MXNet ``.params`` file (``save_parameters`` or ``export``).

    Parameters
    ----------
    path : str
        The file.
    error : type, default WeightsError
        The exception class raised (a ``ValueError`` subclass), so that each caller reports
        in its own terms.

    Returns
    -------
    dict of str to mxnet.nd.NDArray
        By parameter name, ``arg:`` / ``aux:`` prefixes removed.

    Raises
    ------
    error
        The file is missing, truncated, not an MXNet params file (checked against its size
        before MXNet reads it), or holds unnamed arrays.
    """
    from .checkpoints import read_ndarray_file

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise error(f"parameter file {path!r} does not exist")
    loaded = read_ndarray_file(path, error=error)  # its structure checked before MXNet parses it
    if not isinstance(loaded, dict):
        raise error(f"parameter file {path!r} holds a list of arrays, expected named "
                    "parameters (save_parameters)")
    return without_prefixes(loaded)
