"""Checkpoint filters (one job: how the tensor names of one source network's checkpoint map onto
a zoo network).

Each family file declares its filters next to the network they feed and its
:class:`~inceptionzoo.weights_spec.WeightsSpec` declarations, through
``register_model(..., sources={'SOURCE:NAME': Source(...)})``; :mod:`inceptionzoo.convert` finds
them in the registry and applies them. The filters are data (regular expressions), as timm's
``checkpoint_filter_fn`` and torchvision's ``_utils`` key maps are code.

Name mapping of the torch sources: the family's renames (in order), then lower case, ``.`` ->
``_``, BN ``weight``/``bias`` -> ``gamma``/``beta``, and the zoo model's prefix. gluoncv's files
name parameters by position, so only ``drop`` and ``aux_prefix`` apply to them.

The way back (:mod:`inceptionzoo.convert_back`) uses the same filters: :meth:`Source.source_names`
inverts :meth:`Source.zoo_name` over the source network's own state-dict keys.
"""
import dataclasses
import re
from typing import Optional, Tuple

from .errors import ConversionError

__all__ = ["Source", "BN_COUNTER"]

#: torch's batch-norm step counter: no zoo parameter (inference does not use it); left out when
#: converting, written as 0 on the way back (what torch gives a new ``BatchNorm``)
BN_COUNTER = "num_batches_tracked"


@dataclasses.dataclass(frozen=True)
class Source:
    """How one source network's checkpoint maps onto a zoo network.

    Attributes
    ----------
    renames : tuple of (str, str)
        ``re.sub`` rules applied in order to each source name (torch sources).
    drop : str or None
        Regular expression of source tensors that have no place in the zoo network (heads
        the zoo network does not convert, aliases); matched names are left out.
    aux_prefix : str or None
        Start of the source names of the auxiliary head: left out, except when converting
        with ``aux_logits=True``.
    classifier : str
        Source name of the final dense layer's weight (gives the number of classes).
    model : str or None
        The zoo model it feeds: filled in by ``register_model`` (the model it is declared
        with).

    The preprocessing the source's weights need is the
    :class:`~inceptionzoo.weights_spec.WeightsSpec` the zoo model declares for the source.
    """

    renames: Tuple[Tuple[str, str], ...] = ()
    drop: Optional[str] = None
    aux_prefix: Optional[str] = None
    classifier: str = "fc.weight"
    model: Optional[str] = None

    def keeps(self, name, aux_logits=False):
        """Whether the source tensor ``name`` goes into the zoo network.

        Parameters
        ----------
        name : str
            The tensor's name in the checkpoint.
        aux_logits : bool, default False
            Whether the auxiliary head is converted too.

        Returns
        -------
        bool
        """
        if name.endswith(BN_COUNTER) or (self.drop and re.search(self.drop, name)):
            return False
        return aux_logits or not (self.aux_prefix and name.startswith(self.aux_prefix))

    def zoo_name(self, name, prefix):
        """The zoo parameter name of the torch tensor ``name``.

        Parameters
        ----------
        name : str
            The tensor's name in the checkpoint (``Mixed_5b.branch1x1.bn.weight``).
        prefix : str
            The zoo network's prefix (``inception_v3_``).

        Returns
        -------
        str
            E.g. ``inception_v3_mixed_5b_branch1x1_bn_gamma``.
        """
        for pattern, repl in self.renames:
            name = re.sub(pattern, repl, name)
        name = name.lower().replace(".", "_")
        name = re.sub(r"bn_weight$", "bn_gamma", re.sub(r"bn_bias$", "bn_beta", name))
        return prefix + name

    def source_names(self, keys, prefix, aux_logits=False):
        """The inverse of :meth:`zoo_name` over a source network's state-dict keys.

        Parameters
        ----------
        keys : iterable of str
            The source network's tensor names (``model.state_dict()``'s keys).
        prefix : str
            The zoo network's prefix.
        aux_logits : bool, default False
            Whether the auxiliary head is mapped too.

        Returns
        -------
        dict
            ``{zoo parameter name: source name}`` for every key this filter :meth:`keeps`, in
            the order of ``keys``.

        Raises
        ------
        ConversionError
            Two keys map onto one zoo name (the filter could not be inverted).
        """
        inverse = {}
        for key in keys:
            if self.keeps(key, aux_logits):
                zoo = self.zoo_name(key, prefix)
                if zoo in inverse:
                    raise ConversionError(f"the checkpoint filter of {self.model!r} maps both "
                                          f"{inverse[zoo]!r} and {key!r} onto {zoo!r}: it cannot "
                                          "be inverted")
                inverse[zoo] = key
        return inverse
