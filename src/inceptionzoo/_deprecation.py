"""The one deprecation mechanism: an old spelling that still works for one release says so once,
in one sentence, through :func:`deprecated`.

- a CLI spelling (``cli.OLD_SPELLINGS``): one line on stderr, ``inceptionzoo COMMAND: OLD is
  deprecated and goes in the next release: write NEW``;
- a library name (a module renamed, a name moved to another module): a ``DeprecationWarning``,
  ``OLD is deprecated and goes in the next release: NEW``; :func:`alias_module` keeps an old
  module name importable, :func:`moved_names` gives a module the ``__getattr__`` that still
  hands out the names it no longer holds, :func:`renamed_keyword` takes a keyword argument by
  its old name.

It imports only :mod:`inceptionzoo.errors` (the ``.mar``'s serving core carries both).
"""
import importlib
import sys
import warnings

from .errors import InceptionZooError

__all__ = ["deprecated", "moved_names", "alias_module", "renamed_keyword", "SENTENCE"]

#: what every deprecation says
SENTENCE = "{old} is deprecated and goes in the next release: {new}"


def deprecated(old, new, command=None, stacklevel=3):
    """Say that ``old`` still works for this release and ``new`` replaces it.

    Parameters
    ----------
    old, new : str
        The old spelling and what to use instead (``"import it from inceptionzoo.packing"``).
    command : str, optional
        A CLI command: the line goes to stderr, prefixed ``inceptionzoo COMMAND:`` with
        ``write NEW``; without it, a ``DeprecationWarning``.
    stacklevel : int
        ``warnings.warn``'s, counted from the caller of :func:`deprecated`'s caller.
    """
    if command is not None:
        print(f"inceptionzoo {command}: " + SENTENCE.format(old=old, new=f"write {new}"),
              file=sys.stderr)
    else:
        warnings.warn(SENTENCE.format(old=old, new=new), DeprecationWarning,
                      stacklevel=stacklevel)


def moved_names(module, moved):
    """A module-level ``__getattr__`` for ``module`` (its ``__name__``) that gives each name of
    ``moved`` (old name -> ``"package.module"`` or ``"package.module:new_name"``, or relative to
    ``module``'s package: ``".module"``) from its new
    home, with :func:`deprecated`'s warning; any other name is an ``AttributeError``."""

    def __getattr__(name):
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where, _, new_name = moved[name].partition(":")
        new_name = new_name or name
        target = importlib.import_module(where, module.rpartition(".")[0])
        where = target.__name__
        value = getattr(target, new_name)
        new = (f"import it from {where}" if new_name == name
               else f"use {where}.{new_name}")
        deprecated(f"{module}.{name}", new)
        return value

    return __getattr__


def alias_module(old, new):
    """Keep the module name ``old`` importable as the module ``new`` for one release (called at
    the import of ``old``, in place of its body): the same objects, one warning."""
    target = importlib.import_module(new)
    deprecated(old, f"import {new} (same names)", stacklevel=4)
    sys.modules[old] = target
    return target


def renamed_keyword(where, old, new, old_value, new_value):
    """The value of the keyword argument ``new`` of ``where`` given by its old name ``old``
    (with :func:`deprecated`'s warning) or by its name; None where neither was given.

    Parameters
    ----------
    where : str
        The callable (``"inceptionzoo.datasets.open_sources"``).
    old, new : str
        The keyword's old name and its name.
    old_value, new_value : object
        What each was given (None: not given).

    Returns
    -------
    object

    Raises
    ------
    InceptionZooError
        Both were given.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise InceptionZooError(f"{where}: give {new}= only ({old}= is its old name); got both")
    deprecated(f"{where}({old}=...)", f"use {new}=", stacklevel=4)
    return old_value
