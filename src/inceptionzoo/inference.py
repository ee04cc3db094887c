"""Deprecated name of :mod:`inceptionzoo.graph_tuning` (until 0.1.0), gone in the next release:
importing it warns once; ``StaticGraph`` and ``InferenceGraph`` are ``graph_tuning``'s
``CachedGraph`` and ``TunedGraph`` (:mod:`inceptionzoo._deprecation`)."""
from ._deprecation import deprecated, moved_names

deprecated(__name__, "import inceptionzoo.graph_tuning", stacklevel=2)
__getattr__ = moved_names(__name__, {"StaticGraph": ".graph_tuning:CachedGraph",
                                     "InferenceGraph": ".graph_tuning:TunedGraph",
                                     "onednn_fusion_available": ".graph_tuning"})
