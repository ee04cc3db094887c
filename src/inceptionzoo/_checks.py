"""The one check of a count ("an integer >= 1") for every argument of the library that is one:
classes, batch sizes, epochs, workers, threads, ``top_k``, channels ...

Python and numpy integers are taken (``np.int64(3)`` is 3); ``True`` / ``False`` are refused
(a bool is an ``int`` to Python, but never a count a user meant), and so are floats, even whole
ones, and strings: nothing is coerced. (``imaging.py`` keeps its own copy of the rule: it is
copied into a ``.mar`` archive and runs without inceptionzoo.)
"""
import math
import numbers
import reprlib

from .errors import InceptionZooError

__all__ = ["is_integer", "is_number", "check_count", "check_counts", "brief"]


def is_integer(value):
    """Whether ``value`` is an integer (Python or numpy), not a bool.

    Parameters
    ----------
    value : object

    Returns
    -------
    bool
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    """Whether ``value`` is a finite real number (Python or numpy), not a bool.

    Parameters
    ----------
    value : object

    Returns
    -------
    bool

    Examples
    --------
    >>> [is_number(v) for v in (0.5, 3, float("nan"), True, "1")]
    [True, True, False, False, False]
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        math.isfinite(value)


def check_count(name, value, low=1, high=None, error=InceptionZooError):
    """``value`` as an ``int``, or one error naming ``name``, the range and what was given.

    Parameters
    ----------
    name : str
        How the message names the argument (``'classes'``, ``'--workers'``, ...).
    value : object
        What was given.
    low : int, default 1
        The smallest value taken.
    high : int, optional
        The largest value taken (default: no bound).
    error : type, default InceptionZooError
        The class of the error raised (a subclass of ``InceptionZooError``: ``PredictionError``,
        ``WeightsError`` ...).

    Returns
    -------
    int

    Raises
    ------
    InceptionZooError
        ``{name} must be an integer >= {low}; got {value!r}`` (or ``in {low}..{high}``).

    Examples
    --------
    >>> import numpy as np
    >>> check_count('classes', np.int64(3))
    3
    >>> check_count('classes', True)
    Traceback (most recent call last):
    ...
    inceptionzoo.errors.InceptionZooError: classes must be an integer >= 1; got True
    """
    if not is_integer(value) or value < low or (high is not None and value > high):
        want = f"in {low}..{high}" if high is not None else f">= {low}"
        raise error(f"{name} must be an integer {want}; got {value!r}")
    return int(value)


def check_counts(name, values, error=InceptionZooError):
    """A sequence of counts (batch sizes ...) as a list of ``int``, or one error naming ``name``
    and the whole sequence given (each value checked as :func:`check_count` checks one).

    Parameters
    ----------
    name : str
        How the message names the argument (``'batch sizes'``).
    values : iterable
        What was given.
    error : type, default InceptionZooError
        The class of the error raised.

    Returns
    -------
    list of int
    """
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise error(f"{name} must be a sequence of integers >= 1; got {values!r}")
    values = list(values)
    if not all(is_integer(v) and v >= 1 for v in values):
        raise error(f"{name} must be integers >= 1; got {values!r}")
    return [int(v) for v in values]


class _Brief(reprlib.Repr):
    """``reprlib``'s size limits; no decimal digits of a huge integer (Python refuses to make
    more than 4,300 of them, and making them costs time); any object that is not plain data
    (numbers, strings, bytes, lists, tuples, dicts, sets) named by its type, never by its own
    ``repr``."""

    def repr_int(self, x, level):
        bits = x.bit_length()
        return repr(x) if bits <= 64 else f"<an integer of {bits} bits>"

    def repr_float(self, x, level):
        return repr(x)

    def repr_bool(self, x, level):
        return repr(x)

    def repr_NoneType(self, x, level):
        return "None"

    def repr_instance(self, x, level):
        return f"a {type(x).__name__}"


_BRIEF = _Brief()
_BRIEF.maxstring = _BRIEF.maxother = 60
_BRIEF.maxlevel, _BRIEF.maxlist, _BRIEF.maxtuple, _BRIEF.maxdict = 3, 8, 8, 8


def brief(value):
    """A short, always printable description of a value a file or a caller gave, for an error
    message: at most about 60 characters per string, 8 items per container, 3 levels deep, no
    digits of a huge integer. The package's one truncating ``repr``.

    Parameters
    ----------
    value : object

    Returns
    -------
    str

    Examples
    --------
    >>> brief("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
    >>> brief([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    '[1, 2, 3, 4, 5, 6, 7, 8, ...]'
    >>> brief(2 ** 100)
    '<an integer of 101 bits>'
    >>> brief({"w": object()})
    "{'w': a object}"
    """
    return _BRIEF.repr(value)
