"""The output folder of a training run: ``NAME-EPOCH.params`` / ``.states`` checkpoints (and
``NAME-EPOCH.json``, the checkpoint's spec, for a run started from weights with one),
``metrics.json`` and ``curves.png``; what it holds already (a run to resume, or to refuse to
overwrite), and where a resumed run starts."""
import dataclasses
import glob
import os

from ._io import atomic_path, ensure_writable_dir, read_json, sha1_file, write_json
from ._plot import pyplot, save_figure
from .errors import InceptionZooError
from .trainer_state import load_trainer_state, save_trainer_state
from .weights_spec import sidecar_path

__all__ = ["RunFolder", "latest_checkpoint", "previous_run", "check_previous_run",
           "plot_curves"]


def latest_checkpoint(out, name, need_states=True):
    """``(epoch, path)`` of the newest ``NAME-EPOCH.params`` in ``out`` (with its ``.states``
    when ``need_states``), or ``(0, None)``.

    Parameters
    ----------
    out : str
    name : str
        The model's name.
    need_states : bool, default True
    """
    found = []
    for path in glob.glob(os.path.join(glob.escape(os.fspath(out)),
                                       f"{glob.escape(name)}-[0-9][0-9][0-9][0-9].params")):
        epoch = int(path[-11:-7])
        if not need_states or os.path.isfile(path[:-7] + ".states"):
            found.append((epoch, path))
    return max(found) if found else (0, None)


def previous_run(out, name, overwrite=False):
    """What an output folder holds already: the ``metrics.json`` of a run (a dict), a dict
    naming only the model when it holds checkpoints of ``name`` without (readable, with
    ``overwrite``) metrics, or None.

    Parameters
    ----------
    out : str
    name : str
        The model this run trains.
    overwrite : bool, default False
        Unreadable metrics are then this run's to replace.
    """
    path = os.path.join(out, "metrics.json")
    if os.path.isfile(path) and overwrite:
        try:
            return previous_run(out, name)
        except ValueError:  # unreadable metrics: replaced by this run's
            return {"model": name}
    if os.path.isfile(path):
        try:
            found = read_json(path)
        except ValueError as err:
            raise InceptionZooError(f"{path}: cannot read the metrics of the run in {out} ({err}); "
                                    "expected the metrics.json training writes: move the folder's "
                                    "files away, or train into another --out folder") from None
        if not isinstance(found, dict) or not isinstance(found.get("model"), str):
            raise InceptionZooError(
                f"{path}: not the metrics.json training writes (no model name): "
                "move it away, or train into another --out folder")
        return found
    if latest_checkpoint(out, name, need_states=False)[1]:
        return {"model": name}
    return None


def check_previous_run(previous, out, name, classes, class_names, resume, overwrite):
    """Refuse to resume another run (model, class count, class names) or to write a fresh
    run over one without ``overwrite``.

    Parameters
    ----------
    previous : dict or None
        What :func:`previous_run` found.
    out, name : str
        The folder and this run's model.
    classes : int
    class_names : list of str
        This run's data.
    resume, overwrite : bool
    """
    if previous is None:
        return
    epochs = len(previous.get("epochs") or [])
    what = f"a run of model {previous['model']!r}" + (
        f" ({epochs} epoch(s), {previous['classes']} classes)"
        if isinstance(previous.get("classes"), int) else "")
    if not resume:
        if not overwrite:
            raise FileExistsError(f"{out} holds {what} already: pass --resume to continue it, "
                                  "--overwrite to replace it, or give another --out folder")
        return
    if previous["model"] != name:
        raise InceptionZooError(f"--resume: {out} holds {what}, this run trains {name!r}: resume "
                                f"it as `inceptionzoo train {previous['model']} --resume`, or "
                                "train into another --out folder")
    if previous.get("classes") not in (None, classes):
        raise InceptionZooError(f"--resume: {out} holds {what}; this run has {classes} classes: "
                                "resume it on its own data (and --classes), or train into another "
                                "--out folder")
    old = previous.get("class_names")
    if old is not None and list(old) != list(class_names):
        show = lambda c: ", ".join(map(str, c[:6])) + (" ..." if len(c) > 6 else "")  # noqa
        raise InceptionZooError(
            f"--resume: {out} holds {what} on classes [{show(list(old))}]; this "
            f"data has classes [{show(list(class_names))}]: resume it on its own "
            "data, or train into another --out folder")


def _clear_run(out, names):
    """Delete the checkpoints of models ``names`` and the curves in ``out`` (``overwrite``:
    done when the new run saves its first epoch, so a failed first epoch loses nothing)."""
    for name in set(names):
        for ext in ("params", "states"):
            for path in glob.glob(os.path.join(glob.escape(out),
                                               f"{glob.escape(name)}-[0-9][0-9][0-9][0-9].{ext}")):
                os.remove(path)
    if os.path.isfile(os.path.join(out, "curves.png")):
        os.remove(os.path.join(out, "curves.png"))


def plot_curves(metrics, path):
    """PNG of the training loss and test accuracy per epoch.

    Parameters
    ----------
    metrics : dict
        A run's metrics (``model``, ``recipe``, ``epochs``).
    path : str
    """
    ep = [e["epoch"] for e in metrics["epochs"]]
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(9, 3.5))
    a.plot(ep, [e["train_loss"] for e in metrics["epochs"]], "o-")
    a.set(xlabel="epoch", ylabel="mean training loss", title=metrics["model"])
    b.plot(ep, [e["test_accuracy"] for e in metrics["epochs"]], "o-", color="C1")
    b.set(xlabel="epoch", ylabel="test accuracy", title=f"recipe {metrics['recipe']['name']}")
    save_figure(fig, path)


@dataclasses.dataclass
class RunFolder:
    """The run folder of one worker: where (``out``, absolute, or None: nothing is written),
    for which model (``name``), whether this worker writes (worker 0), whether checkpoints
    hold the optimizer state (not under ``dist_async``: it lives on the servers), and the run
    it replaces (``overwrite``: its files go when this run saves its first epoch).

    Attributes
    ----------
    out : str or None
    name : str
    writer : bool
    states : bool
    replaces : dict or None
        The ``metrics.json`` (or ``{'model': NAME}``) of the run to replace.
    """

    out: object
    name: str
    writer: bool = True
    states: bool = True
    replaces: object = None

    @classmethod
    def open(cls, out, name, rank, states=True, replaces=None):
        """Worker 0 makes ``out`` (and checks that it can write there); the others only
        resolve it."""
        if out is not None:
            out = ensure_writable_dir(out) if rank == 0 else os.path.abspath(out)
        return cls(out, name, out is not None and rank == 0, states, replaces)

    def latest(self, need_states=None):
        """``(epoch, path)`` of the newest complete checkpoint, or ``(0, None)``."""
        if self.out is None:
            return 0, None
        return latest_checkpoint(self.out, self.name,
                                 self.states if need_states is None else need_states)

    def resume(self, trainer, optimizer, metrics, start_epoch, path, log):
        """Load the optimizer state of the checkpoint ``path`` into ``trainer`` and put the
        metrics of its epochs into ``metrics``."""
        if self.states:
            load_trainer_state(trainer, path[:-7] + ".states", optimizer)
        old = os.path.join(self.out, "metrics.json")
        if os.path.isfile(old):
            epochs = read_json(old, InceptionZooError).get("epochs")  # a dict: previous_run read it
            if not isinstance(epochs, list):
                raise InceptionZooError(f"{old}: 'epochs' is not a list; expected the "
                                        "metrics.json training writes")
            metrics["epochs"] = epochs[:start_epoch]
        log(f"resuming from {path} (epoch {start_epoch})")

    def save_epoch(self, net, trainer, metrics, spec=None):
        """Write the checkpoint of the last epoch of ``metrics`` (and ``spec``, its spec, as
        ``NAME-EPOCH.json``) and the metrics so far."""
        if not self.writer:
            return
        if self.replaces is not None:
            _clear_run(self.out, [self.replaces["model"], self.name])
            self.replaces = None
        last = metrics["epochs"][-1]
        metrics["params"] = self._save_checkpoint(net, trainer, last["epoch"], spec)
        write_json(os.path.join(self.out, "metrics.json"),
                   dict(metrics, accuracy=last["test_accuracy"]), allow_nan=False)

    def _save_checkpoint(self, net, trainer, epoch, spec):
        """Write ``NAME-EPOCH.states`` and ``.params``, and with ``spec`` the checkpoint's own
        spec ``NAME-EPOCH.json`` (its preprocessing, classes and SHA-1), so that
        ``evaluate`` / ``export`` / ``pretrained=`` read it as they read a converted file."""
        base = os.path.join(self.out, f"{self.name}-{epoch:04d}")
        if self.states:
            save_trainer_state(trainer, base + ".states")
        with atomic_path(base + ".params") as tmp:  # written last: it marks the checkpoint done
            net.save_parameters(tmp)
            if spec is not None:  # before the params' rename: a done checkpoint has its spec
                write_json(sidecar_path(base + ".params"), dataclasses.replace(
                    spec, file=os.path.basename(base + ".params"),
                    sha1=sha1_file(tmp)).to_dict())
        return base + ".params"

    def finish(self, metrics):
        """The final ``accuracy`` in ``metrics``; the writer writes them and the curves."""
        metrics["accuracy"] = metrics["epochs"][-1]["test_accuracy"] if metrics["epochs"] \
            else None
        if self.writer:
            if "params" not in metrics:  # resumed a finished run
                metrics["params"] = self.latest()[1]
            write_json(os.path.join(self.out, "metrics.json"), metrics, allow_nan=False)
            if metrics["epochs"]:
                plot_curves(metrics, os.path.join(self.out, "curves.png"))
        return metrics
