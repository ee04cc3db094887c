"""Model archives (``.mar``) for MXNet Model Server (multi-model-server 1.1).

The archive is the zip that ``model-archiver`` writes (the export's files at the top,
``MAR-INF/MANIFEST.json``), with the handler :mod:`inceptionzoo.mms_handler` inside as
``inceptionzoo_handler.py``; writing it needs neither MMS nor model-archiver. Serving it needs
``pip install 'inceptionzoo[serve]'`` and Java; see docs/deploy.md.
"""
import json
import os
import zipfile

from . import __version__
from ._io import atomic_path

__all__ = ["write_mar", "HANDLER"]

#: The handler's module name inside the archive and its entry point.
HANDLER = "inceptionzoo_handler:handle"


def write_mar(paths, model_name, out_path, overwrite=False):
    """Write a model archive for MXNet Model Server from an export's files.

    Parameters
    ----------
    paths : dict
        The export's files by role, as :func:`inceptionzoo.export.export` returns them; the
        ``symbol``, ``params`` and ``meta`` files go into the archive (``synset`` too, if any).
    model_name : str
        MMS model name (the URL is ``/predictions/<model_name>``).
    out_path : str
        The ``.mar`` file, written under a temporary name and renamed into place.
    overwrite : bool
        Replace an existing archive; otherwise that is an error.

    Returns
    -------
    str
        ``out_path``.
    """
    missing = [role for role in ("symbol", "params", "meta") if role not in paths]
    if missing:
        raise ValueError(f"an archive needs the export's symbol, params and meta files; "
                         f"missing: {missing}")
    handler = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mms_handler.py")
    manifest = {"runtime": "python",
                "model": {"modelName": model_name, "handler": HANDLER,
                          "description": f"{model_name}, exported by inceptionzoo {__version__}"},
                "modelServerVersion": "1.0", "implementationVersion": "1.0",
                "specificationVersion": "1.0"}
    with atomic_path(out_path, overwrite=overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for role in ("symbol", "params", "meta", "synset"):
                if role in paths:
                    z.write(paths[role], os.path.basename(paths[role]))
            z.write(handler, HANDLER.split(":")[0] + ".py")
            z.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest, indent=2))
    return out_path
