"""Serving speed of float32, INT8 and bfloat16 exports: images/s per network and batch size,
each measurement in its own fresh process, the precisions alternating (the order reversed
every other round), medians over the rounds, and each precision's ratio to float32:

    .venv/bin/python benchmarks/precision.py --networks inception_mnist,inception_v3 \\
        --batches 1,16 --seconds 5 --rounds 3

Every export goes through ``inceptionzoo.export.export(..., precision=...)``, served by
``load_graph(..., runtime='mxnet')`` (the serving graph's MXNet path). This measures speed
only: the shipped MNIST weights are calibrated and guarded on real MNIST when
``INCEPTIONZOO_TEST_MNIST`` (or ``--mnist``) names it; other networks (random weights, or
their pretrained ones with ``--pretrained``) on random inputs with random labels and a guard
limit of 100 points, i.e. no guard: their accuracy is not measured here (docs/deploy.md,
"Lower precision").
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "src"))
sys.path.insert(0, HERE)
import inceptionzoo  # noqa: E402,F401  (before MXNet: its threads, inceptionzoo._openmp)

PRECISIONS = ("fp32", "int8", "bf16")


def _export(network, precision, folder, mnist, pretrained):
    """Export ``network`` at ``precision`` into ``folder``; the meta's guard record."""
    import mxnet as mx
    import numpy as np

    from inceptionzoo import get_model
    from inceptionzoo.export import export

    if network == "inception_mnist" or pretrained:
        net = get_model(network, pretrained=True)
    else:
        mx.random.seed(0)
        net = get_model(network)
        net.initialize(mx.init.Xavier(magnitude=2))
    kwargs = {}
    if precision != "fp32":
        if mnist and tuple(net.info.input_shape) == (1, 28, 28):
            kwargs = {"holdout": f"mnist:{mnist}", "holdout_size": 1000,
                      "calibration": f"mnist:{mnist}", "calibration_size": 200}
        else:  # speed only: no labelled data for these weights here
            rng = np.random.RandomState(0)
            shape = (64,) + tuple(net.info.input_shape)
            kwargs = {"holdout": (rng.uniform(0, 1, shape).astype(np.float32),
                                  rng.randint(0, net.info.classes, 64)),
                      "calibration": rng.uniform(0, 1, shape).astype(np.float32),
                      "max_accuracy_drop": 100.0}
        if precision == "bf16":
            kwargs.pop("calibration", None)
            kwargs.pop("calibration_size", None)
    paths = export(net, os.path.join(folder, ""), precision=precision, **kwargs)
    with open(paths["meta"]) as f:
        return json.load(f).get("guard")


def _worker(folder, batch, seconds):
    """One fresh process: load the export's serving graph for ``batch`` and time it."""
    import numpy as np

    from _timing import time_calls
    from inceptionzoo.serving import load_graph

    graph = load_graph(folder, runtime="mxnet", warmup=(batch,))
    x = np.random.RandomState(0).uniform(0, 1, (batch,) + graph.sample_shape).astype("float32")
    import mxnet as mx
    xs = mx.nd.array(x)
    res = time_calls(lambda: graph.net(xs), batch, seconds, 3, 20,
                     lambda out, all_=False: mx.nd.waitall() if all_ else out.wait_to_read())
    print(json.dumps(res))


def _run_worker(folder, batch, seconds):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", folder,
                          "--batch", str(batch), "--seconds", str(seconds)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"worker for {folder} batch {batch} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_sec"]


def main(argv=None):
    """Export, time in fresh processes, print images/s and ratios.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
    """
    p = argparse.ArgumentParser(prog="benchmarks/precision.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", default="inception_mnist")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--precisions", default=",".join(PRECISIONS))
    p.add_argument("--seconds", type=float, default=5.0, help="length of one timed run")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per measurement")
    p.add_argument("--mnist", default=os.environ.get("INCEPTIONZOO_TEST_MNIST"),
                   help="MNIST IDX folder: the MNIST network's calibration and guard")
    p.add_argument("--pretrained", action="store_true",
                   help="the networks' pretrained weights (downloaded) instead of random ones")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.batch, args.seconds)
        return 0
    precisions = args.precisions.split(",")
    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown or "fp32" not in precisions:
        p.error(f"--precisions: fp32 and any of int8, bf16; got {args.precisions}")
    batches = [int(b) for b in args.batches.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="precision-bench-") as tmp:
        for network in args.networks.split(","):
            folders = {}
            for prec in precisions:
                folders[prec] = os.path.join(tmp, f"{network}-{prec}")
                t0 = time.perf_counter()
                guard = _export(network, prec, folders[prec], args.mnist, args.pretrained)
                note = "" if guard is None else \
                    f" (guard: agreement {guard['agreement']:.2%} on {guard['holdout']['count']})"
                print(f"# exported {network} {prec} in {time.perf_counter() - t0:.0f} s{note}",
                      flush=True)
            for batch in batches:
                rates = {prec: [] for prec in precisions}
                for r in range(args.rounds):
                    for prec in (precisions if r % 2 == 0 else precisions[::-1]):
                        rates[prec].append(_run_worker(folders[prec], batch, args.seconds))
                base = statistics.median(rates["fp32"])
                for prec in precisions:
                    med = statistics.median(rates[prec])
                    results.append({"network": network, "batch": batch, "precision": prec,
                                    "images_per_sec": med, "runs": rates[prec],
                                    "ratio_to_fp32": med / base})
                    print(f"{network} b{batch} {prec}: {med:,.1f} images/s "
                          f"({med / base:.2f}x fp32; runs "
                          f"{', '.join(f'{v:,.0f}' for v in rates[prec])})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
