"""Training and evaluation on MNIST: named recipes, hybridized data-parallel training,
checkpoints that resume, metrics and curves.

>>> from inceptionzoo.train import RECIPES
>>> RECIPES['seed'].optimizer, RECIPES['seed'].lr, RECIPES['seed'].batch_size
('sgd', 0.1, 100)
"""
import dataclasses
import glob
import json
import os
import time

import mxnet as mx
import numpy as np

from ._context import parse_ctx
from ._io import atomic_path, ensure_writable_dir, write_json
from ._plot import pyplot, save_figure
from ._registry import get_model
from .data import load_mnist, to_input

__all__ = ["Recipe", "RECIPES", "parse_ctx", "train", "evaluate", "accuracy"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe. ``init`` is ``'normal0.1'`` (the seed's) or ``'xavier'``;
    ``schedule`` is ``'constant'`` or ``'cosine'`` (per step, with linear warm-up)."""

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
    """Top-1 accuracy of ``net`` on uint8 ``images`` (N, 28, 28) and ``labels``."""
    ctx = ctx or mx.cpu()
    correct = 0
    for x, y in _batches(images, labels, batch_size):
        pred = net(mx.nd.array(x, ctx=ctx)).argmax(axis=1).asnumpy()
        correct += int((pred == y).sum())
    return correct / len(images)


def _latest_checkpoint(out, name):
    found = []
    for path in glob.glob(os.path.join(out, f"{name}-[0-9][0-9][0-9][0-9].params")):
        epoch = int(path[-11:-7])
        if os.path.isfile(path[:-7] + ".states"):
            found.append((epoch, path))
    return max(found) if found else (0, None)


def _save_checkpoint(net, trainer, out, name, epoch):
    base = os.path.join(out, f"{name}-{epoch:04d}")
    with atomic_path(base + ".states") as tmp:
        trainer.save_states(tmp)
    with atomic_path(base + ".params") as tmp:  # written last: it marks the checkpoint done
        net.save_parameters(tmp)
    return base + ".params"


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
          seed=0, ctx="cpu", out=None, resume=False, progress=True, log=print):
    """Train a registered model on MNIST and return its metrics.

    Parameters
    ----------
    model : str
        Registered model name.
    data_dir : str, optional
        MNIST folder (see :func:`inceptionzoo.data.resolve_data_dir`).
    recipe : str or Recipe
        ``'seed'`` (the blog's), ``'default'``, or a :class:`Recipe`. The keyword arguments
        ``epochs`` ... ``schedule`` override single fields.
    seed : int
        Seeds MXNet's and numpy's generators: initialisation and data order.
    ctx : str or list of Context
        ``'cpu'``, ``'gpu0,gpu1'``, ... Several contexts train data-parallel: each batch is split
        with ``gluon.utils.split_and_load`` and gradients are reduced by a ``'device'`` KVStore.
    out : str, optional
        Folder for ``NAME-EPOCH.params`` / ``.states`` checkpoints (one per epoch, written
        atomically), ``metrics.json`` and ``curves.png``.
    resume : bool
        Continue from the newest complete checkpoint in ``out``.

    Returns
    -------
    dict
        ``model``, ``recipe``, ``seed``, ``contexts``, ``epochs`` (per-epoch ``train_loss``,
        ``test_accuracy``, ``seconds``, ``images_per_sec``), ``accuracy`` (final test accuracy),
        ``params`` (path of the last checkpoint, if ``out``).
    """
    if isinstance(recipe, str) and recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: expected one of {sorted(RECIPES)}")
    r = RECIPES[recipe] if isinstance(recipe, str) else recipe
    overrides = dict(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                     momentum=momentum, wd=wd, schedule=schedule)
    r = dataclasses.replace(r, **{k: v for k, v in overrides.items() if v is not None})
    ctxs = parse_ctx(ctx)
    if out is not None:
        out = ensure_writable_dir(out)
    if resume and out is None:
        raise ValueError("resume=True needs the checkpoint folder `out`")

    train_x, train_y = load_mnist(data_dir, train=True)
    test_x, test_y = load_mnist(data_dir, train=False)

    mx.random.seed(seed)
    np.random.seed(seed)
    net = get_model(model)
    net.initialize(_initializer(r.init), ctx=ctxs)
    net.hybridize(static_alloc=True, static_shape=True)
    steps_per_epoch = -(-len(train_x) // r.batch_size)
    opt_args = {"learning_rate": r.lr, "wd": r.wd,
                "lr_scheduler": _Schedule(r, steps_per_epoch * r.epochs)}
    if r.optimizer in ("sgd", "nag"):
        opt_args["momentum"] = r.momentum
    trainer = mx.gluon.Trainer(net.collect_params(), r.optimizer, opt_args,
                               kvstore="device" if len(ctxs) > 1 else None)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    metrics = {"model": net.info.name, "recipe": dataclasses.asdict(r), "seed": seed,
               "contexts": [str(c) for c in ctxs], "num_train": len(train_x),
               "num_test": len(test_x), "epochs": []}
    start_epoch = 0
    if resume:
        start_epoch, path = _latest_checkpoint(out, net.info.name)
        if path:
            from .weights import load_params_file

            load_params_file(net, path, ctx=ctxs)
            trainer.load_states(path[:-7] + ".states")
            old = os.path.join(out, "metrics.json")
            if os.path.isfile(old):
                with open(old) as f:
                    metrics["epochs"] = json.load(f)["epochs"][:start_epoch]
            log(f"resuming from {path} (epoch {start_epoch})")

    for epoch in range(start_epoch, r.epochs):
        rng = np.random.RandomState(seed * 1000 + epoch)  # same order after a resume
        batches = _batches(train_x, train_y, r.batch_size, rng)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{r.epochs}",
                       unit="batch", leave=True)
            batches = bar
        total_loss, seen, t0 = mx.nd.zeros((1,), ctx=ctxs[0]), 0, time.perf_counter()
        for step, (x, y) in enumerate(batches):
            xs = mx.gluon.utils.split_and_load(x, ctxs, even_split=False)
            ys = mx.gluon.utils.split_and_load(y, ctxs, even_split=False)
            with mx.autograd.record():
                losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
            for loss in losses:
                loss.backward()
            trainer.step(len(x))
            for loss in losses:  # stays on the device: no synchronisation per step
                total_loss += loss.sum().as_in_context(ctxs[0])
            seen += len(x)
            if bar is not None and step % 50 == 0:
                bar.set_postfix(loss=f"{losses[0].mean().asscalar():.4f}",
                                img_s=f"{seen / (time.perf_counter() - t0):.0f}")
        mx.nd.waitall()
        seconds = time.perf_counter() - t0
        acc = accuracy(net, test_x, test_y, ctx=ctxs[0])
        entry = {"epoch": epoch + 1, "train_loss": float(total_loss.asscalar()) / seen,
                 "test_accuracy": acc, "seconds": round(seconds, 2),
                 "images_per_sec": round(seen / seconds, 1)}
        metrics["epochs"].append(entry)
        log(f"epoch {epoch + 1}: test accuracy {acc:.4f}, {seconds:.1f} s, "
            f"{entry['images_per_sec']:.0f} images/s")
        if out is not None:
            metrics["params"] = _save_checkpoint(net, trainer, out, net.info.name, epoch + 1)
            write_json(os.path.join(out, "metrics.json"), dict(metrics, accuracy=acc))
    metrics["accuracy"] = metrics["epochs"][-1]["test_accuracy"] if metrics["epochs"] else None
    if out is not None:
        if "params" not in metrics:  # resumed a finished run
            metrics["params"] = _latest_checkpoint(out, net.info.name)[1]
        write_json(os.path.join(out, "metrics.json"), metrics)
        plot_curves(metrics, os.path.join(out, "curves.png"))
    metrics["net"] = net
    return metrics


def evaluate(model="inception_mnist", params=None, pretrained=False, data_dir=None,
             ctx="cpu", batch_size=1000, root=None):
    """Test accuracy of a model with a parameter file or its shipped weights.

    Returns ``{'model', 'accuracy', 'num_samples', 'correct', 'params', 'seconds'}``.
    """
    from .weights import find_weights, load_params_file

    if (params is None) == (not pretrained):
        raise ValueError("give exactly one of a params file or pretrained=True")
    c = parse_ctx(ctx)[0]
    net = get_model(model)
    path = find_weights(model, root=root) if pretrained else params
    load_params_file(net, path, ctx=c)
    net.hybridize(static_alloc=True, static_shape=True)
    images, labels = load_mnist(data_dir, train=False)
    t0 = time.perf_counter()
    acc = accuracy(net, images, labels, ctx=c, batch_size=batch_size)
    return {"model": net.info.name, "accuracy": acc, "num_samples": int(len(images)),
            "correct": int(round(acc * len(images))), "params": os.path.abspath(path),
            "seconds": round(time.perf_counter() - t0, 3)}
