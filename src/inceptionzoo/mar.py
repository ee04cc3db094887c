"""Model archives (``.mar``) for MXNet Model Server (multi-model-server 1.1).

The archive is the zip that ``model-archiver`` writes (the export's files at the top,
``MAR-INF/MANIFEST.json``), with the handler :mod:`inceptionzoo.mms_handler` inside as
``inceptionzoo_handler.py`` and the evaluation transform :mod:`inceptionzoo.imaging` beside it
as ``inceptionzoo_imaging.py``; writing it needs neither MMS nor model-archiver. Beside the
portable graph it holds the graphs the handler runs (``serving.json``): the value-preserving
rewrites of :mod:`inceptionzoo.graph_rewrites`, ``pool-first+plain`` for batches of 1 and 2
(where the portable graph hits oneDNN's reference pooling kernel) and ``pool-first`` above. An
export with ``NAME.onnx`` puts it in the archive too, with :mod:`inceptionzoo.runtimes` as
``inceptionzoo_runtimes.py``: where onnxruntime is installed in the server's environment, the
handler checks at load that ONNX Runtime gives MXNet's logits and serves each warmed-up batch
size with the faster of the two. Serving it needs
``pip install 'inceptionzoo[serve]'`` and Java; see docs/deploy.md.
"""
import json
import os
import zipfile

import mxnet as mx

from . import __version__
from ._io import atomic_path
from .errors import InceptionZooError

__all__ = ["write_mar", "HANDLER"]

#: The handler's module name inside the archive and its entry point.
HANDLER = "inceptionzoo_handler:handle"

#: :mod:`inceptionzoo.imaging` (the evaluation transform) inside the archive, beside the handler
IMAGING = "inceptionzoo_imaging.py"
#: :mod:`inceptionzoo.runtimes`'s name inside the archive (the handler imports no inceptionzoo).
RUNTIMES_MODULE = "inceptionzoo_runtimes"

#: Batch sizes up to which the handler runs the ``pool-first+plain`` graph (oneDNN picks the
#: ``Bacd8b`` layout for a channel concat at batch 1 and 2: docs/benchmarks.md).
SMALL_BATCH = 2


def serving_graphs(symbol_file):
    """The graphs the handler runs, by the largest batch size each serves (None: any).

    Parameters
    ----------
    symbol_file : str
        The export's portable graph.

    Returns
    -------
    list of (int or None, str or None)
        ``(up_to_batch, symbol JSON)``; ``None`` as JSON stands for the portable graph itself.
    """
    from .graph_rewrites import graph_variants

    variants = graph_variants(mx.sym.load(symbol_file))
    small = variants.get("pool-first+plain", variants.get("pool-first"))
    large = variants.get("pool-first")
    return [(SMALL_BATCH, None if small is None else small.tojson()),
            (None, None if large is None else large.tojson())]


def write_mar(paths, model_name, out_path, overwrite=False):
    """Write a model archive for MXNet Model Server from an export's files.

    Parameters
    ----------
    paths : dict
        The export's files by role, as :func:`inceptionzoo.export.export` returns them; the
        ``symbol``, ``params`` and ``meta`` files go into the archive (``synset`` and ``onnx``
        too, if any).
    model_name : str
        MMS model name (the URL is ``/predictions/<model_name>``).
    out_path : str
        The ``.mar`` file, written under a temporary name and renamed into place
        (:func:`inceptionzoo.export.export` writes it into the export's generation folder,
        beside the files it archives, so that it is published and replaced with them).
    overwrite : bool
        Replace an existing archive; otherwise that is an error.

    Returns
    -------
    str
        ``out_path``.
    """
    missing = [role for role in ("symbol", "params", "meta") if role not in paths]
    if missing:
        raise InceptionZooError(f"an archive needs the export's symbol, params and meta files; "
                                f"missing: {missing}")
    here = os.path.dirname(os.path.abspath(__file__))
    handler = os.path.join(here, "mms_handler.py")
    manifest = {"runtime": "python",
                "model": {"modelName": model_name, "handler": HANDLER,
                          "description": f"{model_name}, exported by inceptionzoo {__version__}"},
                "modelServerVersion": "1.0", "implementationVersion": "1.0",
                "specificationVersion": "1.0"}
    graphs = []
    for k, (up_to, text) in enumerate(serving_graphs(paths["symbol"])):
        name = f"serving-graph{k}-symbol.json" if text else os.path.basename(paths["symbol"])
        graphs.append({"up_to_batch": up_to, "symbol_file": name, "json": text})
    serving = {"graphs": [{k: g[k] for k in ("up_to_batch", "symbol_file")} for g in graphs],
               "note": "value-preserving rewrites of the export's graph (inceptionzoo."
                       "graph_rewrites); the first whose up_to_batch covers a batch runs it"}
    with atomic_path(out_path, overwrite=overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for role in ("symbol", "params", "meta", "synset", "onnx"):
                if role in paths:
                    z.write(paths[role], os.path.basename(paths[role]))
            if "onnx" in paths:
                z.write(os.path.join(here, "runtimes.py"), RUNTIMES_MODULE + ".py")
            for g in graphs:
                if g["json"]:
                    z.writestr(g["symbol_file"], g["json"])
            z.writestr("serving.json", json.dumps(serving, indent=2))
            z.write(handler, HANDLER.split(":")[0] + ".py")
            z.write(os.path.join(here, "imaging.py"), IMAGING)
            z.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest, indent=2))
    return out_path
