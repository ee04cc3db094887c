"""What every network of the zoo shares: input shape and dtype checks that run in Python,
before MXNet's C++ layer sees the array, in imperative and in hybridized mode alike; the checks
of the networks' options; and one model API under the zoo's names and timm's:
:meth:`ZooNet.features` (``forward_features``), :meth:`ZooNet.head` / :meth:`ZooNet.forward_head`,
:meth:`ZooNet.get_classifier`, :meth:`ZooNet.classifier_names`, :meth:`ZooNet.reset_classifier`,
:attr:`ZooNet.num_features` and :attr:`ZooNet.feature_info` (the feature extractor of
``features_only``: :class:`inceptionzoo._features.FeatureNet`). (Over 500 lines: one class, the
API every network has, whose methods share the network's layout; each method is short.)"""
import dataclasses
import gc
import math
import numbers

import mxnet as mx
import numpy as np
from mxnet.gluon import nn
from mxnet.gluon.block import Block, HybridBlock

from .._checks import check_count, is_integer
from ..errors import InceptionZooError

__all__ = ["ZooNet", "FeatureInfo", "classifier_layer", "adapt_input_conv",
           "FLAG", "RATE", "COUNT", "ODD_COUNT"]

#: option checks (``ZooNet.option_checks``): (test, what the option must be)
FLAG = (lambda v: isinstance(v, (bool, np.bool_)), "True or False")
RATE = (lambda v: isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
        and math.isfinite(v) and 0 <= v < 1, "a number in [0, 1)")
COUNT = (lambda v: is_integer(v) and v >= 1, "an integer >= 1")
ODD_COUNT = (lambda v: is_integer(v) and v >= 1 and v % 2 == 1, "an odd integer >= 1")


def classifier_layer(classes, in_units, prefix):
    """The classifier of a network: a dense layer with ``classes`` outputs or, for
    ``classes=0`` (timm's ``num_classes=0``), a ``Flatten``: the network then returns its
    pooled features, ``N x in_units``.

    Parameters
    ----------
    classes : int
        Output classes, >= 0.
    in_units : int
        Width of the pooled features.
    prefix : str
        The layer's prefix (its parameters' names).

    Returns
    -------
    mxnet.gluon.HybridBlock
    """
    if classes == 0:
        return nn.Flatten(prefix=prefix)
    return nn.Dense(classes, in_units=in_units, prefix=prefix)


def adapt_input_conv(weight, in_channels):
    """The first convolution's weights adapted to another number of input channels, by timm's
    rule (``timm.models._manipulate.adapt_input_conv``): for 1 channel the sum over the
    weights' channels; for more, the weights' channels repeated (cyclically, cut at
    ``in_channels``) and scaled by ``channels of the weights / in_channels``, so that an input
    whose channels are all equal gives the same activations.

    Parameters
    ----------
    weight : numpy.ndarray
        ``O x I x kh x kw``.
    in_channels : int
        The new input channels.

    Returns
    -------
    numpy.ndarray
        ``O x in_channels x kh x kw``, float32 sums, in the dtype of ``weight``.
    """
    o, i, kh, kw = weight.shape
    if in_channels == i:
        return weight
    w = weight.astype(np.float32)
    if in_channels == 1:
        out = w.sum(axis=1, keepdims=True)
    else:
        out = np.tile(w, (1, -(-in_channels // i), 1, 1))[:, :in_channels] * np.float32(
            i / in_channels)
    return out.astype(weight.dtype)


class FeatureInfo(list):
    """``feature_info``: a list of one dict per stage (``num_chs``, ``reduction``, ``module``
    as timm's, and ``channels``, the zoo's name of ``num_chs``) with timm's accessors.

    Examples
    --------
    >>> info = FeatureInfo([{'num_chs': 8, 'channels': 8, 'reduction': 2, 'module': 'a'}])
    >>> info.channels(), info.reduction(), info.module_name()
    ([8], [2], ['a'])
    """

    def _get(self, key, idx):
        if idx is None:
            return [stage[key] for stage in self]
        if isinstance(idx, (list, tuple)):
            return [self[i][key] for i in idx]
        return self[idx][key]

    def channels(self, idx=None):
        """The channels of every stage (or of stage ``idx``, or of a list of stages)."""
        return self._get("num_chs", idx)

    def reduction(self, idx=None):
        """The reduction of the input size at every stage (or at ``idx``)."""
        return self._get("reduction", idx)

    def module_name(self, idx=None):
        """The module name of every stage (or of ``idx``)."""
        return self._get("module", idx)


def _replace_child(parent, key, new):
    """Put block ``new`` in ``parent``'s place ``key`` (an attribute, or a ``HybridSequential``
    entry), also where the old one was of another class (a ``Dense`` and the ``Flatten`` of
    ``classes=0``, which Gluon's ``__setattr__`` refuses to swap)."""
    if key in parent.__dict__:
        object.__setattr__(parent, key, new)
    parent.register_child(new, key)


def _ancestors(block):
    """The blocks that hold ``block`` as a child, and theirs, found through the garbage
    collector (a Gluon block does not know its parents): a hybridized parent caches a graph
    of its children, which must be dropped when a child's layers are replaced."""
    def holders(obj, hops):
        # a parent refers to its ``_children`` dict directly, or through its ``__dict__``
        for ref in gc.get_referrers(obj):
            if isinstance(ref, Block):
                yield ref
            elif isinstance(ref, dict) and hops:
                yield from holders(ref, hops - 1)

    found, todo, seen = [], [block], {id(block)}
    while todo:
        child = todo.pop()
        for owner in holders(child, 2):
            if id(owner) not in seen and any(
                    c is child for c in owner.__dict__.get("_children", {}).values()):
                seen.add(id(owner))
                found.append(owner)
                todo.append(owner)
    return found


class ZooNet(HybridBlock):
    """Base class of the registered networks.

    Subclasses set ``in_channels`` and ``default_hw`` (the design input size); which input
    sizes the network takes is found from its own layers (:meth:`check_input_shape`).
    """

    in_channels = 1
    default_hw = (28, 28)
    #: attribute paths of the classifier's dense layers, the main one first (``'output'``,
    #: ``'aux1.fc2'`` ...); those the network does not have are skipped
    classifier_paths = ("output",)
    #: the checks of the constructor's options, ``{name: (test, what it must be)}``; a subclass
    #: adds its own (see :meth:`check_options`)
    option_checks = {"in_channels": COUNT}
    #: width of the pooled features the classifier takes (``forward_head(x, pre_logits=True)``)
    num_features = None

    @classmethod
    def check_options(cls, options):
        """Refuse an option of the wrong type or range with one error naming the option, what
        it must be and what was given; numpy integers are taken as ``int``.

        Parameters
        ----------
        options : dict
            Options for the constructor.

        Returns
        -------
        dict
            ``options``, numpy integers and bools made Python's.

        Raises
        ------
        InceptionZooError
        """
        checks = {}
        for klass in reversed(cls.__mro__):
            checks.update(getattr(klass, "option_checks", None) or {})
        out = dict(options)
        for key, value in options.items():
            if key not in checks:
                continue
            test, want = checks[key]
            if not test(value):
                raise InceptionZooError(f"{cls.__name__} option {key} must be {want}; got "
                                        f"{value!r} ({type(value).__name__})")
            if isinstance(value, (np.integer, np.bool_)):
                out[key] = value.item()
        if not out.get("classes", 1) and out.get("aux_logits"):
            raise InceptionZooError("classes=0 (pooled features, no classifier) cannot have "
                                    "auxiliary classifiers: build with aux_logits=False")
        return out

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

    def forward_features(self, x):
        """timm's name of :meth:`features`."""
        return self.features(x)

    def head_pool(self, x):
        """The head without its classifier: global pooling and dropout (the MNIST networks:
        none, their dense layer takes the whole 6x6 map).

        Parameters
        ----------
        x : NDArray or Symbol
            The output of :meth:`features`.

        Returns
        -------
        NDArray or Symbol
        """
        raise NotImplementedError(f"{type(self).__name__} has no head")

    def head(self, x):
        """The classifier on the last feature map (pooling, dropout, dense).

        Parameters
        ----------
        x : NDArray or Symbol
            The output of :meth:`features`.

        Returns
        -------
        NDArray or Symbol
            ``N x classes`` logits (``N x num_features`` pooled features when built with
            ``classes=0``).
        """
        return self.get_classifier()(self.head_pool(x))

    def forward_head(self, x, pre_logits=False):
        """timm's ``forward_head``: :meth:`head`, or with ``pre_logits=True`` the pooled
        features the classifier takes (``N x num_features``).

        Parameters
        ----------
        x : NDArray or Symbol
            The output of :meth:`features`.
        pre_logits : bool, default False

        Returns
        -------
        NDArray or Symbol
        """
        if pre_logits:
            return self.head_pool(x).flatten()
        return self.head(x)

    def get_classifier(self):
        """The main classifier layer (timm's ``get_classifier``): a ``Dense``, or the
        ``Flatten`` of a network built with ``classes=0``.

        Returns
        -------
        mxnet.gluon.HybridBlock
        """
        return self._classifier_slots()[0][3]

    def _classifier_slots(self):
        """``(path, parent block, attribute name, layer)`` of each classifier layer present
        (a ``Dense``, or the ``Flatten`` of ``classes=0``)."""
        found = []
        for path in self.classifier_paths:
            parent, *rest = [self] + path.split(".")
            for part in rest[:-1]:
                parent = getattr(parent, part, None)
            layer = getattr(parent, rest[-1], None) if parent is not None else None
            if layer is not None:
                found.append((path, parent, rest[-1], layer))
        return found

    def _classifiers(self):
        """``(path, parent block, attribute name, Dense)`` of each dense classifier layer."""
        return [slot for slot in self._classifier_slots() if isinstance(slot[3], nn.Dense)]

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
        ``reset_classifier``; ``classes=0``: no classifier, the network returns its pooled
        features). Parameter names stay the same; a new layer is initialised (with
        ``init``, default Xavier) on the contexts of the network's parameters, if they are;
        ``net.info`` is updated (classes, parameter count, class names dropped). The cached
        graphs of the network and of every hybridized block holding it are dropped.

        Parameters
        ----------
        classes : int
            Output classes, >= 0 (``num_classes`` is timm's name).
        init : mxnet.init.Initializer, optional
            Initialiser of the new layers.
        """
        classes = check_count("classes", classes, low=0)
        if classes == 0 and getattr(self, "aux_logits", False):
            raise InceptionZooError("classes=0 (pooled features, no classifier) cannot have "
                                    "auxiliary classifiers: build with aux_logits=False")
        first = next(iter(self.collect_params().values()))
        initialised = first._data is not None
        for _, parent, attr, old in self._classifier_slots():
            in_units = old._in_units if isinstance(old, nn.Dense) else self.num_features
            new = classifier_layer(classes, in_units, old.prefix)
            new.cast(first.dtype)
            if initialised and classes:
                new.initialize(init or mx.init.Xavier(rnd_type="gaussian", factor_type="in",
                                                      magnitude=2), ctx=first.list_ctx())
            _replace_child(parent, attr, new)
        self.classes = classes
        self._drop_cached_graphs()
        info = getattr(self, "info", None)
        if info is not None and info.classes != classes:
            self.info = dataclasses.replace(info.for_network(self, {"classes": classes}),
                                            pretrained=info.pretrained)

    def _drop_cached_graphs(self):
        """Forget every graph built from the network's old layers: its own, its input-size
        cache, and those of the hybridized blocks holding it."""
        self._clear_cached_op()
        self.__dict__.pop("_graph", None)
        if not self._active:  # hybridize() reaches every child: no hybridized block holds this
            return            # one (get_model's classes / in_chans: skip the collector's walk)
        for parent in _ancestors(self):
            if isinstance(parent, HybridBlock):
                parent._clear_cached_op()

    def _first_conv(self):
        """``(parent block, child name, Conv2D)`` of the network's first convolution."""
        parent, (key, block) = self, self.feature_layers()[0]
        while not isinstance(block, nn.Conv2D):
            parent, (key, block) = block, next(iter(block._children.items()))
        return parent, key, block

    def adapt_input_channels(self, in_channels):
        """Make the network take ``in_channels`` input channels, its first convolution's
        weights adapted as timm adapts pretrained weights (:func:`adapt_input_conv`); what
        ``get_model(NAME, pretrained=..., in_chans=N)`` does after loading the weights.

        Parameters
        ----------
        in_channels : int
            Input channels, >= 1.
        """
        in_channels = check_count("in_channels", in_channels)
        parent, key, old = self._first_conv()
        kw = old._kwargs
        new = nn.Conv2D(old._channels, kw["kernel"], kw["stride"], kw["pad"], kw["dilate"],
                        kw["num_group"], kw["layout"],
                        activation=old.act._act_type if old.act is not None else None,
                        use_bias=old.bias is not None, in_channels=in_channels,
                        prefix=old.prefix)
        new.cast(old.weight.dtype)
        if old.weight._data is not None:
            ctx = old.weight.list_ctx()
            new.initialize(ctx=ctx)
            new.weight.set_data(mx.nd.array(adapt_input_conv(old.weight.data().asnumpy(),
                                                             in_channels),
                                            dtype=old.weight.dtype))
            if old.bias is not None:
                new.bias.set_data(old.bias.data())
        _replace_child(parent, key, new)
        self.in_channels = in_channels
        self._drop_cached_graphs()
        info = getattr(self, "info", None)
        if info is not None:
            self.info = dataclasses.replace(
                info.for_network(self, {"in_channels": in_channels}),
                pretrained=info.pretrained, class_names=info.class_names)

    @property
    def feature_info(self):
        """One dict per stage (the last layer at each reduction of the input size):
        ``num_chs`` (timm's name) and ``channels``, ``reduction`` (the stride, a power of 2,
        relative to the input) and ``module`` (the layer's name in :meth:`feature_layers`),
        from the shapes MXNet infers at the design input size; ``feature_info.channels()`` and
        ``.reduction()`` list them (:class:`FeatureInfo`).

        Returns
        -------
        FeatureInfo
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
            stages[reduction] = {"num_chs": int(shape[1]), "channels": int(shape[1]),
                                 "reduction": reduction, "module": name}
        return FeatureInfo(stages[r] for r in sorted(stages))

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
