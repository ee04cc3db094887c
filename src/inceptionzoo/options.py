"""The options of training and evaluation, declared once: :class:`TrainOptions` is what
:func:`inceptionzoo.train.train` takes and :class:`EvaluateOptions` what
:func:`inceptionzoo.evaluation.evaluate` takes; each field's metadata says how the
``inceptionzoo train`` / ``evaluate`` command gives it (the command builds its arguments and the
record from these fields), and :func:`keyword_form` gives each function its keyword shorthand
from the same fields.

No MXNet here: the command line reads this module to build its parser.
"""
import dataclasses
import functools
import inspect

from ._deprecation import renamed_keyword
from .errors import WrongTypeError

__all__ = ["TrainOptions", "EvaluateOptions", "cli_fields", "keyword_form"]

#: fields renamed since 0.1.0: the old keyword still works, with a deprecation warning
RENAMED = {"data_workers": "data_threads"}

_RECIPE = "(default: the recipe's)"


def _option(default, *flags, shared=None, dest=None, **argparse):
    """A field of :class:`TrainOptions` with its default, and how the command line gives it:
    ``flags`` with ``add_argument``'s keywords ``argparse`` (the field's name is the
    destination, its default the default), or ``shared``, the name of an argument that
    several commands build alike, read from ``dest``."""
    return dataclasses.field(default=default, metadata={"cli": dict(
        flags=flags, shared=shared, dest=dest, argparse=argparse)})


def _python_only(default, why):
    """A field the command line sets itself (``why``), not an argument."""
    return dataclasses.field(default=default, metadata={"cli": None, "why": why})


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The options of one training run (see :func:`inceptionzoo.train.train` for their
    meanings); ``inceptionzoo train`` builds its arguments from these fields.

    Attributes
    ----------
    model : str
        Registered model name.
    data_dir, train_data, val_data : str, optional
        The data: a folder with both splits, or each split's path.
    classes : int, optional
        Output classes (default: the data's).
    pretrained : bool or str, optional
        Starting weights: ``True`` (the default tag), a tag, or a ``.params`` path.
    freeze_features : bool
        Train the classifier only.
    root : str, optional
        Weight cache folder (``--weights-dir``).
    recipe : str or Recipe
        A name of :data:`~inceptionzoo.recipes.RECIPES` or a recipe.
    epochs, batch_size, lr, optimizer, momentum, wd, schedule : optional
        Override single fields of the recipe.
    seed : int
        Initialisation and data order.
    ctx : str or list of Context
        ``'cpu'``, ``'gpu0,gpu1'``, ...
    kvstore : str, optional
        One of :data:`~inceptionzoo.kvstore.KVSTORES`.
    data_threads : int, optional
        Decoding threads (``--data-threads``).
    out : str, optional
        The run folder.
    resume, overwrite : bool
        Continue the run ``out`` holds, or replace it.
    progress : bool
        A tqdm bar (``--no-progress``: none).
    log : callable
        Receives one line per epoch (the command: stdout, or stderr with ``--json``).
    """

    model: str = _option("inception_mnist", shared="model", dest="model")
    data_dir: object = _option(
        None, "--data-dir", metavar="DIR", help="MNIST IDX folder, or a folder with train/ + "
        "val/ image folders, or with train.rec/.idx + val.rec/.idx (default: MNIST from "
        "$INCEPTIONZOO_DATA, then MXNet's dataset folder, downloading if needed)")
    train_data: object = _option(
        None, "--train-data", metavar="PATH", help="training data: an image folder, a .rec "
        "file or an MNIST folder (default: --data-dir's)")
    val_data: object = _option(None, "--val-data", metavar="PATH", help="validation data, as "
                               "--train-data (default: --data-dir's)")
    classes: object = _option(None, "--classes", type=int, metavar="N",
                              help="output classes (default: the data's)")
    pretrained: object = _option(None, shared="pretrained_or_params", dest="pretrained")
    freeze_features: bool = _option(False, "--freeze-features", action="store_true",
                                    help="with --pretrained or --params: train the classifier "
                                    "only")
    root: object = _option(None, shared="weights_dir", dest="weights_dir")
    recipe: object = _option("default", "--recipe", help="seed, default or pretrain")
    epochs: object = _option(None, "--epochs", type=int, metavar="N", help=_RECIPE)
    batch_size: object = _option(None, "--batch-size", type=int, metavar="N",
                                 help=f"global batch (shared by all workers) {_RECIPE}")
    lr: object = _option(None, "--lr", type=float, help=f"learning rate {_RECIPE}")
    optimizer: object = _option(None, "--optimizer", help="any MXNet optimizer name: sgd, "
                                f"nag, adam, ... {_RECIPE}")
    momentum: object = _option(None, "--momentum", type=float, help=_RECIPE)
    wd: object = _option(None, "--wd", type=float, help=f"weight decay {_RECIPE}")
    schedule: object = _option(None, "--schedule", choices=["constant", "cosine"],
                               help=f"learning rate {_RECIPE}")
    seed: object = _option(0, "--seed", type=int, help="random seed")
    ctx: object = _option("cpu", "--ctx", help="cpu, cpu0,cpu1, gpu0,gpu1 ...")
    kvstore: object = _option(
        None, "--kvstore", help="local, device, or dist_sync / dist_device_sync / dist_async "
        "under `inceptionzoo launch` (default: none on one context, device on several)")
    data_threads: object = _option(None, shared="data_threads", dest="data_threads")
    out: object = _option(
        None, "--out", metavar="DIR", help="folder for checkpoints, metrics.json and "
        "curves.png (default: runs/MODEL, or runs/MODEL-2, -3 ... when that holds files; "
        "with --resume or --overwrite runs/MODEL)")
    resume: bool = _option(False, "--resume", action="store_true", help="continue from the "
                           "newest checkpoint (of the run --out holds: same model and classes)")
    overwrite: bool = _option(False, "--overwrite", action="store_true", help="replace the run "
                              "--out holds (without it, training into a folder that holds a "
                              "run is an error)")
    progress: bool = _option(True, "--no-progress", action="store_false",
                             help="no progress bar")
    log: object = _python_only(print, "the command's own: stdout, or stderr with --json")


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    """The options of one evaluation (see :func:`inceptionzoo.evaluation.evaluate` for their
    meanings); ``inceptionzoo evaluate`` builds its arguments from these fields.

    Attributes
    ----------
    model : str
        Registered model name.
    params : str, optional
        A ``.params`` file (``--params``).
    pretrained : bool or str
        Instead: ``True`` (the default tag) or a tag (``--pretrained [TAG]``).
    root : str, optional
        Weight cache folder (``--weights-dir``).
    data_dir, val_data : str, optional
        The validation data: a folder with both splits, or its own path.
    classes : int, optional
        Output classes of a plain params file (default: its classifier's).
    batch_size : int
        Images per forward pass.
    data_threads : int, optional
        Decoding threads (``--data-threads``).
    ctx : str
        One context.
    """

    model: str = _option("inception_mnist", shared="model", dest="model")
    params: object = _option(None, shared="params_or_pretrained", dest="params")
    pretrained: object = _option(False, shared="params_or_pretrained", dest="pretrained")
    root: object = _option(None, shared="weights_dir", dest="weights_dir")
    data_dir: object = _option(None, "--data-dir", metavar="DIR", help="as for train (its "
                               "validation part is read; default: MNIST, as for train)")
    val_data: object = _option(None, "--val-data", metavar="PATH", help="an image folder, a "
                               ".rec file or an MNIST folder (default: --data-dir's)")
    classes: object = _option(None, "--classes", type=int, metavar="N",
                              help="output classes (default: the params file's)")
    batch_size: object = _option(1000, "--batch-size", type=int, metavar="N",
                                 help="images per batch")
    data_threads: object = _option(None, shared="data_threads", dest="data_threads")
    ctx: object = _option("cpu", "--ctx", help="cpu, cpu0, gpu0 ...")


def record_of(record, options, fields):
    """The ``record`` a function of :func:`keyword_form` runs: ``options`` (a record, a model
    name, or None) with ``fields`` replaced.

    Parameters
    ----------
    record : type
        :class:`TrainOptions` or :class:`EvaluateOptions`.
    options : record, str or None
    fields : dict
        Field names of ``record`` -> values.

    Returns
    -------
    record
    """
    fields = dict(fields)
    for old, new in RENAMED.items():
        if old in fields:
            fields[new] = renamed_keyword(f"{record.__name__}", old, new, fields.pop(old),
                                          fields.get(new))
    if options is None or isinstance(options, str):
        return record(**dict(fields, **({} if options is None else {"model": options})))
    if not isinstance(options, record):
        raise WrongTypeError(f"expected a {record.__name__} record or a model name; got "
                             f"{type(options).__name__}")
    return dataclasses.replace(options, **fields)


def keyword_form(record):
    """Decorate ``func(options)`` into ``func(options=None, /, **fields)``: ``options`` a
    ``record``, or a model name (``func('googlenet', epochs=1)`` is
    ``func(record(model='googlenet', epochs=1))``), and keywords, the record's fields, that
    replace its values. The signature lists the fields with their defaults, and ``{fields}``
    in the docstring becomes their names: nothing is declared twice.

    Parameters
    ----------
    record : type
        A dataclass of options.

    Returns
    -------
    callable
        The decorator.
    """
    names = [f.name for f in dataclasses.fields(record)]

    def decorate(func):
        @functools.wraps(func)
        def with_keywords(options=None, /, **fields):
            return func(record_of(record, options, fields))

        with_keywords.__doc__ = func.__doc__.replace("{fields}", ", ".join(names))
        with_keywords.__signature__ = inspect.Signature(
            [inspect.Parameter("options", inspect.Parameter.POSITIONAL_ONLY, default=None)]
            + [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
               for f in dataclasses.fields(record)])
        return with_keywords

    return decorate


def cli_fields(record=TrainOptions):
    """``[(field, how the command line gives it)]`` of the fields the command line sets, in
    their declared order (:func:`_option`'s metadata).

    Parameters
    ----------
    record : type, default TrainOptions
        A dataclass declared with :func:`_option` fields.

    Returns
    -------
    list of (dataclasses.Field, dict)
    """
    return [(f, f.metadata["cli"]) for f in dataclasses.fields(record)
            if f.metadata.get("cli") is not None]
