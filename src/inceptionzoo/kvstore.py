"""The KVStore of a training run: one context, several (``device``), or MXNet's parameter
server (``dist_sync``, ``dist_device_sync``, ``dist_async``, under
:mod:`inceptionzoo.launch`), and this process's place among the workers."""
import dataclasses
import os

import mxnet as mx

from .errors import InceptionZooError

__all__ = ["KVSTORES", "Workers", "open_kvstore", "start_trainer"]

#: the ``kvstore`` values training takes (None: one context, or ``device`` for several)
KVSTORES = ("local", "device", "dist_sync", "dist_device_sync", "dist_async")


@dataclasses.dataclass(frozen=True)
class Workers:
    """The KVStore for the Trainer (a name, a ``KVStore`` or None), this worker's ``rank``,
    the number of workers, and whether the servers apply the updates
    (``update_on_kvstore``: ``dist_async``).

    Attributes
    ----------
    kv : str, mxnet.kvstore.KVStore or None
    rank, num_workers : int
    update_on_kvstore : bool or None
    """

    kv: object = None
    rank: int = 0
    num_workers: int = 1
    update_on_kvstore: object = None

    @property
    def async_kv(self):
        """Whether the optimizer state lives on the servers (``dist_async``)."""
        return isinstance(self.kv, mx.kv.KVStore) and "async" in self.kv.type


def open_kvstore(kvstore, ctxs, batch_size):
    """The :class:`Workers` of ``kvstore`` on ``ctxs``; a global ``batch_size`` smaller than
    the number of workers is refused.

    Parameters
    ----------
    kvstore : str or None
        One of :data:`KVSTORES` (None: one context, or ``device`` for several).
    ctxs : list of mxnet.Context
    batch_size : int
        The global batch.

    Returns
    -------
    Workers
    """
    w = _open(kvstore, ctxs)
    if batch_size < w.num_workers:
        raise InceptionZooError(
            f"batch size {batch_size} is smaller than the {w.num_workers} workers: "
            "expected a batch size >= the number of workers (it is the global batch, shared "
            "by the workers)")
    return w


def _open(kvstore, ctxs):
    if kvstore in (None, "", "none"):
        return Workers("device" if len(ctxs) > 1 else None)
    if kvstore not in KVSTORES:
        raise InceptionZooError(
            f"unknown kvstore {kvstore!r}: expected one of {', '.join(KVSTORES)}")
    if not kvstore.startswith("dist"):
        return Workers(kvstore)
    if "DMLC_ROLE" not in os.environ:
        raise InceptionZooError(
            f"--kvstore {kvstore} needs MXNet's parameter server: run the command "
            "under `inceptionzoo launch --workers N --servers M -- ...`")
    kv = mx.kv.create(kvstore)
    # sync: every worker updates its own copy with the summed gradient (its optimizer state is
    # then local, so checkpoints hold it); async updates can only run on the servers
    return Workers(kv, kv.rank, kv.num_workers, "async" in kvstore)


def start_trainer(trainer, workers):
    """Before the first step of several workers or a KVStore object: MXNet 1.9.1 races the
    broadcast of the initial values with the first push (a worker can pull a stale value in
    step 1), so initialise now and wait for every worker.

    Parameters
    ----------
    trainer : mxnet.gluon.Trainer
    workers : Workers
    """
    if workers.num_workers > 1 or isinstance(workers.kv, mx.kv.KVStore):
        trainer._init_kvstore()
        trainer._init_params()
        mx.nd.waitall()
        workers.kv._barrier()
