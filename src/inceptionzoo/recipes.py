"""Training recipes: the named hyper-parameter sets, their check, the learning-rate schedules
and the weight initialisations they name.

>>> from inceptionzoo.recipes import RECIPES
>>> RECIPES['seed'].optimizer, RECIPES['seed'].lr, RECIPES['seed'].batch_size
('sgd', 0.1, 100)
"""
import dataclasses

import mxnet as mx
import numpy as np

from ._checks import check_count, is_integer, is_number
from .errors import InceptionZooError

__all__ = ["Recipe", "RECIPES", "check_recipe", "recipe_with", "Schedule", "mxnet_schedule",
           "initializer"]


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

#: the fields of :class:`Recipe` a run may override one by one
OVERRIDES = ("epochs", "batch_size", "lr", "optimizer", "momentum", "wd", "schedule")


def recipe_with(recipe, **overrides):
    """The recipe named ``recipe`` (or the :class:`Recipe` itself) with the fields of
    ``overrides`` that are not None replaced, checked by :func:`check_recipe`.

    Parameters
    ----------
    recipe : str or Recipe
    **overrides
        Any of ``epochs``, ``batch_size``, ``lr``, ``optimizer``, ``momentum``, ``wd``,
        ``schedule``.

    Returns
    -------
    Recipe
    """
    if isinstance(recipe, str) and recipe not in RECIPES:
        raise InceptionZooError(f"unknown recipe {recipe!r}: expected one of {sorted(RECIPES)}")
    r = RECIPES[recipe] if isinstance(recipe, str) else recipe
    r = dataclasses.replace(r, **{k: v for k, v in overrides.items() if v is not None})
    check_recipe(r)
    return r


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

    check_count("epochs", r.epochs)
    check_count("batch size", r.batch_size)
    if not is_number(r.lr) or r.lr <= 0:
        bad("lr (learning rate)", "a finite number > 0", r.lr)
    if not is_number(r.wd) or r.wd < 0:
        bad("wd (weight decay)", "a finite number >= 0", r.wd)
    if not is_number(r.momentum) or not 0 <= r.momentum < 1:
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


class Schedule(mx.lr_scheduler.LRScheduler):
    """The recipe's learning rate per step: linear warm-up, then constant or a cosine decay
    to zero at ``total_steps``.

    Parameters
    ----------
    recipe : Recipe
    total_steps : int
    """

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


def mxnet_schedule(recipe, total_steps):
    """The recipe's schedule with MXNet's own scheduler classes (for ``dist_async``, whose
    servers cannot import this package): cosine after a linear warm-up, or constant.

    Parameters
    ----------
    recipe : Recipe
    total_steps : int
        Updates of all workers together.

    Returns
    -------
    mxnet.lr_scheduler.LRScheduler or None
    """
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


def initializer(name):
    """The MXNet initializer a recipe's ``init`` names.

    Parameters
    ----------
    name : str
        ``'normal0.1'`` or ``'xavier'``.

    Returns
    -------
    mxnet.initializer.Initializer
    """
    if name == "normal0.1":
        return mx.init.Normal(0.1)
    if name == "xavier":
        return mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)
    raise InceptionZooError(f"unknown init {name!r}: expected 'normal0.1' or 'xavier'")
