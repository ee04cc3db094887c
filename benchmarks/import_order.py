"""Images/s of the recommended inference path for both import orders, each in fresh processes:
``import inceptionzoo`` then ``mxnet`` (what every other benchmark does), and ``import mxnet``
then ``inceptionzoo`` (what most scripts do; MXNet 1.9.1 then fixed its threads at half the
logical CPUs before inceptionzoo could set them: ``inceptionzoo._openmp``):

    python benchmarks/import_order.py [--model inception_mnist] [--batch-sizes 32,256]
                                      [--seconds 2] [--rounds 3] [--mnist-dir DIR]

The contender is :class:`inceptionzoo.graph_tuning.TunedGraph` of the pretrained network
(``merge=True``, warmed for the batch size, as the Predictor builds it), fed a resident NDArray.
With ``--mnist-dir`` (default ``$INCEPTIONZOO_TEST_MNIST``) each process also runs ``inceptionzoo
train`` in-process (the CLI's own entry, after the imports of its order: one epoch of the default
recipe on the first ``--train-images`` training digits) and reports the training loop's images/s.
Each round starts one process per order, alternating which goes first; the children run without
``OMP_NUM_THREADS`` / ``MXNET_OMP_MAX_THREADS`` (the defaults are what is compared). Prints the
median images/s of the rounds and MXNet's operator thread limit in each order. Needs a quiet
machine for numbers worth reading.
"""
import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
#: the import orders compared, each a list of modules imported in that order
ORDERS = {"inceptionzoo-first": ["inceptionzoo", "mxnet"],
          "mxnet-first": ["mxnet", "inceptionzoo"]}
#: the variables that would decide MXNet's threads whatever the order
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MXNET_OMP_MAX_THREADS")


def worker(order, model, batch_sizes, seconds, mnist_dir=None, train_images=3000):
    """Import in ``order``, time the recommended path at each batch size; one JSON line."""
    for name in ORDERS[order]:
        importlib.import_module(name)
    mx = sys.modules["mxnet"]
    from _timing import time_calls

    from inceptionzoo import _openmp, get_model
    from inceptionzoo.graph_tuning import TunedGraph
    from inceptionzoo.runtimes import sample_input

    net = get_model(model, pretrained=True)
    graph = TunedGraph.from_block(net, merge=True)
    graph.warmup(batch_sizes)

    def sync(out, all_=False):
        mx.nd.waitall() if all_ else out.wait_to_read()

    rates = {}
    for batch in batch_sizes:
        x = mx.nd.array(sample_input(batch, net.info.input_shape, "float32"))
        res = time_calls(lambda: graph(x), batch, seconds, repeats=3, latency_iters=5, sync=sync)
        rates[batch] = res["images_per_sec"]
    if mnist_dir:
        rates["train"] = _train_rate(model, mnist_dir, train_images)
    limit, _ = _openmp.loaded_threads(mx)
    print(json.dumps({"order": order, "images_per_sec": rates,
                      "mxnet_threads": limit.value if limit is not None else None}))


def _train_rate(model, mnist_dir, images):
    """Images/s of one epoch of ``inceptionzoo train`` (the CLI in this process)."""
    import contextlib
    import io
    import tempfile

    from _sample_data import write_mnist_subset
    from inceptionzoo.cli import main as cli

    with tempfile.TemporaryDirectory() as tmp:
        data = write_mnist_subset(os.path.join(tmp, "mnist"), mnist_dir, images, 100)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = cli(["train", model, "--data-dir", data, "--epochs", "1", "--out",
                        os.path.join(tmp, "run"), "--no-progress", "--json"])
        if code:
            raise SystemExit(f"inceptionzoo train exited {code}")
        metrics = json.loads(out.getvalue().strip().splitlines()[-1])
    return metrics["epochs"][-1]["images_per_sec"]


def _child(order, args):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", order,
                          "--model", args.model, "--batch-sizes", args.batch_sizes,
                          "--seconds", str(args.seconds), "--train-images",
                          str(args.train_images)]
                         + (["--mnist-dir", args.mnist_dir] if args.mnist_dir else []),
                         capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="inception_mnist")
    p.add_argument("--batch-sizes", default="32,256")
    p.add_argument("--seconds", type=float, default=2.0, help="length of one timed run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--mnist-dir", default=os.environ.get("INCEPTIONZOO_TEST_MNIST"),
                   help="MNIST IDX folder: also time one epoch of `inceptionzoo train`")
    p.add_argument("--train-images", type=int, default=3000)
    p.add_argument("--worker", choices=sorted(ORDERS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.worker:
        return worker(args.worker, args.model, batch_sizes, args.seconds, args.mnist_dir,
                      args.train_images)
    results = {order: [] for order in ORDERS}
    for r in range(args.rounds):
        for order in (list(ORDERS) if r % 2 == 0 else list(reversed(ORDERS))):
            results[order].append(_child(order, args))
    print(f"{args.model}, recommended path, images/s (median of {args.rounds} fresh processes)")
    columns = [str(b) for b in batch_sizes] + (["train"] if args.mnist_dir else [])
    print(f"{'order':<20} {'MXNet threads':>13} " + " ".join(
        f"{('b' + c) if c != 'train' else c:>10}" for c in columns))
    for order, runs in results.items():
        threads = sorted({run["mxnet_threads"] for run in runs}, key=str)
        cells = [statistics.median(run["images_per_sec"][c] for run in runs) for c in columns]
        print(f"{order:<20} {','.join(map(str, threads)):>13} "
              + " ".join(f"{c:>10,.0f}" for c in cells))


if __name__ == "__main__":
    main()
