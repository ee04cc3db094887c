"""The serving graph's runtime race under mixed batch sizes, over fresh loads (issue 29, item 1):

    .venv/bin/python benchmarks/race_stability.py --model inception_mnist --loads 5 \\
        --order 1,32,256,32,1 --seconds 2

Each load is a fresh process that exports nothing (the export is made once, before the loads,
with ``--onnx``), calls ``load_graph(DIR, 'auto', warmup=SIZES)`` with no saved tuning, then
serves the batch sizes in ``--order``, one after another, each for ``--seconds``; it reports the
runtime the race chose for each size and the images/s of each step. The peers serve the same
order, each in its own fresh process, in the same rounds (the order of the three contenders
rotates every round): MXNet alone (``load_graph(DIR, 'mxnet')``) and ONNX Runtime alone (the
zoo's ``OrtRunner`` with its thread tuning, in a process that never imports MXNet). The table
gives, per load and step, ``auto``'s images/s and its ratio to the better peer's median for
that step; the target is >= 0.95 at every step of every load.
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


def _serve_steps(run, sample, order, seconds):
    """Images/s of each step: ``run(sample(b))`` called for ``seconds`` per step."""
    rates = []
    for b in order:
        x = sample(b)
        run(x)  # the first call of a step: a switch of runtime or session, untimed
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            run(x)
            n += 1
        rates.append(n * b / (time.perf_counter() - t0))
    return rates


def _worker_zoo(folder, runtime, order, seconds):
    """One fresh load of the serving graph (this process imports inceptionzoo, so MXNet)."""
    import inceptionzoo  # noqa: F401  (before MXNet: its threads)
    from inceptionzoo.runtimes import sample_input
    from inceptionzoo.serving_core import load_graph

    sizes = sorted(set(order))
    graph = load_graph(folder, runtime=runtime, warmup=sizes)
    rates = _serve_steps(graph, lambda b: sample_input(b, graph.sample_shape, graph.dtype),
                         order, seconds)
    return {"rates": rates, "choice": {str(b): graph.choice.get(b) for b in sizes}}


def _worker_ort(folder, order, seconds):
    """ONNX Runtime alone, as the zoo runs it, in a process without MXNet."""
    from _peer import runtimes_module

    rt = runtimes_module()
    onnx = [f for f in os.listdir(folder) if f.endswith(".onnx")]
    runner = rt.OrtRunner(os.path.join(folder, onnx[0]))
    inp = runner.session.get_inputs()[0]
    dtype = "uint8" if inp.type == "tensor(uint8)" else "float32"

    def sample(b):
        return rt.sample_input(b, [int(d) for d in inp.shape[1:]], dtype)

    runner.tune([sample(b) for b in sorted(set(order))])
    rates = _serve_steps(runner, sample, order, seconds)
    assert "mxnet" not in sys.modules, "the ONNX Runtime peer imported MXNet"
    return {"rates": rates, "threads": {str(k): v for k, v in runner.threads.items()}}


def _run(contender, folder, order, seconds):
    spec = json.dumps({"contender": contender, "folder": folder, "order": order,
                       "seconds": seconds})
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", spec],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{contender} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


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


def table(order, loads, peers):
    """Markdown rows: per load, each step's images/s, choice and ratio to the better peer."""
    best = [max(statistics.median(r["rates"][i] for r in peers[c]) for c in peers)
            for i in range(len(order))]
    head = "| load | " + " | ".join(f"b{b} (step {i + 1})" for i, b in enumerate(order)) + " |"
    lines = [head, "|---" * (len(order) + 1) + "|"]
    for k, load in enumerate(loads, 1):
        cells = [f"{r:,.0f} {load['choice'][str(b)] or '?'} {r / m:.2f}x"
                 for b, r, m in zip(order, load["rates"], best)]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    for c in peers:
        cells = [f"{statistics.median(r['rates'][i] for r in peers[c]):,.0f}"
                 for i in range(len(order))]
        lines.append(f"| {c} alone (median) | " + " | ".join(cells) + " |")
        cells = [f"{min(r['rates'][i] for r in peers[c]):,.0f}..."
                 f"{max(r['rates'][i] for r in peers[c]):,.0f}" for i in range(len(order))]
        lines.append(f"| {c} alone (min...max) | " + " | ".join(cells) + " |")
    worst = min(load["rates"][i] / best[i] for load in loads for i in range(len(order)))
    return "\n".join(lines), worst


def own_spread(peers, order):
    """Each peer against its own median: the worst step of any of its loads (the noise floor of
    the comparison: a peer alone in fresh processes moves this much from load to load)."""
    return {c: min(r["rates"][i] / statistics.median(q["rates"][i] for q in runs)
                   for r in runs for i in range(len(order))) for c, runs in peers.items()}


def main(argv=None):
    """Export once, run the rounds, print the table and the worst ratio."""
    p = argparse.ArgumentParser(prog="benchmarks/race_stability.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="inception_mnist")
    p.add_argument("--export", help="an export folder with an ONNX file (default: made here)")
    p.add_argument("--loads", type=int, default=5)
    p.add_argument("--order", default="1,32,256,32,1")
    p.add_argument("--seconds", type=float, default=2.0, help="length of one step")
    p.add_argument("--json", action="store_true", help="print the raw results too")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        if spec["contender"] == "onnxruntime":
            res = _worker_ort(spec["folder"], spec["order"], spec["seconds"])
        else:
            res = _worker_zoo(spec["folder"], spec["contender"], spec["order"], spec["seconds"])
        print(json.dumps(res))
        return 0
    order = [int(b) for b in args.order.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.export or _export(args.model, tmp)
        results = {c: [] for c in CONTENDERS}
        for k in range(args.loads):
            turn = CONTENDERS[k % 3:] + CONTENDERS[:k % 3]
            for c in turn:
                results[c].append(_run(c, folder, order, args.seconds))
    text, worst = table(order, results["auto"], {c: results[c] for c in CONTENDERS[1:]})
    print(text)
    print(f"worst auto / better peer over {args.loads} loads: {worst:.2f}x (target >= 0.95)")
    spread = own_spread({c: results[c] for c in CONTENDERS[1:]}, order)
    print("worst peer / its own median: " + ", ".join(f"{c} {v:.2f}x" for c, v in spread.items()))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
