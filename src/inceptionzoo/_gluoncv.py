"""gluoncv, imported on demand (it is the ``gluoncv`` extra): for converting its checkpoints and
for the benchmarks' peer."""
import sys

from ._errors import install_hint

__all__ = ["import_gluoncv"]


def import_gluoncv():
    """Import gluoncv, hiding torch while doing so.

    gluoncv 0.10.5 refuses to import when torch >= 2 is importable (its ``__init__`` checks the
    torch version and raises); its MXNet model zoo does not use torch. Importing it also sets
    PIL's process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` (``gluoncv.data.mhp``), which would
    make every later decode accept truncated images silently: the setting is restored.
    """
    if "gluoncv" in sys.modules:
        return sys.modules["gluoncv"]
    import importlib.util

    if importlib.util.find_spec("gluoncv") is None:
        raise ImportError(f"gluoncv is not installed: {install_hint('gluoncv')} "
                          "(gluoncv==0.10.5.post0, in the same pip run as numpy<1.24)")
    from PIL import ImageFile

    missing = object()
    saved = sys.modules.get("torch", missing)
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    sys.modules["torch"] = None  # makes `import torch` raise ImportError inside gluoncv
    try:
        import gluoncv
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated
        if saved is missing:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved
    return gluoncv
