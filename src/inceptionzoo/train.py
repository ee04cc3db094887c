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
import time

import mxnet as mx
import numpy as np

from ._checks import check_count, is_integer
from ._context import parse_ctx
from ._io import atomic_path, ensure_writable_dir, read_json, sha1_file, write_json
from ._plot import pyplot, save_figure
from ._registry import get_model
from ._registry import model_info
from .mnist import DataError, to_input
from .datasets import RecordSource, open_sources
from .errors import InceptionZooError
from .trainer_state import load_trainer_state, save_trainer_state

__all__ = ["Recipe", "RECIPES", "KVSTORES", "DivergedError", "parse_ctx", "TrainOptions",
           "run_training", "train", "evaluate", "accuracy", "check_recipe"]

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
    raise InceptionZooError(f"unknown init {name!r}: expected 'normal0.1' or 'xavier'")


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
    """Top-1 accuracy of ``net`` on every image of a
    :class:`~inceptionzoo.data_source.DataSource`."""
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
    """Raise :class:`~inceptionzoo.errors.InceptionZooError` naming the field, what it must be
    and what was given, for a recipe whose hyper-parameters cannot train (non-finite, out of
    range, unknown names).

    Parameters
    ----------
    r : Recipe
        The recipe, after command-line overrides.
    """
    def bad(field, want, got):
        raise InceptionZooError(f"{field} must be {want}; got {got!r}")

    def is_num(v):
        return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and \
            math.isfinite(v)

    check_count("epochs", r.epochs)
    check_count("batch size", r.batch_size)
    if not is_num(r.lr) or r.lr <= 0:
        bad("lr (learning rate)", "a finite number > 0", r.lr)
    if not is_num(r.wd) or r.wd < 0:
        bad("wd (weight decay)", "a finite number >= 0", r.wd)
    if not is_num(r.momentum) or not 0 <= r.momentum < 1:
        bad("momentum", "a finite number in [0, 1)", r.momentum)
    if not is_integer(r.warmup_steps) or r.warmup_steps < 0:
        bad("warmup_steps", "an integer >= 0", r.warmup_steps)
    if r.schedule not in ("constant", "cosine"):
        bad("schedule", "'constant' or 'cosine'", r.schedule)
    if r.init not in ("normal0.1", "xavier"):
        bad("init", "'normal0.1' or 'xavier'", r.init)
    known = mx.optimizer.Optimizer.opt_registry
    if not isinstance(r.optimizer, str) or r.optimizer.lower() not in known:
        bad("optimizer", f"an MXNet optimizer name ({', '.join(sorted(known))})", r.optimizer)


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
        save_trainer_state(trainer, base + ".states")
    with atomic_path(base + ".params") as tmp:  # written last: it marks the checkpoint done
        net.save_parameters(tmp)
        if spec is not None:  # before the params' rename: a done checkpoint has its spec
            from .weights_spec import sidecar_path

            write_json(sidecar_path(base + ".params"), dataclasses.replace(
                spec, file=os.path.basename(base + ".params"), sha1=sha1_file(tmp)).to_dict())
    return base + ".params"


def _finite_params(net):
    return all(np.isfinite(p.list_data()[0].asnumpy()).all()
               for p in net.collect_params().values())


def _kvstore(kvstore, ctxs):
    """``(kvstore for the Trainer, rank, num_workers, update_on_kvstore)``."""
    if kvstore in (None, "", "none"):
        return ("device" if len(ctxs) > 1 else None), 0, 1, None
    if kvstore not in KVSTORES:
        raise InceptionZooError(
            f"unknown kvstore {kvstore!r}: expected one of {', '.join(KVSTORES)}")
    if not kvstore.startswith("dist"):
        return kvstore, 0, 1, None
    if "DMLC_ROLE" not in os.environ:
        raise InceptionZooError(
            f"--kvstore {kvstore} needs MXNet's parameter server: run the command "
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
            found = read_json(path)
        except ValueError as err:
            raise InceptionZooError(f"{path}: cannot read the metrics of the run in {out} ({err}); "
                                    "expected the metrics.json training writes: move the folder's "
                                    "files away, or train into another --out folder") from None
        if not isinstance(found, dict) or not isinstance(found.get("model"), str):
            raise InceptionZooError(
                f"{path}: not the metrics.json training writes (no model name): "
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
        raise InceptionZooError(f"--resume: {out} holds {what}, this run trains {name!r}: resume "
                                f"it as `inceptionzoo train {previous['model']} --resume`, or "
                                "train into another --out folder")
    if previous.get("classes") not in (None, classes):
        raise InceptionZooError(f"--resume: {out} holds {what}; this run has {classes} classes: "
                                "resume it on its own data (and --classes), or train into another "
                                "--out folder")
    old = previous.get("class_names")
    if old is not None and list(old) != list(class_names):
        show = lambda c: ", ".join(map(str, c[:6])) + (" ..." if len(c) > 6 else "")  # noqa
        raise InceptionZooError(
            f"--resume: {out} holds {what} on classes [{show(list(old))}]; this "
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


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The options of one training run, in one record: the arguments of :func:`train`, with the
    same names, defaults and meanings (see there).

    Attributes
    ----------
    model, data_dir, recipe, epochs, batch_size, lr, optimizer, momentum, wd, schedule : object
        The model, the data and the recipe with its overrides.
    seed, ctx, out, resume, progress, log : object
        Seed, contexts, output folder, resume, progress bar, log function.
    train_data, val_data, classes, pretrained, freeze_features : object
        Explicit data, class count, starting weights, frozen backbone.
    kvstore, data_workers, root, overwrite : object
        KVStore, decoding threads, weight cache folder, replace a run in ``out``.
    """

    model: str = "inception_mnist"
    data_dir: object = None
    recipe: object = "default"
    epochs: object = None
    batch_size: object = None
    lr: object = None
    optimizer: object = None
    momentum: object = None
    wd: object = None
    schedule: object = None
    seed: object = 0
    ctx: object = "cpu"
    out: object = None
    resume: bool = False
    progress: bool = True
    log: object = print
    train_data: object = None
    val_data: object = None
    classes: object = None
    pretrained: object = None
    freeze_features: bool = False
    kvstore: object = None
    data_workers: object = None
    root: object = None
    overwrite: bool = False


@dataclasses.dataclass
class _Run:
    """What the steps of one run hand each other (filled in step by step)."""

    opts: TrainOptions
    r: Recipe
    ctxs: list
    info: object = None
    weights: object = None
    wpath: object = None
    spec: object = None
    train_src: object = None
    val_src: object = None
    classes: int = None
    previous: object = None
    net: object = None
    ckpt_spec: object = None
    kv: object = None
    rank: int = 0
    num_workers: int = 1
    update_on_kv: object = None
    out: object = None
    trainer: object = None
    fixed_step: object = None
    steps_per_epoch: int = 0
    start_epoch: int = 0
    resume_path: object = None
    metrics: dict = None

    @property
    def async_kv(self):
        return isinstance(self.kv, mx.kv.KVStore) and "async" in self.kv.type

    @property
    def writer(self):
        return self.out is not None and self.rank == 0


def _check_options(o):
    """The recipe with its overrides and the contexts, after refusing options that cannot
    train (before anything is read or written)."""
    if isinstance(o.recipe, str) and o.recipe not in RECIPES:
        raise InceptionZooError(f"unknown recipe {o.recipe!r}: expected one of "
                                f"{sorted(RECIPES)}")
    r = RECIPES[o.recipe] if isinstance(o.recipe, str) else o.recipe
    overrides = dict(epochs=o.epochs, batch_size=o.batch_size, lr=o.lr, optimizer=o.optimizer,
                     momentum=o.momentum, wd=o.wd, schedule=o.schedule)
    r = dataclasses.replace(r, **{k: v for k, v in overrides.items() if v is not None})
    check_recipe(r)
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


def _open_data(run):
    """Resolve the starting weights (their spec decides the preprocessing), open the training
    and validation data, settle the class count and check the run ``out`` holds already."""
    o = run.opts
    run.info = model_info(o.model)
    if o.pretrained:
        from ._builder import resolve_weights, with_weights

        run.weights = resolve_weights(o.model, o.pretrained, o.root)  # read once, here
        run.wpath, run.spec = run.weights.path, run.weights.spec
        run.info = with_weights(run.info, run.spec, run.spec.classes)
    train_src, val_src = open_sources(run.info, o.data_dir, o.train_data, o.val_data,
                                      threads=o.data_workers, seed=o.seed)
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
    if o.out is not None and os.path.isdir(o.out):
        out = os.path.abspath(o.out)
        run.previous = _previous_run(out, run.info.name, o.overwrite and not o.resume)
        _check_previous_run(run.previous, out, run.info.name, classes, train_src.classes,
                            o.resume, o.overwrite)
    if run.r.batch_size > len(train_src):
        o.log(f"note: batch size {run.r.batch_size} > {len(train_src)} training images: "
              "one batch per epoch")
    run.train_src, run.val_src, run.classes = train_src, val_src, classes


def _build_model(run):
    """Seed, build the network with its starting weights (a classifier of another size keeps
    the recipe's initialisation), the checkpoints' spec, freeze, hybridize."""
    o, r, ctxs, classes, spec = run.opts, run.r, run.ctxs, run.classes, run.spec
    mx.random.seed(o.seed)
    np.random.seed(o.seed)
    head = []
    if spec is not None:  # every layer loaded but a classifier of another size
        net = get_model(o.model, pretrained=run.weights, classes=classes, ctx=ctxs)
        run.weights = None  # its arrays are in the network now
        if classes != spec.classes:
            head = net.classifier_names()
            params = net._collect_params_with_prefix()
            for name in head:  # the recipe's initialisation, as when training from scratch
                params[name].initialize(default_init=_initializer(r.init), ctx=ctxs,
                                        force_reinit=True)
    else:
        net = get_model(o.model, **({} if classes == run.info.classes
                                    else {"classes": classes}))
        net.initialize(_initializer(r.init), ctx=ctxs)
    if spec is not None:  # the checkpoints' spec: these weights, fine-tuned on this data
        from . import __version__

        names = tuple(run.train_src.classes) if len(run.train_src.classes) == classes else None
        run.ckpt_spec = dataclasses.replace(
            spec, classes=classes, class_names=names if head else spec.class_names,
            source="inceptionzoo train", tag=None, checkpoint=spec.file, checkpoint_sha1=spec.sha1,
            command=None, recipe=dataclasses.asdict(r), seed=o.seed,
            inceptionzoo_version=__version__)
    if o.pretrained:
        o.log(f"loaded {run.wpath}" + (f"; new classifier {', '.join(head)} ({classes} "
                                       "classes)" if head else ""))
        if o.freeze_features:
            _freeze_features(net)
    net.hybridize(static_alloc=True, static_shape=True)
    run.net = net


def _open_kvstore(run):
    """The KVStore, this worker's rank, the number of workers, and the output folder."""
    run.kv, run.rank, run.num_workers, run.update_on_kv = _kvstore(run.opts.kvstore, run.ctxs)
    if run.r.batch_size < run.num_workers:
        raise InceptionZooError(
            f"batch size {run.r.batch_size} is smaller than the {run.num_workers} workers: "
            "expected a batch size >= the number of workers (it is the global batch, shared "
            "by the workers)")
    out = run.opts.out
    if out is not None:
        run.out = ensure_writable_dir(out) if run.rank == 0 else os.path.abspath(out)


def _resume_parameters(run):
    """Load the newest checkpoint's parameters (before the Trainer exists: a dist KVStore
    cannot be reset)."""
    if not run.opts.resume:
        return
    run.start_epoch, run.resume_path = _latest_checkpoint(run.out, run.net.info.name,
                                                          need_states=not run.async_kv)
    if run.resume_path:
        from .weights import load_params_file

        load_params_file(run.net, run.resume_path, ctx=run.ctxs)


def _build_trainer(run):
    """The Trainer of the recipe: optimizer, schedule, and (dist_async) the servers' share."""
    r, net = run.r, run.net
    run.steps_per_epoch = steps = run.train_src.steps(r.batch_size)
    opt_args = {"learning_rate": r.lr, "wd": r.wd,
                "lr_scheduler": _Schedule(r, steps * r.epochs)}
    if run.update_on_kv:  # dist_async: the servers apply each worker's update on its own
        # they unpickle the optimizer: only MXNet's own classes there; they count every
        # worker's update, and their gradient scale cannot change once set: each update is
        # the mean gradient of one worker's share of a batch
        opt_args["lr_scheduler"] = _mxnet_schedule(r, steps * r.epochs * run.num_workers)
        opt_args["rescale_grad"] = 1.0 / -(-r.batch_size // run.num_workers)
        run.fixed_step = 1  # Trainer.step divides the rescale above by this
    if r.optimizer in ("sgd", "nag"):
        opt_args["momentum"] = r.momentum
    trainable = [p for p in net.collect_params().values() if p.grad_req != "null"]
    trainer = mx.gluon.Trainer(trainable, r.optimizer, opt_args, kvstore=run.kv,
                               update_on_kvstore=run.update_on_kv)
    if run.num_workers > 1 or isinstance(run.kv, mx.kv.KVStore):
        # MXNet 1.9.1 races the broadcast of the initial values with the first push: a worker
        # can pull a stale value in step 1. Initialise now and wait for every worker.
        trainer._init_kvstore()
        trainer._init_params()
        mx.nd.waitall()
        run.kv._barrier()
    run.trainer = trainer


def _new_metrics(run):
    """The run's ``metrics.json`` before its first epoch."""
    o = run.opts
    return {"model": run.net.info.name, "recipe": dataclasses.asdict(run.r), "seed": o.seed,
            "contexts": [str(c) for c in run.ctxs], "kvstore": o.kvstore,
            "num_workers": run.num_workers, "rank": run.rank,
            "data": {"kind": type(run.train_src).__name__, "train": run.train_src.path,
                     "val": run.val_src.path},
            "classes": run.classes, "class_names": list(run.train_src.classes),
            "pretrained": (os.path.abspath(run.wpath) if o.pretrained else None),
            "freeze_features": bool(o.freeze_features),
            "num_train": len(run.train_src), "num_test": len(run.val_src), "epochs": []}


def _resume_states(run):
    """Load the resumed checkpoint's optimizer state and the metrics of its epochs."""
    path = run.resume_path
    if not path:
        return
    if not run.async_kv:  # dist_async: the optimizer state lives on the servers
        load_trainer_state(run.trainer, path[:-7] + ".states", run.r.optimizer)
    old = os.path.join(run.out, "metrics.json")
    if os.path.isfile(old):
        epochs = read_json(old, InceptionZooError).get("epochs")  # a dict: _previous_run read it
        if not isinstance(epochs, list):
            raise InceptionZooError(f"{old}: 'epochs' is not a list; expected the metrics.json "
                                    "training writes")
        run.metrics["epochs"] = epochs[:run.start_epoch]
    run.opts.log(f"resuming from {path} (epoch {run.start_epoch})")


def _train_one_epoch(run, epoch, loss_fn):
    """One pass over this worker's share of the training data; ``(mean loss, seconds,
    images of all workers)``. Raises :class:`DivergedError` when the loss or the parameters
    stop being finite."""
    r, ctxs, net, o = run.r, run.ctxs, run.net, run.opts
    rng = np.random.RandomState(o.seed * 1000 + epoch)  # same order after a resume
    batches = run.train_src.epoch(r.batch_size, rng, run.rank, run.num_workers)
    bar = None
    if o.progress:
        from tqdm import tqdm

        bar = tqdm(batches, total=run.steps_per_epoch, desc=f"epoch {epoch + 1}/{r.epochs}",
                   unit="batch", leave=True)
        batches = bar
    shape = tuple(net.info.input_shape)
    total_loss, seen, images, t0 = mx.nd.zeros((1,), ctx=ctxs[0]), 0, 0, time.perf_counter()
    shown = t0  # the bar's loss and speed: every 50 steps, and at least every second
    for step, batch in enumerate(batches):
        parts = _parts(batch, ctxs, shape)
        with mx.autograd.record():
            losses = [_loss(loss_fn, net(a), b, w) for a, b, w in parts]
        for loss in losses:
            loss.backward()
        run.trainer.step(run.fixed_step or batch.global_size)
        for loss in losses:  # stays on the device: no synchronisation per step
            total_loss += loss.sum().as_in_context(ctxs[0])
        seen += batch.data.shape[0]
        images += batch.global_size
        if step % 50 == 0 or (bar is not None and time.perf_counter() - shown >= 1.0):
            shown = time.perf_counter()
            value = float(total_loss.asscalar())
            if not math.isfinite(value):
                raise _diverged(f"the training loss is {value}", epoch + 1, step + 1, r,
                                run.out, net.info.name)
            if bar is not None:
                bar.set_postfix(loss=f"{value / max(seen, 1):.4f}",
                                img_s=f"{images / (time.perf_counter() - t0):.0f}")
    mx.nd.waitall()
    seconds = time.perf_counter() - t0
    train_loss = float(total_loss.asscalar()) / max(seen, 1)
    if not math.isfinite(train_loss):
        raise _diverged(f"the training loss is {train_loss}", epoch + 1, run.steps_per_epoch,
                        r, run.out, net.info.name)
    if not _finite_params(net):
        raise _diverged("the parameters are no longer finite", epoch + 1,
                        run.steps_per_epoch, r, run.out, net.info.name)
    return train_loss, seconds, images


def _evaluate_and_checkpoint(run, epoch, train_loss, seconds, images):
    """Worker 0: validate, log the epoch, and (with ``out``) write its checkpoint and the
    metrics so far."""
    acc = _source_accuracy(run.net, run.val_src, run.ctxs[0])
    entry = {"epoch": epoch + 1, "train_loss": train_loss, "test_accuracy": acc,
             "seconds": round(seconds, 2), "images_per_sec": round(images / seconds, 1)}
    run.metrics["epochs"].append(entry)
    run.opts.log(f"epoch {epoch + 1}: training loss {train_loss:.4f}, test accuracy {acc:.4f}, "
                 f"{seconds:.1f} s, "
                 f"{entry['images_per_sec']:.0f} images/s")
    if not run.writer:
        return
    name = run.net.info.name
    if run.opts.overwrite and run.previous is not None and epoch == run.start_epoch:
        _clear_run(run.out, [run.previous["model"], name])
    spec = run.ckpt_spec and dataclasses.replace(run.ckpt_spec, accuracy=acc,
                                                 dataset=run.val_src.path)
    run.metrics["params"] = _save_checkpoint(run.net, run.trainer, run.out, name, epoch + 1,
                                             states=not run.async_kv, spec=spec)
    write_json(os.path.join(run.out, "metrics.json"), dict(run.metrics, accuracy=acc),
               allow_nan=False)


def _finish(run):
    """The final metrics (and, with ``out``, their file and the curves)."""
    metrics = run.metrics
    metrics["accuracy"] = metrics["epochs"][-1]["test_accuracy"] if metrics["epochs"] else None
    if run.writer:
        if "params" not in metrics:  # resumed a finished run
            metrics["params"] = _latest_checkpoint(run.out, run.net.info.name,
                                                   need_states=not run.async_kv)[1]
        write_json(os.path.join(run.out, "metrics.json"), metrics, allow_nan=False)
        if metrics["epochs"]:
            plot_curves(metrics, os.path.join(run.out, "curves.png"))
    metrics["net"] = run.net
    return metrics


def run_training(options):
    """Train as :func:`train` does, from one :class:`TrainOptions` record.

    Parameters
    ----------
    options : TrainOptions
        The run's options.

    Returns
    -------
    dict
        As :func:`train`.
    """
    r, ctxs = _check_options(options)
    run = _Run(options, r, ctxs)
    _open_data(run)
    _build_model(run)
    _open_kvstore(run)
    _resume_parameters(run)
    _build_trainer(run)
    run.metrics = _new_metrics(run)
    _resume_states(run)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for epoch in range(run.start_epoch, r.epochs):
        train_loss, seconds, images = _train_one_epoch(run, epoch, loss_fn)
        if run.rank == 0:  # worker 0 evaluates, logs and writes
            _evaluate_and_checkpoint(run, epoch, train_loss, seconds, images)
    return _finish(run)


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
        As for :func:`~inceptionzoo.get_model` (one path,
        :func:`inceptionzoo._builder.resolve_weights`): ``True`` the model's default tag, a tag
        (``'tv_in1k'``), or a path (converted file or checkpoint: its sidecar's preprocessing
        is used for training and validation; a plain Gluon file: the network's default
        transform). Every layer is loaded but the classifier when ``classes`` differs from
        the weights': that one is new.
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
    InceptionZooError
        Bad hyper-parameters, data (:class:`~inceptionzoo.mnist.DataError`), weights or
        checkpoint; :class:`DivergedError` when the loss or the parameters stop being finite
        (the last good checkpoint is kept).
    """
    return run_training(TrainOptions(
        model=model, data_dir=data_dir, recipe=recipe, epochs=epochs, batch_size=batch_size,
        lr=lr, optimizer=optimizer, momentum=momentum, wd=wd, schedule=schedule, seed=seed,
        ctx=ctx, out=out, resume=resume, progress=progress, log=log, train_data=train_data,
        val_data=val_data, classes=classes, pretrained=pretrained,
        freeze_features=freeze_features, kvstore=kvstore, data_workers=data_workers,
        root=root, overwrite=overwrite))


def evaluate(model="inception_mnist", params=None, pretrained=False, data_dir=None,
             ctx="cpu", batch_size=1000, root=None, val_data=None, classes=None,
             data_workers=None):
    """Validation accuracy of a model with a parameter file or its weights by tag.

    Parameters
    ----------
    model : str
        Registered model name.
    params : str, optional
        A ``.params`` file: converted or a training checkpoint (with a sidecar, whose
        preprocessing and classes are used), shipped, or a plain Gluon file (the network's
        default transform).
    pretrained : bool or str
        Instead: ``True`` (the model's default tag) or a tag, as for
        :func:`~inceptionzoo.get_model`.
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

    if (params is None) == (not pretrained):
        raise InceptionZooError("give exactly one of a params file or pretrained (True or a "
                                "tag)")
    batch_size = check_count("batch size", batch_size)
    classes = None if classes is None else check_count("classes", classes)
    c = parse_ctx(ctx)[0]
    w = resolve_weights(model, pretrained if params is None else params, root)
    if classes not in (None, w.spec.classes):
        raise InceptionZooError(f"{w.path} holds weights of {w.spec.classes} classes; got "
                                f"classes={classes}: a new classifier would be untrained")
    path = w.path
    net = get_model(model, pretrained=w, ctx=c)
    del w  # its arrays are in the network now
    _, val = open_sources(net.info, data_dir if val_data is None else None, val_data=val_data,
                          threads=data_workers, train=False)
    _check_data_classes(val, net.info.classes, "validation data")
    net.hybridize(static_alloc=True, static_shape=True)
    t0 = time.perf_counter()
    acc = _source_accuracy(net, val, c, batch_size=batch_size)
    return {"model": net.info.name, "accuracy": acc, "num_samples": len(val),
            "correct": int(round(acc * len(val))), "params": os.path.abspath(path),
            "seconds": round(time.perf_counter() - t0, 3)}
