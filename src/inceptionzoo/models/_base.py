"""What every network of the zoo shares: input shape and dtype checks that run in Python,
before MXNet's C++ layer sees the array, in imperative and in hybridized mode alike; and one
model API (timm's ``forward_features`` / ``forward_head`` / ``reset_classifier`` /
``feature_info`` / ``features_only``): :meth:`ZooNet.features`, :meth:`ZooNet.head`,
:meth:`ZooNet.classifier_names`, :meth:`ZooNet.reset_classifier`, :attr:`ZooNet.feature_info`
and :class:`FeatureNet`."""
import dataclasses
import math

import mxnet as mx
import numpy as np
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..errors import InceptionZooError

__all__ = ["ZooNet", "FeatureNet"]


class ZooNet(HybridBlock):
    """Base class of the registered networks.

    Subclasses set ``in_channels`` and ``default_hw`` (the design input size); which input
    sizes the network takes is found from its own layers (:meth:`check_input_shape`).
    """

    in_channels = 1
    default_hw = (28, 28)
    #: attribute paths of the classifier's dense layers (``'output'``, ``'aux1.fc2'`` ...);
    #: those the network does not have are skipped
    classifier_paths = ("output",)

    # --- the model API ------------------------------------------------------------------------

    def feature_layers(self):
        """The layers before the head, in order, as ``(module name, block)`` pairs: applied
        one after the other they compute :meth:`features`.

        Returns
        -------
        list of (str, mxnet.gluon.HybridBlock)
        """
        raise NotImplementedError(f"{type(self).__name__} does not list its feature layers")

    def features(self, x):
        """The last feature map (everything before the head).

        Parameters
        ----------
        x : NDArray or Symbol
            The input batch.

        Returns
        -------
        NDArray or Symbol
            ``N x C x h x w``.
        """
        for _, layer in self.feature_layers():
            x = layer(x)
        return x

    def head(self, x):
        """The classifier on the last feature map (pooling, dropout, dense).

        Parameters
        ----------
        x : NDArray or Symbol
            The output of :meth:`features`.

        Returns
        -------
        NDArray or Symbol
            ``N x classes`` logits.
        """
        raise NotImplementedError(f"{type(self).__name__} has no head")

    def _classifiers(self):
        """``(path, parent block, attribute name, Dense)`` of each classifier layer present."""
        found = []
        for path in self.classifier_paths:
            parent, *rest = [self] + path.split(".")
            for part in rest[:-1]:
                parent = getattr(parent, part, None)
            dense = getattr(parent, rest[-1], None) if parent is not None else None
            if isinstance(dense, nn.Dense):
                found.append((path, parent, rest[-1], dense))
        return found

    def classifier_names(self):
        """Structural names (as in a ``.params`` file: ``output.weight``, ``fc.bias``,
        ``aux1.fc2.weight`` ...) of the parameters of the classifier(s), auxiliary heads'
        included: what fine-tuning replaces and what ``freeze_features`` leaves trainable.

        Returns
        -------
        list of str
        """
        return [f"{path}.{p}" for path, _, _, _ in self._classifiers() for p in ("weight", "bias")]

    def reset_classifier(self, classes, init=None):
        """Replace the classifier(s) by new ones with ``classes`` outputs (timm's
        ``reset_classifier``). Parameter names stay the same; a new layer is initialised (with
        ``init``, default Xavier) on the contexts of the one it replaces, if that one was;
        ``net.info`` is updated (classes, parameter count, class names dropped).

        Parameters
        ----------
        classes : int
            Output classes, >= 1.
        init : mxnet.init.Initializer, optional
            Initialiser of the new layers.
        """
        if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
            raise InceptionZooError(f"classes must be an integer >= 1; got {classes!r}")
        for _, parent, attr, old in self._classifiers():
            new = nn.Dense(classes, in_units=old._in_units, prefix=old.prefix)
            new.cast(old.weight.dtype)
            if old.weight._data is not None:
                new.initialize(init or mx.init.Xavier(rnd_type="gaussian", factor_type="in",
                                                      magnitude=2),
                               ctx=old.weight.list_ctx())
            setattr(parent, attr, new)
        self.classes = classes
        self._clear_cached_op()
        info = getattr(self, "info", None)
        if info is not None and info.classes != classes:
            from .._registry import _built_info

            self.info = dataclasses.replace(_built_info(info, self, {"classes": classes}),
                                            pretrained=info.pretrained)

    @property
    def feature_info(self):
        """One dict per stage (the last layer at each reduction of the input size):
        ``channels``, ``reduction`` (the stride, a power of 2, relative to the input) and
        ``module`` (the layer's name in :meth:`feature_layers`), from the shapes MXNet infers
        at the design input size.

        Returns
        -------
        list of dict
        """
        h0 = self.default_hw[0]
        x = mx.sym.var("data")
        outs = []
        for name, layer in self.feature_layers():
            x = layer(x)
            outs.append((name, x))
        _, shapes, _ = mx.sym.Group([o for _, o in outs]).infer_shape(
            data=(1, self.in_channels) + tuple(self.default_hw))
        stages = {}
        for (name, _), shape in zip(outs, shapes):
            reduction = 2 ** max(0, round(math.log2(h0 / shape[2])))
            stages[reduction] = {"channels": int(shape[1]), "reduction": reduction,
                                 "module": name}
        return [stages[r] for r in sorted(stages)]

    def _traced(self):
        """The whole network (auxiliary heads included) as one symbol, traced once."""
        graph = self.__dict__.get("_graph")
        if graph is None:
            out = self(mx.sym.var("data"))
            graph = mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out
            self._graph, self._taken = graph, {}
        return graph

    def _takes(self, h, w):
        """Whether an ``h x w`` input goes through every layer and every head: MXNet's own
        shape inference of the network (cached per size), so no table of the layers that
        change the size is kept by hand."""
        graph = self._traced()
        if (h, w) not in self._taken:
            try:  # the partial form neither prints nor warns; an unknown (0) size fails
                _, outs, _ = graph.infer_shape_partial(data=(1, self.in_channels, h, w))
                ok = all(d >= 1 for o in outs for d in o)
            except mx.base.MXNetError:
                ok = False
            self._taken[(h, w)] = ok
        return self._taken[(h, w)]

    def _fits(self, size, axis):
        hw = list(self.default_hw)
        hw[axis] = size
        return self._takes(*hw)

    def taken_sizes(self, axis):
        """The input sizes the network takes along one spatial axis (the other at its design
        size), up to 4x the design size. Each layer's output grows with its input, so they
        are one interval around the design size: two binary searches find its ends.

        Parameters
        ----------
        axis : int
            0 for the height, 1 for the width.

        Returns
        -------
        tuple of int or None
            ``(smallest, largest)``; ``largest`` is 4x the design size when there is no upper
            bound below it. None when even the design size does not fit.
        """
        design, top = self.default_hw[axis], 4 * self.default_hw[axis]
        if not self._fits(design, axis):
            return None
        lo, hi = 1, design  # smallest size taken: in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self._fits(mid, axis) else (mid + 1, hi)
        first, lo, hi = lo, design, top  # largest size taken: in [lo, hi]
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if self._fits(mid, axis) else (lo, mid - 1)
        return first, lo

    def _accepted(self, axis):
        """Human-readable range of input sizes the network takes along one spatial axis."""
        taken = self.taken_sizes(axis)
        if taken is None:
            return "none"
        first, last = taken
        if last == 4 * self.default_hw[axis]:
            return f">= {first}"
        return str(first) if first == last else f"{first}..{last}"

    def check_input_shape(self, shape):
        """Raise ``InceptionZooError`` naming the expected and the given shape if ``shape`` cannot
        go through the network."""
        shape = tuple(shape)
        h0, w0 = self.default_hw
        expected = f"(N, {self.in_channels}, {h0}, {w0})"
        who = self.name
        if len(shape) != 4:
            raise InceptionZooError(f"{who} expects a 4-d input (N, C, H, W) = {expected}; "
                                    f"got a {len(shape)}-d input of shape {shape}")
        n, c, h, w = shape
        if n < 1:
            raise InceptionZooError(f"{who} expects a non-empty batch of shape {expected}; "
                                    f"got shape {shape}")
        if c != self.in_channels:
            raise InceptionZooError(f"{who} expects {self.in_channels} input channel(s), shape "
                                    f"{expected}; got {c} channels in shape {shape}")
        if not (self._fits(h, 0) and self._fits(w, 1)):
            raise InceptionZooError(
                f"{who} cannot take a {h}x{w} input: expected shape {expected} (H in "
                f"{self._accepted(0)}, W in {self._accepted(1)}); got shape {shape}")

    def check_input_dtype(self, dtype):
        """Raise ``InceptionZooError`` naming the expected and the given dtype if ``dtype`` is not
        the dtype of the network's parameters (float32 unless :meth:`cast`)."""
        want = np.dtype(getattr(self, "_input_dtype", "float32"))
        if np.dtype(dtype) != want:
            raise InceptionZooError(f"{self.name} expects {want.name} input (the dtype of its "
                                    f"parameters); got {np.dtype(dtype).name}: convert it with "
                                    f"x.astype('{want.name}'), and scale raw 0..255 images with "
                                    "inceptionzoo.mnist.to_input")

    def cast(self, dtype):
        """Cast the parameters (see ``HybridBlock.cast``); inputs must then have that dtype."""
        super().cast(dtype)
        self._input_dtype = np.dtype(dtype).name

    def forward(self, x, *args):
        if isinstance(x, mx.nd.NDArray):
            self.check_input_shape(x.shape)
            self.check_input_dtype(x.dtype)
        return super().forward(x, *args)


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
        try:
            picked = sorted({int(i) % n if -n <= int(i) < n else None for i in out_indices})
        except (TypeError, ValueError):
            raise InceptionZooError(f"out_indices must be integers in [-{n}, {n - 1}]; got "
                                    f"{out_indices!r}") from None
        if not picked or None in picked:
            raise InceptionZooError(
                f"out_indices must be integers in [-{n}, {n - 1}] ({n} stages of "
                f"{net.name}: {[s['module'] for s in stages]}); got "
                f"{list(out_indices)!r}")
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
        return [dict(s) for s in self._feature_info]

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
