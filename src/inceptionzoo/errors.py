"""The exceptions inceptionzoo raises when it refuses an input: one base class, one subclass per
kind of refusal.

Every class derives from :class:`InceptionZooError`, itself a ``ValueError``, so that a caller
catches anything the library refuses in one clause::

    try:
        net = inceptionzoo.get_model(name, pretrained=path)
    except inceptionzoo.InceptionZooError as err:
        print(err)

(``mms_handler.BadRequest`` is not here: the handler is copied into a ``.mar`` archive and runs
in MXNet Model Server without inceptionzoo installed.)
"""

__all__ = [
    "InceptionZooError",
    "WrongTypeError",
    "UnknownModelError",
    "WeightsError",
    "ConversionError",
    "DataError",
    "PredictionError",
    "DivergedError",
    "AccuracyGuardError",
]


class InceptionZooError(ValueError):
    """Base class of every refusal of the library: an argument, file or request it cannot take.
    Raised as such for refusals that no subclass below names."""


class WrongTypeError(InceptionZooError, TypeError):
    """An argument of the wrong type (a model name that is not a ``str``, an export of something
    that is not a ``HybridBlock``); also a ``TypeError``."""


class UnknownModelError(InceptionZooError):
    """Raised for a model name that is not registered."""


class WeightsError(InceptionZooError):
    """A weight file is missing, corrupt, or does not fit the requested model."""


class ConversionError(InceptionZooError):
    """A checkpoint cannot be converted: unknown source, unreadable file, or tensors that do
    not fit the zoo network."""


class DataError(InceptionZooError):
    """A data file is missing, truncated or not what it claims to be."""


class PredictionError(InceptionZooError):
    """Bad input to the predictor, or an export it cannot load."""


class DivergedError(InceptionZooError):
    """The loss or the parameters became NaN or infinite during training."""


class AccuracyGuardError(InceptionZooError):
    """A lower-precision export lost more top-1 accuracy against its float32 twin than allowed
    (:func:`inceptionzoo.accuracy_guard.lower_precision`); nothing was written."""
