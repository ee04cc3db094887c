"""The commands about exports: ``predict``, ``tune``, ``serve``, and ``bench`` (the
checkout's benchmark harness)."""
import os
import subprocess
import sys

from ..errors import InceptionZooError
from ._output import _print_predictions, _report


def _cmd_predict(args):
    from ..serving import Predictor  # CLI start-up: loaded when the command runs

    pred = Predictor(args.model_dir, name=args.name, runtime=args.runtime)
    _print_predictions(args.images, pred.predict_files(args.images, top_k=args.top_k),
                       args.json)
    return 0


#: Where the benchmark harness lives: in the repository, beside the package (not installed).
HARNESS = os.path.join("benchmarks", "throughput.py")


def _harness_path():
    """The repository's ``benchmarks/throughput.py`` when this package runs from a checkout
    (an editable install), else None."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
    path = os.path.join(root, HARNESS)
    return path if os.path.isfile(path) else None


def _batch_sizes(text):
    try:
        sizes = [int(b) for b in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise InceptionZooError(f"--batch-sizes must be comma-separated integers >= 1; got "
                                f"{text!r}")
    return sizes


def _cmd_tune(args):
    from ..serving import Predictor  # CLI start-up: loaded when the command runs

    sizes = _batch_sizes(args.batch_sizes)  # before the export is loaded
    pred = Predictor(args.model_dir, name=args.name, runtime=args.runtime)
    choice = pred.warmup(sizes)
    path = pred.save_tuning()
    seconds = pred.graph.seconds
    lines = [f"batch {batch:>4}: {variant}" + (
        " (" + ", ".join(f"{r} {s * 1e3:.3f} ms" for r, s in seconds.get(batch, {}).items())
        + ")" if seconds.get(batch) else "") for batch, variant in choice.items()]
    if any("threads=" in str(k) for timed in seconds.values() for k in timed):
        lines.append("threads=0: ONNX Runtime's default, a thread pool over the cores; "
                     "threads=1: one thread, no hand-over between threads (it can win at "
                     "small batches); the faster one is kept")
    if pred.graph.refused:
        lines.append(pred.graph.refused)
    lines.append(f"saved: {path}")
    _report(args, {"choice": {str(b): str(v) for b, v in choice.items()},
                   "seconds": {str(b): s for b, s in seconds.items()},
                   "refused": pred.graph.refused or None, "tuning": path}, lines)
    return 0


def _cmd_serve(args):
    from ..mms import serve  # CLI start-up: loaded when the command runs

    return serve(args.model_dir, name=args.name, port=args.port,
                 management_port=args.management_port, batch_size=args.batch_size,
                 max_batch_delay=args.max_batch_delay, workers=args.workers, store=args.store)


def _cmd_bench(argv):
    """``inceptionzoo bench [ARGS]``: run the checkout's benchmark harness with ``ARGS``
    (``--help`` included) in this Python; its exit status is the command's."""
    path = _harness_path()
    if path is None:
        raise OSError(f"the benchmark harness is developer tooling that is not installed with "
                      f"the package: run {HARNESS} from a checkout of the inceptionzoo "
                      "repository (pip install -e . there)")
    # the harness's main with this command's name in its usage and errors
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import throughput; "
            "sys.exit(throughput.main(sys.argv[1:], prog='inceptionzoo bench'))")
    return subprocess.call([sys.executable, "-c", code, os.path.dirname(path)] + list(argv))
