"""``get_model``, timm's ``create_model``: the registry's lookup (:mod:`inceptionzoo._registry`),
the build with weights (the factory, through :mod:`inceptionzoo._builder`), the built network's
info and, with ``features_only``, its feature extractor (:mod:`inceptionzoo._features`).

The creation stack imports one way: ``_registry`` (data) <- ``_builder`` (networks with
weights) <- the model families <- ``_features`` <- ``_factory``.
"""
from ._builder import with_weights
from ._features import as_features
from ._registry import model_entrypoint, model_info, split_tag
from .errors import InceptionZooError

__all__ = ["get_model"]


def get_model(name: str, features_only: bool = False, out_indices=None, **kwargs):
    """Build a registered model.

    Parameters
    ----------
    name : str
        Registry name, case-insensitive (see :func:`list_models`), optionally with a weights
        tag, timm style: ``'inception_v3.timm_in1k'`` makes ``pretrained=True`` mean that tag.
    features_only : bool, default False
        Return a feature extractor instead
        (:class:`~inceptionzoo._features.FeatureNet`): the feature maps of the stages
        ``out_indices`` select from ``net.feature_info``, as a tuple.
    out_indices : sequence of int, optional
        With ``features_only``: indices into ``feature_info`` (default: every stage).
    **kwargs
        Passed to the model's factory: ``classes``, ``pretrained`` (``True``: the model's
        default weights tag; a tag such as ``'tv_in1k'``; a path: a converted file, training
        checkpoint or plain Gluon ``.params`` file; ``False``: none; see
        :func:`inceptionzoo._builder.resolve_weights`), ``root``, ``ctx`` and the model's own
        options; timm's ``num_classes`` (0: pooled features) and ``in_chans`` are taken for
        ``classes`` and ``in_channels``. An unknown or wrong-typed option is one
        ``InceptionZooError``.

    Returns
    -------
    mxnet.gluon.HybridBlock
        The network, with its :class:`ModelInfo` attached as ``net.info``. When options change
        the network (``classes``, ``in_channels``, ``batch_norm``, ``aux_logits`` ...),
        ``input_shape``, ``classes``, ``num_params`` and ``macs`` are those of the network
        actually built; when weights were loaded, the preprocessing, class names and
        ``pretrained`` are those of the weights' spec.
    """
    if out_indices is not None and not features_only:
        raise InceptionZooError("out_indices selects feature maps: it needs features_only=True")
    name, tag = split_tag(name)
    if tag is not None:
        p = kwargs.get("pretrained", False)
        if p is True:
            kwargs["pretrained"] = tag
        elif p not in (False, None, tag):
            raise InceptionZooError(f"get_model({name + '.' + tag!r}, pretrained={p!r}): the "
                                    "name names the weights already; give pretrained=True")
    net = model_entrypoint(name)(**kwargs)
    net.info = model_info(name).for_network(net, kwargs)
    spec = getattr(net, "weights", None)
    if spec is not None:
        net.info = with_weights(net.info, spec, net.classes)
    return as_features(net, out_indices) if features_only else net
