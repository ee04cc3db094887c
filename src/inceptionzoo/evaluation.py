"""Evaluation: the validation accuracy of a model with a parameter file or its weights by tag,
on the data :mod:`inceptionzoo.datasets` reads (``inceptionzoo evaluate``)."""
import os
import time

from ._builder import resolve_weights
from ._checks import check_count
from ._context import parse_ctx
from ._factory import get_model
from .datasets import RecordSource, open_sources
from .errors import DataError, InceptionZooError
from .options import EvaluateOptions, keyword_form
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


@keyword_form(EvaluateOptions)
def evaluate(options):
    """Validation accuracy of a model with a parameter file or its weights by tag.

    ``evaluate(EvaluateOptions(model='googlenet', pretrained=True))``; as a shorthand, the
    record's fields as keywords and the model name first: ``evaluate('googlenet',
    pretrained=True)``.

    Parameters
    ----------
    options : EvaluateOptions or str, optional
        The evaluation's options (see :class:`~inceptionzoo.options.EvaluateOptions`), or the
        model name. ``params`` is a ``.params`` file (converted or a training checkpoint: its
        sidecar's preprocessing and classes are used; shipped; or a plain Gluon file: the
        network's default transform), or ``pretrained`` ``True`` / a tag, as for
        :func:`~inceptionzoo.get_model`: exactly one of them. ``data_dir`` as for
        :func:`~inceptionzoo.train.train` (MNIST's test split, or a folder with ``val/`` or
        ``val.rec``) or ``val_data`` (an image folder, ``.rec`` or MNIST folder).
    {fields} : optional
        Keyword shorthand: fields of :class:`~inceptionzoo.options.EvaluateOptions` that
        replace the record's.

    Returns
    -------
    dict
        ``{'model', 'accuracy', 'num_samples', 'correct', 'params', 'seconds'}``.
    """
    o = options
    if (o.params is None) == (not o.pretrained):
        raise InceptionZooError("give exactly one of a params file or pretrained (True or a "
                                "tag)")
    batch_size = check_count("batch size", o.batch_size)
    classes = None if o.classes is None else check_count("classes", o.classes)
    c = parse_ctx(o.ctx)[0]
    w = resolve_weights(o.model, o.pretrained if o.params is None else o.params, o.root)
    if classes not in (None, w.spec.classes):
        raise InceptionZooError(f"{w.path} holds weights of {w.spec.classes} classes; got "
                                f"classes={classes}: a new classifier would be untrained")
    path = w.path
    net = get_model(o.model, pretrained=w, ctx=c)
    del w  # its arrays are in the network now
    _, val = open_sources(net.info, o.data_dir if o.val_data is None else None,
                          val_data=o.val_data, threads=o.data_threads, train=False)
    _check_data_classes(val, net.info.classes, "validation data")
    net.hybridize(static_alloc=True, static_shape=True)
    t0 = time.perf_counter()
    acc = validate(net, val, c, batch_size=batch_size)
    return {"model": net.info.name, "accuracy": acc, "num_samples": len(val),
            "correct": int(round(acc * len(val))), "params": os.path.abspath(path),
            "seconds": round(time.perf_counter() - t0, 3)}
