"""The serving graph's runtime race under mixed batch sizes, over fresh loads (issue 29, item 1):

    .venv/bin/python benchmarks/race_stability.py --model inception_mnist --loads 5 \\
        --order 1,32,256,32,1 --seconds 3 --slices 3

Each load starts three fresh processes, one per contender, one after another (each waits until
the previous one has loaded): ``auto`` (``load_graph(DIR, 'auto', warmup=SIZES)`` with no saved
tuning), MXNet alone (``load_graph(DIR, 'mxnet')``) and ONNX Runtime alone (the zoo's
``OrtRunner`` with its thread tuning, in a process that never imports MXNet). The export is made
once, before the loads, with ``--onnx``. Then every contender serves the batch sizes of
``--order``, one step after another, and the three take turns inside each step: the step's
``--seconds`` are cut into ``--slices`` slices per contender, run in rotation (one process
serves while the other two wait on their pipe). The contenders thus see the machine in the same
state: on these VMs the time two cores take to hand work to each other changes from one
moment to the next (``benchmarks/core_latency.py``), and ONNX Runtime's two-thread pool with it,
so contenders timed in separate rounds compare moments, not runtimes. The table gives, per load
and step, each contender's median slice and ``auto``'s ratio to the better peer of the same
load and step; the target is >= 0.95 at every step of every load.
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
sys.path.insert(0, HERE)

CONTENDERS = ("auto", "mxnet", "onnxruntime")
PEERS = CONTENDERS[1:]
#: ``--twin``: a second ONNX Runtime alone, the same in every way as the first: how far apart two
#: identical contenders land in this comparison (its noise floor)
TWIN = "onnxruntime twin"


def _serve(run, x, seconds):
    """Images/s of ``run(x)`` called for ``seconds`` (a first, untimed call: the slice may
    follow another process's or another batch size's)."""
    run(x)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        run(x)
        n += 1
    return n * len(x) / (time.perf_counter() - t0)


def _load_zoo(folder, runtime, sizes):
    """A fresh load of the serving graph (this process imports inceptionzoo, so MXNet):
    ``(run, sample, report)``."""
    import inceptionzoo  # noqa: F401  (before MXNet: its threads)
    from inceptionzoo.runtimes import sample_input
    from inceptionzoo.serving_core import load_graph

    graph = load_graph(folder, runtime=runtime, warmup=sizes)
    return (graph, lambda b: sample_input(b, graph.sample_shape, graph.dtype),
            lambda: {"choice": {str(b): graph.choice.get(b) for b in sizes}})


def _load_ort(folder, sizes):
    """ONNX Runtime alone, as the zoo runs it, in a process without MXNet."""
    from _peer import runtimes_module

    rt = runtimes_module()
    onnx = [f for f in os.listdir(folder) if f.endswith(".onnx")]
    runner = rt.OrtRunner(os.path.join(folder, onnx[0]))
    inp = runner.session.get_inputs()[0]
    dtype = "uint8" if inp.type == "tensor(uint8)" else "float32"

    def sample(b):
        return rt.sample_input(b, [int(d) for d in inp.shape[1:]], dtype)

    runner.tune([sample(b) for b in sizes])
    assert "mxnet" not in sys.modules, "the ONNX Runtime peer imported MXNet"
    return runner, sample, lambda: {"threads": {str(k): v for k, v in runner.threads.items()}}


def worker(spec, stdin=sys.stdin, stdout=sys.stdout):
    """A contender's process: load, say ``ready``, then serve each ``{"b", "seconds"}`` line
    read from ``stdin`` with one ``{"rate"}`` line; an empty line ends it with the report."""
    sizes = sorted(set(spec["sizes"]))
    if spec["contender"] in ("onnxruntime", TWIN):
        run, sample, report = _load_ort(spec["folder"], sizes)
    else:
        run, sample, report = _load_zoo(spec["folder"], spec["contender"], sizes)
    inputs = {b: sample(b) for b in sizes}
    print(json.dumps({"ready": True}), file=stdout, flush=True)
    for line in stdin:
        if not line.strip():
            break
        ask = json.loads(line)
        rate = _serve(run, inputs[ask["b"]], ask["seconds"])
        print(json.dumps({"rate": rate}), file=stdout, flush=True)
    print(json.dumps(report()), file=stdout, flush=True)


class Contender:
    """One contender's process, driven through its pipes."""

    def __init__(self, name, folder, sizes):
        self.name = name
        spec = json.dumps({"contender": name, "folder": folder, "sizes": sizes})
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", spec],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._reply()  # loaded

    def _reply(self):
        """The worker's next JSON line (MXNet's and ONNX Runtime's own prints are not JSON)."""
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        err = self.proc.stderr.read()
        raise SystemExit(f"{self.name} worker failed:\n{err[-3000:]}")

    def serve(self, b, seconds):
        self.proc.stdin.write(json.dumps({"b": b, "seconds": seconds}) + "\n")
        self.proc.stdin.flush()
        return self._reply()["rate"]

    def finish(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        report = self._reply()
        self.proc.wait()
        return report


def one_load(k, folder, order, seconds, slices, names=CONTENDERS):
    """Load ``k``: fresh processes, the order served in turns; per contender the slices'
    images/s of every step (``{"slices": [[...], ...]}`` plus its report)."""
    m = len(names)
    turn = names[k % m:] + names[:k % m]
    procs = {}
    for c in turn:  # one after another: a load's warm-up race is not disturbed
        procs[c] = Contender(c, folder, order)
    res = {c: {"slices": []} for c in names}
    for b in order:
        for c in names:
            res[c]["slices"].append([])
        for s in range(slices):
            for c in turn[s % m:] + turn[:s % m]:
                res[c]["slices"][-1].append(procs[c].serve(b, seconds / slices))
    for c in names:
        res[c].update(procs[c].finish())
        res[c]["rates"] = [statistics.median(s) for s in res[c]["slices"]]
    return res


def _export(model, folder):
    """The export every contender serves: the network (shipped weights if it has them, else
    random), with its ONNX file."""
    import inceptionzoo  # noqa: F401
    from inceptionzoo import get_model, model_info
    from inceptionzoo.export import export

    pretrained = bool(model_info(model).pretrained)
    net = get_model(model, pretrained=pretrained)
    if not pretrained:
        net.initialize()
    net.hybridize()
    export(net, os.path.join(folder, model), onnx=True)
    return folder


def export_arguments(parser):
    """``--model`` and ``--export``, the options of the benchmarks that serve an export made by
    :func:`_export` (unless one is given)."""
    parser.add_argument("--model", default="inception_mnist")
    parser.add_argument("--export", help="an export folder with an ONNX file (default: made "
                        "here)")


def table(order, loads):
    """Markdown rows: per load, each contender's images/s per step, ``auto`` with its choice and
    its ratio to the better peer of the same load and step; and the worst such ratio."""
    head = ("| load | contender | " + " | ".join(f"b{b} (step {i + 1})"
                                                for i, b in enumerate(order)) + " |")
    lines, ratios = [head, "|---" * (len(order) + 2) + "|"], []
    for k, load in enumerate(loads, 1):
        best = [max(load[c]["rates"][i] for c in PEERS) for i in range(len(order))]
        twin = load.get(TWIN)
        ratio = [r / m for r, m in zip(load["auto"]["rates"], best)]
        ratios += ratio
        cells = [f"{_rate(r)} {load['auto']['choice'][str(b)] or '?'} {q:.2f}x"
                 for b, r, q in zip(order, load["auto"]["rates"], ratio)]
        lines.append(f"| {k} | auto | " + " | ".join(cells) + " |")
        for c in PEERS:
            cells = [_rate(r) for r in load[c]["rates"]]
            lines.append(f"| {k} | {c} alone | " + " | ".join(cells) + " |")
        if twin:
            cells = [f"{_rate(r)} {twin_ratio(r, o):.2f}x"
                     for r, o in zip(twin["rates"], load["onnxruntime"]["rates"])]
            lines.append(f"| {k} | {TWIN} | " + " | ".join(cells) + " |")
    return "\n".join(lines), min(ratios)


def _rate(r):
    """Images/s as the table prints them: a decimal below 100 (Inception-v3's 17 to 19)."""
    return f"{r:,.1f}" if r < 100 else f"{r:,.0f}"


def twin_ratio(a, b):
    """The slower of two identical contenders against the faster."""
    return min(a, b) / max(a, b)


def slice_spread(loads):
    """Each contender's worst slice against its step's median: how much the machine moved
    within a step (the noise floor of the comparison)."""
    return {c: min(x / statistics.median(step) for load in loads
                   for step in load[c]["slices"] for x in step) for c in loads[0]}


def main(argv=None):
    """Export once, run the loads, print the table and the worst ratio."""
    p = argparse.ArgumentParser(prog="benchmarks/race_stability.py",
                                description=__doc__.split("\n\n")[0])
    export_arguments(p)
    p.add_argument("--loads", type=int, default=5)
    p.add_argument("--order", default="1,32,256,32,1")
    p.add_argument("--seconds", type=float, default=3.0,
                   help="each contender's time per step, over all its slices")
    p.add_argument("--slices", type=int, default=3, help="turns per contender and step")
    p.add_argument("--twin", action="store_true",
                   help="a fourth contender, ONNX Runtime alone again: the comparison's noise floor")
    p.add_argument("--json", action="store_true", help="print the raw results too")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    order = [int(b) for b in args.order.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.export or _export(args.model, tmp)
        loads = []
        for k in range(args.loads):
            names = CONTENDERS + ((TWIN,) if args.twin else ())
            loads.append(one_load(k, folder, order, args.seconds, args.slices, names))
            print(f"# load {k + 1}/{args.loads} done", flush=True)
    text, worst = table(order, loads)
    print(text)
    print(f"worst auto / better peer of the same load over {args.loads} loads: {worst:.2f}x "
          "(target >= 0.95)")
    if args.twin:
        worst_twin = min(twin_ratio(a, b) for load in loads
                         for a, b in zip(load[TWIN]["rates"], load["onnxruntime"]["rates"]))
        print(f"worst slower / faster of the two identical ONNX Runtime contenders: "
              f"{worst_twin:.2f}x (the noise floor of the ratios above)")
    spread = slice_spread(loads)
    print("worst slice / its step's median: " + ", ".join(f"{c} {v:.2f}x"
                                                          for c, v in spread.items()))
    if args.json:
        print(json.dumps(loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
