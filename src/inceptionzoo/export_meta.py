"""An export's file layout and metadata schema: ``NAME-meta.json`` found (:func:`find_meta`),
named (:func:`export_name`) and read (:func:`read_meta`, the one reader, with the checks of
:func:`check_meta`), and what a server takes from it (:func:`input_geometry`,
:func:`labels_of`). Part of the serving core (numpy, PIL, MXNet only; the ``.mar`` carries it).

``meta["batch_shape"]`` is the graph input's shape, batch axis first (``0``: any batch):
``[0, C, H, W]`` for a plain export, ``[0, H, W]`` / ``[0, H, W, C]`` for one that takes uint8
images; ``input_shape`` means ``(C, H, W)`` of one sample everywhere else. Exports of
inceptionzoo <= 0.1.0 named it ``input_shape``: :func:`check_meta` still reads them.
"""
import glob
import os

from . import runtimes
from ._checks import brief, check_count, is_integer, is_number
from ._io import JSON_MAX_BYTES, parse_json
from .errors import PredictionError

__all__ = ["META_SUFFIX", "TUNING_SUFFIX", "META_KEYS", "OLD_META_KEYS", "OUTPUTS", "export_name",
           "find_meta", "check_meta", "read_meta", "parse_meta"]

#: ``NAME-meta.json``: an export's metadata; ``NAME-tuning.json``: its saved tuning.
META_SUFFIX = "-meta.json"
TUNING_SUFFIX = "-tuning.json"

#: keys of NAME-meta.json a server reads
META_KEYS = ("input_name", "batch_shape", "input_dtype", "classes", "preprocess", "params_file",
             "symbol_file", "params_sha1", "symbol_sha1")

#: ``meta["batch_shape"]`` was ``meta["input_shape"]`` in the exports of inceptionzoo <= 0.1.0
#: (the same list; :func:`check_meta` reads either): ``input_shape`` is ``(C, H, W)``
#: everywhere else
OLD_META_KEYS = {"input_shape": "batch_shape"}

#: ``meta["outputs"]``: what the graph gives (absent: logits, one per class)
OUTPUTS = ("logits", "features")


def export_name(meta_file):
    """The export's name from its metadata file: ``DIR/NAME-meta.json`` -> ``NAME``.

    Parameters
    ----------
    meta_file : str

    Returns
    -------
    str
    """
    base = os.path.basename(os.fspath(meta_file))
    if not base.endswith(META_SUFFIX):
        raise PredictionError(f"{meta_file!r} is not an export's metadata (NAME{META_SUFFIX})")
    return base[:-len(META_SUFFIX)]


def find_meta(model_dir, name=None):
    """``NAME-meta.json`` of the export in ``model_dir`` (the one named ``name``, or the only one).

    Parameters
    ----------
    model_dir : str
    name : str, optional

    Returns
    -------
    str

    Raises
    ------
    PredictionError
        None or several found.
    """
    found = sorted(glob.glob(os.path.join(glob.escape(os.fspath(model_dir)), "*" + META_SUFFIX)))
    metas = [m for m in found if name is None or export_name(m) == name]
    if len(metas) != 1:
        raise PredictionError(
            f"{model_dir!r}: expected one export{f' named {name!r}' if name else ''}, "
            f"found {[export_name(m) for m in found] or 'none'} (an export writes "
            f"NAME{META_SUFFIX})"
            + ("; choose one with --name NAME (name= in Python)" if len(found) > 1 else ""))
    return metas[0]


def _plain_name(name):
    return isinstance(name, str) and name and os.path.basename(name) == name and \
        name not in (".", "..")


def _int(value, least):
    return is_integer(value) and value >= least


def onnx_parity_tolerance(meta):
    """How far the export's ONNX file may be from its MXNet graph at the load-time check, as a
    fraction of the largest |logit|: :data:`inceptionzoo.runtimes.PARITY` (float32 rounding),
    or what a lower-precision export measured and recorded (``meta["onnx"]["parity_tolerance"]``:
    two INT8 quantisations differ by more; :mod:`inceptionzoo.accuracy_guard`). Not checked
    here: :func:`check_meta` refuses anything but a number in ``PARITY..1``."""
    onnx = meta.get("onnx")
    if onnx is None:
        return runtimes.PARITY
    value = onnx.get("parity_tolerance") if isinstance(onnx, dict) else None
    if is_number(value):
        return float(value)
    return value


def check_meta(meta, path):
    """The checks of :func:`read_meta` on a parsed ``NAME-meta.json`` (``path`` names it).

    Parameters
    ----------
    meta : object
        The parsed JSON.
    path : str
        The file (named by the errors).

    Returns
    -------
    dict
        ``meta``, with the keys of older exports under their names (:data:`OLD_META_KEYS`).

    Raises
    ------
    PredictionError
        Not an object, a key missing, a value of the wrong kind, or a feature extractor's.
    """
    if not isinstance(meta, dict):
        raise PredictionError(f"{path}: expected a JSON object; got {type(meta).__name__}")
    for old, new in OLD_META_KEYS.items():  # an older export: the key under its new name
        if old in meta and new not in meta:
            meta = {(new if k == old else k): v for k, v in meta.items()}
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise PredictionError(f"{path}: missing key(s) {', '.join(missing)}: not written by "
                              "inceptionzoo export, or edited; export again")
    outputs = meta.get("outputs", "logits")
    if outputs not in OUTPUTS:
        raise PredictionError(f"{path}: 'outputs' must be one of {', '.join(OUTPUTS)}; got "
                              f"{brief(outputs)}")
    if outputs == "features":
        raise PredictionError(f"{path}: this export gives features (a feature extractor's "
                              "graph), not one logit per class: it cannot be served as a "
                              "classifier; export the network with its classifier")
    for key in ("params_file", "symbol_file") + (("onnx_file",) if "onnx_file" in meta else ()):
        if not _plain_name(meta[key]):
            raise PredictionError(f"{path}: {key!r} must be a plain file name inside the export "
                                  f"folder; got {brief(meta[key])}")
    for key in ("input_name", "input_dtype", "params_sha1", "symbol_sha1") + (
            ("onnx_sha1",) if "onnx_file" in meta else ()):
        if not isinstance(meta.get(key), str):
            raise PredictionError(f"{path}: {key!r} must be a string; got {brief(meta.get(key))}")
    if meta["input_dtype"] not in ("float32", "uint8"):
        raise PredictionError(f"{path}: 'input_dtype' must be float32 or uint8; got "
                              f"{brief(meta['input_dtype'])}")
    classes, labels = meta["classes"], meta.get("labels")
    check_count(f"{path}: 'classes'", classes, error=PredictionError)
    if labels is not None and not (isinstance(labels, list) and len(labels) == classes
                                   and all(isinstance(x, str) for x in labels)):
        raise PredictionError(f"{path}: 'labels' must be a list of {classes} strings (one per "
                              f"class); got {brief(labels)}")
    pre, shape = meta["preprocess"], meta["batch_shape"]
    if not isinstance(pre, dict) or not isinstance(pre.get("baked_in"), bool):
        raise PredictionError(f"{path}: 'preprocess' must be an object with a boolean "
                              f"'baked_in'; got {brief(pre)}")
    ranks = (3, 4) if pre["baked_in"] else (4,)
    if not (isinstance(shape, list) and len(shape) in ranks and all(_int(d, 0) for d in shape)):
        raise PredictionError(f"{path}: 'batch_shape' must be a list of "
                              f"{' or '.join(map(str, ranks))} non-negative integers (batch "
                              f"first); got {brief(shape)}")
    tolerance = onnx_parity_tolerance(meta)
    if not (isinstance(tolerance, float) and runtimes.PARITY <= tolerance <= 1):
        raise PredictionError(f"{path}: 'onnx': {{'parity_tolerance': x}} must be a number in "
                              f"{runtimes.PARITY:g}..1; got {brief(meta.get('onnx'))}")
    batching = meta.get("batching")
    if batching is not None and not (
            isinstance(batching, dict) and _int(batching.get("batch_size"), 1)
            and _int(batching.get("max_batch_delay_ms"), 0)):
        raise PredictionError(f"{path}: 'batching' must be {{'batch_size': integer >= 1, "
                              f"'max_batch_delay_ms': integer >= 0}}; got {brief(batching)}")
    return meta


def read_meta(path):
    """``NAME-meta.json`` of an export, checked enough to be used.

    Parameters
    ----------
    path : str
        The file.

    Returns
    -------
    dict

    Raises
    ------
    PredictionError
        Naming the file: not JSON, a key missing, a value of the wrong kind, or the export of
        a feature extractor (``"outputs": "features"``).
    """
    try:
        with open(path, "rb") as f:
            data = f.read(JSON_MAX_BYTES + 1)
    except OSError as err:
        raise PredictionError(f"{path}: cannot read the export's metadata ({err})") from None
    return parse_meta(data, path)


def parse_meta(data, path):
    """:func:`read_meta` on the file's bytes ``data`` (``path`` names it).

    Parameters
    ----------
    data : bytes
    path : str

    Returns
    -------
    dict
    """
    what = f"{path}: cannot read the export's metadata"
    if len(data) > JSON_MAX_BYTES:
        raise PredictionError(f"{what}: larger than {JSON_MAX_BYTES} bytes")
    return check_meta(parse_json(data, what, PredictionError), path)


def input_geometry(meta):
    """``(baked_in, channels, (H, W))`` of an export's input (``meta`` read by
    :func:`read_meta`): a baked-in export takes ``(N, H, W[, C])`` uint8 images, a plain one
    ``(N, C, H, W)`` float32."""
    shape, baked = meta["batch_shape"], meta["preprocess"]["baked_in"]
    if baked:
        return True, (1 if len(shape) == 3 else shape[3]), tuple(shape[1:3])
    return False, shape[1], tuple(shape[2:4])


def labels_of(meta):
    """The class labels: ``meta["labels"]``, else ``'0'``, ``'1'``, ..."""
    return meta.get("labels") or [str(i) for i in range(meta["classes"])]
