"""Evaluation: the validation accuracy of a model with a parameter file or its weights by tag,
on the data :mod:`inceptionzoo.datasets` reads (``inceptionzoo evaluate``)."""
import os
import time

from ._builder import resolve_weights
from ._checks import check_count
from ._context import parse_ctx
from ._registry import get_model
from .datasets import RecordSource, open_sources
from .errors import DataError, InceptionZooError
from .training import validate

__all__ = ["evaluate"]


def _check_data_classes(src, outputs, what):
    """Refuse data whose labels the network cannot output, or (image folders and MNIST, whose
    class count is exact) data with another number of classes than the network's outputs.
    RecordIO knows only its largest label, so fewer classes pass there."""
    n = src.num_classes
    if n > outputs or (n != outputs and not isinstance(src, RecordSource)):
        raise DataError(f"{src.path}: the {what} has {n} classes; the network outputs "
                        f"{outputs}: expected data with {outputs} classes (the data the "
                        "network was trained on)")


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
        As for :func:`~inceptionzoo.train.train`: MNIST (its test split), or a folder with
        ``val/`` or ``val.rec``.
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
                          workers=data_workers, train=False)
    _check_data_classes(val, net.info.classes, "validation data")
    net.hybridize(static_alloc=True, static_shape=True)
    t0 = time.perf_counter()
    acc = validate(net, val, c, batch_size=batch_size)
    return {"model": net.info.name, "accuracy": acc, "num_samples": len(val),
            "correct": int(round(acc * len(val))), "params": os.path.abspath(path),
            "seconds": round(time.perf_counter() - t0, 3)}
