"""Serving speed of float32, INT8 and bfloat16 exports in MXNet and ONNX Runtime: images/s per
network and batch size, each measurement in its own fresh process, the contenders alternating
(the order reversed every other round), medians over the rounds, and each contender's ratio to
the best float32 runtime:

    .venv/bin/python benchmarks/precision.py --networks inception_mnist,inception_v3 \\
        --batches 1,16 --seconds 5 --rounds 3

Every export goes through ``inceptionzoo.export.export(..., precision=...)``; float32 and
INT8 are exported with their ONNX file (INT8: ONNX Runtime's own static quantisation,
``quantize_onnx``). Contenders: ``fp32/mxnet``, ``int8/mxnet``, ``bf16/mxnet`` (the serving
graph's MXNet path, ``load_graph(..., runtime='mxnet')``) and ``fp32/onnxruntime``,
``int8/onnxruntime`` (benchmarks/ort_worker.py: ONNX Runtime as the zoo runs it, thread setting
tuned, in a process that never imports MXNet) and, with ``--peer torch`` for the networks a
PyTorch library has (``googlenet_bn``, ``inception_v3``, ``inception_v4``,
``inception_resnet_v2``), ``fp32/torch-compile-frozen``: the library's network under
``torch.compile`` with inductor freezing (PyTorch's best CPU setting) in the PyTorch venv, with
the same random weights (made by PyTorch and converted for the zoo, as in
``benchmarks/imagenet_inception.py``; its logits checked against MXNet's before timing), counted
among the float32 runtimes the ratios are taken against. This measures speed only: the shipped MNIST
weights are calibrated and guarded on real MNIST when ``INCEPTIONZOO_TEST_MNIST`` (or
``--mnist``) names it; other networks (random weights, or their pretrained ones with
``--pretrained``) on random inputs with random labels and a guard limit of 100 points, i.e. no
guard: their accuracy is not measured here (docs/deploy.md, "Lower precision").
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
import throughput as bench  # noqa: E402

PRECISIONS = ("fp32", "int8", "bf16")
#: the PyTorch peer's mode (``--peer torch``)
TORCH_MODE = "torch-compile-frozen"
#: The runtimes each precision is timed in (bf16 has no ONNX Runtime kernels on CPU).
RUNTIMES = {"fp32": ("mxnet", "onnxruntime"), "int8": ("mxnet", "onnxruntime"),
            "bf16": ("mxnet",)}


def _export(network, precision, folder, mnist, pretrained, params=None):
    """Export ``network`` at ``precision`` into ``folder`` (with ``params``, the weights of
    the PyTorch peer, else as described above); the meta's guard record."""
    import mxnet as mx
    import numpy as np

    from inceptionzoo import get_model
    from inceptionzoo.export import export

    if params:
        net = get_model(network)
        net.load_parameters(params)
    elif network == "inception_mnist" or pretrained:
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
    paths = export(net, os.path.join(folder, ""), precision=precision,
                   onnx="onnxruntime" in RUNTIMES[precision], **kwargs)
    with open(paths["meta"]) as f:
        return json.load(f).get("guard")


def _worker(folder, batch, seconds):
    """One fresh process: load the export's serving graph for ``batch`` and time it."""
    from _timing import time_calls
    from inceptionzoo.runtimes import sample_input
    from inceptionzoo.serving import load_graph

    graph = load_graph(folder, runtime="mxnet", warmup=(batch,))
    x = sample_input(batch, graph.sample_shape, "float32")
    import mxnet as mx
    xs = mx.nd.array(x)
    res = time_calls(lambda: graph.net(xs), batch, seconds, 3, 20,
                     lambda out, all_=False: mx.nd.waitall() if all_ else out.wait_to_read())
    print(json.dumps(res))


def _run_worker(folder, runtime, batch, seconds):
    if isinstance(folder, dict):  # the PyTorch peer: its spec (see _torch_peer)
        spec = dict(folder, batch=batch, run_seconds=seconds / 3, repeats=3, latency_iters=20)
        res = bench._run_peer_process(bench._command(spec), 1800)
        if "error" in res:
            raise SystemExit(f"{runtime} batch {batch} failed: {res['error']}")
        return res["images_per_sec"]
    if runtime == "onnxruntime":  # its own worker, which never imports MXNet
        onnx = [f for f in os.listdir(folder) if f.endswith(".onnx")][0]
        spec = {"batch": batch, "run_seconds": seconds / 3, "repeats": 3, "latency_iters": 20}
        cmd = [sys.executable, os.path.join(HERE, "ort_worker.py"), os.path.join(folder, onnx),
               json.dumps(spec)]
    else:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", folder, "--batch",
               str(batch), "--seconds", str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"worker for {folder} batch {batch} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_sec"]


def _torch_peer(network, folder):
    """The PyTorch library's network with random weights, converted for the zoo: (the zoo's
    params file, the worker spec of ``torch-compile-frozen``)."""
    import imagenet_inception

    keys = [k for k, v in imagenet_inception.NETWORKS.items() if v[0] == network]
    if not keys:
        names = sorted(v[0] for v in imagenet_inception.NETWORKS.values())
        raise SystemExit(f"--peer torch: {network} has no PyTorch library network (those "
                         f"that do: {', '.join(names)})")
    zoo, lib, name, _ = imagenet_inception.NETWORKS[keys[0]]
    files, unsupported = imagenet_inception._files(keys[0], [TORCH_MODE], folder, 1800)
    if unsupported:
        raise SystemExit(f"--peer torch: {unsupported[TORCH_MODE]}")
    return files["params"], dict(files, model=zoo, ctx="cpu", mode=TORCH_MODE, source=lib,
                                 name=name, classes=1000)


def _time_batch(network, batch, contenders, folders, args):
    """Rows of one network and batch size: each contender's median images/s over the rounds
    and its ratio to the best float32 runtime."""
    rates = {c: [] for c in contenders}
    for r in range(args.rounds):
        for prec, rt in (contenders if r % 2 == 0 else contenders[::-1]):
            where = folders[rt] if rt == TORCH_MODE else folders[prec]
            rates[prec, rt].append(_run_worker(where, rt, batch, args.seconds))
    base = max(statistics.median(v) for (prec, _), v in rates.items() if prec == "fp32")
    rows = []
    for (prec, rt), runs in rates.items():
        med = statistics.median(runs)
        rows.append({"network": network, "batch": batch, "precision": prec, "runtime": rt,
                     "images_per_sec": med, "runs": runs, "ratio_to_best_fp32": med / base})
        print(f"{network} b{batch} {prec}/{rt}: {med:,.1f} images/s ({med / base:.2f}x the "
              f"best fp32; runs {', '.join(f'{v:,.1f}' for v in runs)})", flush=True)
    return rows


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
    p.add_argument("--peer", choices=["torch"], help="also time the PyTorch library's network "
                   "(frozen torch.compile, float32) on the same weights")
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
            folders, params = {}, None
            if args.peer:
                params, folders[TORCH_MODE] = _torch_peer(network,
                                                          os.path.join(tmp, f"{network}-torch"))
            for prec in precisions:
                folders[prec] = os.path.join(tmp, f"{network}-{prec}")
                t0 = time.perf_counter()
                guard = _export(network, prec, folders[prec], args.mnist, args.pretrained,
                                params)
                note = "" if guard is None else \
                    f" (guard: agreement {guard['agreement']:.2%} on {guard['holdout']['count']})"
                print(f"# exported {network} {prec} in {time.perf_counter() - t0:.0f} s{note}",
                      flush=True)
            contenders = [(prec, rt) for prec in precisions for rt in RUNTIMES[prec]]
            if args.peer:
                contenders.insert(len(RUNTIMES["fp32"]), ("fp32", TORCH_MODE))
            for batch in batches:
                results += _time_batch(network, batch, contenders, folders, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
