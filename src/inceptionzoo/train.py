"""Training and evaluation of any registered network on MNIST IDX files, image folders or
RecordIO (:mod:`inceptionzoo.datasets`): named recipes, hybridized data-parallel training on the
contexts of one process or on many processes through MXNet's parameter server
(``kvstore='dist_sync'``, started by :mod:`inceptionzoo.launch`), fine-tuning from pretrained
weights, checkpoints that resume, metrics and curves.

>>> from inceptionzoo.train import RECIPES
>>> RECIPES['seed'].optimizer, RECIPES['seed'].lr, RECIPES['seed'].batch_size
('sgd', 0.1, 100)
"""
import dataclasses
import glob
import json
import math
import os
import pickle
import time

import mxnet as mx
import numpy as np

from ._context import parse_ctx
from ._io import atomic_path, ensure_writable_dir, sha1_file, write_json
from ._plot import pyplot, save_figure
from ._registry import get_model
from ._registry import model_info
from .mnist import DataError, to_input
from .datasets import RecordSource, open_sources

__all__ = ["Recipe", "RECIPES", "KVSTORES", "DivergedError", "parse_ctx", "train", "evaluate",
           "accuracy", "check_recipe", "load_backbone"]

#: the ``kvstore`` values :func:`train` takes (None: one context, or ``device`` for several)
KVSTORES = ("local", "device", "dist_sync", "dist_device_sync", "dist_async")


from .errors import DivergedError  # noqa: E402  (defined in errors; this import path stays)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe.

    Attributes
    ----------
    name : str
        ``'seed'``, ``'default'``, ``'pretrain'`` or your own.
    optimizer : str
        Any MXNet optimizer name (``'sgd'``, ``'nag'``, ``'adam'`` ...).
    lr, momentum, wd : float
        Learning rate, momentum (SGD/NAG only) and weight decay.
    batch_size, epochs : int
        Global batch size (over all contexts and workers) and number of epochs.
    init : str
        ``'normal0.1'`` (the seed's) or ``'xavier'``.
    schedule : str
        ``'constant'`` or ``'cosine'`` (per step).
    warmup_steps : int
        Steps of linear learning-rate warm-up.
    """

    name: str
    optimizer: str = "sgd"
    lr: float = 0.1
    batch_size: int = 100
    epochs: int = 2
    momentum: float = 0.0
    wd: float = 0.0
    init: str = "normal0.1"
    schedule: str = "constant"
    warmup_steps: int = 0


RECIPES = {
    # The seed blog, exactly: SGD lr 0.1, batch 100, Normal(0.1), 2 epochs.
    "seed": Recipe("seed"),
    # Adam with warm-up and a cosine decay to zero; docs/training.md shows how it compares.
    "default": Recipe("default", optimizer="adam", lr=0.002, batch_size=64, momentum=0.0,
                      wd=1e-4, init="xavier", schedule="cosine", warmup_steps=200),
    # The default, longer: what the shipped weights were trained with.
    "pretrain": Recipe("pretrain", optimizer="adam", lr=0.002, batch_size=64, momentum=0.0,
                       wd=1e-4, init="xavier", schedule="cosine", warmup_steps=200, epochs=10),
}


class _Schedule(mx.lr_scheduler.LRScheduler):
    def __init__(self, recipe, total_steps):
        super().__init__(base_lr=recipe.lr)
        self.recipe, self.total = recipe, max(total_steps, 1)

    def __call__(self, num_update):
        r = self.recipe
        if num_update < r.warmup_steps:
            return r.lr * (num_update + 1) / r.warmup_steps
        if r.schedule == "constant":
            return r.lr
        t = min(num_update - r.warmup_steps, self.total) / max(self.total - r.warmup_steps, 1)
        return 0.5 * r.lr * (1 + np.cos(np.pi * t))


def _mxnet_schedule(recipe, total_steps):
    """The recipe's schedule with MXNet's own scheduler classes (for ``dist_async``, whose
    servers cannot import this package): cosine after a linear warm-up, or constant."""
    r = recipe
    if r.schedule == "constant" and not r.warmup_steps:
        return None
    if r.schedule == "constant":
        return mx.lr_scheduler.FactorScheduler(step=max(total_steps, 1) + 1, factor=1.0,
                                               base_lr=r.lr, warmup_steps=r.warmup_steps,
                                               warmup_begin_lr=0.0)
    return mx.lr_scheduler.CosineScheduler(max_update=max(total_steps, r.warmup_steps + 1),
                                           base_lr=r.lr, final_lr=0.0,
                                           warmup_steps=r.warmup_steps, warmup_begin_lr=0.0)


def _initializer(name):
    if name == "normal0.1":
        return mx.init.Normal(0.1)
    if name == "xavier":
        return mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)
    raise ValueError(f"unknown init {name!r}: expected 'normal0.1' or 'xavier'")


def _batches(images, labels, batch_size, rng=None):
    """Yield float32 NCHW batches (the seed's transform) and float32 labels, in order or
    shuffled by ``rng``. The last, smaller batch is kept."""
    order = rng.permutation(len(images)) if rng is not None else None
    for start in range(0, len(images), batch_size):
        idx = slice(start, start + batch_size) if order is None else \
            order[start:start + batch_size]
        yield to_input(images[idx]), labels[idx].astype(np.float32)


def accuracy(net, images, labels, ctx=None, batch_size=1000):
    """Top-1 accuracy of ``net`` on uint8 ``images`` (N, 28, 28) and ``labels``.

    Parameters
    ----------
    net : mxnet.gluon.Block
        An MNIST network.
    images : numpy.ndarray
        ``(N, 28, 28)`` uint8.
    labels : numpy.ndarray
        ``(N,)`` class indices.
    ctx : mxnet.Context, optional
        Default CPU.
    batch_size : int, default 1000

    Returns
    -------
    float
    """
    ctx = ctx or mx.cpu()
    correct = 0
    for x, y in _batches(images, labels, batch_size):
        pred = net(mx.nd.array(x, ctx=ctx)).argmax(axis=1).asnumpy()
        correct += int((pred == y).sum())
    return correct / len(images)


def _source_accuracy(net, source, ctx, batch_size=500):
    """Top-1 accuracy of ``net`` on every image of a :class:`~inceptionzoo.datasets.Source`."""
    correct = total = 0
    for b in source.epoch(batch_size):
        if not b.data.shape[0]:
            continue
        out = net(b.data.as_in_context(ctx))
        out = out[0] if isinstance(out, (tuple, list)) else out
        correct += int((out.argmax(axis=1) == b.label.as_in_context(ctx)).sum().asscalar())
        total += b.data.shape[0]
    return correct / total


def check_recipe(r):
    """Raise ``ValueError`` naming the field, what it must be and what was given, for a
    recipe whose hyper-parameters cannot train (non-finite, out of range, unknown names).

    Parameters
    ----------
    r : Recipe
        The recipe, after command-line overrides.
    """
    def bad(field, want, got):
        raise ValueError(f"{field} must be {want}; got {got!r}")

    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def is_num(v):
        return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and \
            math.isfinite(v)

    if not is_int(r.epochs) or r.epochs < 1:
        bad("epochs", "an integer >= 1", r.epochs)
    if not is_int(r.batch_size) or r.batch_size < 1:
        bad("batch size", "an integer >= 1", r.batch_size)
    if not is_num(r.lr) or r.lr <= 0:
        bad("lr (learning rate)", "a finite number > 0", r.lr)
    if not is_num(r.wd) or r.wd < 0:
        bad("wd (weight decay)", "a finite number >= 0", r.wd)
    if not is_num(r.momentum) or not 0 <= r.momentum < 1:
        bad("momentum", "a finite number in [0, 1)", r.momentum)
    if not is_int(r.warmup_steps) or r.warmup_steps < 0:
        bad("warmup_steps", "an integer >= 0", r.warmup_steps)
    if r.schedule not in ("constant", "cosine"):
        bad("schedule", "'constant' or 'cosine'", r.schedule)
    if r.init not in ("normal0.1", "xavier"):
        bad("init", "'normal0.1' or 'xavier'", r.init)
    known = mx.optimizer.Optimizer.opt_registry
    if not isinstance(r.optimizer, str) or r.optimizer.lower() not in known:
        bad("optimizer", f"an MXNet optimizer name ({', '.join(sorted(known))})", r.optimizer)


def load_backbone(net, path, ctx=None, keep_head=True):
    """Load a plain ``.params`` file (no weights spec: a training checkpoint) into an
    initialised ``net``, except (``keep_head=False``, or when its shapes differ) the classifier
    (``net.classifier_names()``), which keeps its fresh initialisation.

    Parameters
    ----------
    net : mxnet.gluon.Block
        A zoo network, already initialised (on ``ctx``).
    path : str
        A file written by ``save_parameters`` (``arg:``/``aux:`` prefixes of ``export`` files
        are accepted too).
    ctx : Context or list of Context, optional
        Unused: ``set_data`` writes every context the parameter lives on.
    keep_head : bool
        Load the classifier too when its shape fits.

    Returns
    -------
    list of str
        The classifier parameters that were *not* loaded (new).
    """
    from .weights import WeightsError, read_params

    path = os.fspath(path)
    loaded = read_params(path)
    params = net._collect_params_with_prefix()
    head = set(net.classifier_names())
    new = []
    for name, p in params.items():
        if name not in loaded:
            if name in head:
                new.append(name)
                continue
            raise WeightsError(f"parameter file {path!r} has no {name!r}: expected weights of "
                               f"model {net.name!r} (it holds {sorted(loaded)[:4]} ...)")
        if loaded[name].shape != p.shape:
            if name in head:
                new.append(name)
                continue
            raise WeightsError(f"parameter file {path!r}: {name!r} has shape "
                               f"{loaded[name].shape}, model {net.name!r} expects {p.shape}")
        if name in head and not keep_head:
            new.append(name)
            continue
        p.set_data(loaded[name])
    return new


def _freeze_features(net):
    """Make every parameter but the classifier's fixed: no gradient, and batch norm layers
    normalise with their loaded statistics instead of updating them (timm's frozen BN), so
    that the backbone stays bit-identical."""
    keep = set(net.classifier_names())
    for name, p in net._collect_params_with_prefix().items():
        if name not in keep:
            p.grad_req = "null"

    def visit(block):
        if isinstance(block, mx.gluon.nn.BatchNorm):
            block._kwargs["use_global_stats"] = True
        for child in block._children.values():
            visit(child)

    visit(net)


def _latest_checkpoint(out, name, need_states=True):
    found = []
    for path in glob.glob(os.path.join(glob.escape(os.fspath(out)),
                                     f"{glob.escape(name)}-[0-9][0-9][0-9][0-9].params")):
        epoch = int(path[-11:-7])
        if not need_states or os.path.isfile(path[:-7] + ".states"):
            found.append((epoch, path))
    return max(found) if found else (0, None)


def _save_checkpoint(net, trainer, out, name, epoch, states=True, spec=None):
    """Write ``NAME-EPOCH.states`` and ``.params``, and, for a run that started from weights
    with a spec, the checkpoint's own spec ``NAME-EPOCH.json`` (its preprocessing, classes
    and SHA-1), so that ``evaluate`` / ``export`` / ``pretrained=`` read it as they read a
    converted file."""
    base = os.path.join(out, f"{name}-{epoch:04d}")
    if states:
        with atomic_path(base + ".states") as tmp:
            trainer.save_states(tmp)
    with atomic_path(base + ".params") as tmp:  # written last: it marks the checkpoint done
        net.save_parameters(tmp)
        if spec is not None:  # before the params' rename: a done checkpoint has its spec
            from .weights_spec import sidecar_path

            write_json(sidecar_path(base + ".params"), dataclasses.replace(
                spec, file=os.path.basename(base + ".params"), sha1=sha1_file(tmp)).to_dict())
    return base + ".params"


def _load_states(trainer, path, optimizer):
    """``trainer.load_states`` after checking the file is a trainer state of ``optimizer``."""
    try:
        with open(path, "rb") as f:
            states = pickle.loads(f.read())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError, MemoryError) as err:
        raise ValueError(f"{path}: not a trainer state file: truncated or corrupt "
                         f"({type(err).__name__}: {err}); expected what Trainer.save_states "
                         "writes. Delete the checkpoint pair to resume from the one before"
                         ) from None
    if not (isinstance(states, tuple) and len(states) == 2 and isinstance(states[0], dict)
            and isinstance(states[1], mx.optimizer.Optimizer)):
        raise ValueError(f"{path}: not a trainer state file: expected the (states, optimizer) "
                         f"pair Trainer.save_states writes, got {type(states).__name__}")
    want = mx.optimizer.Optimizer.opt_registry[optimizer.lower()]
    saved = type(states[1])
    if saved is not want:
        raise ValueError(f"{path} holds the state of optimizer {saved.__name__.lower()!r}; this "
                         f"run uses {optimizer!r}: resume with --optimizer "
                         f"{saved.__name__.lower()} (or the recipe that made it), or train into "
                         "a new --out folder")
    try:
        trainer.load_states(path)
    except Exception as err:  # noqa: BLE001 - any mismatch inside MXNet's updater
        raise ValueError(f"{path}: trainer state does not fit this run "
                         f"({type(err).__name__}: {err})") from None


def _finite_params(net):
    return all(np.isfinite(p.list_data()[0].asnumpy()).all()
               for p in net.collect_params().values())


def _kvstore(kvstore, ctxs):
    """``(kvstore for the Trainer, rank, num_workers, update_on_kvstore)``."""
    if kvstore in (None, "", "none"):
        return ("device" if len(ctxs) > 1 else None), 0, 1, None
    if kvstore not in KVSTORES:
        raise ValueError(f"unknown kvstore {kvstore!r}: expected one of {', '.join(KVSTORES)}")
    if not kvstore.startswith("dist"):
        return kvstore, 0, 1, None
    if "DMLC_ROLE" not in os.environ:
        raise ValueError(f"--kvstore {kvstore} needs MXNet's parameter server: run the command "
                         "under `inceptionzoo launch --workers N --servers M -- ...`")
    kv = mx.kv.create(kvstore)
    # sync: every worker updates its own copy with the summed gradient (its optimizer state is
    # then local, so checkpoints hold it); async updates can only run on the servers
    return kv, kv.rank, kv.num_workers, "async" in kvstore


def _parts(batch, ctxs, shape):
    """Split a worker's batch over its contexts. A context left without an image gets one
    blank image with sample weight 0: every context takes part in the step (a Trainer with a
    device or dist KVStore needs a gradient from each) and adds nothing."""
    n = batch.data.shape[0]
    out = []
    for c, idx in zip(ctxs, np.array_split(np.arange(n), len(ctxs))):
        if len(idx):
            a, b = int(idx[0]), int(idx[-1]) + 1
            out.append((batch.data[a:b].as_in_context(c), batch.label[a:b].as_in_context(c),
                        None))
        else:
            out.append((mx.nd.zeros((1,) + shape, ctx=c), mx.nd.zeros((1,), ctx=c),
                        mx.nd.zeros((1, 1), ctx=c)))
    return out


def _loss(loss_fn, out, y, w):
    if isinstance(out, (tuple, list)):  # auxiliary heads weigh 0.3, as in the paper
        return loss_fn(out[0], y, w) + sum(0.3 * loss_fn(o, y, w) for o in out[1:])
    return loss_fn(out, y, w)


def _diverged(what, epoch, step, r, out, name):
    last = _latest_checkpoint(out, name, need_states=False)[1] if out else None
    return DivergedError(
        f"training diverged in epoch {epoch}, step {step}: {what} (optimizer {r.optimizer}, "
        f"lr {r.lr}, wd {r.wd}, batch size {r.batch_size}); nothing of this epoch was saved"
        + (f", the last good checkpoint {last} is kept" if last else "")
        + ". Lower --lr or check the data")


def _previous_run(out, name, overwrite=False):
    """What an output folder holds already: the ``metrics.json`` of a run (a dict), a dict
    naming only the model when it holds checkpoints of ``name`` without (readable, with
    ``overwrite``) metrics, or None."""
    path = os.path.join(out, "metrics.json")
    if os.path.isfile(path) and overwrite:
        try:
            return _previous_run(out, name)
        except ValueError:  # unreadable metrics: replaced by this run's
            return {"model": name}
    if os.path.isfile(path):
        try:
            with open(path) as f:
                found = json.load(f)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read the metrics of the run in {out} ({err}); "
                             "expected the metrics.json training writes: move the folder's "
                             "files away, or train into another --out folder") from None
        if not isinstance(found, dict) or not isinstance(found.get("model"), str):
            raise ValueError(f"{path}: not the metrics.json training writes (no model name): "
                             "move it away, or train into another --out folder")
        return found
    if _latest_checkpoint(out, name, need_states=False)[1]:
        return {"model": name}
    return None


def _check_previous_run(previous, out, name, classes, class_names, resume, overwrite):
    """Refuse to resume another run (model, class count, class names) or to write a fresh
    run over one without ``overwrite``."""
    if previous is None:
        return
    epochs = len(previous.get("epochs") or [])
    what = f"a run of model {previous['model']!r}" + (
        f" ({epochs} epoch(s), {previous['classes']} classes)"
        if isinstance(previous.get("classes"), int) else "")
    if not resume:
        if not overwrite:
            raise FileExistsError(f"{out} holds {what} already: pass --resume to continue it, "
                                  "--overwrite to replace it, or give another --out folder")
        return
    if previous["model"] != name:
        raise ValueError(f"--resume: {out} holds {what}, this run trains {name!r}: resume "
                         f"with --model {previous['model']}, or train into another --out "
                         "folder")
    if previous.get("classes") not in (None, classes):
        raise ValueError(f"--resume: {out} holds {what}; this run has {classes} classes: "
                         "resume it on its own data (and --classes), or train into another "
                         "--out folder")
    old = previous.get("class_names")
    if old is not None and list(old) != list(class_names):
        show = lambda c: ", ".join(map(str, c[:6])) + (" ..." if len(c) > 6 else "")  # noqa
        raise ValueError(f"--resume: {out} holds {what} on classes [{show(list(old))}]; this "
                         f"data has classes [{show(list(class_names))}]: resume it on its own "
                         "data, or train into another --out folder")


def _clear_run(out, names):
    """Delete the checkpoints of models ``names`` and the curves in ``out`` (``overwrite``:
    done when the new run saves its first epoch, so a failed first epoch loses nothing)."""
    for name in set(names):
        for ext in ("params", "states"):
            for path in glob.glob(os.path.join(out, f"{name}-[0-9][0-9][0-9][0-9].{ext}")):
                os.remove(path)
    if os.path.isfile(os.path.join(out, "curves.png")):
        os.remove(os.path.join(out, "curves.png"))


def _check_data_classes(src, outputs, what):
    """Refuse data whose labels the network cannot output, or (image folders and MNIST, whose
    class count is exact) data with another number of classes than the network's outputs.
    RecordIO knows only its largest label, so fewer classes pass there."""
    n = src.num_classes
    if n > outputs or (n != outputs and not isinstance(src, RecordSource)):
        raise DataError(f"{src.path}: the {what} has {n} classes; the network outputs "
                        f"{outputs}: expected data with {outputs} classes (the data the "
                        "network was trained on)")


def plot_curves(metrics, path):
    """PNG of the training loss and test accuracy per epoch."""
    ep = [e["epoch"] for e in metrics["epochs"]]
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(9, 3.5))
    a.plot(ep, [e["train_loss"] for e in metrics["epochs"]], "o-")
    a.set(xlabel="epoch", ylabel="mean training loss", title=metrics["model"])
    b.plot(ep, [e["test_accuracy"] for e in metrics["epochs"]], "o-", color="C1")
    b.set(xlabel="epoch", ylabel="test accuracy", title=f"recipe {metrics['recipe']['name']}")
    save_figure(fig, path)


def train(model="inception_mnist", data_dir=None, recipe="default", epochs=None,
          batch_size=None, lr=None, optimizer=None, momentum=None, wd=None, schedule=None,
          seed=0, ctx="cpu", out=None, resume=False, progress=True, log=print,
          train_data=None, val_data=None, classes=None, pretrained=None,
          freeze_features=False, kvstore=None, data_workers=None, root=None,
          overwrite=False):
    """Train a registered model on MNIST, an image folder or RecordIO; return its metrics.

    Parameters
    ----------
    model : str
        Registered model name.
    data_dir : str, optional
        MNIST IDX folder, or a folder with ``train/`` + ``val/`` image folders, or with
        ``train.rec``/``.idx`` + ``val.rec``/``.idx`` (see
        :func:`inceptionzoo.datasets.open_sources`). None: MNIST from ``$INCEPTIONZOO_DATA`` or
        MXNet's dataset folder.
    recipe : str or Recipe
        ``'seed'`` (the blog's), ``'default'``, or a :class:`Recipe`; all fields are checked by
        :func:`check_recipe` before anything is read or written.
    epochs, batch_size, lr, optimizer, momentum, wd, schedule : optional
        Override single fields of the recipe (see :class:`Recipe`).
    seed : int
        Seeds MXNet's and numpy's generators: initialisation and data order.
    ctx : str or list of Context
        ``'cpu'``, ``'gpu0,gpu1'``, ... Several contexts train data-parallel: each batch is split
        over them and gradients are reduced by a ``'device'`` KVStore.
    out : str, optional
        Folder for ``NAME-EPOCH.params`` / ``.states`` checkpoints (one per epoch, written
        atomically, by worker 0 only; started from weights with a spec, each checkpoint also
        gets its spec ``NAME-EPOCH.json``: preprocessing, classes and class names of the data),
        ``metrics.json`` and ``curves.png``.
    resume : bool
        Continue from the newest complete checkpoint in ``out`` (every worker reads it). The run
        in ``out`` must be of the same model, class count and class names.
    progress : bool
        Show a tqdm bar.
    log : callable
        Receives one line per epoch.
    train_data, val_data : str, optional
        Explicit training / validation data (``.rec`` file, image folder or MNIST folder).
    classes : int, optional
        Output classes (default: the number of classes of the data).
    pretrained : bool or str, optional
        ``True``: the weights registered for the model (shipped, or ``NAME.params`` converted
        into the weights folder); a path: a converted ``.params`` file (its sidecar's
        preprocessing is used for training and validation), or a plain parameter file of the
        model (a checkpoint). Every layer is loaded but the classifier when ``classes``
        differs from the weights': that one is new.
    freeze_features : bool
        Train only the classifier (``net.classifier_names()``; ``grad_req='null'`` everywhere
        else: the backbone stays bit-identical).
    kvstore : str, optional
        One of :data:`KVSTORES`. ``dist_sync`` / ``dist_device_sync`` / ``dist_async`` need the
        processes of :func:`inceptionzoo.launch.launch`: each worker reads its part of every
        global batch of ``batch_size`` images, and the gradient is that of the global batch.
    data_workers : int, optional
        Decoding threads of image folders and RecordIO.
    root : str, optional
        Weight cache folder for ``pretrained=True``.
    overwrite : bool
        Replace a run that ``out`` holds already (without ``resume``, that is an error). Its
        checkpoints and curves are deleted when this run saves its first epoch.

    Returns
    -------
    dict
        ``model``, ``recipe``, ``seed``, ``contexts``, ``kvstore``, ``num_workers``, ``rank``,
        ``data``, ``classes``, ``epochs`` (per-epoch ``train_loss``, ``test_accuracy``,
        ``seconds``, ``images_per_sec`` of all workers together), ``accuracy`` (final test
        accuracy), ``params`` (path of the last checkpoint, if ``out``), ``net``.

    Raises
    ------
    ValueError
        Bad hyper-parameters, data (:class:`~inceptionzoo.mnist.DataError`), weights or
        checkpoint; :class:`DivergedError` when the loss or the parameters stop being finite
        (the last good checkpoint is kept).
    """
    if isinstance(recipe, str) and recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: expected one of {sorted(RECIPES)}")
    r = RECIPES[recipe] if isinstance(recipe, str) else recipe
    overrides = dict(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                     momentum=momentum, wd=wd, schedule=schedule)
    r = dataclasses.replace(r, **{k: v for k, v in overrides.items() if v is not None})
    check_recipe(r)
    ctxs = parse_ctx(ctx)
    if resume and out is None:
        raise ValueError("resume=True needs the checkpoint folder `out`")
    if resume and overwrite:
        raise ValueError("give --resume (continue the run in --out) or --overwrite (replace "
                         "it), not both")
    if classes is not None and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes must be an integer >= 1; got {classes!r}")
    if freeze_features and not pretrained:
        raise ValueError("freeze_features needs pretrained weights (--pretrained [FILE])")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or \
            not 0 <= seed * 1000 + r.epochs < 2 ** 32:  # each epoch's order: seed * 1000 + epoch
        raise ValueError(f"seed must be an integer in 0..{(2 ** 32 - 1 - r.epochs) // 1000}; "
                         f"got {seed!r}")

    info, wpath, spec = model_info(model), None, None
    if pretrained:  # the weights' spec decides the preprocessing
        from ._builder import resolve_weights, with_weights

        wpath, spec = resolve_weights(model, pretrained, root, plain_ok=True)
        if spec is not None:
            info = with_weights(info, spec, spec.classes)
    train_src, val_src = open_sources(info, data_dir, train_data, val_data,
                                      workers=data_workers, seed=seed)
    need = max(train_src.num_classes, val_src.num_classes)
    classes = classes or need
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
    previous = None
    if out is not None and os.path.isdir(out):
        previous = _previous_run(os.path.abspath(out), info.name, overwrite and not resume)
        _check_previous_run(previous, os.path.abspath(out), info.name, classes,
                            train_src.classes, resume, overwrite)
    if r.batch_size > len(train_src):
        log(f"note: batch size {r.batch_size} > {len(train_src)} training images: "
            "one batch per epoch")

    mx.random.seed(seed)
    np.random.seed(seed)
    head = []
    if spec is not None:  # every layer loaded but a classifier of another size
        net = get_model(model, pretrained=wpath, classes=classes, ctx=ctxs)
        if classes != spec.classes:
            head = net.classifier_names()
            params = net._collect_params_with_prefix()
            for name in head:  # the recipe's initialisation, as when training from scratch
                params[name].initialize(default_init=_initializer(r.init), ctx=ctxs,
                                        force_reinit=True)
    else:
        net = get_model(model, **({} if classes == info.classes else {"classes": classes}))
        net.initialize(_initializer(r.init), ctx=ctxs)
        if wpath:  # a plain parameter file of the model (a checkpoint)
            head = load_backbone(net, wpath, keep_head=True)
    ckpt_spec = None
    if spec is not None:  # the checkpoints' spec: these weights, fine-tuned on this data
        from . import __version__

        names = tuple(train_src.classes) if len(train_src.classes) == classes else None
        ckpt_spec = dataclasses.replace(
            spec, classes=classes, class_names=names if head else spec.class_names,
            source="inceptionzoo train", checkpoint=spec.file, checkpoint_sha1=spec.sha1,
            command=None, recipe=dataclasses.asdict(r), seed=seed,
            inceptionzoo_version=__version__)
    if pretrained:
        log(f"loaded {wpath}" + (f"; new classifier {', '.join(head)} ({classes} classes)"
                                 if head else ""))
        if freeze_features:
            _freeze_features(net)
    net.hybridize(static_alloc=True, static_shape=True)

    kv, rank, num_workers, update_on_kv = _kvstore(kvstore, ctxs)
    if r.batch_size < num_workers:
        raise ValueError(f"batch size {r.batch_size} is smaller than the {num_workers} "
                         "workers: expected a batch size >= the number of workers (it is the "
                         "global batch, shared by the workers)")
    async_kv = isinstance(kv, mx.kv.KVStore) and "async" in kv.type
    writer = out is not None and rank == 0
    if out is not None:
        out = ensure_writable_dir(out) if rank == 0 else os.path.abspath(out)

    start_epoch, path = 0, None
    if resume:  # parameters before the Trainer exists (a dist KVStore cannot be reset)
        start_epoch, path = _latest_checkpoint(out, net.info.name, need_states=not async_kv)
        if path:
            from .weights import load_params_file

            load_params_file(net, path, ctx=ctxs)

    steps_per_epoch = train_src.steps(r.batch_size)
    opt_args = {"learning_rate": r.lr, "wd": r.wd,
                "lr_scheduler": _Schedule(r, steps_per_epoch * r.epochs)}
    fixed_step = None
    if update_on_kv:  # dist_async: the servers apply each worker's update on its own
        # they unpickle the optimizer: only MXNet's own classes there; they count every
        # worker's update, and their gradient scale cannot change once set: each update is
        # the mean gradient of one worker's share of a batch
        opt_args["lr_scheduler"] = _mxnet_schedule(r, steps_per_epoch * r.epochs * num_workers)
        opt_args["rescale_grad"] = 1.0 / -(-r.batch_size // num_workers)
        fixed_step = 1  # Trainer.step divides the rescale above by this
    if r.optimizer in ("sgd", "nag"):
        opt_args["momentum"] = r.momentum
    trainable = [p for p in net.collect_params().values() if p.grad_req != "null"]
    trainer = mx.gluon.Trainer(trainable, r.optimizer, opt_args, kvstore=kv,
                               update_on_kvstore=update_on_kv)
    if num_workers > 1 or isinstance(kv, mx.kv.KVStore):
        # MXNet 1.9.1 races the broadcast of the initial values with the first push: a worker
        # can pull a stale value in step 1. Initialise now and wait for every worker.
        trainer._init_kvstore()
        trainer._init_params()
        mx.nd.waitall()
        kv._barrier()
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    shape = tuple(net.info.input_shape)

    kind = type(train_src).__name__
    metrics = {"model": net.info.name, "recipe": dataclasses.asdict(r), "seed": seed,
               "contexts": [str(c) for c in ctxs], "kvstore": kvstore,
               "num_workers": num_workers, "rank": rank,
               "data": {"kind": kind, "train": train_src.path, "val": val_src.path},
               "classes": classes, "class_names": list(train_src.classes),
               "pretrained": (os.path.abspath(wpath) if pretrained else None),
               "freeze_features": bool(freeze_features),
               "num_train": len(train_src), "num_test": len(val_src), "epochs": []}
    if path:
        if not async_kv:  # dist_async: the optimizer state lives on the servers
            _load_states(trainer, path[:-7] + ".states", r.optimizer)
        old = os.path.join(out, "metrics.json")
        if os.path.isfile(old):
            with open(old) as f:
                metrics["epochs"] = json.load(f)["epochs"][:start_epoch]
        log(f"resuming from {path} (epoch {start_epoch})")

    for epoch in range(start_epoch, r.epochs):
        rng = np.random.RandomState(seed * 1000 + epoch)  # same order after a resume
        batches = train_src.epoch(r.batch_size, rng, rank, num_workers)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{r.epochs}",
                       unit="batch", leave=True)
            batches = bar
        total_loss, seen, images, t0 = mx.nd.zeros((1,), ctx=ctxs[0]), 0, 0, time.perf_counter()
        for step, batch in enumerate(batches):
            parts = _parts(batch, ctxs, shape)
            with mx.autograd.record():
                losses = [_loss(loss_fn, net(a), b, w) for a, b, w in parts]
            for loss in losses:
                loss.backward()
            trainer.step(fixed_step or batch.global_size)
            for loss in losses:  # stays on the device: no synchronisation per step
                total_loss += loss.sum().as_in_context(ctxs[0])
            seen += batch.data.shape[0]
            images += batch.global_size
            if step % 50 == 0:
                value = float(total_loss.asscalar())
                if not math.isfinite(value):
                    raise _diverged(f"the training loss is {value}", epoch + 1, step + 1, r,
                                    out, net.info.name)
                if bar is not None:
                    bar.set_postfix(loss=f"{value / max(seen, 1):.4f}",
                                    img_s=f"{images / (time.perf_counter() - t0):.0f}")
        mx.nd.waitall()
        seconds = time.perf_counter() - t0
        train_loss = float(total_loss.asscalar()) / max(seen, 1)
        if not math.isfinite(train_loss):
            raise _diverged(f"the training loss is {train_loss}", epoch + 1, steps_per_epoch,
                            r, out, net.info.name)
        if not _finite_params(net):
            raise _diverged("the parameters are no longer finite", epoch + 1,
                            steps_per_epoch, r, out, net.info.name)
        if rank != 0:  # worker 0 evaluates, logs and writes
            continue
        acc = _source_accuracy(net, val_src, ctxs[0])
        entry = {"epoch": epoch + 1, "train_loss": train_loss, "test_accuracy": acc,
                 "seconds": round(seconds, 2), "images_per_sec": round(images / seconds, 1)}
        metrics["epochs"].append(entry)
        log(f"epoch {epoch + 1}: test accuracy {acc:.4f}, {seconds:.1f} s, "
            f"{entry['images_per_sec']:.0f} images/s")
        if writer:
            if overwrite and previous is not None and epoch == start_epoch:
                _clear_run(out, [previous["model"], net.info.name])
            metrics["params"] = _save_checkpoint(
                net, trainer, out, net.info.name, epoch + 1, states=not async_kv,
                spec=ckpt_spec and dataclasses.replace(ckpt_spec, accuracy=acc,
                                                       dataset=val_src.path))
            write_json(os.path.join(out, "metrics.json"), dict(metrics, accuracy=acc),
                       allow_nan=False)
    metrics["accuracy"] = metrics["epochs"][-1]["test_accuracy"] if metrics["epochs"] else None
    if writer:
        if "params" not in metrics:  # resumed a finished run
            metrics["params"] = _latest_checkpoint(out, net.info.name,
                                                   need_states=not async_kv)[1]
        write_json(os.path.join(out, "metrics.json"), metrics, allow_nan=False)
        if metrics["epochs"]:
            plot_curves(metrics, os.path.join(out, "curves.png"))
    metrics["net"] = net
    return metrics


def _file_classes(path):
    """Output classes recorded in a ``.params`` file (its classifier's rows), or None."""
    from .checkpoints import check_ndarray_file

    try:  # the structure first: MXNet allocates whatever a corrupt header claims
        check_ndarray_file(os.fspath(path), error=DataError)
        loaded = mx.nd.load(os.fspath(path))
    except (DataError, mx.base.MXNetError):
        return None  # load_params_file reports the corrupt file
    if not isinstance(loaded, dict):
        return None
    for key in ("output.weight", "fc.weight"):  # ZooNet.classifier_paths[0] of the networks
        if key in loaded:
            return int(loaded[key].shape[0])
    return None


def evaluate(model="inception_mnist", params=None, pretrained=False, data_dir=None,
             ctx="cpu", batch_size=1000, root=None, val_data=None, classes=None,
             data_workers=None):
    """Validation accuracy of a model with a parameter file or its shipped weights.

    Parameters
    ----------
    model : str
        Registered model name.
    params : str, optional
        A ``.params`` file: converted (with a sidecar, whose preprocessing and classes are
        used), shipped, or a plain one (e.g. a training checkpoint: the registry's
        preprocessing).
    pretrained : bool
        Use the weights registered for the model instead (shipped, or ``NAME.params`` in the
        weights folder).
    data_dir : str, optional
        As for :func:`train`: MNIST (its test split), or a folder with ``val/`` or ``val.rec``.
    ctx : str
        One context.
    batch_size : int
        Images per forward pass.
    root : str, optional
        Weight cache folder.
    val_data : str, optional
        Explicit validation data (image folder, ``.rec`` or MNIST folder).
    classes : int, optional
        Output classes of a plain params file (default: its classifier's).
    data_workers : int, optional
        Decoding threads.

    Returns
    -------
    dict
        ``{'model', 'accuracy', 'num_samples', 'correct', 'params', 'seconds'}``.
    """
    from ._builder import resolve_weights
    from .weights import load_params_file

    if (params is None) == (not pretrained):
        raise ValueError("give exactly one of a params file or pretrained=True")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size must be an integer >= 1; got {batch_size!r}")
    if classes is not None and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes must be an integer >= 1; got {classes!r}")
    c = parse_ctx(ctx)[0]
    path, spec = resolve_weights(model, True if pretrained else params, root, plain_ok=True)
    if spec is not None:  # the weights' spec: classes and preprocessing
        if classes not in (None, spec.classes):
            raise ValueError(f"{path} holds weights of {spec.classes} classes; got classes="
                             f"{classes}: a new classifier would be untrained")
        net = get_model(model, pretrained=path, ctx=c)
    else:
        info = model_info(model)
        classes = classes or _file_classes(path) or info.classes
        net = get_model(model, **({} if classes == info.classes else {"classes": classes}))
        load_params_file(net, path, ctx=c)
    _, val = open_sources(net.info, data_dir if val_data is None else None, val_data=val_data,
                          workers=data_workers, train=False)
    _check_data_classes(val, net.info.classes, "validation data")
    net.hybridize(static_alloc=True, static_shape=True)
    t0 = time.perf_counter()
    acc = _source_accuracy(net, val, c, batch_size=batch_size)
    return {"model": net.info.name, "accuracy": acc, "num_samples": len(val),
            "correct": int(round(acc * len(val))), "params": os.path.abspath(path),
            "seconds": round(time.perf_counter() - t0, 3)}
