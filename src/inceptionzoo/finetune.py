"""Fine-tuning from pretrained weights: a new classifier with the recipe's initialisation,
a frozen backbone, and the spec of the checkpoints a fine-tuning run writes."""
import dataclasses

import mxnet as mx

from . import __version__
from .recipes import initializer

__all__ = ["new_classifier", "freeze_features", "checkpoint_spec"]


def new_classifier(net, init, ctxs):
    """Initialise the classifier of ``net`` (loaded weights of another class count) with the
    recipe's ``init``, as when training from scratch.

    Parameters
    ----------
    net : inceptionzoo.models._base.ZooNet
    init : str
        A recipe's ``init`` (``'normal0.1'`` or ``'xavier'``).
    ctxs : list of mxnet.Context

    Returns
    -------
    list of str
        The classifier's parameter names.
    """
    head = net.classifier_names()
    params = net._collect_params_with_prefix()
    for name in head:
        params[name].initialize(default_init=initializer(init), ctx=ctxs, force_reinit=True)
    return head


def freeze_features(net):
    """Make every parameter but the classifier's fixed: no gradient, and batch norm layers
    normalise with their loaded statistics instead of updating them (timm's frozen BN), so
    that the backbone stays bit-identical.

    Parameters
    ----------
    net : inceptionzoo.models._base.ZooNet
    """
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


def checkpoint_spec(spec, classes, class_names, new_head, recipe, seed):
    """The spec of a fine-tuning run's checkpoints: the starting weights' preprocessing,
    fine-tuned on data of ``classes`` (``class_names``, the data's, when the classifier is new),
    with the recipe and seed that trained them.

    Parameters
    ----------
    spec : inceptionzoo.weights_spec.WeightsSpec
        The starting weights' spec.
    classes : int
    class_names : tuple of str
        The data's classes.
    new_head : list of str
        The new classifier's parameter names (empty: the weights' classifier was kept).
    recipe : inceptionzoo.recipes.Recipe
    seed : int

    Returns
    -------
    inceptionzoo.weights_spec.WeightsSpec
    """
    names = class_names if len(class_names) == classes else None
    return dataclasses.replace(
        spec, classes=classes, class_names=names if new_head else spec.class_names,
        source="inceptionzoo train", tag=None, checkpoint=spec.file, checkpoint_sha1=spec.sha1,
        command=None, recipe=dataclasses.asdict(recipe), seed=seed,
        inceptionzoo_version=__version__)
