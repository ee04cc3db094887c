"""Deprecated alias of :mod:`inceptionzoo.mnist` (the module's name until 0.1.0): importing it
warns once and gives the module :mod:`inceptionzoo.mnist` itself; it goes away in the release
after this one (:mod:`inceptionzoo._deprecation`)."""
from ._deprecation import alias_module

alias_module(__name__, "inceptionzoo.mnist")
