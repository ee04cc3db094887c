"""One generation of an export read as a whole: every file from the folder the metadata resolves
to, each checked against its recorded SHA-1 (:func:`read_export`), then the parameters against
the graph (:func:`check_params`) and the graph's outputs against the classes
(:func:`check_outputs`). Part of the serving core (numpy, PIL, MXNet only; the ``.mar`` carries
it).
"""
import hashlib
import os
import time

import mxnet as mx

from ._errors import mxnet_message
from .errors import PredictionError
from .export_meta import export_name, find_meta, parse_meta

__all__ = ["ExportFiles", "READ_ATTEMPTS", "read_export"]


class ExportFiles:
    """An export's files as read by :func:`read_export`, all from one generation folder.

    Attributes
    ----------
    meta : dict
    meta_file : str
        ``NAME-meta.json`` as named in the export folder (the tuning file goes beside it).
    folder : str
        The export folder.
    generation : str
        The folder every file was read from (the export's generation folder, or ``folder``
        for an export of plain files such as an unpacked ``.mar``).
    symbol_json : str
    params : bytes
    onnx : bytes or None
        ``NAME.onnx`` when asked for and present.
    onnx_sha1 : str or None
    onnx_missing : str or None
        The ONNX file the metadata records, when it is missing.
    """

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def _sha1(data):
    return hashlib.sha1(data).hexdigest()


class _Changed(Exception):
    """A file of the generation vanished while it was read (the export was replaced)."""


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise _Changed(path) from None
    except OSError as err:
        raise PredictionError(f"cannot read {path!r}: {err.strerror}") from None


#: how many times :func:`read_export` reads again an export replaced while it read it
READ_ATTEMPTS = 3


def read_export(model_dir, name=None, onnx=False):
    """Read one generation of an export, every file checked against the SHA-1 recorded.

    The final names of an export are links into its generation folder, switched as a whole by
    an overwrite. The metadata is resolved once; every file is read through its final name,
    and if the export switched to another generation meanwhile (a file vanished, or the
    metadata now resolves elsewhere), all of it is read again from the new generation
    (:data:`READ_ATTEMPTS` times): the result is one whole generation, old or new.

    Parameters
    ----------
    model_dir : str
    name : str, optional
        Which export, when the folder holds several.
    onnx : bool
        Also read the export's ONNX file (``onnx`` is None when the export has none; a file
        the metadata records that is missing is None too, with ``onnx_missing`` naming it).

    Returns
    -------
    ExportFiles

    Raises
    ------
    PredictionError
        A missing, unreadable or corrupt file, or an export still being replaced after
        :data:`READ_ATTEMPTS` reads ("the export changed while it was read").
    """
    meta_file = find_meta(model_dir, name)
    for _ in range(READ_ATTEMPTS):
        real = os.path.realpath(meta_file)
        try:
            return _read_generation(meta_file, real, onnx)
        except _Changed as gone:
            if os.path.realpath(meta_file) == real and os.path.isfile(real) and \
                    os.path.isdir(os.path.dirname(str(gone))):  # not replaced: missing
                raise PredictionError(f"export file {str(gone)!r} is missing") from None
        time.sleep(0.05)
    raise PredictionError(f"{meta_file}: the export changed while it was read (replaced "
                          f"{READ_ATTEMPTS} times over, or its links dangle); load it again")


def _read_generation(meta_file, real, onnx):
    folder = os.path.dirname(meta_file)

    def switched():
        return os.path.realpath(meta_file) != real

    def checked(file_key, sha_key):
        path = os.path.realpath(os.path.join(folder, meta[file_key]))
        data = _read(path)
        got = _sha1(data)
        if got != meta[sha_key]:
            if switched():  # a file of the next generation: read that one as a whole
                raise _Changed(path)
            raise PredictionError(f"{path!r} is corrupt or not the exported one: SHA-1 {got}, "
                                  f"the export recorded {meta[sha_key]} ({meta_file})")
        return data

    meta = parse_meta(_read(real), meta_file)
    symbol = checked("symbol_file", "symbol_sha1")
    params = checked("params_file", "params_sha1")
    onnx_data, onnx_sha1, onnx_missing = None, None, None
    if onnx and "onnx_file" in meta:
        try:
            onnx_data = checked("onnx_file", "onnx_sha1")
            onnx_sha1 = meta["onnx_sha1"]
        except _Changed as gone:
            if switched():
                raise
            onnx_missing = str(gone)
    elif onnx:  # exports before onnx_sha1: NAME.onnx, checked against MXNet (load_graph)
        path = os.path.realpath(os.path.join(folder, export_name(meta_file) + ".onnx"))
        if os.path.isfile(path):
            onnx_data = _read(path)
            onnx_sha1 = _sha1(onnx_data)
    if switched():
        raise _Changed(real)
    return ExportFiles(meta=meta, meta_file=meta_file, folder=folder,
                       generation=os.path.dirname(real),
                       symbol_json=symbol.decode("utf-8", "replace"), params=params,
                       onnx=onnx_data, onnx_sha1=onnx_sha1, onnx_missing=onnx_missing)


def check_params(sym, arrays, input_name, batch_shape, where, meta_file):
    """The loaded arrays by graph input name, after the checks ``SymbolBlock.imports`` makes:
    every graph input but the data has an array of the shape the graph infers, and there are no
    others. Otherwise :class:`PredictionError` lists what is missing, extra or mis-shaped."""
    if input_name not in sym.list_inputs():
        raise PredictionError(f"the graph in {where!r} has no input {input_name!r} "
                              f"(meta.json); its inputs are {sym.list_inputs()}")
    params = {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v
              for k, v in arrays.items()}  # without the arg:/aux: prefixes export writes
    try:
        arg_shapes, _, aux_shapes = sym.infer_shape(**{input_name: tuple(batch_shape)})
    except mx.base.MXNetError as err:
        raise PredictionError(f"{meta_file}: batch_shape {list(batch_shape)} does not fit the "
                              f"graph in {where!r} ({mxnet_message(err)})") from None
    want = dict(zip(sym.list_arguments(), arg_shapes))
    want.update(zip(sym.list_auxiliary_states(), aux_shapes))
    del want[input_name]
    missing = sorted(set(want) - set(params))
    extra = sorted(set(params) - set(want))
    shapes = sorted(f"{k} {tuple(params[k].shape)} (graph: {tuple(want[k])})" for k in want
                    if k in params and tuple(params[k].shape) != tuple(want[k]))
    problems = [f"{what}: {', '.join(names)}" for what, names in
                (("missing", missing), ("not in the graph", extra), ("mis-shaped", shapes))
                if names]
    if problems:
        raise PredictionError(f"the params file in {where!r} does not fit its graph: "
                              + "; ".join(problems))
    return params


def check_outputs(meta, meta_file, sym, params):
    """The graph gives one output per class and label of ``meta.json``."""
    shape = tuple([1] + meta["batch_shape"][1:])
    known = {name: array.shape for name, array in params.items()}
    try:
        _, out, _ = sym.infer_shape(**{meta["input_name"]: shape}, **known)
    except mx.base.MXNetError as err:
        raise PredictionError(f"{meta_file}: batch_shape {meta['batch_shape']} does not fit "
                              f"the graph ({mxnet_message(err)})") from None
    labels = meta.get("labels") or []
    if len(out) != 1 or len(out[0]) != 2:
        raise PredictionError(f"{meta_file}: the graph gives outputs of shape "
                              f"{[tuple(o) for o in out]} for one image; a classifier gives "
                              f"one (1, classes) output")
    width = out[0][-1]
    if width != meta["classes"] or (labels and len(labels) != width):
        raise PredictionError(f"{meta_file}: the graph gives {width} outputs per image; the "
                              f"metadata says {meta['classes']} classes and "
                              f"{len(labels)} labels")
