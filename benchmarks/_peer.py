"""What every peer worker of the benchmarks does before it is timed: compute the logits of the
harness's check input and compare them with MXNet's (refused when they differ). Standard library
and numpy only, so it runs in every environment (the main venv without importing MXNet, the
PyTorch venv, gluoncv's process); the comparison is :func:`inceptionzoo.runtimes.parity`, loaded
from its file (importing the package would import MXNet).
"""
import importlib.util
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PeerMismatch(RuntimeError):
    """A peer whose logits are not MXNet's on the same input and weights."""


def runtimes_module():
    """``src/inceptionzoo/runtimes.py`` without importing inceptionzoo (whose ``__init__``
    loads MXNet): its package modules (``_openmp``, ``_errors``: standard library only) come
    from a package of the same folder that runs no ``__init__``, as in the ``.mar``."""
    import types

    name = "inceptionzoo_peer"
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(ROOT, "src", "inceptionzoo")]
        sys.modules[name] = package
    return importlib.import_module(f"{name}.runtimes")


def check_same_function(logits_of, spec):
    """Refuse a peer that computes another function than MXNet's network.

    Parameters
    ----------
    logits_of : callable
        numpy batch -> numpy logits, in the peer.
    spec : dict
        ``check_input`` and ``check_logits``: ``.npy`` files the harness wrote (the input and
        MXNet's logits of it); ``tolerance`` (optional): max |difference| as a fraction of the
        largest |logit| (default :data:`inceptionzoo.runtimes.PARITY`).

    Returns
    -------
    dict
        ``parity_max_diff`` and ``parity_scale``, for the result row.

    Raises
    ------
    PeerMismatch
        Naming the difference.
    """
    rt = runtimes_module()
    tol = spec.get("tolerance") or rt.PARITY
    x, ref = np.load(spec["check_input"]), np.load(spec["check_logits"])
    got = np.asarray(logits_of(x))
    same, diff, scale = rt.parity(ref, got, tol)
    if not same:
        raise PeerMismatch(
            f"refused: {spec['mode']} computes another function than MXNet's {spec['model']} "
            f"(max |logit difference| {diff:.3g} on the check input, largest |logit| "
            f"{scale:.3g}, allowed {tol:g} of it; logits shape {got.shape} vs {ref.shape})")
    return {"parity_max_diff": diff, "parity_scale": scale}


def batch_of(spec, dtype=np.float32):
    """The timed batch: ``spec['batch']`` rows of the check input, repeated as needed."""
    x = np.load(spec["check_input"]).astype(dtype)
    reps = -(-spec["batch"] // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:spec["batch"]])
