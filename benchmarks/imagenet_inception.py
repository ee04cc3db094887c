"""Inception-v3 at 299x299 on CPU: the zoo's static (hybridized) graph against its imperative
execution, against gluoncv's ``inceptionv3`` (hybridized, static) and, with ``--torch``,
against torchvision's ``inception_v3`` eager and under ``torch.compile`` (run by the PyTorch
side venv of ``make torch-env``, since torch 2.14 cannot share a venv with MXNet 1.9.1).

    python benchmarks/imagenet_inception.py --batch-sizes 1,16 [--torch] [--json out.json]

Every configuration runs in a fresh worker process; the timing (warm-up, latency p50 / p90,
throughput over ``--repeats`` runs) is ``benchmarks/_timing.py``'s, shared with
``benchmarks/throughput.py``. All networks have random
weights: speed does not depend on them. Numbers depend on the machine's load; measure on an
idle machine. A quick check that everything runs::

    python benchmarks/imagenet_inception.py --batch-sizes 1 --run-seconds 0.01 --repeats 1 \
        --latency-iters 1
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MX_MODES = ["imperative", "static", "recommended", "gluoncv-static"]
TORCH_MODES = ["torch-eager", "torch-compile", "torch-compile-frozen"]
SIZE = 299

sys.path.insert(0, HERE)
from _timing import time_calls  # noqa: E402  (standard library only: runs in the torch venv)


def _mx_worker(spec):
    import mxnet as mx
    import numpy as np

    if spec["mode"] == "gluoncv-static":
        from inceptionzoo._gluoncv import import_gluoncv

        net = import_gluoncv().model_zoo.get_model("inceptionv3", pretrained=False)
        mode = "static"
    else:
        from inceptionzoo import get_model

        net = get_model("inception_v3")
        mode = spec["mode"]
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.RandomState(0).rand(spec["batch"], 3, SIZE, SIZE))
    from throughput import prepare_inference

    call_net = prepare_inference(net, mode, x)

    def sync(out, all_=False):
        mx.nd.waitall() if all_ else out.wait_to_read()

    return time_calls(lambda: call_net(x), spec["batch"], spec["run_seconds"],
                       spec["repeats"], spec["latency_iters"], sync)


def _torch_worker(spec):
    import torch
    import torchvision

    torch.set_num_threads(os.cpu_count() or 1)
    model = torchvision.models.inception_v3(weights=None, aux_logits=False,
                                            init_weights=False).eval()
    if spec["mode"] in ("torch-compile", "torch-compile-frozen"):
        import torch._inductor.config

        # freezing: PyTorch's recommended setting for CPU inference (weights as constants)
        torch._inductor.config.freezing = spec["mode"] == "torch-compile-frozen"
        model = torch.compile(model)
    x = torch.rand(spec["batch"], 3, SIZE, SIZE)

    def call():
        with torch.inference_mode():
            return model(x)

    return time_calls(call, spec["batch"], spec["run_seconds"], spec["repeats"],
                       spec["latency_iters"], lambda out, all_=False: None)


def _worker(spec):
    import resource
    import time

    t0 = time.perf_counter()
    res = _torch_worker(spec) if spec["mode"].startswith("torch") else _mx_worker(spec)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["wall_seconds"] = time.perf_counter() - t0
    print(json.dumps(res))


def _run(spec, python, timeout):
    try:
        p = subprocess.run([python, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks/imagenet_inception.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-sizes", default="1,16")
    p.add_argument("--run-seconds", type=float, default=2.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--latency-iters", type=int, default=20)
    p.add_argument("--torch", action="store_true", help="also torchvision eager / compile")
    p.add_argument("--torch-python", default=os.path.join(ROOT, ".venv-torch", "bin", "python"),
                   help="python of the PyTorch side venv (make torch-env)")
    p.add_argument("--timeout", type=int, default=1800)
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(json.loads(args.worker))
        return 0
    try:
        batches = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        p.error(f"--batch-sizes takes integers separated by commas; got {args.batch_sizes!r}")
    if args.torch and not os.path.isfile(args.torch_python):
        p.error(f"--torch needs the PyTorch side venv ({args.torch_python}): make torch-env")
    import throughput as bench

    rows = []
    for batch in batches:  # the contenders one after another at each batch size
        for mode in MX_MODES + (TORCH_MODES if args.torch else []):
            python = args.torch_python if mode.startswith("torch") else sys.executable
            row = {"model": "inception_v3", "ctx": "cpu", "mode": mode, "batch": batch}
            row.update(_run(dict(row, run_seconds=args.run_seconds, repeats=args.repeats,
                                 latency_iters=args.latency_iters), python, args.timeout))
            rows.append(row)
            print(bench._line(row), flush=True)
    for row in rows:
        base = [r for r in rows if r["batch"] == row["batch"] and r["mode"] == "imperative"
                and "images_per_sec" in r]
        if base and "images_per_sec" in row:
            row["speedup"] = row["images_per_sec"] / base[0]["images_per_sec"]
    print(bench.table(rows))
    if args.json:
        from inceptionzoo._io import write_json

        write_json(args.json, rows)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
