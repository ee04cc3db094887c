"""Feature extraction (``get_model(NAME, features_only=True, out_indices=...)``), as timm's
``_features.py``: :class:`FeatureNet` wraps a built network and returns the maps of the stages
of its ``feature_info`` that ``out_indices`` selects (described by
:class:`~inceptionzoo.models._base.FeatureInfo`)."""
from ._checks import is_integer
from .errors import InceptionZooError
from .models._base import FeatureInfo, ZooNet

__all__ = ["FeatureNet", "as_features"]


def as_features(net, out_indices=None):
    """The feature-extractor form of a built network (``get_model(..., features_only=True)``).

    Parameters
    ----------
    net : ZooNet
        A built network.
    out_indices : sequence of int, optional
        Stages to return (indices into ``net.feature_info``); default all.

    Returns
    -------
    FeatureNet
    """
    return FeatureNet(net, out_indices)


class FeatureNet(ZooNet):
    """A network's feature extractor (``get_model(NAME, features_only=True, out_indices=...)``):
    returns the maps of the selected stages of ``net.feature_info`` as a tuple, and stops after
    the last one. It hybridizes and exports like any network (one output per stage).

    Parameters
    ----------
    net : ZooNet
        The built network (its weights are shared, not copied).
    out_indices : sequence of int, optional
        Indices into ``net.feature_info`` (negative ones count from the end); default all.
    """

    def __init__(self, net, out_indices=None):
        super().__init__(prefix=net.prefix)
        stages = net.feature_info
        n = len(stages)
        if out_indices is None:
            out_indices = range(n)
        if not isinstance(out_indices, (list, tuple, range)) or not out_indices \
                or not all(is_integer(i) and -n <= i < n for i in out_indices):
            raise InceptionZooError(
                f"out_indices must be a list or tuple of integers in [-{n}, {n - 1}] ({n} "
                f"stages of {net.name}: {[s['module'] for s in stages]}); got "
                f"{out_indices!r}")
        picked = sorted({int(i) % n for i in out_indices})
        self.out_indices = tuple(picked)
        self._feature_info = [stages[i] for i in picked]
        self.in_channels, self.default_hw = net.in_channels, net.default_hw
        self.info = getattr(net, "info", None)
        self.weights = getattr(net, "weights", None)
        # the network's input checks; the network is not a child: its head is no part of this
        self._checks = (net.check_input_shape, net.check_input_dtype)
        self._wanted = {stages[i]["module"] for i in picked}
        layers = net.feature_layers()
        last = max(i for i, (name, _) in enumerate(layers) if name in self._wanted)
        self._layers = layers[:last + 1]  # nothing after the last map asked for
        for name, layer in self._layers:
            self.register_child(layer, name)

    @property
    def feature_info(self):
        """The selected stages of the wrapped network's ``feature_info``, in order."""
        return FeatureInfo(dict(s) for s in self._feature_info)

    def _no_head(self, what):
        raise InceptionZooError(f"{what}: a feature extractor (features_only=True) has no "
                                "classifier; build the network without features_only")

    def reset_classifier(self, classes, init=None):
        """Refused: a feature extractor has no classifier."""
        self._no_head("reset_classifier")

    def get_classifier(self):
        """Refused: a feature extractor has no classifier."""
        self._no_head("get_classifier")

    def head_pool(self, x):
        """Refused: a feature extractor has no head."""
        self._no_head("forward_head")

    def check_input_shape(self, shape):
        """The wrapped network's input check (see :meth:`ZooNet.check_input_shape`)."""
        self._checks[0](shape)

    def check_input_dtype(self, dtype):
        """The wrapped network's dtype check (see :meth:`ZooNet.check_input_dtype`)."""
        self._checks[1](dtype)

    def feature_layers(self):
        """The wrapped network's feature layers up to the last selected stage."""
        return list(self._layers)

    def hybrid_forward(self, F, x):
        maps = []
        for name, layer in self._layers:
            x = layer(x)
            if name in self._wanted:
                maps.append(x)
        return tuple(maps)
