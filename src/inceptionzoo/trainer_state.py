"""A Trainer's optimizer state on disk, without pickle.

MXNet's ``Trainer.save_states`` pickles the optimizer object with its state, and
``load_states`` unpickles whatever the file holds: a ``.states`` file could run any command
on resume. This module writes the state as an MXNet NDArray file (the ``.params`` format,
read through the checked reader :func:`inceptionzoo.ndarray_file.read_ndarray_file`): one
array per state tensor plus a small JSON header (stored as a uint8 array) with the optimizer's
name and update counters. The optimizer itself is never stored: a resumed run builds it from
its recipe, as the run that wrote the file did, and takes the counters and the tensors.
"""
import json
import os

import mxnet as mx
import numpy as np

from ._io import atomic_path, parse_json
from .ndarray_file import read_ndarray_file
from .errors import InceptionZooError

__all__ = ["save_trainer_state", "load_trainer_state"]

FORMAT = "inceptionzoo.trainer_state"
VERSION = 1
_HEADER = "__header__"


def _updaters(trainer):
    """The Updater objects holding the trainer's optimizer state (one per context, or the
    KVStore's when it updates)."""
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    if trainer._update_on_kvstore:
        updater = getattr(trainer._kvstore, "_updater", None)
        if updater is None:
            raise InceptionZooError("this trainer updates on a distributed KVStore's servers: "
                                    "its optimizer state is not in this process")
        return [updater]
    return trainer._updaters


def _flatten(state, index, arrays):
    """The JSON tree of one parameter's state (None, an array key, or a list of trees);
    fills ``arrays``."""
    if state is None:
        return None
    if isinstance(state, mx.nd.NDArray):
        key = f"s:{index}:{len(arrays)}"
        arrays[key] = state.copyto(mx.cpu())
        return key
    if isinstance(state, (tuple, list)):
        return [_flatten(s, index, arrays) for s in state]
    raise InceptionZooError(f"optimizer state of parameter {index} is a "
                            f"{type(state).__name__}: expected arrays")


def save_trainer_state(trainer, path):
    """Write ``trainer``'s optimizer state to ``path`` (atomically).

    Parameters
    ----------
    trainer : mxnet.gluon.Trainer
    path : str
    """
    updater = _updaters(trainer)[0]
    opt = trainer._optimizer
    arrays, tree = {}, {}
    for index in sorted(updater.states):
        tree[str(index)] = _flatten(updater.states[index], index, arrays)
    header = {"format": FORMAT, "version": VERSION, "optimizer": type(opt).__name__.lower(),
              "num_update": int(opt.num_update), "begin_num_update": int(opt.begin_num_update),
              # per device id (MXNet counts each context's updates apart), per parameter
              "index_update_count": {str(d): {str(k): int(v) for k, v in counts.items()}
                                     for d, counts in opt._all_index_update_counts.items()},
              "states": tree}
    arrays[_HEADER] = mx.nd.array(np.frombuffer(json.dumps(header).encode(), np.uint8),
                                  dtype="uint8")
    with atomic_path(path) as tmp:
        mx.nd.save(tmp, arrays)


def _not_a_state(path, why):
    return InceptionZooError(f"{path}: not a trainer state file: {why}; expected what "
                             "inceptionzoo's train writes. Delete the checkpoint pair to resume "
                             "from the one before")


def _read(path):
    """The header and arrays of a state file, every claim checked before use."""
    try:
        arrays = read_ndarray_file(path, error=InceptionZooError)
    except InceptionZooError as err:
        detail = str(err).replace(f"cannot load parameter file {path!r}: ", "")
        raise _not_a_state(path, f"truncated or corrupt ({detail})") from None
    if not isinstance(arrays, dict) or _HEADER not in arrays:
        raise _not_a_state(path, "no header (a file written by an earlier inceptionzoo with "
                                 "pickle is not read: it could run code)")
    raw = arrays.pop(_HEADER)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _not_a_state(path, f"header is {raw.dtype.__name__} of shape {raw.shape}")
    header = parse_json(raw.asnumpy().tobytes(), f"{path} (header)", InceptionZooError)
    if not (isinstance(header, dict) and header.get("format") == FORMAT
            and header.get("version") == VERSION):
        raise _not_a_state(path, f"header is not format {FORMAT!r} version {VERSION}")
    for key in ("num_update", "begin_num_update"):
        if type(header.get(key)) is not int or header[key] < 0:
            raise _not_a_state(path, f"{key} is {header.get(key)!r}, expected an integer >= 0")
    for key in ("index_update_count", "states"):
        if not isinstance(header.get(key), dict):
            raise _not_a_state(path, f"{key} is not an object")
    if not isinstance(header.get("optimizer"), str):
        raise _not_a_state(path, "no optimizer name")
    return header, arrays


def _index(path, key, count):
    if not (key.isdigit() and int(key) < count):
        raise _not_a_state(path, f"parameter index {key[:20]!r} is not one of the trainer's "
                                 f"{count} parameters")
    return int(key)


def _unflatten(path, tree, want, arrays, used):
    """The state tree with its array keys replaced by arrays, checked against the state the
    optimizer creates for the parameter (``want``)."""
    if want is None or tree is None:
        if want is not None or tree is not None:
            raise _not_a_state(path, "a state's structure differs from this optimizer's")
        return None
    if isinstance(want, mx.nd.NDArray):
        if not (isinstance(tree, str) and tree in arrays and tree not in used):
            raise _not_a_state(path, f"state array {str(tree)[:40]!r} is missing")
        used.add(tree)
        got = arrays[tree]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise _not_a_state(path, f"state array {tree} is {got.dtype.__name__} "
                                     f"{got.shape}, expected {want.dtype.__name__} {want.shape}")
        return got.as_in_context(want.context)
    if not (isinstance(tree, list) and len(tree) == len(want)):
        raise _not_a_state(path, "a state's structure differs from this optimizer's")
    parts = [_unflatten(path, t, w, arrays, used) for t, w in zip(tree, want)]
    return tuple(parts) if isinstance(want, tuple) else parts


def load_trainer_state(trainer, path, optimizer):
    """Give ``trainer`` the optimizer state of ``path`` (written by
    :func:`save_trainer_state`), after checking every part against the trainer.

    Parameters
    ----------
    trainer : mxnet.gluon.Trainer
        Built as the run that wrote the file built its own (same recipe and parameters).
    path : str
    optimizer : str
        The optimizer this run uses (a file of another optimizer is refused by name).

    Raises
    ------
    InceptionZooError
        The file is not a trainer state (no pickle is ever read), was written by another
        optimizer, or its tensors do not fit the trainer's parameters.
    """
    path = os.fspath(path)
    header, arrays = _read(path)
    saved = header["optimizer"]
    if saved != optimizer.lower():
        raise InceptionZooError(
            f"{path} holds the state of optimizer {saved[:40]!r}; this run uses {optimizer!r}: "
            f"resume with --optimizer {saved[:40]} (or the recipe that made it), or train into "
            "a new --out folder")
    updaters = _updaters(trainer)
    opt, params = trainer._optimizer, trainer._params
    states, used = {}, set()
    for key, tree in header["states"].items():
        index = _index(path, key, len(params))
        weight = params[index].list_data()[0]
        states[index] = _unflatten(path, tree, opt.create_state_multi_precision(index, weight),
                                   arrays, used)
    if set(arrays) - used:
        raise _not_a_state(path, f"{len(set(arrays) - used)} array(s) belong to no state")
    counts = {0: {}}
    for device, per_param in header["index_update_count"].items():
        if not (device.isdigit() and len(device) < 6 and isinstance(per_param, dict)):
            raise _not_a_state(path, f"update counts of device {device[:20]!r}")
        counts[int(device)] = {}
        for key, count in per_param.items():
            if type(count) is not int or count < 0:
                raise _not_a_state(path, f"update count {count!r} of parameter {key[:20]!r}")
            counts[int(device)][_index(path, key, len(params))] = count
    for updater in updaters:
        updater.states = {i: _copy(s) for i, s in states.items()}
        updater.states_synced = dict.fromkeys(updater.states, False)
    opt.num_update, opt.begin_num_update = header["num_update"], header["begin_num_update"]
    opt._all_index_update_counts = counts
    opt._index_update_count = counts[0]


def _copy(state):
    if isinstance(state, mx.nd.NDArray):
        return state.copy()
    if isinstance(state, (tuple, list)):
        return type(state)(_copy(s) for s in state)
    return state
