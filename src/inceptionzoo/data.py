"""Deprecated alias of :mod:`inceptionzoo.mnist` (the module's name until 0.1.0): importing it
warns once and gives the same names; it goes away in the release after this one."""
import warnings

from .mnist import *  # noqa: F401,F403
from .mnist import __all__  # noqa: F401

warnings.warn("inceptionzoo.data is deprecated: import inceptionzoo.mnist (same names)",
              DeprecationWarning, stacklevel=2)
