"""Model archives (``.mar``) for MXNet Model Server (multi-model-server 1.1).

The archive is the zip that ``model-archiver`` writes (the export's files at the top,
``MAR-INF/MANIFEST.json``), with the handler :mod:`inceptionzoo.mms_handler` inside as
``inceptionzoo_handler.py`` and the serving core beside it as the package
``inceptionzoo_serving/`` (:mod:`inceptionzoo.serving_core` and the modules it imports, which
need only numpy, PIL, MXNet and, optionally, onnxruntime); writing it needs neither MMS nor
model-archiver. The handler serves the export as :func:`inceptionzoo.serving.load_graph` does:
the same checks, the same graph per batch size (MXNet's static graphs, and ONNX Runtime for the
batch sizes it runs faster when the export has ``NAME.onnx`` and onnxruntime is installed in the
server's environment), a saved ``NAME-tuning.json`` of the export included. Serving it needs
the ``serve`` extra (``pip install -c constraints.txt -e '.[cpu,serve]'`` in the checkout) and Java; see docs/deploy.md.
"""
import json
import os
import zipfile

from . import __version__, serving_core
from ._io import atomic_path, dump_json
from .errors import InceptionZooError

__all__ = ["write_mar", "record_batching", "HANDLER", "CORE_PACKAGE", "CORE_MODULES"]

#: The handler's module name inside the archive and its entry point.
HANDLER = "inceptionzoo_handler:handle"

#: The serving core's package inside the archive, and the modules of inceptionzoo it holds
#: (:mod:`inceptionzoo.serving_core` and what it imports, relatively: no inceptionzoo needed).
CORE_PACKAGE = "inceptionzoo_serving"
CORE_MODULES = ("serving_core", "export_meta", "export_files", "export_runner", "runtimes",
                "steady_race", "graph_tuning", "graph_rewrites", "branch_merges",
                "symbol_graphs", "imaging", "transforms", "ndarray_file", "errors", "_errors",
                "_io", "_openmp", "_checks", "_deprecation")


def record_batching(meta_file):
    """Time the export of ``meta_file`` (published or not) and record the batching a model
    server should use in it: ``meta["batching"] = {"batch_size": int, "max_batch_delay_ms":
    int}`` (:func:`inceptionzoo.serving_core.recommend_batching`). The file is rewritten in
    place: call it on an export not yet published.

    Parameters
    ----------
    meta_file : str
        ``NAME-meta.json`` with its export's files beside it.

    Returns
    -------
    dict
        What was recorded.
    """
    graph = serving_core.load_graph(os.path.dirname(meta_file), warmup=(),
                                    name=serving_core.export_name(meta_file))
    graph.TIME_BUDGET = 0.3  # coarse timing: a batch size is picked, not a runtime tuned
    if graph.net is not None:
        graph.net.tune_budget = 0.6
    found = serving_core.recommend_batching(graph)
    batching = {k: found[k] for k in ("batch_size", "max_batch_delay_ms")}
    meta = dict(graph.meta, batching=batching)
    dump_json(meta_file, meta)
    return batching


def write_mar(paths, model_name, out_path, overwrite=False):
    """Write a model archive for MXNet Model Server from an export's files.

    Parameters
    ----------
    paths : dict
        The export's files by role, as :func:`inceptionzoo.export.export` returns them; the
        ``symbol``, ``params`` and ``meta`` files go into the archive (``synset`` and ``onnx``
        too, if any, and the export's ``NAME-tuning.json`` when there is one).
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
    manifest = {"runtime": "python",
                "model": {"modelName": model_name, "handler": HANDLER,
                          "description": f"{model_name}, exported by inceptionzoo {__version__}"},
                "modelServerVersion": "1.0", "implementationVersion": "1.0",
                "specificationVersion": "1.0"}
    tuning = os.path.join(os.path.dirname(paths["meta"]),
                          serving_core.export_name(paths["meta"]) + serving_core.TUNING_SUFFIX)
    with atomic_path(out_path, overwrite=overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for role in ("symbol", "params", "meta", "synset", "onnx"):
                if role in paths:
                    z.write(paths[role], os.path.basename(paths[role]))
            if os.path.isfile(tuning):
                z.write(tuning, os.path.basename(tuning))
            z.write(os.path.join(here, "mms_handler.py"), HANDLER.split(":")[0] + ".py")
            z.writestr(f"{CORE_PACKAGE}/__init__.py",
                       f'"""inceptionzoo {__version__}\'s serving core, carried by the archive '
                       'for its handler."""\n')
            for module in CORE_MODULES:
                z.write(os.path.join(here, module + ".py"), f"{CORE_PACKAGE}/{module}.py")
            z.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest, indent=2))
    return out_path
