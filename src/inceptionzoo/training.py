"""The training loop: one epoch of data-parallel steps (:func:`train_one_epoch`) and the top-1
accuracy of a network on a data source (:func:`validate`, the one accuracy loop of the
package). :func:`inceptionzoo.train.train` runs them per epoch; any Gluon network, Trainer and
source of :mod:`inceptionzoo.datasets` batches go in.
"""
import collections
import math
import time

import mxnet as mx
import numpy as np

from .errors import DivergedError

__all__ = ["EpochStats", "train_one_epoch", "validate"]

#: what :func:`train_one_epoch` returns: the mean training loss per image of this worker, the
#: epoch's seconds and the images of all workers together
EpochStats = collections.namedtuple("EpochStats", "loss seconds images")


def validate(net, source, ctx, batch_size=500):
    """Top-1 accuracy of ``net`` on every image of a data source.

    Parameters
    ----------
    net : mxnet.gluon.Block
        Its first output (or its only one) holds the class scores.
    source : inceptionzoo.datasets.ImageSource
        Any source of :mod:`inceptionzoo.datasets` (``epoch(batch_size)`` yields batches).
    ctx : mxnet.Context
    batch_size : int, default 500

    Returns
    -------
    float
    """
    correct = total = 0
    for b in source.epoch(batch_size):
        if not b.data.shape[0]:
            continue
        out = net(b.data.as_in_context(ctx))
        out = out[0] if isinstance(out, (tuple, list)) else out
        correct += int((out.argmax(axis=1) == b.label.as_in_context(ctx)).sum().asscalar())
        total += b.data.shape[0]
    return correct / total


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


def _finite_params(net):
    return all(np.isfinite(p.list_data()[0].asnumpy()).all()
               for p in net.collect_params().values())


def _diverged(what, step):
    return DivergedError(f"training diverged in step {step}: {what}")


class _Progress:
    """The running loss of an epoch, read from the device every 50 steps and, with a tqdm
    bar, at least every second (for the bar's loss and speed)."""

    def __init__(self, batches, desc, total, ctx):
        self.bar = None
        if desc is not None:
            from tqdm import tqdm  # noqa: PLC0415 (optional: only with a progress bar)

            self.bar = batches = tqdm(batches, total=total, desc=desc, unit="batch", leave=True)
        self.batches, self.loss, self.seen, self.images = batches, mx.nd.zeros((1,), ctx=ctx), 0, 0
        self.t0 = self.shown = time.perf_counter()

    def due(self, step):
        return step % 50 == 0 or (self.bar is not None and
                                  time.perf_counter() - self.shown >= 1.0)

    def show(self):
        """The loss so far (synchronises with the device)."""
        self.shown = time.perf_counter()
        value = float(self.loss.asscalar())
        if self.bar is not None and math.isfinite(value):
            self.bar.set_postfix(loss=f"{value / max(self.seen, 1):.4f}",
                                 img_s=f"{self.images / (self.shown - self.t0):.0f}")
        return value


def train_one_epoch(net, trainer, batches, ctxs, loss_fn=None, *, step_size=None,
                    progress=None, total=None, diverged=_diverged):
    """One pass over ``batches``: each batch split over ``ctxs``, forward, backward and
    ``trainer.step``. Auxiliary outputs (a tuple) add 0.3 of their loss.

    Parameters
    ----------
    net : mxnet.gluon.Block
    trainer : mxnet.gluon.Trainer
    batches : iterable of inceptionzoo.datasets.Batch
        This worker's share of the epoch (``source.epoch(batch_size, rng, rank, workers)``).
    ctxs : list of mxnet.Context
    loss_fn : mxnet.gluon.loss.Loss, optional
        Default softmax cross-entropy.
    step_size : int, optional
        What ``trainer.step`` divides the gradient by (default: each batch's ``global_size``,
        the images of all workers).
    progress : str, optional
        The description of a tqdm bar (default: no bar).
    total : int, optional
        The epoch's number of steps (the bar's length, and the step a divergence found at the
        end of the epoch names).
    diverged : callable, optional
        ``diverged(what, step)`` -> the exception raised when the loss or the parameters stop
        being finite (default a :class:`~inceptionzoo.errors.DivergedError` naming both).

    Returns
    -------
    EpochStats
    """
    loss_fn = loss_fn or mx.gluon.loss.SoftmaxCrossEntropyLoss()
    p = _Progress(batches, progress, total, ctxs[0])
    shape, step = tuple(net.info.input_shape), 0
    for step, batch in enumerate(p.batches):
        parts = _parts(batch, ctxs, shape)
        with mx.autograd.record():
            losses = [_loss(loss_fn, net(a), b, w) for a, b, w in parts]
        for loss in losses:
            loss.backward()
        trainer.step(step_size or batch.global_size)
        for loss in losses:  # stays on the device: no synchronisation per step
            p.loss += loss.sum().as_in_context(ctxs[0])
        p.seen += batch.data.shape[0]
        p.images += batch.global_size
        if p.due(step):
            value = p.show()
            if not math.isfinite(value):
                raise diverged(f"the training loss is {value}", step + 1)
    mx.nd.waitall()
    seconds = time.perf_counter() - p.t0
    loss = float(p.loss.asscalar()) / max(p.seen, 1)
    if not math.isfinite(loss):
        raise diverged(f"the training loss is {loss}", total or step + 1)
    if not _finite_params(net):
        raise diverged("the parameters are no longer finite", total or step + 1)
    return EpochStats(loss, seconds, p.images)
