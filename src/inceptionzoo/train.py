"""Training of any registered network on MNIST IDX files, image folders or RecordIO
(:mod:`inceptionzoo.datasets`): :func:`train` sets a run up from one :class:`TrainOptions`
record (recipe, data, network, KVStore, Trainer, run folder) and runs
:func:`~inceptionzoo.training.train_one_epoch` and :func:`~inceptionzoo.training.validate` per
epoch. Hybridized data-parallel training on the contexts of one process or on many processes
through MXNet's parameter server (``kvstore='dist_sync'``, started by
:mod:`inceptionzoo.launch`), fine-tuning from pretrained weights, checkpoints that resume,
metrics and curves.

>>> from inceptionzoo.train import RECIPES
>>> RECIPES['seed'].optimizer, RECIPES['seed'].lr, RECIPES['seed'].batch_size
('sgd', 0.1, 100)
"""
import dataclasses
import os

import mxnet as mx
import numpy as np

from ._builder import resolve_weights, with_weights
from ._checks import check_count, is_integer
from ._context import parse_ctx
from ._factory import get_model
from ._registry import model_info
from .datasets import RecordSource, open_sources
from .errors import DataError, DivergedError, InceptionZooError
from .evaluation import evaluate
from .finetune import checkpoint_spec, freeze_features, new_classifier
from .kvstore import KVSTORES, open_kvstore, start_trainer
from .recipes import (OVERRIDES, RECIPES, Recipe, Schedule, check_recipe, initializer,
                      mxnet_schedule, recipe_with)
from .run_folder import RunFolder, check_previous_run, previous_run
from .options import TrainOptions, keyword_form
from .training import train_one_epoch, validate
from .weights import load_params_file

__all__ = ["Recipe", "RECIPES", "KVSTORES", "DivergedError", "parse_ctx", "TrainOptions",
           "train", "evaluate", "check_recipe", "build_trainer"]


def _check_options(o):
    """The recipe with its overrides and the contexts, after refusing options that cannot
    train (before anything is read or written)."""
    r = recipe_with(o.recipe, **{k: getattr(o, k) for k in OVERRIDES})
    ctxs = parse_ctx(o.ctx)
    if o.resume and o.out is None:
        raise InceptionZooError("resume=True needs the checkpoint folder `out`")
    if o.resume and o.overwrite:
        raise InceptionZooError("give --resume (continue the run in --out) or --overwrite "
                                "(replace it), not both")
    if o.classes is not None:
        check_count("classes", o.classes)
    if o.freeze_features and not o.pretrained:
        raise InceptionZooError("freeze_features needs pretrained weights (--pretrained or "
                                "--params FILE)")
    seed = o.seed
    if not is_integer(seed) or \
            not 0 <= seed * 1000 + r.epochs < 2 ** 32:  # each epoch's order: seed * 1000 + epoch
        raise InceptionZooError(f"seed must be an integer in "
                                f"0..{(2 ** 32 - 1 - r.epochs) // 1000}; got {seed!r}")
    return r, ctxs


@dataclasses.dataclass(frozen=True)
class _Data:
    """The run's data: training and validation sources and the network's class count."""

    train: object
    val: object
    classes: int


def _starting_weights(o):
    """``(weights or None, the model's info with their preprocessing)``: the starting
    weights, read once, here."""
    info = model_info(o.model)
    if not o.pretrained:
        return None, info
    weights = resolve_weights(o.model, o.pretrained, o.root)
    return weights, with_weights(info, weights.spec, weights.spec.classes)


def _previous(o, name, data):
    """The run ``out`` holds already (checked against this one), or None."""
    if o.out is None or not os.path.isdir(o.out):
        return None
    out = os.path.abspath(o.out)
    found = previous_run(out, name, o.overwrite and not o.resume)
    check_previous_run(found, out, name, data.classes, data.train.classes, o.resume,
                       o.overwrite)
    return found


def _open_data(o, info, batch_size):
    """The training and validation data, with the class count they settle, and the run
    ``out`` holds already (checked against this one)."""
    train_src, val_src = open_sources(info, o.data_dir, o.train_data, o.val_data,
                                      threads=o.data_threads, seed=o.seed)
    need = max(train_src.num_classes, val_src.num_classes)
    classes = o.classes or need
    if classes < need:
        raise DataError(f"{train_src.path}: the data has {need} classes "
                        f"({', '.join(train_src.classes[:10])}{' ...' if need > 10 else ''}) "
                        f"but the network would output {classes} (--classes {classes}): "
                        f"expected --classes >= {need}")
    if not isinstance(train_src, RecordSource) and not isinstance(val_src, RecordSource) and \
            val_src.num_classes != train_src.num_classes:
        raise DataError(f"{val_src.path}: the validation data has {val_src.num_classes} "
                        f"classes, the training data {train_src.path} has "
                        f"{train_src.num_classes}: expected the same classes")
    data = _Data(train_src, val_src, classes)
    previous = _previous(o, info.name, data)
    if batch_size > len(train_src):
        o.log(f"note: batch size {batch_size} > {len(train_src)} training images: "
              "one batch per epoch")
    return data, previous


def _build_model(o, r, ctxs, info, weights, data):
    """Seed, build the network with its starting weights (a classifier of another size keeps
    the recipe's initialisation), freeze, hybridize; ``(net, the checkpoints' spec or None)``."""
    mx.random.seed(o.seed)
    np.random.seed(o.seed)
    spec = None
    if weights is not None:  # every layer loaded but a classifier of another size
        net = get_model(o.model, pretrained=weights, classes=data.classes, ctx=ctxs)
        head = new_classifier(net, r.init, ctxs) if data.classes != weights.spec.classes else []
        spec = checkpoint_spec(weights.spec, data.classes, tuple(data.train.classes), head, r,
                               o.seed)
        o.log(f"loaded {weights.path}" + (f"; new classifier {', '.join(head)} "
                                          f"({data.classes} classes)" if head else ""))
        if o.freeze_features:
            freeze_features(net)
    else:
        net = get_model(o.model, **({} if data.classes == info.classes
                                    else {"classes": data.classes}))
        net.initialize(initializer(r.init), ctx=ctxs)
    net.hybridize(static_alloc=True, static_shape=True)
    return net, spec


def build_trainer(r, net, workers, steps_per_epoch):
    """The Trainer of the recipe (optimizer, schedule, and under ``dist_async`` the servers'
    share) and what its step divides the gradient by (None: each batch's global size), for
    :func:`~inceptionzoo.training.train_one_epoch`.

    Parameters
    ----------
    r : Recipe
        The checked recipe (optimizer, ``lr``, ``wd``, ``momentum``, schedule, ``epochs``,
        ``batch_size``).
    net : mxnet.gluon.Block
        The initialised network; its parameters with a gradient are trained.
    workers : Workers
        :func:`~inceptionzoo.kvstore.open_kvstore`'s (``open_kvstore(None, ctxs, batch_size)``
        on one machine).
    steps_per_epoch : int
        Batches per epoch (the schedule spans ``steps_per_epoch * r.epochs`` steps).

    Returns
    -------
    tuple
        ``(mxnet.gluon.Trainer, step size or None)``: ``train_one_epoch``'s ``step_size``.
    """
    total = steps_per_epoch * r.epochs
    opt_args = {"learning_rate": r.lr, "wd": r.wd, "lr_scheduler": Schedule(r, total)}
    step_size = None
    if workers.update_on_kvstore:  # dist_async: the servers apply each worker's update
        # they unpickle the optimizer: only MXNet's own classes there; they count every
        # worker's update, and their gradient scale cannot change once set: each update is
        # the mean gradient of one worker's share of a batch
        opt_args["lr_scheduler"] = mxnet_schedule(r, total * workers.num_workers)
        opt_args["rescale_grad"] = 1.0 / -(-r.batch_size // workers.num_workers)
        step_size = 1  # Trainer.step divides the rescale above by this
    if r.optimizer in ("sgd", "nag"):
        opt_args["momentum"] = r.momentum
    trainable = [p for p in net.collect_params().values() if p.grad_req != "null"]
    trainer = mx.gluon.Trainer(trainable, r.optimizer, opt_args, kvstore=workers.kv,
                               update_on_kvstore=workers.update_on_kvstore)
    start_trainer(trainer, workers)
    return trainer, step_size


def _new_metrics(o, r, ctxs, net, data, workers, weights):
    """The run's ``metrics.json`` before its first epoch."""
    return {"model": net.info.name, "recipe": dataclasses.asdict(r), "seed": o.seed,
            "contexts": [str(c) for c in ctxs], "kvstore": o.kvstore,
            "num_workers": workers.num_workers, "rank": workers.rank,
            "data": {"kind": type(data.train).__name__, "train": data.train.path,
                     "val": data.val.path},
            "classes": data.classes, "class_names": list(data.train.classes),
            "pretrained": (os.path.abspath(weights.path) if weights is not None else None),
            "freeze_features": bool(o.freeze_features),
            "num_train": len(data.train), "num_test": len(data.val), "epochs": []}


def _diverged(folder, epoch, r):
    """``train_one_epoch``'s ``diverged``: the error naming the epoch, the recipe and the last
    good checkpoint."""
    def error(what, step):
        last = folder.latest(need_states=False)[1]
        return DivergedError(
            f"training diverged in epoch {epoch}, step {step}: {what} (optimizer "
            f"{r.optimizer}, lr {r.lr}, wd {r.wd}, batch size {r.batch_size}); nothing of this "
            "epoch was saved" + (f", the last good checkpoint {last} is kept" if last else "")
            + ". Lower --lr or check the data")

    return error


def _epoch_entry(epoch, stats, acc, log):
    """The epoch's entry of ``metrics.json``, logged."""
    entry = {"epoch": epoch + 1, "train_loss": stats.loss, "test_accuracy": acc,
             "seconds": round(stats.seconds, 2),
             "images_per_sec": round(stats.images / stats.seconds, 1)}
    log(f"epoch {epoch + 1}: training loss {stats.loss:.4f}, test accuracy {acc:.4f}, "
        f"{stats.seconds:.1f} s, {entry['images_per_sec']:.0f} images/s")
    return entry


@keyword_form(TrainOptions)
def train(options):
    """Train a registered model on MNIST, an image folder or RecordIO; return its metrics.

    ``train(TrainOptions(model='googlenet', epochs=1))``; as a shorthand, the record's fields
    as keywords and the model name first: ``train('googlenet', epochs=1)`` (the keywords are
    exactly :class:`TrainOptions`' fields, with its defaults).

    Parameters
    ----------
    options : TrainOptions or str, optional
        The run's options (see :class:`TrainOptions`), or the model name.
    {fields} : optional
        Keyword shorthand: fields of :class:`TrainOptions` that replace the record's.

    Returns
    -------
    dict
        ``model``, ``recipe``, ``seed``, ``contexts``, ``kvstore``, ``num_workers``, ``rank``,
        ``data``, ``classes``, ``epochs`` (per-epoch ``train_loss``, ``test_accuracy``,
        ``seconds``, ``images_per_sec`` of all workers together), ``accuracy`` (final test
        accuracy), ``params`` (path of the last checkpoint, if ``out``), ``net``.

    Raises
    ------
    InceptionZooError
        Bad hyper-parameters, data (:class:`~inceptionzoo.mnist.DataError`), weights or
        checkpoint; :class:`DivergedError` when the loss or the parameters stop being finite
        (the last good checkpoint is kept).

    Notes
    -----
    ``recipe`` (a name of :data:`RECIPES` or a :class:`Recipe`) with the overrides
    ``epochs`` ... ``schedule`` is checked by :func:`check_recipe` before anything is read or
    written. Several contexts train data-parallel (each batch split over them, gradients
    reduced by a ``'device'`` KVStore); ``dist_sync`` / ``dist_device_sync`` / ``dist_async``
    need the processes of :func:`inceptionzoo.launch.launch`: each worker reads its part of
    every global batch. ``pretrained`` (``True``, a tag, or a path: converted file or
    checkpoint, whose sidecar's preprocessing is used) loads every layer but a classifier of
    another class count; ``freeze_features`` trains ``net.classifier_names()`` only. With
    ``out``, worker 0 writes one checkpoint per epoch (``NAME-EPOCH.params`` / ``.states``,
    atomically; started from weights with a spec, also ``NAME-EPOCH.json``), ``metrics.json``
    and ``curves.png``; ``resume`` continues from the newest complete checkpoint of the same
    model, class count and class names; ``overwrite`` replaces the run ``out`` holds when this
    one saves its first epoch.
    """
    o = options
    r, ctxs = _check_options(o)
    weights, info = _starting_weights(o)
    data, previous = _open_data(o, info, r.batch_size)
    net, spec = _build_model(o, r, ctxs, info, weights, data)
    workers = open_kvstore(o.kvstore, ctxs, r.batch_size)
    folder = RunFolder.open(o.out, net.info.name, workers.rank, states=not workers.async_kv,
                            replaces=previous if o.overwrite else None)
    start, resumed = folder.latest() if o.resume else (0, None)
    if resumed:  # before the Trainer exists: a dist KVStore cannot be reset
        load_params_file(net, resumed, ctx=ctxs)
    steps = data.train.steps(r.batch_size)
    trainer, step_size = build_trainer(r, net, workers, steps)
    metrics = _new_metrics(o, r, ctxs, net, data, workers, weights)
    if resumed:
        folder.resume(trainer, r.optimizer, metrics, start, resumed, o.log)
    for epoch in range(start, r.epochs):
        rng = np.random.RandomState(o.seed * 1000 + epoch)  # same order after a resume
        stats = train_one_epoch(
            net, trainer, data.train.epoch(r.batch_size, rng, workers.rank, workers.num_workers),
            ctxs, step_size=step_size, total=steps, diverged=_diverged(folder, epoch + 1, r),
            progress=f"epoch {epoch + 1}/{r.epochs}" if o.progress else None)
        if workers.rank == 0:  # worker 0 validates, logs and writes
            acc = validate(net, data.val, ctxs[0])
            metrics["epochs"].append(_epoch_entry(epoch, stats, acc, o.log))
            folder.save_epoch(net, trainer, metrics, spec and dataclasses.replace(
                spec, accuracy=acc, dataset=data.val.path))
    metrics = folder.finish(metrics)
    metrics["net"] = net
    return metrics
