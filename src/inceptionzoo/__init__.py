"""inceptionzoo: Inception networks as MXNet Gluon HybridBlocks.

>>> from inceptionzoo import get_model, list_models
>>> 'inception_mnist' in list_models()
True
"""
__version__ = "0.1.0"

_EXTRAS_HINT = (
    "Install it with one of the extras, in the inceptionzoo checkout: pip install -c "
    "constraints.txt -e '.[cpu]' (mxnet==1.9.1) or -e '.[cu112]' (mxnet-cu112==1.9.1, CUDA "
    "11.2, GPUs sm_50..sm_86)."
)

from . import _openmp
from ._openmp import configure as _configure_threads

_configure_threads()  # checked thread variables; one OpenMP thread per physical core

try:
    import mxnet as _mx  # noqa: F401
except ImportError as _err:
    raise ImportError(
        f"inceptionzoo needs MXNet, which could not be imported ({_err}). {_EXTRAS_HINT}"
    ) from None
except AttributeError as _err:  # MXNet 1.9.1 touches np.bool, removed in numpy 1.24
    import numpy as _np

    raise ImportError(
        f"MXNet 1.9.1 cannot be imported with numpy {_np.__version__} ({_err}); "
        "it needs numpy<1.24: pip install 'numpy<1.24'"
    ) from None

_openmp.serial_calling_thread(_mx)  # no second OpenMP team on the user's thread

from .errors import *  # noqa: E402,F401,F403  (every exception class)
from .errors import __all__ as _ERRORS  # noqa: E402
from ._factory import get_model  # noqa: E402
from ._registry import (  # noqa: E402
    ModelInfo,
    list_models,
    model_info,
    model_weights,
    register_model,
)
from .weights_spec import transforms_for  # noqa: E402
from . import models  # noqa: E402,F401  (runs the registrations)

__all__ = [
    "ModelInfo",
    "get_model",
    "list_models",
    "model_info",
    "model_weights",
    "register_model",
    "transforms_for",
    *_ERRORS,
    "__version__",
]
